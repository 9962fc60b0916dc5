"""Board top: a classifier core behind a UART.

Host protocol (8N1, ``baud``): send ``n_in`` bytes, one input element per byte in element
order, the element being the low ``in_bits`` bits of the byte (two's complement for signed
element types, so ``-1`` is sent as ``0xff``); receive ``n_out`` bytes, one per output element
in element order: the class index of a classifier (``n_out = 1``), or e.g. a QAM slicer's level
codes. A vector
whose bytes stop arriving for ``idle_timeout`` (0.1 s) is discarded, so a host can always
resynchronize by pausing.

A core whose ``i_stream`` takes one element per transfer (its payload is ``in_bits`` wide,
e.g. a pipeline starting with a sparse SAM engine) gets each byte as it arrives and no vector
register is built; a discarded vector is then completed with zero elements and its result
byte is dropped instead of sent.
"""

from amaranth.hdl import Cat, Elaboratable, Module, Mux, Signal, Value
from amaranth.build import ResourceError
from amaranth.lib import io
from amaranth.lib.fifo import SyncFIFO

from .uart import UartRx, UartTx

__all__ = ["UartWrapper", "DROP_FIFO_DEPTH"]

#: Vectors a serial-input core may hold at once (each waits with a drop flag for its result).
DROP_FIFO_DEPTH = 16


class UartWrapper(Elaboratable):
    """A classifier core (see ``docs/architecture.md``) wired to a UART and an activity LED.

    Received elements are shifted into an ``n_in * in_bits`` bit register; after the
    ``n_in``-th byte the whole vector is offered on the core's ``i_stream``, and no further
    byte is taken until the core accepts it (a byte sent meanwhile waits in the receiver; a
    second one is dropped). The core's ``o_stream`` payload, zero-extended to 8 bits, goes to
    the transmitter.

    Parameters
    ----------
    core : wiring.Component
        Has ``i_stream`` with an ``n_in * in_bits`` bit payload and ``o_stream`` with an
        ``out_bits`` bit payload, both in the ``sync`` domain.
    n_in : int
        Elements per input vector.
    in_bits : int
        Bits per element, 1 to 8.
    out_bits : int
        Bits of an output element (the class index), 1 to 8.
    n_out : int
        Output elements per vector, one per ``o_stream`` transfer.
    n_preamble : int
        Bytes after reset that a serial core takes as weights, not as vector elements (the
        :attr:`hwgen.hw.pipeline.Pipeline.preamble`): they go straight to the core, with no
        result and no idle timeout; vectors follow.
    clk_freq : float
        Frequency of the ``sync`` clock, in Hz; must be the board clock when built for a board.
    baud : int
        UART bits per second.
    idle_timeout : float
        Seconds without a byte after which a partly received vector is discarded; also how
        long the activity LED stays lit after a byte.

    Members
    -------
    rx : Signal(1)
        Serial input, idle high. Driven from the board's UART pin when elaborated for a
        platform; driven by the testbench in simulation.
    tx : Signal(1)
        Serial output, idle high.
    led : Signal(1)
        High for ``idle_timeout`` after each received byte; drives the board's first LED,
        if it has one.

    Latency: the result byte's start bit begins a few cycles after the core's ``o_stream``
    becomes valid; the serial link (``10 * (n_in + 1)`` bit times per inference) dominates.
    """

    def __init__(self, core, *, n_in: int, in_bits: int, out_bits: int, clk_freq: float,
                 baud: int = 115200, idle_timeout: float = 0.1, n_out: int = 1,
                 n_preamble: int = 0):
        if n_in < 1 or n_out < 1:
            raise ValueError(f"n_in and n_out must be at least 1, not {n_in!r} and {n_out!r}")
        if n_preamble < 0:
            raise ValueError(f"n_preamble must not be negative, not {n_preamble!r}")
        if not 1 <= in_bits <= 8:
            raise ValueError(f"in_bits must be 1 to 8 (one element per byte), not {in_bits!r}")
        if not 1 <= out_bits <= 8:
            raise ValueError(f"out_bits must be 1 to 8 (one result byte), not {out_bits!r}")
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, not {idle_timeout!r}")
        in_width = len(Value.cast(core.i_stream.payload))
        self.serial = in_width == in_bits and n_in > 1
        if in_width != n_in * in_bits and not self.serial:
            raise ValueError(f"core i_stream payload is {in_width} bits, not n_in * in_bits = "
                             f"{n_in} * {in_bits} = {n_in * in_bits} (nor in_bits = {in_bits}, "
                             "one element per transfer)")
        out_width = len(Value.cast(core.o_stream.payload))
        if out_width != out_bits:
            raise ValueError(f"core o_stream payload is {out_width} bits, not out_bits = "
                             f"{out_bits}")
        if n_preamble and not self.serial:
            raise ValueError("a preamble needs a core that takes its input one element per "
                             "transfer")
        self.core = core
        self.n_preamble = n_preamble
        self.n_in = n_in
        self.in_bits = in_bits
        self.out_bits = out_bits
        self.n_out = n_out
        self.clk_freq = clk_freq
        self.baud = baud
        self.idle_cycles = max(1, round(idle_timeout * clk_freq))
        self.uart_rx = UartRx(clk_freq=clk_freq, baud=baud)
        self.uart_tx = UartTx(clk_freq=clk_freq, baud=baud)

        self.rx = Signal(init=1)
        self.tx = Signal(init=1)
        self.led = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = self.core
        m.submodules.uart_rx = uart_rx = self.uart_rx
        m.submodules.uart_tx = uart_tx = self.uart_tx

        if platform is not None:
            if platform.default_clk_frequency != self.clk_freq:
                raise ValueError(f"clk_freq is {self.clk_freq:g} Hz but the board clock runs at "
                                 f"{platform.default_clk_frequency:g} Hz")
            uart = platform.request("uart", 0, dir="-")
            m.submodules.rx_buffer = rx_buffer = io.Buffer("i", uart.rx)
            m.submodules.tx_buffer = tx_buffer = io.Buffer("o", uart.tx)
            m.d.comb += [self.rx.eq(rx_buffer.i), tx_buffer.o.eq(self.tx)]
            try:
                led = platform.request("led", 0, dir="-")
            except ResourceError:
                pass
            else:
                m.submodules.led_buffer = led_buffer = io.Buffer("o", led)
                m.d.comb += led_buffer.o.eq(self.led)

        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        if self.serial:
            self._serial(m, core, uart_rx, uart_tx)
            return m

        vector = Signal(self.n_in * self.in_bits)
        vector_valid = Signal()
        count = Signal(range(self.n_in))
        idle_timer = Signal(range(self.idle_cycles + 1))

        m.d.comb += [
            core.i_stream.payload.eq(vector),
            core.i_stream.valid.eq(vector_valid),
            uart_rx.o_stream.ready.eq(~vector_valid),
            self.led.eq(idle_timer != 0),
        ]
        with m.If(core.i_stream.ready):
            m.d.sync += vector_valid.eq(0)

        with m.If(uart_rx.o_stream.valid & ~vector_valid):
            # Shift right: after n_in bytes the first one sits at element 0, bits [0, in_bits).
            m.d.sync += [
                vector.eq(Cat(vector[self.in_bits:], uart_rx.o_stream.payload[:self.in_bits])),
                idle_timer.eq(self.idle_cycles),
            ]
            with m.If(count == self.n_in - 1):
                m.d.sync += [count.eq(0), vector_valid.eq(1)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        with m.Elif(idle_timer != 0):
            m.d.sync += idle_timer.eq(idle_timer - 1)
        with m.Else():
            m.d.sync += count.eq(0)

        m.d.comb += [
            uart_tx.i_stream.payload.eq(core.o_stream.payload),
            uart_tx.i_stream.valid.eq(core.o_stream.valid),
            core.o_stream.ready.eq(uart_tx.i_stream.ready),
        ]

        return m

    def _serial(self, m, core, uart_rx, uart_tx) -> None:
        """Bytes straight to a serial core; a stalled vector is padded with zeros and its result
        dropped (a FIFO of one flag per vector in flight says which results to drop)."""
        m.submodules.drops = drops = SyncFIFO(width=1, depth=DROP_FIFO_DEPTH)
        count = Signal(range(self.n_in))
        idle_timer = Signal(range(self.idle_cycles + 1))
        padding = Signal()
        last = count == self.n_in - 1
        # the preamble's bytes pass straight through, then vectors begin
        preamble_left = Signal(range(self.n_preamble + 1), init=self.n_preamble)
        in_preamble = preamble_left != 0
        # a vector's first element waits until its drop flag has room
        can_send = in_preamble | (count != 0) | drops.w_rdy
        taken = core.i_stream.valid & core.i_stream.ready
        m.d.comb += [
            core.i_stream.payload.as_value().eq(
                Mux(padding, 0, uart_rx.o_stream.payload[:self.in_bits])),
            core.i_stream.valid.eq(can_send & (padding | uart_rx.o_stream.valid)),
            uart_rx.o_stream.ready.eq(can_send & ~padding & core.i_stream.ready),
            drops.w_en.eq(taken & last & ~in_preamble),
            drops.w_data.eq(padding),
            self.led.eq(idle_timer != 0),
        ]
        with m.If(taken & in_preamble):
            m.d.sync += preamble_left.eq(preamble_left - 1)
        with m.If(taken & ~in_preamble):
            m.d.sync += count.eq(Mux(last, 0, count + 1))
            with m.If(last):
                m.d.sync += padding.eq(0)
        with m.If(taken & ~padding):
            m.d.sync += idle_timer.eq(self.idle_cycles)
        with m.Elif(idle_timer != 0):
            m.d.sync += idle_timer.eq(idle_timer - 1)
        with m.Elif((count != 0) & ~padding & ~in_preamble):
            m.d.sync += padding.eq(1)

        # results leave in vector order; a padded vector's n_out results are taken and not
        # sent, its flag popped with the last of them
        drop = drops.r_rdy & drops.r_data
        out_count = Signal(range(self.n_out))
        out_last = out_count == self.n_out - 1
        out_taken = core.o_stream.valid & core.o_stream.ready
        m.d.comb += [
            uart_tx.i_stream.payload.eq(core.o_stream.payload),
            uart_tx.i_stream.valid.eq(core.o_stream.valid & drops.r_rdy & ~drops.r_data),
            core.o_stream.ready.eq(drops.r_rdy & (drop | uart_tx.i_stream.ready)),
            drops.r_en.eq(out_taken & out_last),
        ]
        with m.If(out_taken):
            m.d.sync += out_count.eq(Mux(out_last, 0, out_count + 1))
