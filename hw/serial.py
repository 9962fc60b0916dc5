"""Adapters between vector streams (one whole vector per transfer) and serial streams (one
element per transfer, element 0 first), for engines that take or give their vectors serially
(:class:`hwgen.hw.sparse.SparseEngine`). A serial stream's payload is an
``ArrayLayout(shape, 1)``: the layout of a vector of one element.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Serializer", "Deserializer", "SerialOut", "is_serial"]


def is_serial(engine, side: str) -> bool:
    """Whether ``engine``'s ``side`` (``"in"`` or ``"out"``) stream carries one element at a time."""
    return bool(getattr(engine, f"serial_{side}", False))


class Serializer(wiring.Component):
    """Vector in, its ``n`` elements out one per transfer; the next vector is taken after the
    last element has gone. Holds the vector in a register and selects an element by a counter.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(shape, n)))``
    o_stream : ``Out(stream.Signature(ArrayLayout(shape, 1)))``
    """

    def __init__(self, shape, n: int):
        self.shape, self.n = shape, n
        super().__init__({"i_stream": In(stream.Signature(data.ArrayLayout(shape, n))),
                          "o_stream": Out(stream.Signature(data.ArrayLayout(shape, 1)))})

    def elaborate(self, platform) -> Module:
        m = Module()
        held = Signal.like(self.i_stream.payload)
        full = Signal()
        index = Signal(range(self.n))
        m.d.comb += [self.i_stream.ready.eq(~full), self.o_stream.valid.eq(full),
                     self.o_stream.payload[0].eq(held[index])]
        with m.If(self.i_stream.valid & ~full):
            m.d.sync += [held.eq(self.i_stream.payload), full.eq(1), index.eq(0)]
        with m.If(self.o_stream.valid & self.o_stream.ready):
            with m.If(index == self.n - 1):
                m.d.sync += full.eq(0)
            with m.Else():
                m.d.sync += index.eq(index + 1)
        return m


class Deserializer(wiring.Component):
    """``n`` elements in one per transfer, then the vector out; elements shift in at the top,
    so element 0 ends at the bottom. The next element is taken once the vector is handed on.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(shape, 1)))``
    o_stream : ``Out(stream.Signature(ArrayLayout(shape, n)))``
    """

    def __init__(self, shape, n: int):
        self.shape, self.n = shape, n
        super().__init__({"i_stream": In(stream.Signature(data.ArrayLayout(shape, 1))),
                          "o_stream": Out(stream.Signature(data.ArrayLayout(shape, n)))})

    def elaborate(self, platform) -> Module:
        m = Module()
        vector = Signal.like(self.o_stream.payload)
        full = Signal()
        count = Signal(range(self.n))
        element = self.i_stream.payload.as_value()
        m.d.comb += [self.i_stream.ready.eq(~full), self.o_stream.valid.eq(full),
                     self.o_stream.payload.eq(vector)]
        with m.If(self.i_stream.valid & ~full):
            bits = vector.as_value()
            m.d.sync += vector.eq(Cat(bits[len(element):], element))
            with m.If(count == self.n - 1):
                m.d.sync += [count.eq(0), full.eq(1)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        with m.If(self.o_stream.valid & self.o_stream.ready):
            m.d.sync += full.eq(0)
        return m


class SerialOut(wiring.Component):
    """``core`` with a :class:`Serializer` after it: the same input stream, and the output
    vector's ``n`` elements one per transfer (a board sends each as a byte).

    Members
    -------
    i_stream : ``core.i_stream``'s signature
    o_stream : ``Out(stream.Signature(ArrayLayout(shape, 1)))``
    """

    def __init__(self, core, shape, n: int):
        self.core, self.serializer = core, Serializer(shape, n)
        super().__init__({"i_stream": In(core.i_stream.signature.flip()),
                          "o_stream": Out(self.serializer.o_stream.signature)})

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.core, m.submodules.serializer = self.core, self.serializer
        wiring.connect(m, wiring.flipped(self.i_stream), self.core.i_stream)
        wiring.connect(m, self.core.o_stream, self.serializer.i_stream)
        wiring.connect(m, self.serializer.o_stream, wiring.flipped(self.o_stream))
        return m
