"""Constellation networks lowered to integers: torch (integer inference) == golden model, over
the ONNX export and the compiler, for a complex layer + QAM slicer and for a slicer alone."""

import numpy as np
import onnx
import pytest
import torch
from onnx import helper

from hwgen.sw.core import golden, ir
from hwgen.sw.compiler import CompileError, compile_onnx
from hwgen.sw.core.onnx_ops import HWGEN_DOMAIN
from hwgen.sw.families.constellation.complex_nn import ComplexLinear
from hwgen.sw.families.constellation.lower import lower, slicer_only
from hwgen.sw.families.constellation.qam import qam
from hwgen.sw.families.export import export_onnx

U5, S8, S10 = (ir.TensorType("unsigned", 5), ir.TensorType("signed", 8),
               ir.TensorType("signed", 10))


def trained_like_linear(seed, n_in=64, n_out=8):
    torch.manual_seed(seed)
    lin = ComplexLinear(n_in, n_out)
    with torch.no_grad():
        lin.bias.copy_(torch.complex(torch.randn(n_out), torch.randn(n_out)) * 0.3)
    return lin


@pytest.mark.parametrize("order", ir.QAM_ORDERS)
def test_ladder_complex_layer_and_slicer(tmp_path, order):
    """torch == golden on 4,000 vectors; the integer net is the float net's qam(W x + b) on
    the quantized weights; every level occurs."""
    lin = trained_like_linear(order)
    net = lower(lin, order=order, delta=1.0, in_type=U5, in_step=2 ** -4)
    export_onnx(net, tmp_path / "m.onnx")
    model = compile_onnx(tmp_path / "m.onnx")
    assert [layer.kind for layer in model.layers] == ["dense_mac", "qam_slicer"]
    assert model.types()[-1] == ir.odd_type(int(np.log2(order)) // 2)
    rng = np.random.default_rng(order)
    x = rng.integers(0, 17, (4000, 64))
    got = golden.run(model, x)
    want = net.codes(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(got, want)
    assert set(np.unique(got)) == set(range(model.layers[-1].levels))
    # the integer net is the float layer on quantized weights, sliced by the training op
    w = torch.complex(net.weights[:8].double(), net.weights[8:].double()) * net.weight_step
    b = torch.complex(net.bias[:8].double(), net.bias[8:].double()) * net.in_step * \
        net.weight_step
    z = qam(torch.from_numpy(x).double().to(torch.complex128) * net.in_step @ w.T + b,
            order, 1.0)
    torch.testing.assert_close(net.symbols(torch.from_numpy(x)), z, rtol=0, atol=0)


@pytest.mark.parametrize("delta", [0.75, 1.0])
def test_ladder_slicer_alone_every_code(tmp_path, delta):
    net = slicer_only(4, order=16, delta=delta, in_type=S8, in_step=2 ** -6)
    export_onnx(net, tmp_path / "s.onnx")
    model = compile_onnx(tmp_path / "s.onnx")
    assert [layer.kind for layer in model.layers] == ["qam_slicer"]
    codes = np.arange(-128, 128)
    x = np.stack([np.roll(codes, k)[:8] for k in range(0, 256, 1)])
    np.testing.assert_array_equal(golden.run(model, x), net.codes(torch.from_numpy(x)).numpy())


def slicer_graph(tmp_path, *, width=8, order=16, before=(), signed=1):
    """Quant -> [before nodes] -> QAMSlicer as an ONNX file."""
    inits = [helper.make_tensor(n, onnx.TensorProto.FLOAT, [], [v]) for n, v in
             [("s", 2 ** -6), ("z", 0.0), ("b", 8.0), ("off", 0.5)]]
    nodes = [helper.make_node("Quant", ["x", "s", "z", "b"], ["q"], name="q",
                              domain="qonnx.custom_op.general", signed=signed, narrow=0,
                              rounding_mode="ROUND")]
    t = "q"
    for op in before:
        nodes.append(helper.make_node(op, [t, "off"], [op], name=op))
        t = op
    nodes.append(helper.make_node("QAMSlicer", [t], ["y"], name="slicer", domain=HWGEN_DOMAIN,
                                  order=order, delta=1.0))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", onnx.TensorProto.FLOAT, ["batch", width])], [helper.make_tensor_value_info(
            "y", onnx.TensorProto.FLOAT, ["batch", width])], inits)
    model = helper.make_model(graph, opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid("qonnx.custom_op.general", 1),
        helper.make_opsetid(HWGEN_DOMAIN, 1)])
    path = tmp_path / "g.onnx"
    onnx.save(model, str(path))
    return path


def test_slicer_refusals_name_the_node(tmp_path):
    # -2/3, 0, 2/3 over a step of 1/64: ceil(-42.67), 0, ceil(42.67)
    assert compile_onnx(slicer_graph(tmp_path)).layers[0].boundaries == (-42, 0, 43)
    for kwargs, match in [(dict(width=7), "even width"), (dict(order=32), "order must be"),
                          (dict(before=("Add",)), "no offset")]:
        with pytest.raises(CompileError, match=f"node slicer: .*{match}"):
            compile_onnx(slicer_graph(tmp_path, **kwargs))


def test_lowering_refusals():
    lin = trained_like_linear(0)
    with pytest.raises(ValueError, match="power of two"):
        lower(lin, order=16, in_type=U5, in_step=0.1)
    with pytest.raises(ValueError, match="order"):
        lower(lin, order=32, in_type=U5, in_step=2 ** -4)
