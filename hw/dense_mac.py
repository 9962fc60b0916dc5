"""``dense_mac``: integer multiply-accumulate engines, DSP (SB_MAC16) and LUT multipliers.

:class:`DenseMACEngine` computes :class:`hwgen.sw.core.ir.DenseMAC`,
``acc_j = sum_i w_ji x_i + b_j`` on unsigned or signed inputs with signed weights of up to
16 bits, on the controller and pipeline of :class:`hwgen.hw.kit.FoldedEngine`. It is the
shared engine of every layer that really multiplies: the 10-output layer after a Sum-and-Max
layer, MAC hidden layers, 8-bit quantized networks with multi-thresholds.

Two multipliers:

* ``"dsp"``: every product is ``x * w`` with both operands signals, so that yosys
  ``synth_ice40 -dsp`` maps each of the ``pe * simd`` products to an SB_MAC16 (the UP5K has
  :data:`hwgen.hw.resources.DSP_BLOCKS`). Unsigned inputs are zero-extended to a signed operand
  one bit wider; both operands must be at most 16 bits signed and the product at least
  :data:`hwgen.hw.resources.DSP_MIN_PRODUCT_BITS` wide (yosys leaves narrower products to LUTs).
* ``"lut"``: no ``*`` at all; products are shift-and-add on unsigned input digits (see
  :class:`DenseMACEngine`).

:func:`mac_multiplier` is the rule the kind's engine factory (:meth:`DenseMACHardware.engine`,
through :func:`hwgen.hw.registry.engine`) applies (a :class:`hwgen.hw.resources.Folding` has no
multiplier field): ``"dsp"`` when the weights come from a ROM (more than one fold step), the
``pe * simd`` products fit the :data:`~hwgen.hw.resources.DSP_BLOCKS` SB_MAC16 of the UP5K and
their operands fit an SB_MAC16; ``"lut"`` otherwise (constant weights are cheaper as
shift-and-add of their nonzero digits than as DSPs).

:func:`estimate_dense_mac` prices an engine for :func:`hwgen.hw.folding.choose_folding` with the
same rule. A DSP-mapped product costs no logic cell; its SB_MAC16 are counted in
:attr:`hwgen.hw.resources.Resources.dsp` (``pe * simd`` for ``"dsp"``, see :func:`dsp_blocks`),
which :func:`~hwgen.hw.folding.choose_folding` checks against a DSP budget when it is given one.

Unthresholded layers also have :class:`SparseMACEngine` (``weights="sparse"``, an entry walk,
:mod:`hwgen.hw.sparse`) and :class:`~hwgen.hw.dense_mac_serial.SerialMACEngine`
(``weights="serial"``, the input one element at a time).

**Calibration.** Checked against yosys 0.69 ``synth_ice40 -dsp`` and nextpnr ``--pack-only``
(:func:`hwgen.boards.ooc.synth_ooc` with ``dsp=True``) on 22 engines with uniform random
8-bit weights and biases: :data:`MAC_LUT_LCS` and :data:`MAC_DSP_ADDER_LCS` were fitted on
the first 17, the last 5 were held out. Packed DSPs are exactly ``pe * simd`` for ``"dsp"`` and 0
for ``"lut"`` in every run; EBR counts are exact but for one (40 estimated, 39 packed).

=========  =====  ==========  =====  =========  =====  ======  ====
layer      input  (pe, simd)  ROMs   threshold  mult.  packed  est.
=========  =====  ==========  =====  =========  =====  ======  ====
64 -> 10   u8     (1, 8)      LUT               dsp    1941    0.98
64 -> 10   u8     (2, 4)      LUT               dsp    1985    0.98
64 -> 10   s8     (2, 4)      EBR               dsp    1312    1.02
64 -> 10   u8     (2, 4)      LUT    3 levels   dsp    1925    1.01
256 -> 10  u8     (1, 8)      LUT               dsp    6521    0.98
256 -> 10  u8     (2, 4)      LUT               dsp    6508    0.99
64 -> 10   u8     (10, 1)     LUT               lut    3556    1.04
64 -> 10   u8     (1, 8)      LUT               lut    3171    0.96
64 -> 10   s8     (2, 4)      LUT               lut    3168    0.98
64 -> 10   u8     (2, 4)      LUT    3 levels   lut    3130    0.99
64 -> 10   u8     (5, 4)      LUT               lut    5024    1.02
64 -> 10   u8     (2, 8)      EBR               lut    3838    0.99
256 -> 10  u8     (2, 8)      LUT               lut    8992    0.99
256 -> 10  s8     (1, 16)     LUT               lut    9058    0.97
16 -> 4    u8     (4, 16)     const             lut    2334    1.03
16 -> 4    s8     (4, 16)     const             lut    2456    1.01
32 -> 4    s8     (4, 32)     const             lut    4818    0.96
128 -> 10  u12    (5, 1)      LUT               dsp    4737    0.93
128 -> 10  s8     (1, 4)      EBR               dsp    2264    0.92
128 -> 10  u12    (2, 2)      LUT               lut    5343    0.97
32 -> 8    s8     (8, 32)     const  3 levels   lut    9041    1.01
96 -> 16   u8     (4, 12)     EBR    3 levels   lut    9601    1.01
=========  =====  ==========  =====  =========  =====  ======  ====

("packed": ICESTORM_LC; "est.": estimate / packed; "const": one fold step, constant weights;
the multi-thresholds emit 2-bit codes.) The estimate lies within 0.92 .. 1.04 times the packed
cells; the held-out DSP engines on 128 inputs come out lowest. At one folding the DSPs save
about 150 cells per 8 x 8 product (64 -> 10 at (2, 4): 1985 cells and 8 DSPs on u8 inputs,
3168 cells in LUTs on s8). A fully parallel 64 -> 10 layer in LUTs (640 constant products,
another weight draw, not in the table) packed into 22,171 cells after 5.5 minutes of yosys.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed

from hwgen.hw.dense_mac_serial import SerialMACEngine, estimate_serial_mac
from hwgen.hw.kit import (DenseEngine, FoldStep, Term, add_terms, element_shape, pack, rom,
                          single_branch, threshold_rom, thresholded)
from hwgen.hw.popcount import adder_tree
from hwgen.hw.registry import LayerHardware, divisors, fold_steps, register
from hwgen.hw.resources import (DSP_BLOCKS, DSP_MIN_PRODUCT_BITS, DSP_WIDTH, LOADED, SERIAL,
                                SPARSE, Folding, Resources, controller_cells, lut_rom_cost,
                                multi_threshold_cost)
from hwgen.hw.sparse import SparseEngine, estimate_sparse
from hwgen.sw.core import ir

__all__ = ["MULTIPLIERS", "DenseMACEngine", "operand_bits", "csd_digits", "mac_multiplier",
           "dsp_blocks", "estimate_dense_mac", "mac_entries", "SparseMACEngine",
           "DenseMACHardware"]

MULTIPLIERS = ("dsp", "lut")

# estimate coefficients, packed cells per counted cell, fitted to the runs in the module docs
MAC_LUT_LCS = 1.17          # LUT multiplier: a gated digit bit, or a sum bit of its trees
MAC_DSP_ADDER_LCS = 1.6     # a sum bit of the adder tree over the DSP products


def operand_bits(in_type: ir.TensorType) -> int:
    """Width of an input element as a signed multiplier operand: unsigned ones gain a zero
    bit."""
    return in_type.bits + (in_type.kind == "unsigned")


def csd_digits(c: int) -> list[tuple[int, int]]:
    """Canonical signed digits of ``c``: ``(k, d)`` with ``d`` in {-1, +1} and
    ``c == sum d 2^k``, no two nonzero digits adjacent (so at most ``ceil((b + 1) / 2)`` of
    them for a b-bit two's complement ``c``)."""
    digits, k = [], 0
    c = int(c)
    while c:
        if c & 1:
            d = 2 - (c & 3)          # +1 when c = 1 mod 4, -1 when c = 3 mod 4
            digits.append((k, d))
            c -= d
        c >>= 1
        k += 1
    return digits


def _dsp_fits(layer: ir.DenseMAC, in_type: ir.TensorType) -> bool:
    """Whether one SB_MAC16 holds a product: operands 2 .. 16 bits signed, product wide
    enough for yosys to map it (narrower ones stay in LUTs)."""
    a, b = operand_bits(in_type), layer.weight_type.bits
    return 2 <= a <= DSP_WIDTH and 2 <= b <= DSP_WIDTH and a + b >= DSP_MIN_PRODUCT_BITS


def mac_multiplier(layer: ir.DenseMAC, in_type: ir.TensorType, f: Folding) -> str:
    """The multiplier the engine factory (:meth:`DenseMACHardware.engine`) gives ``layer``
    under ``f``: ``"dsp"`` when its weights come from a ROM (more than one fold step), its
    ``pe * simd`` products fit the UP5K's :data:`~hwgen.hw.resources.DSP_BLOCKS` SB_MAC16 and
    each product fits one (:data:`~hwgen.hw.resources.DSP_WIDTH`,
    :data:`~hwgen.hw.resources.DSP_MIN_PRODUCT_BITS`); ``"lut"`` otherwise."""
    steps = (layer.n_out // f.pe) * (layer.n_in // f.simd)
    if steps > 1 and f.pe * f.simd <= DSP_BLOCKS and _dsp_fits(layer, in_type):
        return "dsp"
    return "lut"


def dsp_blocks(layer: ir.DenseMAC, in_type: ir.TensorType, f: Folding) -> int:
    """SB_MAC16 blocks the factory's engine for ``layer`` under ``f`` takes (``pe * simd`` with
    the DSP multiplier, else 0), as :attr:`hwgen.hw.resources.Resources.dsp` counts them."""
    return f.pe * f.simd if mac_multiplier(layer, in_type, f) == "dsp" else 0


def _digits(in_type: ir.TensorType, multiplier: str) -> tuple[int, int, int]:
    """``(beta, dlo, dhi)``: each input value is ``digit + beta``, the digit in ``dlo .. dhi``.

    The DSP multiplier takes the values themselves; the LUT multiplier unsigned digits, the
    code itself for unsigned inputs and for signed ones the code with its top bit flipped
    (``x + 2^(B-1)``), so that no partial product needs sign extension."""
    if multiplier == "dsp" or in_type.kind == "unsigned":
        return 0, in_type.lo, in_type.hi
    return in_type.lo, 0, (1 << in_type.bits) - 1


def _sums(layer: ir.DenseMAC, in_type: ir.TensorType,
          multiplier: str) -> tuple[int, int, np.ndarray, int, int]:
    """``(beta, dhi, offsets, sum_lo, sum_hi)`` of an engine: the digits' offset and largest
    digit (:func:`_digits`), ``c_j = b_j + beta sum_i w_ji``, and the range of the sums of
    products over digits (and of every partial sum: each term's range holds 0) over all
    neurons."""
    beta, dlo, dhi = _digits(in_type, multiplier)
    w = layer.weights
    offsets = layer.bias + beta * w.sum(axis=1)
    lo = np.minimum(w * dlo, w * dhi).sum(axis=1)
    hi = np.maximum(w * dlo, w * dhi).sum(axis=1)
    return beta, dhi, offsets, int(lo.min(initial=0)), int(hi.max(initial=0))


def _fold_weights(layer: ir.DenseMAC, pe: int, simd: int) -> np.ndarray:
    """(fold_steps, pe, simd) weights: lane p, input s of step nf * synapse_folds + sf."""
    nf, sf = layer.n_out // pe, layer.n_in // simd
    w = layer.weights.reshape(nf, pe, sf, simd)
    return w.transpose(0, 2, 1, 3).reshape(nf * sf, pe, simd)


def _named(m: Module, value: Value, name: str) -> Signal:
    """``value`` as a named signal, so that the Verilog reads it rather than repeating the
    expression wherever it is sliced."""
    sig = Signal(len(value), name=name)
    m.d.comb += sig.eq(value)
    return sig


def _sum_named(m: Module, terms: list[Term], name: str) -> Value:
    """:func:`hwgen.hw.kit.sum_terms` with every partial sum a named signal: the same
    tree (unsigned terms, like sizes paired first, exact widths, shifts as wiring), whose
    Verilog grows linearly with the terms (sliced expressions would be repeated)."""
    if not terms:
        return Const(0, 1)
    level = 0
    while len(terms) > 1:
        terms = sorted(terms, key=lambda t: (int(t.bound.max()), t.shift))
        paired = []
        for i in range(0, len(terms) - 1, 2):
            t = add_terms(terms[i], terms[i + 1])
            paired.append(Term(_named(m, t.value, f"{name}_l{level}_{i // 2}"), t.shift,
                               t.bound))
        terms = paired + terms[len(paired) * 2:]
        level += 1
    t = terms[0]
    return Cat(Const(0, t.shift), t.value) if t.shift else t.value


class DenseMACEngine(DenseEngine):
    """Integer multiply-accumulate dense layer (:class:`hwgen.sw.core.ir.DenseMAC`).

    ``acc_j = sum_i w_ji x_i + b_j``: per cycle and neuron, ``simd`` products summed by an
    adder tree into the neuron's accumulator, ``pe`` neurons in parallel. The accumulators
    hold the sum of products ``S_j`` over input *digits* (``x_i = d_i + beta``, see below),
    exactly, as wide as its range over the layer's neurons; ``acc_j = S_j + c_j`` with the
    per-neuron constant ``c_j = b_j + beta sum_i w_ji``. Without a threshold the output is
    ``S_j + c_j`` (the layer's accumulator type), ``c`` read from a ROM of one word per neuron
    fold with the last step's ``nf`` (a constant with one neuron fold; no adder when every
    ``c_j`` is 0). With a (multi-)threshold ``c`` is folded into the levels at elaboration
    (``acc >= t  <=>  S >= t - c``), and the shared threshold ROM and comparators of
    :mod:`hwgen.hw.kit` compare ``S``.

    **Weights.** A ROM of one word per fold step, ``pe * simd`` two's complement fields of
    ``layer.weight_type.bits`` bits (lane ``p``, input ``s`` at field ``p * simd + s``).

    **DSP multiplier** (``"dsp"``): digits are the input values (``beta = 0``), unsigned ones
    zero-extended to a signed operand (:func:`operand_bits`), and each product is
    ``x * w`` of two signals, which ``synth_ice40 -dsp`` maps to one SB_MAC16: ``pe * simd``
    of them. With a single fold step the weight word is a register loaded with the constant
    word each cycle; it resets to the word's complement, so that no bit of it is a constant
    to yosys (which would turn a product into logic, or drop a zero weight's); nothing reads
    it in the cycle after a reset. Operands must fit 16 x 16 bits signed (checked); products
    narrower than :data:`~hwgen.hw.resources.DSP_MIN_PRODUCT_BITS` are left in LUTs by yosys.

    **LUT multiplier** (``"lut"``): there is no ``*``. Digits are unsigned: the code for
    unsigned inputs, ``x + 2^(B-1)`` (the code with its top bit inverted) for signed ones, so
    ``beta = -2^(B-1)``. A product is a sum of the digit shifted by the weight's digit
    positions, and a neuron's partial sum is ``P - N``, P and N the sums of its positive and
    negative shifted digits (unsigned terms, summed by :func:`_sum_named` with exact widths,
    shifts as wiring):

    * constant weights (one fold step): the canonical signed digits of each weight
      (:func:`csd_digits`, at most ``ceil((b + 1) / 2)`` nonzero for b bits), zero weights
      no logic;
    * ROM weights: bit k of the two's complement field gates the digit shifted by k into P
      (``k < b - 1``) or into N (the sign bit, worth ``-2^(b-1)``); a bit that is 0 at every
      fold step of its lane and input is left out, one that is always 1 needs no gate.

    Parameters
    ----------
    layer : DenseMAC
    in_type : TensorType
        Unsigned or signed input elements.
    pe : int
        Neurons in parallel; divides ``layer.n_out``.
    simd : int
        Inputs per cycle; divides ``layer.n_in``.
    weights : ``"logic"`` or ``"bram"``
        Weight, bias and threshold ROMs in LUTs or in block RAM.
    multiplier : ``"dsp"`` or ``"lut"``
        SB_MAC16 products or shift-and-add (see above).

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(in_shape, n_in)))``
    o_stream : ``Out(stream.Signature(ArrayLayout(out_shape, n_out)))``
        The threshold's code type with a threshold, the layer's accumulator type without.
    multiplier : str
    offsets : numpy.ndarray
        ``c_j`` per neuron, int64 (n_out,).
    sum_lo, sum_hi : int
        Range of ``S`` (and of its partial sums) over every neuron.

    Latency is ``F + 4`` cycles and throughput one vector per ``F + 3`` cycles,
    ``F = (n_out / pe) * (n_in / simd)`` (see :class:`hwgen.hw.kit.FoldedEngine`).
    """

    def __init__(self, layer: ir.DenseMAC, *, in_type: ir.TensorType, pe: int = 1,
                 simd: int = 1, weights: str = "logic", multiplier: str = "lut"):
        if multiplier not in MULTIPLIERS:
            raise ValueError(f"multiplier must be one of {MULTIPLIERS}, not {multiplier!r}")
        super().__init__(layer, in_type=in_type, pe=pe, simd=simd, weights=weights)
        self.multiplier = multiplier
        self.w_bits = layer.weight_type.bits
        if multiplier == "dsp" and operand_bits(in_type) > DSP_WIDTH:
            raise ValueError(f"{layer.name}: a {in_type.to_json()} input is a "
                             f"{operand_bits(in_type)}-bit signed operand, wider than an "
                             f"SB_MAC16's {DSP_WIDTH} bits")
        self.beta, self.dhi, self.offsets, self.sum_lo, self.sum_hi = \
            _sums(layer, in_type, multiplier)

    def _weight_word(self, m: Module, step: FoldStep) -> Value:
        """The step's weight word in stage 1; with the DSP multiplier never a constant."""
        w = _fold_weights(self.layer, self.pe, self.simd)
        width = self.pe * self.simd * self.w_bits
        words = [pack(row.tolist(), self.w_bits) for row in w.reshape(len(w), -1)]
        word = rom(m, "weights", words, width, step.addr, self.weights)
        if self.multiplier == "dsp" and isinstance(word, Const):
            # every bit resets to its complement, so no bit is a constant to yosys
            reg = Signal(width, name="weights_reg", init=word.value ^ ((1 << width) - 1))
            m.d.sync += reg.eq(word)
            return reg
        return word

    def _dsp_parts(self, m: Module, step: FoldStep, word: Value) -> list[Value]:
        simd, wb = self.simd, self.w_bits
        ab = operand_bits(self.in_type)
        xs = []
        for s in range(simd):
            x = Signal(signed(ab), name=f"operand{s}")
            m.d.comb += x.eq(step.x[s] if self.in_type.kind == "signed" else
                             Cat(step.x[s], Const(0, 1)).as_signed())
            xs.append(x)
        parts = []
        for p in range(self.pe):
            base = p * simd * wb
            parts.append(adder_tree([xs[s] * word[base + s * wb:base + (s + 1) * wb].as_signed()
                                     for s in range(simd)]))
        return parts

    def _lut_digits(self, m: Module, step: FoldStep) -> list[Value]:
        """Per input of the chunk, its unsigned digit (shared by the ``pe`` neurons)."""
        flip = 1 << (self.in_type.bits - 1) if self.in_type.kind == "signed" else 0
        digits = []
        for s in range(self.simd):
            z = Signal(self.in_type.bits, name=f"digit{s}")
            m.d.comb += z.eq(step.x[s].as_unsigned() ^ flip)
            digits.append(z)
        return digits

    def _lut_terms(self, m: Module, digits: list[Value], word: Value,
                   p: int) -> tuple[list, list]:
        """Lane p's positive and negative shifted digits (see the class docs)."""
        w = _fold_weights(self.layer, self.pe, self.simd)[:, p, :]      # (fold_steps, simd)
        zmax, wb = self.dhi, self.w_bits
        pos, neg = [], []
        for s in range(self.simd):
            if len(w) == 1:
                for k, d in csd_digits(int(w[0, s])):
                    (pos if d > 0 else neg).append(
                        Term(digits[s], k, np.array([zmax << k], dtype=np.int64)))
                continue
            for k in range(wb):
                bit = (w[:, s] >> k) & 1
                if not bit.any():
                    continue
                z = digits[s] if bit.all() else _named(
                    m, Mux(word[(p * self.simd + s) * wb + k], digits[s], 0), f"pp{p}_{s}_{k}")
                (neg if k == wb - 1 else pos).append(
                    Term(z, k, np.where(bit == 1, zmax << k, 0).astype(np.int64)))
        return pos, neg

    def _lut_parts(self, m: Module, step: FoldStep, word: Value | None) -> list[Value]:
        digits = self._lut_digits(m, step)
        parts = []
        for p in range(self.pe):
            pos, neg = self._lut_terms(m, digits, word, p)
            total = _sum_named(m, pos, f"pos{p}")
            if neg:
                total = total - _sum_named(m, neg, f"neg{p}")
            parts.append(total)
        return parts

    def datapath(self, m: Module, step: FoldStep) -> list[Value]:
        pe = self.pe
        if self.multiplier == "dsp":
            parts = self._dsp_parts(m, step, self._weight_word(m, step))
        else:
            word = self._weight_word(m, step) if self.fold_steps > 1 else None
            parts = self._lut_parts(m, step, word)
        s_shape = element_shape(ir.TensorType.for_range(self.sum_lo, self.sum_hi))
        accs = [Signal(s_shape, name=f"acc{p}") for p in range(pe)]
        for acc, part in zip(accs, parts):
            with m.If(step.valid):
                m.d.sync += acc.eq(Mux(step.first, 0, acc) + part)
        threshold = self.layer.threshold
        if threshold is not None:
            t_word, t_type, levels = threshold_rom(m, self._moved_threshold(), self.sum_lo,
                                                   self.sum_hi, pe, step.nf, self.weights)
            return thresholded(accs, t_word, t_type, levels)
        return self._biased(m, step, accs)

    def _moved_threshold(self):
        """The layer's (multi-)threshold on ``S``: ``S + c >= t  <=>  S >= t - c`` (and
        likewise ``<=`` on flipped rows); rows stay sorted."""
        th = self.layer.threshold
        if th.t.ndim == 1:
            return ir.Threshold(th.t - self.offsets, th.flip)
        return ir.MultiThreshold(th.t - self.offsets[:, None], th.flip, th.out)

    def _biased(self, m: Module, step: FoldStep, accs: list[Value]) -> list[Value]:
        """``S + c`` per lane, ``c`` read with the last step's nf like a threshold word."""
        pe, c = self.pe, self.offsets
        shape = element_shape(self.acc_type)
        cb = ir.signed_bits(min(0, int(c.min())), max(0, int(c.max())))
        if c.any():
            words = [pack(c[g * pe:(g + 1) * pe].tolist(), cb)
                     for g in range(self.neuron_folds)]
            c_word = rom(m, "bias", words, pe * cb, step.nf, self.weights)
        outs = []
        for p, acc in enumerate(accs):
            out = Signal(shape, name=f"out{p}")
            value = acc + c_word[p * cb:(p + 1) * cb].as_signed() if c.any() else acc
            m.d.comb += out.eq(value)
            outs.append(out)
        return outs


# --- cost estimate ---------------------------------------------------------------------------

def _tree_cells(terms: list[tuple[np.ndarray, int]]) -> float:
    """Cells of the tree :func:`_sum_named` builds over unsigned terms
    ``(bound per fold step, shift)``: a cell per sum bit above the pass-through low bits."""
    terms = [(b.astype(np.int64), s) for b, s in terms]
    cells = 0
    while len(terms) > 1:
        terms = sorted(terms, key=lambda t: (int(t[0].max()), t[1]))
        paired = []
        for (ba, sa), (bb, sb) in zip(terms[0:len(terms) - 1:2], terms[1::2]):
            if sa > sb:
                (ba, sa), (bb, sb) = (bb, sb), (ba, sa)
            d = sb - sa
            if ir.unsigned_bits(int(ba.max()) >> sa) > d:
                cells += ir.unsigned_bits(int((ba + bb).max()) >> sa) - d
            paired.append((ba + bb, sa))
        terms = paired + terms[len(paired) * 2:]
    return cells


def _lut_lane_cells(w: np.ndarray, zmax: int, wb: int) -> tuple[float, float]:
    """(gates, adder cells) of one lane of the LUT multiplier; ``w`` (fold_steps, simd)."""
    pos, neg, gates = [], [], 0
    for s in range(w.shape[1]):
        if len(w) == 1:
            for k, d in csd_digits(int(w[0, s])):
                (pos if d > 0 else neg).append((np.array([zmax << k]), k))
            continue
        for k in range(wb):
            bit = (w[:, s] >> k) & 1
            if bit.any():
                gates += 0 if bit.all() else ir.unsigned_bits(zmax)
                (neg if k == wb - 1 else pos).append((np.where(bit == 1, zmax << k, 0), k))
    cells = _tree_cells(pos) + _tree_cells(neg)
    if pos and neg:
        cells += ir.unsigned_bits(int(sum(b for b, _ in pos).max())) + 1     # P - N
    return gates, cells


def estimate_dense_mac(layer: ir.DenseMAC, in_type: ir.TensorType, f: Folding, *,
                       multiplier: str | None = None) -> Resources:
    """iCE40 cost of a :class:`DenseMACEngine` for ``layer`` under ``f``, from its actual
    weights: the engine factory's engine (multiplier by :func:`mac_multiplier`) unless
    ``multiplier`` is given.

    Weight ROM as :func:`hwgen.hw.resources.lut_rom_cost` (a register with the DSP multiplier and
    one fold step, whose bits yosys merges into two flip-flops); DSP products cost no cell
    (nor are they counted: see :func:`dsp_blocks`), their adder tree a cell per sum bit; LUT
    products are the gates and the shift-and-add trees as the engine builds them;
    accumulators as wide as ``S``; threshold ROM, comparators and decode as for the other
    kinds, or the bias ROM and its adder; the controller. Cells counted per product are
    scaled by :data:`MAC_LUT_LCS` and :data:`MAC_DSP_ADDER_LCS`, fitted to the module docs'
    runs.
    """
    pe, simd, mode = f.pe, f.simd, f.weights
    steps = fold_steps(layer, f)
    if multiplier is None:
        multiplier = mac_multiplier(layer, in_type, f)
    elif multiplier not in MULTIPLIERS:
        raise ValueError(f"multiplier must be one of {MULTIPLIERS}, not {multiplier!r}")
    _, zmax, offsets, sum_lo, sum_hi = _sums(layer, in_type, multiplier)
    wb = layer.weight_type.bits
    res = Resources()
    if steps > 1:
        res += lut_rom_cost(steps, pe * simd * wb, mode)
    elif multiplier == "dsp":
        res += Resources(2)     # the weight register: its bits merge into two flip-flops
    if multiplier == "dsp":
        product = operand_bits(in_type) + wb
        tree = (simd - 1) * (product + math.ceil(math.log2(simd)) / 2) if simd > 1 else 0
        res += Resources(round(MAC_DSP_ADDER_LCS * pe * tree))
    else:
        w = _fold_weights(layer, pe, simd)
        gates = cells = 0.0
        for p in range(pe):
            g, c = _lut_lane_cells(w[:, p, :], zmax, wb)
            gates, cells = gates + g, cells + c
        res += Resources(round(MAC_LUT_LCS * (gates + cells)))
    s_bits = ir.TensorType.for_range(sum_lo, sum_hi).bits
    res += Resources(pe * s_bits)                                   # accumulators
    if layer.threshold is not None:
        res += multi_threshold_cost(layer.threshold, sum_lo, sum_hi,
                                    layer.n_out // pe, pe, mode)
    elif offsets.any():
        acc_bits = layer.acc_type(in_type).bits
        c = offsets
        cb = ir.signed_bits(min(0, int(c.min())), max(0, int(c.max())))
        res += lut_rom_cost(layer.n_out // pe, pe * cb, mode) + Resources(pe * acc_bits)
    out_bits = layer.out_type(in_type).bits
    return res + Resources(controller_cells(layer, in_type.bits, out_bits, f, steps),
                           dsp=pe * simd if multiplier == "dsp" else 0)


# --- the sparse engine -----------------------------------------------------------------------

def mac_entries(layer: ir.DenseMAC) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The entry list of a ``dense_mac`` layer, as :func:`hwgen.hw.sam.sam_entries`:
    per output, a fill entry holding the bias when it is not 0 (or when the row has no nonzero
    weight), then every nonzero weight by input index."""
    index, value, last, fill = [], [], [], []
    for j in range(layer.n_out):
        cols = np.flatnonzero(layer.weights[j])
        head = int(layer.bias[j]) != 0 or len(cols) == 0
        if head:
            index.append(0)
            value.append(int(layer.bias[j]))
            fill.append(1)
        index.extend(cols.tolist())
        value.extend(layer.weights[j, cols].tolist())
        fill.extend([0] * len(cols))
        last.extend([0] * (head + len(cols) - 1) + [1])
    return tuple(np.array(a, dtype=np.int64) for a in (index, value, last, fill))


class SparseMACEngine(SparseEngine):
    """Sparse folded ``dense_mac`` layer (:class:`hwgen.sw.core.ir.DenseMAC` without a
    threshold): the walk of :class:`hwgen.hw.sparse.SparseEngine` over :func:`mac_entries`, each
    candidate the product ``x_i * w``, each output the sum of its entries. Same streams and
    timing as :class:`hwgen.hw.sam.SparseSAMEngine`."""

    make_entries = staticmethod(mac_entries)

    def __init__(self, layer: ir.DenseMAC, *, in_type: ir.TensorType, storage: str = "rom"):
        if layer.threshold is not None:
            raise ValueError(f"{layer.name}: the sparse MAC engine emits sums; a thresholded "
                             "dense_mac layer needs a vector engine")
        super().__init__(layer, in_type=in_type, storage=storage)

    def groups(self) -> list[tuple[str, int]]:
        return [("sum", 1)]

    def candidate(self, x, value):
        return x * value


# --- registration ----------------------------------------------------------------------------

@register(ir.DenseMAC)
class DenseMACHardware(LayerHardware):
    """``dense_mac``: :class:`DenseMACEngine` (``"logic"``, ``"bram"``), priced by
    :func:`estimate_dense_mac`; without a threshold also :class:`SparseMACEngine` (``"sparse"``,
    ``pe = simd = 1``), priced by :func:`hwgen.hw.sparse.estimate_sparse`, and
    :class:`~hwgen.hw.dense_mac_serial.SerialMACEngine` (``"serial"``, ``simd = 1``),
    priced by :func:`~hwgen.hw.dense_mac_serial.estimate_serial_mac`."""

    def weights_suit(self, layer, folding):
        if folding.weights == SPARSE:
            return folding.pe == 1 and folding.simd == 1 and layer.threshold is None
        if folding.weights == SERIAL:
            return folding.simd == 1 and layer.threshold is None
        return super().weights_suit(layer, folding)

    def steps(self, layer, folding):
        if folding.weights in (SPARSE, LOADED):
            # the load of the serial input, then one entry per cycle
            return layer.n_in + len(mac_entries(layer)[0])
        if folding.weights == SERIAL:
            return layer.n_in * (layer.n_out // folding.pe + 1)
        return super().steps(layer, folding)

    def special_candidates(self, layer):
        if layer.threshold is not None:
            return []
        return [Folding(1, 1, SPARSE)] + [Folding(pe, 1, SERIAL) for pe in divisors(layer.n_out)]

    def estimate(self, layer, in_type, f):
        if f.weights == LOADED:
            return estimate_sparse(layer, in_type, mac_entries(layer), reduce_sum=True,
                                   storage="loaded")
        if f.weights == SPARSE:
            return estimate_sparse(layer, in_type, mac_entries(layer), reduce_sum=True)
        if f.weights == SERIAL:
            return estimate_serial_mac(layer, in_type, f.pe)
        return estimate_dense_mac(layer, in_type, f)

    def engine(self, layer, in_type, f):
        if f.weights == LOADED:
            self.check_folding(layer, f)        # loaded entries are for sam layers: raises
            return SparseMACEngine(layer, in_type=in_type, storage="loaded")
        if f.weights == SPARSE:
            self.check_folding(layer, f)
            return SparseMACEngine(layer, in_type=in_type)
        if f.weights == SERIAL:
            self.check_folding(layer, f)
            return SerialMACEngine(layer, in_type=in_type, pe=f.pe)
        single_branch(layer, f)
        return DenseMACEngine(layer, in_type=in_type, pe=f.pe, simd=f.simd, weights=f.weights,
                              multiplier=mac_multiplier(layer, in_type, f))
