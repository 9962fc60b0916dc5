"""Shift-accumulate engines (dense_shift) in Amaranth simulation against the golden model, bit
for bit; their folding, cost estimates, and the absence of multipliers in their Verilog."""

import re

import numpy as np
import pytest
from amaranth.back import rtlil, verilog

from hwgen.hw.folding import choose_folding
from hwgen.hw.dense_shift import ShiftAccumulateEngine, shift_digits
from hwgen.hw.pipeline import Pipeline
from hwgen.hw.registry import candidates, check_folding, engine, estimate, fold_steps
from hwgen.hw.resources import Folding
from hwgen.hw.testbench import simulate_stream
from hwgen.sw.core import golden, ir

BIPOLAR = ir.TensorType("bipolar", 1)
U5 = ir.TensorType("unsigned", 5)
S4 = ir.TensorType("signed", 4)
IN_TYPES = [ir.pow2_type(2), ir.pow2_type(3), ir.pow2_type(4), BIPOLAR, U5, S4]
N_IN, N_OUT = 12, 6
N_VECTORS = 300


def shift_weights(rng, n_out, n_in, *, e_max=3, zeros=0.25):
    """0 with probability ``zeros``, else +-2^e, sign and e in 0..e_max uniform."""
    e = rng.integers(0, e_max + 1, (n_out, n_in))
    sign = rng.choice([-1, 1], (n_out, n_in))
    return np.where(rng.random((n_out, n_in)) < zeros, 0, sign << e)


def quantile_threshold(rng, acc, out):
    """Per neuron, ``out.hi`` levels at random quantiles of its accumulators, sorted, about a
    third of the rows flipped (descending, counting ``acc <= t``)."""
    n, levels = acc.shape[1], out.hi
    q = np.quantile(acc, np.sort(rng.uniform(0.05, 0.95, (n, levels)), axis=1), axis=0)
    t = np.round([q[j, :, j] for j in range(n)]).astype(np.int64)
    flip = rng.random(n) < 0.35
    t[flip] = t[flip][:, ::-1]
    return ir.MultiThreshold(t, flip, out)


def shift_layer(rng, in_type, n_in, n_out, *, out=None, e_max=3, zeros=0.25, probe=None):
    layer = ir.DenseShift(name="fc", weights=shift_weights(rng, n_out, n_in, e_max=e_max,
                                                           zeros=zeros))
    if out is not None:
        layer.threshold = quantile_threshold(rng, golden.run_layer(layer, probe, in_type), out)
    return layer


def random_codes(rng, in_type, n, count):
    return rng.integers(in_type.lo, in_type.hi + 1, (count, n))


def edge_inputs(in_type, layer):
    """Every code at its minimum, at its maximum, at value 0 where the type has one, and the
    inputs maximizing and minimizing neuron 0's accumulator (values rise with codes)."""
    n = layer.n_in
    lo, hi = in_type.lo, in_type.hi
    rows = [[lo] * n, [hi] * n]
    zero = [c for c in range(lo, hi + 1) if in_type.values(c) == 0]
    if zero:
        rows.append([zero[0]] * n)
    w0 = layer.weights[0]
    return np.array(rows + [np.where(w0 > 0, hi, lo), np.where(w0 > 0, lo, hi)])


def check_layer(layer, in_type, folding, x, rng, *, valid_prob=0.8, ready_prob=0.7):
    dut = engine(layer, in_type, folding)
    run = simulate_stream(dut, x, rng=rng, valid_prob=valid_prob, ready_prob=ready_prob)
    expected = golden.run_layer(layer, x, in_type)
    np.testing.assert_array_equal(np.array(run.outputs), expected)
    return expected


def threshold_out(in_type):
    """A code type per input type, so that every kind of output code is covered."""
    return {"p2": ir.pow2_type(3), "p3": ir.pow2_type(3), "p4": ir.pow2_type(2),
            "bipolar": BIPOLAR, "u5": ir.TensorType("unsigned", 2),
            "s4": ir.odd_type(2)}[in_type.to_json()]


# fully parallel (constants), folded both ways, weights in LUTs and in block RAM
FOLDINGS = [Folding(6, 12, "logic"), Folding(2, 3, "bram"), Folding(3, 4, "logic"),
            Folding(6, 2, "bram"), Folding(1, 12, "logic")]


def engine_cases():
    """Per input type and output (codes or accumulator): fully parallel, and one of the
    folded foldings in turn, so that every input type meets both weight modes."""
    for i, in_type in enumerate(IN_TYPES):
        for j, threshold in enumerate((True, False)):
            yield in_type, threshold, FOLDINGS[0]
            yield in_type, threshold, FOLDINGS[1 + (2 * i + j) % (len(FOLDINGS) - 1)]


@pytest.mark.parametrize("in_type,threshold,folding", list(engine_cases()),
                         ids=lambda v: v.to_json() if isinstance(v, ir.TensorType) else
                         f"pe{v.pe}-simd{v.simd}-{v.weights}" if isinstance(v, Folding) else
                         ["acc", "threshold"][v])
def test_shift_engine(in_type, threshold, folding):
    rng = np.random.default_rng([IN_TYPES.index(in_type), threshold, folding.pe, folding.simd])
    probe = random_codes(rng, in_type, N_IN, 256)
    layer = shift_layer(rng, in_type, N_IN, N_OUT, probe=probe,
                        out=threshold_out(in_type) if threshold else None)
    x = np.concatenate([edge_inputs(in_type, layer), random_codes(rng, in_type, N_IN, N_VECTORS)])
    expected = check_layer(layer, in_type, folding, x, rng)
    if threshold:
        assert len(np.unique(expected)) > 1
    else:
        # neuron 0 reaches both ends of its range on the extreme inputs
        vlo, vhi = in_type.value_range
        w0 = layer.weights[0]
        hi0 = np.maximum(w0 * vlo, w0 * vhi).sum()
        lo0 = np.minimum(w0 * vlo, w0 * vhi).sum()
        assert list(expected[len(x) - N_VECTORS - 2:len(x) - N_VECTORS, 0]) == [hi0, lo0]


@pytest.mark.parametrize("in_type,folding", [
    (ir.pow2_type(3), Folding(4, 16, "logic")), (ir.pow2_type(3), Folding(2, 4, "bram")),
    (S4, Folding(4, 16, "logic")), (S4, Folding(1, 8, "logic")),
    (BIPOLAR, Folding(4, 16, "logic")), (BIPOLAR, Folding(2, 4, "bram")),
    (ir.odd_type(3), Folding(4, 16, "bram")), (ir.odd_type(3), Folding(4, 2, "logic")),
], ids=str)
def test_shift_engine_large_exponents(in_type, folding):
    """Exponents up to 10 over 16 inputs: wide partial sums, a 4-bit exponent field."""
    rng = np.random.default_rng([in_type.bits, folding.pe, folding.simd, 10])
    probe = random_codes(rng, in_type, 16, 256)
    out = ir.pow2_type(3) if folding.weights == "logic" else None
    layer = shift_layer(rng, in_type, 16, 4, e_max=10, zeros=0.2, probe=probe, out=out)
    x = np.concatenate([edge_inputs(in_type, layer), random_codes(rng, in_type, 16, 200)])
    check_layer(layer, in_type, folding, x, rng)


def test_shift_engine_degenerate_weights():
    """Rows all zero, all one sign, one exponent; positions that never change over the folds
    (no gate, no sign multiplexer, no shifter); an exponent of 15; pow2 codes of 5 and 6 bits."""
    rng = np.random.default_rng(77)
    w = shift_weights(rng, 4, 8)
    w[0] = 0                      # a constant neuron
    w[1] = np.abs(w[1]) + (w[1] == 0)   # never negative, never zero
    w[2, :4] = -8                 # a constant negative exponent-3 half row
    w[3, 0] = 1 << 15
    layer = ir.DenseShift(name="fc", weights=w)
    for in_type in (ir.pow2_type(5), ir.pow2_type(6), U5):
        x = np.concatenate([edge_inputs(in_type, layer), random_codes(rng, in_type, 8, 60)])
        for folding in (Folding(4, 8), Folding(2, 4, "bram"), Folding(4, 2)):
            check_layer(layer, in_type, folding, x, rng)


def test_shift_digits_decode_every_code():
    """value = alpha z + beta, -value = alpha (zmax - z) + gamma, z in 0 .. zmax."""
    for t in [*IN_TYPES, ir.pow2_type(5), ir.pow2_type(6), ir.odd_type(3),
              ir.TensorType("signed", 1), ir.TensorType("unsigned", 1)]:
        alpha, beta, zmax = shift_digits(t)
        codes = np.arange(t.lo, t.hi + 1)
        z = (t.values(codes) - beta) // alpha
        assert (alpha * z + beta == t.values(codes)).all()
        assert z.min() == 0 and z.max() == zmax, t


@pytest.mark.parametrize("folding", [Folding(1, 1, "logic"), Folding(3, 4, "bram"),
                                     Folding(6, 12, "logic")], ids=str)
def test_shift_latency_and_interval(folding):
    rng = np.random.default_rng(5)
    layer = shift_layer(rng, U5, N_IN, N_OUT)
    dut = ShiftAccumulateEngine(layer, in_type=U5, pe=folding.pe, simd=folding.simd,
                                weights=folding.weights)
    assert dut.fold_steps == fold_steps(layer, folding)
    run = simulate_stream(dut, random_codes(rng, U5, N_IN, 4))
    assert run.valid_cycles[0] - run.in_cycles[0] == dut.latency == dut.fold_steps + 4
    assert set(np.diff(run.out_cycles)) == {dut.interval} == {dut.fold_steps + 3}


def verilog_operators(text):
    """The Verilog without comments, attributes, string literals and ``always @*``."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"\(\*.*?\*\)", "", text, flags=re.S)
    text = re.sub(r"@\s*\*", "@", text)
    return re.sub(r'"[^"]*"', "", text)


@pytest.mark.parametrize("in_type", [ir.pow2_type(3), U5, S4, BIPOLAR],
                         ids=lambda t: t.to_json())
def test_fully_parallel_verilog_has_no_multiplier(in_type):
    rng = np.random.default_rng(8)
    probe = random_codes(rng, in_type, 16, 64)
    for out in (None, ir.pow2_type(3)):
        layer = shift_layer(rng, in_type, 16, 8, e_max=5, probe=probe, out=out)
        dut = engine(layer, in_type, Folding(8, 16))
        assert "$mul" not in rtlil.convert(dut, name="engine", emit_src=False)
        text = verilog_operators(verilog.convert(dut, name="engine", emit_src=False))
        assert "*" not in text
        assert "<<" not in text and ">>" not in text     # constant shifts are wiring
        assert "weights" not in text                       # no weight ROM


def test_zero_weights_make_no_logic():
    """A fully parallel layer whose zero weights are dropped gives the same Verilog as one
    without those inputs' weights at all (the inputs still cost their register)."""
    rng = np.random.default_rng(9)
    w = shift_weights(rng, 4, 8, zeros=0.0)
    w[:, 4:] = 0
    def operators(weights):
        dut = engine(ir.DenseShift("fc", weights=weights), U5,
                                     Folding(*weights.shape))
        text = verilog_operators(verilog.convert(dut, name="engine", emit_src=False))
        return {op: text.count(op) for op in ("+", "~", "&", "|", "^", "?")}

    assert operators(w) == operators(w[:, :4])


# --- folding ------------------------------------------------------------------------------------

def test_shift_folding_validation():
    rng = np.random.default_rng(1)
    layer = shift_layer(rng, U5, N_IN, N_OUT)
    with pytest.raises(ValueError, match="fc: branch_folds must be 1 for a dense_shift"):
        check_folding(layer, Folding(1, 1, "logic", 2))
    with pytest.raises(ValueError, match="fc: branch_folds must be 1"):
        engine(layer, U5, Folding(1, 1, "logic", 2))
    with pytest.raises(ValueError, match="pe must .* output count 6, not 4"):
        ShiftAccumulateEngine(layer, in_type=U5, pe=4)
    with pytest.raises(ValueError, match="simd must .* input count 12, not 5"):
        engine(layer, U5, Folding(1, 5))
    with pytest.raises(ValueError, match="'dram'"):
        ShiftAccumulateEngine(layer, in_type=U5, weights="dram")
    folds = candidates(layer)
    assert len(folds) == 4 * 6 * 2 and {f.branch_folds for f in folds} == {1}
    assert all(check_folding(layer, f) for f in folds)
    assert fold_steps(layer, Folding(2, 3)) == 3 * 4


# --- cost estimates -----------------------------------------------------------------------------

@pytest.mark.parametrize("in_type", [ir.pow2_type(3), BIPOLAR, U5, S4],
                         ids=lambda t: t.to_json())
def test_shift_estimates_grow_with_parallelism(in_type):
    rng = np.random.default_rng(3)
    probe = random_codes(rng, in_type, 64, 64)
    layer = shift_layer(rng, in_type, 64, 32, probe=probe, out=ir.pow2_type(3))
    for mode in ("logic", "bram"):
        by_pe = [estimate(layer, in_type, Folding(pe, 16, mode)).lcs for pe in (1, 2, 4, 8, 32)]
        by_simd = [estimate(layer, in_type, Folding(4, s, mode)).lcs for s in (2, 8, 32, 64)]
        assert by_pe == sorted(by_pe) and by_simd == sorted(by_simd), (by_pe, by_simd)
    logic, bram = (estimate(layer, in_type, Folding(4, 16, mode)) for mode in ("logic", "bram"))
    assert bram.ebr >= 1 and logic.ebr == 0 and bram.lcs < logic.lcs
    # fully parallel: the weights are constants, no ROM in either mode
    assert estimate(layer, in_type, Folding(32, 64, "bram")).ebr == 0


def test_shift_estimate_follows_weights():
    """Zero weights cost nothing when constant; wider exponents cost shifter levels when
    folded; wider inputs cost more."""
    rng = np.random.default_rng(4)
    w = shift_weights(rng, 16, 32, zeros=0.0)
    sparse = np.where(rng.random(w.shape) < 0.5, 0, w)
    t = ir.pow2_type(3)
    dense_l, sparse_l = ir.DenseShift("fc", weights=w), ir.DenseShift("fc", weights=sparse)
    full = Folding(16, 32)
    assert estimate(sparse_l, t, full).lcs < 0.75 * estimate(dense_l, t, full).lcs
    wide = ir.DenseShift("fc", weights=np.sign(w) << rng.integers(0, 11, w.shape))
    ternary = ir.DenseShift("fc", weights=np.sign(w))
    for f in (Folding(4, 8), Folding(2, 16, "bram")):
        assert estimate(ternary, t, f).lcs < estimate(dense_l, t, f).lcs < \
            estimate(wide, t, f).lcs
    assert estimate(dense_l, BIPOLAR, Folding(4, 8)).lcs < \
        estimate(dense_l, U5, Folding(4, 8)).lcs


# --- whole models -------------------------------------------------------------------------------

def shift_model(rng, sizes, *, in_type=U5, codes=ir.pow2_type(3), probe_count=64):
    """multithreshold to pow2 codes -> dense_shift (multi-threshold to pow2 codes) ... ->
    dense_shift -> argmax; thresholds at quantiles of probe accumulators, so the classes vary."""
    probe = random_codes(rng, in_type, sizes[0], probe_count)
    levels = np.quantile(probe, np.linspace(0.1, 0.9, codes.hi)).round()
    quant = ir.MultiThresholdLayer("quant", ir.MultiThreshold(
        np.tile(levels, (sizes[0], 1)), np.zeros(sizes[0], bool), codes))
    layers, x = [quant], golden.run_layer(quant, probe)
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layer = ir.DenseShift(f"fc{i}", weights=shift_weights(rng, n_out, n_in))
        if i < len(sizes) - 2:
            layer.threshold = quantile_threshold(rng, golden.run_layer(layer, x, codes), codes)
        layers.append(layer)
        x = golden.run_layer(layer, x, codes)
    layers.append(ir.ArgMax("argmax", n=sizes[-1]))
    return ir.Model(in_type, sizes[0], layers).check(), probe


def test_shift_pipeline_with_chosen_folding():
    rng = np.random.default_rng(10)
    model, probe = shift_model(rng, [16, 12, 6])
    folding = choose_folding(model, lc_budget=1500, ebr_budget=30)
    assert set(folding) == {layer.name for layer in model.layers}
    x = np.concatenate([probe[:24], [[0] * 16, [31] * 16]])
    run = simulate_stream(Pipeline(model, folding), x, rng=rng, valid_prob=0.7, ready_prob=0.6)
    expected = golden.run(model, x)
    np.testing.assert_array_equal(np.array(run.outputs), expected)
    assert len(np.unique(expected)) > 1
    loose = choose_folding(model, lc_budget=10**9, ebr_budget=10**9)
    assert max(fold_steps(layer, loose[layer.name]) for layer in model.layers) <= \
        max(fold_steps(layer, folding[layer.name]) for layer in model.layers)
