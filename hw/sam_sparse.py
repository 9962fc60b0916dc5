"""The sparse folded Sum-and-Max engine: a large pruned ``sam`` layer as a stream of entries.

A pruned SAM layer (seed 002, §III-D) keeps a few of its n x m x terms parameters. This engine
stores only the kept ones, as *entries* in block RAM, and walks them one per cycle:

* the input vector arrives **serially**, one element per transfer, into an input RAM (a 512 x 8
  bit vector is one iCE40 EBR), so no vector-wide register is ever built;
* the entry ROM lists, output by output and term by term, each kept ``(input i, weight w)``
  pair, sorted by i, with a ``last`` bit on the final pair of its (output, term) group. A group
  with no kept pair (its row is empty) holds one *fill entry* instead, whose ``fill`` bit makes
  the term's value the stored constant rather than ``x_i + w``;
* per entry, ``x_i + w`` (eq. 5's sum; a fill entry's constant) is reduced into a running max
  (or min) of the group; at the group's last entry the signed term is added to the output's sum,
  and after the last term of the output it goes to the output FIFO;
* outputs leave **serially**, one ``o_j`` per transfer in order j = 0 .. m - 1.

Entries per inference: ``E = sum over (output, term) groups of max(1, kept pairs)``. Timing:
``n`` cycles to take the input (at one element per cycle), then ``E + 3`` cycles to walk the
entries; the next input is taken once the walk is over. An entry is issued only while the
output FIFO has room for every output that the entries in flight could finish, so a stalled
consumer stalls the walk and nothing is lost.

No multiplier: one adder (x + w), one comparator and multiplexer per reduction (max and min,
selected by the term), one adder for the signed sum.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.hw.engines import element_shape
from hwgen.sw import ir

__all__ = ["SparseSAMEngine", "sam_entries", "FIFO_DEPTH"]

#: Output FIFO depth; entries are issued while at most ``FIFO_DEPTH - 3`` outputs wait.
FIFO_DEPTH = 4
_IN_FLIGHT = 2          # entries between issue and the reduction (ROM read, input RAM read)


def sam_entries(layer: ir.SAMLayer) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The entry list of ``layer``: int64 arrays ``(index, value, last, fill)``, one per entry.

    Groups come output by output, and within an output term by term; a group lists its kept
    pairs by input index (``value`` = the weight), or, when it keeps none, one fill entry
    (``index`` 0, ``value`` = the fill, ``fill`` 1). ``last`` marks each group's final entry.
    """
    index, value, last, fill = [], [], [], []
    for j in range(layer.n_out):
        for t in layer.terms:
            cols = np.flatnonzero(t.keep[j])
            if len(cols):
                index.extend(cols.tolist())
                value.extend(t.weights[j, cols].tolist())
                fill.extend([0] * len(cols))
                last.extend([0] * (len(cols) - 1) + [1])
            else:
                index.append(0)
                value.append(int(t.fill[j]))
                fill.append(1)
                last.append(1)
    return tuple(np.array(a, dtype=np.int64) for a in (index, value, last, fill))


def _pack_entries(index, value, last, fill, index_bits: int, value_bits: int) -> list[int]:
    mask = (1 << value_bits) - 1
    return [int(i) | ((int(v) & mask) << index_bits) | (int(la) << (index_bits + value_bits))
            | (int(f) << (index_bits + value_bits + 1))
            for i, v, la, f in zip(index, value, last, fill)]


def _widths(layer: ir.SAMLayer, in_type: ir.TensorType, entries):
    """(index bits, value bits, shape of x + w, shape of a partial signed sum) of the entries."""
    _, value, _, fill = entries
    sum_lo = int(np.where(fill == 1, value, value + in_type.lo).min())
    sum_hi = int(np.where(fill == 1, value, value + in_type.hi).max())
    value_bits = ir.signed_bits(min(0, int(value.min())), max(0, int(value.max())))
    # a partial sum of signed terms: bounded by the sum of the terms' largest magnitudes
    reach = max(abs(sum_lo), abs(sum_hi)) * len(layer.terms)
    return (max(1, int(layer.n_in - 1).bit_length()), value_bits,
            signed(ir.signed_bits(sum_lo, sum_hi)), signed(ir.signed_bits(-reach, reach)))


class SparseSAMEngine(wiring.Component):
    """Sparse folded SAM layer (:class:`hwgen.sw.ir.SAMLayer`) with serial streams (module docs).

    Parameters
    ----------
    layer : SAMLayer
    in_type : TensorType
        Signed or unsigned input elements.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(in_shape, 1)))``
        One input element per transfer, element 0 first; ``n_in`` transfers per vector.
    o_stream : ``Out(stream.Signature(ArrayLayout(out_shape, 1)))``
        One output per transfer, output 0 first; ``n_out`` transfers per vector.
    serial_in, serial_out : bool
        True: the streams carry one element per transfer.
    n_entries : int
        Entries walked per vector (see :func:`sam_entries`).

    Throughput is one vector per ``n_in + n_entries + 4`` cycles when the input is offered
    every cycle and the output is always taken (:attr:`interval`).
    """

    serial_in = serial_out = True

    def __init__(self, layer: ir.SAMLayer, *, in_type: ir.TensorType):
        if not in_type.is_integer:
            raise ValueError(f"{layer.name}: a sam layer takes integer inputs, not "
                             f"{in_type.kind}")
        self.layer, self.in_type = layer, in_type
        self.n_in, self.n_out = layer.n_in, layer.n_out
        self.out_type = layer.out_type(in_type)
        self.entries = sam_entries(layer)
        self.n_entries = len(self.entries[0])
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(element_shape(in_type), 1))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(element_shape(self.out_type),
                                                              1))),
        })

    @property
    def interval(self) -> int:
        """Cycles per vector in steady state: load, walk, and the pipeline's drain."""
        return self.n_in + self.n_entries + _IN_FLIGHT + 2

    @property
    def latency(self) -> int:
        """Cycles from the last input element's transfer to the first output's valid, at most."""
        return self.n_entries + _IN_FLIGHT + 3

    def elaborate(self, platform) -> Module:
        m = Module()
        layer, n_terms = self.layer, len(self.layer.terms)
        index_bits, value_bits, sum_shape, acc_shape = _widths(layer, self.in_type, self.entries)
        x_shape = element_shape(self.in_type)
        out_shape = element_shape(self.out_type)

        # input RAM: written while loading, read while walking
        m.submodules.x_ram = x_ram = Memory(shape=x_shape, depth=self.n_in, init=[])
        x_write = x_ram.write_port()
        x_read = x_ram.read_port(transparent_for=())
        word_bits = index_bits + value_bits + 2
        words = _pack_entries(*self.entries, index_bits, value_bits)
        m.submodules.entries = rom = Memory(shape=unsigned(word_bits), depth=len(words),
                                            init=words, attrs={"rom_style": "block"})
        rom_read = rom.read_port()

        m.submodules.fifo = fifo = SyncFIFOBuffered(width=out_shape.width, depth=FIFO_DEPTH)
        m.d.comb += [
            self.o_stream.payload.as_value().eq(fifo.r_data),
            self.o_stream.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o_stream.ready),
        ]

        loading = Signal(init=1)
        count = Signal(range(max(self.n_in, self.n_entries) + 1))
        m.d.comb += [
            self.i_stream.ready.eq(loading),
            x_write.addr.eq(count),
            x_write.data.eq(self.i_stream.payload[0]),
            x_write.en.eq(loading & self.i_stream.valid),
        ]

        # stage A: issue entry `count` to the ROM while the FIFO has room for what is in flight
        issue = Signal()
        m.d.comb += [issue.eq(~loading & (fifo.level <= FIFO_DEPTH - 1 - _IN_FLIGHT)),
                     rom_read.addr.eq(count)]
        with m.If(loading & self.i_stream.valid):
            with m.If(count == self.n_in - 1):
                m.d.sync += [count.eq(0), loading.eq(0)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        with m.If(issue):
            with m.If(count == self.n_entries - 1):
                m.d.sync += [count.eq(0), loading.eq(1)]
            with m.Else():
                m.d.sync += count.eq(count + 1)

        # stage B: the ROM word is here; read the input it names
        b_valid = Signal()
        m.d.sync += b_valid.eq(issue)
        word = rom_read.data
        b_index = word[:index_bits]
        m.d.comb += x_read.addr.eq(b_index)
        c_valid, c_last, c_fill = Signal(), Signal(), Signal()
        c_value = Signal(signed(value_bits))
        m.d.sync += [c_valid.eq(b_valid), c_value.eq(word[index_bits:index_bits + value_bits]),
                     c_last.eq(word[index_bits + value_bits]),
                     c_fill.eq(word[index_bits + value_bits + 1])]

        # stage C: reduce x_i + w (or the fill) into the group's running max / min (eq. 5)
        x = x_read.data
        cand = Signal(sum_shape)
        m.d.comb += cand.eq(Mux(c_fill, c_value, x + c_value))
        term = Signal(range(n_terms))
        first = Signal(init=1)              # this entry opens a group
        running = Signal(sum_shape)
        group = Signal(sum_shape)
        is_max = Cat(*[Const(t.reduce == "max", 1) for t in layer.terms]).bit_select(term, 1)
        better = Mux(is_max, cand > running, cand < running)
        m.d.comb += group.eq(Mux(first | better, cand, running))
        acc = Signal(acc_shape)
        signed_group = Signal(acc_shape)
        is_neg = Cat(*[Const(t.sign < 0, 1) for t in layer.terms]).bit_select(term, 1)
        m.d.comb += signed_group.eq(Mux(is_neg, -group, group))
        total = Signal(acc_shape)
        m.d.comb += total.eq(Mux(term == 0, 0, acc) + signed_group)
        with m.If(c_valid):
            m.d.sync += [running.eq(group), first.eq(c_last)]
            with m.If(c_last):
                m.d.sync += acc.eq(total)
                with m.If(term == n_terms - 1):
                    m.d.sync += term.eq(0)
                with m.Else():
                    m.d.sync += term.eq(term + 1)
        m.d.comb += [fifo.w_data.eq(total[:out_shape.width]),
                     fifo.w_en.eq(c_valid & c_last & (term == n_terms - 1))]
        return m


def estimate_sparse_sam(layer: ir.SAMLayer, in_type: ir.TensorType) -> "Resources":
    """iCE40 cost of :class:`SparseSAMEngine`: the entry ROM and the input RAM in EBRs, and a
    datapath of registers, one adder, one comparator with its multiplexer and the signed sum."""
    from hwgen.hw.folding import Resources, _rom

    entries = sam_entries(layer)
    n_entries = len(entries[0])
    index_bits, value_bits, sum_shape, acc_shape = _widths(layer, in_type, entries)
    word = index_bits + value_bits + 2
    counter = max(1, int(max(layer.n_in, n_entries)).bit_length())
    out_bits = layer.out_type(in_type).bits
    lcs = (24 + 2 * counter + value_bits + 3 + 4 * sum_shape.width + 3 * acc_shape.width
           + (FIFO_DEPTH + 1) * out_bits + 8)
    return (Resources(lcs) + _rom(n_entries, word, "bram")
            + _rom(layer.n_in, element_shape(in_type).width, "bram"))


def _register() -> None:
    """Route ``sam`` layers folded with ``weights="sparse"`` to this engine and its estimate."""
    from hwgen.hw import folding
    from hwgen.hw.engines import ENGINES

    parallel = ENGINES.get(ir.SAMLayer.kind)
    parallel_cost = folding.ESTIMATORS.get(ir.SAMLayer.kind)

    def engine(layer, in_type, f):
        if f.weights == folding.SPARSE or parallel is None:
            folding.check_folding(layer, f)
            return SparseSAMEngine(layer, in_type=in_type)
        return parallel(layer, in_type, f)

    def cost(layer, in_type, f):
        if f.weights == folding.SPARSE or parallel_cost is None:
            return estimate_sparse_sam(layer, in_type)
        return parallel_cost(layer, in_type, f)

    ENGINES[ir.SAMLayer.kind] = engine
    folding.ESTIMATORS[ir.SAMLayer.kind] = cost


_register()
