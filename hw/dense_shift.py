"""``dense_shift``: a shift-accumulate dense layer (:class:`hwgen.sw.core.ir.DenseShift`),
power-of-two weights ``0`` / ``+-2^e`` on inputs of any integer-valued type, without a
multiplier.

:class:`ShiftAccumulateEngine` is a :class:`hwgen.hw.kit.DenseEngine` summing unsigned input
digits (:func:`shift_digits`) shifted by the weights' exponents; :func:`estimate_dense_shift`
prices it from its actual weights. Dense folding rules.

**Calibration.** The shift-accumulate kind (``dense_shift``) was checked the same way as the
dense kinds (:mod:`hwgen.hw.resources`), with yosys 0.69 ``synth_ice40``, nextpnr
``--pack-only``, on 19 engines with random weights (a quarter to 40 % zero, exponents 0..2 to
0..7): fully parallel 16 -> 16 to 64 -> 16 and folded 64 -> 16 to 128 -> 64 layers, pe 2..16,
simd 8..64, both weight modes, pow2 2/3/4-bit, bipolar, unsigned 4-bit and signed 4-bit inputs,
with and without multi-thresholds. The estimate lies within 0.87 .. 1.23 times the packed cells
(all but one within 0.87 .. 1.02); EBR counts up to 17 % above the packing.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Module, Mux, Shape, Signal, Value
from amaranth.lib import data

from hwgen.hw.kit import (DenseEngine, FoldStep, Term, element_shape, pack, rom,
                          sum_terms, threshold_rom, thresholded)
from hwgen.hw.registry import LayerHardware, fold_steps, register
from hwgen.hw.resources import Folding, Resources, controller_cells, lut_rom_cost
from hwgen.sw.core import ir

__all__ = ["ShiftAccumulateEngine", "shift_digits", "estimate_dense_shift",
           "DenseShiftHardware"]

# dense_shift (see _estimate_dense_shift): adder tree growth per summand, and cells per
# counted cell of the constant adders, of the folded terms and of the folded adders
SHIFT_ADDER_GROWTH = 2
SHIFT_CONSTANT_ADDER_LCS = 1.08
SHIFT_BIT_ADDER_LCS = 0.65
SHIFT_TERM_LCS = 1.0
SHIFT_FOLDED_ADDER_LCS = 1.0
SHIFT_MERGED_ADDRESS_BITS = 3


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


class ShiftAccumulateEngine(DenseEngine):
    """Shift-accumulate dense layer (:class:`hwgen.sw.core.ir.DenseShift`): power-of-two weights
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
    ``F = (n_out / pe) * (n_in / simd)`` (see :class:`hwgen.hw.kit.FoldedEngine`).
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
            terms = [Term(pos[s], int(self.exponents[p, s]),
                          np.array([self.zmax << int(self.exponents[p, s])], dtype=np.int64))
                     for s, w in enumerate(self.layer.weights[p]) if np.sign(w) == sign]
            sums.append((sum_terms(terms), sum(int(t.bound[0]) for t in terms)))
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
        words = [pack(row.tolist(), fw) for row in per_step]
        return rom(m, "weights", words, len(per_step[0]) * fw, step.addr, self.weights), fw

    def _rom_terms(self, pos, neg, word: Value, fw: int, p: int, fields) -> list[Term]:
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
            terms.append(Term(z, int(e_min[p, s]), bound))
        return terms

    def datapath(self, m: Module, step: FoldStep) -> list[Value]:
        pe, simd = self.pe, self.simd
        pos, neg = self.digits(m, step.x)
        if self.fold_steps == 1:
            parts = [self._constant_partial(m, pos, p) for p in range(pe)]
        else:
            word, fw = self.weight_rom(m, step)
            fields = self._rom_fields()
            parts = [sum_terms(self._rom_terms(pos, neg, word[p * simd * fw:(p + 1) * simd * fw],
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
            t_word, t_type, levels = threshold_rom(m, moved, 0, s_hi, pe, step.nf,
                                                   self.weights)
            return thresholded(accs, t_word, t_type, levels)
        # the raw accumulator alpha S + C, C read with the last step's nf like a threshold
        shift = self.alpha.bit_length() - 1
        shape = element_shape(self.acc_type)
        ab = Shape.cast(shape).width
        if self.offsets.any():
            words = [pack(self.offsets[g * pe:(g + 1) * pe].tolist(), ab)
                     for g in range(self.neuron_folds)]
            c_word = rom(m, "offsets", words, pe * ab, step.nf, self.weights)
        outs = []
        for p, acc in enumerate(accs):
            out = Signal(shape, name=f"out{p}")
            value = acc << shift
            if self.offsets.any():
                value = value + c_word[p * ab:(p + 1) * ab].as_signed()
            m.d.comb += out.eq(value)
            outs.append(out)
        return outs


# --- cost estimate ---------------------------------------------------------------------------

def _shift_exponents(w) -> np.ndarray:
    """Exponent e of each weight 0 / +-2^e (0 where the weight is 0)."""
    return np.log2(np.maximum(np.abs(w), 1)).round().astype(np.int64)


def _shift_tree_cells(leaves: list[tuple[int, int]]) -> int:
    """Adder cells of the tree that :class:`ShiftAccumulateEngine` builds
    over unsigned terms ``(largest value, shift)``: pairs of like size first, level by level,
    a cell per sum bit above the pass-through low bits, none where two terms do not overlap."""
    terms, cells = sorted(leaves), 0
    while len(terms) > 1:
        paired = []
        for (ma, sa), (mb, sb) in zip(terms[0:len(terms) - 1:2], terms[1::2]):
            if sa > sb:
                (ma, sa), (mb, sb) = (mb, sb), (ma, sa)
            d = sb - sa
            if ir.unsigned_bits(ma >> sa) > d:
                cells += ir.unsigned_bits((ma + mb) >> sa) - d
            paired.append((ma + mb, sa))
        terms = sorted(paired + terms[len(paired) * 2:])
    return cells


def _shift_reach(digit_bits: int, rel: int) -> list[int]:
    """Per output bit of a ``digit_bits`` digit shifted by 0 .. ``rel``, the digit bits that
    can reach it."""
    return [sum(0 <= k - r < digit_bits for r in range(rel + 1))
            for k in range(digit_bits + rel)]


def _shifter_cells(digit_bits: int, rel: int) -> int:
    """LUTs of a variable shift of a ``digit_bits`` digit by 0 .. ``rel``: per output bit a
    multiplexer of the shifts that reach it, one gate where a single shift does."""
    return sum(max(1, n - 1) for n in _shift_reach(digit_bits, rel)) if rel else 0


def _adder_tree(terms: int, width: float) -> float:
    """Cells of an adder tree over ``terms`` summands ``width`` bits wide: a cell per sum bit,
    the sums growing a bit per level."""
    return (terms - 1) * (width + SHIFT_ADDER_GROWTH) if terms > 1 else 0


def estimate_dense_shift(layer: ir.DenseShift, in_type: ir.TensorType,
                         folding: Folding) -> Resources:
    """:class:`ShiftAccumulateEngine` from its actual weights: the adder
    trees of constant weights as built; folded, per (lane, position) its sign multiplexer,
    zero gate and shifter where the weights need them, the adder tree in closed form."""
    pe, simd, mode = folding.pe, folding.simd, folding.weights
    steps = fold_steps(layer, folding)
    _, beta, zmax = shift_digits(in_type)
    zb = ir.unsigned_bits(zmax)
    w = layer.weights
    e = _shift_exponents(w)
    res = Resources()
    if in_type.kind == "pow2":                  # digit tables, shared by the neurons
        per_bit = 1 if in_type.bits <= 4 else 1 << (in_type.bits - 3)
        res += Resources(simd * zb * per_bit * (1 if steps == 1 else 2))
    if steps == 1:
        # constant weights: the positive and the negative terms summed apart, then P + ~N
        datapath, s_max = 0, []
        for row, er in zip(w.tolist(), e.tolist()):
            pos = [(zmax << x, x) for v, x in zip(row, er) if v > 0]
            neg = [(zmax << x, x) for v, x in zip(row, er) if v < 0]
            p_max, n_max = sum(m for m, _ in pos), sum(m for m, _ in neg)
            s_max.append(p_max + ((1 << ir.unsigned_bits(n_max)) - 1 if neg else 0))
            datapath += _shift_tree_cells(pos) + _shift_tree_cells(neg)
            if pos and neg:
                datapath += ir.unsigned_bits(s_max[-1])
        s_max = np.array(s_max, dtype=np.int64)
        # a heap of 1-bit digits (bipolar) compresses into LUTs better than carry chains
        res += Resources(round((SHIFT_CONSTANT_ADDER_LCS if zb > 1 else SHIFT_BIT_ADDER_LCS)
                               * datapath))
    else:
        nf, sf = layer.n_out // pe, layer.n_in // simd

        def fold(a):        # (pe, simd, steps), as the engine's weight ROM
            return a.reshape(nf, pe, sf, simd).transpose(1, 3, 0, 2).reshape(pe, simd, steps)

        wf, ef = fold(w), fold(e)
        nz = wf != 0
        active = nz.any(axis=2)
        big = np.iinfo(np.int64).max
        rel = np.where(nz, ef, 0).max(axis=2) - np.where(nz, ef, big).min(axis=2)
        rel = np.where(active, rel, 0)
        select = active & ~(nz.all(axis=2) & ((wf > 0).all(axis=2) | (wf < 0).all(axis=2)))
        # a term: its sign multiplexer and zero gate, then its shifter
        rels, counts = np.unique(rel[active], return_counts=True)
        terms = select.sum() * zb + sum(int(c) * _shifter_cells(zb, int(r))
                                        for r, c in zip(rels, counts))
        adders = sum(_adder_tree(int(a.sum()), zb + float(r[a].mean()) if a.any() else 0)
                     for a, r in zip(active, rel))
        fw = 2 + int(rel.max(initial=0)).bit_length()
        addr_bits = (steps - 1).bit_length()
        if mode == "logic" and addr_bits <= SHIFT_MERGED_ADDRESS_BITS:
            # a LUT ROM of few words is a function of its (registered) address: it merges
            # into the terms, whose output bits each depend on the address and their digit bits
            terms = sum(int(c) * sum(math.ceil((n + addr_bits - 1) / 3)
                                     for n in _shift_reach(zb, int(r)))
                        for r, c in zip(rels, counts))
        else:
            res += lut_rom_cost(steps, pe * simd * fw, mode)
        res += Resources(round(SHIFT_TERM_LCS * terms + SHIFT_FOLDED_ADDER_LCS * adders))
        s_max = (np.where(w != 0, np.left_shift(1, e), 0) * zmax).sum(axis=1)
    lanes = s_max.reshape(-1, pe).max(axis=0)
    res += Resources(sum(ir.unsigned_bits(int(s)) for s in lanes))      # accumulators
    s_hi = int(s_max.max(initial=0))
    acc_bits = layer.acc_type(in_type).bits
    if layer.threshold is not None:
        # L comparators as wide as S (the carry chain stays against constants), the decode
        levels = layer.threshold.t.shape[1]
        t_bits = ir.TensorType.for_range(-1, s_hi + 2).bits
        res += lut_rom_cost(layer.n_out // pe, pe * (levels * t_bits + 1), mode)
        res += Resources(pe * levels * (ir.unsigned_bits(s_hi) + (levels > 1)))
    elif beta or (w < 0).any():                 # alpha S + C, C from a ROM per neuron fold
        res += lut_rom_cost(layer.n_out // pe, pe * acc_bits, mode) + Resources(pe * acc_bits)
    out_bits = layer.out_type(in_type).bits
    return res + Resources(controller_cells(layer, in_type.bits, out_bits, folding, steps))


@register(ir.DenseShift)
class DenseShiftHardware(LayerHardware):
    """``dense_shift``: :class:`ShiftAccumulateEngine`, priced by :func:`estimate_dense_shift`;
    dense folding rules."""

    cost = staticmethod(estimate_dense_shift)
    engine_class = ShiftAccumulateEngine
