"""UART receiver, transmitter and the board wrapper, in the Amaranth simulator."""

import numpy as np
import pytest
from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hwgen.boards.uart import UartRx, UartTx, bit_cycles
from hwgen.boards.wrapper import UartWrapper
from hwgen.hw.serial import Deserializer, SerialOut

# 16 cycles per bit keeps the simulations short; the board runs 12 MHz / 115200 = 104.
CLK_FREQ = 1_600_000
BAUD = 100_000
EDGE_BYTES = [0x00, 0xFF, 0x55, 0xAA, 0x01, 0x80]


class ArgMaxCore(wiring.Component):
    """Test core: index of the largest of ``n`` elements, ties to the lowest index.

    Balanced tree of compare-and-select, output registered: accepts a vector per cycle,
    latency 1 cycle.
    """

    def __init__(self, *, n: int, shape):
        self.n = n
        self.shape = shape
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(shape, n))),
            "o_stream": Out(stream.Signature(range(n))),
        })

    def elaborate(self, platform):
        m = Module()
        candidates = [(self.i_stream.payload[i], i) for i in range(self.n)]
        level = 0
        while len(candidates) > 1:
            merged = []
            for j, ((left, left_index), (right, right_index)) in enumerate(
                    zip(candidates[0::2], candidates[1::2])):
                # Named signals keep the simulator's expressions a DAG, not a tree of copies.
                value = Signal(self.shape, name=f"value_{level}_{j}")
                index = Signal(range(self.n), name=f"index_{level}_{j}")
                take_right = right > left
                m.d.comb += [
                    value.eq(Mux(take_right, right, left)),
                    index.eq(Mux(take_right, right_index, left_index)),
                ]
                merged.append((value, index))
            candidates = merged + candidates[len(merged) * 2:]
            level += 1
        best_index = candidates[0][1]

        m.d.comb += self.i_stream.ready.eq(~self.o_stream.valid | self.o_stream.ready)
        with m.If(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += [self.o_stream.payload.eq(best_index), self.o_stream.valid.eq(1)]
        return m


async def send_bytes(ctx, line, values, *, baud):
    """Drive 8N1 frames onto ``line`` at ``baud``, timed in seconds, not in clock cycles."""
    for value in values:
        for bit in [0, *((value >> i) & 1 for i in range(8)), 1]:
            ctx.set(line, bit)
            await ctx.delay(1 / baud)


async def receive_bytes(ctx, line, count, *, cycles):
    """Decode ``count`` 8N1 frames from ``line``, sampling mid-bit with ``cycles`` per bit."""
    values = []
    for _ in range(count):
        await ctx.tick().until(line == 0)
        await ctx.tick().repeat(cycles // 2)
        assert ctx.get(line) == 0, "start bit too short"
        value = 0
        for i in range(8):
            await ctx.tick().repeat(cycles)
            value |= ctx.get(line) << i
        await ctx.tick().repeat(cycles)
        assert ctx.get(line) == 1, "stop bit missing"
        values.append(value)
    return values


def run(dut, *testbenches, deadline):
    sim = Simulator(dut)
    sim.add_clock(1 / CLK_FREQ)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    sim.run_until(deadline)


def test_bit_cycles():
    assert bit_cycles(12e6, 115200) == 104
    with pytest.raises(ValueError, match="too fast"):
        bit_cycles(1e6, 500_000)
    with pytest.raises(ValueError, match="off"):
        bit_cycles(1e6, 220_000)


@pytest.mark.parametrize("baud_error", [-0.02, 0.0, 0.02])
def test_rx_random_bytes(baud_error):
    rng = np.random.default_rng(1)
    values = EDGE_BYTES + [int(v) for v in rng.integers(0, 256, 40)]
    dut = UartRx(clk_freq=CLK_FREQ, baud=BAUD)
    received = []

    async def sender(ctx):
        await send_bytes(ctx, dut.rx, values, baud=BAUD * (1 + baud_error))

    async def collector(ctx):
        ctx.set(dut.o_stream.ready, 1)
        for _ in values:
            payload, = await ctx.tick().sample(dut.o_stream.payload).until(dut.o_stream.valid)
            received.append(payload)

    run(dut, sender, collector, deadline=(len(values) + 2) * 10 / BAUD)
    assert received == values


def test_rx_glitch_and_framing_error():
    dut = UartRx(clk_freq=CLK_FREQ, baud=BAUD)
    errors = []

    async def sender(ctx):
        ctx.set(dut.rx, 0)                      # a low pulse of a quarter bit: not a start bit
        await ctx.delay(0.25 / BAUD)
        ctx.set(dut.rx, 1)
        await ctx.delay(2 / BAUD)
        for bit in [0, 1, 0, 1, 0, 1, 0, 1, 0, 0]:  # stop bit 0: framing error, byte dropped
            ctx.set(dut.rx, bit)
            await ctx.delay(1 / BAUD)
        ctx.set(dut.rx, 1)
        await ctx.delay(1 / BAUD)
        await send_bytes(ctx, dut.rx, [0x3C], baud=BAUD)

    async def collector(ctx):
        ctx.set(dut.o_stream.ready, 1)
        framing_error, = await ctx.tick().sample(dut.framing_error).until(
            dut.framing_error | dut.o_stream.valid)
        errors.append(framing_error)
        payload, = await ctx.tick().sample(dut.o_stream.payload).until(dut.o_stream.valid)
        errors.append(payload)

    run(dut, sender, collector, deadline=30 / BAUD)
    assert errors == [1, 0x3C]


def test_rx_overrun_keeps_first_byte():
    dut = UartRx(clk_freq=CLK_FREQ, baud=BAUD)
    seen = []

    async def sender(ctx):
        await send_bytes(ctx, dut.rx, [0x12, 0x34], baud=BAUD)

    async def collector(ctx):
        await ctx.tick().until(dut.overrun)
        assert ctx.get(dut.o_stream.valid)
        seen.append(ctx.get(dut.o_stream.payload))

    run(dut, sender, collector, deadline=25 / BAUD)
    assert seen == [0x12]


async def offer_bytes(ctx, i_stream, values):
    """Offer each byte of ``values`` on ``i_stream`` until it is taken."""
    for value in values:
        ctx.set(i_stream.payload, value)
        ctx.set(i_stream.valid, 1)
        await ctx.tick().until(i_stream.ready)
    ctx.set(i_stream.valid, 0)


def test_tx_random_bytes():
    rng = np.random.default_rng(2)
    values = EDGE_BYTES + [int(v) for v in rng.integers(0, 256, 40)]
    dut = UartTx(clk_freq=CLK_FREQ, baud=BAUD)
    decoded = []

    async def feeder(ctx):
        await offer_bytes(ctx, dut.i_stream, values)

    async def decoder(ctx):
        decoded.extend(await receive_bytes(ctx, dut.tx, len(values), cycles=dut.bit_cycles))

    run(dut, feeder, decoder, deadline=(len(values) + 2) * 10 / BAUD)
    assert decoded == values


def test_tx_to_rx_loopback():
    values = list(range(256))
    m = Module()
    m.submodules.tx = tx = UartTx(clk_freq=CLK_FREQ, baud=BAUD)
    m.submodules.rx = rx = UartRx(clk_freq=CLK_FREQ, baud=BAUD)
    m.d.comb += rx.rx.eq(tx.tx)
    received = []

    async def feeder(ctx):
        await offer_bytes(ctx, tx.i_stream, values)

    async def collector(ctx):
        ctx.set(rx.o_stream.ready, 1)
        for _ in values:
            payload, = await ctx.tick().sample(rx.o_stream.payload).until(rx.o_stream.valid)
            received.append(payload)

    run(m, feeder, collector, deadline=(len(values) + 2) * 10 / BAUD)
    assert received == values


def to_bytes(vector):
    """Host side of the wrapper protocol: one element per byte, two's complement."""
    return [int(v) & 0xFF for v in vector]


class SerialArgMaxCore(wiring.Component):
    """Test core taking one element per transfer: a Deserializer, then an ArgMaxCore."""

    def __init__(self, *, n: int, shape):
        self.n, self.shape = n, shape
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(shape, 1))),
            "o_stream": Out(stream.Signature(range(n))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.gather = gather = Deserializer(self.shape, self.n)
        m.submodules.argmax = argmax = ArgMaxCore(n=self.n, shape=self.shape)
        wiring.connect(m, wiring.flipped(self.i_stream), gather.i_stream)
        wiring.connect(m, gather.o_stream, argmax.i_stream)
        wiring.connect(m, argmax.o_stream, wiring.flipped(self.o_stream))
        return m


def rtl_wrapper(vectors, *, shape, idle_timeout=0.1, partial=(), serial=False):
    """Class bytes the wrapped ArgMaxCore (or, ``serial``, SerialArgMaxCore) sends back for
    ``vectors``, sent one after another.

    ``partial`` bytes are sent first, followed by a pause longer than ``idle_timeout``.
    """
    n = len(vectors[0])
    core = (SerialArgMaxCore if serial else ArgMaxCore)(n=n, shape=shape)
    dut = UartWrapper(core, n_in=n, in_bits=shape.width, out_bits=(n - 1).bit_length(),
                      clk_freq=CLK_FREQ, baud=BAUD, idle_timeout=idle_timeout)
    cycles = bit_cycles(CLK_FREQ, BAUD)
    results = []

    async def host(ctx):
        if partial:
            await send_bytes(ctx, dut.rx, partial, baud=BAUD)
            await ctx.delay(2 * idle_timeout)
        for vector in vectors:
            await send_bytes(ctx, dut.rx, to_bytes(vector), baud=BAUD)
            results.extend(await receive_bytes(ctx, dut.tx, 1, cycles=cycles))

    frames = len(vectors) * (n + 2) + len(partial) + 2
    run(dut, host, deadline=frames * 10 / BAUD + (2 * idle_timeout if partial else 0))
    return results


def ref_argmax(vectors):
    return [int(np.argmax(v)) for v in vectors]


def test_wrapper_signed_argmax():
    shape = signed(5)
    rng = np.random.default_rng(3)
    vectors = [
        np.full(16, -16), np.full(16, 15), np.arange(16) - 16, np.arange(16)[::-1] - 1,
        *rng.integers(-16, 16, (8, 16)),
    ]
    assert rtl_wrapper(vectors, shape=shape) == ref_argmax(vectors)


def test_wrapper_unsigned_argmax_resynchronizes():
    shape = unsigned(3)
    rng = np.random.default_rng(4)
    vectors = list(rng.integers(0, 8, (4, 8)))
    assert rtl_wrapper(vectors, shape=shape, idle_timeout=1e-4,
                       partial=[7, 7, 7]) == ref_argmax(vectors)


@pytest.mark.parametrize("partial", [(), (3, 1, 2)])
def test_wrapper_feeds_a_serial_core_and_drops_a_padded_vector(partial):
    shape = signed(4)
    rng = np.random.default_rng(6)
    vectors = [np.full(6, -8), *rng.integers(-8, 8, (4, 6))]
    # the partial vector is completed with zeros; its result byte must not reach the host
    got = rtl_wrapper(vectors, shape=shape, idle_timeout=1e-4, partial=partial, serial=True)
    assert got == ref_argmax(vectors)


class TopBitsCore(wiring.Component):
    """Test core giving a vector: the top two bits of every element (an offset-binary code),
    registered; with ``serial`` its input comes one element per transfer."""

    def __init__(self, *, n: int, shape, serial: bool = False):
        self.n, self.shape, self.serial = n, shape, serial
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(shape, 1 if serial else n))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(unsigned(2), n))),
        })

    def elaborate(self, platform):
        m = Module()
        i_stream = self.i_stream
        if self.serial:
            m.submodules.gather = gather = Deserializer(self.shape, self.n)
            wiring.connect(m, wiring.flipped(self.i_stream), gather.i_stream)
            i_stream = gather.o_stream
        held = Signal.like(self.o_stream.payload)
        full = Signal()
        top = self.shape.width - 2
        m.d.comb += [i_stream.ready.eq(~full | self.o_stream.ready),
                     self.o_stream.valid.eq(full), self.o_stream.payload.eq(held)]
        with m.If(i_stream.ready):
            m.d.sync += full.eq(i_stream.valid)
            m.d.sync += [held[i].eq(i_stream.payload[i][top:] ^ 2)
                         for i in range(self.n)]
        return m


def ref_top_bits(vectors, bits):
    return [((int(v) >> (bits - 2)) & 3) ^ 2 for vec in vectors for v in vec]


@pytest.mark.parametrize("serial,partial", [(False, ()), (False, (5, 5)), (True, (3, 1, 2))])
def test_wrapper_sends_every_element_of_a_vector_output(serial, partial):
    """A core giving n_out = 6 elements a vector, behind a SerialOut: six bytes per vector in
    element order; a serial core's padded vector drops all six."""
    shape, n = signed(5), 6
    rng = np.random.default_rng(7)
    vectors = [np.full(n, -16), np.arange(n) * 5 - 15, *rng.integers(-16, 16, (3, n))]
    core = SerialOut(TopBitsCore(n=n, shape=shape, serial=serial), unsigned(2), n)
    dut = UartWrapper(core, n_in=n, in_bits=5, out_bits=2, n_out=n, clk_freq=CLK_FREQ,
                      baud=BAUD, idle_timeout=1e-4)
    assert dut.serial == serial
    cycles = bit_cycles(CLK_FREQ, BAUD)
    results = []

    async def host(ctx):
        if partial:
            await send_bytes(ctx, dut.rx, list(partial), baud=BAUD)
            await ctx.delay(2e-4)
        for vector in vectors:
            await send_bytes(ctx, dut.rx, to_bytes(vector), baud=BAUD)
            results.extend(await receive_bytes(ctx, dut.tx, n, cycles=cycles))

    run(dut, host, deadline=len(vectors) * 2 * (n + 2) * 10 / BAUD + 1e-3)
    assert results == ref_top_bits(vectors, 5)


def test_wrapper_checks_core_widths():
    core = ArgMaxCore(n=16, shape=signed(5))
    with pytest.raises(ValueError, match="i_stream payload is 80 bits"):
        UartWrapper(core, n_in=16, in_bits=4, out_bits=4, clk_freq=CLK_FREQ)
    with pytest.raises(ValueError, match="o_stream payload is 4 bits"):
        UartWrapper(core, n_in=16, in_bits=5, out_bits=5, clk_freq=CLK_FREQ)
    with pytest.raises(ValueError, match="in_bits must be 1 to 8"):
        UartWrapper(core, n_in=8, in_bits=10, out_bits=4, clk_freq=CLK_FREQ)


class LoadedOffsetCore(wiring.Component):
    """Test core with a preamble: its first ``p`` transfers load an offset register (their
    sum); then every two elements x0, x1 give the result ``(x0 + x1 + offset) % 8``."""

    def __init__(self, *, p: int):
        self.p = p
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(unsigned(6), 1))),
            "o_stream": Out(stream.Signature(unsigned(3))),
        })

    def elaborate(self, platform):
        m = Module()
        left = Signal(range(self.p + 1), init=self.p)
        offset, first, held, full, second = Signal(3), Signal(3), Signal(3), Signal(), Signal()
        x = self.i_stream.payload[0]
        m.d.comb += [self.i_stream.ready.eq((left != 0) | ~full | self.o_stream.ready),
                     self.o_stream.valid.eq(full), self.o_stream.payload.eq(held)]
        with m.If(self.o_stream.ready):
            m.d.sync += full.eq(0)
        with m.If(self.i_stream.valid & self.i_stream.ready):
            with m.If(left != 0):
                m.d.sync += [left.eq(left - 1), offset.eq(offset + x)]
            with m.Elif(~second):
                m.d.sync += [first.eq(x), second.eq(1)]
            with m.Else():
                m.d.sync += [full.eq(1), held.eq(first + x + offset), second.eq(0)]
        return m


def test_wrapper_passes_a_preamble_to_a_serial_core_before_the_vectors():
    """The first n_preamble bytes reach the core with no result and no vector count; the
    vectors after them come back one result each."""
    preamble, n = [5, 1, 7], 2
    offset = sum(preamble) % 8
    core = LoadedOffsetCore(p=len(preamble))
    dut = UartWrapper(core, n_in=n, in_bits=6, out_bits=3, clk_freq=CLK_FREQ, baud=BAUD,
                      idle_timeout=1e-3, n_preamble=len(preamble))
    assert dut.serial
    vectors = [[0, 3], [60, 9], [2, 2]]
    cycles = bit_cycles(CLK_FREQ, BAUD)
    results = []

    async def host(ctx):
        await send_bytes(ctx, dut.rx, preamble, baud=BAUD)
        for vector in vectors:
            await send_bytes(ctx, dut.rx, vector, baud=BAUD)
            results.extend(await receive_bytes(ctx, dut.tx, 1, cycles=cycles))

    run(dut, host, deadline=(len(preamble) + len(vectors) * (n + 2)) * 10 / BAUD + 1e-3)
    assert results == [(sum(vec) + offset) % 8 for vec in vectors]
    with pytest.raises(ValueError, match="preamble needs a core"):
        UartWrapper(ArgMaxCore(n=4, shape=signed(5)), n_in=4, in_bits=5, out_bits=2,
                    clk_freq=CLK_FREQ, n_preamble=3)
