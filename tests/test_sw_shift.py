"""Power-of-two shift networks (seed 004) in the IR, the golden model and the compiler."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from hwgen.sw.core import golden, ir
from hwgen.sw.families.shift.aqe import MINWMLP, power_of_two
from hwgen.sw.compiler import CompileError, compile_onnx
from hwgen.sw.core.onnx_ops import HWGEN_DOMAIN, QONNX_DOMAIN
from hwgen.sw.families.data import digits
from hwgen.sw.families.export import export_onnx
from hwgen.sw.families.train import predict, train


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6])
def test_pow2_codes_are_eq22_levels_scaled(bits):
    t = ir.pow2_type(bits)
    q = 2 ** (bits - 1) - 1
    levels = np.array(power_of_two(bits).levels) * 2 ** (q - 1)
    assert t.lo == 0 and t.hi == 2 * q == len(levels) - 1
    assert np.array_equal(t.values(np.arange(t.hi + 1)), levels)   # ascending, exact
    assert t.value_range == (-(1 << (q - 1)), 1 << (q - 1))
    assert ir.TensorType.from_json(t.to_json()) == t
    assert not t.is_integer and t.digits == 0


def test_pow2_type_edges():
    assert ir.pow2_type(1) == ir.TensorType("bipolar", 1)
    for bad in (1, 7):
        with pytest.raises(ValueError):
            ir.TensorType("pow2", bad)


def _random_shift_layer(rng, n_out, n_in, max_exp):
    e = rng.integers(0, max_exp + 1, (n_out, n_in))
    w = rng.choice([-1, 0, 1], (n_out, n_in)) * (1 << e)
    return ir.DenseShift(name="fc", weights=w)


@pytest.mark.parametrize("in_type", [ir.pow2_type(2), ir.pow2_type(3), ir.pow2_type(5),
                                     ir.TensorType("bipolar", 1), ir.TensorType("odd", 3),
                                     ir.TensorType("unsigned", 5), ir.TensorType("signed", 4)],
                         ids=lambda t: t.to_json())
def test_dense_shift_golden_and_exact_range(in_type):
    rng = np.random.default_rng(1)
    layer = _random_shift_layer(rng, 9, 37, 4)
    x = rng.integers(in_type.lo, in_type.hi + 1, (500, 37))
    acc = golden.run_layer(layer, x, in_type)
    # the plain float product of values and weights, independent of the IR's code tables
    assert np.array_equal(acc, (in_type.values(x).astype(float) @ layer.weights.T.astype(float))
                          .astype(np.int64))
    lo, hi = layer.acc_range(in_type)
    assert lo <= acc.min() and acc.max() <= hi
    # both ends are reached: per input the code whose value times the weight is largest
    codes = np.arange(in_type.lo, in_type.hi + 1)
    vals = in_type.values(codes)
    w = layer.weights
    best = codes[np.argmax(w[:, :, None] * vals, axis=2)]
    worst = codes[np.argmin(w[:, :, None] * vals, axis=2)]
    assert hi == golden.run_layer(layer, best, in_type).diagonal().max()
    assert lo == golden.run_layer(layer, worst, in_type).diagonal().min()


def test_dense_shift_rejects_non_power_weights_and_roundtrips():
    with pytest.raises(ValueError, match="0 and"):
        ir.DenseShift(name="fc", weights=[[1, 3]])
    with pytest.raises(ValueError):
        ir.DenseShift(name="fc", weights=[[1 << 16]])
    with pytest.raises(ValueError, match="input type"):
        golden.run_layer(ir.DenseShift(name="fc", weights=[[1, -2]]), np.zeros((1, 2)))
    rng = np.random.default_rng(0)
    layer = _random_shift_layer(rng, 4, 6, 2)
    acc = golden.run_layer(layer, rng.integers(0, 7, (200, 6)), ir.pow2_type(3))
    t = np.sort(np.quantile(acc, [0.2, 0.4, 0.5, 0.6, 0.7, 0.9], axis=0).T.round(), axis=1)
    layer.threshold = ir.MultiThreshold(t.astype(np.int64), np.zeros(4, bool), ir.pow2_type(3))
    model = ir.Model(ir.pow2_type(3), 6, [layer]).check()
    back = ir.Model.from_json(model.to_json())
    x = rng.integers(0, 7, (100, 6))
    assert np.array_equal(golden.run(back, x), golden.run(model, x))
    assert back.types()[-1] == ir.pow2_type(3)


def _elementwise_graph(bits: int, gain: float, offset: float, in_bits: int = 8):
    """x (in_bits unsigned) -> * gain + offset -> PowerOfTwoQuant(bits)."""
    init = [helper.make_tensor(n, TensorProto.FLOAT, [], [v]) for n, v in
            (("one", 1.0), ("zero", 0.0), ("bits", float(in_bits)), ("gain", gain),
             ("offset", offset))]
    nodes = [helper.make_node("Quant", ["x", "one", "zero", "bits"], ["xq"], domain=QONNX_DOMAIN,
                              signed=0, narrow=0, rounding_mode="ROUND"),
             helper.make_node("Mul", ["xq", "gain"], ["xg"]),
             helper.make_node("Add", ["xg", "offset"], ["xo"]),
             helper.make_node("PowerOfTwoQuant", ["xo", "one"], ["y"], domain=HWGEN_DOMAIN,
                              bits=bits)]
    graph = helper.make_graph(nodes, "pow2", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 4])], init)
    return helper.make_model(graph)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_power_of_two_quant_lowers_exactly_ties_included(bits):
    # z = x * gain + offset over the 256 byte values, in steps of 1/64 over [-2, 2) and of
    # 1/256 over [-1/2, 1/2): together they land on every threshold of eq. 22 for these
    # widths (the smallest, 2^-7 at 4 bits, is a multiple of 1/256), with both signs
    q = 2 ** (bits - 1) - 1
    x = np.repeat(np.arange(256)[:, None], 4, axis=1)
    hit = set()
    for gain, offset in ((1 / 64, -2.0), (1 / 256, -0.5)):
        model = compile_onnx(_elementwise_graph(bits, gain, offset))
        assert [layer.kind for layer in model.layers] == ["multithreshold"]
        got = ir.pow2_type(bits).values(golden.run(model, x)[:, 0]) / 2 ** (q - 1)
        z = torch.tensor(np.arange(256) * gain + offset, dtype=torch.float64)
        assert np.array_equal(got, power_of_two(bits)(z).numpy())
        hit |= {v for v in z.tolist() if abs(v) in power_of_two(bits).thresholds}
    assert len(hit) == 2 * q


def test_power_of_two_quant_errors():
    with pytest.raises(CompileError, match="bits must be an integer from 2 to 6"):
        compile_onnx(_elementwise_graph(7, 1.0, 0.0))


def _trained(act_bits, weight_bits, quantize_input, epochs=3, hidden=(24, 16)):
    d = digits(seed=0)
    torch.manual_seed(0)
    m = MINWMLP(64, hidden, 10, in_max=16, act_bits=act_bits, weight_bits=weight_bits,
                quantize_input=quantize_input)
    return d, train(m, d.x_train, d.y_train, epochs=epochs, progress=False)


@pytest.mark.parametrize("act_bits, weight_bits, quantize_input, kinds", [
    (1, 1, True, ["multithreshold", "dense_binary", "dense_binary", "dense_binary", "argmax"]),
    (2, 2, True, ["multithreshold", "dense_shift", "dense_shift", "dense_shift", "argmax"]),
    (3, 3, True, ["multithreshold", "dense_shift", "dense_shift", "dense_shift", "argmax"]),
    (3, 3, False, ["dense_shift", "dense_shift", "dense_shift", "argmax"]),
    (4, 2, False, ["dense_shift", "dense_shift", "dense_shift", "argmax"]),
    (3, 1, False, ["dense_shift", "dense_shift", "dense_shift", "argmax"]),
    (1, 3, True, ["multithreshold", "dense_shift", "dense_shift", "dense_shift", "argmax"]),
])
def test_minw_torch_equals_golden(tmp_path, act_bits, weight_bits, quantize_input, kinds):
    d, m = _trained(act_bits, weight_bits, quantize_input)
    model = compile_onnx(export_onnx(m, tmp_path / "m.onnx"))
    assert [layer.kind for layer in model.layers] == kinds
    rng = np.random.default_rng(2)
    x = np.concatenate([d.x_test, rng.integers(0, 17, (3000, 64)),
                        np.zeros((1, 64), np.int64), np.full((1, 64), 16)])
    assert np.array_equal(golden.run(model, x)[:, 0], predict(m, x))
    # the network is not constant: it learned something in 3 epochs (chance is 10 %)
    assert (predict(m, d.x_test) == d.y_test).mean() > 0.3


def test_minw_float_sides_do_not_export(tmp_path):
    m = MINWMLP(8, (4,), 2, in_max=3, act_bits=16, weight_bits=3)
    with pytest.raises(ValueError, match="no integer form"):
        export_onnx(m, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_weights_neither_odd_nor_power_of_two_are_refused(tmp_path):
    d, m = _trained(3, 3, False, epochs=1, hidden=(8,))
    onnx_model = export_onnx(m, tmp_path / "m.onnx")
    w = next(t for t in onnx_model.graph.initializer if t.name == "fc0_w")
    arr = onnx.numpy_helper.to_array(w).copy()
    arr.flat[0] = 0.75                    # 3/4: neither odd times 1/4 nor a power of two
    arr.flat[1] = 0.5
    w.CopyFrom(onnx.numpy_helper.from_array(arr, "fc0_w"))
    with pytest.raises(CompileError, match="fc0.*powers of two"):
        compile_onnx(onnx_model)
