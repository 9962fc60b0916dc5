"""Data sets of hwgen.sw.families.data: integer samples in range, every class present, fixed by
the seed."""

import random

import numpy as np
import pytest

from hwgen.sw.families import data


@pytest.fixture(scope="module")
def small_mnist1d():
    return data.mnist1d(n_samples=500, seed=0, bits=8)


def test_mnist1d_shapes_and_split_sizes(small_mnist1d):
    s = small_mnist1d
    # the package splits its signals 80 / 20; every signal is 40 samples long
    assert s.x_train.shape == (400, 40) and s.x_test.shape == (100, 40)
    assert s.y_train.shape == (400,) and s.y_test.shape == (100,)
    assert (s.in_bits, s.n_classes) == (8, 10)


def test_mnist1d_samples_and_labels_are_integers_in_range(small_mnist1d):
    s = small_mnist1d
    for x in (s.x_train, s.x_test):
        assert np.issubdtype(x.dtype, np.integer)
        assert x.min() >= 0 and x.max() <= 255
    # the affine map is fixed on the training split: its extremes land on 0 and 2^bits - 1
    assert s.x_train.min() == 0 and s.x_train.max() == 255
    for y in (s.y_train, s.y_test):
        assert np.issubdtype(y.dtype, np.integer)


def test_mnist1d_has_every_class_in_both_splits(small_mnist1d):
    s = small_mnist1d
    assert set(np.unique(s.y_train)) == set(range(10))
    assert set(np.unique(s.y_test)) == set(range(10))
    # the package makes n_samples // 10 signals of each class
    counts = np.bincount(np.concatenate([s.y_train, s.y_test]), minlength=10)
    assert counts.tolist() == [50] * 10


@pytest.mark.parametrize("bits", [1, 3, 5])
def test_mnist1d_bits_set_the_range_and_in_bits(bits):
    s = data.mnist1d(n_samples=100, seed=1, bits=bits)
    assert s.in_bits == bits
    top = 2 ** bits - 1
    assert s.x_train.min() == 0 and s.x_train.max() == top
    assert s.x_test.min() >= 0 and s.x_test.max() <= top


def test_mnist1d_is_fixed_by_the_seed_and_leaves_global_rngs_alone(small_mnist1d):
    np.random.seed(123)
    random.seed(123)
    expected_np, expected_py = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(123)
    again = data.mnist1d(n_samples=500, seed=0, bits=8)
    assert np.random.random() == expected_np and random.random() == expected_py
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(again, name), getattr(small_mnist1d, name))
    other = data.mnist1d(n_samples=500, seed=1, bits=8)
    assert not np.array_equal(other.x_train, small_mnist1d.x_train)


@pytest.mark.parametrize("kwargs,match", [({"bits": 0}, "bits must lie in 1..16"),
                                          ({"bits": 17}, "bits must lie in 1..16"),
                                          ({"n_samples": 10}, "at least 20")])
def test_mnist1d_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.mnist1d(**kwargs)


def test_digits_split_is_integer_and_stratified():
    s = data.digits(seed=0)
    assert s.x_train.shape[1] == s.x_test.shape[1] == 64
    assert len(s.x_train) + len(s.x_test) == 1797
    assert np.issubdtype(s.x_train.dtype, np.integer) and s.x_train.max() <= 16
    assert s.in_bits == 5 and s.n_classes == 10
    assert set(np.unique(s.y_test)) == set(range(10))


def test_mnist1d_train_fraction_sets_the_split():
    s = data.mnist1d(n_samples=1000, seed=2, bits=8, train_fraction=0.25)
    assert len(s.x_train) == 250 and len(s.x_test) == 750
    assert set(np.unique(s.y_test)) == set(range(10))


@pytest.mark.parametrize("fraction", [0.0, 1.0, 0.001])
def test_mnist1d_refuses_an_empty_split(fraction):
    with pytest.raises(ValueError, match="leaves a split empty"):
        data.mnist1d(n_samples=100, train_fraction=fraction)
