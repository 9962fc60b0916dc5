"""Constellation activations of seed 000 (§2.3, eq. 12-14, Fig. 3): n-level and QAM slicing.

An *n-level* activation outputs the level of ``{-Delta, (3-n)Delta/(n-1), ..., Delta}`` nearest to
its real input (§2.3); the *QAM* activation slices a complex input's real and imaginary parts
each with ``n = sqrt(order)`` levels, i.e. it outputs the nearest point of a square
``order``-QAM constellation (Fig. 3(b)). 2 levels are the step of binary networks (BPSK), and
4-QAM is 4-PSK.

Conventions fixed here (the hardware IR's ``qam_slicer`` in :mod:`hwgen.sw.core.ir` uses the
same ones):

* Level ``k`` is ``Delta * (2k - (n-1)) / (n-1)``, ``k = 0 .. n-1``; the decision boundaries
  are the midpoints ``b_i = -Delta + (2i+1)Delta/(n-1)``, ``i = 0 .. n-2``. Both are computed
  in float64 and rounded once to the input's dtype.
* The level index is ``#{i : x >= b_i}``: an input **on a boundary goes to the upper level**,
  and inputs beyond ``+-Delta`` saturate to the outer levels.
* Backward (eq. 12, HardTanh's gradient, Fig. 3(a)): ``g_x = g_y`` where
  ``-Delta <= x <= Delta`` (both ends included), 0 elsewhere. For QAM, eq. 13 applies this
  to the real part and eq. 14 to the imaginary part, independently, with
  ``Delta_r = Delta_i = Delta`` (a square constellation).
* Complex gradients follow PyTorch's convention: the gradient of a real loss with respect to
  a complex ``z`` is ``dL/dRe z + j dL/dIm z``, so eq. 13-14 act on its real and imaginary
  parts exactly as written.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["levels", "boundaries", "level_index", "LevelQuantize", "level_quantize", "qam",
           "qam_levels", "QAM", "NLevel"]


def _check_levels(n: int, delta: float) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"an n-level activation needs an integer n >= 2, not {n!r}")
    if not delta > 0:
        raise ValueError(f"Delta must be positive (eq. 12), not {delta!r}")


def _grid(values: list[float], dtype, device) -> torch.Tensor:
    # float64 first, then one rounding to the target dtype
    return torch.tensor(values, dtype=torch.float64).to(dtype=dtype, device=device)


def levels(n: int, delta: float = 1.0, *, dtype: torch.dtype | None = None,
           device=None) -> torch.Tensor:
    """The ``n`` levels ``{-Delta, (3-n)Delta/(n-1), ..., Delta}`` of §2.3, ascending.

    Parameters
    ----------
    n : int
        Number of levels, at least 2.
    delta : float
        Delta > 0, the largest level (eq. 12).
    dtype, device : optional
        Of the result; the default dtype when not given.

    Returns
    -------
    torch.Tensor
        Shape ``(n,)``.
    """
    _check_levels(n, delta)
    dtype = dtype or torch.get_default_dtype()
    return _grid([delta * (2 * k - (n - 1)) / (n - 1) for k in range(n)], dtype, device)


def boundaries(n: int, delta: float = 1.0, *, dtype: torch.dtype | None = None,
               device=None) -> torch.Tensor:
    """The ``n - 1`` decision boundaries ``b_i = -Delta + (2i+1)Delta/(n-1)``, ascending."""
    _check_levels(n, delta)
    dtype = dtype or torch.get_default_dtype()
    return _grid([delta * (2 * i + 2 - n) / (n - 1) for i in range(n - 1)], dtype, device)


def level_index(x: torch.Tensor, n: int, delta: float = 1.0) -> torch.Tensor:
    """Index ``0 .. n-1`` of the level nearest to each element of the real tensor ``x``.

    The index is the number of boundaries ``b_i`` with ``x >= b_i``: ties go to the upper
    level, and inputs beyond ``+-Delta`` saturate to 0 or ``n - 1``.

    Returns
    -------
    torch.Tensor
        int64, shape of ``x``.
    """
    b = boundaries(n, delta, dtype=x.dtype, device=x.device)
    # right=True: b[k-1] <= x < b[k] gives k, i.e. the count of boundaries at or below x
    return torch.bucketize(x.contiguous(), b, right=True)


class LevelQuantize(torch.autograd.Function):
    """Forward: the nearest of the ``n`` levels (ties up). Backward: eq. 12.

    Eq. 12 is written with the output y, but y always lies in ``[-Delta, Delta]``, so read
    literally it would pass every gradient; the text and Fig. 3(a) (HardTanh) make the
    condition the input x, which is what is implemented.
    """

    @staticmethod
    def forward(ctx, x, n, delta):
        ctx.save_for_backward(x)
        ctx.delta = delta
        return levels(n, delta, dtype=x.dtype, device=x.device)[level_index(x, n, delta)]

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        # eq. 12 (on the input x, see the class docs): g_x = g_y on -Delta <= x <= Delta
        inside = (x >= -ctx.delta) & (x <= ctx.delta)
        return grad * inside.to(grad.dtype), None, None


def level_quantize(x: torch.Tensor, n: int, delta: float = 1.0) -> torch.Tensor:
    """n-level activation of §2.3 on a real tensor, with the gradient of eq. 12.

    Parameters
    ----------
    x : torch.Tensor
        Real input, any shape.
    n : int
        Number of levels, at least 2.
    delta : float
        Delta > 0, the largest level.

    Returns
    -------
    torch.Tensor
        The nearest level to each element (ties to the upper level), shape and dtype of ``x``.
    """
    _check_levels(n, delta)
    if x.is_complex():
        raise TypeError("level_quantize takes a real tensor; use qam for complex inputs")
    return LevelQuantize.apply(x, n, float(delta))


def qam_levels(order: int) -> int:
    """Levels per axis, ``sqrt(order)``, of a square QAM constellation.

    Raises
    ------
    ValueError
        When ``order`` is not a power of 4 of at least 4 (4, 16, 64, 256, ...).
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 4 \
            or order & (order - 1) or (order.bit_length() - 1) % 2:
        raise ValueError(f"a square QAM order is a power of 4 >= 4 (4, 16, 64, 256, ...), "
                         f"not {order!r}")
    return 1 << ((order.bit_length() - 1) // 2)


def qam(z: torch.Tensor, order: int, delta: float = 1.0) -> torch.Tensor:
    """QAM activation of §2.3: the nearest point of the square ``order``-QAM constellation.

    Real and imaginary parts are each sliced with ``sqrt(order)`` levels in ``[-Delta, Delta]``
    (Fig. 3(b)); backward eq. 13 on the real part and eq. 14 on the imaginary part.

    Parameters
    ----------
    z : torch.Tensor
        Complex input (complex64 or complex128), any shape.
    order : int
        Constellation points: 4 (4-PSK), 16, 64, 256, ... (a power of 4).
    delta : float
        Delta_r = Delta_i = Delta > 0, the largest level on each axis.

    Returns
    -------
    torch.Tensor
        Complex, shape and dtype of ``z``.
    """
    n = qam_levels(order)
    if not z.is_complex():
        raise TypeError(f"qam takes a complex tensor, not {z.dtype}")
    # eq. 13 acts on [..., 0] (real parts), eq. 14 on [..., 1] (imaginary parts)
    parts = level_quantize(torch.view_as_real(z.resolve_conj()), n, delta)
    return torch.complex(parts[..., 0], parts[..., 1])


class QAM(nn.Module):
    """QAM activation (:func:`qam`) as a module; 16-QAM by default, as in §4."""

    def __init__(self, order: int = 16, delta: float = 1.0):
        super().__init__()
        qam_levels(order)
        _check_levels(2, delta)
        self.order, self.delta = order, float(delta)

    def forward(self, z):
        return qam(z, self.order, self.delta)

    def extra_repr(self) -> str:
        return f"order={self.order}, delta={self.delta}"


class NLevel(nn.Module):
    """Real n-level activation (:func:`level_quantize`), Fig. 3(a)."""

    def __init__(self, n: int, delta: float = 1.0):
        super().__init__()
        _check_levels(n, delta)
        self.n, self.delta = n, float(delta)

    def forward(self, x):
        return level_quantize(x, self.n, self.delta)

    def extra_repr(self) -> str:
        return f"n={self.n}, delta={self.delta}"
