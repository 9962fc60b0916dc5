"""``dense_int_binw``: a dense layer with binary weights on integer inputs
(:class:`hwgen.sw.core.ir.DenseIntBinW`).

:class:`DenseIntBinWEngine` is a :class:`hwgen.hw.kit.DenseEngine` whose neurons add or
subtract their inputs by an adder tree; :func:`estimate_dense_int_binw` prices it. The cost
model's coefficients and their check against yosys are in :mod:`hwgen.hw.resources` (the
digits-scale engines there include a 64x128 layer on 5-bit inputs).
"""

from __future__ import annotations

import math

from amaranth.hdl import Cat, Module, Mux, Value
from amaranth.lib import data

from hwgen.hw.kit import DenseEngine
from hwgen.hw.popcount import adder_tree, popcount
from hwgen.hw.registry import LayerHardware, fold_steps, register
from hwgen.hw.resources import Folding, Resources, dense_cost
from hwgen.sw.core import ir

__all__ = ["DenseIntBinWEngine", "estimate_dense_int_binw", "DenseIntBinWHardware"]


class DenseIntBinWEngine(DenseEngine):
    """Dense layer with binary weights on integer inputs (:class:`hwgen.sw.core.ir.DenseIntBinW`).

    ``acc_j = sum_i (+x_i if w_ji else -x_i)``, ``simd`` terms per cycle and neuron summed by
    an adder tree, ``pe`` neurons in parallel; accumulators as wide as the layer's exact
    accumulator range. With a threshold each output is a bipolar bit, otherwise the
    accumulator itself.

    Parameters
    ----------
    layer : DenseIntBinW
    in_type : TensorType
        Unsigned or signed input elements.
    pe : int
        Neurons in parallel; divides ``layer.n_out``.
    simd : int
        Inputs per cycle; divides ``layer.n_in``.
    weights : ``"logic"`` or ``"bram"``
        Weight and threshold ROMs in LUTs or in block RAM.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(in_shape, n_in)))``
    o_stream : ``Out(stream.Signature(ArrayLayout(out_shape, n_out)))``
        ``unsigned(1)`` elements with a threshold, the accumulator type without.

    Latency is ``F + 4`` cycles and throughput one vector per ``F + 3`` cycles,
    ``F = (n_out / pe) * (n_in / simd)`` (see :class:`hwgen.hw.kit.FoldedEngine`).
    """

    def partial(self, m: Module, x: data.View, w: Value) -> Value:
        # -x = ~x + 1 in two's complement: invert where the weight is -1, add the count of -1s
        terms = []
        for s in range(self.simd):
            xs = x[s] if self.in_type.kind == "signed" else Cat(x[s], 0).as_signed()
            terms.append(Mux(w[s], xs, ~xs))
        return adder_tree(terms) + popcount(m, ~w)


def estimate_dense_int_binw(layer: ir.DenseIntBinW, in_type: ir.TensorType,
                            folding: Folding) -> Resources:
    """iCE40 cost of :class:`DenseIntBinWEngine` (:func:`hwgen.hw.resources.dense_cost`): per
    neuron an adder tree of ``simd`` terms, and their inversion where the weights come from a
    ROM."""
    simd, steps = folding.simd, fold_steps(layer, folding)
    term_bits = in_type.bits + 1
    # an adder tree costs a cell per bit per term; ROM weights add the per-term inversion
    inversion = simd * term_bits if steps > 1 else 0
    per_neuron = simd * (term_bits + math.ceil(math.log2(simd + 1))) + inversion
    return dense_cost(layer, in_type, folding, per_neuron, steps)


@register(ir.DenseIntBinW)
class DenseIntBinWHardware(LayerHardware):
    """``dense_int_binw``: :class:`DenseIntBinWEngine`, priced by
    :func:`estimate_dense_int_binw`; dense folding rules."""

    cost = staticmethod(estimate_dense_int_binw)
    engine_class = DenseIntBinWEngine
