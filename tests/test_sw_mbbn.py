"""Multi-branch binary networks (seed 003): encoding, quantizer, eq. 8 golden arithmetic, training.

Expected values come from the seed's formulas written out here (eq. 7, 10, 13, 15, 16, Table II,
Fig. 1), from plain integer matmuls, or from hand arithmetic; never from the module itself.
"""

import copy

import numpy as np
import pytest
import torch

from hwgen.sw.families.mbbn import layers as mbbn
from hwgen.sw.families.train import predict, train


def eq7_value(planes):
    """q = sum_m 2^(m-1) c_m with c_m = 2 b_m - 1 (planes on the leading axis)."""
    return sum((1 << m) * (2 * planes[m].astype(np.int64) - 1) for m in range(len(planes)))


def eq10_smooth(x, m_bits):
    """The smooth part of eq. 10: phi_M^m before the sign, as (M, ...) over m = 1..M."""
    n = 2 ** m_bits - 1
    return np.stack([(1 if m == m_bits else -1) * np.sin(n / 2 ** m * np.pi * x)
                     for m in range(1, m_bits + 1)])


def qnn_input(qnn, x, i):
    """The input of the quantized network's layer i (float, before its own quantizer)."""
    a = 2 * x / qnn.in_max - 1
    for layer, bn in list(zip(qnn.layers, qnn.bns))[:i]:
        a = bn(layer(a))
    return a


def states(m_bits):
    n = 2 ** m_bits - 1
    return np.arange(-n, n + 1, 2)


# --- eq. 7: odd states and their digits ---------------------------------------------------------

@pytest.mark.parametrize("m_bits", range(1, 9))
def test_digits_of_every_state_rebuild_it_and_are_all_distinct(m_bits):
    q = states(m_bits)
    planes = mbbn.code_digits(q, m_bits)
    assert planes.shape == (m_bits, 2 ** m_bits)
    assert np.array_equal(eq7_value(planes), q)
    # the digits read as a binary number count the states up from 0: the offset code
    offset = sum(planes[m].astype(np.int64) << m for m in range(m_bits))
    assert np.array_equal(offset, np.arange(2 ** m_bits))


def test_digits_by_hand():
    # Table II, digits listed (c_2, c_1): -3 {-1,-1}, -1 {-1,+1}, 1 {+1,-1}, 3 {+1,+1}
    planes = mbbn.code_digits(np.array([-3, -1, 1, 3]), 2)
    assert planes[1].tolist() == [0, 0, 1, 1] and planes[0].tolist() == [0, 1, 0, 1]
    # 5 = -1 + 2 + 4; -7 = -1 - 2 - 4
    assert mbbn.code_digits(np.array([5, -7]), 3).T.tolist() == [[0, 1, 1], [0, 0, 0]]


@pytest.mark.parametrize("bad", [[2], [0], [9], [-9]])
def test_code_digits_refuses_what_is_not_a_3_bit_state(bad):
    with pytest.raises(ValueError, match="odd integers in \\[-7, 7\\]"):
        mbbn.code_digits(np.array(bad), 3)


# --- eq. 10 and eq. 13: the M-bit encoder --------------------------------------------------------

@pytest.mark.parametrize("m_bits", range(1, 7))
def test_encoder_is_the_sign_of_eq10_away_from_bin_edges(m_bits):
    n = 2 ** m_bits - 1
    x = np.random.default_rng(m_bits).uniform(-1, 1, 4000)
    edges = 2 * np.arange(-(n // 2), n // 2 + 1) / n   # where some sine of eq. 10 is zero
    x = x[np.abs(x[:, None] - edges[None, :]).min(axis=1) > 1e-6]
    digits = mbbn.mbit_encode(torch.as_tensor(x), m_bits).numpy()
    assert np.array_equal(digits, np.where(eq10_smooth(x, m_bits) >= 0, 1.0, -1.0))


@pytest.mark.parametrize("m_bits", range(1, 9))
def test_encoder_of_a_quantized_number_gives_the_digits_of_its_state(m_bits):
    q = states(m_bits)
    digits = mbbn.mbit_encode(torch.as_tensor(q / (2 ** m_bits - 1)), m_bits).numpy()
    assert np.array_equal(eq7_value((digits + 1) / 2), q)


def test_encoder_at_edges_and_outside_the_range():
    x = torch.tensor([0.0, -1.0, 1.0, -5.0, 5.0])
    d = mbbn.mbit_encode(x, 2).numpy()
    # 0 is the edge between -1 and +1: ties go to the upper state (sign(0) = +1);
    # beyond [-1, 1] HTanh holds the extreme states
    assert eq7_value((d + 1) / 2).tolist() == [1, -3, 3, -3, 3]


@pytest.mark.parametrize("m_bits", range(1, 6))
def test_eq13_derivative_matches_a_finite_difference_of_smooth_eq10(m_bits):
    x0 = np.random.default_rng(10 + m_bits).uniform(-0.99, 0.99, 200)
    h = 1e-6
    fd = (eq10_smooth(x0 + h, m_bits) - eq10_smooth(x0 - h, m_bits)) / (2 * h)
    for m in range(m_bits):
        x = torch.tensor(x0, requires_grad=True)
        upstream = torch.zeros(m_bits, len(x0), dtype=torch.float64)
        upstream[m] = 1.0
        mbbn.mbit_encode(x, m_bits).backward(upstream)
        np.testing.assert_allclose(x.grad.numpy(), fd[m], rtol=1e-6, atol=1e-6)


def test_eq13_for_two_bits_as_printed_and_zero_outside():
    x = torch.tensor([-1.5, -1.0, -0.3, 0.0, 0.5, 1.0, 1.2], dtype=torch.float64,
                     requires_grad=True)
    g = torch.tensor([[1.0] * 7, [10.0] * 7], dtype=torch.float64)   # rows: digit 1, digit 2
    mbbn.mbit_encode(x, 2).backward(g)
    xv = x.detach().numpy()
    inside = np.abs(xv) <= 1
    expected = inside * (10 * 0.75 * np.pi * np.cos(0.75 * np.pi * xv)
                         - 1.5 * np.pi * np.cos(1.5 * np.pi * xv))
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert x.grad[0] == 0 and x.grad[-1] == 0


# --- Table I and eq. 15 ---------------------------------------------------------------------------

def test_hard_tanh_and_hard_relu_values_and_gradients():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    y = mbbn.hard_tanh(x)
    assert y.tolist() == [-1.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    x.grad = None
    y = mbbn.hard_relu(x)
    assert y.tolist() == [0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.0]
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0]


def test_quantize_levels_range_and_ste_gradients_by_hand():
    # K = 2, t = 2: levels t q / 3 for q in {-3, -1, 1, 3}, i.e. -2, -2/3, 2/3, 2
    x = torch.tensor([-3.0, -1.0, 0.0, 0.5, 1.5, 2.0, 2.5], dtype=torch.float64,
                     requires_grad=True)
    t = torch.full((7,), 2.0, dtype=torch.float64, requires_grad=True)
    y = mbbn.quantize(x, t, 2)
    np.testing.assert_allclose(y.detach().numpy(), [-2, -2 / 3, 2 / 3, 2 / 3, 2, 2, 2], rtol=1e-15)
    y.sum().backward()
    # dx: 1 on [-t, t], ends included; dt: q/3 - x/t inside, the level q/3 outside
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    np.testing.assert_allclose(t.grad.numpy(), [-1, 1 / 6, 1 / 3, 1 / 12, 0.25, 0.0, 1],
                               atol=1e-15)


def test_quantize_one_bit_is_scaled_sign_and_every_width_keeps_its_levels():
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    t = torch.tensor(1.25, dtype=torch.float64)
    assert torch.equal(mbbn.quantize(x, t, 1), torch.where(x >= 0, 1.25, -1.25).double())
    for bits in range(2, 7):
        n = 2 ** bits - 1
        q = (mbbn.quantize(x, t, bits) * n / 1.25).numpy()
        assert np.allclose(q, np.round(q)) and set(np.round(q).astype(int)) == set(states(bits))


def test_quantize_module_codes_times_step_is_its_output():
    quant = mbbn.Quantize(3, t=0.8)
    x = torch.randn(500, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(quant.codes(x) * quant.step(), quant(x).detach().numpy(),
                               rtol=1e-6)
    assert set(np.unique(quant.codes(x))) <= set(states(3))


# --- eq. 8, 9, 16 ----------------------------------------------------------------------------

def test_scale_factor_and_speedup_numbers_of_the_seed():
    assert mbbn.eq9_scale(2, 2) == pytest.approx(1 / 9)          # Fig. 1
    assert mbbn.eq16_speedup(8192, 2, 2) == pytest.approx(15.13, abs=0.01)   # sec. V-D


@pytest.mark.parametrize("case", range(12))
def test_eq8_packed_branches_equal_the_integer_matmul(case):
    rng = np.random.default_rng(100 + case)
    m_bits, k_bits = rng.integers(1, 9, 2)
    n = [1, 7, 63, 64, 65, 127, 128, 130, 200, 257, 500, 1000][case]
    x = rng.choice(states(m_bits), (int(rng.integers(1, 20)), n))
    w = rng.choice(states(k_bits), (int(rng.integers(1, 20)), n))
    expected = x.astype(np.int64) @ w.astype(np.int64).T
    assert np.array_equal(mbbn.mbbn_matmul(x, w, m_bits, k_bits), expected)


@pytest.mark.parametrize("m_bits,k_bits,n", [(8, 8, 1000), (1, 8, 65), (8, 1, 63), (3, 5, 130)])
def test_eq8_at_the_extreme_states(m_bits, k_bits, n):
    hm, hk = 2 ** m_bits - 1, 2 ** k_bits - 1
    rng = np.random.default_rng(n)
    x = np.stack([np.full(n, hm), np.full(n, -hm), rng.choice([-hm, hm], n)])
    w = np.stack([np.full(n, hk), np.full(n, -hk), rng.choice([-hk, hk], n)])
    got = mbbn.mbbn_matmul(x, w, m_bits, k_bits)
    assert got[0, 0] == n * hm * hk and got[0, 1] == -n * hm * hk
    assert np.array_equal(got, x @ w.T)


def test_eq8_over_many_row_chunks():
    # 300 columns of 8000 elements: the popcount runs over 3 rows at a time, the last chunk short
    rng = np.random.default_rng(7)
    x = rng.choice(states(2), (10, 8000))
    w = rng.choice(states(3), (300, 8000))
    assert np.array_equal(mbbn.mbbn_matmul(x, w, 2, 3), x @ w.T)


def test_mbbn_matmul_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="must be \\(B, N\\) and \\(J, N\\)"):
        mbbn.mbbn_matmul(np.ones((2, 5), int), np.ones((3, 4), int), 1, 1)


# --- Algorithm 1: the multi-branch layer ------------------------------------------------------

def test_mbbn_layer_is_the_branch_sum_of_algorithm_1_with_its_gradients():
    m_bits, k_bits = 3, 2
    torch.manual_seed(0)
    layer = mbbn.MBBNLinear(20, 6, m_bits=m_bits, k_bits=k_bits, scaled=True).double()
    with torch.no_grad():
        layer.weight[0, 0, :3] = torch.tensor([1.5, -2.0, 0.0])   # outside [-1, 1], and zero
    a0 = np.random.default_rng(1).uniform(-1.2, 1.2, (5, 20))
    a = torch.tensor(a0, requires_grad=True)
    out = layer(a)
    g = torch.randn(5, 6, dtype=torch.float64)
    out.backward(g)

    w = layer.weight.detach().numpy()
    wb = np.where(w >= 0, 1.0, -1.0)                                   # eq. 14
    c = np.where(eq10_smooth(np.clip(a0, -1, 1), m_bits) >= 0, 1.0, -1.0)   # eq. 10
    scale = 1 / ((2 ** m_bits - 1) * (2 ** k_bits - 1))                # eq. 9
    expected = scale * sum(2 ** (m + k) * c[m] @ wb[k].T
                           for m in range(m_bits) for k in range(k_bits))
    np.testing.assert_allclose(out.detach().numpy(), expected, rtol=1e-12)

    g_hat = scale * g.numpy()                                          # line 13
    for k in range(k_bits):                                            # lines 17-23
        g_wk = sum(2 ** (m + k) * g_hat.T @ c[m] for m in range(m_bits))
        np.testing.assert_allclose(layer.weight.grad[k].numpy(), g_wk * (np.abs(w[k]) <= 1),
                                   rtol=1e-12, atol=1e-12)
    assert layer.weight.grad[0, 0, 0] == 0 and layer.weight.grad[0, 0, 1] == 0
    g_a = np.zeros_like(a0)                                            # lines 12-15 with eq. 13
    for m in range(m_bits):
        g_cm = sum(2 ** (m + k) * g_hat @ wb[k] for k in range(k_bits))
        omega = (2 ** m_bits - 1) / 2 ** (m + 1) * np.pi
        sign = 1 if m == m_bits - 1 else -1
        g_a += g_cm * sign * omega * np.cos(omega * a0) * (np.abs(a0) <= 1)
    np.testing.assert_allclose(a.grad.numpy(), g_a, rtol=1e-10, atol=1e-10)


def test_mbbn_layer_accumulator_is_the_packed_golden_sum():
    torch.manual_seed(3)
    layer = mbbn.MBBNLinear(130, 9, m_bits=4, k_bits=3).double()
    a = torch.rand(17, 130, dtype=torch.float64) * 2.4 - 1.2
    with torch.no_grad():
        acc = layer(a).numpy()
    codes, w_codes = layer.input_codes(a), layer.weight_codes()
    assert np.array_equal(mbbn.mbbn_matmul(codes, w_codes, 4, 3), acc)


def test_batch_norm_absorbs_the_eq9_scale():
    torch.manual_seed(4)
    scaled = mbbn.MBBNLinear(64, 16, m_bits=2, k_bits=2, scaled=True)
    plain = copy.deepcopy(scaled)
    plain.scaled = False
    bn = torch.nn.BatchNorm1d(16, eps=1e-12)   # eps alone is not scaled
    a = torch.rand(50, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(bn(scaled(a)), bn(plain(a)), rtol=1e-5, atol=1e-5)


# --- training, both routes, on digits --------------------------------------------------------

def test_algorithm_1_trains_a_two_bit_mbbn_on_digits(digits_split):
    s = digits_split
    torch.manual_seed(0)
    net = mbbn.MBBNMLP(64, (64,), 10, bits=[(2, 2), (2, 2)], in_max=16)
    train(net, s.x_train, s.y_train, epochs=8, progress=False)
    assert (predict(net, s.x_test) == s.y_test).mean() > 0.75    # chance is 0.1


@pytest.fixture(scope="module")
def mixed_qnn(digits_split):
    """Algorithm 2 with a different (M, K) per layer (Table IV's mixed precision)."""
    s = digits_split
    torch.manual_seed(0)
    net = mbbn.QuantMLP(64, (48, 32), 10, bits=[(2, 2), (3, 1), (2, 3)], in_max=16)
    return train(net, s.x_train, s.y_train, epochs=8, progress=False)


def test_algorithm_2_trains_a_mixed_precision_qnn(mixed_qnn, digits_split):
    s = digits_split
    assert (predict(mixed_qnn, s.x_test) == s.y_test).mean() > 0.75
    for layer in mixed_qnn.layers:
        assert set(np.unique(layer.weight_quant.codes(layer.weight))) <= set(states(layer.k_bits))


def test_decomposed_qnn_predicts_the_same_on_packed_branches(mixed_qnn, digits_split):
    s = digits_split
    qnn = copy.deepcopy(mixed_qnn).double().eval()
    net = mbbn.decompose(qnn)
    x = torch.as_tensor(s.x_test, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(net(x), qnn(x), rtol=1e-9, atol=1e-9)
        # the branch weights are +-1 digits whose eq. 7 value is the quantized weight's state
        for q_layer, b_layer in zip(qnn.layers, net.layers):
            assert set(np.unique(b_layer.weight.numpy())) <= {-1.0, 1.0}
            planes = (b_layer.weight.numpy() + 1) / 2
            assert np.array_equal(eq7_value(planes), q_layer.weight_quant.codes(q_layer.weight))
        # every layer's accumulator, run on packed xnor-popcount branches, scaled by eq. 9
        # with r = t_a t_w, is the quantized layer's output
        a = 2 * x / 16 - 1
        for i, (q_layer, b_layer) in enumerate(zip(qnn.layers, net.layers)):
            acc = mbbn.mbbn_matmul(b_layer.input_codes(a), b_layer.weight_codes(),
                                   b_layer.m_bits, b_layer.k_bits)
            s_i = q_layer.act.step() * q_layer.weight_quant.step()
            q_out = q_layer(qnn_input(qnn, x, i))
            np.testing.assert_allclose(acc * s_i, q_out.numpy(), rtol=1e-9, atol=1e-9)
            if i < len(net.bns):
                # the folded batch norm reads the integer sum where the next quantizer reads
                # BN(s acc) / t
                a = net.bns[i](torch.as_tensor(acc, dtype=torch.float64))
                t_next = qnn.layers[i + 1].act.range()
                torch.testing.assert_close(a, qnn.bns[i](q_out) / t_next, rtol=1e-9, atol=1e-9)


def test_training_clips_mbbn_branch_weights_to_unit_interval():
    from hwgen.sw.families.ste import clip_weights

    layer = mbbn.MBBNLinear(5, 3, m_bits=2, k_bits=2)
    with torch.no_grad():
        layer.weight.mul_(4)
    inside = layer.weight.detach().abs() <= 1
    before = layer.weight.detach().clone()
    clip_weights(torch.nn.Sequential(layer))
    w = layer.weight.detach()
    assert w.abs().max() <= 1 and (w.abs() == 1).any()
    assert torch.equal(w[inside], before[inside])
