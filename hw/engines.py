"""Layer engines: one folded stream component per IR layer kind, found through :data:`ENGINES`.

Every engine shares one controller (:class:`FoldedEngine`). It takes a whole input vector into
an input register, then walks ``(n_out / pe) * (n_in / simd)`` fold steps, one per cycle, in a
three stage pipeline:

* stage 0: the step counter addresses the weight ROM;
* stage 1: the ROM word and the ``simd`` input chunk meet; ``pe`` partial results are folded
  into per-neuron accumulators;
* stage 2: after the last synapse fold of a neuron fold, the ``pe`` finished outputs
  (thresholded or not) shift into the output register.

ROMs are read one cycle after their address in both weight modes: a block RAM through its
synchronous read port, a LUT ROM through a combinational read port and a register. A ROM of a
single word is a constant, so a fully parallel layer has its weights folded into the logic.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.hw.popcount import adder_tree, popcount
from hwgen.sw import ir

__all__ = [
    "WEIGHT_MODES", "element_shape", "vector_layout", "FoldedEngine", "DenseIntBinWEngine",
    "XnorPopcountEngine", "ArgMaxEngine", "ENGINES",
]

WEIGHT_MODES = ("logic", "bram")

# cycles between two starts that are not fold steps: the start, then stages 1 and 2 of the last
_START_TO_VALID = 3


def element_shape(t: ir.TensorType) -> Shape:
    """Amaranth shape of one element of type ``t``; a bipolar element is ``unsigned(1)``."""
    return signed(t.bits) if t.kind == "signed" else unsigned(t.bits)


def vector_layout(t: ir.TensorType, n: int) -> data.ArrayLayout:
    """Stream payload layout of a vector of ``n`` elements of type ``t``."""
    return data.ArrayLayout(element_shape(t), n)


def _pack(fields: list[int], width: int) -> int:
    """Concatenate two's complement ``fields`` of ``width`` bits each, the first lowest."""
    mask = (1 << width) - 1
    return sum((int(v) & mask) << (i * width) for i, v in enumerate(fields))


def _rom(m: Module, name: str, words: list[int], width: int, addr: Value, mode: str) -> Value:
    """``words[addr]``, one cycle after ``addr``; a constant when there is a single word."""
    if len(words) == 1:
        return Const(words[0], width)
    # yosys would otherwise choose by size: a LUT ROM's data register merged into an EBR read
    # port, or a small ROM in LUTs; the attribute keeps the mapping that the estimate counts
    mem = m.submodules[name] = Memory(shape=unsigned(width), depth=len(words), init=words,
                                      attrs={"rom_style": "logic" if mode == "logic" else "block"})
    if mode == "bram":
        port = mem.read_port()
        m.d.comb += port.addr.eq(addr)
        return port.data
    port = mem.read_port(domain="comb")
    word = Signal(width, name=f"{name}_data")
    m.d.comb += port.addr.eq(addr)
    m.d.sync += word.eq(port.data)
    return word


def _check_fold(name: str, value, n: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or n % value:
        raise ValueError(f"{name} must be a positive divisor of the {what} {n}, not {value!r}")
    return value


@dataclass(frozen=True)
class FoldStep:
    """Controller signals handed to an engine's datapath (see the module docs for stages)."""

    addr: Value       # stage 0: fold step, nf * synapse_folds + sf, the weight ROM address
    valid: Value      # stage 1: a fold step is here
    first: Value      # stage 1: it is the first synapse fold of its neuron fold
    sf: Value         # stage 1: its synapse fold
    nf: Value         # stage 1: its neuron fold
    x: data.View      # stage 1: the simd input elements of synapse fold ``sf``


class FoldedEngine(wiring.Component):
    """Folded stream engine: the controller shared by every layer kind.

    Subclasses provide :meth:`datapath`. The input register is free again once the last fold
    step has used it, so the next vector can be taken while the output waits; computing it
    starts when the output register is handed on.

    Parameters
    ----------
    n_in, n_out : int
        Input and output vector lengths.
    in_type, out_type : TensorType
        Element types of the two streams.
    pe : int
        Output neurons computed in parallel; divides ``n_out``.
    simd : int
        Input elements consumed per cycle and neuron; divides ``n_in``.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(in_shape, n_in)))``
        One input vector per transfer.
    o_stream : ``Out(stream.Signature(ArrayLayout(out_shape, n_out)))``
        One output vector per transfer.

    Latency is ``fold_steps + 4`` cycles from an input transfer to ``o_stream.valid`` when the
    engine is idle; throughput is one vector per ``fold_steps + 3`` cycles when the output is
    taken as soon as it is valid, ``fold_steps = (n_out / pe) * (n_in / simd)``.
    """

    def __init__(self, *, n_in: int, n_out: int, in_type: ir.TensorType,
                 out_type: ir.TensorType, pe: int, simd: int):
        self.n_in, self.n_out = n_in, n_out
        self.in_type, self.out_type = in_type, out_type
        self.pe = _check_fold("pe", pe, n_out, "output count")
        self.simd = _check_fold("simd", simd, n_in, "input count")
        self.neuron_folds = n_out // pe
        self.synapse_folds = n_in // simd
        super().__init__({
            "i_stream": In(stream.Signature(vector_layout(in_type, n_in))),
            "o_stream": Out(stream.Signature(vector_layout(out_type, n_out))),
        })

    @property
    def fold_steps(self) -> int:
        """Compute cycles per vector: ``(n_out / pe) * (n_in / simd)``."""
        return self.neuron_folds * self.synapse_folds

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to ``o_stream.valid``, the engine idle."""
        return self.fold_steps + _START_TO_VALID + 1

    @property
    def interval(self) -> int:
        """Cycles per vector when inputs wait and the output is taken as soon as it is valid."""
        return self.fold_steps + _START_TO_VALID

    def datapath(self, m: Module, step: FoldStep) -> list[Value]:
        """Build the datapath; return the ``pe`` outputs of the neuron fold in stage 2."""
        raise NotImplementedError

    def elaborate(self, platform) -> Module:
        m = Module()
        sfs, steps = self.synapse_folds, self.fold_steps
        elem_bits = Shape.cast(element_shape(self.in_type)).width

        x_reg = Signal.like(self.i_stream.payload)
        x_full = Signal()
        busy = Signal()      # from the start of a vector until its output is handed on
        running = Signal()   # stage 0 holds a fold step
        addr = Signal(range(steps))
        sf = Signal(range(sfs))
        nf = Signal(range(self.neuron_folds))
        s1_valid, s1_first, s1_done, s2_valid, s2_done = (Signal(name=n) for n in (
            "s1_valid", "s1_first", "s1_done", "s2_valid", "s2_done"))
        s1_sf = Signal.like(sf)
        s1_nf = Signal.like(nf)
        out_reg = Signal.like(self.o_stream.payload)
        o_valid = Signal()

        m.d.comb += [
            self.i_stream.ready.eq(~x_full),
            self.o_stream.valid.eq(o_valid),
            self.o_stream.payload.eq(out_reg),
        ]
        with m.If(self.i_stream.valid & ~x_full):
            m.d.sync += [x_reg.eq(self.i_stream.payload), x_full.eq(1)]

        handed_on = self.o_stream.valid & self.o_stream.ready
        with m.If(handed_on):
            m.d.sync += [o_valid.eq(0), busy.eq(0)]
        with m.If(x_full & (~busy | handed_on)):
            m.d.sync += [busy.eq(1), running.eq(1)]

        last_sf = sf == sfs - 1
        with m.If(running):
            m.d.sync += [addr.eq(addr + 1), sf.eq(Mux(last_sf, 0, sf + 1))]
            with m.If(last_sf):
                m.d.sync += nf.eq(nf + 1)
            with m.If(addr == steps - 1):
                m.d.sync += [running.eq(0), addr.eq(0), nf.eq(0)]
        m.d.sync += [
            s1_valid.eq(running), s1_first.eq(sf == 0), s1_sf.eq(sf), s1_nf.eq(nf),
            s1_done.eq(running & (addr == steps - 1)),
            s2_valid.eq(s1_valid & (s1_sf == sfs - 1)), s2_done.eq(s1_done),
        ]
        with m.If(s1_done):
            m.d.sync += x_full.eq(0)

        x_chunk = data.ArrayLayout(element_shape(self.in_type), self.simd)(
            x_reg.as_value().word_select(s1_sf, self.simd * elem_bits))
        outputs = Cat(*self.datapath(m, FoldStep(addr=addr, valid=s1_valid, first=s1_first,
                                                 sf=s1_sf, nf=s1_nf, x=x_chunk)))
        with m.If(s2_valid):
            # fold nf enters at the top; after the last fold, fold 0 is at the bottom
            m.d.sync += out_reg.eq(Cat(out_reg.as_value()[len(outputs):], outputs))
        with m.If(s2_done):
            m.d.sync += o_valid.eq(1)
        return m


class _DenseEngine(FoldedEngine):
    """Binary-weight dense layer: per-neuron accumulators, then an optional threshold."""

    def __init__(self, layer: ir.Layer, *, in_type: ir.TensorType, pe: int = 1, simd: int = 1,
                 weights: str = "logic"):
        if weights not in WEIGHT_MODES:
            raise ValueError(f"weights must be one of {WEIGHT_MODES}, not {weights!r}")
        self.layer, self.weights = layer, weights
        self.acc_lo, self.acc_hi = layer.acc_range(in_type)
        self.acc_type = layer.acc_type(in_type)
        super().__init__(n_in=layer.n_in, n_out=layer.n_out, in_type=in_type,
                         out_type=layer.out_type(in_type), pe=pe, simd=simd)

    def partial(self, m: Module, x: data.View, w: Value) -> Value:
        """This step's contribution to one neuron's accumulator; ``w`` holds simd weight bits."""
        raise NotImplementedError

    def _weight_words(self) -> list[int]:
        # word of step nf * sf_count + sf, bit p * simd + s: weight of neuron nf*pe+p, input sf*simd+s
        w = self.layer.weights.reshape(self.neuron_folds, self.pe, self.synapse_folds, self.simd)
        rows = w.transpose(0, 2, 1, 3).reshape(self.fold_steps, self.pe * self.simd)
        return [_pack(row.tolist(), 1) for row in rows]

    def _threshold_words(self, t_type: ir.TensorType) -> list[int]:
        # acc <= t is not (acc >= t + 1): one >= comparator, its result xored with flip.
        # Clamping first changes no output (every acc lies in [acc_lo, acc_hi]).
        th = self.layer.threshold.clamp(self.acc_lo, self.acc_hi)
        t = (th.t + th.flip).reshape(self.neuron_folds, self.pe)
        flip = th.flip.reshape(self.neuron_folds, self.pe)
        return [_pack([_pack([tv, int(fv)], t_type.bits) for tv, fv in zip(t_row, f_row)],
                      t_type.bits + 1) for t_row, f_row in zip(t, flip)]

    def datapath(self, m: Module, step: FoldStep) -> list[Value]:
        pe, simd = self.pe, self.simd
        w_word = _rom(m, "weights", self._weight_words(), pe * simd, step.addr, self.weights)
        accs = [Signal(element_shape(self.acc_type), name=f"acc{p}") for p in range(pe)]
        for p, acc in enumerate(accs):
            part = self.partial(m, step.x, w_word[p * simd:(p + 1) * simd])
            with m.If(step.valid):
                m.d.sync += acc.eq(Mux(step.first, 0, acc) + part)
        if self.layer.threshold is None:
            return accs
        t_type = ir.TensorType.for_range(self.acc_lo - 1, self.acc_hi + 2)
        field = t_type.bits + 1
        t_word = _rom(m, "thresholds", self._threshold_words(t_type), pe * field, step.nf,
                      self.weights)
        outs = []
        for p, acc in enumerate(accs):
            t = t_word[p * field:p * field + t_type.bits]
            t = t.as_signed() if t_type.kind == "signed" else t
            outs.append((acc >= t) ^ t_word[p * field + t_type.bits])
        return outs


class DenseIntBinWEngine(_DenseEngine):
    """Dense layer with binary weights on integer inputs (:class:`hwgen.sw.ir.DenseIntBinW`).

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
    ``F = (n_out / pe) * (n_in / simd)`` (see :class:`FoldedEngine`).
    """

    def partial(self, m: Module, x: data.View, w: Value) -> Value:
        # -x = ~x + 1 in two's complement: invert where the weight is -1, add the count of -1s
        terms = []
        for s in range(self.simd):
            xs = x[s] if self.in_type.kind == "signed" else Cat(x[s], 0).as_signed()
            terms.append(Mux(w[s], xs, ~xs))
        return adder_tree(terms) + popcount(m, ~w)


class XnorPopcountEngine(_DenseEngine):
    """xnor-popcount dense layer on bipolar inputs (:class:`hwgen.sw.ir.DenseBinary`).

    Per cycle and neuron, ``popcount(xnor(x_chunk, w_chunk))`` over ``simd`` bits (through
    :func:`hwgen.hw.popcount.popcount`), ``pe`` neurons in parallel, accumulated to
    ``0..n_in``. With a threshold each output is a bipolar bit, otherwise the popcount.

    Parameters
    ----------
    layer : DenseBinary
    in_type : TensorType
        Bipolar.
    pe, simd, weights
        As for :class:`DenseIntBinWEngine`.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(unsigned(1), n_in)))``
    o_stream : ``Out(stream.Signature(ArrayLayout(out_shape, n_out)))``
        ``unsigned(1)`` elements with a threshold, ``unsigned(bits(n_in))`` without.

    Latency is ``F + 4`` cycles and throughput one vector per ``F + 3`` cycles,
    ``F = (n_out / pe) * (n_in / simd)`` (see :class:`FoldedEngine`).
    """

    def partial(self, m: Module, x: data.View, w: Value) -> Value:
        return popcount(m, ~(x.as_value() ^ w))


class ArgMaxEngine(FoldedEngine):
    """Index of the largest element, ties to the lowest index (:class:`hwgen.sw.ir.ArgMax`).

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


ENGINES = {
    ir.DenseIntBinW.kind: lambda layer, in_type, f: DenseIntBinWEngine(
        layer, in_type=in_type, pe=f.pe, simd=f.simd, weights=f.weights),
    ir.DenseBinary.kind: lambda layer, in_type, f: XnorPopcountEngine(
        layer, in_type=in_type, pe=f.pe, simd=f.simd, weights=f.weights),
    # argmax has no weights, so the folding's weight mode does not apply
    ir.ArgMax.kind: lambda layer, in_type, f: ArgMaxEngine(
        layer, in_type=in_type, pe=f.pe, simd=f.simd),
}
"""Engine factory per IR layer kind: ``ENGINES[kind](layer, in_type, folding) -> FoldedEngine``."""
