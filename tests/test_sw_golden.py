"""The golden model's packed arithmetic against plain integer arithmetic."""

import numpy as np
import pytest

from hwgen.sw.core import bits, golden, ir


@pytest.mark.parametrize("n", [1, 7, 63, 64, 65, 130, 257])
def test_packed_xnor_popcount_equals_integer_dot_product(n):
    rng = np.random.default_rng(n)
    x = rng.integers(0, 2, (50, n))
    w = rng.integers(0, 2, (9, n))
    dot = (2 * x - 1) @ (2 * w - 1).T
    assert np.array_equal(2 * bits.popcount_xnor(x, w) - n, dot)


def test_extremes_of_the_popcount():
    w = np.random.default_rng(0).integers(0, 2, (4, 70))
    assert np.array_equal(bits.popcount_xnor(w, w).diagonal(), np.full(4, 70))
    assert np.array_equal(bits.popcount_xnor(1 - w, w).diagonal(), np.zeros(4))


def test_accumulator_bounds_are_reached_and_never_exceeded():
    rng = np.random.default_rng(5)
    layer = ir.DenseIntBinW(name="fc", weights=rng.integers(0, 2, (6, 11)))
    t = ir.TensorType("signed", 4)
    lo, hi = layer.acc_range(t)
    x = rng.integers(t.lo, t.hi + 1, (5000, 11))
    best = np.where(layer.weights == 1, t.hi, t.lo)      # the input that maximizes each row
    worst = np.where(layer.weights == 1, t.lo, t.hi)
    accs = np.concatenate([golden.run_layer(layer, x).ravel(),
                           golden.run_layer(layer, best).diagonal(),
                           golden.run_layer(layer, worst).diagonal()])
    assert accs.max() == hi and accs.min() == lo
    acc_t = layer.acc_type(t)
    assert acc_t.lo <= lo and hi <= acc_t.hi
    assert not (acc_t.bits > 1 and ir.signed_bits(lo, hi) < acc_t.bits)


def test_argmax_ties_go_to_the_lowest_index():
    m = ir.Model(ir.TensorType("unsigned", 3), 4, [ir.ArgMax(name="am", n=4)])
    x = np.array([[1, 5, 5, 2], [7, 7, 7, 7], [0, 0, 0, 1]])
    assert golden.run(m, x)[:, 0].tolist() == [1, 0, 3]


def test_inputs_outside_the_input_type_are_refused():
    m = ir.Model(ir.TensorType("unsigned", 3), 2, [ir.ArgMax(name="am", n=2)])
    with pytest.raises(ValueError, match=r"inputs must lie in \[0, 7\]"):
        golden.run(m, np.array([[8, 0]]))
