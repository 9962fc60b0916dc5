"""``dense_binary``: an xnor-popcount dense layer on bipolar inputs
(:class:`hwgen.sw.core.ir.DenseBinary`).

:class:`XnorPopcountEngine` is a :class:`hwgen.hw.kit.DenseEngine` whose neurons count the
agreements of input and weight bits (:func:`hwgen.hw.popcount.popcount`);
:func:`estimate_dense_binary` prices it. The cost model's coefficients and their check against
yosys are in :mod:`hwgen.hw.resources` (the digits-scale engines there include a 128x128
bipolar layer).
"""

from __future__ import annotations

import math

from amaranth.hdl import Module, Value
from amaranth.lib import data

from hwgen.hw.kit import DenseEngine
from hwgen.hw.popcount import popcount
from hwgen.hw.registry import LayerHardware, fold_steps, register
from hwgen.hw.resources import POPCOUNT_LCS_PER_BIT, Folding, Resources, dense_cost
from hwgen.sw.core import ir

__all__ = ["XnorPopcountEngine", "estimate_dense_binary", "DenseBinaryHardware"]


class XnorPopcountEngine(DenseEngine):
    """xnor-popcount dense layer on bipolar inputs (:class:`hwgen.sw.core.ir.DenseBinary`).

    Per cycle and neuron, ``popcount(xnor(x_chunk, w_chunk))`` over ``simd`` bits (through
    :func:`hwgen.hw.popcount.popcount`), ``pe`` neurons in parallel, accumulated to
    ``0..n_in``. With a threshold each output is a bipolar bit, otherwise the popcount.

    Parameters
    ----------
    layer : DenseBinary
    in_type : TensorType
        Bipolar.
    pe, simd, weights
        As for :class:`hwgen.hw.dense_int_binw.DenseIntBinWEngine`.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(unsigned(1), n_in)))``
    o_stream : ``Out(stream.Signature(ArrayLayout(out_shape, n_out)))``
        ``unsigned(1)`` elements with a threshold, ``unsigned(bits(n_in))`` without.

    Latency is ``F + 4`` cycles and throughput one vector per ``F + 3`` cycles,
    ``F = (n_out / pe) * (n_in / simd)`` (see :class:`hwgen.hw.kit.FoldedEngine`).
    """

    def partial(self, m: Module, x: data.View, w: Value) -> Value:
        return popcount(m, ~(x.as_value() ^ w))


def estimate_dense_binary(layer: ir.DenseBinary, in_type: ir.TensorType,
                          folding: Folding) -> Resources:
    """iCE40 cost of :class:`XnorPopcountEngine` (:func:`hwgen.hw.resources.dense_cost`): per
    neuron a popcount of ``simd`` bits, and their xnor where the weights come from a ROM."""
    simd, steps = folding.simd, fold_steps(layer, folding)
    xnor = simd if steps > 1 else 0     # constant weights fold into the popcount's inputs
    per_neuron = math.ceil(POPCOUNT_LCS_PER_BIT * simd) + xnor
    return dense_cost(layer, in_type, folding, per_neuron, steps)


@register(ir.DenseBinary)
class DenseBinaryHardware(LayerHardware):
    """``dense_binary``: :class:`XnorPopcountEngine`, priced by :func:`estimate_dense_binary`;
    dense folding rules."""

    cost = staticmethod(estimate_dense_binary)
    engine_class = XnorPopcountEngine
