"""The walk of a chain from the graph input to its output, one handler per op (module docs of
:mod:`hwgen.sw.compiler`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import onnx

from hwgen.sw.core import ir
from hwgen.sw.core.onnx_ops import HWGEN_DOMAIN

from .custom_ops import qam_slicer, sum_and_max
from .dense import OpenDense, read_weights
from .exact import exact, exact_array
from .graph import CompileError, Graph, attr, bit_width, load_onnx, node_name
from .quantized import Activation, Quantized

__all__ = ["compile_onnx", "OPS"]


@dataclass
class Walk:
    """Where the walk stands: the layers so far, and either the quantized tensor in hand or the
    dense layer still open (its accumulator computed, its float tail followed)."""

    g: Graph
    layers: list = field(default_factory=list)
    quantized: Quantized | None = None
    open_dense: OpenDense | None = None


def _passthrough(w: Walk, node) -> None:
    pass


def _matmul(w: Walk, node) -> None:
    name = node_name(node)
    if w.quantized is None:
        raise CompileError(f"node {name}: its input is not quantized; put a "
                           "BipolarQuant (sign) or Quant before it")
    codes, scale, integer_weights = read_weights(node, w.g)
    if codes.shape[1] != w.quantized.n:
        raise CompileError(f"node {name}: weight has {codes.shape[1]} inputs, its input "
                           f"tensor {w.quantized.n} elements")
    w.open_dense = OpenDense(node, w.quantized, codes, scale, integer_weights)
    if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
        bias = w.g.const(node, 2).reshape(-1)
        if bias.size not in (1, w.open_dense.b.size):
            raise CompileError(f"node {name}: bias of {bias.size} entries for "
                               f"{w.open_dense.b.size} outputs")
        w.open_dense.b = w.open_dense.b + exact(attr(node, "beta", 1.0)) * \
            exact_array(np.broadcast_to(bias, w.open_dense.b.shape))
    w.quantized = None


def _sum_and_max(w: Walk, node) -> None:
    if w.quantized is None or not w.quantized.type.is_integer:
        raise CompileError(f"node {node_name(node)}: SumAndMax must follow an integer tensor")
    layer = sum_and_max(node, w.g, w.quantized)
    w.layers.append(layer)
    w.quantized = Quantized(layer.out_type(w.quantized.type), layer.n_out,
                            w.quantized.alpha[0])


def _qam_slicer(w: Walk, node) -> None:
    layer, w.quantized = qam_slicer(node, w.g, w.quantized, w.open_dense, w.layers)
    w.layers.append(layer)
    w.open_dense = None


def _affine(w: Walk, node) -> None:
    op = node.op_type
    if w.open_dense is not None:
        w.open_dense.affine(node, w.g)
    elif op == "BatchNormalization" or w.quantized is None:
        raise CompileError(f"node {node_name(node)}: {op} must follow a MatMul/Gemm or scale a "
                           "quantized tensor")
    else:
        w.quantized.affine(node, w.g)


def _activation(w: Walk, node) -> None:
    name = node_name(node)
    act = Activation(node, w.g)
    if w.open_dense is not None:
        w.layers.append(w.open_dense.close(act))
        n = w.open_dense.a.shape[0]
    elif w.quantized is not None and w.quantized.type.is_integer:
        # an element-wise requantization of integers: the accumulator is the element
        q = w.quantized
        n = q.n
        mt = act.multithreshold(q.alpha, q.beta, q.type.lo, q.type.hi)
        w.layers.append(ir.MultiThresholdLayer(name=name, threshold=mt))
    else:
        raise CompileError(f"node {name}: {node.op_type} must follow a MatMul/Gemm or an "
                           "integer tensor")
    w.open_dense, w.quantized = None, Quantized(act.out, n, act.alpha, act.beta)


OPS: dict[tuple[str, str | None], Callable[[Walk, object], None]] = {
    ("Identity", None): _passthrough,
    ("Flatten", None): _passthrough,
    ("MatMul", None): _matmul,
    ("Gemm", None): _matmul,
    ("BatchNormalization", None): _affine,
    ("Mul", None): _affine,
    ("Div", None): _affine,
    ("Add", None): _affine,
    ("Sub", None): _affine,
    ("BipolarQuant", None): _activation,
    ("Quant", None): _activation,
    ("PowerOfTwoQuant", HWGEN_DOMAIN): _activation,
    ("SumAndMax", HWGEN_DOMAIN): _sum_and_max,
    ("QAMSlicer", HWGEN_DOMAIN): _qam_slicer,
}
"""The handler of each op, keyed on (op type, domain); a domain of None takes any domain."""


def input_type(node, g: Graph) -> tuple[ir.TensorType, Fraction]:
    """The input codes' type and the float value of one step."""
    scale, zero, bits = (g.const(node, i) for i in range(1, 4))
    if scale.size != 1 or not scale.item() > 0 or zero.size != 1 or zero.item() != 0:
        raise CompileError(f"node {node_name(node)}: the input Quant must have one positive "
                           "scale and zero point 0 (integer inputs)")
    nbits = bit_width(node, bits, "input bit width", " (one UART byte per element)")
    return ir.TensorType("signed" if attr(node, "signed", 1) else "unsigned", nbits), \
        exact(scale.item())


def compile_onnx(source) -> ir.Model:
    """Lower an ONNX model (a path or a ModelProto) to a checked :class:`hwgen.sw.core.ir.Model`."""
    model = source if isinstance(source, onnx.ModelProto) else load_onnx(source)
    g = Graph(model)
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise CompileError(f"the graph must have one input and one output, not "
                           f"{len(g.inputs)} and {len(g.outputs)}")
    tensor = g.inputs[0]
    first = g.next_node(tensor)
    if first is None or first.op_type != "Quant":
        raise CompileError(f"graph input {tensor} must feed a Quant node that makes it integer")
    in_type, in_step = input_type(first, g)
    n_in = input_width(model, tensor)
    tensor = first.output[0]

    w = Walk(g, quantized=Quantized(in_type, n_in, in_step))
    while (node := g.next_node(tensor)) is not None:
        handler = OPS.get((node.op_type, node.domain)) or OPS.get((node.op_type, None))
        if handler is None:
            raise CompileError(f"node {node_name(node)}: unsupported op {node.op_type}"
                               + (f" (domain {node.domain})" if node.domain else ""))
        handler(w, node)
        tensor = node.output[0]

    if tensor != g.outputs[0]:
        raise CompileError(f"tensor {tensor} ends the chain but is not the graph output")
    layers = w.layers
    if w.open_dense is not None:
        # a classifier's logits: the hardware emits the class, the argmax of the accumulators
        # (a one-class model's class is always 0, as torch.argmax says)
        layers.append(w.open_dense.close_at_output())
        names = {layer.name for layer in layers}
        name = next(n for n in ("argmax", *(f"argmax_{i}" for i in range(1, len(layers) + 2)))
                    if n not in names)
        layers.append(ir.ArgMax(name=name, n=layers[-1].n_out))
    elif not layers:
        raise CompileError("the graph holds no layer")
    integer_codes_for_integer_weights(layers)
    try:
        return ir.Model(in_type, n_in, layers, meta={"source": model.graph.name}).check()
    except ValueError as e:
        raise CompileError(str(e)) from None


def integer_codes_for_integer_weights(layers: list[ir.Layer]) -> None:
    """A multi-threshold feeding a layer of integer weights (``dense_mac``) emits its codes as
    unsigned integers (the odd state's offset code u is the integer those weights multiply,
    see :class:`~hwgen.sw.compiler.dense.OpenDense`)."""
    for prev, layer in zip(layers, layers[1:]):
        th = getattr(prev, "threshold", None)
        if getattr(layer, "integer_weights", False) and isinstance(th, ir.MultiThreshold) and \
                th.out.digits:
            prev.threshold = ir.MultiThreshold(th.t, th.flip,
                                               ir.TensorType("unsigned", th.out.digits))


def input_width(model: onnx.ModelProto, name: str) -> int:
    for vi in model.graph.input:
        if vi.name == name:
            dims = vi.type.tensor_type.shape.dim
            if dims and dims[-1].HasField("dim_value") and dims[-1].dim_value > 0:
                return int(dims[-1].dim_value)
    raise CompileError(f"graph input {name} must have a fixed last dimension (its width)")
