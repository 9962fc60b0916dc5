"""The pipeline top: one engine per IR layer, chained stream to stream, and its Verilog."""

from __future__ import annotations

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.hw import registry
from hwgen.hw.kit import element_shape, vector_layout
from hwgen.hw.resources import Folding
from hwgen.hw.serial import Deserializer, Serializer, is_serial
from hwgen.sw.core import ir

__all__ = ["Pipeline", "to_verilog"]


class Pipeline(wiring.Component):
    """A model's layers as a chain of folded engines (:func:`hwgen.hw.registry.engine`).

    Parameters
    ----------
    model : Model
        The layer IR; checked first.
    folding : dict[str, Folding]
        Folding per layer name.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(in_shape, model.n_in)))``
        One input vector of the model's ``in_type`` per transfer; one element per transfer
        (``ArrayLayout(in_shape, 1)``) when :attr:`serial_in`.
    o_stream : ``Out(stream.Signature(ArrayLayout(out_shape, model.n_out)))``
        The final layer's output vector (one element per transfer when :attr:`serial_out`).
    serial_in, serial_out : bool
        The first engine takes its vector serially, the last one gives it serially. Between
        engines, a :class:`~hwgen.hw.serial.Serializer` or :class:`~hwgen.hw.serial.Deserializer`
        joins a vector side to a serial one.

    Latency and throughput in cycles are :attr:`latency` and :attr:`interval`.
    """

    def __init__(self, model: ir.Model, folding: dict[str, Folding]):
        model.check()
        if not model.layers:
            raise ValueError("a pipeline needs at least one layer")
        types = model.types()
        missing = [layer.name for layer in model.layers if layer.name not in folding]
        if missing:
            raise ValueError(f"no folding given for layers {missing!r}")
        self.model = model
        self.engines = [registry.engine(layer, t, folding[layer.name])
                        for layer, t in zip(model.layers, types)]
        self.serial_in = is_serial(self.engines[0], "in")
        self.serial_out = is_serial(self.engines[-1], "out")
        later = [layer.name for layer, e in zip(model.layers[1:], self.engines[1:])
                 if len(getattr(e, "preamble", ()))]
        if later:
            raise ValueError(f"layer {later[0]}: only the first layer may load its weights from "
                             "the input stream (a preamble)")
        # an adapter where a serial side meets a vector side: (index of the downstream engine,
        # adapter), for the input of engine k from engine k - 1
        self.adapters = []
        for k, (up, down) in enumerate(zip(self.engines, self.engines[1:]), start=1):
            shape, n = element_shape(types[k]), model.layers[k].n_in
            if is_serial(up, "out") and not is_serial(down, "in"):
                self.adapters.append((k, Deserializer(shape, n)))
            elif not is_serial(up, "out") and is_serial(down, "in"):
                self.adapters.append((k, Serializer(shape, n)))
        super().__init__({
            "i_stream": In(stream.Signature(
                vector_layout(model.in_type, 1 if self.serial_in else model.n_in))),
            "o_stream": Out(stream.Signature(
                vector_layout(types[-1], 1 if self.serial_out else model.n_out))),
        })

    @property
    def preamble(self) -> np.ndarray:
        """Input elements to send once after reset, before the first vector: the weights the
        first engine loads from its input stream (loaded SAM entries), or none."""
        return np.asarray(getattr(self.engines[0], "preamble", np.zeros(0, np.int64)),
                          dtype=np.int64)

    @property
    def interval(self) -> int:
        """Cycles per inference in steady state (inputs waiting, output always taken).

        Each engine takes its next vector while its output waits, so the slowest engine
        sets the pace.
        """
        return max([e.interval for e in self.engines] + [a.n for _, a in self.adapters])

    @property
    def latency(self) -> int:
        """Cycles from an input transfer to ``o_stream.valid`` on an idle pipeline.

        An engine hands its output on in the cycle it becomes valid, so latencies add.
        """
        return sum(e.latency for e in self.engines) + sum(a.n + 1 for _, a in self.adapters)

    def elaborate(self, platform) -> Module:
        m = Module()
        for i, (layer, engine) in enumerate(zip(self.model.layers, self.engines)):
            m.submodules[f"l{i}_{layer.kind}"] = engine
        wiring.connect(m, wiring.flipped(self.i_stream), self.engines[0].i_stream)
        adapters = dict(self.adapters)
        for k, (upstream, downstream) in enumerate(zip(self.engines, self.engines[1:]), start=1):
            if k in adapters:
                adapter = adapters[k]
                m.submodules[f"l{k}_{type(adapter).__name__.lower()}"] = adapter
                wiring.connect(m, upstream.o_stream, adapter.i_stream)
                wiring.connect(m, adapter.o_stream, downstream.i_stream)
            else:
                wiring.connect(m, upstream.o_stream, downstream.i_stream)
        wiring.connect(m, self.engines[-1].o_stream, wiring.flipped(self.o_stream))
        return m


def to_verilog(pipeline: Pipeline, name: str = "top") -> str:
    """Verilog of ``pipeline`` as module ``name`` with ports ``clk``, ``rst``,
    ``i_stream__{payload,valid,ready}`` and ``o_stream__{payload,valid,ready}``.

    Source locations are left out so the text does not depend on where hwgen is installed.
    """
    return verilog.convert(pipeline, name=name, emit_src=False)
