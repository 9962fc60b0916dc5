"""Modulation recognition of seed 001 (§2.2.4, §4.1.2): generated frames, CNNs, distillation."""

import numpy as np
import pytest
import torch

from hwgen.sw.families.compression import modrec as M


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def complex_frames(x):
    return x[:, 0].astype(np.float64) + 1j * x[:, 1].astype(np.float64)


@pytest.fixture(scope="module")
def clean():
    """Noiseless frames, 24 per class."""
    x, labels, _ = M.generate(12, [0.0, 10.0], seed=3, noise=False)
    return complex_frames(x), labels


def of(clean, name):
    z, labels = clean
    return z[labels == M.CLASSES.index(name)]


# --- the generator ---------------------------------------------------------------------------

def test_shapes_labels_and_order():
    x, labels, snr = M.generate(3, [0, 10], frame_len=128, seed=0)
    n = 11 * 3 * 2
    assert x.shape == (n, 2, 128) and x.dtype == np.float32
    assert labels.shape == (n,) and labels.dtype == np.int64
    assert snr.shape == (n,) and snr.dtype == np.float32
    assert len(M.CLASSES) == 11 and M.CLASSES[0] == "8PSK" and M.CLASSES[-1] == "WBFM"
    np.testing.assert_array_equal(np.bincount(labels), np.full(11, 6))      # balanced
    for c in range(11):                                                    # and per SNR
        assert np.sum((labels == c) & (snr == 0)) == np.sum((labels == c) & (snr == 10)) == 3
    np.testing.assert_array_equal(labels[:6], 0)                          # class by class
    np.testing.assert_array_equal(snr[:6], [0, 0, 0, 10, 10, 10])          # then SNR by SNR
    assert M.generate(1, [5], frame_len=64, seed=0)[0].shape == (11, 2, 64)
    assert np.isfinite(x).all()


def test_unit_power():
    x, _, snr = M.generate(4, [-10, 20], seed=1, noise=False)
    np.testing.assert_allclose(np.mean(np.abs(complex_frames(x)) ** 2, axis=1), 1.0, rtol=1e-5)
    x, _, _ = M.generate(4, [-10, 20], seed=1)                             # normalized noisy
    np.testing.assert_allclose(np.mean(np.abs(complex_frames(x)) ** 2, axis=1), 1.0, rtol=1e-5)
    x, _, snr = M.generate(20, [-10], seed=1, normalize=False)             # s + w
    assert np.mean(np.abs(complex_frames(x)) ** 2) == pytest.approx(1 + 10.0, rel=0.03)


def test_deterministic_by_seed():
    a = M.generate(2, [0, 8], seed=7)
    b = M.generate(2, [0, 8], seed=7)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], M.generate(2, [0, 8], seed=8)[0])
    # the clean frames do not depend on the SNR values
    np.testing.assert_array_equal(M.generate(2, [0, 8], seed=7, noise=False)[0],
                                  M.generate(2, [-20, 18], seed=7, noise=False)[0])


@pytest.mark.parametrize("snr_db", [-10.0, 20.0])
def test_snr_sets_the_noise(snr_db):
    clean, _, _ = M.generate(20, [snr_db], seed=2, noise=False)
    noisy, _, snr = M.generate(20, [snr_db], seed=2, normalize=False)
    assert (snr == snr_db).all()
    w = complex_frames(noisy) - complex_frames(clean)
    assert np.mean(np.abs(w) ** 2) == pytest.approx(10 ** (-snr_db / 10), rel=0.03)
    assert np.mean(w.real ** 2) == pytest.approx(np.mean(w.imag ** 2), rel=0.05)
    # normalized frames: the SNR survives as the ratio (project on the clean frame)
    s = complex_frames(clean)
    y = complex_frames(M.generate(20, [snr_db], seed=2)[0])
    length = s.shape[1]
    a = np.sum(y * s.conj(), axis=1) / np.sum(np.abs(s) ** 2, axis=1)
    residual = y - a[:, None] * s                      # the noise, less its part along s
    noise = np.mean(np.abs(residual) ** 2) * length / (length - 1)
    signal = np.mean(np.abs(a) ** 2) - noise / length  # |a|^2 holds that part: E|a|^2 - s^2/L
    assert 10 * np.log10(signal / noise) == pytest.approx(snr_db, abs=0.25)


def test_bpsk_and_pam4_are_real_valued(clean):
    """After the carrier phase, BPSK and PAM4 lie on a line: z^2 has a strong DC line."""
    def line(z):
        return np.abs(np.mean(z ** 2, axis=1)) / np.mean(np.abs(z) ** 2, axis=1)
    for name in ("BPSK", "PAM4", "AM-DSB"):
        assert line(of(clean, name)).min() > 0.9, name
    for name in ("QPSK", "8PSK", "QAM16", "CPFSK", "WBFM"):
        assert line(of(clean, name)).mean() < 0.4, name


def test_qpsk_has_a_fourth_power_line(clean):
    def quad(z):
        return np.abs(np.mean(z ** 4, axis=1)) / np.mean(np.abs(z) ** 4, axis=1)
    assert quad(of(clean, "QPSK")).mean() > 0.5
    assert quad(of(clean, "8PSK")).mean() < 0.3


def test_constant_envelope_classes(clean):
    def spread(z):
        return np.std(np.abs(z), axis=1) / np.mean(np.abs(z), axis=1)
    for name in ("CPFSK", "GFSK", "WBFM"):
        assert spread(of(clean, name)).max() < 1e-6, name
    for name in ("BPSK", "QPSK", "8PSK", "QAM16", "QAM64", "PAM4", "AM-DSB", "AM-SSB"):
        assert spread(of(clean, name)).min() > 0.1, name


def test_am_carrier_and_single_sideband(clean):
    carrier = lambda z: np.abs(np.mean(z, axis=1))                         # noqa: E731
    assert carrier(of(clean, "AM-DSB")).min() > 0.7                       # the carrier line
    for name in ("BPSK", "QPSK", "AM-SSB", "WBFM"):
        assert carrier(of(clean, name)).mean() < 0.4, name
    freqs = np.fft.fftfreq(128)

    def upper(z):
        power = np.abs(np.fft.fft(z, axis=1)) ** 2
        return power[:, freqs > 0].sum(axis=1) / power[:, freqs != 0].sum(axis=1)
    assert upper(of(clean, "AM-SSB")).mean() > 0.8                        # upper sideband only
    for name in ("QPSK", "BPSK", "AM-DSB", "WBFM"):
        assert 0.3 < upper(of(clean, name)).mean() < 0.7, name


def test_pulses():
    h = M.rrc_taps()
    assert len(h) == 2 * M.SPAN * M.SPS + 1
    assert np.sum(h * h) == pytest.approx(1.0)
    np.testing.assert_allclose(h, h[::-1], atol=1e-12)
    # RRC * RRC is a Nyquist pulse: zero at every other multiple of the symbol period
    # (up to the truncation to +-SPAN symbols)
    rc = np.convolve(h, h)
    centre = len(rc) // 2
    others = rc[centre % M.SPS::M.SPS]
    assert np.abs(others).max() == pytest.approx(rc[centre], rel=1e-6)
    assert np.sort(np.abs(others))[-2] < 0.02 * rc[centre]
    g = M.gaussian_taps()
    assert g.sum() == pytest.approx(1.0) and g.argmax() == len(g) // 2


# --- the networks ----------------------------------------------------------------------------

def test_table_parameter_counts():
    t, s = M.teacher(scale=1.0), M.student(scale=1.0)
    assert n_params(t) == 9_278_475                                       # Table 4.3
    assert n_params(s) == 2_830_427                                       # Table 4.4
    layers = lambda m: [n_params(l) for l in m.modules()                  # noqa: E731
                        if isinstance(l, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers(t) == [1024, 196864, 196736, 98432, 8651264, 131328, 2827]
    assert layers(s) == [1024, 122960, 2703616, 2827]


def test_default_networks():
    t, s = M.teacher(), M.student()
    x = torch.as_tensor(M.generate(1, [10], seed=0)[0][:4])
    assert t(x).shape == s(x).shape == (4, 11)
    assert n_params(s) < n_params(t)
    assert n_params(t) / n_params(s) == pytest.approx(3.27, abs=0.05)     # the seed's ratio
    a, b = M.student(seed=4), M.student(seed=4)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_distillation_loss():
    torch.manual_seed(0)
    zs, zt = torch.randn(8, 11), torch.randn(8, 11)
    y = torch.randint(0, 11, (8,))
    ce = torch.nn.functional.cross_entropy(zs, y)
    torch.testing.assert_close(M._distillation_loss(zs, zt, y, 4.0, 0.0), ce)
    torch.testing.assert_close(M._distillation_loss(zs, zs, y, 4.0, 0.5), 0.5 * ce)
    # alpha = 1: T^2 KL(p_t || p_s) by hand
    T = 2.0
    pt, ps = torch.softmax(zt / T, 1), torch.softmax(zs / T, 1)
    kl = (pt * (pt.log() - ps.log())).sum(1).mean()
    torch.testing.assert_close(M._distillation_loss(zs, zt, y, T, 1.0), T * T * kl)


def test_tiny_training_beats_chance():
    """A few epochs of a small student on a small high-SNR set: far above chance (1/11)."""
    torch.set_num_threads(1)
    train_set = M.generate(100, [10, 14, 18], seed=0)            # 3,300 frames
    test_set = M.generate(10, [10, 14, 18], seed=1)
    model = M.student(scale=0.125, dropout=0.0, seed=0)
    M.train(model, train_set, epochs=5, lr=3e-3, batch=64, seed=0)
    assert model.losses[-1] < model.losses[0]
    acc = M.accuracy_by_snr(model, test_set)
    assert sorted(acc) == [10.0, 14.0, 18.0]
    assert np.mean(list(acc.values())) > 0.3                     # measured 0.56; chance 0.09
    c = M.confusion(model, test_set)
    assert c.shape == (11, 11) and c.sum() == 330 and (c.sum(axis=1) == 30).all()
    assert np.trace(c) / c.sum() == pytest.approx(np.mean(list(acc.values())))
    assert M.confusion(model, test_set, min_snr=14).sum() == 220
    # distillation runs (the teacher's logits are fixed in eval mode)
    distilled = M.student(scale=0.125, dropout=0.0, seed=1)
    M.train(distilled, test_set, epochs=1, lr=2e-3, batch=64, seed=0, teacher=model)
    assert len(distilled.losses) == 1 and np.isfinite(distilled.losses[0])
