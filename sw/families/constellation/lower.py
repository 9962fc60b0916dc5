"""Lowering constellation networks (seed 000) to integers: a complex layer and its QAM slicer.

The transmitter fragment of an over-the-air network, a
:class:`hwgen.sw.families.constellation.complex_nn.ComplexLinear` followed by the QAM activation
(:func:`hwgen.sw.families.constellation.qam.qam`), becomes an :class:`IntegerQAMNet` by
:func:`lower`:

* **Input** codes ``x`` of an integer type with a power-of-two step ``s`` (for real inputs,
  the imaginary parts are zero and not stored).
* **Weights** are the layer's real embedding ``[[A, -B], [B, A]]`` (block layout, see
  :mod:`hwgen.sw.families.constellation.complex_nn`), its columns for real inputs only when
  the input is real, on a power-of-two step ``t``
  (:func:`hwgen.sw.core.levels.power_of_two_step`, symmetric ``weight_bits`` codes, round half
  to even); the **bias** is ``round(b / (s t))``, so the accumulator ``acc = W x + bias`` is
  the layer's output in units of ``s t``, exactly.
* The **slicer** takes ``acc * s t`` to the nearest constellation level per axis, ties up
  (:func:`hwgen.sw.families.constellation.qam.level_index` in float64, where ``acc * s t`` is
  exact).

:meth:`IntegerQAMNet.codes` is that computation in torch, independent of the golden model;
the ONNX export (:func:`hwgen.sw.families.export.export_onnx`, by
:func:`hwgen.sw.families.constellation.export.qam_graph`) writes ``Quant -> MatMul(Quant
weights) -> Add -> QAMSlicer``, which the compiler lowers to ``dense_mac -> qam_slicer``.
:func:`slicer_only` is the receiver's decision device alone: ``Quant -> QAMSlicer``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hwgen.sw.core import ir
from hwgen.sw.core.levels import check_power_of_two, power_of_two_step

from .complex_nn import ComplexLinear, real_embedding
from .qam import level_index, qam_levels

__all__ = ["IntegerQAMNet", "lower", "slicer_only"]


@dataclass
class IntegerQAMNet:
    """``qam(W x + b)`` on integer codes (module docs). ``weights`` is ``None`` for a slicer
    alone, whose input (``n_in`` elements, block layout) is sliced directly.

    Members
    -------
    in_type : TensorType
        Integer type of the input codes.
    in_step : float
        Float value of one input code (a power of two).
    order, delta : int, float
        The constellation: ``sqrt(order)`` levels per axis up to ``+-delta``.
    weights : torch.Tensor or None
        int64 ``(2 m, n_in)`` codes of the real embedding.
    weight_step : float
        ``t``, a power of two.
    weight_bits : int
    bias : torch.Tensor or None
        int64 ``(2 m,)``, in units of ``s t``.
    """

    in_type: ir.TensorType
    in_step: float
    n_in: int
    order: int
    delta: float = 1.0
    weights: torch.Tensor | None = None
    weight_step: float = 1.0
    weight_bits: int = 8
    bias: torch.Tensor | None = None

    @property
    def n_out(self) -> int:
        """Real outputs: twice the complex symbols."""
        return self.n_in if self.weights is None else self.weights.shape[0]

    def accumulators(self, codes: torch.Tensor) -> torch.Tensor:
        """int64 ``W x + bias`` (or the codes themselves for a slicer alone)."""
        codes = torch.as_tensor(codes, dtype=torch.int64)
        if self.weights is None:
            return codes
        return codes @ self.weights.T + self.bias

    def codes(self, codes: torch.Tensor) -> torch.Tensor:
        """The level index per element (block layout) of integer input ``codes`` (B, n_in)."""
        acc = self.accumulators(codes)
        unit = self.in_step * (1.0 if self.weights is None else self.weight_step)
        return level_index(acc.double() * unit, qam_levels(self.order), self.delta)

    def symbols(self, codes: torch.Tensor) -> torch.Tensor:
        """The complex constellation points the transmitter sends, (B, n_out / 2)."""
        m = qam_levels(self.order)
        level = self.delta * (2 * self.codes(codes).double() - (m - 1)) / (m - 1)
        half = self.n_out // 2
        return torch.complex(level[:, :half], level[:, half:])


def lower(linear: ComplexLinear, *, order: int, delta: float = 1.0, in_type: ir.TensorType,
          in_step: float, real_input: bool = True, weight_bits: int = 8) -> IntegerQAMNet:
    """The integer form of ``qam(linear(x))`` (module docs) on input codes of ``in_type``
    and step ``in_step``; ``real_input`` keeps only the columns of real inputs."""
    qam_levels(order)                                # refuses a bad order
    s = check_power_of_two(in_step, "the input step")
    w = real_embedding(linear.weight.detach().to(torch.complex128))
    if real_input:
        w = w[:, :linear.in_features]
    t = power_of_two_step(w.abs().max().item(), weight_bits)
    lim = (1 << (weight_bits - 1)) - 1
    codes = torch.round(w / t).clamp(-lim, lim).to(torch.int64)
    b = torch.zeros(linear.out_features, dtype=torch.complex128) if linear.bias is None else \
        linear.bias.detach().to(torch.complex128)
    bias = torch.round(torch.cat([b.real, b.imag]) / (s * t)).to(torch.int64)
    return IntegerQAMNet(in_type, s, codes.shape[1], order, float(delta), codes, t,
                         weight_bits, bias)


def slicer_only(n: int, *, order: int, delta: float, in_type: ir.TensorType,
                in_step: float) -> IntegerQAMNet:
    """The decision device alone: ``n`` complex received samples (``2 n`` codes, block
    layout) sliced to ``order``-QAM."""
    qam_levels(order)
    return IntegerQAMNet(in_type, check_power_of_two(in_step, "the input step"), 2 * n, order,
                         float(delta))
