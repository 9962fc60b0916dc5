"""ONNX graph of a binary MLP (:class:`hwgen.sw.families.binary.layers.BinaryMLP`, seed 004).

* ``Quant`` (domain ``qonnx.custom_op.general``, scale 1, zero point 0) on the graph input
  states that the input is an ``in_bits``-bit unsigned integer.
* ``BipolarQuant`` (scale 1) on each real weight matrix binarizes it (sign(0) = +1), and on
  each batch-norm output binarizes the activation.
* ``MatMul``, ``BatchNormalization`` and a final ``Mul`` by the positive logit scale are
  standard ONNX.

Registered with :func:`hwgen.sw.families.export.exporter`; write it with
:func:`hwgen.sw.families.export.export_onnx`.
"""

from __future__ import annotations

from hwgen.sw.core.onnx_ops import QONNX_DOMAIN

from ..export import OnnxGraph, exporter
from .layers import BinaryMLP

__all__ = ["binary_graph"]


@exporter(BinaryMLP)
def binary_graph(model: BinaryMLP) -> OnnxGraph:
    """Graph of a :class:`BinaryMLP` (see the module docs)."""
    g = OnnxGraph("hwgen_binary_mlp", model.n_in, model.n_classes)
    one, zero = g.const("one", 1.0), g.const("zero", 0.0)
    x = g.node("Quant", ["x", one, zero, g.const("in_bits", float(model.in_bits))], "x_quant",
               domain=QONNX_DOMAIN, signed=0, narrow=0, rounding_mode="ROUND")
    for i, block in enumerate(model.blocks):
        lin, bn = block["linear"], block["bn"]
        w = g.node("BipolarQuant", [g.const(f"fc{i}_w", lin.weight.detach().numpy().T), one],
                   f"fc{i}_wq", domain=QONNX_DOMAIN)
        x = g.node("MatMul", [x, w], f"fc{i}")
        x = g.batch_norm(x, bn, f"bn{i}")
        x = g.node("BipolarQuant", [x, one], f"act{i}", domain=QONNX_DOMAIN)
    w = g.node("BipolarQuant", [g.const("head_w", model.head.weight.detach().numpy().T), one],
               "head_wq", domain=QONNX_DOMAIN)
    x = g.node("MatMul", [x, w], "head")
    g.node("Mul", [x, g.const("logit_scale", float(model.log_scale.detach().exp()))], "logits")
    return g
