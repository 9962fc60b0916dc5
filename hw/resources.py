"""Foldings, resources and the cost formulas that several layer kinds share.

A :class:`Folding` sets an engine's ``pe`` (neurons in parallel), ``simd`` (inputs per cycle),
``branch_folds`` (cycles over which a multi-branch layer's M * K branches are spread) and where
its weights live. :class:`Resources` is what an engine costs on an iCE40 UltraPlus; each layer
kind prices its engines in its own module (``hw/<kind>.py``), from the shared formulas
here, and :func:`hwgen.hw.registry.estimate` finds the kind's cost model.

The cost model counts iCE40 logic cells (one LUT4 + carry + flip-flop each) and 4 kbit EBRs. Its
coefficients are the usual iCE40 rules of thumb: a k-bit adder or comparator is k cells, a
popcount about 1.9 cells per input bit, an N:1 multiplexer about 2/3 cell per input per bit, a
LUT ROM one LUT4 per 16 words per bit plus its multiplexer, a register one cell per bit.
Checked against yosys ``synth_ice40`` on digits-scale engines (64x128 on 5-bit inputs, 128x128
bipolar, at several foldings): LUT4 counts within 10-40 % below the estimate, EBR counts exact,
and a whole 64-128-128-10 pipeline packed by nextpnr into 3223 cells against 3015 estimated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwgen.sw.core import ir

__all__ = ["WEIGHT_MODES", "SPARSE", "LOADED", "SERIAL", "SPRAM_WORDS", "SPRAM_WIDTH",
           "EBR_BITS", "EBR_WIDTHS", "DSP_BLOCKS", "DSP_WIDTH", "DSP_MIN_PRODUCT_BITS",
           "POPCOUNT_LCS_PER_BIT", "CONTROL_LCS", "Folding", "Resources", "serial_sides",
           "rom_cost", "lut_rom_cost", "controller_cells", "dense_cost", "multi_threshold_cost"]

#: Where a vector engine's weights (and threshold and other ROMs) live: LUTs or block RAM.
WEIGHT_MODES = ("logic", "bram")
#: The weight mode of the sparse SAM engine (entries walked from block RAM, serial streams).
SPARSE = "sparse"
#: The sparse SAM engine with its entries in a RAM (SPRAM) that the input stream loads after
#: reset (:mod:`hwgen.hw.sparse`, ``storage="loaded"``); only for the model's first layer.
LOADED = "loaded"
#: The weight mode of the serial-input MAC engine (a column of weights per input element).
SERIAL = "serial"
#: A SPRAM block of the iCE40 UltraPlus: 16,384 words of 16 bits.
SPRAM_WORDS, SPRAM_WIDTH = 16_384, 16

EBR_BITS = 4096
EBR_WIDTHS = (16, 8, 4, 2)       # 256x16, 512x8, 1024x4, 2048x2
DSP_BLOCKS = 8              # SB_MAC16 blocks of the iCE40 UP5K
DSP_WIDTH = 16              # an SB_MAC16 multiplies 16 x 16 bits
DSP_MIN_PRODUCT_BITS = 11   # synth_ice40 -dsp maps a $mul to an SB_MAC16 from this product width
POPCOUNT_LCS_PER_BIT = 1.9
CONTROL_LCS = 24                  # stream handshake, stage valids, fold counters' carry logic


def serial_sides(f: "Folding") -> tuple[bool, bool]:
    """Whether a layer folded by ``f`` takes its input, and gives its output, serially."""
    return f.weights in (SPARSE, LOADED, SERIAL), f.weights in (SPARSE, LOADED)


@dataclass(frozen=True)
class Folding:
    """``pe`` neurons in parallel, ``simd`` inputs per cycle, weights in ``"logic"`` or ``"bram"``,
    and ``branch_folds`` cycles per synapse fold.

    ``branch_folds`` spreads a ``dense_mbbn`` layer's M * K branches in time: 1 computes them
    all in parallel, M * K one per cycle; it divides M * K there and is 1 for every other kind.
    A ``multithreshold`` or ``qam_slicer`` layer has ``pe`` elements per cycle and no synapse
    fold, so its ``simd`` is 1; ``weights`` places a multithreshold's threshold ROM.
    ``weights = "sparse"`` (``sam`` and unthresholded ``dense_mac`` layers, ``pe = simd = 1``)
    selects a sparse engine, which walks
    the kept entries (nonzero weights) from block RAM one per cycle and takes and gives its
    vectors serially (:mod:`hwgen.hw.sparse`); ``weights = "serial"`` (unthresholded
    ``dense_mac``, ``simd = 1``) takes the input serially and gives the sums as a vector
    (:class:`hwgen.hw.dense_mac_serial.SerialMACEngine`). Whether a folding suits a layer
    is checked by :func:`hwgen.hw.registry.check_folding` (and by the engines).
    """

    pe: int = 1
    simd: int = 1
    weights: str = "logic"
    branch_folds: int = 1

    def __post_init__(self):
        for name in ("pe", "simd", "branch_folds"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if self.weights not in WEIGHT_MODES + (SPARSE, LOADED, SERIAL):
            raise ValueError(f"weights must be one of {WEIGHT_MODES + (SPARSE, LOADED, SERIAL)}, "
                             f"not {self.weights!r}")


@dataclass(frozen=True)
class Resources:
    """Logic cells, 4 kbit block RAMs, DSP blocks (SB_MAC16) and SPRAM blocks (SB_SPRAM256KA)."""

    lcs: int = 0
    ebr: int = 0
    dsp: int = 0
    spram: int = 0

    def __add__(self, other: "Resources") -> "Resources":
        return Resources(self.lcs + other.lcs, self.ebr + other.ebr, self.dsp + other.dsp,
                         self.spram + other.spram)

    def fits(self, *, lc_budget: int, ebr_budget: int, dsp_budget: int | None = None,
             spram_budget: int = 0) -> bool:
        return self.lcs <= lc_budget and self.ebr <= ebr_budget and \
            (dsp_budget is None or self.dsp <= dsp_budget) and self.spram <= spram_budget


def rom_cost(words: int, width: int, mode: str) -> Resources:
    """A ROM read one cycle after its address; a single word is a constant."""
    if words <= 1:
        return Resources()
    if mode == "bram":
        ebr = min(math.ceil(width / w) * math.ceil(words / (EBR_BITS // w)) for w in EBR_WIDTHS)
        return Resources(0, ebr)
    luts_per_bit = math.ceil(words / 16)
    return Resources(width * (2 * luts_per_bit - 1) + width)   # LUT tree + data register


def lut_rom_cost(words: int, width: int, mode: str) -> Resources:
    """:func:`rom_cost` as measured for the multi-branch kinds: yosys moves a LUT ROM's data
    register to its address (one register for all bits), so only the LUT tree counts."""
    res = rom_cost(words, width, mode)
    return res if mode == "bram" or words <= 1 else Resources(res.lcs - width, res.ebr)


def controller_cells(layer: ir.Layer, in_bits: int, out_bits: int, folding: Folding,
                     steps: int) -> int:
    """Cells of the fold-step controller (:class:`hwgen.hw.kit.FoldedEngine`) of ``layer``
    under ``folding``, ``steps`` its fold steps (:func:`hwgen.hw.registry.fold_steps`): the
    counters, the input and output registers and the synapse fold's chunk multiplexer."""
    sfs = layer.n_in // folding.simd
    counters = 3 * max(1, math.ceil(math.log2(steps + 1)))
    chunk_mux = round(2 / 3 * (sfs - 1) * folding.simd * in_bits)
    return (CONTROL_LCS + counters + layer.n_in * in_bits + layer.n_out * out_bits
            + chunk_mux)


def dense_cost(layer: ir.Layer, in_type: ir.TensorType, folding: Folding, per_neuron: int,
               steps: int) -> Resources:
    """A dense engine (:class:`hwgen.hw.kit.DenseEngine`) of ``steps`` fold steps whose
    neurons each cost ``per_neuron`` cells: the weight ROM, the datapaths and accumulators,
    the threshold ROM and comparators, the controller."""
    pe, simd = folding.pe, folding.simd
    acc = layer.acc_type(in_type)
    res = rom_cost(steps, pe * simd, folding.weights)
    res += Resources(pe * (per_neuron + acc.bits))              # datapath and accumulator
    if layer.threshold is not None:
        t_bits = ir.TensorType.for_range(*layer.acc_range(in_type)).bits + 2
        res += rom_cost(layer.n_out // pe, pe * t_bits, folding.weights)
        res += Resources(pe * t_bits)                            # comparator
    out_bits = layer.out_type(in_type).bits
    return res + Resources(controller_cells(layer, in_type.bits, out_bits, folding, steps))


def multi_threshold_cost(threshold, lo: int, hi: int, groups: int, pe: int,
                         mode: str) -> Resources:
    """ROM of ``groups`` words of ``pe`` rows, L comparators per row, the thermometer decode."""
    levels = threshold.t.reshape(len(threshold.flip), -1).shape[1]
    t_bits = ir.TensorType.for_range(lo - 1, hi + 2).bits
    res = lut_rom_cost(groups, pe * (levels * t_bits + 1), mode)
    # a comparator is a carry chain as wide as the accumulator, half that against a constant
    acc_bits = ir.TensorType.for_range(lo, hi).bits
    compare = acc_bits if groups > 1 else math.ceil(acc_bits / 2)
    return res + Resources(pe * (levels * compare + (levels if levels > 1 else 0)))
