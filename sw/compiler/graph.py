"""Reading an ONNX graph: the file check, initializers and constants, producers and consumers,
attributes, node names, and :class:`CompileError`, the compiler's one error type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

__all__ = ["CompileError", "load_onnx", "Graph", "attr", "bit_width", "node_name", "SNAP"]


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


class Graph:
    """The nodes of a model with its constants (initializers and ``Constant`` nodes) as float64
    arrays, each tensor's producer and consumers, and the graph's inputs and outputs."""

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


# relative distance under which a float level counts as landing on an integer accumulator
SNAP = 1e-9
