"""Export hwgen PyTorch models to ONNX in QONNX's op vocabulary.

The graph is written node by node from the trained parameters, so that it holds exactly what
the compiler needs and nothing a tracer might add:

* ``Quant`` (domain ``qonnx.custom_op.general``, scale 1, zero point 0) on the graph input
  states that the input is an ``in_bits``-bit unsigned integer.
* ``BipolarQuant`` (scale 1) on each real weight matrix binarizes it (sign(0) = +1), and on
  each batch-norm output binarizes the activation.
* ``MatMul``, ``BatchNormalization`` and a final ``Mul`` by the positive logit scale are
  standard ONNX.

Multi-branch networks (:class:`hwgen.sw.mbbn.MBBNMLP`, and :class:`hwgen.sw.mbbn.QuantMLP`
before or after :func:`hwgen.sw.mbbn.decompose`) export their encoders as QONNX ``Quant``:
the M-bit encoder of a range t, ``t / L * odd_round(L * HTanh(a / t))`` with L = 2^M - 1
(eq. 10 and eq. 15 of seed 003), is ``Quant(a; scale 2t/L, zero point 2^(M-1), M bits,
unsigned, FLOOR)`` followed by ``Add(t/L)``: the Quant code is ``floor(L a / 2t) + 2^(M-1)``
clamped to 0..L, which is the offset code of the odd state. Weights are written as their
odd integer states, the weight quantizer's step following as a ``Mul``.

MINW-Net MLPs (:class:`hwgen.sw.aqe.MINWMLP`, seed 004) write their inference weights ``h(w)``
(eq. 20) as plain initializers: 0 and +-2^-p are exact in float32. A 1-bit activation is
``BipolarQuant``; an n-bit one (n >= 2) is ``PowerOfTwoQuant`` of domain
:data:`HWGEN_DOMAIN`, an op of this project: inputs ``x`` and a positive ``scale``, attribute
``bits``, output ``scale * h_n(x / scale)`` with ``h_n`` the power-of-two levels of eq. 22 as
:func:`hwgen.sw.aqe.power_of_two` defines them (nearest level; a value on a threshold goes to
the level of smaller magnitude). QONNX has no op for non-uniform levels.

Sum-and-Max networks (:class:`hwgen.sw.sam_lower.IntegerSAMNet`, seed 002) write their input
grid as ``Quant`` (scale ``s``, signed), the SAM layer as ``SumAndMax`` of domain
:data:`HWGEN_DOMAIN`, another op of this project, and the output layer as a ``MatMul`` by a
``Quant`` of its weights (scale ``t``, signed, narrow) and an ``Add`` of its bias. ``SumAndMax``
takes ``x`` (batch, n), ``weights`` (terms, m, n) and ``fill`` (terms, m), attributes
``reduces`` (``"max"``/``"min"`` per term) and ``signs`` (+-1 per term), and outputs
``sum_t sign_t * term_t`` with ``term_t,j = reduce_i (x_i + weights[t, j, i])`` over the
finite weights of row j, or ``fill[t, j]`` where the row has none: a pruned entry is -inf in a
max term and +inf in a min term, so it can never be selected. Every value is an integer times
``s`` or ``s t``, exact in float32 (both steps are powers of two).

Min/max-quantized, pruned MLPs (:class:`hwgen.sw.minmax_lower.IntegerMinMaxMLP`, seed 001)
write the input grid as ``Quant``, then per layer a ``MatMul`` by a weight ``Quant`` (16-bit
signed codes ``E``, scale ``sigma``: ``E sigma`` has at most 24 significant bits, exact in
float32), ``Div`` by the accumulator unit ``u``, ``Add`` of the integer bias, and for a hidden
layer ``Mul`` by ``u`` and an unsigned activation ``Quant`` (ROUND): every constant exact.

Constellation networks (:class:`hwgen.sw.qam_lower.IntegerQAMNet`, seed 000) write the input
grid as ``Quant`` (scale ``s``), a complex layer's real embedding as a ``MatMul`` by a
``Quant`` of its weights (scale ``t``) and an ``Add`` of its bias, and the QAM activation as
``QAMSlicer`` of domain :data:`HWGEN_DOMAIN`: input ``x`` (batch, 2n), complex elements in
block layout (real parts, then imaginary parts); attributes ``order`` (4, 16, 64 or 256) and
``delta`` (float); output, per element, the nearest of the ``M = sqrt(order)`` levels
``delta (2k - (M - 1)) / (M - 1)``, an input on a midpoint going to the upper level (as
:func:`hwgen.sw.qam.level_index`). A slicer alone is ``Quant -> QAMSlicer``. The graph output
is ``symbols``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .layers import BinaryMLP

__all__ = ["export_onnx", "QONNX_DOMAIN", "HWGEN_DOMAIN"]

QONNX_DOMAIN = "qonnx.custom_op.general"
HWGEN_DOMAIN = "hwgen.custom_op"


class _Graph:
    def __init__(self):
        self.nodes, self.inits = [], []

    def const(self, name: str, value) -> str:
        if any(t.name == name for t in self.inits):
            return name
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def input_quant(self, step: float, t) -> str:
        """The graph input's ``Quant`` to integer codes of type ``t`` (signed or unsigned) and
        step ``step`` (round half to even)."""
        return self.node("Quant", ["x", self.const("in_step", step), self.const("zero", 0.0),
                                   self.const("in_bits", float(t.bits))], "x_quant",
                         domain=QONNX_DOMAIN, signed=int(t.kind == "signed"), narrow=0,
                         rounding_mode="ROUND")

    def batch_norm(self, x: str, bn, name: str) -> str:
        """A ``BatchNormalization`` node of ``bn``'s inference-mode statistics."""
        return self.node("BatchNormalization",
                         [x, self.const(f"{name}_gamma", bn.weight.detach().numpy()),
                          self.const(f"{name}_beta", bn.bias.detach().numpy()),
                          self.const(f"{name}_mean", bn.running_mean.numpy()),
                          self.const(f"{name}_var", bn.running_var.numpy())],
                         name, epsilon=float(bn.eps))

    def node(self, op: str, inputs: list[str], output: str, *, domain: str = "", **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain,
                                           **attrs))
        return output


def export_onnx(model, path) -> onnx.ModelProto:
    """Write ``model`` (a trained :class:`BinaryMLP`, :class:`hwgen.sw.mbbn.MBBNMLP` or
    :class:`hwgen.sw.mbbn.QuantMLP`) to ``path`` and return the ONNX model."""
    from .aqe import MINWMLP
    from .mbbn import MBBNMLP, QuantMLP
    from .minmax_lower import IntegerMinMaxMLP
    from .qam_lower import IntegerQAMNet
    from .sam_lower import IntegerSAMNet

    out, n_out = "logits", getattr(model, "n_classes", None)
    if isinstance(model, IntegerMinMaxMLP):
        g, name = _minmax_graph(model), "hwgen_minmax_mlp"
    elif isinstance(model, IntegerQAMNet):
        g, name, out, n_out = _qam_graph(model), "hwgen_qam_net", "symbols", model.n_out
    elif isinstance(model, IntegerSAMNet):
        g, name = _sam_graph(model), "hwgen_sam_net"
    elif isinstance(model, (MBBNMLP, QuantMLP)):
        g, name = _encoded_graph(model), "hwgen_mbbn_mlp"
    elif isinstance(model, MINWMLP):
        g, name = _minw_graph(model), "hwgen_minw_mlp"
    elif isinstance(model, BinaryMLP):
        g, name = _binary_graph(model), "hwgen_binary_mlp"
    else:
        raise TypeError(f"cannot export a {type(model).__name__}; expected BinaryMLP, "
                        "MBBNMLP, QuantMLP, MINWMLP, IntegerSAMNet, IntegerQAMNet or "
                        "IntegerMinMaxMLP")
    graph = helper.make_graph(
        g.nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", model.n_in])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", n_out])],
        g.inits)
    onnx_model = helper.make_model(
        graph, producer_name="hwgen",
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(QONNX_DOMAIN, 1),
                       helper.make_opsetid(HWGEN_DOMAIN, 1)])
    onnx_model.ir_version = 10
    onnx.save(onnx_model, str(Path(path)))
    return onnx_model


def _binary_graph(model: BinaryMLP) -> _Graph:
    g = _Graph()
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


def _encoded_graph(model) -> _Graph:
    """Graph of an MBBNMLP or QuantMLP (see the module docs for the encoder's form)."""
    from .mbbn import MBBNLinear

    g = _Graph()
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
            x = g.node("Div", [x, g.const(f"fc{i}_branch_levels", levels * ((1 << layer.k_bits) - 1))],
                       f"fc{i}_eq9")
        if i < len(model.bns):
            x = g.batch_norm(x, model.bns[i], f"bn{i}")
    g.node("Mul", [x, g.const("logit_scale", float(model.log_scale.detach().exp()))], "logits")
    return g


def _minw_graph(model) -> _Graph:
    """Graph of a :class:`hwgen.sw.aqe.MINWMLP` (see the module docs)."""
    from .aqe import FLOAT_BITS

    if max(model.act_bits, model.weight_bits) >= FLOAT_BITS:
        raise ValueError("a MINW-Net with float weights or activations has no integer form; "
                         f"quantize both below {FLOAT_BITS} bits")
    g = _Graph()
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


def _exact_f32(codes: np.ndarray, step: float, what: str) -> np.ndarray:
    """``codes * step`` as float32, refused unless it reads back as exactly ``codes``."""
    value = (np.asarray(codes, np.float64) * step).astype(np.float32)
    if not np.array_equal(value.astype(np.float64) / step, codes):
        raise ValueError(f"{what} times its step {step:g} is not exact in float32; use a "
                         "power-of-two step")
    return value


def _sam_graph(net) -> _Graph:
    """Graph of a :class:`hwgen.sw.sam_lower.IntegerSAMNet` (see the module docs)."""
    g = _Graph()
    s, t = net.grid.step, net.weight_step
    x = g.input_quant(s, net.grid.type)
    weights = np.empty((len(net.terms), net.n_hidden, net.n_in), np.float32)
    fill = np.zeros((len(net.terms), net.n_hidden), np.float32)
    for k, term in enumerate(net.terms):
        weights[k] = -np.inf if term.reduce == "max" else np.inf      # pruned: never selected
        weights[k, term.rows.numpy(), term.cols.numpy()] = _exact_f32(
            term.weights.numpy(), s, "a SAM weight")
        fill[k] = _exact_f32(term.fill.numpy(), s, "a SAM fill")
    x = g.node("SumAndMax", [x, g.const("sam_w", weights), g.const("sam_fill", fill)], "sam",
               domain=HWGEN_DOMAIN, reduces=[t.reduce for t in net.terms],
               signs=[t.sign for t in net.terms])
    w = g.node("Quant", [g.const("head_w", _exact_f32(net.weight.numpy().T, t, "a weight")),
                         g.const("head_step", t), g.const("zero", 0.0),
                         g.const("head_bits", float(net.weight_bits))], "head_wq",
               domain=QONNX_DOMAIN, signed=1, narrow=1, rounding_mode="ROUND")
    x = g.node("MatMul", [x, w], "head")
    g.node("Add", [x, g.const("head_b", _exact_f32(net.bias.numpy(), s * t, "a bias"))],
           "logits")
    return g


def _qam_graph(net) -> _Graph:
    """Graph of a :class:`hwgen.sw.qam_lower.IntegerQAMNet` (see the module docs)."""
    g = _Graph()
    s, t = net.in_step, net.weight_step
    x = g.input_quant(s, net.in_type)
    if net.weights is not None:
        w = g.node("Quant", [g.const("fc_w", _exact_f32(net.weights.numpy().T, t, "a weight")),
                             g.const("fc_step", t), g.const("zero", 0.0),
                             g.const("fc_bits", float(net.weight_bits))], "fc_wq",
                   domain=QONNX_DOMAIN, signed=1, narrow=1, rounding_mode="ROUND")
        x = g.node("MatMul", [x, w], "fc")
        x = g.node("Add", [x, g.const("fc_b", _exact_f32(net.bias.numpy(), s * t, "a bias"))],
                   "fc_bias")
    g.node("QAMSlicer", [x], "symbols", domain=HWGEN_DOMAIN, order=int(net.order),
           delta=float(net.delta))
    return g


def _minmax_graph(net) -> _Graph:
    """Graph of a :class:`hwgen.sw.minmax_lower.IntegerMinMaxMLP` (see the module docs)."""
    g = _Graph()
    x = g.input_quant(net.in_step, net.in_type)
    unit_x = net.in_step
    last = len(net.layers) - 1
    for i, layer in enumerate(net.layers):
        unit = unit_x * layer.sigma
        w = g.node("Quant", [g.const(f"fc{i}_w", _exact_f32(layer.weights.T, layer.sigma,
                                                            "a weight")),
                             g.const(f"fc{i}_step", layer.sigma), g.const("zero", 0.0),
                             g.const("w_bits", 16.0)], f"fc{i}_wq",
                   domain=QONNX_DOMAIN, signed=1, narrow=0, rounding_mode="ROUND")
        x = g.node("MatMul", [x, w], f"fc{i}")
        x = g.node("Div", [x, g.const(f"fc{i}_unit", _exact_f32(1, unit, "a unit"))],
                   f"fc{i}_units")
        x = g.node("Add", [x, g.const(f"fc{i}_b", _exact_f32(layer.bias, 1.0, "a bias"))],
                   "logits" if i == last else f"fc{i}_bias")
        if i < last:
            x = g.node("Mul", [x, g.const(f"fc{i}_unit", unit)], f"fc{i}_out")
            x = g.node("Quant", [x, g.const("act_step", net.act_step), g.const("zero", 0.0),
                                 g.const("act_bits", float(net.act_bits))], f"act{i}",
                       domain=QONNX_DOMAIN, signed=0, narrow=0, rounding_mode="ROUND")
            unit_x = net.act_step
    return g
