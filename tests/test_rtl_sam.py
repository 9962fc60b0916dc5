"""Sum-and-Max (sam, seed 002) designs as Verilog in a cocotb/Verilator simulation against the
golden model, and synthesized for iCE40: no multiplier in the SAM layer.

The RTL designs cover a fully parallel eq. 5 layer (constant weights, pruned, with empty rows)
in front of a binary-weight layer and an argmax, a folded eq. 5 layer with its weights in block
RAM and a folded eq. 4 layer with its weights in LUTs, both with their raw outputs compared.
Inputs are 3- and 4-bit codes and weights small, so that ties in the max and min terms are
frequent (counted in each test).
"""


import numpy as np
import pytest

from hwgen.hw.resources import Folding
from hwgen.sw.core import ir
from rtl_check import check_no_multiplier, check_rtl
from test_hw_sam import sam_layer, tie_fraction

N_VECTORS = 10_000


def with_empty_rows(rng, layer, rows):
    """``layer`` with every entry of ``rows[t]`` pruned in term t, and a random fill there."""
    terms = []
    for t, term in enumerate(layer.terms):
        keep, fill = term.keep.copy(), term.fill.copy()
        keep[list(rows[t])] = False
        fill[list(rows[t])] = rng.integers(-20, 21, len(rows[t]))
        terms.append(ir.SAMTerm(term.reduce, term.sign, term.weights, keep, fill))
    return ir.SAMLayer(layer.name, n=layer.n, terms=terms)


def vectors(rng, in_type, n):
    """Random codes; first every code at its minimum, at its maximum, and alternating."""
    x = rng.integers(in_type.lo, in_type.hi + 1, (N_VECTORS, n))
    x[0], x[1] = in_type.lo, in_type.hi
    x[2, ::2], x[2, 1::2] = in_type.lo, in_type.hi
    return x


@pytest.mark.rtl
def test_rtl_parallel_sam_binw_argmax(tmp_path):
    """SAM eq. 5, 32 -> 16, fully parallel, about 60 % pruned, rows empty in one term and in
    both -> dense_int_binw 16 -> 8 -> argmax, on signed 3-bit inputs."""
    rng = np.random.default_rng(61)
    s3 = ir.TensorType("signed", 3)
    layer = with_empty_rows(rng, sam_layer(rng, 32, 16, "max+min", prune=0.6, w_range=3),
                            [(0, 5), (0, 7)])
    fc = ir.DenseIntBinW("fc", weights=rng.integers(0, 2, (8, 16)))
    model = ir.Model(s3, 32, [layer, fc, ir.ArgMax("argmax", n=8)]).check()
    folding = {"sam": Folding(16, 32, "logic"), "fc": Folding(8, 16, "logic"),
               "argmax": Folding(1, 2)}
    x = vectors(rng, s3, 32)
    assert tie_fraction(layer, x[:500]) > 0.1
    expected = check_rtl(model, folding, x, tmp_path, seed=61)
    assert len(np.unique(expected)) >= 3


@pytest.mark.rtl
def test_rtl_folded_sam_eq5_bram(tmp_path):
    """SAM eq. 5, 64 -> 16 folded pe 4, simd 16 (16 steps), weights in block RAM, half
    pruned, empty rows in one term and in both (lanes empty at some neuron folds only)."""
    rng = np.random.default_rng(62)
    s4 = ir.TensorType("signed", 4)
    layer = with_empty_rows(rng, sam_layer(rng, 64, 16, "max+min", prune=0.5, w_range=4),
                            [(1, 6, 9), (1, 14)])
    model = ir.Model(s4, 64, [layer]).check()
    x = vectors(rng, s4, 64)
    assert tie_fraction(layer, x[:500]) > 0.1
    expected = check_rtl(model, {"sam": Folding(4, 16, "bram")}, x, tmp_path, seed=62)
    lo, hi = layer.out_bounds(s4)
    np.testing.assert_array_equal(expected[0], lo)          # eq. 5 reaches both ends
    np.testing.assert_array_equal(expected[1], hi)


@pytest.mark.rtl
def test_rtl_folded_sam_eq4_logic(tmp_path):
    """SAM eq. 4 (max - max), 16 -> 8 folded pe 2, simd 4 (16 steps), weights in LUTs, 80 %
    pruned (rows whose entries lie in one synapse fold), on unsigned 3-bit inputs."""
    rng = np.random.default_rng(63)
    u3 = ir.TensorType("unsigned", 3)
    layer = with_empty_rows(rng, sam_layer(rng, 16, 8, "max-max", prune=0.8, w_range=2),
                            [(3,), ()])
    model = ir.Model(u3, 16, [layer]).check()
    x = vectors(rng, u3, 16)
    assert tie_fraction(layer, x[:500]) > 0.1
    check_rtl(model, {"sam": Folding(2, 4, "logic")}, x, tmp_path, seed=63)


# --- synthesis ---------------------------------------------------------------------------------

@pytest.mark.synth
def test_synthesized_sam_engines_have_no_multiplier(tmp_path):
    """A fully parallel and a folded engine through yosys synth_ice40 and nextpnr's packer: no
    DSP (SB_MAC16), and no multiplication cell after yosys's word-level passes (adders merged
    into $macc cells are unmapped back to adds first, so a product would show); the estimate
    within the calibrated band."""
    rng = np.random.default_rng(64)
    s6 = ir.TensorType("signed", 6)
    cases = {
        "full": (sam_layer(rng, 16, 8, "max+min", prune=0.5, w_range=20),
                 Folding(8, 16, "logic")),
        "folded": (sam_layer(rng, 32, 8, "max+min", prune=0.5, w_range=20),
                   Folding(2, 8, "bram")),
    }
    for name, (layer, folding) in cases.items():
        check_no_multiplier(layer, s6, folding, tmp_path / name, ratio=(0.75, 1.3))
