"""``qam_slicer``: the QAM slicer (seed 000, §2.3), a receiver's decision device as a streamed
engine.

:class:`QAMSlicerEngine` slices ``pe`` elements of a :class:`hwgen.sw.core.ir.QAMSlicer` layer
per cycle, each against the layer's constant boundaries, in one of two forms:

* ``"compare"``: one comparator per boundary (``x >= b_i``, equality to the upper level), the
  thermometer code counted; works for any boundaries.
* ``"shift"``: where the boundaries are ``base + i * 2^k``
  (:meth:`hwgen.sw.core.ir.QAMSlicer.shift_form`), a constant add, an arithmetic shift and a
  saturation,
  ``clamp((x - base + 2^k) >> k, 0, M - 1)``: no comparator per level.

Both give the golden model's code bit for bit (``#{i : x >= b_i}``). The slicer has no weights,
so the folding's weight mode does not apply (its candidates keep ``"logic"``); the factory
takes the shift form where the grid allows it and the comparator form elsewhere
(:func:`slicer_form`). It takes each element on its own: ``simd`` is 1 and there are
``2 n / pe`` fold steps (:class:`hwgen.hw.registry.ElementwiseHardware`).
:func:`estimate_qam_slicer` prices it; its calibration is in its docs.
"""

from __future__ import annotations

import math

from amaranth.hdl import Const, Module, Mux, Shape, Signal, Value
from amaranth.lib import data

from hwgen.hw.kit import FoldedEngine, FoldStep, element_shape, thermometer_count
from hwgen.hw.registry import ElementwiseHardware, register
from hwgen.hw.resources import CONTROL_LCS, Folding, Resources
from hwgen.sw.core import ir

__all__ = ["FORMS", "QAMSlicerEngine", "slicer_form", "relevant_bits", "estimate_qam_slicer",
           "QAMSlicerHardware"]

FORMS = ("compare", "shift")


def slicer_form(layer: ir.QAMSlicer, form: str = "auto") -> str:
    """The form an engine for ``layer`` uses: ``form`` itself, or for ``"auto"`` the shift
    form where the boundaries allow it and the comparator form elsewhere."""
    if form == "auto":
        return "shift" if layer.shift_form() is not None else "compare"
    if form not in FORMS:
        raise ValueError(f"{layer.name}: slicer form must be 'auto' or one of {FORMS}, "
                         f"not {form!r}")
    if form == "shift" and layer.shift_form() is None:
        raise ValueError(f"{layer.name}: boundaries {list(layer.boundaries)} are not evenly "
                         "spaced by a power of two, so the slicer has no shift form")
    return form


def _compare(x: Value, boundaries: tuple[int, ...]) -> Value:
    passed = [x >= Const(b) for b in boundaries]
    return passed[0] if len(passed) == 1 else thermometer_count(passed)


def _shift(x: Value, base: int, k: int, levels: int) -> Value:
    v = x - Const(base) + Const(1 << k)
    q = v >> k                                   # floor: >> of a signed value is arithmetic
    bits = levels.bit_length() - 1
    return Mux(v < 0, 0, Mux(q > levels - 1, levels - 1, q[:bits]))


class QAMSlicerEngine(FoldedEngine):
    """Element-wise QAM slicer (:class:`hwgen.sw.core.ir.QAMSlicer`), ``pe`` elements per cycle.

    Like :class:`hwgen.hw.multithreshold.MultiThresholdEngine` there is no synapse fold:
    to the controller ``simd`` is ``2 n``, and the ``pe`` elements of neuron fold ``nf`` are
    picked from the input register by a multiplexer; the boundaries are constants.

    Parameters
    ----------
    layer : QAMSlicer
    in_type : TensorType
        Unsigned or signed input elements (block layout: real parts, then imaginary parts).
    pe : int
        Elements per cycle; divides ``2 n``.
    form : ``"auto"``, ``"compare"`` or ``"shift"``
        See the module docs and :func:`slicer_form`.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(in_shape, 2 n)))``
    o_stream : ``Out(stream.Signature(ArrayLayout(unsigned(log2 M), 2 n)))``

    Latency is ``2 n / pe + 4`` cycles and throughput one vector per ``2 n / pe + 3`` cycles.
    """

    def __init__(self, layer: ir.QAMSlicer, *, in_type: ir.TensorType, pe: int = 1,
                 form: str = "auto"):
        self.layer = layer
        layer.acc_range(in_type)                 # integer inputs only
        self.form = slicer_form(layer, form)
        n = layer.n_in
        super().__init__(n_in=n, n_out=n, in_type=in_type, out_type=layer.out_type(in_type),
                         pe=pe, simd=n)

    def slice(self, x: Value) -> Value:
        """The code of one element ``x``."""
        if self.form == "shift":
            base, k = self.layer.shift_form()
            return _shift(x, base, k, self.layer.levels)
        return _compare(x, self.layer.boundaries)

    def datapath(self, m: Module, step: FoldStep) -> list[Value]:
        pe = self.pe
        x = step.x.as_value()
        if self.neuron_folds > 1:
            x = x.word_select(step.nf, pe * Shape.cast(element_shape(self.in_type)).width)
        elems = Signal(data.ArrayLayout(element_shape(self.in_type), pe), name="elements")
        m.d.comb += elems.eq(x)
        regs = [Signal(element_shape(self.out_type), name=f"code{p}") for p in range(pe)]
        with m.If(step.valid):
            m.d.sync += [r.eq(self.slice(elems[p])) for p, r in enumerate(regs)]
        return regs


def relevant_bits(layer: ir.QAMSlicer, in_type: ir.TensorType) -> int:
    """Input bits the code depends on: with boundaries on multiples of ``2^k`` (a shift form
    whose base is one), the low ``k`` bits never matter and synthesis drops them."""
    form = layer.shift_form()
    if form is None:
        return in_type.bits
    base, k = form
    if len(layer.boundaries) == 1:      # one boundary: only the bits above its trailing zeros
        k = next(j for j in range(in_type.bits - 1, -1, -1) if base % (1 << j) == 0)
    return in_type.bits if base % (1 << k) else max(1, in_type.bits - k)


def estimate_qam_slicer(layer: ir.QAMSlicer, in_type: ir.TensorType,
                        folding: Folding) -> Resources:
    """iCE40 cells of :class:`QAMSlicerEngine`: per parallel element, the comparators against
    constants (half a cell per relevant input bit each) and the thermometer decode, or the
    constant adder and saturation; then the element multiplexer, counters and vector
    registers, as for a multi-threshold, over the :func:`relevant_bits` only.

    Checked (yosys ``synth_ice40``, nextpnr ``--pack-only``, 16 signed 8-bit elements in
    parallel, boundaries 2^k apart, benchmarks/qam_slicer_hw.py): 1.7 .. 1.9 times the packed
    cells (66 .. 210 for 4- to 256-QAM), the same for both forms, which synthesis maps to the
    same logic on such boundaries."""
    n, pe = layer.n_in, folding.pe
    out_bits = layer.out_type(in_type).bits
    bits = relevant_bits(layer, in_type)
    if slicer_form(layer) == "shift":
        per = bits + 1 + out_bits
    else:
        levels = layer.levels - 1
        per = levels * math.ceil(bits / 2) + (levels if levels > 1 else 0)
    steps = n // pe
    counters = 3 * max(1, math.ceil(math.log2(steps + 1)))
    element_mux = round(2 / 3 * (steps - 1) * pe * bits)
    registers = n * bits + n * out_bits + pe * out_bits
    return Resources(CONTROL_LCS + counters + element_mux + registers + pe * per)


@register(ir.QAMSlicer)
class QAMSlicerHardware(ElementwiseHardware):
    """``qam_slicer``: :class:`QAMSlicerEngine`, priced by :func:`estimate_qam_slicer`;
    element-wise folding rules, no weights to place."""

    weight_modes = ("logic",)

    cost = staticmethod(estimate_qam_slicer)

    def engine(self, layer, in_type, f):
        if f.simd != 1 or f.branch_folds != 1:
            raise ValueError(f"{layer.name}: a qam_slicer takes each element on its own, so simd "
                             f"and branch_folds must be 1, not {f.simd!r} and {f.branch_folds!r}")
        # no weights: the folding's weight mode does not apply
        return QAMSlicerEngine(layer, in_type=in_type, pe=f.pe)
