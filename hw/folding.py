"""Folding: how much of each layer is computed in parallel, what it costs, and choosing it.

A :class:`Folding` sets an engine's ``pe`` (neurons in parallel), ``simd`` (inputs per cycle),
``branch_folds`` (cycles over which a multi-branch layer's M * K branches are spread) and where
its weights live. :func:`estimate` gives an analytic iCE40 cost per layer and
:func:`choose_folding` picks, for a whole model, the fastest balanced folding within budget.

The cost model counts iCE40 logic cells (one LUT4 + carry + flip-flop each) and 4 kbit EBRs. Its
coefficients are the usual iCE40 rules of thumb: a k-bit adder or comparator is k cells, a
popcount about 1.9 cells per input bit, an N:1 multiplexer about 2/3 cell per input per bit, a
LUT ROM one LUT4 per 16 words per bit plus its multiplexer, a register one cell per bit.
Checked against yosys ``synth_ice40`` on digits-scale engines (64x128 on 5-bit inputs, 128x128
bipolar, at several foldings): LUT4 counts within 10-40 % below the estimate, EBR counts exact,
and a whole 64-128-128-10 pipeline packed by nextpnr into 3223 cells against 3015 estimated.

The multi-branch kinds (``dense_mbbn``, ``multithreshold``) were checked the same way (yosys
0.70 ``synth_ice40 -dff``, then nextpnr ``--pack-only``) on 20 engines: 64 -> 32 layers with
multi-thresholds, (M, K) = (1, 1), (2, 2), (3, 2), (4, 4), pe 1..8, simd 8..64, every branch
mode; 32 -> 10 layers without; 64-element quantizers to odd 2 and odd 4 codes. For 17 of them
the estimate lies within 0.92 .. 1.23 times the packed cells; three layers of 8 or 10 neurons
in parallel on 32 or 64 inputs a cycle came out 35-40 % below it (their popcounts cost nearer
1.2 cells per bit). Their LUT ROMs are counted without a data register (yosys moves it to the
address); EBR counts of wide threshold ROMs are up to 43 % above yosys's packing.

The shift-accumulate kind (``dense_shift``) was checked the same way (yosys 0.69
``synth_ice40``, nextpnr ``--pack-only``) on 19 engines with random weights (a quarter to 40 %
zero, exponents 0..2 to 0..7): fully parallel 16 -> 16 to 64 -> 16 and folded 64 -> 16 to
128 -> 64 layers, pe 2..16, simd 8..64, both weight modes, pow2 2/3/4-bit, bipolar, unsigned
4-bit and signed 4-bit inputs, with and without multi-thresholds. The estimate lies within
0.87 .. 1.23 times the packed cells (all but one within 0.87 .. 1.02); EBR counts up to 17 %
above the packing.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from hwgen.hw.engines import WEIGHT_MODES, branch_split, shift_digits
from hwgen.sw import ir

__all__ = ["Folding", "Resources", "DoesNotFitError", "estimate", "ESTIMATORS", "SPARSE",
           "LOADED", "SERIAL", "serial_sides",
           "check_folding", "fold_steps", "candidates", "choose_folding"]

EBR_BITS = 4096
EBR_WIDTHS = (16, 8, 4, 2)       # 256x16, 512x8, 1024x4, 2048x2
POPCOUNT_LCS_PER_BIT = 1.9
CONTROL_LCS = 24                  # stream handshake, stage valids, fold counters' carry logic
# dense_shift (see _estimate_dense_shift): adder tree growth per summand, and cells per
# counted cell of the constant adders, of the folded terms and of the folded adders
SHIFT_ADDER_GROWTH = 2
SHIFT_CONSTANT_ADDER_LCS = 1.08
SHIFT_BIT_ADDER_LCS = 0.65
SHIFT_TERM_LCS = 1.0
SHIFT_FOLDED_ADDER_LCS = 1.0
SHIFT_MERGED_ADDRESS_BITS = 3


#: The weight mode of the sparse SAM engine (entries walked from block RAM, serial streams).
SPARSE = "sparse"
#: The sparse SAM engine with its entries in a RAM (SPRAM) that the input stream loads after
#: reset (:mod:`hwgen.hw.sam_sparse`, ``storage="loaded"``); only for the model's first layer.
LOADED = "loaded"
#: The weight mode of the serial-input MAC engine (a column of weights per input element).
SERIAL = "serial"
#: A SPRAM block of the iCE40 UltraPlus: 16,384 words of 16 bits.
SPRAM_WORDS, SPRAM_WIDTH = 16_384, 16


#: Kinds that take each element on their own: ``pe`` elements per cycle, no synapse fold.
ELEMENTWISE = (ir.MultiThresholdLayer.kind, ir.QAMSlicer.kind)


def serial_sides(f: "Folding") -> tuple[bool, bool]:
    """Whether a layer folded by ``f`` takes its input, and gives its output, serially."""
    return f.weights in (SPARSE, LOADED, SERIAL), f.weights in (SPARSE, LOADED)


class DoesNotFitError(ValueError):
    """No folding of the model fits the resource budget."""


@dataclass(frozen=True)
class Folding:
    """``pe`` neurons in parallel, ``simd`` inputs per cycle, weights in ``"logic"`` or ``"bram"``,
    and ``branch_folds`` cycles per synapse fold.

    ``branch_folds`` spreads a ``dense_mbbn`` layer's M * K branches in time: 1 computes them
    all in parallel, M * K one per cycle; it divides M * K there and is 1 for every other kind.
    A ``multithreshold`` or ``qam_slicer`` layer has ``pe`` elements per cycle and no synapse
    fold, so its ``simd`` is 1; ``weights`` places a multithreshold's threshold ROM. ``weights = "sparse"`` (``sam`` and
    unthresholded ``dense_mac`` layers, ``pe = simd = 1``) selects a sparse engine, which walks
    the kept entries (nonzero weights) from block RAM one per cycle and takes and gives its
    vectors serially (:mod:`hwgen.hw.sam_sparse`); ``weights = "serial"`` (unthresholded
    ``dense_mac``, ``simd = 1``) takes the input serially and gives the sums as a vector
    (:class:`hwgen.hw.mac_serial.SerialMACEngine`). Whether a folding suits a layer is checked
    by :func:`check_folding` (and by the engines).
    """

    pe: int = 1
    simd: int = 1
    weights: str = "logic"
    branch_folds: int = 1

    def __post_init__(self):
        for name in ("pe", "simd", "branch_folds"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if self.weights not in WEIGHT_MODES + (SPARSE, LOADED, SERIAL):
            raise ValueError(f"weights must be one of {WEIGHT_MODES + (SPARSE, LOADED, SERIAL)}, "
                             f"not {self.weights!r}")


@dataclass(frozen=True)
class Resources:
    """Logic cells, 4 kbit block RAMs, DSP blocks (SB_MAC16) and SPRAM blocks (SB_SPRAM256KA)."""

    lcs: int = 0
    ebr: int = 0
    dsp: int = 0
    spram: int = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(self.lcs + other.lcs, self.ebr + other.ebr, self.dsp + other.dsp,
                         self.spram + other.spram)

    def fits(self, *, lc_budget: int, ebr_budget: int, dsp_budget: int | None = None,
             spram_budget: int = 0) -> bool:
        return self.lcs <= lc_budget and self.ebr <= ebr_budget and \
            (dsp_budget is None or self.dsp <= dsp_budget) and self.spram <= spram_budget


def check_folding(layer: ir.Layer, folding: Folding) -> Folding:
    """Raise ValueError, naming the layer, if ``folding`` does not suit ``layer``."""
    def bad(what):
        raise ValueError(f"layer {layer.name}: {what}")
    if layer.n_out % folding.pe:
        bad(f"pe must divide the output count {layer.n_out}, not {folding.pe!r}")
    if layer.kind in ELEMENTWISE:
        if folding.simd != 1:
            bad(f"a {layer.kind} layer takes each element on its own, so simd must be 1, "
                f"not {folding.simd!r}")
    elif layer.n_in % folding.simd:
        bad(f"simd must divide the input count {layer.n_in}, not {folding.simd!r}")
    if folding.weights == SPARSE and (
            layer.kind not in (ir.SAMLayer.kind, ir.DenseMAC.kind) or folding.pe != 1 or
            folding.simd != 1 or getattr(layer, "threshold", None) is not None):
        bad(f"sparse weights are for sam layers and dense_mac layers without a threshold, with "
            f"pe = simd = 1, not {layer.kind} with pe {folding.pe}, simd {folding.simd}")
    if folding.weights == LOADED and (layer.kind != ir.SAMLayer.kind or folding.pe != 1 or
                                      folding.simd != 1):
        bad(f"loaded weights are for sam layers with pe = simd = 1, not {layer.kind} with pe "
            f"{folding.pe}, simd {folding.simd}")
    if folding.weights == SERIAL and (layer.kind != ir.DenseMAC.kind or folding.simd != 1 or
                                      layer.threshold is not None):
        bad(f"serial weights are for dense_mac layers without a threshold and with simd = 1, "
            f"not {layer.kind} with simd {folding.simd}")
    if layer.kind == ir.DenseMBBN.kind:
        branches = layer.m_bits * layer.k_bits
        if branches % folding.branch_folds:
            bad(f"branch_folds must divide the branch count M * K = {branches}, "
                f"not {folding.branch_folds!r}")
    elif folding.branch_folds != 1:
        bad(f"branch_folds must be 1 for a {layer.kind} layer (only dense_mbbn has branches), "
            f"not {folding.branch_folds!r}")
    return folding


def fold_steps(layer: ir.Layer, folding: Folding) -> int:
    """Compute cycles per vector of ``layer`` under ``folding``:
    ``(n_out / pe) * (n_in / simd) * branch_folds``, or ``n / pe`` for an element-wise layer
    (``multithreshold``, ``qam_slicer``)."""
    check_folding(layer, folding)
    if layer.kind in ELEMENTWISE:
        return layer.n_out // folding.pe
    if folding.weights in (SPARSE, LOADED):
        from hwgen.hw.sam_sparse import mac_entries, sam_entries
        # the load of the serial input, then one entry per cycle
        entries = (sam_entries if layer.kind == ir.SAMLayer.kind else mac_entries)(layer)
        return layer.n_in + len(entries[0])
    if folding.weights == SERIAL:
        return layer.n_in * (layer.n_out // folding.pe + 1)
    return (layer.n_out // folding.pe) * (layer.n_in // folding.simd) * folding.branch_folds


def _rom(words: int, width: int, mode: str) -> Resources:
    """A ROM read one cycle after its address; a single word is a constant."""
    if words <= 1:
        return Resources()
    if mode == "bram":
        ebr = min(math.ceil(width / w) * math.ceil(words / (EBR_BITS // w)) for w in EBR_WIDTHS)
        return Resources(0, ebr)
    luts_per_bit = math.ceil(words / 16)
    return Resources(width * (2 * luts_per_bit - 1) + width)   # LUT tree + data register


def _controller(layer: ir.Layer, in_bits: int, out_bits: int, folding: Folding) -> int:
    sfs = layer.n_in // folding.simd
    counters = 3 * max(1, math.ceil(math.log2(fold_steps(layer, folding) + 1)))
    chunk_mux = round(2 / 3 * (sfs - 1) * folding.simd * in_bits)
    return (CONTROL_LCS + counters + layer.n_in * in_bits + layer.n_out * out_bits
            + chunk_mux)


def _dense(layer: ir.Layer, in_type: ir.TensorType, folding: Folding, per_neuron: int) -> Resources:
    pe, simd = folding.pe, folding.simd
    acc = layer.acc_type(in_type)
    steps = fold_steps(layer, folding)
    res = _rom(steps, pe * simd, folding.weights)
    res += Resources(pe * (per_neuron + acc.bits))              # datapath and accumulator
    if layer.threshold is not None:
        t_bits = ir.TensorType.for_range(*layer.acc_range(in_type)).bits + 2
        res += _rom(layer.n_out // pe, pe * t_bits, folding.weights)
        res += Resources(pe * t_bits)                            # comparator
    out_bits = layer.out_type(in_type).bits
    return res + Resources(_controller(layer, in_type.bits, out_bits, folding))


def _estimate_dense_int_binw(layer, in_type, folding) -> Resources:
    simd, steps = folding.simd, fold_steps(layer, folding)
    term_bits = in_type.bits + 1
    # an adder tree costs a cell per bit per term; ROM weights add the per-term inversion
    inversion = simd * term_bits if steps > 1 else 0
    per_neuron = simd * (term_bits + math.ceil(math.log2(simd + 1))) + inversion
    return _dense(layer, in_type, folding, per_neuron)


def _estimate_dense_binary(layer, in_type, folding) -> Resources:
    simd, steps = folding.simd, fold_steps(layer, folding)
    xnor = simd if steps > 1 else 0     # constant weights fold into the popcount's inputs
    per_neuron = math.ceil(POPCOUNT_LCS_PER_BIT * simd) + xnor
    return _dense(layer, in_type, folding, per_neuron)


def _estimate_argmax(layer, in_type, folding) -> Resources:
    idx_bits = layer.out_type(in_type).bits
    compare = folding.simd * (2 * in_type.bits + idx_bits)       # comparator + value/index muxes
    best = in_type.bits + idx_bits
    return Resources(compare + best + _controller(layer, in_type.bits, idx_bits, folding))


def _lut_rom(words: int, width: int, mode: str) -> Resources:
    """:func:`_rom` as measured for the multi-branch kinds: yosys moves a LUT ROM's data
    register to its address (one register for all bits), so only the LUT tree counts."""
    res = _rom(words, width, mode)
    return res if mode == "bram" or words <= 1 else Resources(res.lcs - width, res.ebr)


def _multi_threshold(threshold, lo: int, hi: int, groups: int, pe: int, mode: str) -> Resources:
    """ROM of ``groups`` words of ``pe`` rows, L comparators per row, the thermometer decode."""
    levels = threshold.t.reshape(len(threshold.flip), -1).shape[1]
    t_bits = ir.TensorType.for_range(lo - 1, hi + 2).bits
    res = _lut_rom(groups, pe * (levels * t_bits + 1), mode)
    # a comparator is a carry chain as wide as the accumulator, half that against a constant
    acc_bits = ir.TensorType.for_range(lo, hi).bits
    compare = acc_bits if groups > 1 else math.ceil(acc_bits / 2)
    return res + Resources(pe * (levels * compare + (levels if levels > 1 else 0)))


def _estimate_dense_mbbn(layer, in_type, folding) -> Resources:
    pe, simd, bfs = folding.pe, folding.simd, folding.branch_folds
    m_bits, k_bits = layer.m_bits, layer.k_bits
    weight_rows = (layer.n_out // pe) * (layer.n_in // simd)   # ROM rows before branch folds
    b_m, b_k = branch_split(m_bits, k_bits, bfs, weight_rows == 1)
    m_par, k_par = m_bits // b_m, k_bits // b_k
    rows = weight_rows * b_k
    res = _lut_rom(rows, pe * k_par * simd, folding.weights)
    if rows > 1 and b_m & (b_m - 1):                  # a row counter (see MBBNEngine)
        res += Resources(math.ceil(math.log2(rows)) + b_m.bit_length())
    # per neuron: one popcount per fixed shift over all its xnor bits, the shifted counts
    # summed, then the step's common shift (a multiplexer level per bit of it)
    shifts = {u * b_m + kp * b_k for u in range(m_par) for kp in range(k_par)}
    bits = m_par * k_par * simd
    count_bits = (bits // len(shifts)).bit_length()
    sum_bits = count_bits + max(shifts) + math.ceil(math.log2(len(shifts)))
    xnor = bits if rows > 1 else 0                    # constant weights fold into the popcount
    per_neuron = (math.ceil(POPCOUNT_LCS_PER_BIT * bits) + xnor
                  + (len(shifts) - 1) * sum_bits
                  + math.ceil(math.log2(b_m + b_k - 1)) * sum_bits)
    acc = layer.acc_type(in_type)
    res += Resources(pe * (per_neuron + acc.bits))
    if b_m > 1:                                       # input plane multiplexer, shared
        res += Resources(round(2 / 3 * b_m * m_par * simd))
    if layer.threshold is not None:
        lo, hi = layer.acc_range(in_type)
        res += _multi_threshold(layer.threshold, lo, hi, layer.n_out // pe, pe, folding.weights)
    out_bits = layer.out_type(in_type).bits
    return res + Resources(_controller(layer, in_type.bits, out_bits, folding))


def _estimate_multithreshold(layer, in_type, folding) -> Resources:
    n, pe = layer.n_in, folding.pe
    out_bits = layer.out_type(in_type).bits
    res = _multi_threshold(layer.threshold, in_type.lo, in_type.hi, n // pe, pe,
                           folding.weights)
    counters = 3 * max(1, math.ceil(math.log2(fold_steps(layer, folding) + 1)))
    element_mux = round(2 / 3 * (n // pe - 1) * pe * in_type.bits)
    registers = n * in_type.bits + n * out_bits + pe * out_bits
    return res + Resources(CONTROL_LCS + counters + element_mux + registers)


def _shift_exponents(w) -> np.ndarray:
    """Exponent e of each weight 0 / +-2^e (0 where the weight is 0)."""
    return np.log2(np.maximum(np.abs(w), 1)).round().astype(np.int64)


def _shift_tree_cells(leaves: list[tuple[int, int]]) -> int:
    """Adder cells of the tree that :class:`hwgen.hw.engines.ShiftAccumulateEngine` builds
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


def _estimate_dense_shift(layer, in_type, folding) -> Resources:
    """:class:`hwgen.hw.engines.ShiftAccumulateEngine` from its actual weights: the adder
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
            res += _lut_rom(steps, pe * simd * fw, mode)
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
        res += _lut_rom(layer.n_out // pe, pe * (levels * t_bits + 1), mode)
        res += Resources(pe * levels * (ir.unsigned_bits(s_hi) + (levels > 1)))
    elif beta or (w < 0).any():                 # alpha S + C, C from a ROM per neuron fold
        res += _lut_rom(layer.n_out // pe, pe * acc_bits, mode) + Resources(pe * acc_bits)
    out_bits = layer.out_type(in_type).bits
    return res + Resources(_controller(layer, in_type.bits, out_bits, folding))


ESTIMATORS = {
    ir.DenseIntBinW.kind: _estimate_dense_int_binw,
    ir.DenseBinary.kind: _estimate_dense_binary,
    ir.DenseMBBN.kind: _estimate_dense_mbbn,
    ir.DenseShift.kind: _estimate_dense_shift,
    ir.MultiThresholdLayer.kind: _estimate_multithreshold,
    ir.ArgMax.kind: _estimate_argmax,
}
"""Cost model per IR layer kind: ``ESTIMATORS[kind](layer, in_type, folding) -> Resources``."""


def estimate(layer: ir.Layer, in_type: ir.TensorType, folding: Folding) -> Resources:
    """Analytic iCE40 cost of ``layer`` on inputs of ``in_type`` under ``folding``."""
    return ESTIMATORS[layer.kind](layer, in_type, folding)


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def candidates(layer: ir.Layer) -> list[Folding]:
    """Every legal folding of ``layer``."""
    pes = _divisors(layer.n_out)
    # argmax and the slicer have no weights to place
    modes = WEIGHT_MODES[:1] if layer.kind in (ir.ArgMax.kind, ir.QAMSlicer.kind) else \
        WEIGHT_MODES
    if layer.kind in ELEMENTWISE:
        return [Folding(pe, 1, mode) for pe, mode in itertools.product(pes, modes)]
    bfs = _divisors(layer.m_bits * layer.k_bits) if layer.kind == ir.DenseMBBN.kind else [1]
    sparse = [Folding(1, 1, SPARSE), Folding(1, 1, LOADED)] if layer.kind == ir.SAMLayer.kind \
        else []
    if layer.kind == ir.DenseMAC.kind and layer.threshold is None:
        sparse += [Folding(1, 1, SPARSE)] + [Folding(pe, 1, SERIAL) for pe in pes]
    return [Folding(pe, simd, mode, bf) for pe, simd, mode, bf in
            itertools.product(pes, _divisors(layer.n_in), modes, bfs)] + sparse


def _priced(layer, in_type) -> list[tuple[Folding, int, Resources]]:
    """Every candidate folding of ``layer`` with its step count and estimate."""
    return [(f, fold_steps(layer, f), estimate(layer, in_type, f)) for f in candidates(layer)]


def _cheapest(priced, max_steps: int) -> list[tuple[Folding, Resources]]:
    """Per weight mode, the folding with the fewest cells within ``max_steps`` cycles."""
    best = {}
    for f, steps, r in priced:
        if steps <= max_steps:
            if f.weights not in best or (r.lcs, r.ebr) < (best[f.weights][1].lcs,
                                                         best[f.weights][1].ebr):
                best[f.weights] = (f, r)
    return list(best.values())


def _total(combo, layers, types) -> Resources:
    """A combination's cost: its layers, and a register of the vector wherever a serial side
    meets a vector side (a Serializer or Deserializer holds it)."""
    total = sum((r for _, r in combo), Resources())
    for k in range(1, len(combo)):
        if serial_sides(combo[k - 1][0])[1] != serial_sides(combo[k][0])[0]:
            total += Resources(layers[k].n_in * types[k].bits)
    return total


def choose_folding(model: ir.Model, *, lc_budget: int, ebr_budget: int,
                   input_register_lcs: int = 0, dsp_budget: int | None = None,
                   spram_budget: int = 0) -> dict[str, Folding]:
    """The fastest folding of ``model`` whose estimate fits both budgets.

    ``input_register_lcs`` is charged to every folding of the first layer that takes its input
    as a whole vector (the register that gathers it in front of the pipeline), and not to a
    sparse or serial one, which takes it one element at a time. ``dsp_budget`` (None: no
    limit) bounds the DSP blocks of the multiply-accumulate layers, ``spram_budget`` the SPRAM
    blocks of loaded entries (``weights="loaded"``), which only the first layer may use: its
    preamble comes in through the model's input.

    The pipeline runs at the pace of its slowest layer, so every layer gets the cheapest
    folding no slower than a common step count, the smallest one that fits. Between weights
    in logic and in block RAM, the combination with the fewest cells that fits is taken.
    Raises :class:`DoesNotFitError`, naming the costliest layer, when even the slowest
    folding does not fit.
    """
    model.check()
    layers, types = model.layers, model.types()
    # each candidate is priced once: multi-branch layers have many (branch folds)
    priced = [_priced(layer, t) for layer, t in zip(layers, types)]
    priced = [[p for p in ps if p[0].weights != LOADED or (k == 0 and spram_budget > 0)]
              for k, ps in enumerate(priced)]
    priced[0] = [(f, steps, r if serial_sides(f)[0] else r + Resources(input_register_lcs))
                 for f, steps, r in priced[0]]
    targets = sorted({steps for p in priced for _, steps, _ in p})
    for target in targets:
        options = [_cheapest(p, target) for p in priced]
        if any(not o for o in options):
            continue
        fitting = [combo for combo in itertools.product(*options)
                   if _total(combo, layers, types).fits(lc_budget=lc_budget,
                                                        ebr_budget=ebr_budget,
                                                        dsp_budget=dsp_budget,
                                                        spram_budget=spram_budget)]
        if fitting:
            combo = min(fitting, key=lambda c: _total(c, layers, types).lcs)
            return {layer.name: f for layer, (f, _) in zip(layers, combo)}
    slowest = [min((r for _, r in _cheapest(p, targets[-1])), key=lambda r: r.lcs)
               for p in priced]
    total = sum(slowest, Resources())
    # name the layer that takes most of the resource the model overruns most
    over = max((("logic cells", "lcs", lc_budget), ("EBRs", "ebr", ebr_budget),
                ("DSPs", "dsp", dsp_budget)),
               key=lambda o: -1 if o[2] is None else getattr(total, o[1]) / max(1, o[2]))
    worst = max(range(len(layers)), key=lambda i: getattr(slowest[i], over[1]))
    dsps = "" if dsp_budget is None else f" and {dsp_budget} DSPs"
    raise DoesNotFitError(
        f"layer {layers[worst].name} alone needs about {getattr(slowest[worst], over[1])} "
        f"{over[0]} at its slowest folding; the model needs about {total.lcs} logic cells, "
        f"{total.ebr} EBRs and {total.dsp} DSPs, the budget is {lc_budget} logic cells, "
        f"{ebr_budget} EBRs{dsps}")
