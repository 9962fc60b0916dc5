"""Multi-branch models as Verilog in a cocotb/Verilator simulation against the golden model.

Each model quantizes 64 five-bit inputs element-wise to odd M-bit codes (multithreshold), then
runs dense_mbbn 64 -> 32 (multi-threshold to odd M-bit codes), dense_mbbn 32 -> 10 and argmax.
Between them the models cover branches in parallel, branches in time (including the row counter
of a non-power-of-two input digit split) and foldings chosen by the estimator.
"""


import numpy as np
import pytest

from hwgen.hw.folding import choose_folding
from hwgen.hw.resources import Folding
from hwgen.sw.core import golden, ir
from rtl_check import check_rtl

pytestmark = pytest.mark.rtl

U5 = ir.TensorType("unsigned", 5)
N_VECTORS = 10_000


def sorted_rows(rng, lo, hi, n, levels):
    """Random rows of levels in ``lo..hi``, sorted, about a third flipped (descending)."""
    t = np.sort(rng.integers(lo, hi + 1, (n, levels)), axis=1)
    flip = rng.random(n) < 0.3
    t[flip] = t[flip][:, ::-1]
    return t, flip


def mbbn_model(rng, m_bits, k_bits, *, quantiles=False, probe_count=256):
    """The model of the module docs. The quantizer's levels are random in 0..31; the hidden
    layer's are random between the smallest and largest accumulator of random probe inputs,
    or, with ``quantiles``, random quantiles of each neuron's probe accumulators."""
    levels = (1 << m_bits) - 1
    t, flip = sorted_rows(rng, 0, 31, 64, levels)
    quant = ir.MultiThresholdLayer("quant", ir.MultiThreshold(t, flip, ir.odd_type(m_bits)))
    fc0 = ir.DenseMBBN("fc0", weights=rng.integers(0, 1 << k_bits, (32, 64)), m_bits=m_bits,
                       k_bits=k_bits)
    probe = rng.integers(0, 32, (probe_count, 64))
    acc = golden.run_layer(fc0, golden.run_layer(quant, probe))
    if quantiles:
        q = np.quantile(acc, np.sort(rng.uniform(0.05, 0.95, (32, levels)), axis=1), axis=0)
        t = np.round([q[j, :, j] for j in range(32)]).astype(np.int64)
        flip = rng.random(32) < 0.3
        t[flip] = t[flip][:, ::-1]
    else:
        t, flip = sorted_rows(rng, acc.min(), acc.max(), 32, levels)
    fc0.threshold = ir.MultiThreshold(t, flip, ir.odd_type(m_bits))
    fc1 = ir.DenseMBBN("fc1", weights=rng.integers(0, 1 << k_bits, (10, 32)), m_bits=m_bits,
                       k_bits=k_bits)
    return ir.Model(U5, 64, [quant, fc0, fc1, ir.ArgMax("argmax", n=10)]).check()


def vectors(seed):
    x = np.random.default_rng(seed).integers(0, 32, (N_VECTORS, 64))
    x[0], x[1] = 0, 31          # every element at its minimum, then at its maximum
    return x


def assert_rtl_equals_golden(model, folding, tmp_path, seed):
    """Assert that the RTL of ``model`` equals the golden model; the golden outputs."""
    return check_rtl(model, folding, vectors(seed), tmp_path, seed=seed)


def branch_folds(folding):
    return {name: f.branch_folds for name, f in folding.items() if name.startswith("fc")}


def test_rtl_one_branch_chosen_folding(tmp_path):
    model = mbbn_model(np.random.default_rng(11), 1, 1)
    folding = choose_folding(model, lc_budget=5000, ebr_budget=30)
    expected = assert_rtl_equals_golden(model, folding, tmp_path, seed=11)
    assert len(np.unique(expected)) > 1


def test_rtl_two_by_two_branches_in_parallel(tmp_path):
    model = mbbn_model(np.random.default_rng(22), 2, 2)
    folding = {"quant": Folding(4, 1, "bram"), "fc0": Folding(2, 64, "logic", 1),
               "fc1": Folding(5, 16, "bram", 1), "argmax": Folding(1, 2)}
    assert_rtl_equals_golden(model, folding, tmp_path, seed=22)


def test_rtl_three_by_two_branches_in_time(tmp_path):
    # b_m = 3 input digits in time, so the weight rows come from a row counter
    model = mbbn_model(np.random.default_rng(32), 3, 2)
    folding = {"quant": Folding(4, 1, "logic"), "fc0": Folding(8, 32, "logic", 3),
               "fc1": Folding(5, 32, "bram", 6), "argmax": Folding(1, 5)}
    assert_rtl_equals_golden(model, folding, tmp_path, seed=32)


def test_rtl_four_by_four_chosen_folding(tmp_path):
    model = mbbn_model(np.random.default_rng(44), 4, 4)
    folding = choose_folding(model, lc_budget=6000, ebr_budget=30)
    assert max(branch_folds(folding).values()) > 1      # the estimator puts branches in time
    assert_rtl_equals_golden(model, folding, tmp_path, seed=44)


def test_rtl_quantile_thresholds_make_classes_vary(tmp_path):
    model = mbbn_model(np.random.default_rng(7), 2, 2, quantiles=True)
    folding = choose_folding(model, lc_budget=4000, ebr_budget=30)
    expected = assert_rtl_equals_golden(model, folding, tmp_path, seed=7)
    counts = np.bincount(expected[:, 0], minlength=10)
    assert (counts > 0).sum() >= 5, counts
