"""8N1 UART receiver and transmitter with byte streams.

One start bit (0), eight data bits LSB first, one stop bit (1); the line idles high.
"""

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UartRx", "UartTx", "bit_cycles"]

# A receiver that samples mid-bit tolerates about half a bit of drift over the 9.5 bits from
# the start edge to the stop bit's middle, shared between both ends; keep our share small.
MAX_BAUD_ERROR = 0.02


def bit_cycles(clk_freq: float, baud: int) -> int:
    """Clock cycles per bit, ``round(clk_freq / baud)``.

    Raises ``ValueError`` if that is under 4 cycles (too coarse to find the middle of a bit) or
    the baud rate it gives is off by more than 2 %.
    """
    if clk_freq <= 0 or baud <= 0:
        raise ValueError(f"clk_freq and baud must be positive, not {clk_freq!r} and {baud!r}")
    cycles = round(clk_freq / baud)
    if cycles < 4:
        raise ValueError(f"baud {baud} is too fast for a {clk_freq / 1e6:g} MHz clock: "
                         f"{clk_freq / baud:.2f} cycles per bit, at least 4 needed")
    error = abs(clk_freq / cycles - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"a {clk_freq / 1e6:g} MHz clock cannot make {baud} baud: "
                         f"{cycles} cycles per bit is {error:.1%} off")
    return cycles


class UartRx(wiring.Component):
    """UART receiver.

    The line goes through a two flip-flop synchronizer. A falling edge starts a frame; the
    start bit is checked again in its middle (a shorter low pulse is a glitch and ignored),
    then every bit is sampled one bit time later, in its middle. After the stop bit's middle
    the receiver is ready for the next start edge, so a sender up to ~4 % fast is tolerated.

    Parameters
    ----------
    clk_freq : float
        Frequency of the ``sync`` clock, in Hz.
    baud : int
        Bits per second.

    Members
    -------
    rx : In(1)
        Serial line, idle high.
    o_stream : Out(stream.Signature(8))
        Received bytes. A byte is offered from the middle of its stop bit until taken.
    overrun : Out(1)
        One-cycle pulse: a byte arrived while the previous one was still not taken; the new
        one is dropped.
    framing_error : Out(1)
        One-cycle pulse: the stop bit was 0; the byte is dropped and the receiver waits for
        the line to go idle (high) again.

    Latency: the byte is valid 2 cycles (synchronizer) after the middle of its stop bit.
    """

    rx: In(1, init=1)
    o_stream: Out(stream.Signature(8))
    overrun: Out(1)
    framing_error: Out(1)

    def __init__(self, *, clk_freq: float, baud: int = 115200):
        self.clk_freq = clk_freq
        self.baud = baud
        self.bit_cycles = bit_cycles(clk_freq, baud)
        super().__init__()

    def elaborate(self, platform):
        m = Module()

        line = Signal(init=1)
        m.submodules.synchronizer = FFSynchronizer(self.rx, line, init=1)

        timer = Signal(range(self.bit_cycles))
        bit_index = Signal(range(8))
        shreg = Signal(8)

        with m.If(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(self.bit_cycles // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(self.bit_cycles - 1), bit_index.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [
                        shreg.eq(Cat(shreg[1:], line)),
                        timer.eq(self.bit_cycles - 1),
                        bit_index.eq(bit_index + 1),
                    ]
                    with m.If(bit_index == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(~line):
                    m.d.comb += self.framing_error.eq(1)
                    m.next = "BREAK"
                with m.Else():
                    with m.If(self.o_stream.valid & ~self.o_stream.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o_stream.payload.eq(shreg), self.o_stream.valid.eq(1)]
                    m.next = "IDLE"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"

        return m


class UartTx(wiring.Component):
    """UART transmitter.

    Parameters
    ----------
    clk_freq : float
        Frequency of the ``sync`` clock, in Hz.
    baud : int
        Bits per second.

    Members
    -------
    i_stream : In(stream.Signature(8))
        Bytes to send. Ready while the line is idle; a transfer starts the start bit on the
        next cycle.
    tx : Out(1)
        Serial line, idle high, driven straight from a flip-flop (glitch free).

    Throughput: one byte per ``10 * bit_cycles + 1`` cycles (a full stop bit, then one idle
    cycle before the next start bit).
    """

    i_stream: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, *, clk_freq: float, baud: int = 115200):
        self.clk_freq = clk_freq
        self.baud = baud
        self.bit_cycles = bit_cycles(clk_freq, baud)
        super().__init__()

    def elaborate(self, platform):
        m = Module()

        frame = Signal(10, init=(1 << 10) - 1)  # stop, data[7:0], start; shifted out LSB first
        bits_left = Signal(range(11))
        timer = Signal(range(self.bit_cycles))

        m.d.comb += self.tx.eq(frame[0])

        with m.If(bits_left == 0):
            m.d.comb += self.i_stream.ready.eq(1)
            with m.If(self.i_stream.valid):
                m.d.sync += [
                    frame.eq(Cat(Const(0, 1), self.i_stream.payload, Const(1, 1))),
                    bits_left.eq(10),
                    timer.eq(self.bit_cycles - 1),
                ]
        with m.Elif(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Else():
            m.d.sync += [
                frame.eq(Cat(frame[1:], Const(1, 1))),
                bits_left.eq(bits_left - 1),
                timer.eq(self.bit_cycles - 1),
            ]

        return m
