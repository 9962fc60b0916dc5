"""``dense_mac``'s serial engine: a multiply-accumulate engine that takes its input one element at a
time.

Behind a serial engine (the sparse SAM engine, :mod:`hwgen.hw.sparse`) a wide layer's input
vector never exists as a register: each element ``x_j`` arrives alone, and the engine adds its
column ``w_:j x_j`` to the ``n_out`` accumulators, ``pe`` products per cycle, over
``n_out / pe`` cycles. The weights live in block RAM, one word of ``pe`` weights per
``(j, neuron fold)``; each lane's accumulators form a ring of ``n_out / pe`` registers that
turns once per element, so no multiplexer picks an accumulator. After the last element the
``n_out`` sums plus the bias leave as one vector.

The products are written as ``x * w`` of two signals; ``synth_ice40 -dsp`` maps each to an
iCE40 SB_MAC16 when it is wide enough (see :mod:`hwgen.hw.dense_mac`), else yosys builds
it in LUTs. Thresholded layers are not supported here (the layer after a SAM layer emits its
sums). The kind registers it for ``weights="serial"``
(:class:`hwgen.hw.dense_mac.DenseMACHardware`); this module holds the engine and its cost.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.hw.kit import element_shape, vector_layout
from hwgen.hw.resources import DSP_MIN_PRODUCT_BITS, Resources, rom_cost
from hwgen.sw.core import ir

__all__ = ["SerialMACEngine", "estimate_serial_mac"]


class SerialMACEngine(wiring.Component):
    """``acc_j = sum_i w_ji x_i + b_j`` with the input one element per transfer (module docs).

    Parameters
    ----------
    layer : DenseMAC
        Without a threshold.
    in_type : TensorType
        Signed or unsigned input elements.
    pe : int
        Products per cycle; divides ``n_out``.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(in_shape, 1)))``
        One element per transfer, element 0 first.
    o_stream : ``Out(stream.Signature(ArrayLayout(acc_shape, n_out)))``
        The sums, one vector per transfer.
    serial_in, serial_out : bool
        True, False.

    Each element takes ``n_out / pe + 1`` cycles; :attr:`interval` is
    ``n_in * (n_out / pe + 1)`` cycles per vector.
    """

    serial_in, serial_out = True, False

    def __init__(self, layer: ir.DenseMAC, *, in_type: ir.TensorType, pe: int = 1):
        if layer.threshold is not None:
            raise ValueError(f"{layer.name}: the serial MAC engine emits sums; a thresholded "
                             "dense_mac layer needs a vector engine")
        if not isinstance(pe, int) or pe < 1 or layer.n_out % pe:
            raise ValueError(f"pe must be a positive divisor of the output count {layer.n_out}, "
                             f"not {pe!r}")
        self.layer, self.in_type, self.pe = layer, in_type, pe
        self.n_in, self.n_out = layer.n_in, layer.n_out
        self.neuron_folds = layer.n_out // pe
        self.out_type = layer.out_type(in_type)
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(element_shape(in_type), 1))),
            "o_stream": Out(stream.Signature(vector_layout(self.out_type, layer.n_out))),
        })

    @property
    def interval(self) -> int:
        return self.n_in * (self.neuron_folds + 1)

    @property
    def latency(self) -> int:
        return self.neuron_folds + 3

    def weight_words(self) -> list[int]:
        """ROM word ``j * neuron_folds + nf``: the weights of outputs ``nf*pe .. nf*pe+pe-1``
        for input j, lane 0 lowest."""
        bits = self.layer.weight_type.bits
        w = self.layer.weights.reshape(self.neuron_folds, self.pe, self.n_in)
        mask = (1 << bits) - 1
        return [sum((int(w[nf, p, j]) & mask) << (p * bits) for p in range(self.pe))
                for j in range(self.n_in) for nf in range(self.neuron_folds)]

    def elaborate(self, platform) -> Module:
        m = Module()
        nfs, pe = self.neuron_folds, self.pe
        w_bits = self.layer.weight_type.bits
        acc_shape = element_shape(self.out_type)
        words = self.weight_words()
        m.submodules.weights = rom = Memory(shape=unsigned(pe * w_bits), depth=len(words),
                                            init=words, attrs={"rom_style": "block"})
        read = rom.read_port()

        x = Signal(element_shape(self.in_type))
        busy = Signal()                      # stage 0: an element's steps are being issued
        nf = Signal(range(nfs))
        j = Signal(range(self.n_in))
        addr = Signal(range(len(words)))
        o_valid = Signal()
        out = Signal.like(self.o_stream.payload)
        m.d.comb += [self.o_stream.valid.eq(o_valid), self.o_stream.payload.eq(out),
                     read.addr.eq(addr)]
        with m.If(self.o_stream.ready):
            m.d.sync += o_valid.eq(0)

        # the last element of a vector waits until the previous vector's sums are taken
        last_j = j == self.n_in - 1
        m.d.comb += self.i_stream.ready.eq(~busy & ~(last_j & o_valid))
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += [x.eq(self.i_stream.payload[0]), busy.eq(1), nf.eq(0)]
        with m.If(busy):
            m.d.sync += [addr.eq(addr + 1), nf.eq(nf + 1)]
            with m.If(nf == nfs - 1):
                m.d.sync += [busy.eq(0), j.eq(Mux(last_j, 0, j + 1))]
                with m.If(last_j):
                    m.d.sync += addr.eq(0)

        # stage 1: the word of (j, nf) is here; multiply-accumulate into each lane's ring head
        s1_valid, s1_first, s1_done = Signal(), Signal(), Signal()
        x1 = Signal.like(x)
        m.d.sync += [s1_valid.eq(busy), s1_first.eq(j == 0), x1.eq(x),
                     s1_done.eq(busy & (nf == nfs - 1) & last_j)]
        rings = [[Signal(acc_shape, name=f"acc{p}_{k}") for k in range(nfs)] for p in range(pe)]
        for p, ring in enumerate(rings):
            w = read.data[p * w_bits:(p + 1) * w_bits].as_signed()
            product = Signal(signed(w_bits + element_shape(self.in_type).width + 1),
                             name=f"product{p}")
            m.d.comb += product.eq(x1 * w)
            with m.If(s1_valid):
                # the head takes this step's product and moves to the tail
                m.d.sync += [ring[k].eq(ring[k + 1]) for k in range(nfs - 1)]
                m.d.sync += ring[-1].eq(Mux(s1_first, 0, ring[0]) + product)

        # after the last element's last step: the sums plus the bias leave as one vector
        s2_done = Signal()
        m.d.sync += s2_done.eq(s1_done)
        with m.If(s2_done):
            bias = self.layer.bias
            m.d.sync += [out[nf_ * pe + p].eq(rings[p][nf_] + int(bias[nf_ * pe + p]))
                         for p in range(pe) for nf_ in range(nfs)]
            m.d.sync += o_valid.eq(1)
        return m


def estimate_serial_mac(layer: ir.DenseMAC, in_type: ir.TensorType, pe: int) -> Resources:
    """iCE40 cost of :class:`SerialMACEngine`: the weight ROM in EBRs; the rings, the output
    register, one accumulate adder per lane and the control in cells; a product as wide as a
    DSP takes (:data:`hwgen.hw.resources.DSP_MIN_PRODUCT_BITS`) costs no cell, a narrower one
    about one cell per partial-product bit."""
    w_bits = layer.weight_type.bits
    x_bits = element_shape(in_type).width
    acc_bits = layer.out_type(in_type).bits
    nfs = layer.n_out // pe
    dsp = w_bits + x_bits >= DSP_MIN_PRODUCT_BITS
    product = 0 if dsp else w_bits * x_bits
    lcs = 40 + x_bits * 2 + 2 * layer.n_out * acc_bits + pe * (acc_bits + product)
    return Resources(lcs, dsp=pe if dsp else 0) + rom_cost(layer.n_in * nfs, pe * w_bits, "bram")
