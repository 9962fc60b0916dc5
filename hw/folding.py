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
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from hwgen.hw.engines import WEIGHT_MODES, branch_split
from hwgen.sw import ir

__all__ = ["Folding", "Resources", "DoesNotFitError", "estimate", "ESTIMATORS",
           "check_folding", "fold_steps", "candidates", "choose_folding"]

EBR_BITS = 4096
EBR_WIDTHS = (16, 8, 4, 2)       # 256x16, 512x8, 1024x4, 2048x2
POPCOUNT_LCS_PER_BIT = 1.9
CONTROL_LCS = 24                  # stream handshake, stage valids, fold counters' carry logic


class DoesNotFitError(ValueError):
    """No folding of the model fits the resource budget."""


@dataclass(frozen=True)
class Folding:
    """``pe`` neurons in parallel, ``simd`` inputs per cycle, weights in ``"logic"`` or ``"bram"``,
    and ``branch_folds`` cycles per synapse fold.

    ``branch_folds`` spreads a ``dense_mbbn`` layer's M * K branches in time: 1 computes them
    all in parallel, M * K one per cycle; it divides M * K there and is 1 for every other kind.
    A ``multithreshold`` layer has ``pe`` elements per cycle and no synapse fold, so its
    ``simd`` is 1; ``weights`` places its threshold ROM. Whether a folding suits a layer is
    checked by :func:`check_folding` (and by the engines).
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
        if self.weights not in WEIGHT_MODES:
            raise ValueError(f"weights must be one of {WEIGHT_MODES}, not {self.weights!r}")


@dataclass(frozen=True)
class Resources:
    """Logic cells and 4 kbit block RAMs."""

    lcs: int = 0
    ebr: int = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(self.lcs + other.lcs, self.ebr + other.ebr)

    def fits(self, *, lc_budget: int, ebr_budget: int) -> bool:
        return self.lcs <= lc_budget and self.ebr <= ebr_budget


def check_folding(layer: ir.Layer, folding: Folding) -> Folding:
    """Raise ValueError, naming the layer, if ``folding`` does not suit ``layer``."""
    def bad(what):
        raise ValueError(f"layer {layer.name}: {what}")
    if layer.n_out % folding.pe:
        bad(f"pe must divide the output count {layer.n_out}, not {folding.pe!r}")
    if layer.kind == ir.MultiThresholdLayer.kind:
        if folding.simd != 1:
            bad(f"a multithreshold layer takes each element on its own, so simd must be 1, "
                f"not {folding.simd!r}")
    elif layer.n_in % folding.simd:
        bad(f"simd must divide the input count {layer.n_in}, not {folding.simd!r}")
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
    ``(n_out / pe) * (n_in / simd) * branch_folds``, or ``n / pe`` for a multithreshold layer."""
    check_folding(layer, folding)
    if layer.kind == ir.MultiThresholdLayer.kind:
        return layer.n_out // folding.pe
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


ESTIMATORS = {
    ir.DenseIntBinW.kind: _estimate_dense_int_binw,
    ir.DenseBinary.kind: _estimate_dense_binary,
    ir.DenseMBBN.kind: _estimate_dense_mbbn,
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
    modes = WEIGHT_MODES if layer.kind != ir.ArgMax.kind else WEIGHT_MODES[:1]
    if layer.kind == ir.MultiThresholdLayer.kind:
        return [Folding(pe, 1, mode) for pe, mode in itertools.product(pes, modes)]
    bfs = _divisors(layer.m_bits * layer.k_bits) if layer.kind == ir.DenseMBBN.kind else [1]
    return [Folding(pe, simd, mode, bf) for pe, simd, mode, bf in
            itertools.product(pes, _divisors(layer.n_in), modes, bfs)]


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


def choose_folding(model: ir.Model, *, lc_budget: int, ebr_budget: int) -> dict[str, Folding]:
    """The fastest folding of ``model`` whose estimate fits both budgets.

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
    targets = sorted({steps for p in priced for _, steps, _ in p})
    for target in targets:
        options = [_cheapest(p, target) for p in priced]
        if any(not o for o in options):
            continue
        fitting = [combo for combo in itertools.product(*options)
                   if sum((r for _, r in combo), Resources()).fits(lc_budget=lc_budget,
                                                                  ebr_budget=ebr_budget)]
        if fitting:
            combo = min(fitting, key=lambda c: sum(r.lcs for _, r in c))
            return {layer.name: f for layer, (f, _) in zip(layers, combo)}
    slowest = [min((r for _, r in _cheapest(p, targets[-1])), key=lambda r: r.lcs)
               for p in priced]
    worst = max(range(len(layers)), key=lambda i: slowest[i].lcs)
    total = sum(slowest, Resources())
    raise DoesNotFitError(
        f"layer {layers[worst].name} alone needs about {slowest[worst].lcs} logic cells at its "
        f"slowest folding; the model needs about {total.lcs} cells and {total.ebr} EBRs, the "
        f"budget is {lc_budget} cells and {ebr_budget} EBRs")
