"""Reading an ONNX graph: the file check, initializers and constants, producers and consumers,
attributes, node names, and :class:`CompileError`, the compiler's one error type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

__all__ = ["CompileError", "load_onnx", "Graph", "attr", "bit_width", "node_name",
           "MAX_INPUT_ELEMENTS", "check_graph", "check_finite", "numbers"]

#: The most input elements a model may declare: 65,536 bytes take 5.7 s to send over the
#: board's 115200-baud UART, and the UP5K's memories hold 1.2 Mbit, under 19 bits of weights
#: per element. Checked on the declared shape, before anything is allocated.
MAX_INPUT_ELEMENTS = 1 << 16


class CompileError(ValueError):
    """A model the compiler cannot lower; the message names the node or file."""


def load_onnx(path) -> onnx.ModelProto:
    path = Path(path)
    if path.is_dir():
        raise CompileError(f"{path}: is a folder, not an ONNX file")
    if not path.is_file():
        raise CompileError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises several unrelated types for a corrupt file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CompileError(f"{path}: not a valid ONNX model ({first})") from None
    return model


class Graph:
    """The nodes of a model with its constants (initializers and ``Constant`` nodes) as float64
    arrays, each tensor's producer and consumers, and the graph's inputs and outputs."""

    def __init__(self, model: onnx.ModelProto):
        g = model.graph
        check_graph(g)
        self.inits = {t.name: numbers(t, f"initializer {t.name}").astype(np.float64)
                      for t in g.initializer}
        for node in g.node:
            if node.op_type == "Constant":
                self.inits[node.output[0]] = numbers(
                    node.attribute[0].t, f"constant {node.output[0]} (node {node_name(node)})")
        check_finite(self.inits, g)
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


def check_graph(g: onnx.GraphProto) -> None:
    """Refuse, before any tensor is read, a graph whose node names repeat (a layer's name keys
    its folding) or whose declared input is larger than :data:`MAX_INPUT_ELEMENTS` or wider
    than the first weight matrix takes."""
    seen: dict[str, int] = {}
    for node in g.node:
        if node.name:
            seen[node.name] = seen.get(node.name, 0) + 1
    for name, count in seen.items():
        if count > 1:
            raise CompileError(f"node name {name} is used by {count} nodes; node names must be "
                               "unique")
    constants = {t.name: t for t in g.initializer}
    for vi in g.input:
        if vi.name not in constants:
            _check_input_size(vi, g, constants)


def _check_input_size(vi, g: onnx.GraphProto, constants: dict) -> None:
    dims = [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
    per_vector = [d for d in dims[1:] if d is not None] if len(dims) > 1 else \
        [d for d in dims if d is not None]
    n = int(np.prod(per_vector, dtype=object)) if per_vector else 0
    if n > MAX_INPUT_ELEMENTS:
        raise CompileError(f"graph input {vi.name} declares {n:,} elements per vector, more than "
                           f"the {MAX_INPUT_ELEMENTS:,} (MAX_INPUT_ELEMENTS) the compiler takes")
    width = dims[-1] if dims else None
    weight = _first_weight(vi.name, g, constants)
    if width and weight is not None and weight[2] != width:
        node, name, k = weight
        raise CompileError(f"node {node_name(node)}: weight {name} has {k} inputs, graph input "
                           f"{vi.name} declares {width}")


def _first_weight(tensor: str, g: onnx.GraphProto, constants: dict):
    """(node, weight name, input count) of the first MatMul / Gemm / SumAndMax on the chain
    from ``tensor``, read from the initializers' declared dims; None where there is none or
    the chain branches first (the walk reports that)."""
    producer = {o: n for n in g.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in g.node:
        for i in set(n.input):
            consumers.setdefault(i, []).append(n)
    for _ in range(len(g.node)):
        users = consumers.get(tensor, [])
        if len(users) != 1:
            return None
        node = users[0]
        if node.op_type in ("MatMul", "Gemm", "SumAndMax") and len(node.input) > 1:
            name = node.input[1]
            src = producer.get(name)
            if src is not None and src.op_type in ("Quant", "BipolarQuant") and src.input:
                name = src.input[0]
            if name not in constants:
                return None
            dims = list(constants[name].dims)
            if node.op_type == "SumAndMax":
                return (node, name, dims[2]) if len(dims) == 3 else None
            if len(dims) != 2:
                return None
            transposed = node.op_type == "Gemm" and attr(node, "transB", 0)
            return node, name, dims[1] if transposed else dims[0]
        if not node.output:
            return None
        tensor = node.output[0]
    return None


def numbers(t: onnx.TensorProto, what: str) -> np.ndarray:
    """A constant tensor as an array, or a CompileError naming it when it holds no numbers."""
    try:
        v = numpy_helper.to_array(t)
    except Exception as e:  # onnx raises several types for a malformed tensor
        raise CompileError(f"{what}: unreadable tensor ({type(e).__name__})") from None
    if v.dtype.kind not in "biuf":
        raise CompileError(f"{what}: holds {v.dtype} values, not numbers")
    return v


def check_finite(constants: dict[str, np.ndarray], g: onnx.GraphProto) -> None:
    """Refuse NaN in any constant, and an infinity anywhere but in a SumAndMax weight (where it
    marks a pruned entry, and the layer's own check takes over)."""
    sam_weights = {n.input[1] for n in g.node if n.op_type == "SumAndMax" and len(n.input) > 1}
    initializers = {t.name for t in g.initializer}
    for name, v in constants.items():
        if v.dtype.kind != "f":
            continue
        nan = np.isnan(v)
        bad = nan if name in sam_weights else ~np.isfinite(v)
        if bad.any():
            what = "initializer" if name in initializers else "constant"
            kind = "NaN" if nan.any() else "infinite"
            raise CompileError(f"{what} {name}: {int(bad.sum())} of {v.size} values are {kind}; "
                               "every constant must be a finite number")


def attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def bit_width(node, bits: np.ndarray, what: str, why: str) -> int:
    """A Quant node's bit width, an integer from 1 to 8, or a CompileError naming the node."""
    n = bits.item()
    if n != int(n) or not 1 <= n <= 8:
        raise CompileError(f"node {node_name(node)}: {what} {n:g} is not an integer from 1 to 8"
                           + why)
    return int(n)


def node_name(node) -> str:
    return node.name or f"{node.op_type}({node.output[0]})"

