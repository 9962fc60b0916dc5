"""Deploying min/max-quantized, pruned dense networks (seed 001 §5-§6) as integer MACs.

A layer quantized by :func:`hwgen.sw.families.compression.compress.minmax_levels` to k bits
holds, for every kept weight, ``w = s q + m`` (level ``q`` in ``0 .. 2^k - 1``,
``s = (hi - lo) / 2^k``, ``m = lo``); a pruned weight is absent. On integer inputs ``x``
(step ``s_x``) the layer is

    y_j = s_x (s sum_i q_ji x_i + m sum_{i kept} x_i) + b_j

(the **zero-point term** ``m sum x`` is a sum of the same inputs, not a multiplication per
weight). The deployed form makes that identity exact in integers:

* The step is put on a grid of 8 significant bits: ``sigma = round8(s / 2^j)`` with ``j`` the
  largest shift (at most ``15 - k``) that keeps every integer weight below in 16 bits, and the
  zero point on the grid of sigma: ``Z = round(m / sigma)`` (half to even). The deployed step
  and offset are ``s' = 2^j sigma`` and ``m' = Z sigma``, within ``2^-8`` (relative) and
  ``sigma / 2`` of the seed's.
* Then ``s' sum q x + m' sum x = sigma sum_i E_ji x_i`` with the integer weights
  ``E_ji = 2^j q_ji + Z`` (kept) and ``0`` (pruned, so it is absent in hardware): a
  ``dense_mac`` layer, its accumulator in units of ``u = s_x sigma``, exact. The bias is
  rounded to that unit: ``B_j = round(b_j / u)``.
* A hidden layer's ReLU and requantization to unsigned ``act_bits`` codes of a power-of-two
  step ``s_h`` is ``clamp(round_half_even(max(0, y) / s_h), 0, 2^act_bits - 1)`` (a QONNX
  unsigned ``Quant``, ROUND); the output layer's logits end in an argmax.

:class:`IntegerMinMaxMLP` runs the deployed network twice, independently of the golden model
(which runs the ``dense_mac`` weights ``E``): in PyTorch float64 on the dequantized weights
``s' q + m'`` (:meth:`IntegerMinMaxMLP.torch_predict`, exact, see there), and in the split form
``2^j A + Z S`` with ``A = sum q x`` and ``S = sum_kept x`` in int64
(:meth:`IntegerMinMaxMLP.predict`; the rounding of ``y / s_h`` is an exact integer rounding:
``u / s_h`` is an 8-bit integer times a power of two). :func:`lower` builds it from the
trained layers; :func:`hwgen.sw.families.export.export_onnx` (by
:func:`hwgen.sw.families.compression.export.minmax_graph`) writes it as ``Quant -> (MatMul by a
weight Quant of E, scale sigma; Add; Quant)* -> MatMul; Add``, which the compiler lowers to
``dense_mac`` layers with multi-thresholds and an argmax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from hwgen.sw.core import ir
from hwgen.sw.core.levels import check_power_of_two

from .compress import minmax_levels

__all__ = ["MinMaxLayer", "IntegerMinMaxMLP", "lower", "round_significant"]

#: Significant bits of the deployed step sigma.
SIGMA_BITS = 8


def round_significant(v: float, bits: int = SIGMA_BITS) -> float:
    """``v > 0`` rounded to ``bits`` significant bits (half to even)."""
    e = math.floor(math.log2(v)) - (bits - 1)
    return float(np.round(v / 2.0 ** e) * 2.0 ** e)


@dataclass
class MinMaxLayer:
    """One deployed layer (module docs): levels ``q`` and mask ``keep`` (n_out, n_in), the
    shift ``j``, ``sigma``, the zero point ``Z`` and the bias ``B`` in accumulator units."""

    q: np.ndarray
    keep: np.ndarray
    k: int
    j: int
    sigma: float
    zero: int
    bias: np.ndarray = field(default=None)

    @property
    def weights(self) -> np.ndarray:
        """The ``dense_mac`` weights ``E = 2^j q + Z`` where kept, 0 where pruned."""
        return np.where(self.keep, (self.q << self.j) + self.zero, 0).astype(np.int64)

    def split(self, x: np.ndarray) -> np.ndarray:
        """``2^j sum q x + Z sum_kept x + B`` (int64) for integer inputs ``x`` (B, n_in)."""
        x = np.asarray(x, dtype=np.int64)
        a = x @ np.where(self.keep, self.q, 0).T
        s = x @ self.keep.astype(np.int64).T
        return (a << self.j) + self.zero * s + self.bias


def _lower_layer(linear: nn.Linear, k: int, keep: np.ndarray, unit_x: float) -> MinMaxLayer:
    w = linear.weight.detach().double()
    kept = torch.from_numpy(keep)
    levels, lo, hi = minmax_levels(w[kept], k)            # §5 over the kept weights only
    q = np.zeros(keep.shape, np.int64)
    q[keep] = levels.numpy()
    s = (hi - lo) / 2 ** k
    if s <= 0:          # every kept weight equals lo: all at level 0, the zero point holds lo
        s = abs(lo) or 1.0
    for j in range(15 - k, -1, -1):
        sigma = round_significant(s / 2 ** j)
        zero = int(np.round(lo / sigma))
        e = np.where(keep, (q << j) + zero, 0)
        if e.min(initial=0) >= -(1 << 15) and e.max(initial=0) < 1 << 15:
            break
    else:
        raise ValueError(f"the zero point {lo:g} is too far from the step {s:g} for 16-bit "
                         "integer weights")
    b = np.zeros(keep.shape[0]) if linear.bias is None else linear.bias.detach().double().numpy()
    bias = np.round(b / (unit_x * sigma)).astype(np.int64)
    return MinMaxLayer(q, keep, k, j, sigma, zero, bias)


@dataclass
class IntegerMinMaxMLP:
    """A deployed min/max-quantized, pruned MLP (module docs): integer inputs of ``in_type``
    and step ``in_step`` (a power of two), hidden activations of ``act_bits`` unsigned bits and
    power-of-two step ``act_step``, an argmax over the last layer's logits."""

    in_type: ir.TensorType
    in_step: float
    layers: list[MinMaxLayer]
    act_bits: int = 8
    act_step: float = 2.0 ** -4

    @property
    def n_in(self) -> int:
        return self.layers[0].q.shape[1]

    @property
    def n_classes(self) -> int:
        return self.layers[-1].q.shape[0]

    def _requantize(self, acc: np.ndarray, unit: float) -> np.ndarray:
        """``clamp(round_half_even(max(0, acc u) / s_h), 0, 2^bits - 1)``, exactly: ``u / s_h``
        is a ratio ``num / den`` of integers, ``den`` a power of two."""
        num, den = (unit / self.act_step).as_integer_ratio()
        quo, rem = np.divmod(np.maximum(acc, 0) * num, den)
        codes = quo + ((2 * rem > den) | ((2 * rem == den) & (quo % 2 == 1)))
        return np.minimum(codes, (1 << self.act_bits) - 1).astype(np.int64)

    def layer_outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """Per layer, in the split form (int64): the hidden layers' activation codes, then the
        last layer's accumulators."""
        outs, unit_x = [], self.in_step
        x = np.asarray(x, dtype=np.int64)
        for layer in self.layers[:-1]:
            x = self._requantize(layer.split(x), unit_x * layer.sigma)
            outs.append(x)
            unit_x = self.act_step
        return outs + [self.layers[-1].split(x)]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class per input vector (argmax, ties to the lowest index)."""
        return np.argmax(self.layer_outputs(x)[-1], axis=1)

    def torch_predict(self, x: np.ndarray) -> np.ndarray:
        """The same classes from PyTorch's float64 inference on the dequantized weights
        ``s' q + m'`` (0 where pruned) and biases ``B u``: every product and sum is a
        multiple of ``u`` below 2^53 of it, so float64 is exact here, and
        ``torch.round`` rounds half to even as the requantization does."""
        h = torch.as_tensor(np.asarray(x), dtype=torch.float64) * self.in_step
        unit_x = self.in_step
        for i, layer in enumerate(self.layers):
            q = torch.from_numpy(layer.q).double()
            w = (2 ** layer.j * layer.sigma) * q + layer.zero * layer.sigma    # s' q + m'
            w = torch.where(torch.from_numpy(layer.keep), w, torch.zeros_like(w))
            b = torch.from_numpy(layer.bias).double() * (unit_x * layer.sigma)
            y = torch.nn.functional.linear(h, w, b)
            if i == len(self.layers) - 1:
                return torch.argmax(y, dim=1).numpy()
            codes = torch.round(torch.relu(y) / self.act_step).clamp(max=2 ** self.act_bits - 1)
            h, unit_x = codes * self.act_step, self.act_step
        raise AssertionError("unreachable")


def lower(linears: list[nn.Linear], *, k: int, masks: list[np.ndarray] | None = None,
          in_type: ir.TensorType, in_step: float, act_bits: int = 8,
          act_step: float = 2.0 ** -4) -> IntegerMinMaxMLP:
    """Deploy a ReLU MLP of ``linears`` with k-bit min/max weights (pruned where a mask is
    False) on integer inputs of ``in_type`` and power-of-two ``in_step``."""
    check_power_of_two(in_step, "the input step")
    check_power_of_two(act_step, "the activation step")
    layers, unit_x = [], in_step
    for i, linear in enumerate(linears):
        keep = np.ones(tuple(linear.weight.shape), bool) if masks is None or masks[i] is None \
            else np.asarray(masks[i], bool)
        layers.append(_lower_layer(linear, k, keep, unit_x))
        unit_x = act_step
    return IntegerMinMaxMLP(in_type, in_step, layers, act_bits, act_step)
