"""The serial-input MAC engine in Amaranth simulation: sums of columns as elements arrive,
bit-exact against the golden model, behind a sparse SAM engine too."""

import numpy as np
import pytest

from hwgen.hw.dense_mac_serial import SerialMACEngine
from hwgen.hw.testbench import simulate_stream
from hwgen.sw.core import golden, ir

S6 = ir.TensorType("signed", 6)
U5 = ir.TensorType("unsigned", 5)


def mac_layer(rng, n_in, n_out, bits=8):
    w = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (n_out, n_in))
    w[0, 0], w[-1, -1] = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return ir.DenseMAC("fc", weights=w, bias=rng.integers(-500, 500, n_out))


def signed_outputs(run, engine):
    bits = engine.out_type.bits
    got = np.array(run.outputs, dtype=np.int64)
    return np.where(got >= 1 << (bits - 1), got - (1 << bits), got) \
        if engine.out_type.kind == "signed" else got


@pytest.mark.parametrize("pe", [1, 2, 5, 10])
@pytest.mark.parametrize("in_type", [S6, U5])
def test_serial_mac_equals_golden_under_stalls(pe, in_type):
    rng = np.random.default_rng(pe + in_type.bits)
    layer = mac_layer(rng, 7, 10)
    x = rng.integers(in_type.lo, in_type.hi + 1, (25, 7))
    x[0], x[1] = in_type.lo, in_type.hi
    engine = SerialMACEngine(layer, in_type=in_type, pe=pe)
    run = simulate_stream(engine, [[v] for v in x.ravel()], n_outputs=len(x), rng=rng,
                          valid_prob=0.6, ready_prob=0.3)
    assert np.array_equal(signed_outputs(run, engine), golden.run_layer(layer, x, in_type))


def test_serial_mac_interval_at_full_rate():
    rng = np.random.default_rng(1)
    layer = mac_layer(rng, 5, 6)
    engine = SerialMACEngine(layer, in_type=S6, pe=3)
    x = rng.integers(-32, 32, (8, 5))
    run = simulate_stream(engine, [[v] for v in x.ravel()], n_outputs=len(x))
    assert np.array_equal(signed_outputs(run, engine), golden.run_layer(layer, x, S6))
    assert set(np.diff(run.out_cycles)) == {engine.interval}


def test_serial_mac_refuses_thresholds_and_bad_pe():
    rng = np.random.default_rng(2)
    layer = mac_layer(rng, 4, 6)
    with pytest.raises(ValueError, match="divisor"):
        SerialMACEngine(layer, in_type=S6, pe=4)
    layer.threshold = ir.MultiThreshold(np.zeros((6, 1), np.int64), np.zeros(6, bool),
                                        ir.TensorType("bipolar", 1))
    with pytest.raises(ValueError, match="thresholded"):
        SerialMACEngine(layer, in_type=S6)


def test_sparse_sam_then_serial_mac_needs_no_adapter_and_is_chosen():
    from hwgen.hw.folding import choose_folding
    from hwgen.hw.registry import check_folding
    from hwgen.hw.resources import SERIAL, SPARSE, Folding
    from hwgen.hw.pipeline import Pipeline

    rng = np.random.default_rng(5)
    n, m = 16, 20
    terms = [ir.SAMTerm(r, 1, rng.integers(-6, 6, (m, n)), rng.random((m, n)) < 0.2,
                        rng.integers(-3, 3, m)) for r in ("max", "min")]
    model = ir.Model(S6, n, [ir.SAMLayer("sam", n=n, terms=terms), mac_layer(rng, m, 4),
                             ir.ArgMax("argmax", n=4)]).check()
    folding = {"sam": Folding(1, 1, SPARSE), "fc": Folding(2, 1, SERIAL),
               "argmax": Folding(1, 1)}
    pipeline = Pipeline(model, folding)
    assert pipeline.serial_in and pipeline.adapters == []
    x = rng.integers(S6.lo, S6.hi + 1, (12, n))
    run = simulate_stream(pipeline, [[v] for v in x.ravel()], n_outputs=len(x), rng=rng,
                          valid_prob=0.8, ready_prob=0.5)
    assert [o[0] for o in run.outputs] == golden.run(model, x)[:, 0].tolist()
    with pytest.raises(ValueError, match="simd = 1"):
        check_folding(model.layers[1], Folding(1, 2, SERIAL))
    # with a large input register to pay for, the serial pair is the cheapest that fits, and
    # no 20-element deserializer is charged between them
    chosen = choose_folding(model, lc_budget=2000, ebr_budget=30, input_register_lcs=4000)
    assert chosen["sam"].weights == SPARSE and chosen["fc"].weights == SERIAL
