"""Multi-branch layers in the IR, the golden model and the compiler (seed 003 lowered)."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from hwgen.sw.core import golden, ir
from hwgen.sw.families.mbbn import layers as mbbn
from hwgen.sw.compiler import CompileError, compile_onnx
from hwgen.sw.core.onnx_ops import QONNX_DOMAIN
from hwgen.sw.families.export import export_onnx
from hwgen.sw.families.train import predict, train


def _states(rng, bits, shape):
    return 2 * rng.integers(0, 1 << bits, shape) - ((1 << bits) - 1)


@pytest.mark.parametrize("seed", range(12))
def test_branch_sum_is_the_integer_matmul_for_any_m_k_and_n(seed):
    rng = np.random.default_rng(seed)
    m_bits, k_bits = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    n = int(rng.choice([1, 5, 63, 64, 65, 100, 200]))
    x, w = _states(rng, m_bits, (20, n)), _states(rng, k_bits, (7, n))
    layer = ir.DenseMBBN(name="fc", weights=(w + (1 << k_bits) - 1) // 2, m_bits=m_bits,
                         k_bits=k_bits)
    acc = golden.run_layer(layer, (x + (1 << m_bits) - 1) // 2)
    full = n * ((1 << m_bits) - 1) * ((1 << k_bits) - 1)
    assert np.array_equal(2 * acc - full, x @ w.T)


def test_dense_binary_is_the_multi_branch_layer_of_one_digit():
    rng = np.random.default_rng(3)
    w, x = rng.integers(0, 2, (6, 70)), rng.integers(0, 2, (40, 70))
    assert np.array_equal(golden.run_layer(ir.DenseBinary(name="b", weights=w), x),
                          golden.run_layer(ir.DenseMBBN(name="m", weights=w), x))


@pytest.mark.parametrize("m_bits,k_bits", [(1, 1), (2, 3), (4, 2)])
def test_accumulator_range_is_exact_and_reached(m_bits, k_bits):
    rng = np.random.default_rng(m_bits * 10 + k_bits)
    layer = ir.DenseMBBN(name="fc", weights=rng.integers(0, 1 << k_bits, (5, 9)),
                         m_bits=m_bits, k_bits=k_bits)
    t = ir.odd_type(m_bits)
    lo, hi = layer.acc_range(t)
    w = layer.weight_values()
    best = np.where(w > 0, t.hi, t.lo)        # the codes of +-L_M sign(w), row by row
    worst = np.where(w > 0, t.lo, t.hi)
    x = rng.integers(t.lo, t.hi + 1, (3000, 9))
    accs = np.concatenate([golden.run_layer(layer, x).ravel(),
                           golden.run_layer(layer, best).diagonal(),
                           golden.run_layer(layer, worst).diagonal()])
    assert accs.min() >= lo and accs.max() <= hi
    assert hi in golden.run_layer(layer, best).diagonal()
    assert lo in golden.run_layer(layer, worst).diagonal()


def test_multi_threshold_counts_levels_passed():
    th = ir.MultiThreshold([[-2, 0, 5], [9, 3, 3]], [False, True], ir.TensorType("odd", 2))
    acc = np.array([[-3, 10], [-2, 9], [4, 3], [5, 2]])
    # row 0: levels >= -2, 0, 5; row 1: levels <= 9, 3, 3
    assert th.apply(acc).tolist() == [[0, 0], [1, 1], [2, 3], [3, 3]]


def test_multi_threshold_rejects_unsorted_rows_and_wrong_level_counts():
    with pytest.raises(ValueError, match="sorted"):
        ir.MultiThreshold([[3, 1, 5]], [False], ir.TensorType("odd", 2))
    with pytest.raises(ValueError, match="sorted"):
        ir.MultiThreshold([[1, 3, 5]], [True], ir.TensorType("odd", 2))
    with pytest.raises(ValueError, match="2 levels cannot emit codes of type o2"):
        ir.MultiThreshold([[1, 3]], [False], ir.TensorType("odd", 2))
    with pytest.raises(ValueError, match="bad width 1 for a odd tensor"):
        ir.TensorType("odd", 1)


def test_odd_codes_and_values():
    t = ir.TensorType("odd", 3)
    assert (t.lo, t.hi, t.digits) == (0, 7, 3)
    assert t.values(np.arange(8)).tolist() == [-7, -5, -3, -1, 1, 3, 5, 7]
    assert ir.odd_type(1) == ir.TensorType("bipolar", 1)
    assert ir.TensorType.from_json("o3") == t


def test_a_multi_branch_model_round_trips_through_json(tmp_path):
    rng = np.random.default_rng(0)
    in_th = ir.MultiThreshold(np.sort(rng.integers(0, 32, (8, 3)), axis=1), np.zeros(8, bool),
                              ir.TensorType("odd", 2))
    layer = ir.DenseMBBN(name="fc", weights=rng.integers(0, 8, (4, 8)), m_bits=2, k_bits=3,
                         threshold=ir.MultiThreshold(np.sort(rng.integers(0, 200, (4, 1))),
                                                     rng.integers(0, 2, 4).astype(bool),
                                                     ir.TensorType("bipolar", 1)))
    m = ir.Model(ir.TensorType("unsigned", 5), 8,
                 [ir.MultiThresholdLayer(name="enc", threshold=in_th), layer]).check()
    m.save(tmp_path / "m.json")
    back = ir.Model.load(tmp_path / "m.json")
    assert back.to_json() == m.to_json()
    x = rng.integers(0, 32, (100, 8))
    assert np.array_equal(golden.run(back, x), golden.run(m, x))


def test_dense_mbbn_refuses_inputs_of_another_digit_count():
    layer = ir.DenseMBBN(name="fc", weights=np.zeros((2, 3)), m_bits=2, k_bits=1)
    with pytest.raises(ValueError, match="fc: dense_mbbn with M = 2 takes o2 inputs, not u4"):
        ir.Model(ir.TensorType("unsigned", 4), 3, [layer]).check()


# -- the compiler: QONNX Quant semantics lowered to exact integer levels ----------------------

def _qonnx_quant(y, scale, zero, bits, signed, mode):
    """QONNX's Quant on float64: clamp(y / scale + zero) to the integer range, then round."""
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    v = np.clip(y / scale + zero, lo, hi)
    rounders = {"FLOOR": np.floor, "CEIL": np.ceil, "ROUND": np.round,
                "HALF_UP": lambda u: np.sign(u) * np.floor(np.abs(u) + 0.5),
                "HALF_DOWN": lambda u: np.sign(u) * np.ceil(np.abs(u) - 0.5)}
    return rounders[mode](v) - lo


def _requant_graph(gain, offset, scale, zero, bits, signed, mode, in_bits=8):
    inits = {"one": 1.0, "zero": 0.0, "ib": float(in_bits), "gain": gain, "off": offset,
             "s": scale, "z": zero, "b": float(bits)}
    nodes = [helper.make_node("Quant", ["x", "one", "zero", "ib"], ["xq"], name="in",
                              domain=QONNX_DOMAIN, signed=1, narrow=0, rounding_mode="ROUND"),
             helper.make_node("Mul", ["xq", "gain"], ["g"], name="gain"),
             helper.make_node("Add", ["g", "off"], ["a"], name="off"),
             helper.make_node("Quant", ["a", "s", "z", "b"], ["y"], name="act",
                              domain=QONNX_DOMAIN, signed=int(signed), narrow=0,
                              rounding_mode=mode)]
    graph = helper.make_graph(
        nodes, "requant", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [numpy_helper.from_array(np.asarray(v, np.float64), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(QONNX_DOMAIN, 1)])


@pytest.mark.parametrize("mode", ["FLOOR", "CEIL", "ROUND", "HALF_UP", "HALF_DOWN"])
@pytest.mark.parametrize("signed", [False, True])
def test_quant_rounding_modes_become_exact_levels_ties_included(mode, signed):
    # a gain of 1/4 and a scale of 1/2 put many inputs exactly on the half-way ties
    gain = np.array([0.25, -0.25, 0.5, 0.0])
    offset = np.array([0.0, 0.125, -1.0, 0.3])
    model = compile_onnx(_requant_graph(gain, offset, 0.5, 1.0, 3, signed, mode))
    assert [layer.kind for layer in model.layers] == ["multithreshold"]
    x = np.repeat(np.arange(-128, 128)[:, None], 4, axis=1)
    expected = _qonnx_quant(x * gain + offset, 0.5, 1.0, 3, signed, mode)
    assert np.array_equal(golden.run(model, x), expected.astype(np.int64))


def test_multi_bit_weights_on_integer_inputs_are_refused_naming_the_node():
    inits = {"one": 1.0, "zero": 0.0, "ib": 4.0, "w": np.array([[3.0, -1.0], [1.0, 1.0]])}
    nodes = [helper.make_node("Quant", ["x", "one", "zero", "ib"], ["xq"], name="in",
                              domain=QONNX_DOMAIN, signed=0, narrow=0, rounding_mode="ROUND"),
             helper.make_node("MatMul", ["xq", "w"], ["y"], name="fc3")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid(QONNX_DOMAIN, 1)])
    with pytest.raises(CompileError, match="node fc3: 2-bit weights need bipolar or odd inputs"):
        compile_onnx(model)


# -- the ladder's software rungs: PyTorch == golden on trained networks ------------------------

BITS = {
    "1-1": ((1, 1), (1, 1), (1, 1)),
    "2-2": ((2, 2), (2, 2), (2, 2)),
    "3-2": ((3, 2), (3, 2), (3, 2)),
    "4-4": ((4, 4), (4, 4), (4, 4)),
    "mixed": ((4, 2), (1, 3), (2, 1)),
}


def _trained(cls, bits, digits_split, epochs=4):
    torch.manual_seed(0)
    model = cls(64, (48, 32), 10, bits=bits, in_max=16)
    return train(model, digits_split.x_train, digits_split.y_train, epochs=epochs,
                 progress=False)


@pytest.mark.parametrize("cls", [mbbn.MBBNMLP, mbbn.QuantMLP], ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", list(BITS))
def test_torch_equals_golden_on_test_split_and_random_inputs(cls, name, digits_split, tmp_path):
    model = _trained(cls, BITS[name], digits_split)
    ir_model = compile_onnx(export_onnx(model, tmp_path / "m.onnx"))
    kinds = [layer.kind for layer in ir_model.layers]
    assert kinds[0] == "multithreshold" and kinds[-1] == "argmax"
    assert ir_model.layers[1].n_in == 64
    x = np.concatenate([digits_split.x_test,
                        np.random.default_rng(1).integers(0, 17, (3000, 64))])
    assert np.array_equal(golden.run(ir_model, x)[:, 0], predict(model, x))


def test_each_layer_carries_its_own_precision(digits_split, tmp_path):
    model = _trained(mbbn.MBBNMLP, BITS["mixed"], digits_split, epochs=1)
    ir_model = compile_onnx(export_onnx(model, tmp_path / "m.onnx"))
    dense = [layer for layer in ir_model.layers if layer.kind == "dense_mbbn"]
    assert [(layer.m_bits, layer.k_bits) for layer in dense] == [(4, 2), (1, 3), (2, 1)]
    assert [t.to_json() for t in ir_model.types()[:4]] == ["u5", "o4", "bipolar", "o2"]


def test_decomposed_quantized_network_lowers_to_the_same_ir(digits_split, tmp_path):
    qnn = _trained(mbbn.QuantMLP, BITS["3-2"], digits_split)
    direct = compile_onnx(export_onnx(qnn, tmp_path / "q.onnx"))
    decomposed = compile_onnx(export_onnx(mbbn.decompose(qnn.double()), tmp_path / "d.onnx"))
    for a, b in zip(direct.layers[1:-1], decomposed.layers[1:-1]):
        assert np.array_equal(a.weights, b.weights)
    x = np.random.default_rng(2).integers(0, 17, (2000, 64))
    assert np.array_equal(golden.run(direct, x), golden.run(decomposed, x))


def test_the_exported_encoder_is_a_standard_qonnx_quant(digits_split, tmp_path):
    model = _trained(mbbn.MBBNMLP, BITS["2-2"], digits_split, epochs=1)
    proto = export_onnx(model, tmp_path / "m.onnx")
    onnx.checker.check_model(proto)
    quants = [n for n in proto.graph.node if n.op_type == "Quant"]
    assert len(quants) == 4          # the input, then one encoder per layer
    assert {helper.get_attribute_value(a) for n in quants[1:] for a in n.attribute
            if a.name == "rounding_mode"} == {b"FLOOR"}


def test_encoder_codes_match_the_mbit_encoder_on_every_input_level(tmp_path):
    # the compiled input multithreshold equals mbit_encode's digits for every 5-bit pixel
    model = mbbn.MBBNMLP(3, (), 2, bits=((3, 1),), in_max=31)
    ir_model = compile_onnx(export_onnx(model, tmp_path / "m.onnx"))
    x = np.stack([np.arange(32)] * 3, axis=1)
    codes = golden.run_layers(ir_model, x)[0]
    a = torch.as_tensor(2 * x / 31 - 1, dtype=torch.float64)
    digits = mbbn.mbit_encode(a, 3).numpy()          # (3, B, n) in {-1, +1}
    expected = sum(((digits[m] + 1) // 2).astype(np.int64) << m for m in range(3))
    assert np.array_equal(codes, expected)
