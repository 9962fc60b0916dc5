"""Multi-branch binary convolutions (seed 003 on conv nets): eq. 8 per output position."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from hwgen.sw.families.mbbn import layers as mbbn
from hwgen.sw.families.ste import binarize
from hwgen.sw.families.mbbn.conv import (MBBNCNN, MBBNConv2d, QuantCNN, QuantConv2d,
                                         branch_logits, branch_sum, conv_output_shape)
from hwgen.sw.families.train import predict

# (input shape, convolutions): MNIST-1D's 1 x 40 rows and digits' 8 x 8 images; the patch
# sizes (5, 3 x 7 = 21, 9, 7 x 9 = 63, 6 x 9 = 54) and the heads' inputs are no multiple of 64
LAYOUTS = [((1, 40), [(7, (1, 5), (1, 2)), (7, (1, 3), (1, 2))]),
           ((8, 8), [(7, 3, 1), (6, 3, 2)])]
BITS = [(1, 1), (2, 2), (3, 2), (2, 3), (4, 4), (8, 8)]


def _quant_cnn(shape, convs, m, k, seed=0, t=2.0):
    torch.manual_seed(seed)
    net = QuantCNN(shape, convs, 10, bits=[(8, k)] + [(m, k)] * len(convs), in_max=255)
    with torch.no_grad():
        for bn in net.bns:
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.normal_()
            bn.bias.normal_()
        for layer in net.layers[1:]:
            layer.act.t.fill_(t)
    return net.eval()


@torch.no_grad()
def _forward64(net, x):
    """``net``'s own float64 logits, as :func:`hwgen.sw.families.train.predict` computes them."""
    return net.double()(torch.as_tensor(x, dtype=torch.float64)).numpy()


@pytest.mark.parametrize("shape,convs", LAYOUTS)
@pytest.mark.parametrize("m,k", BITS)
def test_branch_logits_equal_the_quantized_network(shape, convs, m, k):
    net = _quant_cnn(shape, convs, m, k, seed=m * 10 + k)
    rng = np.random.default_rng(m + k)
    x = rng.integers(0, 256, (150, shape[0] * shape[1]))
    x[:5] = 0        # the extreme input states
    x[5:10] = 255
    got = branch_logits(net, x, chunk=64)
    want = _forward64(net, x)
    # every layer's integer sum by eq. 8 equals the convolution's exactly, so the logits are
    # the same float64 numbers, not merely close
    assert np.array_equal(got, want)
    assert np.array_equal(got.argmax(axis=1), predict(net, x))


@pytest.mark.parametrize("shape,convs", LAYOUTS)
@pytest.mark.parametrize("m,k", BITS)
def test_branch_sum_is_the_integer_convolution(shape, convs, m, k):
    # eq. 8 per output position == the convolution of the odd integer states, as int64
    net = _quant_cnn(shape, convs, m, k, seed=m + 7 * k)
    rng = np.random.default_rng(m * k)
    for layer in net.layers:
        n = (1 << layer.m_bits) - 1
        if isinstance(layer, QuantConv2d):
            size = (9, layer.weight.shape[1], *shape)
        else:
            size = (9, layer.in_features)
        codes = torch.as_tensor(2 * rng.integers(0, n + 1, size) - n)
        codes[0] = n           # every state at an extreme
        codes[1] = -n
        w = torch.as_tensor(layer.weight_quant.codes(layer.weight))
        if isinstance(layer, QuantConv2d):
            want = F.conv2d(codes.double(), w.double(), stride=layer.stride)
        else:
            want = codes.double() @ w.double().T
        got = branch_sum(layer, codes)
        assert got.dtype == torch.int64
        assert torch.equal(got, want.to(torch.int64))


def test_branch_logits_with_saturated_activations():
    # a tiny range t puts nearly every activation on the extreme states +-(2^M - 1)
    shape, convs = LAYOUTS[1]
    net = _quant_cnn(shape, convs, 2, 2, seed=3, t=1e-3)
    x = np.random.default_rng(9).integers(0, 256, (80, 64))
    a = net.bns[0](net.layers[0](net.encode_input(torch.as_tensor(x, dtype=torch.float32))))
    codes = net.layers[1].act.codes(a.detach())
    assert np.isin(codes, [-3, 3]).mean() > 0.9
    want = _forward64(net, x)
    assert np.array_equal(branch_logits(net, x), want)


@pytest.mark.parametrize("m,k", [(1, 1), (2, 3), (3, 2)])
def test_mbbn_conv_is_the_sum_of_its_branches(m, k):
    # Algorithm 1, line 5: sum_{m,k} 2^(m+k-2) conv(a_m, W_k), each branch a binary convolution
    torch.manual_seed(m + k)
    layer = MBBNConv2d(3, 5, (2, 3), (1, 2), m_bits=m, k_bits=k, scaled=True)
    a = torch.rand(4, 3, 6, 9) * 2.4 - 1.2
    digits, weights = mbbn.mbit_encode(a, m), binarize(layer.weight)
    want = sum(2.0 ** (i + j) * F.conv2d(digits[i], weights[j], stride=(1, 2))
               for i in range(m) for j in range(k))
    assert torch.equal(layer(a), want * mbbn.eq9_scale(m, k))


def test_quant_conv_takes_the_steps_out_of_the_sum():
    torch.manual_seed(1)
    layer = QuantConv2d(2, 4, 3, 1, m_bits=3, k_bits=2).double()
    layer.act.t.data.fill_(0.8)
    a = torch.randn(3, 2, 5, 5, dtype=torch.float64)
    plain = F.conv2d(layer.act(a), layer.weight_quant(layer.weight))
    torch.testing.assert_close(layer(a), plain, rtol=1e-12, atol=1e-12)


def test_gradients_reach_weights_and_ranges():
    shape, convs = LAYOUTS[0]
    for net in (_quant_cnn(shape, convs, 2, 2).train(),
                MBBNCNN(shape, convs, 10, bits=[(8, 2), (2, 2), (2, 2)], in_max=255)):
        x = torch.randint(0, 256, (16, 40)).float()
        F.cross_entropy(net(x), torch.randint(0, 10, (16,))).backward()
        for layer in net.layers:
            assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
        if isinstance(net, QuantCNN):
            # eq. 15's learned ranges, the first layer's fixed input range excepted
            assert net.layers[0].act.t.grad is None
            assert all(layer.act.t.grad.abs() > 0 for layer in net.layers[1:])
    assert net.layers[0].weight.grad.shape == (2, 7, 1, 1, 5)


def test_shapes_and_refusals():
    assert conv_output_shape((1, 40), (1, 5), (1, 2)) == (1, 18)
    assert conv_output_shape((8, 8), 3, 1) == (6, 6)
    with pytest.raises(ValueError, match="does not fit"):
        conv_output_shape((8, 8), 9, 1)
    with pytest.raises(ValueError, match="does not fit"):
        QuantCNN((4, 4), [(4, 3, 1), (4, 3, 1)], 10, bits=[(8, 2)] * 3, in_max=255)
    with pytest.raises(ValueError, match="one \\(M, K\\) per layer"):
        QuantCNN((8, 8), [(4, 3, 1)], 10, bits=[(8, 2)], in_max=255)
    with pytest.raises(ValueError, match="at least one convolution"):
        QuantCNN((8, 8), [], 10, bits=[(8, 2)], in_max=255)
