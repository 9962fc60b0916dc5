"""``dense_mbbn``: a multi-branch binary dense layer (:class:`hwgen.sw.core.ir.DenseMBBN`),
M-bit odd inputs and K-bit odd weights.

:class:`MBBNEngine` is a :class:`hwgen.hw.kit.DenseEngine` over the M * K branches of digit
planes, spread over ``branch_folds`` cycles (:func:`branch_split`); :func:`estimate_dense_mbbn`
prices it. It is the only kind with branches: a folding's ``branch_folds`` divides M * K, and
the candidates try every divisor.

**Calibration.** The multi-branch kinds (``dense_mbbn``, ``multithreshold``) were checked the
same way as the dense kinds (:mod:`hwgen.hw.resources`), with yosys 0.70 ``synth_ice40 -dff``,
then nextpnr ``--pack-only``, on 20 engines: 64 -> 32 layers with multi-thresholds,
(M, K) = (1, 1), (2, 2), (3, 2), (4, 4), pe 1..8, simd 8..64, every branch mode; 32 -> 10
layers without; 64-element quantizers to odd 2 and odd 4 codes. For 17 of them the estimate
lies within 0.92 .. 1.23 times the packed cells; three layers of 8 or 10 neurons in parallel on
32 or 64 inputs a cycle came out 35-40 % below it (their popcounts cost nearer 1.2 cells per
bit). Their LUT ROMs are counted without a data register (yosys moves it to the address); EBR
counts of wide threshold ROMs are up to 43 % above yosys's packing.
"""

from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Cat, Module, Signal, Value

from hwgen.hw.kit import DenseEngine, FoldStep, check_fold, pack_bits, rom
from hwgen.hw.popcount import adder_tree, popcount
from hwgen.hw.registry import LayerHardware, divisors, fold_steps, register, reject
from hwgen.hw.resources import (POPCOUNT_LCS_PER_BIT, Folding, Resources, controller_cells,
                                lut_rom_cost, multi_threshold_cost)
from hwgen.sw.core import ir

__all__ = ["MBBNEngine", "branch_split", "estimate_dense_mbbn", "DenseMBBNHardware"]


def branch_split(m_bits: int, k_bits: int, branch_folds: int,
                 constant_weights: bool = False) -> tuple[int, int]:
    """How :class:`MBBNEngine` spreads M * K branches over ``branch_folds`` cycles.

    Returns ``(b_m, b_k)`` with ``b_m * b_k == branch_folds``, ``b_m`` dividing M and ``b_k``
    dividing K (every divisor of M * K splits so). A step takes every ``b_m``-th input digit
    plane and every ``b_k``-th weight digit plane. Spreading weight digits in time costs no
    multiplexer (the ROM word holds the planes a step needs), so ``b_k`` is made as large as
    possible; but when the weights would otherwise be constants (``constant_weights``: one
    neuron fold and one synapse fold), input digits go first, so they stay constants.
    """
    if m_bits * k_bits % branch_folds:
        raise ValueError(f"branch_folds must divide M * K = {m_bits * k_bits}, "
                         f"not {branch_folds!r}")
    if constant_weights:
        b_m = math.gcd(branch_folds, m_bits)
        return b_m, branch_folds // b_m
    b_k = math.gcd(branch_folds, k_bits)
    return branch_folds // b_k, b_k


class MBBNEngine(DenseEngine):
    """Multi-branch binary dense layer (:class:`hwgen.sw.core.ir.DenseMBBN`), M-bit odd inputs and
    K-bit odd weights.

    ``acc_j = sum_{m,k} 2^(m+k) popcount(xnor(x_m, w_jk))`` over digit planes (bit m of the
    input codes, bit k of the weight codes), ``simd`` inputs per cycle and neuron, ``pe``
    neurons in parallel, accumulated to the layer's exact accumulator range. With a
    :class:`hwgen.sw.core.ir.MultiThreshold` each output is the code ``#{l : acc >= t_l}`` (the
    flipped rows count ``acc <= t_l``) from L comparators, otherwise the accumulator.

    **Branches in time.** With ``branch_folds = b_m * b_k`` (:func:`branch_split`) a step
    ``bf = j * b_m + i`` computes the ``M K / branch_folds`` branches of input digits
    ``m = m' b_m + i`` and weight digits ``k = k' b_k + j``. Branch (m, k) is shifted by
    ``m + k = (m' b_m + k' b_k) + (i + j)``: the first part is fixed per branch unit, so it
    is wiring (units of one fixed shift share a single popcount over all their xnor bits),
    and the second is common to the whole step, so each neuron shifts its summed branches by
    ``i + j`` through one small shifter of ``ceil(log2(b_m + b_k - 1))`` multiplexer levels.
    The ``b_m`` input planes a unit takes in turn go through one multiplexer shared by all
    neurons; the weight ROM word of a step holds just the ``K / b_k`` weight planes it needs,
    one row per ``(nf, sf, j)``, addressed by the step address without its low bits when
    ``b_m`` is a power of two and by a row counter otherwise. With ``branch_folds == 1`` every
    branch is computed at once and every shift is wiring.

    Parameters
    ----------
    layer : DenseMBBN
    in_type : TensorType
        ``odd_type(layer.m_bits)``: bipolar for M = 1, odd M otherwise.
    pe : int
        Neurons in parallel; divides ``layer.n_out``.
    simd : int
        Inputs per cycle; divides ``layer.n_in``.
    weights : ``"logic"`` or ``"bram"``
        Weight and threshold ROMs in LUTs or in block RAM.
    branch_folds : int
        Cycles per synapse fold over which the M * K branches are spread; divides M * K.

    Members
    -------
    i_stream : ``In(stream.Signature(ArrayLayout(unsigned(M), n_in)))``
    o_stream : ``Out(stream.Signature(ArrayLayout(out_shape, n_out)))``
        The threshold's code type with a threshold, the accumulator type without.

    Latency is ``F + 4`` cycles and throughput one vector per ``F + 3`` cycles,
    ``F = (n_out / pe) * (n_in / simd) * branch_folds`` (see :class:`hwgen.hw.kit.FoldedEngine`).
    """

    def __init__(self, layer: ir.DenseMBBN, *, in_type: ir.TensorType, pe: int = 1,
                 simd: int = 1, weights: str = "logic", branch_folds: int = 1):
        check_fold("branch_folds", branch_folds, layer.m_bits * layer.k_bits,
                   "branch count M * K")
        super().__init__(layer, in_type=in_type, pe=pe, simd=simd, weights=weights,
                         branch_folds=branch_folds)
        self.b_m, self.b_k = branch_split(layer.m_bits, layer.k_bits, branch_folds,
                                          self.neuron_folds * self.synapse_folds == 1)

    def weight_bits(self) -> np.ndarray:
        # row (nf * synapse_folds + sf) * b_k + j, neuron p, bit k' * simd + s: digit
        # k' * b_k + j of the weight of neuron nf*pe+p, input sf*simd+s
        k_bits, b_k = self.layer.k_bits, self.b_k
        w = self.layer.weights.astype(np.int64)
        planes = (w[None] >> np.arange(k_bits)[:, None, None]) & 1
        planes = planes.reshape(k_bits // b_k, b_k, self.neuron_folds, self.pe,
                                self.synapse_folds, self.simd)
        rows = self.neuron_folds * self.synapse_folds * b_k
        return planes.transpose(2, 4, 1, 3, 0, 5).reshape(rows, self.pe,
                                                          k_bits // b_k * self.simd)

    def weight_rom(self, m: Module, step: FoldStep) -> tuple[Value, int]:
        # a weight row serves b_m consecutive steps (i is the innermost part of bf): with b_m
        # a power of two the row is the step address without its low bits, otherwise a row
        # counter moves on every b_m steps in lock step with the address
        bits = self.weight_bits()
        rows, pe, width = bits.shape
        words = pack_bits(bits.reshape(rows, pe * width))
        addr, b_m = step.addr, self.b_m
        if rows > 1 and b_m & (b_m - 1) == 0:
            addr = step.addr[b_m.bit_length() - 1:]
        elif rows > 1:
            addr = Signal(range(rows), name="weight_row")
            i = Signal(range(b_m), name="weight_i")
            with m.If(step.running):
                with m.If(step.addr == self.fold_steps - 1):
                    m.d.sync += [addr.eq(0), i.eq(0)]
                with m.Elif(i == b_m - 1):
                    m.d.sync += [addr.eq(addr + 1), i.eq(0)]
                with m.Else():
                    m.d.sync += i.eq(i + 1)
        return rom(m, "weights", words, pe * width, addr, self.weights), width

    def prepare(self, m: Module, step: FoldStep):
        """The input digit planes of the step's branch units, and the step's common shift."""
        m_bits, b_m, b_k, simd = self.layer.m_bits, self.b_m, self.b_k, self.simd
        # named signals, so that each neuron reads them rather than a copy of the expression
        chunk = Signal(simd * m_bits, name="x_chunk")
        m.d.comb += chunk.eq(step.x.as_value())
        planes = [Cat(*(chunk[s * m_bits + d] for s in range(simd))) for d in range(m_bits)]
        if self.branch_folds == 1:
            return planes, None
        i = Signal(range(b_m), name="branch_i")
        shift = Signal(range(b_m + b_k - 1), name="branch_shift")
        with m.Switch(step.bf):
            for bf in range(self.branch_folds):
                with m.Case(bf):
                    m.d.comb += [i.eq(bf % b_m), shift.eq(bf % b_m + bf // b_m)]
        if b_m == 1:
            return planes, shift
        # unit m' takes plane m' * b_m + i
        units = [Signal(simd, name=f"x_unit{u}") for u in range(m_bits // b_m)]
        for u, unit in enumerate(units):
            m.d.comb += unit.eq(Cat(*planes[u * b_m:(u + 1) * b_m]).word_select(i, simd))
        return units, shift

    def partial(self, m: Module, x, w: Value) -> Value:
        units, shift = x
        simd, b_m, b_k = self.simd, self.b_m, self.b_k
        groups: dict[int, list[Value]] = {}
        for u, xu in enumerate(units):
            for kp in range(len(w) // simd):
                groups.setdefault(u * b_m + kp * b_k, []).append(
                    ~(xu ^ w[kp * simd:(kp + 1) * simd]))
        # branches of one fixed shift share a popcount; the shifts are wiring. The xnor bits
        # are a named signal, so that the popcount's bit slices do not each copy the xnor.
        counts = []
        for c, bits in sorted(groups.items()):
            xnor = Signal(len(bits) * simd, name=f"xnor_s{c}")
            m.d.comb += xnor.eq(Cat(*bits))
            counts.append(popcount(m, xnor) << c)
        total = adder_tree(counts)
        return total if shift is None else total << shift


def estimate_dense_mbbn(layer: ir.DenseMBBN, in_type: ir.TensorType,
                        folding: Folding) -> Resources:
    """iCE40 cost of :class:`MBBNEngine` as it splits its branches (:func:`branch_split`): the
    weight ROM (and its row counter), per neuron the popcounts of its fixed shifts, their sum
    and the step's common shift, the accumulators, the shared input plane multiplexer, the
    multi-threshold and the controller."""
    pe, simd, bfs = folding.pe, folding.simd, folding.branch_folds
    m_bits, k_bits = layer.m_bits, layer.k_bits
    weight_rows = (layer.n_out // pe) * (layer.n_in // simd)   # ROM rows before branch folds
    b_m, b_k = branch_split(m_bits, k_bits, bfs, weight_rows == 1)
    m_par, k_par = m_bits // b_m, k_bits // b_k
    rows = weight_rows * b_k
    res = lut_rom_cost(rows, pe * k_par * simd, folding.weights)
    if rows > 1 and b_m & (b_m - 1):                  # a row counter (see MBBNEngine)
        res += Resources(math.ceil(math.log2(rows)) + b_m.bit_length())
    # per neuron: one popcount per fixed shift over all its xnor bits, the shifted counts
    # summed, then the step's common shift (a multiplexer level per bit of it)
    shifts = {u * b_m + kp * b_k for u in range(m_par) for kp in range(k_par)}
    bits = m_par * k_par * simd
    count_bits = (bits // len(shifts)).bit_length()
    sum_bits = count_bits + max(shifts) + math.ceil(math.log2(len(shifts)))
    xnor = bits if rows > 1 else 0                    # constant weights fold into the popcount
    per_neuron = (math.ceil(POPCOUNT_LCS_PER_BIT * bits) + xnor
                  + (len(shifts) - 1) * sum_bits
                  + math.ceil(math.log2(b_m + b_k - 1)) * sum_bits)
    acc = layer.acc_type(in_type)
    res += Resources(pe * (per_neuron + acc.bits))
    if b_m > 1:                                       # input plane multiplexer, shared
        res += Resources(round(2 / 3 * b_m * m_par * simd))
    if layer.threshold is not None:
        lo, hi = layer.acc_range(in_type)
        res += multi_threshold_cost(layer.threshold, lo, hi, layer.n_out // pe, pe, folding.weights)
    out_bits = layer.out_type(in_type).bits
    return res + Resources(controller_cells(layer, in_type.bits, out_bits, folding,
                                            fold_steps(layer, folding)))


@register(ir.DenseMBBN)
class DenseMBBNHardware(LayerHardware):
    """``dense_mbbn``: :class:`MBBNEngine`, priced by :func:`estimate_dense_mbbn`; dense folding
    rules with branch folds dividing M * K."""

    def check_branches(self, layer, folding):
        branches = layer.m_bits * layer.k_bits
        if branches % folding.branch_folds:
            reject(layer, f"branch_folds must divide the branch count M * K = {branches}, "
                   f"not {folding.branch_folds!r}")

    def branch_candidates(self, layer):
        return divisors(layer.m_bits * layer.k_bits)

    cost = staticmethod(estimate_dense_mbbn)

    def engine(self, layer, in_type, f):
        return MBBNEngine(layer, in_type=in_type, pe=f.pe, simd=f.simd, weights=f.weights,
                          branch_folds=f.branch_folds)
