"""Multi-branch binary convolutional networks (seed 003's Table III, "Lenet" on CIFAR-10).

The seed measures its encoding on convolutional networks; a convolution is a dense product per
output position (the input patch against each filter), so eq. 7 and eq. 8 apply to it
unchanged: an M-bit activation patch and a K-bit filter give ``M * K`` xnor-popcounts combined
by shifts. This module holds the convolutional counterparts of the layers of
:mod:`hwgen.sw.families.mbbn.layers`, for accuracy studies
(``benchmarks/mbbn_accuracy.py --arch cnn``); the compiler lowers dense chains only, so
``hwgen build`` takes the MLPs.

* :class:`QuantConv2d` (Algorithm 2): ``conv2d(Quantize_M(a), Quantize_K(w))``, eq. 15 on both.
* :class:`MBBNConv2d` (Algorithm 1): K binary filter banks ``sign(HTanh(w))`` (eq. 14) against
  the M digit planes of the eq. 10 encoder, ``sum 2^(m+k-2) conv(a_m, W_k)``.
* :class:`QuantCNN` / :class:`MBBNCNN`: ``[conv, batch norm] x n -> dense head``, the
  activation being the next layer's quantizer (Alg. 2) or encoder (Alg. 1), as in the MLPs.
* :func:`branch_sum`: one layer's integer sum by eq. 8 on packed digit planes;
  :func:`branch_logits`: the decomposed :class:`QuantCNN` evaluated as Algorithm 2 leaves it,
  every layer's integer sum by eq. 8 on packed digit planes
  (:func:`hwgen.sw.families.mbbn.layers.mbbn_matmul`).

Convolutions are unpadded: a zero pad is no state of eq. 7 (the states are odd), so a padded
border would need a value the encoding cannot hold.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..ste import ClippedWeights, binarize
from .layers import (MBBNLinear, Quantize, QuantLinear, eq9_scale, levels, mbbn_matmul,
                     mbit_encode, recombine)

__all__ = ["QuantConv2d", "MBBNConv2d", "QuantCNN", "MBBNCNN", "conv_output_shape",
           "branch_sum", "branch_logits"]


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def conv_output_shape(shape: Sequence[int], kernel, stride) -> tuple[int, int]:
    """(H, W) after an unpadded convolution of ``kernel`` and ``stride`` on (H, W) ``shape``.

    Raises
    ------
    ValueError
        When the kernel does not fit the input.
    """
    (h, w), (kh, kw), (sh, sw) = shape, _pair(kernel), _pair(stride)
    if kh > h or kw > w:
        raise ValueError(f"a {kh}x{kw} kernel does not fit a {h}x{w} input")
    return (h - kh) // sh + 1, (w - kw) // sw + 1


class QuantConv2d(nn.Module):
    """A quantized convolution trained by Algorithm 2; unpadded, no bias (batch norm follows).

    ``conv2d(Quantize_M(a), Quantize_K(w))`` with a learned range for each (eq. 15), the steps
    taken out of the sum as in :class:`hwgen.sw.families.mbbn.layers.QuantLinear`.

    Members
    -------
    m_bits, k_bits : int
        Bits of the input activations (M) and of the weights (K).
    weight : torch.nn.Parameter
        (out, in, kh, kw) real weights, initialized uniformly in [-1, 1].
    stride : tuple[int, int]
    act, weight_quant : Quantize
        The quantizers of the input (M bits) and of the weight (K bits).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel, stride=1, *, m_bits: int,
                 k_bits: int, learn_input_range: bool = True):
        super().__init__()
        self.m_bits, self.k_bits = m_bits, k_bits
        self.kernel, self.stride = _pair(kernel), _pair(stride)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel)
                                   .uniform_(-1, 1))
        self.act = Quantize(m_bits, learn_t=learn_input_range)
        self.weight_quant = Quantize(k_bits)

    def forward(self, a):
        qa, da = self.act.states(a)
        qw, dw = self.weight_quant.states(self.weight)
        return F.conv2d(qa, qw, stride=self.stride) * (da * dw)


class MBBNConv2d(ClippedWeights, nn.Module):
    """A multi-branch binary convolution trained by Algorithm 1; unpadded, no bias.

    The input is encoded into M digit planes (eq. 10, backward eq. 13), the K real filter banks
    are binarized by ``sign(HTanh(w))`` (eq. 14), and the output is ``sum_{m,k} 2^(m+k-2)
    conv(a_m, W_k)``, evaluated as one convolution of the recombined states (the same bilinear
    form, as in :class:`hwgen.sw.families.mbbn.layers.MBBNLinear`), times the eq. 9 scale when
    ``scaled``.

    Members
    -------
    weight : torch.nn.Parameter
        (K, out, in, kh, kw) real branch weights, initialized uniformly in [-1, 1].
    """

    def __init__(self, in_channels: int, out_channels: int, kernel, stride=1, *, m_bits: int,
                 k_bits: int, scaled: bool = False):
        super().__init__()
        for bits in (m_bits, k_bits):
            levels(bits)
        self.m_bits, self.k_bits, self.scaled = m_bits, k_bits, scaled
        self.kernel, self.stride = _pair(kernel), _pair(stride)
        self.weight = nn.Parameter(torch.empty(k_bits, out_channels, in_channels, *self.kernel)
                                   .uniform_(-1, 1))

    def forward(self, a):
        acc = F.conv2d(recombine(mbit_encode(a, self.m_bits)),
                       recombine(binarize(self.weight)), stride=self.stride)
        return acc * eq9_scale(self.m_bits, self.k_bits) if self.scaled else acc


class _EncodedCNN(nn.Module):
    """Flat rows of samples in [0, in_max] -> (1, H, W) on [-1, 1] -> [conv, BN] x n -> head.

    ``convs`` lists ``(channels, kernel, stride)`` per convolution; ``bits`` one (M, K) per
    layer, the head last. The logits are the head's output times a learned positive scale.
    """

    def __init__(self, in_shape: Sequence[int], convs, n_classes: int, *,
                 bits: Sequence[tuple[int, int]], in_max: float):
        super().__init__()
        convs, bits = tuple(convs), tuple(tuple(b) for b in bits)
        if not convs:
            raise ValueError("a convolutional network needs at least one convolution")
        if len(bits) != len(convs) + 1:
            raise ValueError(f"bits needs one (M, K) per layer ({len(convs) + 1}), not {bits!r}")
        if in_max <= 0:
            raise ValueError(f"in_max must be positive, not {in_max!r}")
        self.in_shape, self.n_classes = _pair(in_shape), n_classes
        self.bits, self.in_max = bits, float(in_max)
        layers, channels, shape = [], 1, self.in_shape
        for i, ((out, kernel, stride), (m, k)) in enumerate(zip(convs, bits)):
            layers.append(self._conv(i, channels, out, kernel, stride, m, k))
            channels, shape = out, conv_output_shape(shape, kernel, stride)
        layers.append(self._head(channels * shape[0] * shape[1], n_classes, *bits[-1]))
        self.layers = nn.ModuleList(layers)
        self.bns = nn.ModuleList(nn.BatchNorm2d(c) for c, _, _ in convs)
        self.log_scale = nn.Parameter(torch.tensor(0.0))

    def _conv(self, index, n_in, n_out, kernel, stride, m_bits, k_bits):
        raise NotImplementedError

    def _head(self, n_in, n_out, m_bits, k_bits):
        raise NotImplementedError

    def encode_input(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H W) samples -> (B, 1, H, W) on [-1, 1], the B-bit states of eq. 7 over 2^B - 1."""
        return (2 * x / self.in_max - 1).reshape(len(x), 1, *self.in_shape)

    def forward(self, x):
        a = self.encode_input(x)
        for layer, bn in zip(self.layers, self.bns):
            a = bn(layer(a))
        return self.layers[-1](a.flatten(1)) * self.log_scale.exp()


class QuantCNN(_EncodedCNN):
    """Quantized CNN (Algorithm 2); :func:`branch_logits` evaluates its decomposition."""

    def _conv(self, index, n_in, n_out, kernel, stride, m_bits, k_bits):
        return QuantConv2d(n_in, n_out, kernel, stride, m_bits=m_bits, k_bits=k_bits,
                           learn_input_range=index > 0)

    def _head(self, n_in, n_out, m_bits, k_bits):
        return QuantLinear(n_in, n_out, m_bits=m_bits, k_bits=k_bits)


class MBBNCNN(_EncodedCNN):
    """Multi-branch binary CNN (Algorithm 1); eq. 9's scale in the head, batch norm elsewhere."""

    def _conv(self, index, n_in, n_out, kernel, stride, m_bits, k_bits):
        return MBBNConv2d(n_in, n_out, kernel, stride, m_bits=m_bits, k_bits=k_bits)

    def _head(self, n_in, n_out, m_bits, k_bits):
        return MBBNLinear(n_in, n_out, m_bits=m_bits, k_bits=k_bits, scaled=True)


def branch_sum(layer: QuantConv2d | QuantLinear, codes: torch.Tensor) -> torch.Tensor:
    """The integer sum of a layer of :class:`QuantCNN` by eq. 8's packed branches.

    ``codes`` holds the layer's M-bit input states, (B, C, H, W) for a convolution and (B, N)
    for the head. Every output position is one dot product of an input patch with each filter's
    K-bit weight states: ``M * K`` xnor-popcounts combined by shifts
    (:func:`hwgen.sw.families.mbbn.layers.mbbn_matmul`). Returns int64, shaped like the layer's
    output.
    """
    w = torch.as_tensor(layer.weight_quant.codes(layer.weight))
    if not isinstance(layer, QuantConv2d):
        return torch.as_tensor(mbbn_matmul(codes.to(torch.int64).numpy(), w.numpy(),
                                           layer.m_bits, layer.k_bits))
    patches = F.unfold(codes.double(), layer.kernel, stride=layer.stride)  # (B, C kh kw, L)
    rows = patches.transpose(1, 2).reshape(-1, patches.shape[1])
    acc = mbbn_matmul(rows.to(torch.int64).numpy(), w.reshape(len(w), -1).numpy(),
                      layer.m_bits, layer.k_bits)
    h, w_out = conv_output_shape(codes.shape[2:], layer.kernel, layer.stride)
    acc = torch.as_tensor(acc).reshape(len(codes), h * w_out, -1)
    return acc.transpose(1, 2).reshape(len(codes), -1, h, w_out)


@torch.no_grad()
def branch_logits(net: QuantCNN, x: np.ndarray, *, chunk: int = 2048) -> np.ndarray:
    """Logits of ``net`` decomposed by Algorithm 2: every layer's sum by eq. 8's branches.

    Each layer's input states (the quantizer's odd codes; the first layer's are the B-bit
    samples ``2 x - (2^B - 1)``) are split into M digit planes, its weight states into K, and
    the integer sum is ``M * K`` packed xnor-popcounts combined by shifts
    (:func:`hwgen.sw.families.mbbn.layers.mbbn_matmul`); the eq. 9 scale ``d_a d_w`` and batch
    norm follow in float64, as :func:`hwgen.sw.families.train.predict` evaluates ``net``. Rows go
    ``chunk`` at a time.

    Returns
    -------
    numpy.ndarray
        (B, n_classes) float64.
    """
    net = copy.deepcopy(net).double().eval()
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    out = []
    for i in range(0, len(x), chunk):
        a = net.encode_input(x[i:i + chunk])
        for j, layer in enumerate(net.layers):
            if j == len(net.bns):
                a = a.flatten(1)
            codes = torch.as_tensor(layer.act.codes(a))
            y = branch_sum(layer, codes).double() * (layer.act.step() *
                                                    layer.weight_quant.step())
            a = net.bns[j](y) if j < len(net.bns) else y * net.log_scale.exp()
        out.append(a.numpy())
    return np.concatenate(out)
