"""ONNX graph of a constellation network (seed 000),
:class:`hwgen.sw.families.constellation.lower.IntegerQAMNet`.

The input grid is written as ``Quant`` (scale ``s``), a complex layer's real embedding as a
``MatMul`` by a ``Quant`` of its weights (scale ``t``) and an ``Add`` of its bias, and the QAM
activation as ``QAMSlicer`` of domain :data:`hwgen.sw.core.onnx_ops.HWGEN_DOMAIN`, an op of this
project: input ``x`` (batch, 2n), complex elements in block layout (real parts, then imaginary
parts); attributes ``order`` (4, 16, 64 or 256) and ``delta`` (float); output, per element,
the nearest of the ``M = sqrt(order)`` levels ``delta (2k - (M - 1)) / (M - 1)``, an input on a
midpoint going to the upper level (as :func:`hwgen.sw.families.constellation.qam.level_index`).
A slicer alone (:func:`hwgen.sw.families.constellation.lower.slicer_only`) is
``Quant -> QAMSlicer``. The graph output is ``symbols``.
"""

from __future__ import annotations

from hwgen.sw.core.onnx_ops import HWGEN_DOMAIN, QONNX_DOMAIN

from ..export import OnnxGraph, exact_f32, exporter
from .lower import IntegerQAMNet

__all__ = ["qam_graph"]


@exporter(IntegerQAMNet)
def qam_graph(net: IntegerQAMNet) -> OnnxGraph:
    """Graph of an :class:`IntegerQAMNet` (see the module docs)."""
    g = OnnxGraph("hwgen_qam_net", net.n_in, net.n_out, output="symbols")
    s, t = net.in_step, net.weight_step
    x = g.input_quant(s, net.in_type)
    if net.weights is not None:
        w = g.node("Quant", [g.const("fc_w", exact_f32(net.weights.numpy().T, t, "a weight")),
                             g.const("fc_step", t), g.const("zero", 0.0),
                             g.const("fc_bits", float(net.weight_bits))], "fc_wq",
                   domain=QONNX_DOMAIN, signed=1, narrow=1, rounding_mode="ROUND")
        x = g.node("MatMul", [x, w], "fc")
        x = g.node("Add", [x, g.const("fc_b", exact_f32(net.bias.numpy(), s * t, "a bias"))],
                   "fc_bias")
    g.node("QAMSlicer", [x], "symbols", domain=HWGEN_DOMAIN, order=int(net.order),
           delta=float(net.delta))
    return g
