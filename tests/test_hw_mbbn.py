"""Multi-branch engines in Amaranth simulation against the golden model, bit for bit; their
folding (branches in time), cost estimates and folding choice."""

import numpy as np
import pytest

from hwgen.hw.folding import choose_folding
from hwgen.hw.dense_mbbn import MBBNEngine, branch_split
from hwgen.hw.multithreshold import MultiThresholdEngine
from hwgen.hw.pipeline import Pipeline
from hwgen.hw.registry import candidates, check_folding, engine, estimate, fold_steps
from hwgen.hw.resources import Folding
from hwgen.hw.testbench import simulate_stream
from hwgen.sw.core import golden, ir

U5 = ir.TensorType("unsigned", 5)
S4 = ir.TensorType("signed", 4)
BIPOLAR = ir.TensorType("bipolar", 1)

MKS = [(1, 1), (2, 2), (3, 2), (2, 3), (4, 4), (1, 3)]


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def branch_fold_choices(m_bits, k_bits):
    """All branches in parallel, one per cycle, and an intermediate divisor where there is one."""
    mk = m_bits * k_bits
    mid = [d for d in divisors(mk) if 1 < d < mk]
    return sorted({1, mk, *mid[len(mid) // 2:len(mid) // 2 + 1]})


def random_multithreshold(rng, n, out, values, *, lo, hi, limits=True):
    """Rows of levels drawn from ``values`` (so codes vary), about a third flipped; with
    ``limits`` the first rows sit at and beyond the accumulator limits ``lo`` / ``hi``."""
    levels = out.hi
    t = rng.choice(np.asarray(values), (n, levels)) + rng.integers(-1, 2, (n, levels))
    edges = [[lo - 1] * levels, [hi + 1] * levels, [lo] * levels, [hi] * levels,
             np.linspace(lo - 7, hi + 7, levels).round(), [lo - 3] + [hi + 3] * (levels - 1)]
    for row, lim in enumerate(edges[:max(0, n - 2)] if limits else []):
        t[row] = lim
    t = np.sort(t, axis=1)
    flip = rng.random(n) < 0.35
    t[flip] = t[flip][:, ::-1]
    return ir.MultiThreshold(t, flip, out)


def mbbn_layer(rng, m_bits, k_bits, n_in, n_out, *, threshold, probe=None, out=None):
    layer = ir.DenseMBBN(name="fc", weights=rng.integers(0, 1 << k_bits, (n_out, n_in)),
                         m_bits=m_bits, k_bits=k_bits)
    if threshold:
        lo, hi = layer.acc_range(ir.odd_type(m_bits))
        acc = golden.run(ir.Model(ir.odd_type(m_bits), n_in, [layer]), probe)
        layer.threshold = random_multithreshold(rng, n_out, out or ir.odd_type(2), acc.ravel(),
                                                lo=lo, hi=hi)
    return layer


def mbbn_edge_inputs(layer):
    """Every code at its minimum and at its maximum, and the inputs maximizing and minimizing
    neuron 0's accumulator (every digit equal to the sign of the weight state)."""
    top = (1 << layer.m_bits) - 1
    up = np.where(layer.weights[0] >= 1 << (layer.k_bits - 1), top, 0)
    return np.array([[0] * layer.n_in, [top] * layer.n_in, up, top - up])


def check_layer(layer, in_type, folding, x, rng, *, valid_prob=0.6, ready_prob=0.5):
    dut = engine(layer, in_type, folding)
    run = simulate_stream(dut, x, rng=rng, valid_prob=valid_prob, ready_prob=ready_prob)
    expected = golden.run(ir.Model(in_type, layer.n_in, [layer]), x)
    np.testing.assert_array_equal(np.array(run.outputs), expected)
    return expected


def mbbn_cases():
    for m_bits, k_bits in MKS:
        for i, bf in enumerate(branch_fold_choices(m_bits, k_bits)):
            folds = [Folding(1, 1, "logic", bf), Folding(2, 3, "bram", bf),
                     Folding(3, 4, "logic", bf), Folding(6, 12, ["logic", "bram"][i % 2], bf)]
            yield from ((m_bits, k_bits, f) for f in folds)


@pytest.mark.parametrize("threshold", [True, False], ids=["threshold", "acc"])
@pytest.mark.parametrize("m_bits,k_bits,folding", list(mbbn_cases()),
                         ids=lambda v: str(v) if not isinstance(v, Folding) else
                         f"pe{v.pe}-simd{v.simd}-{v.weights}-bf{v.branch_folds}")
def test_mbbn_engine(m_bits, k_bits, folding, threshold):
    rng = np.random.default_rng([m_bits, k_bits, folding.pe, folding.simd,
                                 folding.branch_folds, threshold])
    n_in, n_out = 12, 6
    in_type = ir.odd_type(m_bits)
    probe = rng.integers(0, 1 << m_bits, (4, n_in))
    layer = mbbn_layer(rng, m_bits, k_bits, n_in, n_out, threshold=threshold, probe=probe)
    x = np.concatenate([probe, mbbn_edge_inputs(layer)])
    expected = check_layer(layer, in_type, folding, x, rng)
    if not threshold:
        # neuron 0's extreme accumulators, (N L_M L_K +- L_M sum |w_0|) / 2
        lm, lk = (1 << m_bits) - 1, (1 << k_bits) - 1
        reach = lm * np.abs(layer.weight_values()[0]).sum()
        assert list(expected[-2:, 0]) == [(n_in * lm * lk + reach) // 2,
                                          (n_in * lm * lk - reach) // 2]


@pytest.mark.parametrize("m_bits,k_bits,folding", [
    (2, 2, Folding(5, 7, "bram", 2)), (3, 2, Folding(2, 35, "logic", 6)),
    (2, 3, Folding(10, 14, "bram", 3)), (1, 1, Folding(2, 10, "logic", 1)),
    (4, 4, Folding(1, 70, "bram", 8)), (3, 2, Folding(5, 5, "logic", 1)),
], ids=str)
def test_mbbn_engine_beyond_one_word(m_bits, k_bits, folding):
    """70 inputs: the golden model's packed planes span two 64-bit words, simd does not
    divide 64; a wider output code (odd 3)."""
    rng = np.random.default_rng([m_bits, k_bits, folding.simd, 70])
    n_in, n_out = 70, 10
    probe = rng.integers(0, 1 << m_bits, (3, n_in))
    layer = mbbn_layer(rng, m_bits, k_bits, n_in, n_out, threshold=True, probe=probe,
                       out=ir.odd_type(3))
    x = np.concatenate([probe, mbbn_edge_inputs(layer)])
    check_layer(layer, ir.odd_type(m_bits), folding, x, rng, valid_prob=0.8, ready_prob=0.7)


def test_mbbn_thresholds_to_unsigned_and_bipolar_codes():
    rng = np.random.default_rng(31)
    probe = rng.integers(0, 4, (5, 12))
    for out in (ir.TensorType("unsigned", 2), BIPOLAR, ir.odd_type(4)):
        layer = mbbn_layer(rng, 2, 2, 12, 6, threshold=True, probe=probe, out=out)
        x = np.concatenate([probe, mbbn_edge_inputs(layer)])
        check_layer(layer, ir.odd_type(2), Folding(3, 4, "logic", 2), x, rng)


@pytest.mark.parametrize("folding", [Folding(1, 1, "logic", 4), Folding(3, 4, "bram", 2),
                                     Folding(6, 12, "logic", 1)], ids=str)
def test_mbbn_latency_and_interval(folding):
    rng = np.random.default_rng(5)
    probe = rng.integers(0, 4, (2, 12))
    layer = mbbn_layer(rng, 2, 2, 12, 6, threshold=True, probe=probe)
    dut = MBBNEngine(layer, in_type=ir.odd_type(2), pe=folding.pe, simd=folding.simd,
                     weights=folding.weights, branch_folds=folding.branch_folds)
    assert dut.fold_steps == fold_steps(layer, folding) == \
        (6 // folding.pe) * (12 // folding.simd) * folding.branch_folds
    run = simulate_stream(dut, rng.integers(0, 4, (5, 12)))
    assert run.valid_cycles[0] - run.in_cycles[0] == dut.latency == dut.fold_steps + 4
    assert set(np.diff(run.out_cycles)) == {dut.interval} == {dut.fold_steps + 3}


def test_branch_split_covers_every_divisor():
    for m_bits in range(1, 9):
        for k_bits in range(1, 9):
            for bf in divisors(m_bits * k_bits):
                for constant in (False, True):
                    b_m, b_k = branch_split(m_bits, k_bits, bf, constant)
                    assert b_m * b_k == bf and m_bits % b_m == 0 and k_bits % b_k == 0
    assert branch_split(4, 4, 4) == (1, 4)            # weight digits in time: no multiplexer
    assert branch_split(4, 4, 4, True) == (4, 1)      # constant weights stay constant
    with pytest.raises(ValueError, match="divide"):
        branch_split(2, 3, 4)


# --- the element-wise multi-threshold ---------------------------------------------------------

@pytest.mark.parametrize("pe", [1, 2, 10])
@pytest.mark.parametrize("out", [BIPOLAR, ir.odd_type(2), ir.odd_type(3),
                                 ir.TensorType("unsigned", 2)], ids=lambda t: t.to_json())
@pytest.mark.parametrize("in_type", [U5, S4, ir.TensorType("unsigned", 1)],
                         ids=lambda t: t.to_json())
def test_multithreshold_engine(in_type, out, pe):
    rng = np.random.default_rng([in_type.bits, out.bits, out.kind == "odd", pe])
    n = 10
    values = np.arange(in_type.lo, in_type.hi + 1)
    th = random_multithreshold(rng, n, out, values, lo=in_type.lo, hi=in_type.hi)
    layer = ir.MultiThresholdLayer(name="quant", threshold=th)
    ramp = (np.arange(n)[None, :] + np.arange(0, len(values), max(1, n // 2))[:, None]) \
        % len(values) + in_type.lo
    x = np.concatenate([[[in_type.lo] * n, [in_type.hi] * n], ramp,
                        rng.integers(in_type.lo, in_type.hi + 1, (4, n))])
    weights = ["logic", "bram"][pe % 2]
    expected = check_layer(layer, in_type, Folding(pe, 1, weights), x, rng)
    assert len(np.unique(expected)) > 1


def test_multithreshold_latency_and_interval():
    rng = np.random.default_rng(8)
    th = random_multithreshold(rng, 12, ir.odd_type(2), np.arange(32), lo=0, hi=31)
    dut = MultiThresholdEngine(ir.MultiThresholdLayer("q", th), in_type=U5, pe=3)
    run = simulate_stream(dut, rng.integers(0, 32, (4, 12)))
    assert dut.fold_steps == 4
    assert run.valid_cycles[0] - run.in_cycles[0] == dut.latency == 8
    assert set(np.diff(run.out_cycles)) == {dut.interval} == {7}


# --- folding validation -------------------------------------------------------------------------

def test_folding_validation_errors():
    rng = np.random.default_rng(1)
    mbbn = ir.DenseMBBN(name="fc", weights=rng.integers(0, 8, (6, 12)), m_bits=2, k_bits=3)
    binary = ir.DenseBinary(name="fb", weights=rng.integers(0, 2, (6, 12)))
    th = random_multithreshold(rng, 12, ir.odd_type(2), np.arange(32), lo=0, hi=31)
    quant = ir.MultiThresholdLayer(name="q", threshold=th)
    with pytest.raises(ValueError, match="branch_folds must be a positive integer, not 0"):
        Folding(branch_folds=0)
    with pytest.raises(ValueError, match="not True"):
        Folding(branch_folds=True)
    with pytest.raises(ValueError, match=r"fc: branch_folds must divide .* M \* K = 6, not 4"):
        check_folding(mbbn, Folding(1, 1, "logic", 4))
    with pytest.raises(ValueError, match=r"fc: branch_folds must divide"):
        fold_steps(mbbn, Folding(1, 1, "logic", 12))
    with pytest.raises(ValueError, match="fb: branch_folds must be 1 for a dense_binary"):
        check_folding(binary, Folding(1, 1, "logic", 2))
    with pytest.raises(ValueError, match="fb: branch_folds must be 1"):
        engine(binary, BIPOLAR, Folding(1, 1, "logic", 2))
    with pytest.raises(ValueError, match="q: .* simd must be 1, not 2"):
        check_folding(quant, Folding(2, 2))
    with pytest.raises(ValueError, match="q: .* simd must be 1, not 3"):
        engine(quant, U5, Folding(1, 3))
    with pytest.raises(ValueError, match="q: branch_folds must be 1"):
        engine(quant, U5, Folding(1, 1, "logic", 2))
    with pytest.raises(ValueError, match="pe must .* 12, not 5"):
        MultiThresholdEngine(quant, in_type=U5, pe=5)
    with pytest.raises(ValueError, match="integer inputs"):
        MultiThresholdEngine(quant, in_type=BIPOLAR)
    with pytest.raises(ValueError, match="'dram'"):
        MultiThresholdEngine(quant, in_type=U5, weights="dram")
    with pytest.raises(ValueError, match=r"branch_folds must .* M \* K 6, not 4"):
        MBBNEngine(mbbn, in_type=ir.odd_type(2), branch_folds=4)
    with pytest.raises(ValueError, match="simd must .* input count 12, not 5"):
        engine(mbbn, ir.odd_type(2), Folding(1, 5, "logic", 3))
    with pytest.raises(ValueError, match="o2 inputs, not o3"):
        MBBNEngine(mbbn, in_type=ir.odd_type(3))
    assert fold_steps(mbbn, Folding(2, 3, "logic", 6)) == 3 * 4 * 6
    assert fold_steps(quant, Folding(4, 1)) == 3


def test_candidates_enumerate_branch_folds_and_elementwise_pe():
    rng = np.random.default_rng(2)
    mbbn = ir.DenseMBBN(name="fc", weights=rng.integers(0, 4, (6, 12)), m_bits=3, k_bits=2)
    folds = candidates(mbbn)
    assert {f.branch_folds for f in folds} == {1, 2, 3, 6}
    assert len(folds) == len(divisors(6)) * len(divisors(12)) * 2 * 4
    assert all(check_folding(mbbn, f) for f in folds)
    th = random_multithreshold(rng, 12, ir.odd_type(2), np.arange(32), lo=0, hi=31)
    quant = ir.MultiThresholdLayer(name="q", threshold=th)
    assert sorted((f.pe, f.weights) for f in candidates(quant)) == sorted(
        (pe, w) for pe in divisors(12) for w in ("logic", "bram"))
    binary = ir.DenseBinary(name="fb", weights=rng.integers(0, 2, (6, 12)))
    assert {f.branch_folds for f in candidates(binary)} == {1}


# --- cost estimates -----------------------------------------------------------------------------

@pytest.mark.parametrize("m_bits,k_bits", [(2, 2), (3, 2), (4, 4), (1, 3)])
def test_mbbn_estimates_grow_with_parallelism(m_bits, k_bits):
    rng = np.random.default_rng(3)
    probe = rng.integers(0, 1 << m_bits, (4, 64))
    layer = mbbn_layer(rng, m_bits, k_bits, 64, 32, threshold=True, probe=probe)
    in_type, mk = ir.odd_type(m_bits), m_bits * k_bits
    for mode in ("logic", "bram"):
        by_pe = [estimate(layer, in_type, Folding(pe, 16, mode)).lcs for pe in (1, 2, 4, 8, 32)]
        by_simd = [estimate(layer, in_type, Folding(4, s, mode)).lcs for s in (2, 8, 32, 64)]
        assert by_pe == sorted(by_pe) and by_simd == sorted(by_simd), (by_pe, by_simd)
        for pe, simd in ((1, 8), (4, 16), (8, 64), (32, 64)):
            parallel = estimate(layer, in_type, Folding(pe, simd, mode, 1))
            in_time = estimate(layer, in_type, Folding(pe, simd, mode, mk))
            assert in_time.lcs < parallel.lcs or mk == 1, (pe, simd, mode)
    # the same cycle count, spent on branches or on neurons: both cost more than neither
    slow = estimate(layer, in_type, Folding(4, 16, "logic", mk)).lcs
    assert slow < estimate(layer, in_type, Folding(4, 16, "logic", 1)).lcs


def test_mbbn_estimate_of_one_branch_is_about_dense_binary():
    """The same hardware; only a LUT ROM's data register, which yosys moves to the address,
    is left out of the multi-branch estimate."""
    rng = np.random.default_rng(4)
    w = rng.integers(0, 2, (32, 64))
    mbbn = ir.DenseMBBN(name="fc", weights=w, m_bits=1, k_bits=1)
    binary = ir.DenseBinary(name="fc", weights=w)
    for f in (Folding(1, 8, "bram"), Folding(32, 64)):
        assert estimate(mbbn, BIPOLAR, f) == estimate(binary, BIPOLAR, f)
    assert estimate(binary, BIPOLAR, Folding(4, 16)).lcs - \
        estimate(mbbn, BIPOLAR, Folding(4, 16)).lcs == 4 * 16


def test_multithreshold_estimates():
    rng = np.random.default_rng(6)
    th = random_multithreshold(rng, 64, ir.odd_type(3), np.arange(32), lo=0, hi=31)
    layer = ir.MultiThresholdLayer(name="q", threshold=th)
    lcs = [estimate(layer, U5, Folding(pe, 1, "bram")).lcs for pe in (1, 4, 16, 64)]
    assert lcs == sorted(lcs)
    assert estimate(layer, U5, Folding(1, 1, "bram")).ebr >= 1
    assert estimate(layer, U5, Folding(64, 1, "bram")).ebr == 0     # a single word: constants


# --- whole models -------------------------------------------------------------------------------

def mbbn_model(rng, m_bits, k_bits, sizes, *, in_type=U5, probe_count=16):
    """multithreshold -> dense_mbbn (multi-threshold to odd M) ... -> dense_mbbn -> argmax; the
    thresholds sit at golden accumulators of random probes, so the classes vary."""
    probe = rng.integers(in_type.lo, in_type.hi + 1, (probe_count, sizes[0]))
    quant = ir.MultiThresholdLayer(name="quant", threshold=random_multithreshold(
        rng, sizes[0], ir.odd_type(m_bits), np.quantile(probe, [0.2, 0.5, 0.8]).round(),
        lo=in_type.lo, hi=in_type.hi, limits=False))
    layers, x = [quant], golden.run_layer(quant, probe)
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layer = ir.DenseMBBN(name=f"fc{i}", weights=rng.integers(0, 1 << k_bits, (n_out, n_in)),
                             m_bits=m_bits, k_bits=k_bits)
        if i < len(sizes) - 2:
            acc = golden.run_layer(layer, x)
            q = np.quantile(acc, np.linspace(0.1, 0.9, (1 << m_bits) - 1), axis=0).T.round()
            flip = rng.random(n_out) < 0.3
            q[flip] = q[flip][:, ::-1]
            layer.threshold = ir.MultiThreshold(q, flip, ir.odd_type(m_bits))
        layers.append(layer)
        x = golden.run_layer(layer, x)
    layers.append(ir.ArgMax(name="argmax", n=sizes[-1]))
    return ir.Model(in_type, sizes[0], layers).check(), probe


@pytest.mark.parametrize("seed", range(3))
def test_mbbn_pipeline_matches_golden(seed):
    rng = np.random.default_rng(seed)
    m_bits, k_bits = [(2, 2), (1, 3), (3, 2)][seed]
    model, probe = mbbn_model(rng, m_bits, k_bits, [12, 8, 6])
    folding = {layer.name: candidates(layer)[rng.integers(len(candidates(layer)))]
               for layer in model.layers}
    x = np.concatenate([probe[:6], [[0] * 12, [31] * 12]])
    pipeline = Pipeline(model, folding)
    run = simulate_stream(pipeline, x, rng=rng, valid_prob=0.5, ready_prob=0.4)
    np.testing.assert_array_equal(np.array(run.outputs), golden.run(model, x))


def test_choose_folding_on_a_multi_branch_model():
    rng = np.random.default_rng(10)
    model, probe = mbbn_model(rng, 2, 2, [64, 32, 10])
    budget = dict(lc_budget=3500, ebr_budget=30)
    folding = choose_folding(model, **budget)
    assert set(folding) == {layer.name for layer in model.layers}
    for layer, t in zip(model.layers, model.types()):
        check_folding(layer, folding[layer.name])
    total = sum(estimate(layer, t, folding[layer.name]).lcs
                for layer, t in zip(model.layers, model.types()))
    assert total <= budget["lc_budget"]
    steps = max(fold_steps(layer, folding[layer.name]) for layer in model.layers)
    loose = choose_folding(model, lc_budget=10**9, ebr_budget=10**9)
    assert max(fold_steps(layer, loose[layer.name]) for layer in model.layers) < steps
    tight = choose_folding(model, lc_budget=1800, ebr_budget=30)
    assert max(fold_steps(layer, tight[layer.name]) for layer in model.layers) > steps
    # a chosen folding simulates: one inference end to end, plus the extremes
    x = np.concatenate([probe[:1], [[0] * 64, [31] * 64]])
    run = simulate_stream(Pipeline(model, folding), x, rng=rng, ready_prob=0.7)
    np.testing.assert_array_equal(np.array(run.outputs), golden.run(model, x))
    classes = golden.run(model, probe)[:, 0]
    assert len(set(classes)) > 1
