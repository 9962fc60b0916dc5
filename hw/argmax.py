"""``argmax``: the index of the largest element (:class:`hwgen.sw.core.ir.ArgMax`).

:class:`ArgMaxEngine` scans the input vector on the shared controller
(:class:`hwgen.hw.kit.FoldedEngine`), ``simd`` elements per cycle; :func:`estimate_argmax`
prices it. Argmax has no weights, so the folding's weight mode does not apply: its candidates
keep weights in ``"logic"`` only.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, Value

from hwgen.hw.kit import FoldedEngine, FoldStep, element_shape, single_branch
from hwgen.hw.registry import LayerHardware, fold_steps, register
from hwgen.hw.resources import Folding, Resources, controller_cells
from hwgen.sw.core import ir

__all__ = ["ArgMaxEngine", "estimate_argmax", "ArgMaxHardware"]


class ArgMaxEngine(FoldedEngine):
    """Index of the largest element, ties to the lowest index (:class:`hwgen.sw.core.ir.ArgMax`).

    A sequential scan over ``n / simd`` chunks; inside a chunk a comparator tree of
    ``simd - 1`` comparators, where a later element wins only when strictly greater.

    Parameters
    ----------
    layer : ArgMax
    in_type : TensorType
        Type of the elements compared.
    pe : int
        Must be 1: there is one output.
    simd : int
        Elements compared per cycle; divides ``n``.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(in_shape, n)))``
    o_stream : ``Out(stream.Signature(ArrayLayout(unsigned(bits(n - 1)), 1)))``

    Latency is ``n / simd + 4`` cycles and throughput one vector per ``n / simd + 3`` cycles.
    """

    def __init__(self, layer: ir.ArgMax, *, in_type: ir.TensorType, pe: int = 1, simd: int = 1):
        if pe != 1:
            raise ValueError(f"argmax has a single output, so pe must be 1, not {pe!r}")
        self.layer = layer
        super().__init__(n_in=layer.n_in, n_out=1, in_type=in_type,
                         out_type=layer.out_type(in_type), pe=pe, simd=simd)

    def datapath(self, m: Module, step: FoldStep) -> list[Value]:
        idx_shape = element_shape(self.out_type)
        best = [(step.x[s], Const(s, idx_shape)) for s in range(self.simd)]
        while len(best) > 1:
            paired = [(Mux(b > a, b, a), Mux(b > a, ib, ia))
                      for (a, ia), (b, ib) in zip(best[0::2], best[1::2])]
            best = paired + best[len(paired) * 2:]
        chunk_val, chunk_idx = best[0]
        best_val = Signal(element_shape(self.in_type))
        best_idx = Signal(idx_shape)
        with m.If(step.valid & (step.first | (chunk_val > best_val))):
            m.d.sync += [best_val.eq(chunk_val), best_idx.eq(step.sf * self.simd + chunk_idx)]
        return [best_idx]


def estimate_argmax(layer: ir.ArgMax, in_type: ir.TensorType, folding: Folding) -> Resources:
    """iCE40 cost of :class:`ArgMaxEngine`: ``simd`` comparators with their value and index
    multiplexers, the best value and index registers, the controller."""
    idx_bits = layer.out_type(in_type).bits
    compare = folding.simd * (2 * in_type.bits + idx_bits)       # comparator + value/index muxes
    best = in_type.bits + idx_bits
    return Resources(compare + best + controller_cells(layer, in_type.bits, idx_bits, folding,
                                                       fold_steps(layer, folding)))


@register(ir.ArgMax)
class ArgMaxHardware(LayerHardware):
    """``argmax``: :class:`ArgMaxEngine`, priced by :func:`estimate_argmax`; dense folding
    rules (``pe`` is 1, the one output), no weights to place."""

    weight_modes = ("logic",)

    cost = staticmethod(estimate_argmax)

    def engine(self, layer, in_type, f):
        single_branch(layer, f)
        # argmax has no weights, so the folding's weight mode does not apply
        return ArgMaxEngine(layer, in_type=in_type, pe=f.pe, simd=f.simd)
