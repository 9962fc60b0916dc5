"""Constellation activations of seed 000 (§2.3, eq. 12-14, Fig. 3).

Expected values are written by hand, or come from a brute-force nearest-point search in NumPy
over the whole constellation, built here without the module under test.
"""

import itertools

import numpy as np
import pytest
import torch

from hwgen.sw.families.constellation.qam import (QAM, NLevel, level_index, level_quantize, levels,
                                                 qam)

ORDERS = (4, 16, 64, 256)


def brute_force_qam(z: np.ndarray, order: int, delta: float) -> np.ndarray:
    """Nearest point of the square constellation by exhaustive search; among equally near
    points the one with the largest real part, then the largest imaginary part."""
    n = int(round(order ** 0.5))
    axis = delta * np.arange(-(n - 1), n, 2) / (n - 1)
    # lexicographic (re, im) ascending, so the last minimiser is the upper one on each axis
    # (the minimisers of a square grid form a product set)
    points = np.array([complex(re, im) for re, im in itertools.product(axis, axis)])
    dist = np.abs(z.reshape(-1, 1) - points[None, :]) ** 2
    is_min = dist == dist.min(axis=1, keepdims=True)
    last = len(points) - 1 - np.argmax(is_min[:, ::-1], axis=1)
    return points[last].reshape(z.shape)


def exact_grid(order: int) -> np.ndarray:
    """With Delta = n - 1 the levels are the odd and the boundaries the even integers: a grid
    of half-integers holds every boundary, every level and saturating inputs, all exactly."""
    n = int(round(order ** 0.5))
    axis = np.arange(-2 * (n + 1), 2 * (n + 1) + 1) / 2.0
    re, im = np.meshgrid(axis, axis, indexing="ij")
    return (re + 1j * im).ravel()


# ----------------------------------------------------------------------------- levels


def test_levels_are_the_n_values_of_section_2_3():
    assert levels(2).tolist() == [-1.0, 1.0]
    assert levels(4, 3.0).tolist() == [-3.0, -1.0, 1.0, 3.0]
    assert levels(8, 7.0).tolist() == [-7.0, -5.0, -3.0, -1.0, 1.0, 3.0, 5.0, 7.0]
    got = levels(4, 1.0, dtype=torch.float64)
    assert torch.allclose(got, torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0], dtype=torch.float64),
                          rtol=0, atol=1e-15)
    assert levels(4).dtype == torch.get_default_dtype()


@pytest.mark.parametrize("n, delta", [(1, 1.0), (0, 1.0), (4, 0.0), (4, -1.0)])
def test_levels_reject_bad_arguments(n, delta):
    with pytest.raises(ValueError):
        levels(n, delta)


# ----------------------------------------------------------------------------- real forward


def test_level_index_ties_go_up_and_outside_saturates():
    # n = 4, Delta = 3: levels -3, -1, 1, 3; boundaries -2, 0, 2
    x = torch.tensor([-100.0, -3.0, -2.5, -2.0, -1.0, -0.5, 0.0, 1.5, 2.0, 2.5, 3.0, 100.0])
    assert level_index(x, 4, 3.0).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 3]
    assert level_index(x, 4, 3.0).dtype == torch.int64


def test_level_quantize_forward_by_hand():
    x = torch.tensor([-float("inf"), -5.0, -2.0, -1.9, 0.0, -0.1, 2.0, 1.99, float("inf")])
    expected = [-3.0, -3.0, -1.0, -1.0, 1.0, -1.0, 3.0, 1.0, 3.0]
    assert level_quantize(x, 4, 3.0).tolist() == expected


def test_two_levels_are_the_step_with_zero_going_up():
    x = torch.tensor([-2.0, -1e-30, 0.0, 1e-30, 2.0])
    assert level_quantize(x, 2).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize("n", [2, 3, 4, 5, 8, 16])
def test_level_quantize_is_the_nearest_level(n):
    # Delta = n - 1 keeps levels and boundaries exact; step 1/4 hits every boundary
    delta = float(n - 1)
    x = np.arange(-4 * (n + 2), 4 * (n + 2) + 1) / 4.0
    lv = delta * np.arange(-(n - 1), n, 2) / (n - 1)
    d = np.abs(x[:, None] - lv[None, :])
    # ties: the last (upper) of the equally near levels
    expected = lv[len(lv) - 1 - np.argmin(d[:, ::-1], axis=1)]
    got = level_quantize(torch.tensor(x), n, delta).numpy()
    np.testing.assert_array_equal(got, expected)


# ----------------------------------------------------------------------------- real backward


def test_eq_12_gradient_inside_on_and_outside_delta():
    x = torch.tensor([-1.5, -1.0, -0.9, 0.0, 0.5, 1.0, 1.2], requires_grad=True)
    level_quantize(x, 4).backward(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]))
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]


def test_eq_12_gradient_uses_the_input_and_cuts_just_outside_delta():
    # y is always in [-Delta, Delta]; the cut is on x: just past +-Delta gets no gradient
    delta = torch.tensor(2.0, dtype=torch.float64)
    above = torch.nextafter(delta, torch.tensor(3.0, dtype=torch.float64)).item()
    x = torch.tensor([-above, -2.0, 2.0, above], dtype=torch.float64, requires_grad=True)
    y = level_quantize(x, 8, 2.0)
    assert y.tolist() == [-2.0, -2.0, 2.0, 2.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_nlevel_module():
    m = NLevel(4, 3.0)
    assert m(torch.tensor([-2.0, 0.5, 7.0])).tolist() == [-1.0, 1.0, 3.0]
    assert "n=4" in repr(m) and "delta=3.0" in repr(m)
    with pytest.raises(ValueError):
        NLevel(1)


def test_level_quantize_rejects_complex():
    with pytest.raises(TypeError):
        level_quantize(torch.zeros(2, dtype=torch.cfloat), 4)


# ----------------------------------------------------------------------------- QAM forward


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_qam_is_the_nearest_constellation_point_on_an_exact_grid(order, dtype):
    delta = float(int(round(order ** 0.5)) - 1)
    z = exact_grid(order)
    got = qam(torch.tensor(z, dtype=dtype), order, delta)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got.numpy().astype(np.complex128),
                                  brute_force_qam(z, order, delta))


@pytest.mark.parametrize("order", ORDERS)
def test_qam_is_the_nearest_point_for_delta_one(order):
    # random inputs over twice the constellation: no exact ties, saturation included
    rng = np.random.default_rng(order)
    z = rng.uniform(-2, 2, 4000) + 1j * rng.uniform(-2, 2, 4000)
    got = qam(torch.tensor(z), order).numpy()
    np.testing.assert_allclose(got, brute_force_qam(z, order, 1.0), rtol=0, atol=1e-12)


def test_qam_ties_go_to_the_upper_level_on_each_axis():
    # 16-QAM, Delta = 3: levels -3, -1, 1, 3 on each axis, boundaries -2, 0, 2
    z = torch.tensor([2 + 0j, -2 - 2j, 0 + 2j, 0j, -2 + 1.5j, 1 - 2j], dtype=torch.cdouble)
    expected = torch.tensor([3 + 1j, -1 - 1j, 1 + 3j, 1 + 1j, -1 + 1j, 1 - 1j],
                            dtype=torch.cdouble)
    assert torch.equal(qam(z, 16, 3.0), expected)
    # 4-QAM (4-PSK), Delta = 1: the origin goes to 1 + 1j
    assert qam(torch.tensor([0j, -1e-9 + 0j, 0 - 1e-9j]), 4).tolist() == [1 + 1j, -1 + 1j,
                                                                          1 - 1j]


def test_qam_saturates_to_the_corner_points():
    z = torch.tensor([100 - 100j, -1e6 + 0.1j, complex(float("inf"), -float("inf"))],
                     dtype=torch.cdouble)
    assert qam(z, 64, 2.0).tolist() == [2 - 2j, -2 + 2 / 7 * 1j, 2 - 2j]


def test_qam_keeps_shape_and_takes_strided_and_conjugated_inputs():
    z = torch.tensor([[0.9 + 0.1j, -0.4 - 0.9j, 2 + 2j], [0.2 - 0.2j, -5j, 0.6 + 0.7j]])
    t = z.t()
    assert not t.is_contiguous()
    assert torch.equal(qam(t, 4), qam(t.contiguous(), 4))
    assert qam(t, 4).shape == (3, 2)
    # conj() is a lazy view; the result must be that of the conjugated values
    assert qam(z.conj(), 4).tolist() == [[1 - 1j, -1 + 1j, 1 - 1j], [1 + 1j, 1 + 1j, 1 - 1j]]


@pytest.mark.parametrize("order", [0, 1, 2, 3, 8, 12, 15, 32, 128, -4, 16.0, True])
def test_qam_rejects_orders_that_are_not_powers_of_four(order):
    z = torch.zeros(3, dtype=torch.cfloat)
    with pytest.raises(ValueError, match="QAM order"):
        qam(z, order)
    with pytest.raises(ValueError, match="QAM order"):
        QAM(order)


def test_qam_rejects_real_input():
    with pytest.raises(TypeError):
        qam(torch.zeros(3), 16)


def test_qam_module_matches_the_function():
    z = torch.tensor([0.3 + 0.9j, -0.2 - 0.7j, 1.5 + 0j])
    assert torch.equal(QAM()(z), qam(z, 16))
    assert QAM(64, 2.0)(z).tolist() == qam(z, 64, 2.0).tolist()
    assert "order=16" in repr(QAM())


# ----------------------------------------------------------------------------- QAM backward


def test_eq_13_and_14_cut_the_real_and_imaginary_gradients_independently():
    # 16-QAM, Delta = 1
    z = torch.tensor([0.5 + 2j, -3 + 0.2j, 1.0 - 1.0j, 1.5 - 1.5j, -1.0 + 1.0001j, 0j],
                     dtype=torch.cdouble, requires_grad=True)
    g = torch.tensor([1 + 2j, 3 + 4j, 5 + 6j, 7 + 8j, 9 + 10j, 11 + 12j], dtype=torch.cdouble)
    qam(z, 16).backward(g)
    expected = torch.tensor([1 + 0j, 0 + 4j, 5 + 6j, 0j, 9 + 0j, 11 + 12j], dtype=torch.cdouble)
    assert torch.equal(z.grad, expected)


def test_eq_13_and_14_with_a_larger_delta_and_a_real_loss():
    # 64-QAM, Delta = 2; loss = sum(Re y) + 10 * sum(Im y): dL/dRe z + j dL/dIm z
    z = torch.tensor([-2 + 2.5j, 2.1 - 2j, -1.7 + 0.3j, 3 + 3j], dtype=torch.cfloat,
                     requires_grad=True)
    y = qam(z, 64, 2.0)
    (y.real.sum() + 10 * y.imag.sum()).backward()
    assert z.grad.tolist() == [1 + 0j, 0 + 10j, 1 + 10j, 0j]


def test_gradient_flows_through_qam_to_a_complex_weight():
    w = torch.tensor([[0.5 + 0.25j, -0.25 + 0j]], dtype=torch.cdouble, requires_grad=True)
    x = torch.tensor([1 + 1j, 2 - 1j], dtype=torch.cdouble)
    # w @ x = (0.5 + 0.25j)(1 + 1j) + (-0.25)(2 - 1j) = -0.25 + 1j: both parts inside Delta = 1
    y = qam(w @ x, 16)
    assert y.tolist() == [-1 / 3 + 1j]
    y.real.sum().backward()
    # dL/dw = conj(x) (PyTorch's convention for a real loss of Re(w @ x))
    assert w.grad.tolist() == [[1 - 1j, 2 + 1j]]
