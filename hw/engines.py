"""Layer engines: one folded stream component per IR layer kind, found through :data:`ENGINES`.

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

Thresholds (one level, :class:`hwgen.sw.ir.Threshold`, or L levels,
:class:`hwgen.sw.ir.MultiThreshold`) live in a ROM of one word per neuron fold, stored as
``t + flip`` so that ``acc <= t`` is ``not (acc >= t + 1)``: one ``>=`` comparator per level,
its result xored with the row's flip bit. Rows are sorted, so the L comparison bits of a neuron
form a thermometer code, and the output code (their count) is decoded from it.

Multi-branch layers (:class:`MBBNEngine`) spread their M * K branches over ``branch_folds``
cycles; see there for how the branch shifts stay wiring plus one small shifter per neuron.
Shift-accumulate layers (:class:`ShiftAccumulateEngine`) multiply by power-of-two weights
with wiring (constant weights) or a small shifter per term (folded weights), never a ``*``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.hw.popcount import adder_tree, popcount
from hwgen.sw import ir

__all__ = [
    "WEIGHT_MODES", "element_shape", "vector_layout", "FoldStep", "FoldedEngine",
    "DenseIntBinWEngine", "XnorPopcountEngine", "MBBNEngine", "MultiThresholdEngine",
    "ArgMaxEngine", "ShiftAccumulateEngine", "branch_split", "shift_digits", "ENGINES",
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


def _pack_bits(bits: np.ndarray) -> list[int]:
    """One integer per row of a (rows, width) 0/1 array, column 0 the lowest bit."""
    packed = np.packbits(np.asarray(bits, dtype=np.uint8), axis=-1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


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
        self.pe = _check_fold("pe", pe, n_out, "output count")
        self.simd = _check_fold("simd", simd, n_in, "input count")
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


def _threshold_rom(m: Module, threshold, lo: int, hi: int, pe: int, addr: Value,
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
    rows = [_pack([*row.tolist(), int(f)], t_type.bits) for row, f in zip(t, th.flip)]
    words = [_pack(rows[g * pe:(g + 1) * pe], field) for g in range(len(rows) // pe)]
    return _rom(m, "thresholds", words, pe * field, addr, mode), t_type, levels


def _thermometer_count(bits: list[Value]) -> Value:
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


def _thresholded(accs: list[Value], word: Value, t_type: ir.TensorType,
                 levels: int) -> list[Value]:
    """Per accumulator, its threshold row's code: one ``>=`` per level, xored with the flip
    bit; sorted rows make the level bits a thermometer code (see :func:`_threshold_rom`)."""
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
        outs.append(passed[0] if levels == 1 else _thermometer_count(passed))
    return outs


class _DenseEngine(FoldedEngine):
    """Dense layer: weight ROM, per-neuron accumulators, then an optional (multi-)threshold.

    Subclasses provide :meth:`partial`, and may change the weight bits a step needs
    (:meth:`_weight_bits`), how they are stored (:meth:`weight_rom`) and what every neuron of
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

    def _weight_bits(self) -> np.ndarray:
        """(fold_steps, pe, simd) 0/1: the weight of neuron nf*pe+p, input sf*simd+s at step
        nf * synapse_folds + sf."""
        w = self.layer.weights.reshape(self.neuron_folds, self.pe, self.synapse_folds, self.simd)
        return w.transpose(0, 2, 1, 3).reshape(self.fold_steps, self.pe, self.simd)

    def weight_rom(self, m: Module, step: FoldStep) -> tuple[Value, int]:
        """The weight word of the step in stage 1 and the bits it holds per neuron."""
        bits = self._weight_bits()
        rows, pe, width = bits.shape
        return _rom(m, "weights", _pack_bits(bits.reshape(rows, pe * width)), pe * width,
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
        t_word, t_type, levels = _threshold_rom(m, self.layer.threshold, self.acc_lo,
                                                self.acc_hi, pe, step.nf, self.weights)
        return _thresholded(accs, t_word, t_type, levels)


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


def branch_split(m_bits: int, k_bits: int, branch_folds: int,
                 constant_weights: bool = False) -> tuple[int, int]:
    """How :class:`MBBNEngine` spreads M * K branches over ``branch_folds`` cycles.

    Returns ``(b_m, b_k)`` with ``b_m * b_k == branch_folds``, ``b_m`` dividing M and ``b_k``
    dividing K (every divisor of M * K splits so). A step takes every ``b_m``-th input digit
    plane and every ``b_k``-th weight digit plane. Spreading weight digits in time costs no
    multiplexer (the ROM word holds the planes a step needs), so ``b_k`` is made as large as
    possible; but when the weights would otherwise be constants (``constant_weights``: one
    neuron fold and one synapse fold), input digits go first, so they stay constants.
    """
    if m_bits * k_bits % branch_folds:
        raise ValueError(f"branch_folds must divide M * K = {m_bits * k_bits}, "
                         f"not {branch_folds!r}")
    if constant_weights:
        b_m = math.gcd(branch_folds, m_bits)
        return b_m, branch_folds // b_m
    b_k = math.gcd(branch_folds, k_bits)
    return branch_folds // b_k, b_k


class MBBNEngine(_DenseEngine):
    """Multi-branch binary dense layer (:class:`hwgen.sw.ir.DenseMBBN`), M-bit odd inputs and
    K-bit odd weights.

    ``acc_j = sum_{m,k} 2^(m+k) popcount(xnor(x_m, w_jk))`` over digit planes (bit m of the
    input codes, bit k of the weight codes), ``simd`` inputs per cycle and neuron, ``pe``
    neurons in parallel, accumulated to the layer's exact accumulator range. With a
    :class:`hwgen.sw.ir.MultiThreshold` each output is the code ``#{l : acc >= t_l}`` (the
    flipped rows count ``acc <= t_l``) from L comparators, otherwise the accumulator.

    **Branches in time.** With ``branch_folds = b_m * b_k`` (:func:`branch_split`) a step
    ``bf = j * b_m + i`` computes the ``M K / branch_folds`` branches of input digits
    ``m = m' b_m + i`` and weight digits ``k = k' b_k + j``. Branch (m, k) is shifted by
    ``m + k = (m' b_m + k' b_k) + (i + j)``: the first part is fixed per branch unit, so it
    is wiring (units of one fixed shift share a single popcount over all their xnor bits),
    and the second is common to the whole step, so each neuron shifts its summed branches by
    ``i + j`` through one small shifter of ``ceil(log2(b_m + b_k - 1))`` multiplexer levels.
    The ``b_m`` input planes a unit takes in turn go through one multiplexer shared by all
    neurons; the weight ROM word of a step holds just the ``K / b_k`` weight planes it needs,
    one row per ``(nf, sf, j)``, addressed by the step address without its low bits when
    ``b_m`` is a power of two and by a row counter otherwise. With ``branch_folds == 1`` every
    branch is computed at once and every shift is wiring.

    Parameters
    ----------
    layer : DenseMBBN
    in_type : TensorType
        ``odd_type(layer.m_bits)``: bipolar for M = 1, odd M otherwise.
    pe : int
        Neurons in parallel; divides ``layer.n_out``.
    simd : int
        Inputs per cycle; divides ``layer.n_in``.
    weights : ``"logic"`` or ``"bram"``
        Weight and threshold ROMs in LUTs or in block RAM.
    branch_folds : int
        Cycles per synapse fold over which the M * K branches are spread; divides M * K.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(unsigned(M), n_in)))``
    o_stream : ``Out(stream.Signature(ArrayLayout(out_shape, n_out)))``
        The threshold's code type with a threshold, the accumulator type without.

    Latency is ``F + 4`` cycles and throughput one vector per ``F + 3`` cycles,
    ``F = (n_out / pe) * (n_in / simd) * branch_folds`` (see :class:`FoldedEngine`).
    """

    def __init__(self, layer: ir.DenseMBBN, *, in_type: ir.TensorType, pe: int = 1,
                 simd: int = 1, weights: str = "logic", branch_folds: int = 1):
        _check_fold("branch_folds", branch_folds, layer.m_bits * layer.k_bits,
                    "branch count M * K")
        super().__init__(layer, in_type=in_type, pe=pe, simd=simd, weights=weights,
                         branch_folds=branch_folds)
        self.b_m, self.b_k = branch_split(layer.m_bits, layer.k_bits, branch_folds,
                                          self.neuron_folds * self.synapse_folds == 1)

    def _weight_bits(self) -> np.ndarray:
        # row (nf * synapse_folds + sf) * b_k + j, neuron p, bit k' * simd + s: digit
        # k' * b_k + j of the weight of neuron nf*pe+p, input sf*simd+s
        k_bits, b_k = self.layer.k_bits, self.b_k
        w = self.layer.weights.astype(np.int64)
        planes = (w[None] >> np.arange(k_bits)[:, None, None]) & 1
        planes = planes.reshape(k_bits // b_k, b_k, self.neuron_folds, self.pe,
                                self.synapse_folds, self.simd)
        rows = self.neuron_folds * self.synapse_folds * b_k
        return planes.transpose(2, 4, 1, 3, 0, 5).reshape(rows, self.pe,
                                                          k_bits // b_k * self.simd)

    def weight_rom(self, m: Module, step: FoldStep) -> tuple[Value, int]:
        # a weight row serves b_m consecutive steps (i is the innermost part of bf): with b_m
        # a power of two the row is the step address without its low bits, otherwise a row
        # counter moves on every b_m steps in lock step with the address
        bits = self._weight_bits()
        rows, pe, width = bits.shape
        words = _pack_bits(bits.reshape(rows, pe * width))
        addr, b_m = step.addr, self.b_m
        if rows > 1 and b_m & (b_m - 1) == 0:
            addr = step.addr[b_m.bit_length() - 1:]
        elif rows > 1:
            addr = Signal(range(rows), name="weight_row")
            i = Signal(range(b_m), name="weight_i")
            with m.If(step.running):
                with m.If(step.addr == self.fold_steps - 1):
                    m.d.sync += [addr.eq(0), i.eq(0)]
                with m.Elif(i == b_m - 1):
                    m.d.sync += [addr.eq(addr + 1), i.eq(0)]
                with m.Else():
                    m.d.sync += i.eq(i + 1)
        return _rom(m, "weights", words, pe * width, addr, self.weights), width

    def prepare(self, m: Module, step: FoldStep):
        """The input digit planes of the step's branch units, and the step's common shift."""
        m_bits, b_m, b_k, simd = self.layer.m_bits, self.b_m, self.b_k, self.simd
        # named signals, so that each neuron reads them rather than a copy of the expression
        chunk = Signal(simd * m_bits, name="x_chunk")
        m.d.comb += chunk.eq(step.x.as_value())
        planes = [Cat(*(chunk[s * m_bits + d] for s in range(simd))) for d in range(m_bits)]
        if self.branch_folds == 1:
            return planes, None
        i = Signal(range(b_m), name="branch_i")
        shift = Signal(range(b_m + b_k - 1), name="branch_shift")
        with m.Switch(step.bf):
            for bf in range(self.branch_folds):
                with m.Case(bf):
                    m.d.comb += [i.eq(bf % b_m), shift.eq(bf % b_m + bf // b_m)]
        if b_m == 1:
            return planes, shift
        # unit m' takes plane m' * b_m + i
        units = [Signal(simd, name=f"x_unit{u}") for u in range(m_bits // b_m)]
        for u, unit in enumerate(units):
            m.d.comb += unit.eq(Cat(*planes[u * b_m:(u + 1) * b_m]).word_select(i, simd))
        return units, shift

    def partial(self, m: Module, x, w: Value) -> Value:
        units, shift = x
        simd, b_m, b_k = self.simd, self.b_m, self.b_k
        groups: dict[int, list[Value]] = {}
        for u, xu in enumerate(units):
            for kp in range(len(w) // simd):
                groups.setdefault(u * b_m + kp * b_k, []).append(
                    ~(xu ^ w[kp * simd:(kp + 1) * simd]))
        # branches of one fixed shift share a popcount; the shifts are wiring. The xnor bits
        # are a named signal, so that the popcount's bit slices do not each copy the xnor.
        counts = []
        for c, bits in sorted(groups.items()):
            xnor = Signal(len(bits) * simd, name=f"xnor_s{c}")
            m.d.comb += xnor.eq(Cat(*bits))
            counts.append(popcount(m, xnor) << c)
        total = adder_tree(counts)
        return total if shift is None else total << shift


def shift_digits(t: ir.TensorType) -> tuple[int, int, int]:
    """How :class:`ShiftAccumulateEngine` sums inputs of type ``t``: ``(alpha, beta, zmax)``.

    Every input value is ``alpha * z + beta`` for an unsigned digit ``z`` in ``0 .. zmax``
    decoded from the code, and its negation is ``alpha * (zmax - z) + gamma`` with
    ``gamma = -alpha * zmax - beta``:

    * bipolar and odd M: ``z`` is the offset code ``u`` itself, ``alpha = 2``,
      ``beta = -(2^M - 1)``; ``zmax - z`` is ``~u``.
    * unsigned: ``z`` is the code, ``alpha = 1``, ``beta = 0``; ``zmax - z`` is ``~x``.
    * signed B: ``z`` is the code with its top bit flipped (offset binary),
      ``beta = -2^(B-1)``; ``zmax - z`` is ``~z``.
    * pow2 n: ``z = value + 2^(q-1)`` in ``0 .. 2^q`` (a small table per element, as is
      ``2^(q-1) - value``), ``alpha = 1``, ``beta = -2^(q-1)``, ``q = 2^(n-1) - 1``.
    """
    if t.digits:
        return 2, -t.hi, t.hi
    if t.kind == "pow2":
        q = t.hi // 2
        return 1, -(1 << (q - 1)), 1 << q
    if t.kind == "signed":
        return 1, t.lo, (1 << t.bits) - 1
    return 1, 0, t.hi


@dataclass
class _Term:
    """An unsigned summand worth ``value << shift``; ``bound`` is its largest true value (not
    shifted down) at each fold step of its neuron lane."""

    value: Value
    shift: int
    bound: np.ndarray


def _add_terms(a: _Term, b: _Term) -> _Term:
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
    return _Term(value[:width], a.shift, bound)


def _sum_terms(terms: list[_Term]) -> Value:
    """The sum of unsigned ``terms`` by a balanced tree of two-input adders, partial sums as
    wide as their exact bounds, terms of like size paired first."""
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        terms = sorted(terms, key=lambda t: (int(t.bound.max()), t.shift))
        paired = [_add_terms(terms[i], terms[i + 1]) for i in range(0, len(terms) - 1, 2)]
        terms = paired + terms[len(paired) * 2:]
    t = terms[0]
    return Cat(Const(0, t.shift), t.value) if t.shift else t.value


class ShiftAccumulateEngine(_DenseEngine):
    """Shift-accumulate dense layer (:class:`hwgen.sw.ir.DenseShift`): power-of-two weights
    ``0`` / ``+-2^e`` on inputs of any integer-valued type, without a multiplier.

    **Offset digits.** Each input element is decoded once (shared by all ``pe`` neurons) into
    an unsigned digit ``z`` with ``value = alpha z + beta`` and, for the negative weights,
    the digit ``zmax - z`` of its negation (:func:`shift_digits`): wiring and inverters for
    bipolar, odd, unsigned and signed codes, a small table of the n code bits for pow2. A
    neuron then sums ``S = sum_i 2^e_i z_i`` over its nonzero weights (``z_i`` the digit of
    ``x_i`` or of ``-x_i`` by the weight's sign): every term is unsigned, so no sign
    extension is added up, and ``acc = alpha S + C`` with a constant ``C`` per neuron. ``S`` is
    accumulated exactly, as wide as its largest value over the lane's neurons (no
    saturation); a multi-threshold is moved to ``S`` at elaboration
    (``S >= ceil((t - C) / alpha)``, ``S <= floor((t - C) / alpha)`` on flipped rows), so
    thresholded outputs need no adder for ``C``; the raw accumulator is ``alpha S + C``, with
    ``C`` from a ROM of one word per neuron fold (a constant with one neuron fold).

    **Constant weights** (one fold step: ``pe = n_out`` and ``simd = n_in``): a term is its
    digit wired ``e`` places up, zero weights make no logic at all, and the adder tree's
    partial sums of terms that do not overlap are plain concatenations. The digits of the
    positive weights' inputs and of the negative weights' inputs are summed apart, into P and
    N, and ``S = P + ~N``: ``~N`` over N's n bits is ``N_max - N`` (what the negated digits
    would sum to) plus the constant ``2^n - 1 - N_max``, taken off the neuron's ``C``; so one
    inversion per neuron replaces one per negative term, and pow2 inputs need no table for
    ``-x``.

    **Folded weights**: the ROM holds, per neuron and input, a nonzero bit, a sign bit and the
    exponent above the smallest exponent of that position over all fold steps (bits enough
    for the largest such difference in the layer). A term is the digit picked by the sign bit,
    gated by the nonzero bit and shifted by a small multiplexer; a position whose weights never
    change sign, are never zero, or keep one exponent over the fold steps gets no multiplexer,
    gate or shifter for it, and a position always zero gets nothing.

    Partial sums of the adder tree are as wide as the largest value they take at any fold step
    with the actual weights. There is no ``*`` anywhere: products are shifts.

    Parameters
    ----------
    layer : DenseShift
    in_type : TensorType
        pow2, bipolar, odd, unsigned or signed input elements.
    pe : int
        Neurons in parallel; divides ``layer.n_out``.
    simd : int
        Inputs per cycle; divides ``layer.n_in``.
    weights : ``"logic"`` or ``"bram"``
        Weight, threshold and offset ROMs in LUTs or in block RAM.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(in_shape, n_in)))``
    o_stream : ``Out(stream.Signature(ArrayLayout(out_shape, n_out)))``
        The multi-threshold's code type with a threshold, the accumulator type without.

    Latency is ``F + 4`` cycles and throughput one vector per ``F + 3`` cycles,
    ``F = (n_out / pe) * (n_in / simd)`` (see :class:`FoldedEngine`).
    """

    def __init__(self, layer: ir.DenseShift, *, in_type: ir.TensorType, pe: int = 1,
                 simd: int = 1, weights: str = "logic"):
        super().__init__(layer, in_type=in_type, pe=pe, simd=simd, weights=weights)
        self.alpha, self.beta, self.zmax = shift_digits(in_type)
        gamma = -self.alpha * self.zmax - self.beta
        w = layer.weights
        self.exponents = np.where(w != 0, np.log2(np.maximum(np.abs(w), 1)).round(), 0) \
            .astype(np.int64)
        scale = np.where(w != 0, np.left_shift(1, self.exponents), 0)
        # per neuron: the accumulated S lies in 0 .. s_max and acc = alpha S + offset
        self.s_max = (scale * self.zmax).sum(axis=1)
        self.offsets = (scale * np.where(w < 0, gamma, self.beta)).sum(axis=1)
        if self.fold_steps == 1:
            # constant weights: S = P + ~N over the positive and the negative weights' digits,
            # N of n_bits bits, which is S + 2^n_bits - 1 - N_max (see datapath)
            n_max = (np.where(w < 0, scale, 0) * self.zmax).sum(axis=1)
            bias = np.array([(1 << ir.unsigned_bits(n)) - 1 - n if n else 0 for n in n_max],
                            dtype=np.int64)
            self.s_max = self.s_max + bias
            self.offsets = self.offsets - self.alpha * bias

    def _fold(self, a: np.ndarray) -> np.ndarray:
        """(n_out, n_in) -> (pe, simd, fold_steps): lane p, position s, step nf * sfs + sf."""
        a = a.reshape(self.neuron_folds, self.pe, self.synapse_folds, self.simd)
        return a.transpose(1, 3, 0, 2).reshape(self.pe, self.simd, self.fold_steps)

    def digits(self, m: Module, x: data.View) -> tuple[list[Value], list[Value]]:
        """Per input element of the chunk, the digits of ``x`` and of ``-x`` (those of ``-x``
        only with folded weights, where a term picks one of the two by its sign bit)."""
        t, zmax = self.in_type, self.zmax
        zb = ir.unsigned_bits(zmax)
        pos, neg = [], []
        for s in range(self.simd):
            code = x[s].as_unsigned()
            zp = Signal(zb, name=f"z{s}")
            if t.kind == "pow2":
                zn = Signal(zb, name=f"zn{s}") if self.fold_steps > 1 else None
                with m.Switch(code):
                    for c in range(1 << t.bits):
                        # the unused top code reads as 0
                        v = int(t.values(c)) if c <= t.hi else 0
                        with m.Case(c):
                            m.d.comb += zp.eq(v - self.beta)
                            if zn is not None:
                                m.d.comb += zn.eq(zmax - v + self.beta)
            else:
                flip = 1 << (t.bits - 1) if t.kind == "signed" else 0
                m.d.comb += zp.eq(code ^ flip)
                zn = ~zp
            pos.append(zp)
            neg.append(zn)
        return pos, neg

    def _constant_partial(self, m: Module, pos, p: int) -> Value:
        """Neuron p's S with constant weights: ``P + ~N``, P and N the sums of the digits of
        its positive and its negative weights' inputs, each wired ``e`` places up; the
        inversion of N's n bits stands for ``N_max - N`` plus the constant ``2^n - 1 - N_max``
        (taken off the neuron's offset), so no term is inverted on its own."""
        sums = []
        for sign in (1, -1):
            terms = [_Term(pos[s], int(self.exponents[p, s]),
                           np.array([self.zmax << int(self.exponents[p, s])], dtype=np.int64))
                     for s, w in enumerate(self.layer.weights[p]) if np.sign(w) == sign]
            sums.append((_sum_terms(terms), sum(int(t.bound[0]) for t in terms)))
        (pos_sum, pos_max), (neg_sum, neg_max) = sums
        if not neg_max:
            return pos_sum
        neg = Signal(ir.unsigned_bits(neg_max), name=f"neg{p}")
        m.d.comb += neg.eq(neg_sum)
        return ~neg if not pos_max else pos_sum + ~neg

    def _rom_fields(self) -> tuple[np.ndarray, ...]:
        """(pe, simd, fold_steps) weights and exponents, nonzero flags, and each exponent above
        the smallest one of its (lane, position) over the fold steps; (pe, simd) smallest."""
        w, e = self._fold(self.layer.weights), self._fold(self.exponents)
        nz = w != 0
        e_min = np.where(nz, e, 1 << 20).min(axis=2, initial=1 << 20)
        e_rel = np.where(nz, e - e_min[..., None], 0)
        return w, e, nz, e_rel, e_min

    def weight_rom(self, m: Module, step: FoldStep) -> tuple[Value, int]:
        """The weight word of the step in stage 1, and the bits of each weight's field in it:
        nonzero, negative, then the exponent above its position's smallest."""
        w, _, nz, e_rel, _ = self._rom_fields()
        fw = 2 + int(e_rel.max(initial=0)).bit_length()
        fields = nz.astype(np.int64) | (w < 0).astype(np.int64) << 1 | e_rel << 2
        # word of step k: field of (p, s) at bits (p * simd + s) * fw
        per_step = fields.reshape(self.pe * self.simd, self.fold_steps).T
        words = [_pack(row.tolist(), fw) for row in per_step]
        return _rom(m, "weights", words, len(per_step[0]) * fw, step.addr, self.weights), fw

    def _rom_terms(self, pos, neg, word: Value, fw: int, p: int, fields) -> list[_Term]:
        """Lane p's terms from its part of the weight word (``fields``: :meth:`_rom_fields`)."""
        w, e, nz, e_rel, e_min = fields
        terms = []
        for s in range(self.simd):
            nzs, ws = nz[p, s], w[p, s]
            if not nzs.any():
                continue
            base = s * fw
            if (ws[nzs] > 0).all():
                z = pos[s]
            elif (ws[nzs] < 0).all():
                z = neg[s]
            else:
                z = Mux(word[base + 1], neg[s], pos[s])
            if not nzs.all():
                z = z & word[base].replicate(len(z))
            rel = int(e_rel[p, s].max())
            if rel:
                width = ir.unsigned_bits(self.zmax << rel)
                z = (z << word[base + 2:base + 2 + rel.bit_length()])[:width]
            bound = np.where(nzs, self.zmax << e[p, s], 0)
            terms.append(_Term(z, int(e_min[p, s]), bound))
        return terms

    def datapath(self, m: Module, step: FoldStep) -> list[Value]:
        pe, simd = self.pe, self.simd
        pos, neg = self.digits(m, step.x)
        if self.fold_steps == 1:
            parts = [self._constant_partial(m, pos, p) for p in range(pe)]
        else:
            word, fw = self.weight_rom(m, step)
            fields = self._rom_fields()
            parts = [_sum_terms(self._rom_terms(pos, neg, word[p * simd * fw:(p + 1) * simd * fw],
                                                fw, p, fields))
                     for p in range(pe)]
        lane_max = self.s_max.reshape(self.neuron_folds, pe).max(axis=0)
        accs = [Signal(ir.unsigned_bits(int(lane_max[p])), name=f"acc{p}") for p in range(pe)]
        for acc, part in zip(accs, parts):
            with m.If(step.valid):
                m.d.sync += acc.eq(Mux(step.first, 0, acc) + part)
        s_hi = int(self.s_max.max(initial=0))
        threshold = self.layer.threshold
        if threshold is not None:
            # acc >= t  <=>  S >= ceil((t - C) / alpha);  acc <= t  <=>  S <= floor(...)
            th = threshold.clamp(self.acc_lo, self.acc_hi)
            t = th.t - self.offsets[:, None]
            t = np.where(th.flip[:, None], t // self.alpha, -(-t // self.alpha))
            moved = ir.MultiThreshold(t, th.flip, th.out)
            t_word, t_type, levels = _threshold_rom(m, moved, 0, s_hi, pe, step.nf,
                                                    self.weights)
            return _thresholded(accs, t_word, t_type, levels)
        # the raw accumulator alpha S + C, C read with the last step's nf like a threshold
        shift = self.alpha.bit_length() - 1
        shape = element_shape(self.acc_type)
        ab = Shape.cast(shape).width
        if self.offsets.any():
            words = [_pack(self.offsets[g * pe:(g + 1) * pe].tolist(), ab)
                     for g in range(self.neuron_folds)]
            c_word = _rom(m, "offsets", words, pe * ab, step.nf, self.weights)
        outs = []
        for p, acc in enumerate(accs):
            out = Signal(shape, name=f"out{p}")
            value = acc << shift
            if self.offsets.any():
                value = value + c_word[p * ab:(p + 1) * ab].as_signed()
            m.d.comb += out.eq(value)
            outs.append(out)
        return outs


class MultiThresholdEngine(FoldedEngine):
    """Element-wise multi-threshold (:class:`hwgen.sw.ir.MultiThresholdLayer`): element i of
    the output is ``#{l : x_i >= t_il}`` (``x_i <= t_il`` on flipped rows), e.g. integer
    pixels quantized to the odd codes of a multi-branch layer.

    ``pe`` elements per cycle, each against its row of L levels (L comparators of the input
    width, decoded from a thermometer code, see :func:`_threshold_rom`); the rows of a fold
    come from a ROM of ``n / pe`` words, a constant when ``pe == n``. There is no synapse
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
        t_word, t_type, levels = _threshold_rom(m, self.layer.threshold, self.acc_lo,
                                                self.acc_hi, pe, step.addr, self.weights)
        x = step.x.as_value()
        if self.neuron_folds > 1:
            x = x.word_select(step.nf, pe * Shape.cast(element_shape(self.in_type)).width)
        elems = Signal(data.ArrayLayout(element_shape(self.in_type), pe), name="elements")
        m.d.comb += elems.eq(x)
        codes = _thresholded([elems[p] for p in range(pe)], t_word, t_type, levels)
        regs = [Signal(element_shape(self.out_type), name=f"code{p}") for p in range(pe)]
        with m.If(step.valid):
            m.d.sync += [r.eq(c) for r, c in zip(regs, codes)]
        return regs


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


def _single_branch(layer: ir.Layer, folding) -> None:
    if folding.branch_folds != 1:
        raise ValueError(f"{layer.name}: branch_folds must be 1 for a {layer.kind} layer "
                         f"(only dense_mbbn has branches), not {folding.branch_folds!r}")


def _dense_int_binw(layer, in_type, f):
    _single_branch(layer, f)
    return DenseIntBinWEngine(layer, in_type=in_type, pe=f.pe, simd=f.simd, weights=f.weights)


def _dense_binary(layer, in_type, f):
    _single_branch(layer, f)
    return XnorPopcountEngine(layer, in_type=in_type, pe=f.pe, simd=f.simd, weights=f.weights)


def _dense_mbbn(layer, in_type, f):
    return MBBNEngine(layer, in_type=in_type, pe=f.pe, simd=f.simd, weights=f.weights,
                      branch_folds=f.branch_folds)


def _dense_shift(layer, in_type, f):
    _single_branch(layer, f)
    return ShiftAccumulateEngine(layer, in_type=in_type, pe=f.pe, simd=f.simd,
                                 weights=f.weights)


def _multithreshold(layer, in_type, f):
    _single_branch(layer, f)
    if f.simd != 1:
        raise ValueError(f"{layer.name}: a multithreshold layer takes each element on its own, "
                         f"so simd must be 1, not {f.simd!r}")
    # the folding's weight mode places the threshold ROM
    return MultiThresholdEngine(layer, in_type=in_type, pe=f.pe, weights=f.weights)


def _argmax(layer, in_type, f):
    _single_branch(layer, f)
    # argmax has no weights, so the folding's weight mode does not apply
    return ArgMaxEngine(layer, in_type=in_type, pe=f.pe, simd=f.simd)


ENGINES = {
    ir.DenseIntBinW.kind: _dense_int_binw,
    ir.DenseBinary.kind: _dense_binary,
    ir.DenseMBBN.kind: _dense_mbbn,
    ir.DenseShift.kind: _dense_shift,
    ir.MultiThresholdLayer.kind: _multithreshold,
    ir.ArgMax.kind: _argmax,
}
"""Engine factory per IR layer kind: ``ENGINES[kind](layer, in_type, folding) -> FoldedEngine``."""
