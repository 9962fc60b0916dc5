"""Export hwgen PyTorch models to ONNX in QONNX's op vocabulary.

The graph is written node by node from the trained parameters, so that it holds exactly what
the compiler needs and nothing a tracer might add:

* ``Quant`` (domain ``qonnx.custom_op.general``, scale 1, zero point 0) on the graph input
  states that the input is an ``in_bits``-bit unsigned integer.
* ``BipolarQuant`` (scale 1) on each real weight matrix binarizes it (sign(0) = +1), and on
  each batch-norm output binarizes the activation.
* ``MatMul``, ``BatchNormalization`` and a final ``Mul`` by the positive logit scale are
  standard ONNX.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .layers import BinaryMLP

__all__ = ["export_onnx", "QONNX_DOMAIN"]

QONNX_DOMAIN = "qonnx.custom_op.general"


class _Graph:
    def __init__(self):
        self.nodes, self.inits = [], []

    def const(self, name: str, value) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, *, domain: str = "", **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain,
                                           **attrs))
        return output


def export_onnx(model: BinaryMLP, path) -> onnx.ModelProto:
    """Write ``model`` (a trained :class:`BinaryMLP`) to ``path`` and return the ONNX model."""
    g = _Graph()
    one, zero = g.const("one", 1.0), g.const("zero", 0.0)
    x = g.node("Quant", ["x", one, zero, g.const("in_bits", float(model.in_bits))], "x_quant",
               domain=QONNX_DOMAIN, signed=0, narrow=0, rounding_mode="ROUND")
    for i, block in enumerate(model.blocks):
        lin, bn = block["linear"], block["bn"]
        w = g.node("BipolarQuant", [g.const(f"fc{i}_w", lin.weight.detach().numpy().T), one],
                   f"fc{i}_wq", domain=QONNX_DOMAIN)
        x = g.node("MatMul", [x, w], f"fc{i}")
        x = g.node("BatchNormalization",
                   [x, g.const(f"bn{i}_gamma", bn.weight.detach().numpy()),
                    g.const(f"bn{i}_beta", bn.bias.detach().numpy()),
                    g.const(f"bn{i}_mean", bn.running_mean.numpy()),
                    g.const(f"bn{i}_var", bn.running_var.numpy())],
                   f"bn{i}", epsilon=float(bn.eps))
        x = g.node("BipolarQuant", [x, one], f"act{i}", domain=QONNX_DOMAIN)
    w = g.node("BipolarQuant", [g.const("head_w", model.head.weight.detach().numpy().T), one],
               "head_wq", domain=QONNX_DOMAIN)
    x = g.node("MatMul", [x, w], "head")
    g.node("Mul", [x, g.const("logit_scale", float(model.log_scale.detach().exp()))], "logits")

    graph = helper.make_graph(
        g.nodes, "hwgen_binary_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", model.n_in])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", model.n_classes])],
        g.inits)
    onnx_model = helper.make_model(
        graph, producer_name="hwgen",
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(QONNX_DOMAIN, 1)])
    onnx_model.ir_version = 10
    onnx.save(onnx_model, str(Path(path)))
    return onnx_model
