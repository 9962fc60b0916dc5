"""The channel autoencoder of seed 001 (§2.2.1, Tables 4.1, 4.2) and its BPSK, Hamming baselines."""

import itertools
import math

import numpy as np
import pytest
import torch

from hwgen.sw.families.compression import comms as C


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# --- channel and energy ----------------------------------------------------------------------

@pytest.mark.parametrize("power", C.POWERS)
@pytest.mark.parametrize("k, n", C.SETTINGS)
def test_energy_normalization(k, n, power):
    ae = C.teacher(k, n, power=power, seed=3)
    energy = (ae.codebook() ** 2).sum(dim=1).detach()
    if power == "codeword":     # every codeword has energy n: unit power per channel use
        torch.testing.assert_close(energy, torch.full((ae.m,), float(n)), rtol=1e-5, atol=1e-5)
    else:                       # the codebook has average energy n
        assert energy.mean().item() == pytest.approx(n, rel=1e-5)


def test_noise_variance_formula():
    # sigma^2 = 1 / (2 R Eb/N0)
    assert C.noise_variance(0.0, 1.0) == pytest.approx(0.5)
    assert C.noise_variance(10.0, 0.5) == pytest.approx(0.1)
    assert C.noise_variance(3.0, 4 / 7) == pytest.approx(7 / (8 * 10 ** 0.3))


@pytest.mark.parametrize("ebn0_db, k, n", [(0.0, 1, 1), (4.0, 4, 7), (8.0, 8, 8)])
def test_awgn_noise_variance_measured(ebn0_db, k, n):
    x = torch.zeros(50_000, n)
    y = C.channel(x, ebn0_db, k / n, "awgn", torch.Generator().manual_seed(0))
    assert y.var().item() == pytest.approx(C.noise_variance(ebn0_db, k / n), rel=0.03)
    assert abs(y.mean().item()) < 0.01


def test_rayleigh_block_fading():
    gen = torch.Generator().manual_seed(0)
    x = torch.ones(40_000, 4)
    y = C.channel(x, 60.0, 1.0, "rayleigh", gen)             # almost no noise: y = h x
    h = y[:, 0]
    assert (h > 0).all()
    assert (h * h).mean().item() == pytest.approx(1.0, rel=0.03)          # E h^2 = 1
    torch.testing.assert_close(y, h[:, None].expand_as(y), rtol=0, atol=1e-2)  # one h per block
    # |CN(0, 1)| has P(h^2 > t) = exp(-t)
    assert (h * h > 1.0).double().mean().item() == pytest.approx(math.exp(-1.0), abs=0.01)


# --- baselines -------------------------------------------------------------------------------

def test_qfunc_by_hand():
    assert C.qfunc(0.0) == 0.5
    assert C.qfunc(1.96) == pytest.approx(0.025, abs=1e-4)
    assert C.qfunc(-1.0) == pytest.approx(1.0 - C.qfunc(1.0))
    np.testing.assert_allclose(C.qfunc(np.array([0.0, 3.0])), [0.5, 1.3499e-3], rtol=1e-3)


def test_bpsk_theory():
    g = 10 ** 0.4
    assert C.bler_uncoded_bpsk(1, 4.0) == pytest.approx(C.qfunc(math.sqrt(2 * g)))
    assert C.bler_uncoded_bpsk(1, 4.0) == pytest.approx(0.0125, abs=1e-4)
    assert C.bler_uncoded_bpsk(4, 4.0) == pytest.approx(1 - (1 - C.qfunc(math.sqrt(2 * g))) ** 4)
    # Rayleigh, k = 1: the classical (1 - sqrt(g / (1 + g))) / 2
    g = 10.0
    assert C.bler_uncoded_bpsk_rayleigh(1, 10.0) == pytest.approx(
        0.5 * (1 - math.sqrt(g / (1 + g))), rel=1e-4)


@pytest.mark.parametrize("k, kind, ebn0_db", [(1, "awgn", 4.0), (4, "awgn", 4.0),
                                              (1, "rayleigh", 10.0), (4, "rayleigh", 10.0)])
def test_bpsk_simulation_matches_theory(k, kind, ebn0_db):
    n = 200_000
    theory = (C.bler_uncoded_bpsk(k, ebn0_db) if kind == "awgn"
              else C.bler_uncoded_bpsk_rayleigh(k, ebn0_db))
    sim = C.simulate_uncoded_bpsk(k, ebn0_db, n, seed=2, kind=kind)
    assert abs(sim - theory) < 4 * math.sqrt(theory * (1 - theory) / n)


def test_hamming74_code():
    assert not ((C.HAMMING74_G @ C.HAMMING74_H.T) % 2).any()
    data = np.array(list(itertools.product([0, 1], repeat=4)))
    code = C.hamming74_encode(data)
    np.testing.assert_array_equal(code[:, :4], data)                  # systematic
    d = (code[:, None, :] != code[None, :, :]).sum(axis=2)
    assert d[~np.eye(16, dtype=bool)].min() == 3                      # minimum distance 3
    np.testing.assert_array_equal(C.hamming74_decode(code), data)
    # every single-bit error of every codeword is corrected: 16 x 7
    errors = np.eye(7, dtype=np.int64)
    received = (code[:, None, :] + errors[None, :, :]) % 2
    np.testing.assert_array_equal(C.hamming74_decode(received),
                                  np.broadcast_to(data[:, None, :], (16, 7, 4)))


def test_hamming74_simulation_matches_formula():
    n = 100_000
    theory = float(C.bler_hamming74_hard(4.0))
    assert 0.03 < theory < 0.045
    sim = C.simulate_hamming74_hard(4.0, n, seed=3)
    assert abs(sim - theory) < 4 * math.sqrt(theory * (1 - theory) / n)


# --- the autoencoder -------------------------------------------------------------------------

def test_table_parameter_counts():
    assert n_params(C.teacher(8, 8)) == 135_944                      # Table 4.1
    assert n_params(C.student(8, 8)) == 4_360                        # Table 4.2
    t = C.teacher(8, 8)
    assert [n_params(layer) for layer in (t.encoder[0], t.encoder[2], t.decoder[0], t.decoder[2])
            ] == [65_792, 2_056, 2_304, 65_792]


@pytest.mark.parametrize("channel", C.CHANNELS)
@pytest.mark.parametrize("k, n", C.SETTINGS)
def test_shapes(k, n, channel):
    for build in (C.teacher, C.student):
        ae = build(k, n, channel=channel)
        messages = torch.arange(5) % ae.m
        assert ae.encode(messages).shape == (5, n)
        assert ae.codebook().shape == (2 ** k, n)
        assert ae(messages, 5.0, torch.Generator().manual_seed(0)).shape == (5, 2 ** k)
        assert ae.decoder(torch.zeros(3, n)).shape == (3, 2 ** k)   # the receiver alone
        assert ae.rate == k / n


def test_seeded_constructors_and_determinism():
    a, b = C.student(4, 7, seed=5), C.student(4, 7, seed=5)
    state = torch.random.get_rng_state()
    C.teacher(4, 7, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)         # global RNG untouched
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert C.bler(a, 2.0, 5000, seed=1) == C.bler(b, 2.0, 5000, seed=1)


def test_one_channel_codeword_normalization_freezes_encoder():
    # n = 1, energy n per codeword: x / |x| = +-1 has no gradient; only the decoder learns
    ae = C.student(1, 1)
    loss = ae(torch.tensor([0, 1]), 4.0, torch.Generator().manual_seed(0)).sum()
    loss.backward()
    assert all((p.grad == 0).all() for p in ae.encoder.parameters())
    assert any((p.grad != 0).any() for p in ae.decoder.parameters())


def test_one_bit_one_channel_learns_bpsk():
    """Fig. 2.4: the 1-bit-1-channel autoencoder performs as BPSK does."""
    torch.set_num_threads(1)
    ae = C.student(1, 1, power="codebook", seed=0)
    C.train_autoencoder(ae, ebn0_db=4.0, steps=300, batch=256, lr=1e-2, seed=0)
    codebook = ae.codebook().detach().flatten()
    assert codebook[0].item() * codebook[1].item() < 0               # antipodal
    torch.testing.assert_close(codebook.abs(), torch.ones(2), rtol=0, atol=0.1)
    theory = C.bler_uncoded_bpsk(1, 4.0)
    assert C.bler(ae, 4.0, 200_000, seed=1) == pytest.approx(theory, rel=0.2)
    assert ae.losses[-1] < ae.losses[0]


def test_hamming_rate_autoencoder_trains():
    """A short run of the (4, 7) student already beats uncoded BPSK at 6 dB."""
    torch.set_num_threads(1)
    ae = C.student(4, 7, seed=0)
    C.train_autoencoder(ae, ebn0_db=6.0, steps=400, batch=256, lr=1e-2, seed=0)
    assert C.bler(ae, 6.0, 20_000, seed=1) < C.bler_uncoded_bpsk(4, 6.0)
