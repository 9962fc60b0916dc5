"""The ``sam`` and ``dense_mac`` IR kinds: validation, JSON, exact ranges and golden semantics."""

import numpy as np
import pytest

from hwgen.sw.core import golden, ir
from hwgen.sw.core import sam as sam_kind

S5 = ir.TensorType("signed", 5)
U4 = ir.TensorType("unsigned", 4)


def _term(rng, reduce, sign, m, n, keep_prob, empty_rows=()):
    keep = rng.random((m, n)) < keep_prob
    keep[list(empty_rows)] = False
    return ir.SAMTerm(reduce, sign, rng.integers(-30, 31, (m, n)), keep, rng.integers(-9, 10, m))


def _brute(layer, x):
    """Row by row with Python's max and min over the kept entries."""
    out = np.zeros((len(x), layer.n_out), np.int64)
    for t in layer.terms:
        for b, row in enumerate(x):
            for j in range(layer.n_out):
                sums = [int(row[i]) + int(t.weights[j, i]) for i in np.flatnonzero(t.keep[j])]
                value = (max if t.reduce == "max" else min)(sums) if sums else int(t.fill[j])
                out[b, j] += t.sign * value
    return out


@pytest.mark.parametrize("forms", [[("max", 1)], [("max", 1), ("max", -1)],
                                   [("max", 1), ("min", 1)]])
@pytest.mark.parametrize("in_type", [S5, U4])
def test_golden_sam_is_the_max_and_min_over_kept_entries(forms, in_type):
    rng = np.random.default_rng(len(forms))
    terms = [_term(rng, r, s, 9, 11, 0.4, empty_rows=(2, k + 4)) for k, (r, s) in enumerate(forms)]
    layer = ir.SAMLayer("s", n=11, terms=terms)
    x = rng.integers(in_type.lo, in_type.hi + 1, (300, 11))
    x[0], x[1] = in_type.lo, in_type.hi
    got = golden.run_layer(layer, x, in_type)
    assert np.array_equal(got, _brute(layer, x))
    # the output range is exact: all-min and all-max inputs reach the per-output bounds
    lo, hi = layer.out_bounds(in_type)
    assert (got >= lo).all() and (got <= hi).all()
    if all(s == 1 for _, s in forms):
        assert np.array_equal(got[0], lo) and np.array_equal(got[1], hi)
    assert layer.out_type(in_type) == ir.TensorType.for_range(*layer.acc_range(in_type))


def test_golden_sam_chunks_the_batch(monkeypatch):
    monkeypatch.setattr(sam_kind, "SAM_CHUNK", 37)
    rng = np.random.default_rng(5)
    layer = ir.SAMLayer("s", n=8, terms=[_term(rng, "min", 1, 6, 8, 0.7)])
    x = rng.integers(-16, 16, (50, 8))
    assert np.array_equal(golden.run_layer(layer, x, S5), _brute(layer, x))


def test_sam_json_round_trip_keeps_only_kept_entries():
    rng = np.random.default_rng(2)
    layer = ir.SAMLayer("hidden", n=6, terms=[_term(rng, "max", 1, 4, 6, 0.5, (1,)),
                                              _term(rng, "min", 1, 4, 6, 0.5)])
    d = layer.to_json()
    assert sum(len(r) for t in d["terms"] for r in t["rows"]) == layer.n_kept
    back = ir.SAMLayer.from_json(d)
    for a, b in zip(layer.terms, back.terms):
        assert np.array_equal(a.weights, b.weights) and np.array_equal(a.keep, b.keep)
        assert np.array_equal(a.fill, b.fill) and (a.reduce, a.sign) == (b.reduce, b.sign)
    # a pruned entry's weight and a kept row's fill are not part of the layer
    assert (layer.terms[0].weights[~layer.terms[0].keep] == 0).all()
    assert (layer.terms[1].fill[~layer.terms[1].empty] == 0).all()


def test_bad_sam_layers_are_refused():
    w = np.zeros((2, 3), np.int64)
    keep = np.ones((2, 3), bool)
    with pytest.raises(ValueError, match="max or min"):
        ir.SAMTerm("sum", 1, w, keep, [0, 0])
    with pytest.raises(ValueError, match="sign"):
        ir.SAMTerm("max", 2, w, keep, [0, 0])
    with pytest.raises(ValueError, match="fill"):
        ir.SAMTerm("max", 1, w, keep, [0, 0, 0])
    with pytest.raises(ValueError, match="one shape"):
        ir.SAMLayer("s", n=4, terms=[ir.SAMTerm("max", 1, w, keep, [0, 0])])
    layer = ir.SAMLayer("s", n=3, terms=[ir.SAMTerm("max", 1, w, keep, [0, 0])])
    with pytest.raises(ValueError, match="integer inputs"):
        layer.acc_range(ir.TensorType("bipolar", 1))


def test_dense_mac_golden_range_and_json():
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, (5, 7))
    w[0, 0], w[1, 1] = -128, 127
    layer = ir.DenseMAC("fc", weights=w, bias=rng.integers(-1000, 1000, 5))
    assert layer.weight_type == ir.TensorType("signed", 8)
    x = rng.integers(S5.lo, S5.hi + 1, (200, 7))
    expected = np.array([[sum(int(a) * int(b) for a, b in zip(row, wr)) + int(c)
                          for wr, c in zip(w, layer.bias)] for row in x])
    assert np.array_equal(golden.run_layer(layer, x, S5), expected)
    lo, hi = layer.acc_range(S5)
    # reached: each neuron's extreme input is lo where w > 0 and hi where w < 0 (or the reverse)
    extremes = [np.where(w[j] > 0, S5.lo, S5.hi) for j in range(5)] + \
               [np.where(w[j] > 0, S5.hi, S5.lo) for j in range(5)]
    accs = golden.run_layer(layer, np.array(extremes), S5)
    assert lo == accs.min() and hi == accs.max()
    back = ir.DenseMAC.from_json(layer.to_json())
    assert np.array_equal(back.weights, w) and np.array_equal(back.bias, layer.bias)


def test_bad_dense_mac_layers_are_refused():
    with pytest.raises(ValueError, match="16-bit"):
        ir.DenseMAC("fc", weights=[[1 << 15]])
    with pytest.raises(ValueError, match="bias"):
        ir.DenseMAC("fc", weights=[[1, 2]], bias=[1, 2])
    with pytest.raises(ValueError, match="integer inputs"):
        ir.DenseMAC("fc", weights=[[1, 2]]).acc_range(ir.TensorType("bipolar", 1))
