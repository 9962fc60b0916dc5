"""Layer engines in Amaranth simulation against the golden model, bit for bit."""

import numpy as np
import pytest

from hwgen.hw.argmax import ArgMaxEngine
from hwgen.hw.dense_binary import XnorPopcountEngine
from hwgen.hw.dense_int_binw import DenseIntBinWEngine
from hwgen.hw.registry import engine
from hwgen.hw.resources import Folding
from hwgen.hw.testbench import simulate_stream
from hwgen.sw.core import golden, ir

U4 = ir.TensorType("unsigned", 4)
S4 = ir.TensorType("signed", 4)
BIPOLAR = ir.TensorType("bipolar", 1)


def edge_inputs(in_type, n, w_row):
    """All max, all min, all zeros, and the input maximizing neuron 0's accumulator."""
    lo, hi = in_type.lo, in_type.hi
    return np.array([[hi] * n, [lo] * n, [0] * n, np.where(w_row == 1, hi, lo)])


def random_inputs(rng, in_type, n, count):
    return rng.integers(in_type.lo, in_type.hi + 1, (count, n))


def random_dense(rng, kind, in_type, n_in, n_out, *, threshold, probe):
    """A random layer; thresholds sit at accumulators of ``probe`` inputs (so outputs vary),
    with channels at and beyond the clamp limits, which are constant."""
    layer = ir.LAYER_KINDS[kind](name="fc", weights=rng.integers(0, 2, (n_out, n_in)))
    if threshold:
        acc = golden.run(ir.Model(in_type, n_in, [layer]), probe)
        t = acc[rng.integers(0, len(probe), n_out), np.arange(n_out)] + rng.integers(-1, 2, n_out)
        lo, hi = layer.acc_range(in_type)
        limits = [lo - 1, hi + 1, lo, hi, lo - 7, hi + 7]
        t[:len(limits)] = limits[:n_out]
        layer.threshold = ir.Threshold(t, rng.integers(0, 2, n_out).astype(bool))
    return layer


def check_layer(layer, in_type, folding, x, rng, *, valid_prob=0.6, ready_prob=0.5):
    dut = engine(layer, in_type, folding)
    run = simulate_stream(dut, x, rng=rng, valid_prob=valid_prob, ready_prob=ready_prob)
    expected = golden.run(ir.Model(in_type, layer.n_in, [layer]), x)
    np.testing.assert_array_equal(np.array(run.outputs), expected)


FOLDINGS = [Folding(1, 1, "logic"), Folding(2, 3, "bram"), Folding(6, 12, "logic"),
            Folding(6, 12, "bram"), Folding(3, 4, "logic"), Folding(1, 12, "bram"),
            Folding(6, 1, "bram"), Folding(2, 6, "logic")]


@pytest.mark.parametrize("folding", FOLDINGS, ids=str)
@pytest.mark.parametrize("in_type", [U4, S4], ids=lambda t: t.to_json())
@pytest.mark.parametrize("threshold", [True, False], ids=["threshold", "acc"])
def test_dense_int_binw(folding, in_type, threshold):
    rng = np.random.default_rng([folding.pe, folding.simd, in_type.bits, threshold,
                                 in_type.kind == "signed"])
    n_in, n_out = 12, 6
    probe = random_inputs(rng, in_type, n_in, 4)
    layer = random_dense(rng, ir.DenseIntBinW.kind, in_type, n_in, n_out, threshold=threshold,
                         probe=probe)
    x = np.concatenate([probe, edge_inputs(in_type, n_in, layer.weights[0]),
                        random_inputs(rng, in_type, n_in, 3)])
    check_layer(layer, in_type, folding, x, rng)


@pytest.mark.parametrize("folding", FOLDINGS, ids=str)
@pytest.mark.parametrize("threshold", [True, False], ids=["threshold", "popcount"])
def test_xnor_popcount(folding, threshold):
    rng = np.random.default_rng([folding.pe, folding.simd, threshold, 7])
    n_in, n_out = 12, 6
    probe = random_inputs(rng, BIPOLAR, n_in, 4)
    layer = random_dense(rng, ir.DenseBinary.kind, BIPOLAR, n_in, n_out, threshold=threshold,
                         probe=probe)
    x = np.concatenate([probe, edge_inputs(BIPOLAR, n_in, layer.weights[0]),
                        1 - layer.weights[:1], random_inputs(rng, BIPOLAR, n_in, 3)])
    check_layer(layer, BIPOLAR, folding, x, rng)


def test_wide_dense_binary_full_and_folded():
    """A larger layer: many folds through block RAM, and every bit in parallel as constants."""
    rng = np.random.default_rng(11)
    probe = random_inputs(rng, BIPOLAR, 64, 6)
    layer = random_dense(rng, ir.DenseBinary.kind, BIPOLAR, 64, 16, threshold=True, probe=probe)
    for folding in (Folding(4, 16, "bram"), Folding(16, 64, "logic")):
        check_layer(layer, BIPOLAR, folding, probe, rng, valid_prob=1.0, ready_prob=0.8)


@pytest.mark.parametrize("simd", [1, 2, 5, 10])
@pytest.mark.parametrize("in_type", [U4, S4, ir.TensorType("signed", 9)],
                         ids=lambda t: t.to_json())
def test_argmax(simd, in_type):
    rng = np.random.default_rng([simd, in_type.bits, 3])
    n = 10
    layer = ir.ArgMax(name="argmax", n=n)
    ties = rng.integers(-1, 2, (4, n)).clip(in_type.lo, in_type.hi)   # many equal maxima
    ramp = np.arange(n)[None, :] - 3
    x = np.concatenate([
        [[in_type.hi] * n, [in_type.lo] * n, [0] * n],
        ramp.clip(in_type.lo, in_type.hi), ramp[::-1].clip(in_type.lo, in_type.hi), ties, random_inputs(rng, in_type, n, 4),
        [[in_type.lo] * (n - 1) + [in_type.hi]],
    ])
    check_layer(layer, in_type, Folding(1, simd), x, rng)


@pytest.mark.parametrize("folding", [Folding(1, 1, "logic"), Folding(2, 4, "bram"),
                                     Folding(6, 12, "logic")], ids=str)
def test_latency_and_interval(folding):
    rng = np.random.default_rng(5)
    probe = random_inputs(rng, U4, 12, 2)
    layer = random_dense(rng, ir.DenseIntBinW.kind, U4, 12, 6, threshold=True, probe=probe)
    dut = engine(layer, U4, folding)
    run = simulate_stream(dut, random_inputs(rng, U4, 12, 5))
    assert run.valid_cycles[0] - run.in_cycles[0] == dut.latency
    assert set(np.diff(run.out_cycles)) == {dut.interval}


def test_bad_folding_raises():
    layer = ir.DenseIntBinW(name="fc", weights=np.ones((6, 12)))
    with pytest.raises(ValueError, match="pe must .* output count 6, not 4"):
        DenseIntBinWEngine(layer, in_type=U4, pe=4, simd=1)
    with pytest.raises(ValueError, match="simd must .* input count 12, not 5"):
        DenseIntBinWEngine(layer, in_type=U4, pe=1, simd=5)
    with pytest.raises(ValueError, match="not 0"):
        DenseIntBinWEngine(layer, in_type=U4, pe=1, simd=0)
    with pytest.raises(ValueError, match="'dram'"):
        DenseIntBinWEngine(layer, in_type=U4, weights="dram")
    with pytest.raises(ValueError, match="bipolar"):
        DenseIntBinWEngine(layer, in_type=BIPOLAR)
    binary = ir.DenseBinary(name="fc", weights=np.ones((6, 12)))
    with pytest.raises(ValueError, match="simd must .* not 24"):
        XnorPopcountEngine(binary, in_type=BIPOLAR, simd=24)
    with pytest.raises(ValueError, match="pe must be 1, not 2"):
        ArgMaxEngine(ir.ArgMax(name="am", n=4), in_type=U4, pe=2)
    with pytest.raises(ValueError, match="simd must .* not 3"):
        ArgMaxEngine(ir.ArgMax(name="am", n=4), in_type=U4, simd=3)
    with pytest.raises(ValueError, match="not -1"):
        Folding(pe=-1)
