"""Complex layers of seed 000 and their real embedding (block layout [Re x; Im x]).

Expected values are written by hand or computed directly in NumPy complex arithmetic.
"""

import numpy as np
import pytest
import torch
from torch.func import functional_call

from hwgen.sw.families.constellation.complex_nn import (
    ComplexBatchNorm1d, ComplexConv1d, ComplexLinear, CReLU, real_embedding,
)


def random_complex(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def set_params(layer, weight, bias):
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        if bias is not None:
            layer.bias.copy_(torch.from_numpy(bias))


# ----------------------------------------------------------------------------- ComplexLinear


def test_complex_linear_parameters_are_complex_and_sized():
    layer = ComplexLinear(5, 3)
    assert layer.weight.dtype == torch.cfloat and layer.weight.shape == (3, 5)
    assert layer.bias.dtype == torch.cfloat and layer.bias.shape == (3,)
    assert ComplexLinear(5, 3, bias=False).bias is None
    assert ComplexLinear(2, 2, dtype=torch.cdouble).weight.dtype == torch.cdouble
    with pytest.raises(ValueError):
        ComplexLinear(2, 2, dtype=torch.float32)


def test_complex_linear_initial_variance_is_one_over_fan_in_split_over_parts():
    torch.manual_seed(0)
    w = ComplexLinear(400, 200).weight.detach()
    # 80,000 draws: the variance estimates are within about 1 % of the truth
    assert abs(w.real.var().item() * 800 - 1) < 0.05
    assert abs(w.imag.var().item() * 800 - 1) < 0.05
    assert abs((w.abs() ** 2).mean().item() * 400 - 1) < 0.05
    assert abs(w.real.mean().item()) < 0.01 and abs(w.imag.mean().item()) < 0.01


@pytest.mark.parametrize("bias", [True, False])
def test_complex_linear_is_the_complex_matrix_product(bias):
    rng = np.random.default_rng(1)
    w, b = random_complex(rng, 4, 6), random_complex(rng, 4)
    x = random_complex(rng, 7, 6)
    layer = ComplexLinear(6, 4, bias=bias, dtype=torch.cdouble)
    set_params(layer, w, b if bias else None)
    expected = np.array([[sum(w[o, i] * x[s, i] for i in range(6)) + (b[o] if bias else 0)
                          for o in range(4)] for s in range(7)])
    np.testing.assert_allclose(layer(torch.from_numpy(x)).detach().numpy(), expected,
                               rtol=1e-12, atol=1e-12)


def test_complex_linear_takes_real_input_as_zero_imaginary():
    layer = ComplexLinear(2, 1, dtype=torch.cdouble)
    set_params(layer, np.array([[1 + 2j, 3 - 1j]]), np.array([0.5j]))
    y = layer(torch.tensor([[2.0, -1.0]], dtype=torch.float64))
    # (1 + 2j) * 2 + (3 - 1j) * (-1) + 0.5j = -1 + 5.5j
    assert y.tolist() == [[-1 + 5.5j]]


def test_real_embedding_by_hand():
    w = torch.tensor([[1 + 2j]])
    assert real_embedding(w).tolist() == [[1.0, -2.0], [2.0, 1.0]]
    w = torch.tensor([[1 + 5j, 2 + 6j], [3 + 7j, 4 + 8j]])
    # block layout: [[A, -B], [B, A]], not 2x2 blocks per element
    assert real_embedding(w).tolist() == [
        [1.0, 2.0, -5.0, -6.0],
        [3.0, 4.0, -7.0, -8.0],
        [5.0, 6.0, 1.0, 2.0],
        [7.0, 8.0, 3.0, 4.0],
    ]


def test_real_embedding_maps_the_block_layout_of_x_to_that_of_y():
    rng = np.random.default_rng(2)
    w, b = random_complex(rng, 3, 5), random_complex(rng, 3)
    x = random_complex(rng, 5)
    layer = ComplexLinear(5, 3, dtype=torch.cdouble)
    set_params(layer, w, b)
    emb = real_embedding(layer.weight.detach()).numpy()
    assert emb.shape == (6, 10) and emb.dtype == np.float64
    x_stack = np.concatenate([x.real, x.imag])
    y_stack = emb @ x_stack + np.concatenate([b.real, b.imag])
    y = w @ x + b
    np.testing.assert_allclose(y_stack, np.concatenate([y.real, y.imag]), rtol=1e-12, atol=1e-12)
    y_layer = layer(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(y_stack[:3] + 1j * y_stack[3:], y_layer, rtol=1e-12, atol=1e-12)


def test_real_embedding_rejects_real_or_non_matrix_weights():
    with pytest.raises(ValueError):
        real_embedding(torch.zeros(2, 2))
    with pytest.raises(ValueError):
        real_embedding(torch.zeros(2, dtype=torch.cfloat))


def test_gradcheck_complex_linear():
    torch.manual_seed(3)
    layer = ComplexLinear(4, 3, dtype=torch.cdouble)
    x = torch.randn(5, 4, dtype=torch.cdouble, requires_grad=True)
    w = layer.weight.detach().clone().requires_grad_(True)
    b = (torch.randn(3, dtype=torch.cdouble)).requires_grad_(True)

    def f(x, w, b):
        return functional_call(layer, {"weight": w, "bias": b}, (x,))

    assert torch.autograd.gradcheck(f, (x, w, b))


# ----------------------------------------------------------------------------- ComplexConv1d


def direct_correlation(x, w, b, stride, padding):
    """y[s, o, t] = sum_{c, k} w[o, c, k] * xpad[s, c, t*stride + k] + b[o], in NumPy."""
    batch, in_ch, length = x.shape
    out_ch, _, k = w.shape
    xpad = np.zeros((batch, in_ch, length + 2 * padding), dtype=complex)
    xpad[:, :, padding:padding + length] = x
    n_out = (length + 2 * padding - k) // stride + 1
    y = np.zeros((batch, out_ch, n_out), dtype=complex)
    for s in range(batch):
        for o in range(out_ch):
            for t in range(n_out):
                window = xpad[s, :, t * stride:t * stride + k]
                y[s, o, t] = np.sum(w[o] * window) + (0 if b is None else b[o])
    return y


@pytest.mark.parametrize("kernel_size, stride, padding, bias",
                         [(3, 1, 0, True), (3, 2, 1, True), (1, 1, 0, False), (4, 3, 2, True)])
def test_complex_conv1d_is_the_direct_complex_correlation(kernel_size, stride, padding, bias):
    rng = np.random.default_rng(kernel_size * 10 + stride)
    w, b = random_complex(rng, 3, 2, kernel_size), random_complex(rng, 3)
    x = random_complex(rng, 2, 2, 9)
    conv = ComplexConv1d(2, 3, kernel_size, stride=stride, padding=padding, bias=bias,
                         dtype=torch.cdouble)
    assert conv.weight.shape == (3, 2, kernel_size)
    set_params(conv, w, b if bias else None)
    got = conv(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, direct_correlation(x, w, b if bias else None, stride, padding),
                               rtol=1e-12, atol=1e-12)


def test_complex_conv1d_kernel_is_not_flipped_or_conjugated_by_hand():
    conv = ComplexConv1d(1, 1, 2, bias=False, dtype=torch.cdouble)
    set_params(conv, np.array([[[1j, 2.0]]]), None)
    x = torch.tensor([[[1 + 0j, 1j, 3.0]]], dtype=torch.cdouble)
    # y[0] = 1j * 1 + 2 * 1j = 3j;  y[1] = 1j * 1j + 2 * 3 = 5
    assert conv(x).tolist() == [[[3j, 5 + 0j]]]


def test_gradcheck_complex_conv1d():
    torch.manual_seed(4)
    conv = ComplexConv1d(2, 2, 3, stride=2, padding=1, dtype=torch.cdouble)
    x = torch.randn(1, 2, 5, dtype=torch.cdouble, requires_grad=True)
    w = conv.weight.detach().clone().requires_grad_(True)
    b = torch.randn(2, dtype=torch.cdouble, requires_grad=True)

    def f(x, w, b):
        return functional_call(conv, {"weight": w, "bias": b}, (x,))

    assert torch.autograd.gradcheck(f, (x, w, b))


# ----------------------------------------------------------------------------- CReLU, batch norm


def test_crelu_acts_on_real_and_imaginary_parts_separately():
    z = torch.tensor([1 - 2j, -3 + 4j, -1 - 1j, 2 + 0.5j, 0j], requires_grad=True)
    y = CReLU()(z)
    assert y.tolist() == [1 + 0j, 0 + 4j, 0j, 2 + 0.5j, 0j]
    y.backward(torch.tensor([1 + 1j, 2 + 2j, 3 + 3j, 4 + 4j, 5 + 5j]))
    assert z.grad.tolist() == [1 + 0j, 0 + 2j, 0j, 4 + 4j, 0j]


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5)])
def test_complex_batchnorm_normalises_each_part_on_its_own(shape):
    rng = np.random.default_rng(5)
    z = 3 * rng.standard_normal(shape) + 2 + 1j * (0.5 * rng.standard_normal(shape) - 7)
    bn = ComplexBatchNorm1d(3).double()
    y = bn(torch.from_numpy(z)).detach().numpy()
    axes = (0,) if len(shape) == 2 else (0, 2)
    for part, out in ((z.real, y.real), (z.imag, y.imag)):
        mean = part.mean(axis=axes, keepdims=True)
        var = part.var(axis=axes, keepdims=True)          # biased, as batch norm uses
        np.testing.assert_allclose(out, (part - mean) / np.sqrt(var + 1e-5), rtol=1e-9,
                                   atol=1e-9)
    # the imaginary part's statistics do not leak into the real part's running mean
    np.testing.assert_allclose(bn.real.running_mean.numpy(),
                               0.1 * z.real.mean(axis=axes), rtol=1e-12)
    np.testing.assert_allclose(bn.imag.running_mean.numpy(),
                               0.1 * z.imag.mean(axis=axes), rtol=1e-12)
