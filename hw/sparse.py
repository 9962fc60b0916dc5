"""The sparse folded engines: a large pruned ``sam`` or ``dense_mac`` layer as a stream of entries.

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

**Loaded entries** (``storage="loaded"``). The pruned layer of the paper keeps about 6,000
entries of about 21 bits: more than the UP5K's 30 block RAMs hold next to the output layer's
weights. Its single-port SPRAMs (4 x 256 kbit) have room, but no initial contents: the
bitstream cannot fill them. With loaded storage the entries live in a RAM that the engine fills
from its own input stream after reset: the first :attr:`SparseEngine.preamble` transfers
(``ceil(word_bits / in_bits)`` per entry, least significant chunk first, each chunk's bits read
as an input element) are entry words, not input elements; vectors follow. The host sends that
preamble once after configuration (``hwgen build`` writes it as ``preamble.bin``); the
verification bench sends it before the vectors. The RAM's read and write ports share one
address (its read port idles while it writes, SPRAM's no-change read), it carries
``ram_style = "huge"`` and it is named ``spram_entries``: the flow deletes its all-zero initial
value (:data:`hwgen.boards.ooc.SPRAM_PRELUDE`), which Amaranth writes and SPRAM cannot hold,
so yosys maps it to SB_SPRAM256KA blocks.

:class:`SparseEngine` is the walk; a kind gives it its entry list, its groups and its candidate.
:class:`hwgen.hw.sam.SparseSAMEngine` walks a SAM layer's entries
(:func:`hwgen.hw.sam.sam_entries`) as above. :class:`hwgen.hw.dense_mac.SparseMACEngine`
is the same walk for a pruned ``dense_mac`` layer: its entries are the nonzero weights
(:func:`hwgen.hw.dense_mac.mac_entries`; a pruned weight is absent, not a stored zero), a
row's bias is a fill entry at its start, the candidate is the product ``x_i * w`` (one
multiplier, an SB_MAC16 when wide enough) and the group reduces by sum. The two engines differ
only in that operation, which is what the cost comparison of seed 002's Table I measures.
:func:`estimate_sparse` prices either.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.hw.kit import element_shape
from hwgen.hw.resources import DSP_MIN_PRODUCT_BITS, SPRAM_WIDTH, SPRAM_WORDS, Resources, rom_cost
from hwgen.sw.core import ir

__all__ = ["SparseEngine", "estimate_sparse", "FIFO_DEPTH", "STORAGES"]


#: Where the entries live: a ROM in block RAM, or a RAM loaded from the input stream (SPRAM).
STORAGES = ("rom", "loaded")

#: Output FIFO depth; entries are issued while at most ``FIFO_DEPTH - 3`` outputs wait.
FIFO_DEPTH = 4
_IN_FLIGHT = 2          # entries between issue and the reduction (ROM read, input RAM read)


def _pack_entries(index, value, last, fill, index_bits: int, value_bits: int) -> list[int]:
    mask = (1 << value_bits) - 1
    return [int(i) | ((int(v) & mask) << index_bits) | (int(la) << (index_bits + value_bits))
            | (int(f) << (index_bits + value_bits + 1))
            for i, v, la, f in zip(index, value, last, fill)]


def _widths(layer, in_type: ir.TensorType, entries, reduce_sum: bool):
    """(index bits, value bits, shape of a candidate and of a group's running value, shape of a
    partial signed sum of groups) of the entries; a candidate is ``x + w`` (or ``x * w`` when
    the groups are sums) or a fill."""
    _, value, _, fill = entries
    if reduce_sum:
        ends = np.stack([value * in_type.lo, value * in_type.hi])
    else:
        ends = np.stack([value + in_type.lo, value + in_type.hi])
    cand_lo = int(np.where(fill == 1, value, ends.min(axis=0)).min())
    cand_hi = int(np.where(fill == 1, value, ends.max(axis=0)).max())
    value_bits = ir.signed_bits(min(0, int(value.min())), max(0, int(value.max())))
    if reduce_sum:
        # a running sum: bounded by the sum of the row's largest magnitudes
        mags = np.where(fill == 1, np.abs(value), np.abs(ends).max(axis=0))
        reach = int(mags.sum())
        group = signed(ir.signed_bits(-reach, reach))
        return max(1, int(layer.n_in - 1).bit_length()), value_bits, group, group
    # a partial sum of signed terms: bounded by the sum of the terms' largest magnitudes
    reach = max(abs(cand_lo), abs(cand_hi)) * len(layer.terms)
    return (max(1, int(layer.n_in - 1).bit_length()), value_bits,
            signed(ir.signed_bits(cand_lo, cand_hi)), signed(ir.signed_bits(-reach, reach)))


class SparseEngine(wiring.Component):
    """The walk of a sparse folded layer's entries, with serial streams (module docs).

    Subclasses give the entry list (:meth:`make_entries`), the reduction and sign of each
    group of an output (:meth:`groups`) and the candidate of an entry (:meth:`candidate`).

    Parameters
    ----------
    layer : Layer
        A ``sam`` layer, or a ``dense_mac`` layer without a threshold.
    in_type : TensorType
        Signed or unsigned input elements.
    storage : str
        ``"rom"`` (entries in block RAM, fixed by the bitstream) or ``"loaded"`` (entries in a
        RAM filled from the input stream after reset: :attr:`preamble`, module docs).

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(in_shape, 1)))``
        One input element per transfer, element 0 first; ``n_in`` transfers per vector.
    o_stream : ``Out(stream.Signature(ArrayLayout(out_shape, 1)))``
        One output per transfer, output 0 first; ``n_out`` transfers per vector.
    serial_in, serial_out : bool
        True: the streams carry one element per transfer.
    n_entries : int
        Entries walked per vector (see :meth:`make_entries`).
    word_bits : int
        Width of an entry word: input index, value, last bit, fill bit.
    words : list of int
        The packed entry words, in walk order (the ROM's contents, or what the preamble loads).

    Throughput is one vector per ``n_in + n_entries + 4`` cycles when the input is offered
    every cycle and the output is always taken (:attr:`interval`).
    """

    serial_in = serial_out = True

    def __init__(self, layer: ir.Layer, *, in_type: ir.TensorType, storage: str = "rom"):
        if not in_type.is_integer:
            raise ValueError(f"{layer.name}: a {layer.kind} layer takes integer inputs, not "
                             f"{in_type.kind}")
        if storage not in STORAGES:
            raise ValueError(f"{layer.name}: storage must be one of {STORAGES}, not {storage!r}")
        self.layer, self.in_type, self.storage = layer, in_type, storage
        self.n_in, self.n_out = layer.n_in, layer.n_out
        self.out_type = layer.out_type(in_type)
        self.entries = self.make_entries(layer)
        self.n_entries = len(self.entries[0])
        # (index bits, value bits, candidate shape, partial-sum shape), and the packed words
        self.widths = _widths(layer, in_type, self.entries, self.groups()[0][0] == "sum")
        index_bits, value_bits = self.widths[:2]
        self.word_bits = index_bits + value_bits + 2
        self.words = _pack_entries(*self.entries, index_bits, value_bits)
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(element_shape(in_type), 1))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(element_shape(self.out_type),
                                                              1))),
        })

    @staticmethod
    def make_entries(layer) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The entry list of ``layer``: int64 arrays ``(index, value, last, fill)``, one per
        entry, groups output by output (e.g. :func:`hwgen.hw.sam.sam_entries`)."""
        raise NotImplementedError

    def groups(self) -> list[tuple[str, int]]:
        """(reduce, sign) of each group of an output, in order: ``"max"``, ``"min"`` or
        ``"sum"`` (every group then a sum)."""
        raise NotImplementedError

    @property
    def chunks(self) -> int:
        """Input transfers per entry word of the preamble."""
        return -(-self.word_bits // element_shape(self.in_type).width)

    @property
    def preamble(self) -> np.ndarray:
        """The input elements that load the entries (``storage="loaded"``; empty for a ROM):
        per entry word, ``chunks`` elements, least significant bits first, each chunk's bits
        read as an element of the input type (two's complement for a signed one)."""
        if self.storage == "rom":
            return np.zeros(0, np.int64)
        width = element_shape(self.in_type).width
        chunks = [(w >> (width * k)) & ((1 << width) - 1)
                  for w in self.words for k in range(self.chunks)]
        codes = np.array(chunks, dtype=np.int64)
        if self.in_type.kind == "signed":
            codes = np.where(codes >= 1 << (width - 1), codes - (1 << width), codes)
        return codes

    def candidate(self, x, value):
        """An entry's candidate from its input ``x`` and its ``value`` (eq. 5's sum ``x + w``,
        or a product)."""
        raise NotImplementedError

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
        groups = self.groups()
        n_terms = len(groups)
        reduce_sum = groups[0][0] == "sum"
        index_bits, value_bits, sum_shape, acc_shape = self.widths
        x_shape = element_shape(self.in_type)
        out_shape = element_shape(self.out_type)

        # input RAM: written while loading, read while walking
        m.submodules.x_ram = x_ram = Memory(shape=x_shape, depth=self.n_in, init=[])
        x_write = x_ram.write_port()
        x_read = x_ram.read_port(transparent_for=())
        word_bits = self.word_bits
        loaded = self.storage == "loaded"
        # the entries: a ROM, or a RAM filled from the input stream (one address for both ports)
        ready = Signal(init=int(not loaded))   # the entries are in place
        entry_addr = Signal(range(max(2, self.n_entries)))
        load_addr = Signal.like(entry_addr)
        if loaded:
            # named for the flow, which drops its (all-zero) initial value: SPRAM has none
            m.submodules.spram_entries = rom = Memory(shape=unsigned(word_bits),
                                                      depth=self.n_entries, init=[],
                                                      attrs={"ram_style": "huge"})
            rom_write = rom.write_port()
            rom_read = rom.read_port(transparent_for=())
            width = element_shape(self.in_type).width
            shift = Signal(self.chunks * width)
            chunk = Signal(range(self.chunks + 1))
            new = Cat(shift[width:], self.i_stream.payload.as_value()[:width])
            take = ~ready & self.i_stream.valid
            m.d.comb += [rom_write.addr.eq(entry_addr), rom_write.data.eq(new[:word_bits]),
                         rom_write.en.eq(take & (chunk == self.chunks - 1)),
                         rom_read.en.eq(~rom_write.en)]
            with m.If(take):
                m.d.sync += shift.eq(new)
                with m.If(chunk == self.chunks - 1):
                    m.d.sync += [chunk.eq(0), load_addr.eq(load_addr + 1)]
                    with m.If(load_addr == self.n_entries - 1):
                        m.d.sync += ready.eq(1)
                with m.Else():
                    m.d.sync += chunk.eq(chunk + 1)
        else:
            m.submodules.entries = rom = Memory(shape=unsigned(word_bits), depth=len(self.words),
                                                init=self.words, attrs={"rom_style": "block"})
            rom_read = rom.read_port()
        m.d.comb += rom_read.addr.eq(entry_addr)

        m.submodules.fifo = fifo = SyncFIFOBuffered(width=out_shape.width, depth=FIFO_DEPTH)
        m.d.comb += [
            self.o_stream.payload.as_value().eq(fifo.r_data),
            self.o_stream.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o_stream.ready),
        ]

        loading = Signal(init=1)
        count = Signal(range(max(self.n_in, self.n_entries) + 1))
        m.d.comb += [
            self.i_stream.ready.eq(loading | ~ready),
            x_write.addr.eq(count),
            x_write.data.eq(self.i_stream.payload[0]),
            x_write.en.eq(ready & loading & self.i_stream.valid),
        ]

        # stage A: issue entry `count` to the ROM while the FIFO has room for what is in flight
        issue = Signal()
        m.d.comb += issue.eq(~loading & (fifo.level <= FIFO_DEPTH - 1 - _IN_FLIGHT))
        m.d.comb += entry_addr.eq(Mux(ready, count, load_addr))
        with m.If(ready & loading & self.i_stream.valid):
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

        # stage C: reduce x_i + w (or x_i * w, or the fill) into the group's running max / min
        # (eq. 5) or sum
        x = x_read.data
        cand = Signal(sum_shape)
        m.d.comb += cand.eq(Mux(c_fill, c_value, self.candidate(x, c_value)))
        term = Signal(range(n_terms))
        first = Signal(init=1)              # this entry opens a group
        running = Signal(sum_shape)
        group = Signal(sum_shape)
        if reduce_sum:
            m.d.comb += group.eq(Mux(first, 0, running) + cand)
        else:
            is_max = Cat(*[Const(r == "max", 1) for r, _ in groups]).bit_select(term, 1)
            better = Mux(is_max, cand > running, cand < running)
            m.d.comb += group.eq(Mux(first | better, cand, running))
        acc = Signal(acc_shape)
        signed_group = Signal(acc_shape)
        is_neg = Cat(*[Const(sign < 0, 1) for _, sign in groups]).bit_select(term, 1)
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


def estimate_sparse(layer, in_type: ir.TensorType, entries, *, reduce_sum: bool,
                    storage: str = "rom") -> Resources:
    """iCE40 cost of a :class:`SparseEngine` walking ``entries`` (its ``make_entries(layer)``):
    the entry ROM and the input RAM in EBRs, and a datapath of registers, one adder, one
    comparator with its multiplexer (or, with ``reduce_sum``, groups that sum products
    ``x_i * w``: a multiplier) and the signed sum. With ``storage="loaded"`` the entries take
    SPRAM blocks instead, and the loader a shift register of one entry word and its counters."""
    n_entries = len(entries[0])
    index_bits, value_bits, sum_shape, acc_shape = _widths(layer, in_type, entries, reduce_sum)
    word = index_bits + value_bits + 2
    counter = max(1, int(max(layer.n_in, n_entries)).bit_length())
    out_bits = layer.out_type(in_type).bits
    lcs = (24 + 2 * counter + value_bits + 3 + 4 * sum_shape.width + 3 * acc_shape.width
           + (FIFO_DEPTH + 1) * out_bits + 8)
    dsp = 0
    if reduce_sum:
        product = value_bits + element_shape(in_type).width
        dsp = int(product >= DSP_MIN_PRODUCT_BITS)
        lcs += 0 if dsp else value_bits * element_shape(in_type).width
    if storage == "loaded":
        width = element_shape(in_type).width
        lcs += -(-word // width) * width + counter + 8
        entries_cost = Resources(spram=-(-word // SPRAM_WIDTH) * -(-n_entries // SPRAM_WORDS))
    else:
        entries_cost = rom_cost(n_entries, word, "bram")
    return (Resources(lcs, dsp=dsp) + entries_cost
            + rom_cost(layer.n_in, element_shape(in_type).width, "bram"))
