"""ONNX graph of a Sum-and-Max network (:class:`hwgen.sw.families.sam.lower.IntegerSAMNet`,
seed 002).

The input grid is written as ``Quant`` (scale ``s``, signed), the SAM layer as ``SumAndMax`` of
domain :data:`hwgen.sw.core.onnx_ops.HWGEN_DOMAIN`, an op of this project, and the output layer
as a ``MatMul`` by a ``Quant`` of its weights (scale ``t``, signed, narrow) and an ``Add`` of its
bias. ``SumAndMax`` takes ``x`` (batch, n), ``weights`` (terms, m, n) and ``fill`` (terms, m),
attributes ``reduces`` (``"max"``/``"min"`` per term) and ``signs`` (+-1 per term), and outputs
``sum_t sign_t * term_t`` with ``term_t,j = reduce_i (x_i + weights[t, j, i])`` over the
finite weights of row j, or ``fill[t, j]`` where the row has none: a pruned entry is -inf in a
max term and +inf in a min term, so it can never be selected. Every value is an integer times
``s`` or ``s t``, exact in float32 (both steps are powers of two).
"""

from __future__ import annotations

import numpy as np

from hwgen.sw.core.onnx_ops import HWGEN_DOMAIN, QONNX_DOMAIN

from ..export import OnnxGraph, exact_f32, exporter
from .lower import IntegerSAMNet

__all__ = ["sam_graph"]


@exporter(IntegerSAMNet)
def sam_graph(net: IntegerSAMNet) -> OnnxGraph:
    """Graph of an :class:`IntegerSAMNet` (see the module docs)."""
    g = OnnxGraph("hwgen_sam_net", net.n_in, net.n_classes)
    s, t = net.grid.step, net.weight_step
    x = g.input_quant(s, net.grid.type)
    weights = np.empty((len(net.terms), net.n_hidden, net.n_in), np.float32)
    fill = np.zeros((len(net.terms), net.n_hidden), np.float32)
    for k, term in enumerate(net.terms):
        weights[k] = -np.inf if term.reduce == "max" else np.inf      # pruned: never selected
        weights[k, term.rows.numpy(), term.cols.numpy()] = exact_f32(
            term.weights.numpy(), s, "a SAM weight")
        fill[k] = exact_f32(term.fill.numpy(), s, "a SAM fill")
    x = g.node("SumAndMax", [x, g.const("sam_w", weights), g.const("sam_fill", fill)], "sam",
               domain=HWGEN_DOMAIN, reduces=[t.reduce for t in net.terms],
               signs=[t.sign for t in net.terms])
    w = g.node("Quant", [g.const("head_w", exact_f32(net.weight.numpy().T, t, "a weight")),
                         g.const("head_step", t), g.const("zero", 0.0),
                         g.const("head_bits", float(net.weight_bits))], "head_wq",
               domain=QONNX_DOMAIN, signed=1, narrow=1, rounding_mode="ROUND")
    x = g.node("MatMul", [x, w], "head")
    g.node("Add", [x, g.const("head_b", exact_f32(net.bias.numpy(), s * t, "a bias"))],
           "logits")
    return g
