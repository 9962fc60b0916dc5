"""Sum-and-Max engines (sam, seed 002) in Amaranth simulation against the golden model, equal
integers; their plan, folding, cost estimates, and the absence of multipliers in their Verilog."""

import re

import numpy as np
import pytest
from amaranth.back import rtlil, verilog

from hwgen.hw import ranged
from hwgen.hw.folding import choose_folding
from hwgen.hw import sam
from hwgen.hw.pipeline import Pipeline
from hwgen.hw.registry import candidates, check_folding, engine, estimate, fold_steps
from hwgen.hw.resources import WEIGHT_MODES, Folding
from hwgen.hw.testbench import simulate_stream
from hwgen.sw.core import golden, ir
from hwgen.sw.core.sam import sam_term
from test_hw_shift import check_layer

S4 = ir.TensorType("signed", 4)
U3 = ir.TensorType("unsigned", 3)
S3 = ir.TensorType("signed", 3)
N_IN, N_OUT = 12, 6
N_VECTORS = 200

# (reduce, sign) per term: eq. 3, eq. 4 and eq. 5 of seed 002
FORMS = {"max": (("max", 1),), "max-max": (("max", 1), ("max", -1)),
         "max+min": (("max", 1), ("min", 1))}


def sam_layer(rng, n_in, n_out, form="max+min", *, prune=0.5, w_range=8, fill_range=20,
              name="sam"):
    """Weights uniform in -w_range..w_range, each entry pruned with probability ``prune``,
    fills uniform in -fill_range..fill_range (kept on empty rows only)."""
    terms = []
    for reduce, sign in FORMS[form]:
        w = rng.integers(-w_range, w_range + 1, (n_out, n_in))
        keep = rng.random((n_out, n_in)) >= prune
        fill = rng.integers(-fill_range, fill_range + 1, n_out)
        terms.append(ir.SAMTerm(reduce, sign, w, keep, fill))
    return ir.SAMLayer(name, n=n_in, terms=terms)


def remade(layer, name="sam"):
    """``layer`` built anew from its terms, after their ``keep`` or ``fill`` were edited in
    place: pruned weights zeroed, fills kept on empty rows only (the IR's invariants)."""
    return ir.SAMLayer(name, n=layer.n, terms=[
        ir.SAMTerm(t.reduce, t.sign, t.weights, t.keep, t.fill) for t in layer.terms])


def random_codes(rng, in_type, n, count):
    return rng.integers(in_type.lo, in_type.hi + 1, (count, n))


def edge_inputs(in_type, n):
    """Every element at its minimum, at its maximum, at 0 where the type has it, alternating."""
    lo, hi = in_type.lo, in_type.hi
    rows = [[lo] * n, [hi] * n, [max(lo, 0)] * n, [lo, hi] * (n // 2), [hi, lo] * (n // 2)]
    return np.array(rows)


def fid(f):
    return f"pe{f.pe}-simd{f.simd}-{f.weights}"


# fully parallel (constant weights), folded every way, weights in LUTs and in block RAM
PARALLEL = Folding(N_OUT, N_IN, "logic")
FOLDED = [Folding(2, 3, "bram"), Folding(3, 4, "logic"), Folding(6, 2, "bram"),
          Folding(1, 12, "logic"), Folding(2, 12, "bram"), Folding(1, 1, "logic")]
PRUNES = (0.0, 0.5, 0.95)


def engine_cases():
    """Per form and pruning: fully parallel, and one folded folding in turn; signed and
    unsigned inputs alternate, so each form meets both and both weight modes."""
    i = 0
    for form in FORMS:
        for prune in PRUNES:
            in_type = (S4, U3)[i % 2]
            yield form, prune, in_type, PARALLEL
            yield form, prune, (U3, S4)[i % 2], FOLDED[i % len(FOLDED)]
            i += 1


@pytest.mark.parametrize("form,prune,in_type,folding", list(engine_cases()),
                         ids=lambda v: v.to_json() if isinstance(v, ir.TensorType) else
                         fid(v) if isinstance(v, Folding) else str(v))
def test_sam_engine(form, prune, in_type, folding):
    rng = np.random.default_rng([list(FORMS).index(form), int(prune * 100), in_type.bits,
                                 folding.pe, folding.simd])
    layer = sam_layer(rng, N_IN, N_OUT, form, prune=prune)
    x = np.concatenate([edge_inputs(in_type, N_IN), random_codes(rng, in_type, N_IN, N_VECTORS)])
    expected = check_layer(layer, in_type, folding, x, rng)
    lo, hi = layer.out_bounds(in_type)
    assert (expected >= lo).all() and (expected <= hi).all()
    if prune == 0.95:
        assert any(t.empty.any() for t in layer.terms)       # fills are used
    if all(sign > 0 for _, sign in FORMS[form]):
        # a constant input reaches both ends of every output's exact range
        np.testing.assert_array_equal(expected[0], lo)
        np.testing.assert_array_equal(expected[1], hi)


@pytest.mark.parametrize("in_type", [S4, U3, ir.TensorType("signed", 8)],
                         ids=lambda t: t.to_json())
def test_sam_engine_wide_weights(in_type):
    """Weights much wider than the inputs (entries that can never win are dropped when
    constant, pruned entries store a weight far below when folded); fills far outside the
    reachable range."""
    rng = np.random.default_rng(in_type.bits + 100)
    layer = sam_layer(rng, 16, 4, "max+min", prune=0.4, w_range=300, fill_range=5000)
    layer.terms[1].keep[2] = False
    layer.terms[1].fill[2] = -5000
    layer = remade(layer)
    x = np.concatenate([edge_inputs(in_type, 16), random_codes(rng, in_type, 16, 120)])
    for folding in (Folding(4, 16), Folding(2, 4, "bram"), Folding(1, 8, "logic")):
        check_layer(layer, in_type, folding, x, rng)


FILL_FOLDINGS = [Folding(4, 8, "logic"), Folding(2, 4, "logic"), Folding(1, 2, "bram"),
                 Folding(4, 2, "logic"), Folding(2, 8, "bram")]


@pytest.mark.parametrize("folding", FILL_FOLDINGS, ids=fid)
def test_sam_empty_rows_use_their_fill(folding):
    """Rows with no kept entry in one term or in both: the term is the row's fill; a term
    pruned entirely is its fills; lanes whose rows are empty at some neuron folds only."""
    rng = np.random.default_rng([folding.pe, folding.simd, 7])
    layer = sam_layer(rng, 8, 4, "max+min", prune=0.3)
    max_t, min_t = layer.terms
    max_t.keep[1] = False                       # row 1: both terms empty
    min_t.keep[1] = False
    min_t.keep[2] = False                       # row 2: the min term empty
    max_t.keep[3] = False                       # row 3: the max term empty
    fills = {(0, 1): 37, (1, 1): -41, (1, 2): 5, (0, 3): -9}
    for (t, j), v in fills.items():
        layer.terms[t].fill[j] = v
    layer = remade(layer)
    x = np.concatenate([edge_inputs(U3, 8), random_codes(rng, U3, 8, 120)])
    expected = check_layer(layer, U3, folding, x, rng)
    assert (expected[:, 1] == 37 - 41).all()
    # eq. 4 with its second term pruned entirely: max - fill, per row
    eq4 = sam_layer(rng, 8, 4, "max-max", prune=0.2)
    eq4.terms[1].keep[:] = False
    eq4.terms[1].fill[:] = [3, -2, 0, 11]
    eq4 = remade(eq4)
    check_layer(eq4, U3, folding, x, rng)


def test_fully_pruned_term_costs_nothing_but_its_fill():
    """Fully parallel, a term with no kept entry makes no adder and no comparator: the
    Verilog of max + (pruned min) has the operators of the max alone, plus one adder per
    output for the fills."""
    rng = np.random.default_rng(3)
    layer = sam_layer(rng, 8, 4, "max+min", prune=0.3)
    layer.terms[1].keep[:] = False
    layer.terms[1].fill[:] = [1, 2, 3, 4]
    both = remade(layer)
    alone = ir.SAMLayer("sam", n=8, terms=[both.terms[0]])
    ops = [operators(engine(lay, S4, Folding(4, 8))) for lay in (both, alone)]
    assert ops[0][">="] == ops[1][">="] > 0 and ops[0]["<="] == ops[1]["<="] == 0
    assert ops[0]["+"] == ops[1]["+"] + 4
    x = random_codes(rng, S4, 8, 50)
    check_layer(both, S4, Folding(4, 8), x, rng)


@pytest.mark.parametrize("folding", [Folding(2, 2, "logic"), Folding(4, 2, "bram"),
                                     Folding(1, 4, "logic")], ids=fid)
def test_sam_entries_kept_in_some_synapse_folds_only(folding):
    """Rows whose kept entries all lie in one synapse fold (the first, the last, a middle
    one): the other folds' trees see only pruned entries, which must not win."""
    rng = np.random.default_rng([folding.pe, folding.simd, 8])
    n_in, n_out, simd = 8, 4, folding.simd
    terms = []
    for reduce, sign in FORMS["max+min"]:
        w = rng.integers(-8, 9, (n_out, n_in))
        keep = np.zeros((n_out, n_in), bool)
        for j, sf in enumerate([0, n_in // simd - 1, 1, 0]):
            keep[j, sf * simd:(sf + 1) * simd] = rng.random(simd) < 0.7
            keep[j, sf * simd] = True
        terms.append(ir.SAMTerm(reduce, sign, w, keep, np.zeros(n_out)))
    layer = ir.SAMLayer("sam", n=n_in, terms=terms)
    x = np.concatenate([edge_inputs(S4, n_in), random_codes(rng, S4, n_in, 150)])
    check_layer(layer, S4, folding, x, rng)


def tie_fraction(layer, x):
    """Fraction of (vector, output, term) where two or more kept entries reach the term."""
    ties, total = 0, 0
    for t in layer.terms:
        absent = -np.inf if t.reduce == "max" else np.inf
        sums = np.where(t.keep, x[:, None, :] + t.weights, absent)
        best = sums.max(axis=2) if t.reduce == "max" else sums.min(axis=2)
        live = ~t.empty
        ties += ((sums == best[..., None]).sum(axis=2)[:, live] >= 2).sum()
        total += len(x) * live.sum()
    return ties / total


@pytest.mark.parametrize("folding", [Folding(4, 8, "logic"), Folding(2, 4, "bram"),
                                     Folding(1, 2, "logic")], ids=fid)
def test_sam_ties(folding):
    """Two or more entries reaching the same max (min): explicitly (equal weights on equal
    inputs, weights offsetting inputs), and often at random on 3-bit inputs with weights in
    -2..2."""
    rng = np.random.default_rng([folding.pe, folding.simd, 9])
    layer = sam_layer(rng, 8, 4, "max+min", prune=0.2, w_range=2)
    layer.terms[0].weights[0] = [1, 1, 0, -1, 1, 0, 0, 1]
    layer.terms[0].keep[0] = True
    layer = remade(layer)
    w0 = layer.terms[0].weights
    explicit = np.array([[2] * 8, [1, 1, 2, 3, 1, 2, 2, 1], [-4, 3, 3, 3, 3, 3, 3, 3]])
    x = np.concatenate([explicit, edge_inputs(S3, 8), random_codes(rng, S3, 8, 150)])
    # row 0's max: 4 entries tie at 3, all 8 at 2, 3 at 4
    sums = explicit + w0[0]
    assert [(row == row.max()).sum() for row in sums] == [4, 8, 3]
    assert tie_fraction(layer, x) > 0.15
    expected = check_layer(layer, S3, folding, x, rng)
    assert list(sam_term(layer.terms[0], explicit)[:, 0]) == [3, 2, 4]
    assert len(np.unique(expected)) > 5


@pytest.mark.parametrize("folding", [Folding(1, 1, "logic"), Folding(3, 4, "bram"),
                                     Folding(6, 12, "logic")], ids=fid)
def test_sam_latency_and_interval(folding):
    rng = np.random.default_rng(5)
    layer = sam_layer(rng, N_IN, N_OUT)
    dut = engine(layer, S4, folding)
    assert dut.fold_steps == fold_steps(layer, folding)
    run = simulate_stream(dut, random_codes(rng, S4, N_IN, 4))
    assert run.valid_cycles[0] - run.in_cycles[0] == dut.latency == dut.fold_steps + 4
    assert set(np.diff(run.out_cycles)) == {dut.interval} == {dut.fold_steps + 3}


# --- netlists ------------------------------------------------------------------------------------

def verilog_text(dut):
    """The Verilog without comments, attributes, string literals and ``always @*``."""
    text = verilog.convert(dut, name="engine", emit_src=False)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"\(\*.*?\*\)", "", text, flags=re.S)
    text = re.sub(r"@\s*\*", "@", text)
    return re.sub(r'"[^"]*"', "", text)


def operators(dut):
    """Operator counts of the continuous assignments, and the count of declarations."""
    text = verilog_text(dut)
    assigns = "\n".join(re.findall(r"^\s*assign\b.*$", text, re.M))
    return {op: len(re.findall(pat, assigns)) for op, pat in
            {"+": r"\+", ">=": ">=", "<=": r"(?<!<)<=(?!=)",
             "?": r"\?"}.items()} | {"decl": len(re.findall(r"^\s*(?:wire|reg)\b", text, re.M))}


@pytest.mark.parametrize("form", list(FORMS))
def test_verilog_has_no_multiplier(form):
    """No ``*`` in the Verilog of a fully parallel engine; folded, the only one is the
    controller's input chunk index (``s1_sf`` times the chunk width, a constant), and RTLIL
    has no ``$mul`` in the SAM datapath."""
    rng = np.random.default_rng(8)
    layer = sam_layer(rng, 16, 8, form, prune=0.4)
    for folding in (Folding(8, 16), Folding(2, 4, "bram"), Folding(4, 16, "logic")):
        dut = engine(layer, S4, folding)
        text = verilog_text(dut)
        stars = [line for line in text.splitlines() if "*" in line]
        assert all(re.search(r"= s1_sf \* \d+'h[0-9a-f]+;", line) for line in stars), stars
        if folding.pe == 8:
            assert not stars and "weights" not in text
            assert "$mul" not in rtlil.convert(dut, name="engine", emit_src=False)


def test_pruning_shrinks_the_constant_verilog():
    """Fully parallel: a pruned entry has no adder and no comparator. With weights narrower
    than the input span no entry is dominated, so every kept entry is a tree leaf; the
    comparators are exactly the kept entries less one per live row and term, the adders the
    distinct nonzero (input, weight) pairs plus the output adders."""
    rng = np.random.default_rng(10)
    s6 = ir.TensorType("signed", 6)
    full = sam_layer(rng, 16, 8, "max+min", prune=0.0, w_range=6)
    counts = {}
    for prune in (0.0, 0.5, 0.9):
        keeps = [rng.random(t.keep.shape) >= prune for t in full.terms]
        layer = ir.SAMLayer("sam", n=16, terms=[
            ir.SAMTerm(t.reduce, t.sign, t.weights, k, np.zeros(8)) for t, k in
            zip(full.terms, keeps)])
        ops = operators(engine(layer, s6, Folding(8, 16)))
        tree_nodes = sum(int(np.maximum(k.sum(axis=1) - 1, 0).sum()) for k in keeps)
        assert ops[">="] + ops["<="] == tree_nodes
        pairs = {(i, int(t.weights[j, i])) for t in layer.terms
                 for j, i in zip(*t.keep.nonzero()) if t.weights[j, i]}
        out_adders = int((~layer.terms[0].empty & ~layer.terms[1].empty).sum())
        counts[prune] = ops
        counts[prune]["other +"] = ops["+"] - len(pairs) - out_adders
    assert counts[0.0]["other +"] == counts[0.5]["other +"] == counts[0.9]["other +"]
    assert counts[0.9]["decl"] < counts[0.5]["decl"] < counts[0.0]["decl"]
    assert counts[0.5]["decl"] < 0.7 * counts[0.0]["decl"]


def test_dominated_entries_make_no_logic():
    """An entry whose largest sum is at most another kept entry's smallest never wins: no
    adder, no comparator (for a max: weight 20 below the row's largest on 4-bit inputs)."""
    w = np.array([[0, 20, -1, 8], [3, 3, 3, 3]])
    keep = np.ones_like(w, bool)
    layer = ir.SAMLayer("sam", n=4, terms=[ir.SAMTerm("max", 1, w, keep, np.zeros(2))])
    plan = sam.plan_terms(layer, S4, 2, 4)[0]
    kept = [len(ranged.undominated([ranged.Ranged(None, int(plan.lo[p, s]), int(plan.hi[p, s]))
                                 for s in np.flatnonzero(plan.active[p])], "max"))
            for p in range(2)]
    assert kept == [2, 4]          # row 0 keeps x1 + 20 (12..27) and x3 + 8 (0..15)
    ops = operators(engine(layer, S4, Folding(2, 4)))
    assert ops[">="] == 1 + 3
    rng = np.random.default_rng(11)
    check_layer(layer, S4, Folding(2, 4), np.concatenate([edge_inputs(S4, 4),
                                                          random_codes(rng, S4, 4, 80)]), rng)


@pytest.mark.parametrize("folding", [Folding(4, 16), Folding(2, 16, "bram"), Folding(4, 4)],
                         ids=fid)
def test_estimate_counts_the_engines_comparators(folding):
    """The estimate's tree nodes (after dropping entries that cannot win) and running
    comparators are the comparators of the engine's Verilog."""
    rng = np.random.default_rng([folding.pe, folding.simd, 13])
    layer = sam_layer(rng, 16, 4, "max+min", prune=0.3, w_range=30)
    layer.terms[0].keep[1] = False
    layer = remade(layer)
    plans = sam.plan_terms(layer, S4, folding.pe, folding.simd)
    nodes = sum(int(sam.lane_trees(plan)[0].sum()) for plan in plans)
    if folding.simd < 16:
        nodes += sum(int(plan.active.any(axis=1).sum()) for plan in plans)
    ops = operators(engine(layer, S4, folding))
    assert ops[">="] + ops["<="] == nodes
    assert estimate(layer, S4, folding).lcs > 0


# --- building blocks -----------------------------------------------------------------------------

def test_undominated_keeps_one_of_equal_constants():
    R = ranged.Ranged
    items = [R(None, 3, 3), R(None, 0, 3), R(None, 3, 3), R(None, 1, 9)]
    assert ranged.undominated(items, "max") == [items[0], items[3]]
    # for a min, of the two items reaching the bound 3, the one that can go lower stays
    assert ranged.undominated(items, "min") == [items[1], items[3]]
    assert ranged.undominated([R(None, 2, 5), R(None, -4, 2)], "min") == [R(None, -4, 2)]
    assert ranged.undominated([R(None, 2, 5), R(None, -4, 3)], "min") == \
        [R(None, 2, 5), R(None, -4, 3)]


def test_rom_fields_constant_fields_take_no_bits():
    rom = ranged.RomFields(3)
    a = rom.add([5, 5, 5])
    b = rom.add([-2, 1, 0])
    c = rom.add([1, 0, 1])
    assert rom.constant(a) == 5 and rom.constant(b) is None and rom.width == 2 + 1
    assert rom.packed() == [(-2 & 3) | 1 << 2, 1, 0 | 1 << 2]
    assert rom.columns().tolist() == [[0, 1, 0], [1, 0, 0], [1, 0, 1]]
    assert rom.constant(c) is None


def test_plan_pruned_weights_cannot_win():
    """Folded, a pruned entry stores at most the row's largest kept weight less the input
    span (max), at least the smallest plus the span (min); a position pruned where its kept
    weight could never win anyway stays a constant."""
    w = np.array([[4, 0], [9, 1]])
    keep = np.array([[True, True], [False, True]])
    for reduce, dominated in (("max", 1 - 15), ("min", 1 + 15)):      # span of S4: 15
        layer = ir.SAMLayer("sam", n=2, terms=[ir.SAMTerm(reduce, 1, w, keep, np.zeros(2))])
        plan = sam.plan_terms(layer, S4, 1, 2)[0]      # two neuron folds: rows 0 and 1
        assert list(plan.weights[0, 0]) == [4, dominated] and not plan.constant[0, 0]
        assert list(plan.weights[0, 1]) == [0, 1] and not plan.constant[0, 1]
    # kept weight 0 in row 0 is already far below row 1's largest kept weight 40: constant
    w2 = np.array([[-40, 0], [40, 7]])
    keep2 = np.array([[True, True], [True, False]])
    layer = ir.SAMLayer("sam", n=2, terms=[ir.SAMTerm("max", 1, w2, keep2, np.zeros(2))])
    plan = sam.plan_terms(layer, S4, 1, 2)[0]
    assert plan.constant[0, 1] and list(plan.weights[0, 1]) == [0, 0]
    assert not plan.constant[0, 0]


def test_range_bits_and_field_columns():
    rng = np.random.default_rng(2)
    lo = rng.integers(-300, 300, 200)
    hi = lo + rng.integers(0, 600, 200)
    assert list(ranged.range_bits(lo, hi)) == [ir.TensorType.for_range(a, b).bits
                                             for a, b in zip(lo, hi)]
    values = np.array([[-2, 1, 0], [5, 5, 4]])
    cols = ranged.field_columns(values)          # 2 bits of the first field, 3 of the second
    assert cols.tolist() == [[0, 1, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 1, 1]]


# --- folding and estimates -----------------------------------------------------------------------

def test_sam_folding_validation():
    rng = np.random.default_rng(1)
    layer = sam_layer(rng, N_IN, N_OUT)
    with pytest.raises(ValueError, match="sam: branch_folds must be 1 for a sam"):
        check_folding(layer, Folding(1, 1, "logic", 2))
    with pytest.raises(ValueError, match="sam: branch_folds must be 1"):
        engine(layer, S4, Folding(1, 1, "logic", 2))
    with pytest.raises(ValueError, match="pe must .* output count 6, not 4"):
        sam.SAMEngine(layer, in_type=S4, pe=4)
    with pytest.raises(ValueError, match="simd must .* input count 12, not 5"):
        engine(layer, S4, Folding(1, 5))
    with pytest.raises(ValueError, match="'dram'"):
        sam.SAMEngine(layer, in_type=S4, weights="dram")
    with pytest.raises(ValueError, match="integer inputs, not bipolar"):
        sam.SAMEngine(layer, in_type=ir.TensorType("bipolar", 1))
    folds = [f for f in candidates(layer) if f.weights in WEIGHT_MODES]   # and the sparse one
    assert len(folds) == 4 * 6 * 2 and {f.branch_folds for f in folds} == {1}
    assert all(check_folding(layer, f) for f in folds)
    assert fold_steps(layer, Folding(2, 3)) == 3 * 4


def test_sam_estimates_follow_parallelism_pruning_and_mode():
    rng = np.random.default_rng(3)
    s7 = ir.TensorType("signed", 7)
    layer = sam_layer(rng, 64, 32, "max+min", prune=0.5, w_range=40)
    for mode in ("logic", "bram"):
        by_pe = [estimate(layer, s7, Folding(pe, 16, mode)).lcs for pe in (1, 2, 4, 8, 32)]
        by_simd = [estimate(layer, s7, Folding(4, s, mode)).lcs for s in (2, 8, 32, 64)]
        assert by_pe == sorted(by_pe) and by_simd == sorted(by_simd), (by_pe, by_simd)
    logic, bram = (estimate(layer, s7, Folding(4, 16, mode)) for mode in ("logic", "bram"))
    assert bram.ebr >= 1 and logic.ebr == 0 and bram.lcs < logic.lcs
    assert estimate(layer, s7, Folding(32, 64, "bram")).ebr == 0        # constants, no ROM
    full = Folding(16, 64)
    dense, sparse = (sam_layer(np.random.default_rng(4), 64, 16, prune=p, w_range=40)
                     for p in (0.3, 0.9))
    assert estimate(sparse, s7, full).lcs < 0.3 * estimate(dense, s7, full).lcs
    assert estimate(dense, ir.TensorType("signed", 5), full).lcs < estimate(dense, s7, full).lcs


# --- whole models --------------------------------------------------------------------------------

def sam_model(rng, n_in=16, n_hidden=8, n_classes=4, *, in_type=S3, prune=0.5):
    """SAM (eq. 5) -> dense_int_binw -> argmax, with some empty rows in the SAM layer."""
    layer = sam_layer(rng, n_in, n_hidden, "max+min", prune=prune, w_range=4, name="sam")
    layer.terms[0].keep[0] = False
    layer.terms[1].keep[1] = False
    layer.terms[0].fill[0], layer.terms[1].fill[1] = 6, -3
    layer = remade(layer)
    fc = ir.DenseIntBinW("fc", weights=rng.integers(0, 2, (n_classes, n_hidden)))
    return ir.Model(in_type, n_in, [layer, fc, ir.ArgMax("argmax", n=n_classes)]).check()


def test_sam_pipeline_with_chosen_folding():
    rng = np.random.default_rng(12)
    model = sam_model(rng)
    loose = choose_folding(model, lc_budget=10**9, ebr_budget=10**9)
    assert loose["sam"] == Folding(8, 16, loose["sam"].weights)       # fully parallel
    types = model.types()
    full = sum(estimate(layer, t, loose[layer.name]).lcs
               for layer, t in zip(model.layers, types))
    folding = choose_folding(model, lc_budget=int(0.8 * full), ebr_budget=30)
    assert set(folding) == {layer.name for layer in model.layers}
    assert folding["sam"].weights in WEIGHT_MODES and fold_steps(model.layers[0],
                                                                 folding["sam"]) > 1
    x = np.concatenate([edge_inputs(S3, 16), random_codes(rng, S3, 16, 40)])
    for f in (folding, loose):
        run = simulate_stream(Pipeline(model, f), x, rng=rng, valid_prob=0.7, ready_prob=0.6)
        expected = golden.run(model, x)
        np.testing.assert_array_equal(np.array(run.outputs), expected)
    assert len(np.unique(expected)) > 1
