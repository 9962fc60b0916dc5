"""ONNX graph of a MINW-Net MLP (:class:`hwgen.sw.families.shift.aqe.MINWMLP`, seed 004).

The inference weights ``h(w)`` (eq. 20) are written as plain initializers: 0 and +-2^-p are
exact in float32. The graph input is a QONNX ``Quant`` (scale 1, unsigned); with
``quantize_input`` it is mapped onto [-1, 1] and quantized like every activation. A 1-bit
activation is ``BipolarQuant``; an n-bit one (n >= 2) is ``PowerOfTwoQuant`` of domain
:data:`hwgen.sw.core.onnx_ops.HWGEN_DOMAIN`, an op of this project: inputs ``x`` and a positive
``scale``, attribute ``bits``, output ``scale * h_n(x / scale)`` with ``h_n`` the power-of-two
levels of eq. 22 as :func:`hwgen.sw.families.shift.aqe.power_of_two` defines them (nearest
level; a value on a threshold goes to the level of smaller magnitude). QONNX has no op for
non-uniform levels. Batch norm is ``BatchNormalization`` and the logits a ``Mul`` by the
positive logit scale.
"""

from __future__ import annotations

from hwgen.sw.core.onnx_ops import HWGEN_DOMAIN, QONNX_DOMAIN

from ..export import OnnxGraph, exporter
from .aqe import FLOAT_BITS, MINWMLP

__all__ = ["minw_graph"]


@exporter(MINWMLP)
def minw_graph(model: MINWMLP) -> OnnxGraph:
    """Graph of a :class:`MINWMLP` (see the module docs); ValueError for float widths."""
    if max(model.act_bits, model.weight_bits) >= FLOAT_BITS:
        raise ValueError("a MINW-Net with float weights or activations has no integer form; "
                         f"quantize both below {FLOAT_BITS} bits")
    g = OnnxGraph("hwgen_minw_mlp", model.n_in, model.n_classes)
    one, zero = g.const("one", 1.0), g.const("zero", 0.0)
    in_bits = max(1, int(model.in_max).bit_length())
    x = g.node("Quant", ["x", one, zero, g.const("in_bits", float(in_bits))], "x_quant",
               domain=QONNX_DOMAIN, signed=0, narrow=0, rounding_mode="ROUND")

    def act(x: str, name: str) -> str:
        if model.act_bits == 1:
            return g.node("BipolarQuant", [x, one], name, domain=QONNX_DOMAIN)
        return g.node("PowerOfTwoQuant", [x, one], name, domain=HWGEN_DOMAIN,
                      bits=model.act_bits)

    if model.quantize_input:
        x = g.node("Mul", [x, g.const("two", 2.0)], "x_2")
        x = g.node("Div", [x, g.const("in_max", float(model.in_max))], "x_gain")
        x = g.node("Add", [x, g.const("in_offset", -1.0)], "x_unit")
        x = act(x, "x_act")
    weights = model.quantized_weights()
    for i, bn in enumerate(model.bns):
        x = g.node("MatMul", [x, g.const(f"fc{i}_w", weights[i].numpy().T)], f"fc{i}")
        x = g.batch_norm(x, bn, f"bn{i}")
        x = act(x, f"act{i}")
    x = g.node("MatMul", [x, g.const("head_w", weights[-1].numpy().T)], "head")
    g.node("Mul", [x, g.const("logit_scale", float(model.log_scale.detach().exp()))], "logits")
    return g
