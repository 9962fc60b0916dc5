"""MIMO over-the-air computation layer of seed 000: channel model, reciprocity backward, beams."""

import math

import numpy as np
import pytest
import torch

from hwgen.sw.families.constellation import oac
from hwgen.sw.families.constellation.oac import (DriftingChannel, OACLinear, backward_beam_loss,
                                                 forward_beam_loss, random_channel, steering_vector)

CD = torch.complex128


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _layer(n_in, n_out, rank, n_r, n_t, paths=8, seed=0, **kw):
    torch.manual_seed(seed)
    H = random_channel(n_r, n_t, paths, _gen(seed + 100), dtype=CD)
    return OACLinear(n_in, n_out, H, rank, dtype=CD, **kw), H


def _reference_forward(x, P, W, C, H, n_out):
    """Plain-autograd eq. 4: y_k = C^H H P W~_k x, concatenated over k and cut to n_out."""
    ys = [(C.conj().T @ H @ P @ W[k] @ x.T).T for k in range(W.shape[0])]
    return torch.cat(ys, dim=1)[:, :n_out]


def _complement(A):
    """Orthonormal basis (numpy) of the orthogonal complement of the column span of A."""
    u, s, _ = np.linalg.svd(A.detach().numpy(), full_matrices=True)
    return torch.from_numpy(u[:, np.linalg.matrix_rank(A.detach().numpy()):])


# ---------------------------------------------------------------- channel model (eq. 17-18)

def test_steering_vector_is_unit_modulus_geometric():
    angle = torch.tensor([0.3, -2.0, math.pi], dtype=torch.float64)
    v = steering_vector(5, angle)
    assert v.shape == (3, 5)
    torch.testing.assert_close(v.abs(), torch.ones(3, 5, dtype=torch.float64))
    for i, a in enumerate(angle.tolist()):
        expected = torch.tensor([complex(math.cos(m * a), math.sin(m * a)) for m in range(5)])
        torch.testing.assert_close(v[i], expected.to(v.dtype))


@pytest.mark.parametrize("n_r, n_t, paths", [(16, 16, 8), (6, 5, 3), (4, 6, 8), (9, 3, 8),
                                              (64, 64, 8)])
def test_random_channel_rank(n_r, n_t, paths):
    for seed in range(3):
        H = random_channel(n_r, n_t, paths, _gen(seed), dtype=CD)
        assert H.shape == (n_r, n_t) and H.dtype == CD
        assert np.linalg.matrix_rank(H.numpy()) == min(paths, n_r, n_t)


def test_random_channel_single_path_structure():
    # one path: H = a u(theta) v(phi)^H, so every entry has modulus |a| in [0.5, 1.5], and
    # moving down a row (across a column) multiplies by one unit-modulus phase e^{j theta}
    # (e^{-j phi})
    for seed in range(5):
        H = random_channel(7, 5, 1, _gen(seed), dtype=CD)
        mod = H.abs()
        assert 0.5 <= mod[0, 0] <= 1.5
        torch.testing.assert_close(mod, torch.full_like(mod, float(mod[0, 0])))
        down, across = H[1:, :] / H[:-1, :], H[:, 1:] / H[:, :-1]
        torch.testing.assert_close(down, torch.full_like(down, complex(down[0, 0])))
        torch.testing.assert_close(across, torch.full_like(across, complex(across[0, 0])))
        torch.testing.assert_close(down.abs(), torch.ones_like(down.abs()))


def test_random_channel_path_gains_range():
    # with one path, |H_ij| = |a|: over many draws it fills U(0.5, 1.5)
    mods = torch.stack([random_channel(2, 2, 1, _gen(s), dtype=CD)[0, 0].abs()
                        for s in range(400)])
    assert mods.min() >= 0.5 and mods.max() <= 1.5
    assert abs(float(mods.mean()) - 1.0) < 0.05


def test_random_channel_generator_reproducible():
    a = random_channel(8, 8, generator=_gen(3))
    b = random_channel(8, 8, generator=_gen(3))
    c = random_channel(8, 8, generator=_gen(4))
    assert a.dtype == torch.cfloat
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_drifting_channel_moves_every_batches_by_eq18():
    rho, every = 0.3, 3
    ch = DriftingChannel(6, 4, rho, every=every, paths=5, generator=_gen(11), dtype=CD)
    ref = _gen(11)
    expected = random_channel(6, 4, 5, ref, dtype=CD)
    assert torch.equal(ch.H, expected)
    for t in range(1, 10):
        moved = ch.step()
        assert moved == (t % every == 0) and ch.t == t
        if moved:
            h_hat = random_channel(6, 4, 5, ref, dtype=CD)
            expected = 0.7 * expected + 0.3 * h_hat
            torch.testing.assert_close(ch.H, expected)
        else:
            assert torch.equal(ch.H, expected)


def test_drifting_channel_seed_and_rho_zero():
    ch = DriftingChannel(5, 5, 0.0, every=2, seed=7)
    assert torch.equal(ch.H, random_channel(5, 5, 8, _gen(7)))
    h0 = ch.H.clone()
    assert sum(ch.step() for _ in range(10)) == 5
    assert torch.equal(ch.H, h0)
    with pytest.raises(ValueError):
        DriftingChannel(5, 5, 1.5)


# ---------------------------------------------------------------- forward (eq. 1-4)

@pytest.mark.parametrize("n_in, n_out, rank, n_r, n_t", [(5, 3, 3, 6, 4), (5, 7, 3, 6, 4),
                                                          (3, 8, 2, 4, 5), (4, 1, 2, 3, 3)])
def test_noiseless_forward_is_effective_weight(n_in, n_out, rank, n_r, n_t):
    layer, H = _layer(n_in, n_out, rank, n_r, n_t)
    assert layer.K == -(-n_out // rank) and layer.W.shape == (layer.K, rank, n_in)
    x = torch.randn(10, n_in, dtype=CD)
    y = layer(x)
    assert y.shape == (10, n_out)
    W_eff = layer.effective_weight()
    assert W_eff.shape == (n_out, n_in)
    torch.testing.assert_close(y, x @ W_eff.T)
    torch.testing.assert_close(y, _reference_forward(x, layer.P, layer.W, layer.C, H, n_out))
    # the hand-built stack C^H H P W~_k
    blocks = [layer.C.conj().T @ H @ layer.P @ layer.W[k] for k in range(layer.K)]
    torch.testing.assert_close(W_eff, torch.cat(blocks)[:n_out])


def test_layer_reads_current_channel():
    ch = DriftingChannel(5, 4, 1.0, every=1, paths=8, generator=_gen(2), dtype=CD)
    torch.manual_seed(0)
    layer = OACLinear(3, 4, ch, 2, dtype=CD)
    x = torch.randn(6, 3, dtype=CD)
    y0 = layer(x)
    ch.step()
    y1 = layer(x)
    assert not torch.allclose(y0, y1)
    torch.testing.assert_close(y1, _reference_forward(x, layer.P, layer.W, layer.C, ch.H, 4))


def test_layer_validates():
    H = random_channel(4, 3, dtype=CD)
    with pytest.raises(ValueError):
        OACLinear(3, 4, H, 4)                 # rank > min(n_r, n_t)
    with pytest.raises(ValueError):
        OACLinear(3, 4, H, 2, n_t=5)          # does not match H
    layer = OACLinear(3, 4, H, 2, dtype=CD)
    with pytest.raises(ValueError):
        layer(torch.randn(2, 4, dtype=CD))
    with pytest.raises(RuntimeError):
        forward_beam_loss(layer)
    with pytest.raises(RuntimeError):
        backward_beam_loss(layer)


# ---------------------------------------------------------------- reciprocity backward (5-11)

@pytest.mark.parametrize("n_in, n_out, rank, n_r, n_t", [(5, 3, 3, 6, 4), (5, 7, 3, 6, 4),
                                                          (3, 8, 2, 4, 5), (6, 5, 4, 8, 8)])
def test_reciprocity_backward_matches_autograd(n_in, n_out, rank, n_r, n_t):
    layer, H = _layer(n_in, n_out, rank, n_r, n_t, seed=n_out)
    x = torch.randn(9, n_in, dtype=CD, requires_grad=True)
    T = torch.randn(9, n_out, dtype=CD)

    def task(y):   # a real loss mixing a linear and a quadratic term
        return (y * T).real.sum() + 0.5 * y.abs().square().sum()

    task(layer(x)).backward()
    ref = {n: t.detach().clone().requires_grad_(True)
           for n, t in [("x", x), ("P", layer.P), ("W", layer.W), ("C", layer.C)]}
    task(_reference_forward(ref["x"], ref["P"], ref["W"], ref["C"], H, n_out)).backward()
    for name, got in [("x", x.grad), ("P", layer.P.grad), ("W", layer.W.grad),
                      ("C", layer.C.grad)]:
        assert got is not None and got.abs().max() > 0, name
        torch.testing.assert_close(got, ref[name].grad, msg=name)


def test_transmitter_gradients_come_through_the_reciprocal_channel(monkeypatch):
    layer, H = _layer(4, 5, 2, 5, 4)
    x = torch.randn(6, 4, dtype=CD, requires_grad=True)
    calls = []

    def silent(H_, s):          # a backward link that delivers nothing
        calls.append(s.shape)
        return torch.zeros(*s.shape[:-1], H_.shape[1], dtype=s.dtype)

    monkeypatch.setattr(oac, "_transmit_back", silent)
    layer(x).abs().square().sum().backward()
    assert calls == [(layer.K, 6, 5)]
    for g in (x.grad, layer.P.grad, layer.W.grad):
        assert g.abs().max() == 0
    assert layer.C.grad.abs().max() > 0     # the receiver's own gradient (eq. 5)


# ---------------------------------------------------------------- noise and SNR

@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_forward_and_backward_snr(snr_db):
    layer, H = _layer(4, 4, 2, 8, 8, snr_db=snr_db)
    B = 4000
    x = torch.randn(B, 4, dtype=CD)
    g = torch.randn(B, 4, dtype=CD)
    y = layer(x)
    y.backward(g)
    # forward: received minus the noiseless H P W~_k x
    x_t = torch.einsum("krn,bn->kbr", layer.W.detach(), x) @ layer.P.detach().T
    clean = x_t @ H.T
    noise = layer.received - clean
    ratio = clean.abs().square().mean() / noise.abs().square().mean()
    assert abs(float(ratio) / 10 ** (snr_db / 10) - 1) < 0.05
    assert abs(float(noise.real.square().mean() / noise.imag.square().mean()) - 1) < 0.05
    # backward: received gradient minus the noiseless H^H C g_y (eq. 6)
    clean_b = (g.reshape(B, 2, 2).transpose(0, 1) @ layer.C.detach().T) @ H.conj()
    noise_b = layer.received_gradient - clean_b
    ratio_b = clean_b.abs().square().mean() / noise_b.abs().square().mean()
    assert abs(float(ratio_b) / 10 ** (snr_db / 10) - 1) < 0.05


def test_noiseless_backward_option_and_determinism():
    layer, H = _layer(3, 4, 2, 5, 5, snr_db=5.0, noisy_backward=False)
    x, g = torch.randn(7, 3, dtype=CD), torch.randn(7, 4, dtype=CD)
    layer(x).backward(g)
    clean_b = (g.reshape(7, 2, 2).transpose(0, 1) @ layer.C.detach().T) @ H.conj()
    torch.testing.assert_close(layer.received_gradient, clean_b)
    quiet, _ = _layer(3, 4, 2, 5, 5)
    assert torch.equal(quiet(x), quiet(x))
    assert not torch.equal(layer(x), layer(x))


# ---------------------------------------------------------------- beam losses (eq. 15-16)

def test_forward_beam_loss():
    layer, H = _layer(5, 6, 2, 8, 6, paths=8)
    layer(torch.randn(32, 5, dtype=CD))
    # noiseless y_r,k lie in span(H P); its complement holds the N_r - r weakest directions
    HP = (H @ layer.P).detach()
    Q = _complement(HP)
    assert Q.shape == (8, 6)
    with torch.no_grad():
        layer.C.copy_(HP @ torch.randn(2, 2, dtype=CD))
    assert forward_beam_loss(layer).item() < 1e-18 * layer.C.detach().abs().square().sum().item()
    with torch.no_grad():
        layer.C.copy_(torch.randn(8, 2, dtype=CD))
    loss = forward_beam_loss(layer)
    assert loss > 0.1
    torch.testing.assert_close(loss, (layer.C.detach().conj().T @ Q).abs().square().sum())
    loss.backward()     # d/dconj(C) of tr(C^H Q Q^H C), PyTorch's convention doubles it
    torch.testing.assert_close(layer.C.grad, 2 * Q @ Q.conj().T @ layer.C.detach())
    assert layer.P.grad is None


def test_backward_beam_loss():
    layer, H = _layer(5, 6, 2, 6, 8, paths=8)
    layer(torch.randn(32, 5, dtype=CD)).backward(torch.randn(32, 6, dtype=CD))
    # noiseless g_x_t,k = H^H C g_y lie in span(H^H C)
    HC = (H.conj().T @ layer.C).detach()
    Q = _complement(HC)
    assert Q.shape == (8, 6)
    with torch.no_grad():
        layer.P.copy_(HC @ torch.randn(2, 2, dtype=CD))
    assert backward_beam_loss(layer).item() < 1e-18 * layer.P.detach().abs().square().sum().item()
    with torch.no_grad():
        layer.P.copy_(torch.randn(8, 2, dtype=CD))
    layer.P.grad = None
    loss = backward_beam_loss(layer)
    assert loss > 0.1
    torch.testing.assert_close(loss, (layer.P.detach().conj().T @ Q).abs().square().sum())
    loss.backward()
    torch.testing.assert_close(layer.P.grad, 2 * Q @ Q.conj().T @ layer.P.detach())


def test_beam_loss_zero_when_no_weak_directions():
    layer, _ = _layer(3, 4, 3, 3, 5)
    layer(torch.randn(8, 3, dtype=CD)).abs().sum().backward()
    assert forward_beam_loss(layer).item() == 0.0     # N_r = r
    assert backward_beam_loss(layer).item() > 0       # N_t = 5 > r


# ---------------------------------------------------------------- training sanity

def test_training_fits_a_linear_map():
    torch.manual_seed(0)
    H = random_channel(6, 6, 4, _gen(1))
    layer = OACLinear(4, 6, H, 2)
    target = torch.randn(6, 4, dtype=torch.cfloat)
    x = torch.randn(64, 4, dtype=torch.cfloat)
    y = x @ target.T
    opt = torch.optim.Adam(layer.parameters(), lr=0.05)

    def mse():
        return (layer(x) - y).abs().square().mean()

    start = mse().item()
    for _ in range(100):
        opt.zero_grad()
        loss = mse()
        loss.backward()
        opt.step()
    assert mse().item() < start / 10
