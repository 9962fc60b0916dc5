"""Export hwgen PyTorch models to ONNX in QONNX's op vocabulary, by an exporter per model class.

The graph is written node by node from the trained parameters, so that it holds exactly what
the compiler needs and nothing a tracer might add. Each family writes its own graph in its
``export`` module and registers it here for its model classes with :func:`exporter`;
:func:`export_onnx` finds the exporter of a model by walking its class's MRO, so a subclass
exports as its nearest registered base. Importing any module of a family imports its
``export`` module (the family's ``__init__`` does), so every model class that exists has its
exporter registered.

* Binary MLPs (seed 004): :mod:`hwgen.sw.families.binary.export`.
* Multi-branch MLPs (seed 003): :mod:`hwgen.sw.families.mbbn.export`.
* MINW-Net MLPs (seed 004): :mod:`hwgen.sw.families.shift.export`.
* Sum-and-Max networks (seed 002): :mod:`hwgen.sw.families.sam.export`.
* Constellation networks and QAM slicers (seed 000):
  :mod:`hwgen.sw.families.constellation.export`.
* Min/max-quantized MLPs (seed 001): :mod:`hwgen.sw.families.compression.export`.

Ops come from three domains: standard ONNX (opset 17); QONNX's ``Quant`` and ``BipolarQuant``
(:data:`QONNX_DOMAIN`); and this project's own ops, where QONNX has none
(:data:`HWGEN_DOMAIN`): ``PowerOfTwoQuant`` (defined in :mod:`hwgen.sw.families.shift.export`),
``SumAndMax`` (:mod:`hwgen.sw.families.sam.export`) and ``QAMSlicer``
(:mod:`hwgen.sw.families.constellation.export`). Every model is written with ir_version 10.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hwgen.sw.core.onnx_ops import HWGEN_DOMAIN, QONNX_DOMAIN

__all__ = ["OnnxGraph", "exporter", "exporter_for", "export_onnx", "exact_f32", "QONNX_DOMAIN",
           "HWGEN_DOMAIN", "BN_EPS"]

#: The epsilon of every exported batch norm: PyTorch's default 1e-5 rounded to float32, since an
#: ONNX float attribute holds a float32 and the graph must hold the model's own value (a float64
#: 1e-5 would be written as 9.99999974737875e-06, and PyTorch, the compiler and the golden model
#: would then evaluate two different networks, apart where an output lies within about 1e-8 of
#: a quantizer's boundary).
BN_EPS = float(np.float32(1e-5))


class OnnxGraph:
    """An ONNX graph under construction: nodes and float32 initializers, in order.

    Parameters
    ----------
    name : str
        The graph's name (e.g. ``"hwgen_binary_mlp"``); the compiler records it as the IR's
        source.
    n_in : int
        Width of the graph input ``x`` (batch, n_in).
    n_out : int or None
        Width of the graph output (batch, n_out).
    output : str
        Name of the graph output, the last node's output (``"logits"`` or ``"symbols"``).
    """

    def __init__(self, name: str, n_in: int, n_out: int | None, *, output: str = "logits"):
        self.name, self.n_in, self.n_out, self.output = name, n_in, n_out, output
        self.nodes, self.inits = [], []

    def const(self, name: str, value) -> str:
        """A float32 initializer ``name`` of ``value``; a name already present is reused."""
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
        """A ``BatchNormalization`` node of ``bn``'s inference-mode statistics; ValueError when
        ``bn.eps`` is not exact in float32 (an ONNX attribute could not hold it, see
        :data:`BN_EPS`)."""
        if float(np.float32(bn.eps)) != bn.eps:
            raise ValueError(f"{name}: batch-norm eps {bn.eps!r} is not exact in float32, all "
                             "an ONNX attribute holds; build the layer with eps=BN_EPS")
        return self.node("BatchNormalization",
                         [x, self.const(f"{name}_gamma", bn.weight.detach().numpy()),
                          self.const(f"{name}_beta", bn.bias.detach().numpy()),
                          self.const(f"{name}_mean", bn.running_mean.numpy()),
                          self.const(f"{name}_var", bn.running_var.numpy())],
                         name, epsilon=float(bn.eps))

    def node(self, op: str, inputs: list[str], output: str, *, domain: str = "", **attrs) -> str:
        """Append an ``op`` node named after its one ``output``; returns ``output``."""
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain,
                                           **attrs))
        return output

    def model(self) -> onnx.ModelProto:
        """The ONNX model of this graph: float input ``x``, float output, opsets ONNX 17,
        QONNX 1 and hwgen 1, ir_version 10."""
        graph = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", self.n_in])],
            [helper.make_tensor_value_info(self.output, TensorProto.FLOAT, ["batch", self.n_out])],
            self.inits)
        onnx_model = helper.make_model(
            graph, producer_name="hwgen",
            opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(QONNX_DOMAIN, 1),
                           helper.make_opsetid(HWGEN_DOMAIN, 1)])
        onnx_model.ir_version = 10
        return onnx_model


Exporter = Callable[[object], OnnxGraph]

_EXPORTERS: dict[type, Exporter] = {}


def exporter(*classes: type) -> Callable[[Exporter], Exporter]:
    """Decorator: register ``fn(model) -> OnnxGraph`` as the exporter of ``classes``.

    A class registered to another function already is refused with ValueError.
    """
    if not classes or not all(isinstance(c, type) for c in classes):
        raise TypeError(f"exporter() takes one or more classes, not {classes!r}")

    def register(fn: Exporter) -> Exporter:
        for cls in classes:
            known = _EXPORTERS.get(cls)
            # the same function again (a module reloaded) replaces itself
            if known is not None and (known.__module__, known.__qualname__) != \
                    (fn.__module__, fn.__qualname__):
                raise ValueError(f"{cls.__qualname__} already exports by {known.__qualname__}")
            _EXPORTERS[cls] = fn
        return fn

    return register


def exporter_for(cls: type) -> Exporter:
    """The exporter of ``cls``: that of the first class of its MRO that has one.

    Raises
    ------
    TypeError
        When no class of the MRO is registered, naming the registered classes.
    """
    for base in cls.__mro__:
        if base in _EXPORTERS:
            return _EXPORTERS[base]
    names = ", ".join(sorted(c.__name__ for c in _EXPORTERS)) or "none"
    raise TypeError(f"cannot export a {cls.__name__}; exporters are registered for: {names}")


def export_onnx(model, path) -> onnx.ModelProto:
    """Write ``model`` (a trained model of a registered class, see the module docs) to ``path``
    and return the ONNX model."""
    onnx_model = exporter_for(type(model))(model).model()
    onnx.save(onnx_model, str(Path(path)))
    return onnx_model


def exact_f32(codes: np.ndarray, step: float, what: str) -> np.ndarray:
    """``codes * step`` as float32, refused unless it reads back as exactly ``codes``."""
    value = (np.asarray(codes, np.float64) * step).astype(np.float32)
    if not np.array_equal(value.astype(np.float64) / step, codes):
        big = np.abs(np.asarray(codes, np.float64)).max(initial=0)
        why = f"a code of {big:.0f} is past float32's 2^24 exact integers" if big > 1 << 24 \
            else "use a power-of-two step"
        raise ValueError(f"{what} times its step {step:g} is not exact in float32; {why}")
    return value
