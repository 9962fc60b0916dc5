"""Shift-accumulate (dense_shift) designs as Verilog in a cocotb/Verilator simulation against the
golden model, and synthesized for iCE40: no multiplier anywhere.

The RTL designs cover pow2 inputs with a multi-threshold to pow2 codes (weights in LUTs),
unsigned inputs with the raw signed accumulator out (fully parallel: constant weights), signed
inputs with large exponents folded through block RAM, and a two-layer pow2 model with argmax.
"""

import numpy as np
import pytest

from hwgen.hw.resources import Folding
from hwgen.sw.core import golden, ir
from rtl_check import check_no_multiplier, check_rtl
from test_hw_shift import quantile_threshold, shift_weights

N_VECTORS = 10_000


def shift_layer(rng, name, in_type, n_in, n_out, *, out=None, e_max=3, probe=None):
    layer = ir.DenseShift(name, weights=shift_weights(rng, n_out, n_in, e_max=e_max))
    if out is not None:
        layer.threshold = quantile_threshold(rng, golden.run_layer(layer, probe, in_type), out)
    return layer


def vectors(rng, in_type, layer):
    """Random codes; first every code at its minimum, at its maximum, and the inputs that
    maximize and minimize neuron 0's accumulator."""
    x = rng.integers(in_type.lo, in_type.hi + 1, (N_VECTORS, layer.n_in))
    x[0], x[1] = in_type.lo, in_type.hi
    x[2] = np.where(layer.weights[0] > 0, in_type.hi, in_type.lo)
    x[3] = np.where(layer.weights[0] > 0, in_type.lo, in_type.hi)
    return x


def assert_rtl_equals_golden(model, folding, x, tmp_path, seed):
    """Assert that the RTL of ``model`` equals the golden model on ``x``; the golden outputs."""
    assert len(x) == N_VECTORS
    return check_rtl(model, folding, x, tmp_path, seed=seed)


@pytest.mark.rtl
def test_rtl_pow2_in_multithreshold_out(tmp_path):
    rng = np.random.default_rng(41)
    p3 = ir.pow2_type(3)
    probe = rng.integers(p3.lo, p3.hi + 1, (256, 48))
    layer = shift_layer(rng, "fc", p3, 48, 24, out=p3, probe=probe)
    model = ir.Model(p3, 48, [layer]).check()
    expected = assert_rtl_equals_golden(model, {"fc": Folding(4, 16, "logic")},
                                        vectors(rng, p3, layer), tmp_path, seed=41)
    assert len(np.unique(expected)) == p3.hi + 1      # every code occurs


@pytest.mark.rtl
def test_rtl_unsigned_in_accumulator_out_fully_parallel(tmp_path):
    rng = np.random.default_rng(42)
    u5 = ir.TensorType("unsigned", 5)
    layer = shift_layer(rng, "fc", u5, 32, 8)
    model = ir.Model(u5, 32, [layer]).check()
    assert model.types()[-1].kind == "signed"
    expected = assert_rtl_equals_golden(model, {"fc": Folding(8, 32, "logic")},
                                        vectors(rng, u5, layer), tmp_path, seed=42)
    w0 = layer.weights[0]
    assert list(expected[2:4, 0]) == [31 * w0[w0 > 0].sum(), 31 * w0[w0 < 0].sum()]


@pytest.mark.rtl
def test_rtl_signed_in_large_exponents_folded_in_bram(tmp_path):
    rng = np.random.default_rng(43)
    s4 = ir.TensorType("signed", 4)
    probe = rng.integers(s4.lo, s4.hi + 1, (256, 48))
    layer = shift_layer(rng, "fc", s4, 48, 16, e_max=10, out=ir.odd_type(2), probe=probe)
    model = ir.Model(s4, 48, [layer]).check()
    assert_rtl_equals_golden(model, {"fc": Folding(2, 8, "bram")}, vectors(rng, s4, layer),
                             tmp_path, seed=43)


@pytest.mark.rtl
def test_rtl_two_layer_pow2_model(tmp_path):
    """pow2(2) (ternary) inputs -> dense_shift to pow2(3) codes -> dense_shift -> argmax."""
    rng = np.random.default_rng(44)
    p2, p3 = ir.pow2_type(2), ir.pow2_type(3)
    probe = rng.integers(p2.lo, p2.hi + 1, (256, 32))
    fc0 = shift_layer(rng, "fc0", p2, 32, 16, out=p3, probe=probe)
    fc1 = shift_layer(rng, "fc1", p3, 16, 10)
    model = ir.Model(p2, 32, [fc0, fc1, ir.ArgMax("argmax", n=10)]).check()
    folding = {"fc0": Folding(4, 8, "bram"), "fc1": Folding(10, 16, "logic"),
               "argmax": Folding(1, 2)}
    x = rng.integers(p2.lo, p2.hi + 1, (N_VECTORS, 32))
    x[0], x[1] = p2.lo, p2.hi
    expected = assert_rtl_equals_golden(model, folding, x, tmp_path, seed=44)
    assert len(np.unique(expected)) >= 5


# --- synthesis ---------------------------------------------------------------------------------

@pytest.mark.synth
def test_synthesized_engines_have_no_multiplier(tmp_path):
    """A fully parallel and a folded engine through yosys synth_ice40 and nextpnr's packer: no
    DSP (SB_MAC16), and no multiplication cell after yosys's word-level passes (its adders
    merged into $macc cells are unmapped back to adds first, so a product would show)."""
    rng = np.random.default_rng(45)
    p3 = ir.pow2_type(3)
    probe = rng.integers(p3.lo, p3.hi + 1, (128, 32))
    cases = {
        "full": (shift_layer(rng, "fc", p3, 16, 8, out=p3, probe=probe[:, :16]),
                 Folding(8, 16, "logic")),
        "folded": (shift_layer(rng, "fc", p3, 32, 8, e_max=5), Folding(2, 8, "bram")),
    }
    for name, (layer, folding) in cases.items():
        check_no_multiplier(layer, p3, folding, tmp_path / name, ratio=(0.6, 1.6))
