"""Complex-valued layers of seed 000 (§2.1-2.2, §4): the networks its QAM activation runs in.

A complex layer computes ``y = W x + b`` with ``W = A + jB``; over the air (§2.2) it is the
transformation the precoder, channel and combiner realise, and on real hardware it is the real
matrix :func:`real_embedding` returns.

**Block layout** (the layout the hardware IR uses for a complex vector, see ``qam_slicer`` in
:mod:`hwgen.sw.core.ir`): a complex vector ``x`` of ``n`` elements is the real vector of ``2n``
elements

    x_stack = [Re x_0, ..., Re x_{n-1}, Im x_0, ..., Im x_{n-1}]

(all real parts, then all imaginary parts; not interleaved). For ``W`` of shape ``(m, n)``,

    [[A, -B],     [Re x]   [A Re x - B Im x]   [Re y]
     [B,  A]]  @  [Im x] = [B Re x + A Im x] = [Im y]

so the ``(2m, 2n)`` matrix ``[[A, -B], [B, A]]`` maps the block layout of ``x`` to that of
``y``; a bias ``b`` becomes ``[Re b; Im b]``.

Conventions fixed here:

* Parameters are complex (``torch.cfloat`` by default). Weights start with real and imaginary
  parts each ``N(0, 1/(2 fan_in))``, so ``E|w|^2 = 1/fan_in``; biases start at 0.
* :class:`ComplexConv1d` is a cross-correlation like ``nn.Conv1d`` (no kernel flip and no
  conjugation): ``y[o, t] = sum_{c,k} w[o, c, k] x[c, t*stride + k - padding] + b[o]``.
* :class:`CReLU` is the complex ReLU baseline of Trabelsi et al. used in §4: ReLU on the real
  and imaginary parts separately.
* :class:`ComplexBatchNorm1d` is the *simple* form: an independent ``nn.BatchNorm1d`` on the
  real parts and on the imaginary parts (not the whitening of the 2x2 covariance of
  Trabelsi et al.).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["real_embedding", "ComplexLinear", "ComplexConv1d", "CReLU", "ComplexBatchNorm1d"]


def real_embedding(weight: torch.Tensor) -> torch.Tensor:
    """The real ``(2m, 2n)`` matrix ``[[A, -B], [B, A]]`` of a complex ``(m, n)`` weight ``A + jB``.

    It maps ``[Re x; Im x]`` to ``[Re y; Im y]`` for ``y = weight @ x`` (block layout, see the
    module docs).
    """
    if weight.ndim != 2 or not weight.is_complex():
        raise ValueError(f"expected a complex 2-D weight, not {weight.dtype} of shape "
                         f"{tuple(weight.shape)}")
    a, b = weight.real, weight.imag
    return torch.cat([torch.cat([a, -b], dim=1), torch.cat([b, a], dim=1)], dim=0)


def _complex_parameter(shape: tuple[int, ...], fan_in: int, dtype, device) -> nn.Parameter:
    if not dtype.is_complex:
        raise ValueError(f"complex layers need a complex dtype, not {dtype}")
    # real and imaginary parts each N(0, 1/(2 fan_in)): E|w|^2 = 1/fan_in
    std = math.sqrt(0.5 / fan_in)
    real = torch.randn(shape, dtype=dtype.to_real(), device=device) * std
    imag = torch.randn(shape, dtype=dtype.to_real(), device=device) * std
    return nn.Parameter(torch.complex(real, imag))


def _as_complex(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Real input is taken as a complex one with zero imaginary part."""
    return x if x.is_complex() else x.to(dtype)


class ComplexLinear(nn.Module):
    """``y = W x + b`` with complex ``W`` of shape ``(out_features, in_features)``.

    Parameters
    ----------
    in_features, out_features : int
        Complex elements in and out.
    bias : bool
        Add a complex bias.
    dtype : torch.dtype
        Complex dtype of the parameters.

    Members
    -------
    weight : nn.Parameter
        Complex, ``(out_features, in_features)``; :func:`real_embedding` gives its real form.
    bias : nn.Parameter or None
        Complex, ``(out_features,)``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype: torch.dtype = torch.cfloat, device=None):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"features must be positive, not {in_features!r} -> {out_features!r}")
        self.in_features, self.out_features = in_features, out_features
        self.weight = _complex_parameter((out_features, in_features), in_features, dtype, device)
        self.bias = (nn.Parameter(torch.zeros(out_features, dtype=dtype, device=device))
                     if bias else None)

    def forward(self, x):
        return F.linear(_as_complex(x, self.weight.dtype), self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class ComplexConv1d(nn.Module):
    """Complex 1-D convolution (cross-correlation) on ``(batch, in_ch, length)`` inputs.

    Computed with four real ``conv1d``: ``(A + jB)(x_r + j x_i) = (A x_r - B x_i)
    + j (B x_r + A x_i)``.

    Parameters
    ----------
    in_ch, out_ch, kernel_size, stride, padding : int
        As for ``nn.Conv1d`` (zero padding on both ends).
    bias : bool
        Add a complex bias per output channel.
    dtype : torch.dtype
        Complex dtype of the parameters.

    Members
    -------
    weight : nn.Parameter
        Complex, ``(out_ch, in_ch, kernel_size)``.
    bias : nn.Parameter or None
        Complex, ``(out_ch,)``.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True, *, dtype: torch.dtype = torch.cfloat,
                 device=None):
        super().__init__()
        if min(in_ch, out_ch, kernel_size, stride) < 1 or padding < 0:
            raise ValueError(f"bad convolution shape: {in_ch} -> {out_ch}, kernel {kernel_size}, "
                             f"stride {stride}, padding {padding}")
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.stride, self.padding = stride, padding
        self.weight = _complex_parameter((out_ch, in_ch, kernel_size), in_ch * kernel_size,
                                         dtype, device)
        self.bias = (nn.Parameter(torch.zeros(out_ch, dtype=dtype, device=device))
                     if bias else None)

    def forward(self, x):
        x = _as_complex(x, self.weight.dtype)
        a, b = self.weight.real, self.weight.imag

        def conv(inp, w):
            return F.conv1d(inp, w, stride=self.stride, padding=self.padding)

        real = conv(x.real, a) - conv(x.imag, b)
        imag = conv(x.real, b) + conv(x.imag, a)
        y = torch.complex(real, imag)
        return y if self.bias is None else y + self.bias[:, None]

    def extra_repr(self) -> str:
        return (f"{self.in_ch}, {self.out_ch}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


class CReLU(nn.Module):
    """Complex ReLU of Trabelsi et al.: ``ReLU(Re z) + j ReLU(Im z)``."""

    def forward(self, z):
        return torch.complex(F.relu(z.real), F.relu(z.imag))


class ComplexBatchNorm1d(nn.Module):
    """Simple complex batch norm: ``nn.BatchNorm1d`` on the real parts and, separately, on the
    imaginary parts (inputs ``(batch, n)`` or ``(batch, n, length)``).

    Parameters
    ----------
    n : int
        Complex features (channels).
    eps, momentum : float
        As for ``nn.BatchNorm1d``; both halves share them.

    Members
    -------
    real, imag : nn.BatchNorm1d
        The normalisation of the real and of the imaginary parts.
    """

    def __init__(self, n: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.real = nn.BatchNorm1d(n, eps=eps, momentum=momentum)
        self.imag = nn.BatchNorm1d(n, eps=eps, momentum=momentum)

    def forward(self, z):
        return torch.complex(self.real(z.real), self.imag(z.imag))
