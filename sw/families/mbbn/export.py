"""ONNX graph of a multi-branch MLP (seed 003): :class:`hwgen.sw.families.mbbn.layers.MBBNMLP`,
and :class:`hwgen.sw.families.mbbn.layers.QuantMLP` before or after
:func:`hwgen.sw.families.mbbn.layers.decompose`.

The graph input is a QONNX ``Quant`` (scale 1, unsigned, ``ceil(log2(in_max + 1))`` bits),
mapped onto [-1, 1] by ``Mul``, ``Div`` and ``Add``. The encoders are written as QONNX
``Quant``: the M-bit encoder of a range t, ``t / L * odd_round(L * HTanh(a / t))`` with
L = 2^M - 1 (eq. 10 and eq. 15 of seed 003), is ``Quant(a; scale 2t/L, zero point 2^(M-1),
M bits, unsigned, FLOOR)`` followed by ``Add(t/L)``: the Quant code is
``floor(L a / 2t) + 2^(M-1)`` clamped to 0..L, which is the offset code of the odd state.
Weights are written as their odd integer states, the weight quantizer's step following as a
``Mul``; batch norm is ``BatchNormalization`` and the logits a ``Mul`` by the positive logit
scale.
"""

from __future__ import annotations

import numpy as np

from hwgen.sw.core.onnx_ops import QONNX_DOMAIN

from ..export import OnnxGraph, exporter
from .layers import MBBNLinear, MBBNMLP, QuantMLP

__all__ = ["encoded_graph"]


@exporter(MBBNMLP, QuantMLP)
def encoded_graph(model: MBBNMLP | QuantMLP) -> OnnxGraph:
    """Graph of an MBBNMLP or QuantMLP (see the module docs for the encoder's form)."""
    g = OnnxGraph("hwgen_mbbn_mlp", model.n_in, model.n_classes)
    one, zero = g.const("one", 1.0), g.const("zero", 0.0)
    in_bits = max(1, int(np.ceil(np.log2(model.in_max + 1))))
    x = g.node("Quant", ["x", one, zero, g.const("in_bits", float(in_bits))], "x_quant",
               domain=QONNX_DOMAIN, signed=0, narrow=0, rounding_mode="ROUND")
    # inputs in [0, in_max] onto [-1, 1]; every constant is exact in float32, so the compiler
    # sees the same numbers as the float64 PyTorch model
    x = g.node("Mul", [x, g.const("two", 2.0)], "x_2")
    x = g.node("Div", [x, g.const("in_max", model.in_max)], "x_gain")
    x = g.node("Add", [x, g.const("in_offset", -1.0)], "x_unit")
    for i, layer in enumerate(model.layers):
        levels = float((1 << layer.m_bits) - 1)
        if isinstance(layer, MBBNLinear):
            t, codes, w_range = None, layer.weight_codes(), None
        else:
            t = float(layer.act.range().detach())
            codes = layer.weight_quant.codes(layer.weight)
            w_range = float(layer.weight_quant.range().detach())
        if t is not None:
            x = g.node("Div", [x, g.const(f"enc{i}_t", t)], f"enc{i}_unit")
        # the offset code floor(L a / 2) + 2^(M-1); (code - 2^(M-1)) * 2 + 1 is the state
        x = g.node("Mul", [x, g.const(f"enc{i}_levels", levels)], f"enc{i}_y")
        x = g.node("Quant", [x, g.const("two", 2.0),
                             g.const(f"enc{i}_zero", float(1 << (layer.m_bits - 1))),
                             g.const(f"enc{i}_bits", float(layer.m_bits))],
                   f"enc{i}", domain=QONNX_DOMAIN, signed=0, narrow=0, rounding_mode="FLOOR")
        x = g.node("Add", [x, one], f"enc{i}_q")
        if t is not None:
            # Quantize_M's level t q / L
            x = g.node("Mul", [x, g.const(f"enc{i}_t", t)], f"enc{i}_tq")
            x = g.node("Div", [x, g.const(f"enc{i}_levels", levels)], f"enc{i}_value")
        x = g.node("MatMul", [x, g.const(f"fc{i}_w", codes.T)], f"fc{i}")
        if w_range is not None:
            # Quantize_K's weight levels t_w c / L_K
            x = g.node("Mul", [x, g.const(f"fc{i}_t", w_range)], f"fc{i}_tw")
            x = g.node("Div", [x, g.const(f"fc{i}_levels", float((1 << layer.k_bits) - 1))],
                       f"fc{i}_value")
        elif layer.scaled:
            # eq. 9 with r = 1
            x = g.node("Div", [x, g.const(f"fc{i}_branch_levels",
                                          levels * ((1 << layer.k_bits) - 1))], f"fc{i}_eq9")
        if i < len(model.bns):
            x = g.batch_norm(x, model.bns[i], f"bn{i}")
    g.node("Mul", [x, g.const("logit_scale", float(model.log_scale.detach().exp()))], "logits")
    return g
