"""The QAM slicer (seed 000, §2.3): its IR kind against a nearest-point search, and its engine,
in both forms and several foldings, against the golden model in amaranth.sim."""

import math
from fractions import Fraction

import numpy as np
import pytest

from hwgen.hw.qam_slicer import QAMSlicerEngine, slicer_form
from hwgen.hw.registry import candidates, check_folding, engine, estimate, fold_steps
from hwgen.hw.resources import Folding
from hwgen.hw.testbench import simulate_stream
from hwgen.sw.core import golden, ir

S10 = ir.TensorType("signed", 10)
SCALE = 2.0 ** -8                 # a 10-bit I/Q grid over [-2, 2)
ORDERS = ir.QAM_ORDERS


def pow2_delta(order):
    """The outer level that puts adjacent levels 2^k codes apart on SCALE's grid (512 / M)."""
    m = math.isqrt(order)
    return (m - 1) * (256 // m) * SCALE


def nearest_points(order, delta, scale, codes_i, codes_q):
    """Index (i_r, i_q) of the constellation point nearest to each (code_i, code_q) * scale,
    by an exact search over all ``order`` points; among equally near points the one with the
    larger indices (the upper level on each axis)."""
    m = math.isqrt(order)
    d, s = Fraction(delta), Fraction(scale)
    levels = [d * (2 * i - (m - 1)) / (m - 1) for i in range(m)]
    # one integer unit for inputs and levels alike, so distances are exact integers
    unit = math.lcm(s.denominator, *(a.denominator for a in levels))
    xs = int(s * unit)
    lv = np.array([int(a * unit) for a in levels], dtype=np.int64)
    pr, pq = np.repeat(lv, m), np.tile(lv, m)            # point p = i_r * m + i_q
    out_r, out_q = [], []
    for start in range(0, len(codes_i), 4096):
        xi = codes_i[start:start + 4096, None].astype(np.int64) * xs
        xq = codes_q[start:start + 4096, None].astype(np.int64) * xs
        dist = (xi - pr) ** 2 + (xq - pq) ** 2
        best = np.where(dist == dist.min(axis=1, keepdims=True), np.arange(m * m), -1).max(axis=1)
        out_r.append(best // m)
        out_q.append(best % m)
    return np.concatenate(out_r), np.concatenate(out_q)


#: (delta, scale) of the grids: levels 2^k codes apart, uneven boundaries, and levels closer
#: than one input step (repeated boundaries: some levels are never the nearest)
GRIDS = {"pow2": None, "unit": (1.0, SCALE), "coarse": (1.0, 1.0)}


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("grid", list(GRIDS))
def test_slicer_is_nearest_point_on_every_iq_code(order, grid):
    """Every (I, Q) pair of the 10-bit grid (2^20 of them), boundaries included: the golden
    slicer's codes are the nearest constellation point's indices."""
    delta, scale = GRIDS[grid] or (pow2_delta(order), SCALE)
    layer = ir.QAMSlicer.for_grid("s", 1, order, delta, scale)
    if grid == "coarse" and order > 4:
        assert len(set(layer.boundaries)) < len(layer.boundaries)
    codes = np.arange(S10.lo, S10.hi + 1)
    ci, cq = np.repeat(codes, len(codes)), np.tile(codes, len(codes))
    got = golden.run(ir.Model(S10, 2, [layer]), np.stack([ci, cq], axis=1))
    want_r, want_q = nearest_points(order, delta, scale, ci, cq)
    np.testing.assert_array_equal(got[:, 0], want_r)
    np.testing.assert_array_equal(got[:, 1], want_q)
    assert got.min() == 0 and got.max() == math.isqrt(order) - 1


def test_ties_go_to_the_upper_level():
    """16-QAM with levels at -192, -64, 64, 192 codes: boundaries -128, 0, 128 are codes, and
    an input on one is as near to both levels; it goes up."""
    layer = ir.QAMSlicer.for_grid("s", 3, 16, pow2_delta(16), SCALE)
    x = np.array([[-129, -128, -1, 0, 127, 128], [-512, 511, -192, -64, 64, 192]])
    np.testing.assert_array_equal(golden.run_layer(layer, x),
                                  [[0, 1, 1, 2, 2, 3], [0, 3, 0, 1, 2, 3]])


def test_shift_form_where_the_grid_allows():
    for order in ORDERS:
        m = math.isqrt(order)
        layer = ir.QAMSlicer.for_grid("s", 1, order, pow2_delta(order), SCALE)
        spacing = 512 // m
        assert layer.boundaries == tuple(spacing * (i + 1) - 256 for i in range(m - 1))
        assert layer.shift_form() is not None and slicer_form(layer) == "shift"
    uneven = ir.QAMSlicer.for_grid("s", 1, 16, 1.0, SCALE)       # boundaries -170, 0, 171
    assert uneven.boundaries == (-170, 0, 171)
    assert uneven.shift_form() is None and slicer_form(uneven) == "compare"
    with pytest.raises(ValueError, match="no shift form"):
        QAMSlicerEngine(uneven, in_type=S10, form="shift")
    odd_step = ir.QAMSlicer(name="s", n=1, order=16, boundaries=(-3, 0, 3))
    assert odd_step.shift_form() is None


def test_slicer_ir_validation_and_json():
    layer = ir.QAMSlicer.for_grid("slice", 3, 64, 0.875, SCALE, output="value")
    back = ir.Model.from_json(ir.Model(S10, 6, [layer]).to_json()).layers[0]
    assert back == layer
    assert layer.out_type(S10) == ir.TensorType("odd", 3)
    assert ir.QAMSlicer.for_grid("s", 1, 4, 1.0, SCALE, output="value").out_type(S10) == \
        ir.TensorType("bipolar", 1)
    assert layer.out_type(S10).values(np.arange(8)).tolist() == [-7, -5, -3, -1, 1, 3, 5, 7]
    for bad in [dict(order=32, boundaries=()), dict(order=16, boundaries=(0, 1)),
                dict(order=16, boundaries=(0, 1, 0)), dict(order=4, boundaries=(0,), output="x"),
                dict(order=4, boundaries=(0,), n=0)]:
        with pytest.raises(ValueError):
            ir.QAMSlicer(name="s", **{"n": 1, **bad})
    with pytest.raises(ValueError, match="integer inputs"):
        ir.Model(ir.TensorType("bipolar", 1), 2, [layer.__class__(
            name="s", n=1, order=4, boundaries=(0,))]).check()
    with pytest.raises(ValueError, match="positive"):
        ir.QAMSlicer.for_grid("s", 1, 16, -1.0, SCALE)


N = 8                                   # complex elements: vectors of 16


def all_codes_vectors(rng, extra=24):
    """Every 10-bit code at every element position at least once, then random vectors."""
    codes = np.arange(S10.lo, S10.hi + 1)
    rows = [np.roll(codes, 3 * k).reshape(-1, 2 * N) for k in range(2)]
    return np.concatenate(rows + [rng.integers(S10.lo, S10.hi + 1, (extra, 2 * N))])


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("form", ["compare", "shift"])
@pytest.mark.parametrize("pe", [16, 4, 1])
def test_slicer_engine(order, form, pe):
    rng = np.random.default_rng([order, pe])
    layer = ir.QAMSlicer.for_grid("s", N, order, pow2_delta(order), SCALE)
    x = all_codes_vectors(rng) if pe == 16 else rng.integers(S10.lo, S10.hi + 1, (12, 2 * N))
    dut = QAMSlicerEngine(layer, in_type=S10, pe=pe, form=form)
    run = simulate_stream(dut, x, rng=rng, valid_prob=0.7, ready_prob=0.6)
    np.testing.assert_array_equal(np.array(run.outputs), golden.run(ir.Model(S10, 2 * N, [layer]),
                                                                     x))


@pytest.mark.parametrize("order", [16, 256])
def test_slicer_engine_uneven_boundaries_and_unsigned_input(order):
    """Comparator form on boundaries no shift can make, and on unsigned inputs where some
    boundaries lie outside the input range (those levels are never or always passed)."""
    rng = np.random.default_rng(order)
    layer = ir.QAMSlicer.for_grid("s", N, order, 1.0, SCALE)
    _compare_form_matches_golden(layer, rng)


@pytest.mark.parametrize("order", [16, 256])
def test_slicer_engine_repeated_boundaries(order):
    """Levels closer than one input step: equal boundaries, a thermometer code with repeats."""
    rng = np.random.default_rng(order + 1)
    layer = ir.QAMSlicer.for_grid("s", N, order, 1.0, 1.0)
    assert len(set(layer.boundaries)) < len(layer.boundaries)
    _compare_form_matches_golden(layer, rng)


def _compare_form_matches_golden(layer, rng):
    u8 = ir.TensorType("unsigned", 8)
    for in_type in (S10, u8):
        x = np.concatenate([all_codes_vectors(rng)[:, :2 * N].clip(in_type.lo, in_type.hi),
                            rng.integers(in_type.lo, in_type.hi + 1, (16, 2 * N))])
        dut = engine(layer, in_type, Folding(8))
        assert dut.form == "compare"
        run = simulate_stream(dut, x, rng=rng, valid_prob=0.7, ready_prob=0.6)
        np.testing.assert_array_equal(np.array(run.outputs),
                                      golden.run(ir.Model(in_type, 2 * N, [layer]), x))


def test_slicer_folding():
    layer = ir.QAMSlicer.for_grid("s", N, 16, 0.75, SCALE)
    folds = candidates(layer)
    assert {f.pe for f in folds} == {1, 2, 4, 8, 16}
    assert all(f.simd == 1 and f.weights == "logic" for f in folds)
    assert [fold_steps(layer, f) for f in folds] == [2 * N // f.pe for f in folds]
    with pytest.raises(ValueError, match="simd must be 1"):
        check_folding(layer, Folding(2, 2))
    with pytest.raises(ValueError, match="simd"):
        engine(layer, S10, Folding(2, 2))
    # more parallel elements cost more cells
    costs = [estimate(layer, S10, Folding(pe)).lcs for pe in (1, 4, 16)]
    assert costs[0] < costs[1] < costs[2]
