"""ONNX (QONNX op vocabulary) -> hwgen layer IR.

The graph must be a chain from one quantized input to one output. The compiler walks it once:

* ``Quant`` on the graph input (scale 1, zero point 0) gives the input's integer type.
* ``MatMul`` / ``Gemm`` whose weight is a binary tensor (``BipolarQuant`` of an initializer, or
  an initializer holding only +-s) opens a dense layer: ``dense_int_binw`` after an integer
  tensor, ``dense_binary`` (xnor-popcount) after a bipolar one.
* The float ops after it (``BatchNormalization``, ``Mul``, ``Div``, ``Add``, ``Sub`` by
  constants, a Gemm bias) are tracked exactly as a per-channel affine map ``a*acc + b`` of the
  layer's integer accumulator, in float64.
* ``BipolarQuant`` closes the layer: ``a*acc + b >= 0`` (sign(0) = +1) becomes the integer
  threshold ``acc >= ceil(-b/a)`` for a > 0, ``acc <= floor(-b/a)`` (flip) for a < 0, and a
  constant output for a = 0. For xnor-popcount layers the accumulator is the popcount P and
  the bipolar dot product is 2P - N, so the map is rewritten to P first.
* At the graph output, an affine map that is the same positive scale and offset for every
  channel cannot change the argmax, so the layer emits its accumulator and an ``argmax`` layer
  is appended; any other map is refused, since no integer layer could represent it exactly.

Every refusal is a :class:`CompileError` whose message names the offending node.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from . import ir

__all__ = ["CompileError", "compile_onnx", "load_onnx"]

_PASSTHROUGH = {"Identity", "Flatten"}
_AFFINE = {"BatchNormalization", "Mul", "Div", "Add", "Sub"}


class CompileError(ValueError):
    """A model the compiler cannot lower; the message names the node or file."""


def load_onnx(path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise CompileError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises several unrelated types for a corrupt file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CompileError(f"{path}: not a valid ONNX model ({first})") from None
    return model


class _Graph:
    def __init__(self, model: onnx.ModelProto):
        g = model.graph
        self.inits = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
        for node in g.node:
            if node.op_type == "Constant":
                self.inits[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.nodes = [n for n in g.node if n.op_type != "Constant"]
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.inputs = [i.name for i in g.input if i.name not in self.inits]
        self.outputs = [o.name for o in g.output]

    def const(self, node, index: int) -> np.ndarray:
        name = node.input[index] if index < len(node.input) else ""
        if name not in self.inits:
            raise CompileError(f"node {node.name or node.op_type}: input {index} ({name or 'absent'}) "
                               "must be a constant initializer")
        return self.inits[name]

    def next_node(self, tensor: str):
        users = self.consumers.get(tensor, [])
        if len(users) > 1:
            names = ", ".join(n.name or n.op_type for n in users)
            raise CompileError(f"tensor {tensor} feeds several nodes ({names}); "
                               "only chains are supported")
        return users[0] if users else None


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _node_name(node) -> str:
    return node.name or f"{node.op_type}({node.output[0]})"


class _OpenDense:
    """A dense layer whose accumulator has been computed and whose float tail is being tracked."""

    def __init__(self, name: str, in_type: ir.TensorType, weights: np.ndarray, scale: np.ndarray):
        kind = ir.DenseBinary if in_type.kind == "bipolar" else ir.DenseIntBinW
        self.name, self.in_type, self.kind, self.weights = name, in_type, kind, weights
        self.a = np.broadcast_to(np.asarray(scale, np.float64), (weights.shape[0],)).copy()
        self.b = np.zeros(weights.shape[0])

    def affine(self, node, g: _Graph) -> None:
        op = node.op_type
        if op == "BatchNormalization":
            gamma, beta, mean, var = (g.const(node, i) for i in range(1, 5))
            k = gamma / np.sqrt(var + float(_attr(node, "epsilon", 1e-5)))
            self.a, self.b = self.a * k, (self.b - mean) * k + beta
            return
        c = g.const(node, 1)
        if c.size not in (1, self.a.size):
            raise CompileError(f"node {_node_name(node)}: constant of shape {c.shape} does not "
                               f"broadcast over {self.a.size} channels")
        c = np.broadcast_to(c.reshape(-1), self.a.shape)
        if op == "Mul":
            self.a, self.b = self.a * c, self.b * c
        elif op == "Div":
            self.a, self.b = self.a / c, self.b / c
        elif op == "Add":
            self.b = self.b + c
        else:
            self.b = self.b - c

    def _acc_affine(self) -> tuple[np.ndarray, np.ndarray]:
        if self.kind is ir.DenseBinary:
            # torch sees the bipolar dot 2P - N; rewrite a*(2P - N) + b as a map of P
            n = self.weights.shape[1]
            return 2 * self.a, self.b - self.a * n
        return self.a, self.b

    def close_with_sign(self) -> ir.Layer:
        a, b = self._acc_affine()
        layer = self.kind(name=self.name, weights=self.weights)
        lo, hi = layer.acc_range(self.in_type)
        with np.errstate(divide="ignore", invalid="ignore"):
            tau = -b / a
        t = np.where(a > 0, np.ceil(tau), np.floor(tau))
        t = np.where(a == 0, np.where(b >= 0, lo, hi + 1), t)
        flip = a < 0
        layer.threshold = ir.Threshold(np.clip(t, lo - 1, hi + 1).astype(np.int64), flip)
        return layer

    def close_at_output(self) -> ir.Layer:
        a, b = self._acc_affine()
        if not (np.all(a == a[0]) and a[0] > 0 and np.all(b == b[0])):
            raise CompileError(f"layer {self.name}: the output's per-class scale or offset is "
                               "not one positive constant, so its argmax has no exact integer form")
        return self.kind(name=self.name, weights=self.weights)


def _binary_weights(node, g: _Graph) -> tuple[np.ndarray, np.ndarray]:
    """(0/1 weights of shape (out, in), positive scale per output) of a MatMul/Gemm node."""
    name = node.input[1]
    src = g.producer.get(name)
    if src is not None and src.op_type == "BipolarQuant":
        w = g.const(src, 0)
        scale = g.const(src, 1)
        values = np.where(w >= 0, 1.0, -1.0)  # sign(0) = +1
    elif name in g.inits:
        w = g.inits[name]
        mags = np.unique(np.abs(w))
        if mags.size != 1 or mags[0] == 0:
            shown = ", ".join(f"{v:g}" for v in np.unique(w)[:4])
            raise CompileError(f"node {_node_name(node)}: weight {name} is not binary "
                               f"(values {shown}, ...); quantize it with BipolarQuant")
        scale, values = mags[0], np.sign(w)
    else:
        raise CompileError(f"node {_node_name(node)}: weight {name} must be a constant or "
                           "BipolarQuant of a constant")
    scale = np.asarray(scale, np.float64).reshape(-1)
    if np.any(scale <= 0):
        raise CompileError(f"node {_node_name(node)}: weight scale must be positive")
    if node.op_type == "MatMul":
        values = values.T
    elif node.op_type == "Gemm":
        if _attr(node, "transA", 0):
            raise CompileError(f"node {_node_name(node)}: Gemm with transA is not supported")
        if not _attr(node, "transB", 0):
            values = values.T
        scale = scale * float(_attr(node, "alpha", 1.0))
    if values.ndim != 2:
        raise CompileError(f"node {_node_name(node)}: weight {name} must be a matrix")
    if scale.size not in (1, values.shape[0]):
        raise CompileError(f"node {_node_name(node)}: weight scale has {scale.size} entries "
                           f"for {values.shape[0]} outputs")
    return (values > 0).astype(np.uint8), scale


def _input_type(node, g: _Graph) -> ir.TensorType:
    scale, zero, bits = (g.const(node, i) for i in range(1, 4))
    if scale.size != 1 or scale.item() != 1 or zero.size != 1 or zero.item() != 0:
        raise CompileError(f"node {_node_name(node)}: the input Quant must have scale 1 and "
                           "zero point 0 (integer inputs)")
    nbits = bits.item()
    if nbits != int(nbits) or not 1 <= nbits <= 8:
        raise CompileError(f"node {_node_name(node)}: input bit width {nbits:g} is not an "
                           "integer from 1 to 8 (one UART byte per element)")
    return ir.TensorType("signed" if _attr(node, "signed", 1) else "unsigned", int(nbits))


def compile_onnx(source) -> ir.Model:
    """Lower an ONNX model (a path or a ModelProto) to a checked :class:`hwgen.sw.ir.Model`."""
    model = source if isinstance(source, onnx.ModelProto) else load_onnx(source)
    g = _Graph(model)
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise CompileError(f"the graph must have one input and one output, not "
                           f"{len(g.inputs)} and {len(g.outputs)}")
    tensor = g.inputs[0]
    first = g.next_node(tensor)
    if first is None or first.op_type != "Quant":
        raise CompileError(f"graph input {tensor} must feed a Quant node that makes it integer")
    in_type = _input_type(first, g)
    n_in = _input_width(model, tensor)
    tensor = first.output[0]

    layers: list[ir.Layer] = []
    cur_type: ir.TensorType | None = in_type      # None: a float tensor (inside an open layer)
    open_dense: _OpenDense | None = None
    while (node := g.next_node(tensor)) is not None:
        op, name = node.op_type, _node_name(node)
        if op in _PASSTHROUGH:
            pass
        elif op in ("MatMul", "Gemm"):
            if cur_type is None:
                raise CompileError(f"node {name}: its input is not quantized; put a "
                                   "BipolarQuant (sign) before it")
            weights, scale = _binary_weights(node, g)
            open_dense = _OpenDense(name, cur_type, weights, scale)
            if op == "Gemm" and len(node.input) > 2 and node.input[2]:
                open_dense.b = open_dense.b + float(_attr(node, "beta", 1.0)) * \
                    np.broadcast_to(g.const(node, 2).reshape(-1), open_dense.b.shape)
            cur_type = None
        elif op in _AFFINE:
            if open_dense is None:
                raise CompileError(f"node {name}: {op} must follow a binary MatMul/Gemm")
            open_dense.affine(node, g)
        elif op == "BipolarQuant":
            if open_dense is None:
                raise CompileError(f"node {name}: BipolarQuant must follow a binary MatMul/Gemm")
            if g.const(node, 1).size != 1 or g.const(node, 1).item() <= 0:
                raise CompileError(f"node {name}: activation BipolarQuant needs one positive scale")
            layers.append(open_dense.close_with_sign())
            open_dense, cur_type = None, ir.TensorType("bipolar", 1)
        else:
            raise CompileError(f"node {name}: unsupported op {op}"
                               + (f" (domain {node.domain})" if node.domain else ""))
        tensor = node.output[0]

    if tensor != g.outputs[0]:
        raise CompileError(f"tensor {tensor} ends the chain but is not the graph output")
    if open_dense is not None:
        # a classifier's logits: the hardware emits the class, the argmax of the accumulators
        layers.append(open_dense.close_at_output())
        if layers[-1].n_out > 1:
            layers.append(ir.ArgMax(name="argmax", n=layers[-1].n_out))
    elif not layers:
        raise CompileError("the graph holds no layer")
    try:
        return ir.Model(in_type, n_in, layers, meta={"source": model.graph.name}).check()
    except ValueError as e:
        raise CompileError(str(e)) from None


def _input_width(model: onnx.ModelProto, name: str) -> int:
    for vi in model.graph.input:
        if vi.name == name:
            dims = vi.type.tensor_type.shape.dim
            if dims and dims[-1].HasField("dim_value") and dims[-1].dim_value > 0:
                return int(dims[-1].dim_value)
    raise CompileError(f"graph input {name} must have a fixed last dimension (its width)")
