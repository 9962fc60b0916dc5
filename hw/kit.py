"""The engine kit: what the engines of the layer kinds (:mod:`hwgen.hw.kinds`) share.

* stream payloads: :func:`element_shape`, :func:`vector_layout`;
* ROM contents and ROMs: :func:`pack`, :func:`pack_bits`, :func:`rom`;
* the fold-step controller: :class:`FoldStep`, :class:`FoldedEngine` (and
  :func:`check_fold`, the divisor check of its ``pe`` and ``simd``);
* thresholds: :func:`threshold_rom`, :func:`thermometer_count`, :func:`thresholded`;
* the dense engine: :class:`DenseEngine` (weight ROM, accumulators, optional threshold);
* exact-width sums of unsigned shifted terms: :class:`Term`, :func:`add_terms`,
  :func:`sum_terms`;
* :func:`single_branch`, the branch-fold check of every single-branch kind's factory.

Every engine shares one controller (:class:`FoldedEngine`). It takes a whole input vector into
an input register, then walks ``(n_out / pe) * (n_in / simd) * branch_folds`` fold steps, one
per cycle, in a three stage pipeline. A fold step is a neuron fold ``nf``, a synapse fold ``sf``
and, innermost, a branch fold ``bf`` (only multi-branch layers have more than one):

* stage 0: the step counter addresses the weight ROM;
* stage 1: the ROM word and the ``simd`` input chunk meet; ``pe`` partial results are folded
  into per-neuron accumulators;
* stage 2: after the last branch fold of the last synapse fold of a neuron fold, the ``pe``
  finished outputs (thresholded or not) shift into the output register.

ROMs are read one cycle after their address in both weight modes: a block RAM through its
synchronous read port, a LUT ROM through a combinational read port and a register. A ROM of a
single word is a constant, so a fully parallel layer has its weights folded into the logic.

Thresholds (one level, :class:`hwgen.sw.core.ir.Threshold`, or L levels,
:class:`hwgen.sw.core.ir.MultiThreshold`) live in a ROM of one word per neuron fold, stored as
``t + flip`` so that ``acc <= t`` is ``not (acc >= t + 1)``: one ``>=`` comparator per level,
its result xored with the row's flip bit. Rows are sorted, so the L comparison bits of a neuron
form a thermometer code, and the output code (their count) is decoded from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.hw.resources import WEIGHT_MODES
from hwgen.sw.core import ir

__all__ = [
    "element_shape", "vector_layout", "pack", "pack_bits", "rom", "check_fold", "FoldStep",
    "FoldedEngine", "threshold_rom", "thermometer_count", "thresholded", "DenseEngine", "Term",
    "add_terms", "sum_terms", "single_branch",
]

# cycles between two starts that are not fold steps: the start, then stages 1 and 2 of the last
_START_TO_VALID = 3


def element_shape(t: ir.TensorType) -> Shape:
    """Amaranth shape of one element of type ``t``; a bipolar element is ``unsigned(1)``."""
    return signed(t.bits) if t.kind == "signed" else unsigned(t.bits)


def vector_layout(t: ir.TensorType, n: int) -> data.ArrayLayout:
    """Stream payload layout of a vector of ``n`` elements of type ``t``."""
    return data.ArrayLayout(element_shape(t), n)


def pack(fields: list[int], width: int) -> int:
    """Concatenate two's complement ``fields`` of ``width`` bits each, the first lowest."""
    mask = (1 << width) - 1
    return sum((int(v) & mask) << (i * width) for i, v in enumerate(fields))


def pack_bits(bits: np.ndarray) -> list[int]:
    """One integer per row of a (rows, width) 0/1 array, column 0 the lowest bit."""
    packed = np.packbits(np.asarray(bits, dtype=np.uint8), axis=-1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def rom(m: Module, name: str, words: list[int], width: int, addr: Value, mode: str) -> Value:
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


def check_fold(name: str, value, n: int, what: str) -> int:
    """``value`` when it is a positive divisor of ``n`` (the ``what``, e.g. "output count"),
    else ValueError naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or n % value:
        raise ValueError(f"{name} must be a positive divisor of the {what} {n}, not {value!r}")
    return value


@dataclass(frozen=True)
class FoldStep:
    """Controller signals handed to an engine's datapath (see the module docs for stages)."""

    addr: Value       # stage 0: fold step, (nf * synapse_folds + sf) * branch_folds + bf,
    #                   the weight ROM address
    running: Value    # stage 0: ``addr`` holds a fold step (it moves on to the next one)
    valid: Value      # stage 1: a fold step is here
    first: Value      # stage 1: it is the first step of its neuron fold (sf == 0 and bf == 0)
    sf: Value         # stage 1: its synapse fold
    nf: Value         # stage 1: its neuron fold
    x: data.View      # stage 1: the simd input elements of synapse fold ``sf``
    bf: Value         # stage 1: its branch fold (zero bits wide with a single branch fold)


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
    branch_folds : int
        Cycles spent on each synapse fold, the innermost loop (the branches of a multi-branch
        layer spread in time); 1 for every other kind.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(in_shape, n_in)))``
        One input vector per transfer.
    o_stream : ``Out(stream.Signature(ArrayLayout(out_shape, n_out)))``
        One output vector per transfer.

    Latency is ``fold_steps + 4`` cycles from an input transfer to ``o_stream.valid`` when the
    engine is idle; throughput is one vector per ``fold_steps + 3`` cycles when the output is
    taken as soon as it is valid, ``fold_steps = (n_out / pe) * (n_in / simd) * branch_folds``.
    """

    def __init__(self, *, n_in: int, n_out: int, in_type: ir.TensorType,
                 out_type: ir.TensorType, pe: int, simd: int, branch_folds: int = 1):
        self.n_in, self.n_out = n_in, n_out
        self.in_type, self.out_type = in_type, out_type
        self.pe = check_fold("pe", pe, n_out, "output count")
        self.simd = check_fold("simd", simd, n_in, "input count")
        if not isinstance(branch_folds, int) or isinstance(branch_folds, bool) or \
                branch_folds < 1:
            raise ValueError(f"branch_folds must be a positive integer, not {branch_folds!r}")
        self.branch_folds = branch_folds
        self.neuron_folds = n_out // pe
        self.synapse_folds = n_in // simd
        super().__init__({
            "i_stream": In(stream.Signature(vector_layout(in_type, n_in))),
            "o_stream": Out(stream.Signature(vector_layout(out_type, n_out))),
        })

    @property
    def fold_steps(self) -> int:
        """Compute cycles per vector: ``(n_out / pe) * (n_in / simd) * branch_folds``."""
        return self.neuron_folds * self.synapse_folds * self.branch_folds

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
        sfs, bfs, steps = self.synapse_folds, self.branch_folds, self.fold_steps
        elem_bits = Shape.cast(element_shape(self.in_type)).width

        x_reg = Signal.like(self.i_stream.payload)
        x_full = Signal()
        busy = Signal()      # from the start of a vector until its output is handed on
        running = Signal()   # stage 0 holds a fold step
        addr = Signal(range(steps))
        bf = Signal(range(bfs))
        sf = Signal(range(sfs))
        nf = Signal(range(self.neuron_folds))
        s1_valid, s1_first, s1_done, s2_valid, s2_done = (Signal(name=n) for n in (
            "s1_valid", "s1_first", "s1_done", "s2_valid", "s2_done"))
        s1_bf = Signal.like(bf)
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

        # the branch fold loop is innermost; with one branch fold it is left out altogether
        last_sf = sf == sfs - 1
        first, s1_last = sf == 0, s1_sf == sfs - 1
        with m.If(running):
            m.d.sync += [addr.eq(addr + 1), sf.eq(Mux(last_sf, 0, sf + 1))]
            with m.If(last_sf):
                m.d.sync += nf.eq(nf + 1)
            with m.If(addr == steps - 1):
                m.d.sync += [running.eq(0), addr.eq(0), nf.eq(0)]
            if bfs > 1:
                last_bf = bf == bfs - 1
                m.d.sync += bf.eq(Mux(last_bf, 0, bf + 1))
                with m.If(~last_bf):     # sf and nf move on after the last branch fold only
                    m.d.sync += [sf.eq(sf), nf.eq(nf)]
        if bfs > 1:
            first, s1_last = first & (bf == 0), s1_last & (s1_bf == bfs - 1)
            m.d.sync += s1_bf.eq(bf)
        m.d.sync += [
            s1_valid.eq(running), s1_first.eq(first), s1_sf.eq(sf), s1_nf.eq(nf),
            s1_done.eq(running & (addr == steps - 1)),
            s2_valid.eq(s1_valid & s1_last), s2_done.eq(s1_done),
        ]
        with m.If(s1_done):
            m.d.sync += x_full.eq(0)

        # with one synapse fold the chunk is the whole register: no index scaled by the chunk
        # width (which the Verilog backend would emit as a multiplication by a constant)
        x_all = x_reg.as_value()
        x_chunk = data.ArrayLayout(element_shape(self.in_type), self.simd)(
            x_all if sfs == 1 else x_all.word_select(s1_sf, self.simd * elem_bits))
        outputs = Cat(*self.datapath(m, FoldStep(addr=addr, running=running, valid=s1_valid,
                                                 first=s1_first, sf=s1_sf, nf=s1_nf, x=x_chunk,
                                                 bf=s1_bf)))
        with m.If(s2_valid):
            # fold nf enters at the top; after the last fold, fold 0 is at the bottom
            m.d.sync += out_reg.eq(Cat(out_reg.as_value()[len(outputs):], outputs))
        with m.If(s2_done):
            m.d.sync += o_valid.eq(1)
        return m


def threshold_rom(m: Module, threshold, lo: int, hi: int, pe: int, addr: Value,
                  mode: str) -> tuple[Value, ir.TensorType, int]:
    """ROM of a (multi-)threshold's rows for an accumulator in ``lo..hi``, one word per ``pe``
    rows, read one cycle after ``addr``; returns ``(word, t_type, levels)``.

    A row is its L levels ``t + flip`` (``acc <= t`` is ``not (acc >= t + 1)``) as ``t_type``
    fields, then its flip bit. Clamping first changes no output (every acc lies in
    ``[lo, hi]``), and bounds the stored levels to ``lo - 1 .. hi + 2``.
    """
    th = threshold.clamp(lo, hi)
    t = th.t.reshape(len(th.flip), -1) + th.flip[:, None]
    levels = t.shape[1]
    steps = np.diff(t, axis=1)
    if np.any(np.where(th.flip[:, None], steps > 0, steps < 0)):
        # the output code is decoded as a thermometer code, which needs sorted rows
        raise ValueError("multi-threshold rows must be sorted (descending where flipped)")
    t_type = ir.TensorType.for_range(lo - 1, hi + 2)
    field = levels * t_type.bits + 1
    rows = [pack([*row.tolist(), int(f)], t_type.bits) for row, f in zip(t, th.flip)]
    words = [pack(rows[g * pe:(g + 1) * pe], field) for g in range(len(rows) // pe)]
    return rom(m, "thresholds", words, pe * field, addr, mode), t_type, levels


def thermometer_count(bits: list[Value]) -> Value:
    """Count of ones of a thermometer code (``bits[l]`` set exactly for ``l < count``).

    Bit b of the count is set when ``count // 2^b`` is odd, and ``count // 2^b == q`` is
    ``bits[q 2^b - 1] & ~bits[(q + 1) 2^b - 1]``: about one gate per level in all.
    """
    n = len(bits)
    out = []
    for b in range(n.bit_length()):
        terms = []
        for q in range(1, (n >> b) + 1, 2):
            lo, hi = (q << b) - 1, ((q + 1) << b) - 1
            terms.append(bits[lo] & ~bits[hi] if hi < n else bits[lo])
        out.append(Cat(*terms).any())
    return Cat(*out)


def thresholded(accs: list[Value], word: Value, t_type: ir.TensorType,
                levels: int) -> list[Value]:
    """Per accumulator, its threshold row's code: one ``>=`` per level, xored with the flip
    bit; sorted rows make the level bits a thermometer code (see :func:`threshold_rom`)."""
    tb = t_type.bits
    field = levels * tb + 1
    outs = []
    for p, acc in enumerate(accs):
        base = p * field
        flip = word[base + levels * tb]
        passed = []
        for level in range(levels):
            t = word[base + level * tb:base + (level + 1) * tb]
            t = t.as_signed() if t_type.kind == "signed" else t
            passed.append((acc >= t) ^ flip)
        outs.append(passed[0] if levels == 1 else thermometer_count(passed))
    return outs


class DenseEngine(FoldedEngine):
    """Dense layer: weight ROM, per-neuron accumulators, then an optional (multi-)threshold.

    Subclasses provide :meth:`partial`, and may change the weight bits a step needs
    (:meth:`weight_bits`), how they are stored (:meth:`weight_rom`) and what every neuron of
    a step shares (:meth:`prepare`).
    """

    def __init__(self, layer: ir.Layer, *, in_type: ir.TensorType, pe: int = 1, simd: int = 1,
                 weights: str = "logic", branch_folds: int = 1):
        if weights not in WEIGHT_MODES:
            raise ValueError(f"weights must be one of {WEIGHT_MODES}, not {weights!r}")
        self.layer, self.weights = layer, weights
        self.acc_lo, self.acc_hi = layer.acc_range(in_type)
        self.acc_type = layer.acc_type(in_type)
        super().__init__(n_in=layer.n_in, n_out=layer.n_out, in_type=in_type,
                         out_type=layer.out_type(in_type), pe=pe, simd=simd,
                         branch_folds=branch_folds)

    def prepare(self, m: Module, step: FoldStep):
        """What every neuron's :meth:`partial` takes from the step: the input chunk."""
        return step.x

    def partial(self, m: Module, x, w: Value) -> Value:
        """This step's contribution to one neuron's accumulator; ``x`` is what :meth:`prepare`
        returned, ``w`` the neuron's weight bits of the step."""
        raise NotImplementedError

    def weight_bits(self) -> np.ndarray:
        """(fold_steps, pe, simd) 0/1: the weight of neuron nf*pe+p, input sf*simd+s at step
        nf * synapse_folds + sf."""
        w = self.layer.weights.reshape(self.neuron_folds, self.pe, self.synapse_folds, self.simd)
        return w.transpose(0, 2, 1, 3).reshape(self.fold_steps, self.pe, self.simd)

    def weight_rom(self, m: Module, step: FoldStep) -> tuple[Value, int]:
        """The weight word of the step in stage 1 and the bits it holds per neuron."""
        bits = self.weight_bits()
        rows, pe, width = bits.shape
        return rom(m, "weights", pack_bits(bits.reshape(rows, pe * width)), pe * width,
                   step.addr, self.weights), width

    def datapath(self, m: Module, step: FoldStep) -> list[Value]:
        pe = self.pe
        w_word, width = self.weight_rom(m, step)
        shared = self.prepare(m, step)
        accs = [Signal(element_shape(self.acc_type), name=f"acc{p}") for p in range(pe)]
        for p, acc in enumerate(accs):
            part = self.partial(m, shared, w_word[p * width:(p + 1) * width])
            with m.If(step.valid):
                m.d.sync += acc.eq(Mux(step.first, 0, acc) + part)
        if self.layer.threshold is None:
            return accs
        # read with the last step's nf in stage 1, so the word is there with the accumulators
        t_word, t_type, levels = threshold_rom(m, self.layer.threshold, self.acc_lo,
                                               self.acc_hi, pe, step.nf, self.weights)
        return thresholded(accs, t_word, t_type, levels)


@dataclass
class Term:
    """An unsigned summand worth ``value << shift``; ``bound`` is its largest true value (not
    shifted down) at each fold step of its neuron lane."""

    value: Value
    shift: int
    bound: np.ndarray


def add_terms(a: Term, b: Term) -> Term:
    """``a + b`` as wide as the larger sum of their bounds; the bits of the less shifted term
    below the other's shift are wiring, as is all of it when the two do not overlap."""
    if a.shift > b.shift:
        a, b = b, a
    d = b.shift - a.shift
    bound = a.bound + b.bound
    width = ir.unsigned_bits(int(bound.max()) >> a.shift)
    if len(a.value) <= d:
        pad = [Const(0, d - len(a.value))] if d > len(a.value) else []
        value = Cat(a.value, *pad, b.value)
    else:
        value = Cat(a.value[:d], a.value[d:] + b.value)
    return Term(value[:width], a.shift, bound)


def sum_terms(terms: list[Term]) -> Value:
    """The sum of unsigned ``terms`` by a balanced tree of two-input adders, partial sums as
    wide as their exact bounds, terms of like size paired first."""
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        terms = sorted(terms, key=lambda t: (int(t.bound.max()), t.shift))
        paired = [add_terms(terms[i], terms[i + 1]) for i in range(0, len(terms) - 1, 2)]
        terms = paired + terms[len(paired) * 2:]
    t = terms[0]
    return Cat(Const(0, t.shift), t.value) if t.shift else t.value


def single_branch(layer: ir.Layer, folding) -> None:
    """Raise ValueError unless ``folding`` has one branch fold: an engine factory's check for
    a kind without branches (only ``dense_mbbn`` has them)."""
    if folding.branch_folds != 1:
        raise ValueError(f"{layer.name}: branch_folds must be 1 for a {layer.kind} layer "
                         f"(only dense_mbbn has branches), not {folding.branch_folds!r}")
