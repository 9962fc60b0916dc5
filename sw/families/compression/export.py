"""ONNX graph of a min/max-quantized, pruned MLP
(:class:`hwgen.sw.families.compression.lower.IntegerMinMaxMLP`, seed 001).

The input grid is written as ``Quant``, then per layer a ``MatMul`` by a weight ``Quant``
(16-bit signed codes ``E``, scale ``sigma``: ``E sigma`` has at most 24 significant bits, exact
in float32), ``Div`` by the accumulator unit ``u``, ``Add`` of the integer bias, and for a
hidden layer ``Mul`` by ``u`` and an unsigned activation ``Quant`` (ROUND): every constant
exact.
"""

from __future__ import annotations

from hwgen.sw.core.onnx_ops import QONNX_DOMAIN

from ..export import OnnxGraph, exact_f32, exporter
from .lower import IntegerMinMaxMLP

__all__ = ["minmax_graph"]


@exporter(IntegerMinMaxMLP)
def minmax_graph(net: IntegerMinMaxMLP) -> OnnxGraph:
    """Graph of an :class:`IntegerMinMaxMLP` (see the module docs)."""
    g = OnnxGraph("hwgen_minmax_mlp", net.n_in, net.n_classes)
    x = g.input_quant(net.in_step, net.in_type)
    unit_x = net.in_step
    last = len(net.layers) - 1
    for i, layer in enumerate(net.layers):
        unit = unit_x * layer.sigma
        w = g.node("Quant", [g.const(f"fc{i}_w", exact_f32(layer.weights.T, layer.sigma,
                                                           "a weight")),
                             g.const(f"fc{i}_step", layer.sigma), g.const("zero", 0.0),
                             g.const("w_bits", 16.0)], f"fc{i}_wq",
                   domain=QONNX_DOMAIN, signed=1, narrow=0, rounding_mode="ROUND")
        x = g.node("MatMul", [x, w], f"fc{i}")
        x = g.node("Div", [x, g.const(f"fc{i}_unit", exact_f32(1, unit, "a unit"))],
                   f"fc{i}_units")
        x = g.node("Add", [x, g.const(f"fc{i}_b", exact_f32(layer.bias, 1.0, "a bias"))],
                   "logits" if i == last else f"fc{i}_bias")
        if i < last:
            x = g.node("Mul", [x, g.const(f"fc{i}_unit", unit)], f"fc{i}_out")
            x = g.node("Quant", [x, g.const("act_step", net.act_step), g.const("zero", 0.0),
                                 g.const("act_bits", float(net.act_bits))], f"act{i}",
                       domain=QONNX_DOMAIN, signed=0, narrow=0, rounding_mode="ROUND")
            unit_x = net.act_step
    return g
