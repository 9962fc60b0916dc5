"""The Asymptotic-Quantized Estimator and MINW-Net's quantizers (seed 004, eq. 4-7, 18-22, Table I).

Expected values are worked out by hand from the equations, or taken from sw/families/ste.py's
independent implementation of eq. 5.
"""

import pytest
import torch
from torch import nn

from hwgen.sw.families.shift.aqe import (
    AQE, STE, AlphaSchedule, QuantLinear, Quantizer, inference_op,
    power_of_two, set_alpha, sign, ternary,
)
from hwgen.sw.families.ste import binarize, clip_weights

A = [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5]
G = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def forward_backward(estimator, h, a, g):
    x = torch.tensor(a, requires_grad=True)
    y = estimator(x, h)
    y.backward(torch.tensor(g))
    return y.tolist(), x.grad.tolist()


def test_aqe_forward_and_backward_follow_eq_18():
    # forward 0.75*sign(a) + 0.25*a; backward 1.5 * g * 1{|a| <= 1}, |a| = 1 included
    y, grad = forward_backward(AQE(0.75), sign(), A, G)
    assert y == [-1.25, -1.0, -0.875, 0.75, 0.875, 1.0, 1.125]
    assert grad == [0.0, 3.0, 4.5, 6.0, 7.5, 9.0, 0.0]


def test_aqe_gradient_cuts_off_just_outside_unit_interval():
    one = torch.tensor(1.0)
    above = torch.nextafter(one, torch.tensor(2.0)).item()
    _, grad = forward_backward(AQE(0.25), sign(), [-above, -1.0, 1.0, above], [1.0] * 4)
    assert grad == [0.0, 0.5, 0.5, 0.0]


def test_aqe_with_ternary_mixes_the_ternary_level():
    # eq. 18 with eq. 21 (delta 1/2): 0.5*h(a) + 0.5*a
    y, grad = forward_backward(AQE(0.5), ternary(0.5), [-0.75, -0.5, 0.25, 0.625], [2.0] * 4)
    assert y == [-0.875, -0.25, 0.125, 0.8125]
    assert grad == [2.0] * 4


def test_ste_forwards_h_and_passes_clipped_gradient():
    y, grad = forward_backward(STE(), sign(), A, G)
    assert y == [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    assert grad == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]


def test_aqe_at_one_half_gives_the_ste_gradient_exactly():
    # Theorem 1: 2 * 1/2 * g * 1{|a| <= 1} is eq. 5; checked against sw/families/ste.py's eq. 5
    gen = torch.Generator().manual_seed(1)
    a = torch.cat([torch.randn(500, generator=gen) * 1.5, torch.tensor([-1.0, 1.0, 0.0])])
    g = torch.randn(a.shape, generator=gen)
    grads = []
    for quantize in (lambda x: AQE(0.5)(x, sign()), lambda x: AQE(0.5, noise=True)(x, sign()),
                     lambda x: STE()(x, sign()), binarize):
        x = a.clone().requires_grad_()
        quantize(x).backward(g)
        grads.append(x.grad)
    for grad in grads[:-1]:
        assert torch.equal(grad, grads[-1])


@pytest.mark.parametrize("h", [sign(), ternary(0.5), power_of_two(3)],
                         ids=["sign", "ternary", "pow2"])
def test_alpha_to_one_forwards_h(h):
    a = torch.linspace(-1.5, 1.5, 61)
    assert torch.equal(AQE(1.0)(a, h), h(a))
    # eq. 6: the distance to h(a) is (1 - alpha) * |a - h(a)|
    gap = (AQE(0.999)(a, h) - h(a)).abs()
    assert torch.all(gap <= 1e-3 * (a - h(a)).abs() + 1e-6)


def test_sign_levels_and_zero():
    a = torch.tensor([-2.0, -1e-8, -0.0, 0.0, 1e-8, 0.7])
    assert sign()(a).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    assert sign().levels == (-1.0, 1.0) and sign().bits == 1


def test_ternary_is_zero_up_to_and_at_the_threshold():
    above = torch.nextafter(torch.tensor(0.25), torch.tensor(1.0)).item()
    a = torch.tensor([-3.0, -above, -0.25, -0.1, 0.0, 0.25, above, 0.9])
    assert ternary(0.25)(a).tolist() == [-1.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
    assert ternary().levels == (-1.0, 0.0, 1.0) and ternary().bits == 2
    with pytest.raises(ValueError, match="positive"):
        ternary(0.0)


def test_power_of_two_three_bits_rounds_to_nearest_level():
    # q = 3: levels {0, +-1/4, +-1/2, +-1}; midpoint thresholds 1/8, 3/8, 3/4, ties go down
    h = power_of_two(3)
    assert h.levels == (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0)
    assert h.thresholds == (0.125, 0.375, 0.75)
    a = [0.0, 0.1, 0.125, 0.126, 0.375, 0.4, 0.75, 0.76, 1.0, 5.0, -0.3, -0.75, -0.9]
    assert h(torch.tensor(a)).tolist() == [0.0, 0.0, 0.0, 0.25, 0.25, 0.5, 0.5, 1.0, 1.0, 1.0,
                                          -0.25, -0.5, -1.0]


def test_power_of_two_four_bits_is_nearest_of_fifteen_levels():
    # q = 7: magnitudes 0 and 2^-6 .. 2^0
    magnitudes = [0.0] + [2.0 ** -p for p in range(7)]
    levels = torch.tensor(sorted({-m for m in magnitudes} | set(magnitudes)), dtype=torch.float64)
    h = power_of_two(4)
    assert h.levels == tuple(levels.tolist()) and h.bits == 4
    gen = torch.Generator().manual_seed(2)
    a = torch.rand(2000, generator=gen, dtype=torch.float64) * 2.4 - 1.2
    q = h(a)
    assert torch.isin(q, levels).all()
    assert torch.all((a - q).abs() <= (a[:, None] - levels[None, :]).abs().min(dim=1).values)


def test_power_of_two_two_bits_is_ternary_at_one_half():
    a = torch.linspace(-1.2, 1.2, 97)
    assert torch.equal(power_of_two(2)(a), ternary(0.5)(a))
    with pytest.raises(ValueError, match="n_bits >= 2"):
        power_of_two(1)


def test_output_functions_keep_float64():
    a = torch.tensor([0.3, -0.6], dtype=torch.float64)
    for h in (sign(), ternary(), power_of_two(3)):
        assert h(a).dtype == torch.float64


def test_noise_is_uniform_on_minus_one_one_and_seeded():
    a = torch.zeros(3, 4000)
    z = AQE(noise=True, generator=torch.Generator().manual_seed(3)).noise_like(a)
    assert z.shape == a.shape and z.dtype == a.dtype
    assert z.min() >= -1 and z.max() <= 1 and z.min() < -0.99 and z.max() > 0.99
    # U[-1, 1]: mean 0, variance 1/3
    assert abs(z.mean().item()) < 0.02 and abs(z.var().item() - 1 / 3) < 0.01
    same = AQE(noise=True, generator=torch.Generator().manual_seed(3)).noise_like(a)
    other = AQE(noise=True, generator=torch.Generator().manual_seed(4)).noise_like(a)
    assert torch.equal(z, same) and not torch.equal(z, other)


def test_noisy_sign_has_expectation_a_inside_unit_interval():
    # eq. 7 at alpha = 1 is sign(a - z); P(z < a) = (1 + a) / 2 (eq. 12), so E = a for |a| <= 1
    est = AQE(1.0, noise=True, generator=torch.Generator().manual_seed(5))
    for a in (-0.5, 0.0, 0.5, 2.0):
        y = est(torch.full((20000,), a), sign())
        assert set(y.unique().tolist()) <= {-1.0, 1.0}
        assert abs(y.mean().item() - min(a, 1.0)) < 0.03


def test_noisy_aqe_gradient_ignores_the_noise():
    est = AQE(0.75, noise=True, generator=torch.Generator().manual_seed(6))
    _, grad = forward_backward(est, sign(), A, G)
    assert grad == [0.0, 3.0, 4.5, 6.0, 7.5, 9.0, 0.0]


def test_alpha_schedule_endpoints_and_monotonicity():
    s = AlphaSchedule(10)
    assert (s(0), s(5), s(10), s(25)) == (0.5, 0.75, 1.0, 1.0)
    values = [s(t) for t in range(30)]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert AlphaSchedule(4, start=0.2)(0) == 0.2 and AlphaSchedule(4, start=0.2)(4) == 1.0
    for bad in (dict(steps=0), dict(steps=5, start=0.0), dict(steps=5, start=1.5)):
        with pytest.raises(ValueError):
            AlphaSchedule(**bad)


def test_alpha_outside_unit_interval_is_refused():
    for bad in (0.0, -0.1, 1.01):
        with pytest.raises(ValueError, match="alpha"):
            AQE(bad)


def test_set_alpha_reaches_every_aqe_quantizer():
    shared, own = AQE(0.5), AQE(0.6)
    model = nn.Sequential(QuantLinear(3, 2, weight_h=sign(), estimator=shared),
                          Quantizer(ternary(), own),
                          QuantLinear(2, 2, weight_h=sign(), estimator=STE()))
    set_alpha(model, 0.9)
    assert shared.alpha == 0.9 and own.alpha == 0.9


def test_quant_linear_weights_follow_eq_19_in_training_and_eq_20_in_eval():
    layer = QuantLinear(2, 2, weight_h=sign(), estimator=AQE(0.75))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -2.0], [1.0, -0.25]]))
    x = torch.tensor([[1.0, 2.0]], requires_grad=True)
    y = layer(x)
    # W_hat = 0.75*sign(W) + 0.25*W = [[0.875, -1.25], [1.0, -0.8125]]
    assert y.tolist() == [[-1.625, -0.625]]
    (y * torch.tensor([[1.0, 3.0]])).sum().backward()
    # dL/dW_hat = g x^T = [[1, 2], [3, 6]]; dL/dW = 1.5 * that * 1{|W| <= 1}
    assert layer.weight.grad.tolist() == [[1.5, 0.0], [4.5, 9.0]]
    assert x.grad.tolist() == [[3.875, -3.6875]]
    layer.eval()
    assert layer(torch.tensor([[1.0, 2.0]])).tolist() == [[-1.0, -1.0]]


def test_quantizer_in_eval_is_h_alone():
    q = Quantizer(power_of_two(3), AQE(0.5, noise=True, generator=torch.Generator().manual_seed(7)))
    a = torch.tensor([-0.9, -0.2, 0.05, 0.3, 0.6])
    assert q(a).tolist() != [-1.0, -0.25, 0.0, 0.25, 0.5]
    q.eval()
    assert q(a).tolist() == [-1.0, -0.25, 0.0, 0.25, 0.5]


def test_clip_weights_clips_quant_linear_to_unit_interval_and_keeps_the_inside():
    layer = QuantLinear(3, 2, weight_h=ternary(), estimator=AQE())
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, -0.375, -1.5], [0.5, -7.0, 0.0]]))
    clip_weights(nn.Sequential(layer))
    assert layer.weight.tolist() == [[1.0, -0.375, -1.0], [0.5, -1.0, 0.0]]


@pytest.mark.parametrize("m, n, op", [
    # Table I of seed 004, "ADDER" dropped: the smaller bit width decides
    (1, 1, "XNOR"), (1, 2, "XNOR"), (1, 3, "XNOR"), (1, 16, "XNOR"),
    (2, 1, "XNOR"), (2, 2, "XNOR"), (2, 3, "XNOR"), (2, 16, "XNOR"),
    (3, 1, "XNOR"), (3, 2, "XNOR"), (3, 3, "SHIFT"), (3, 16, "SHIFT"),
    (16, 1, "XNOR"), (16, 2, "XNOR"), (16, 3, "SHIFT"), (32, 32, "MAC"),
])
def test_inference_op_follows_table_i(m, n, op):
    assert inference_op(m, n) == op


def test_inference_op_refuses_non_positive_widths():
    with pytest.raises(ValueError, match="m_bits"):
        inference_op(0, 3)


def test_w1a1_aqe_net_learns_digits(digits_split):
    """1 hidden layer, sign weights and activations, AQE with alpha 1/2 -> 1; eval is pure W1A1."""
    s = digits_split
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        est = AQE(0.5)
        model = nn.Sequential(
            QuantLinear(64, 64, weight_h=sign(), estimator=est), nn.BatchNorm1d(64),
            Quantizer(sign(), est),
            QuantLinear(64, 10, weight_h=sign(), estimator=est), nn.BatchNorm1d(10))
        # first layer input unquantized (§III-E): pixels scaled to [0, 1]
        x = torch.as_tensor(s.x_train, dtype=torch.float32) / 16
        y = torch.as_tensor(s.y_train)
        epochs, batch = 15, 64
        # alpha reaches 1 two thirds in: the rest trains the inference network, batch norm's
        # running statistics included
        schedule = AlphaSchedule(10 * -(-len(x) // batch))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        gen = torch.Generator().manual_seed(0)
        step = 0
        for _ in range(epochs):
            perm = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), batch):
                set_alpha(model, schedule(step))
                idx = perm[i:i + batch]
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                clip_weights(model)
                step += 1
        assert est.alpha == 1.0
        model.eval()
        with torch.no_grad():
            hidden = model[:3](torch.as_tensor(s.x_test, dtype=torch.float32) / 16)
            pred = model(torch.as_tensor(s.x_test, dtype=torch.float32) / 16).argmax(dim=1)
    finally:
        torch.set_num_threads(threads)
    assert set(hidden.unique().tolist()) == {-1.0, 1.0}
    acc = float((pred.numpy() == s.y_test).mean())
    assert acc > 0.8, acc  # chance is 0.1
