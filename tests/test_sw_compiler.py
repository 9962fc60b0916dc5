"""ONNX -> IR: threshold folding, exact agreement with PyTorch, and one-line errors."""

import itertools

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from hwgen.sw.core import golden, ir
from hwgen.sw.compiler import CompileError, compile_onnx
from hwgen.sw.core.onnx_ops import QONNX_DOMAIN
from hwgen.sw.families.binary.layers import BinaryMLP
from hwgen.sw.families.export import export_onnx
from hwgen.sw.families.train import predict


def _model(nodes, inits, n_in, n_out):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", n_in])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, ["b", n_out])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid(QONNX_DOMAIN, 1)])
    m.ir_version = 10
    return m


def _quant_in(bits=2):
    return (helper.make_node("Quant", ["x", "one", "zero", "bits"], ["xq"], name="quant_in",
                             domain=QONNX_DOMAIN, signed=0, narrow=0, rounding_mode="ROUND"),
            {"one": 1.0, "zero": 0.0, "bits": float(bits)})


BN_CASES = {  # gamma, beta, mean for w rows [+ +], [+ -], [- -], [+ +]; var 1, epsilon 0
    "gamma": [1.0, -2.0, 0.0, 1.0], "beta": [-0.5, 1.0, 0.3, 0.0], "mean": [1.0, 0.0, 0.0, 2.0],
}


def _bn_sign_model():
    q, inits = _quant_in()
    w = np.array([[1, 1], [1, -1], [-1, -1], [1, 1]], np.float32).T
    inits.update(w=w, gamma=BN_CASES["gamma"], beta=BN_CASES["beta"], mean=BN_CASES["mean"],
                 var=[1.0] * 4)
    nodes = [q, helper.make_node("MatMul", ["xq", "w"], ["mm"], name="fc"),
             helper.make_node("BatchNormalization", ["mm", "gamma", "beta", "mean", "var"], ["bn"],
                              name="bn", epsilon=0.0),
             helper.make_node("BipolarQuant", ["bn", "one"], ["act"], name="act",
                              domain=QONNX_DOMAIN)]
    return _model(nodes, inits, 2, 4), w


def test_batch_norm_and_sign_fold_to_integer_thresholds():
    model, w = _bn_sign_model()
    layer = compile_onnx(model).layers[0]
    assert layer.kind == "dense_int_binw"
    # by hand: acc >= 1.5 -> t 2; -2 acc + 1 >= 0 -> acc <= 0.5 (flip) -> t 0;
    # gamma 0, beta > 0 -> always +1 -> t at the lowest accumulator (-6); acc - 2 >= 0 -> t 2
    assert layer.threshold.t.tolist() == [2, 0, -6, 2]
    assert layer.threshold.flip.tolist() == [False, True, False, False]


def test_folded_thresholds_equal_float_batch_norm_on_every_input():
    model, w = _bn_sign_model()
    m = compile_onnx(model)
    xs = np.array(list(itertools.product(range(4), repeat=2)))
    g = np.array(BN_CASES["gamma"]); b = np.array(BN_CASES["beta"]); mu = np.array(BN_CASES["mean"])
    expect = (g * (xs @ w - mu) + b >= 0).astype(np.int64)
    assert np.array_equal(golden.run(m, xs), expect)


def test_random_network_with_negative_gammas_matches_torch_layer_by_layer():
    torch.manual_seed(3)
    net = BinaryMLP(20, (24, 16), 5, in_bits=3)
    with torch.no_grad():
        for block in net.blocks:
            bn = block["bn"]
            bn.weight.copy_(torch.randn_like(bn.weight))          # about half negative
            bn.weight[0] = 0.0
            bn.bias.copy_(torch.randn_like(bn.bias))
            bn.running_mean.copy_(torch.randn_like(bn.running_mean) * 3)
            bn.running_var.copy_(torch.rand_like(bn.running_var) * 4 + 0.1)
    net.eval()
    m = compile_onnx(export_onnx(net, "/dev/null"))
    x = np.random.default_rng(1).integers(0, 8, (3000, 20))
    outs = golden.run_layers(m, x)
    h = torch.as_tensor(x, dtype=torch.float64)
    net64 = net.double()
    with torch.no_grad():
        for block, out in zip(net64.blocks, outs):
            h = block["act"](block["bn"](block["linear"](h)))
            assert np.array_equal((h.numpy() > 0).astype(np.int64), out)
        n = h.shape[1]
        head = net64.head(h).numpy()
    assert np.array_equal(2 * outs[2] - n, head.astype(np.int64))
    assert np.array_equal(outs[3][:, 0], predict(net, x))


def test_ir_round_trips_through_json(tmp_path):
    model, _ = _bn_sign_model()
    m = compile_onnx(model)
    m.save(tmp_path / "ir.json")
    back = ir.Model.load(tmp_path / "ir.json")
    x = np.array(list(itertools.product(range(4), repeat=2)))
    assert back.to_json() == m.to_json()
    assert np.array_equal(golden.run(back, x), golden.run(m, x))


def test_unsupported_op_names_the_node():
    q, inits = _quant_in()
    inits["w"] = np.ones((2, 3), np.float32)
    nodes = [q, helper.make_node("MatMul", ["xq", "w"], ["mm"], name="fc"),
             helper.make_node("Relu", ["mm"], ["r"], name="my_relu")]
    with pytest.raises(CompileError, match="node my_relu: unsupported op Relu"):
        compile_onnx(_model(nodes, inits, 2, 3))


def test_non_binary_weights_are_refused_naming_the_node():
    q, inits = _quant_in()
    # 0.3 and 1 are no common step times odd integers nor times powers of two
    inits["w"] = np.array([[1.0, 0.3], [-1.0, 1.0]], np.float32)
    nodes = [q, helper.make_node("MatMul", ["xq", "w"], ["mm"], name="fc_real")]
    with pytest.raises(CompileError, match="node fc_real: weight w is not binary"):
        compile_onnx(_model(nodes, inits, 2, 2))


def test_float_input_to_a_binary_layer_is_refused():
    model, _ = _bn_sign_model()
    g = model.graph
    # drop the sign: the next MatMul would see batch norm's float output
    g.node.remove(g.node[3])
    g.initializer.append(numpy_helper.from_array(np.ones((4, 2), np.float32), "w2"))
    g.node.append(helper.make_node("MatMul", ["bn", "w2"], ["out"], name="fc2"))
    g.output[0].name = "out"
    with pytest.raises(CompileError, match="node fc2: its input is not quantized"):
        compile_onnx(model)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(CompileError, match="nope.onnx: no such file"):
        compile_onnx(tmp_path / "nope.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not protobuf")
    with pytest.raises(CompileError, match="bad.onnx: not a valid ONNX model"):
        compile_onnx(bad)


def test_gemm_with_bias_and_scaled_bipolar_weights_folds_exactly():
    # Brevitas-style: Gemm(transB=1) with a bias and a weight scale, then batch norm and sign
    rng = np.random.default_rng(7)
    q, inits = _quant_in(bits=3)
    w = np.where(rng.random((5, 4)) < 0.5, -1.0, 1.0)          # (out, in) for transB
    inits.update(w=w * 0.25, bias=rng.normal(size=5), gamma=rng.normal(size=5),
                 beta=rng.normal(size=5), mean=rng.normal(size=5), var=rng.random(5) + 0.5)
    nodes = [q, helper.make_node("Gemm", ["xq", "w", "bias"], ["g"], name="gemm", transB=1),
             helper.make_node("BatchNormalization", ["g", "gamma", "beta", "mean", "var"],
                              ["bn"], name="bn", epsilon=1e-3),
             helper.make_node("BipolarQuant", ["bn", "one"], ["act"], name="act",
                              domain=QONNX_DOMAIN)]
    m = compile_onnx(_model(nodes, inits, 4, 5))
    xs = np.array(list(itertools.product(range(8), repeat=4)))
    f32 = {k: np.asarray(v, np.float32).astype(np.float64) for k, v in inits.items()}
    pre = xs @ f32["w"].T + f32["bias"]
    bn = (pre - f32["mean"]) / np.sqrt(f32["var"] + 1e-3) * f32["gamma"] + f32["beta"]
    assert np.array_equal(golden.run(m, xs), (bn >= 0).astype(np.int64))


@pytest.mark.parametrize("in_type", [ir.TensorType("unsigned", 4), ir.TensorType("signed", 3),
                                     ir.TensorType("bipolar", 1), ir.odd_type(2),
                                     ir.odd_type(3), ir.pow2_type(3)])
@pytest.mark.parametrize("codes", [[[1, -1], [-1, 1]], [[3, -1], [1, 5]], [[2, 0], [-4, 1]],
                                   [[7, 0], [-3, 12]]])
@pytest.mark.parametrize("integer_weights", [False, True])
def test_exactly_one_dense_kind_lowers_any_weights(in_type, codes, integer_weights):
    """The compiler opens the one kind whose ``lowers`` accepts a MatMul's weight states on its
    input type: the kinds' rules never overlap and leave no gap."""
    codes = np.array(codes, np.int64)
    kinds = [k.kind for k in ir.LAYER_KINDS.values()
             if issubclass(k, ir.MatrixLayer) and k.lowers(in_type, codes, integer_weights)]
    assert len(kinds) == 1
    odd = not np.any(codes % 2 == 0)
    if integer_weights:
        assert kinds == ["dense_mac"]
    elif in_type.kind == "pow2" or not odd:
        assert kinds == ["dense_shift"]
    elif in_type.is_integer:
        assert kinds == ["dense_int_binw"]
    elif in_type.kind == "bipolar" and np.abs(codes).max() == 1:
        assert kinds == ["dense_binary"]
    else:
        assert kinds == ["dense_mbbn"]


@pytest.mark.parametrize("in_bits, w, message", [
    # 2-bit odd states on integer pixels: quantize the input first
    (4, [[3.0, -1.0], [1.0, 1.0]], "node fc: 2-bit weights need bipolar or odd inputs, not "
                                   "unsigned (quantize the input first)"),
])
def test_a_kind_refuses_weights_it_lowers_but_cannot_hold(in_bits, w, message):
    q, inits = _quant_in(in_bits)
    inits.update(w=np.array(w, np.float32).T)
    nodes = [q, helper.make_node("MatMul", ["xq", "w"], ["logits"], name="fc")]
    with pytest.raises(CompileError) as e:
        compile_onnx(_model(nodes, inits, 2, 2))
    assert str(e.value) == message


def test_odd_multibit_weights_on_power_of_two_inputs_are_refused():
    layer_type = ir.pow2_type(3)
    codes = np.array([[3, -1], [1, 1]])
    with pytest.raises(ValueError, match="weights of odd multi-bit states need odd or bipolar "
                                         "inputs, not pow2"):
        ir.DenseShift.from_codes("fc", codes, layer_type)
