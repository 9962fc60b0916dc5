"""``multithreshold``: an element-wise multi-threshold
(:class:`hwgen.sw.core.ir.MultiThresholdLayer`), e.g. integer pixels quantized to the odd codes
of a multi-branch layer.

:class:`MultiThresholdEngine` compares ``pe`` elements per cycle with their rows of levels;
:func:`estimate_multithreshold` prices it. It takes each element on its own: ``simd`` is 1 and
there are ``n / pe`` fold steps (:class:`hwgen.hw.registry.ElementwiseHardware`); the
folding's weight mode places the threshold ROM.

**Calibration.** Checked with the multi-branch dense layers (:mod:`hwgen.hw.dense_mbbn`,
whose module docs give the whole run: yosys 0.70 ``synth_ice40 -dff``, then nextpnr
``--pack-only``, 20 engines) on 64-element quantizers to odd 2 and odd 4 codes; for 17 of the
20 engines the estimate lies within 0.92 .. 1.23 times the packed cells. LUT ROMs are counted
without a data register (yosys moves it to the address); EBR counts of wide threshold ROMs are
up to 43 % above yosys's packing.
"""

from __future__ import annotations

import math

from amaranth.hdl import Module, Shape, Signal, Value
from amaranth.lib import data

from hwgen.hw.kit import (FoldedEngine, FoldStep, element_shape, single_branch, threshold_rom,
                          thresholded)
from hwgen.hw.registry import ElementwiseHardware, fold_steps, register
from hwgen.hw.resources import (CONTROL_LCS, WEIGHT_MODES, Folding, Resources,
                                multi_threshold_cost)
from hwgen.sw.core import ir

__all__ = ["MultiThresholdEngine", "estimate_multithreshold", "MultiThresholdHardware"]


class MultiThresholdEngine(FoldedEngine):
    """Element-wise multi-threshold (:class:`hwgen.sw.core.ir.MultiThresholdLayer`): element i of
    the output is ``#{l : x_i >= t_il}`` (``x_i <= t_il`` on flipped rows), e.g. integer
    pixels quantized to the odd codes of a multi-branch layer.

    ``pe`` elements per cycle, each against its row of L levels (L comparators of the input
    width, decoded from a thermometer code, see :func:`hwgen.hw.kit.threshold_rom`); the rows of
    a fold come from a ROM of ``n / pe`` words, a constant when ``pe == n``. There is no synapse
    fold: to the controller ``simd`` is ``n``, and the ``pe`` elements of neuron fold ``nf``
    are picked from the input register by a multiplexer.

    Parameters
    ----------
    layer : MultiThresholdLayer
    in_type : TensorType
        Unsigned or signed input elements.
    pe : int
        Elements per cycle; divides ``n``.
    weights : ``"logic"`` or ``"bram"``
        Threshold ROM in LUTs or in block RAM.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(in_shape, n)))``
    o_stream : ``Out(stream.Signature(ArrayLayout(unsigned(out.bits), n)))``
        The codes of the threshold's output type.

    Latency is ``n / pe + 4`` cycles and throughput one vector per ``n / pe + 3`` cycles.
    """

    def __init__(self, layer: ir.MultiThresholdLayer, *, in_type: ir.TensorType, pe: int = 1,
                 weights: str = "logic"):
        if weights not in WEIGHT_MODES:
            raise ValueError(f"weights must be one of {WEIGHT_MODES}, not {weights!r}")
        self.layer, self.weights = layer, weights
        self.acc_lo, self.acc_hi = layer.acc_range(in_type)
        n = layer.n_in
        super().__init__(n_in=n, n_out=n, in_type=in_type, out_type=layer.out_type(in_type),
                         pe=pe, simd=n)

    def datapath(self, m: Module, step: FoldStep) -> list[Value]:
        pe = self.pe
        # one synapse fold: the stage 0 address is the neuron fold, so the rows meet their
        # elements in stage 1
        t_word, t_type, levels = threshold_rom(m, self.layer.threshold, self.acc_lo,
                                               self.acc_hi, pe, step.addr, self.weights)
        x = step.x.as_value()
        if self.neuron_folds > 1:
            x = x.word_select(step.nf, pe * Shape.cast(element_shape(self.in_type)).width)
        elems = Signal(data.ArrayLayout(element_shape(self.in_type), pe), name="elements")
        m.d.comb += elems.eq(x)
        codes = thresholded([elems[p] for p in range(pe)], t_word, t_type, levels)
        regs = [Signal(element_shape(self.out_type), name=f"code{p}") for p in range(pe)]
        with m.If(step.valid):
            m.d.sync += [r.eq(c) for r, c in zip(regs, codes)]
        return regs


def estimate_multithreshold(layer: ir.MultiThresholdLayer, in_type: ir.TensorType,
                            folding: Folding) -> Resources:
    """iCE40 cost of :class:`MultiThresholdEngine`: the threshold ROM, comparators and decode
    (:func:`hwgen.hw.resources.multi_threshold_cost`), the element multiplexer, the counters
    and the vector registers."""
    n, pe = layer.n_in, folding.pe
    out_bits = layer.out_type(in_type).bits
    res = multi_threshold_cost(layer.threshold, in_type.lo, in_type.hi, n // pe, pe,
                               folding.weights)
    counters = 3 * max(1, math.ceil(math.log2(fold_steps(layer, folding) + 1)))
    element_mux = round(2 / 3 * (n // pe - 1) * pe * in_type.bits)
    registers = n * in_type.bits + n * out_bits + pe * out_bits
    return res + Resources(CONTROL_LCS + counters + element_mux + registers)


@register(ir.MultiThresholdLayer)
class MultiThresholdHardware(ElementwiseHardware):
    """``multithreshold``: :class:`MultiThresholdEngine`, priced by
    :func:`estimate_multithreshold`; element-wise folding rules, both weight modes (the
    threshold ROM's place)."""

    cost = staticmethod(estimate_multithreshold)

    def engine(self, layer, in_type, f):
        single_branch(layer, f)
        if f.simd != 1:
            raise ValueError(f"{layer.name}: a multithreshold layer takes each element on its "
                             f"own, so simd must be 1, not {f.simd!r}")
        # the folding's weight mode places the threshold ROM
        return MultiThresholdEngine(layer, in_type=in_type, pe=f.pe, weights=f.weights)
