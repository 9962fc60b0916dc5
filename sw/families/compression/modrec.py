"""Modulation recognition of seed 001 (§2.2.4, Fig. 2.11; §4.1.2, Tables 4.3, 4.4), data in code.

The seed trains O'Shea et al.'s (2016) CNN on RadioML 2016.10a: frames of 128 complex baseband
samples, eleven modulations, SNRs from -20 to 18 dB. That data set is not shipped here;
:func:`generate` makes frames of the same shape and classes from a seed.

**Frames.** ``x`` is ``(N, 2, L)`` float32, row 0 the in-phase (I) and row 1 the quadrature (Q)
part of the complex baseband signal s = I + jQ; ``labels`` index :data:`CLASSES` (the order is
RadioML's, alphabetical); ``snr`` is each frame's SNR in dB. Frames come class by class, and
within a class SNR by SNR in the order given, ``n_per_class_per_snr`` at each.

**Generator parameters** (all in samples; frequencies in cycles per sample):

* Digital (8PSK, BPSK, PAM4, QAM16, QAM64, QPSK): i.i.d. uniform symbols from the unit-energy
  alphabet, :data:`SPS` = 8 samples per symbol, root-raised-cosine pulse with roll-off
  :data:`ROLLOFF` = 0.35 truncated to +-:data:`SPAN` = 4 symbols. Alphabets: BPSK +-1; QPSK
  e^{j(pi/4 + k pi/2)}; 8PSK e^{j k pi/4}; PAM4 {-3, -1, 1, 3}/sqrt 5; QAM16 and QAM64 the
  square grids of odd integers over sqrt 10 and sqrt 42.
* CPFSK: binary, modulation index :data:`CPFSK_H` = 0.5 (MSK-like), rectangular frequency pulse
  of one symbol, phase integrated sample by sample: phase step pi h a / SPS for symbol a = +-1.
* GFSK: binary NRZ smoothed by a Gaussian filter of bandwidth-time product :data:`GFSK_BT` =
  0.35 (taps over +-2 symbols, unit sum), modulation index :data:`GFSK_H` = 1.0, integrated
  like CPFSK.
* Analog (AM-DSB, AM-SSB, WBFM): the message m(t) is white Gaussian noise low-passed (ideal,
  in the frequency domain) to :data:`MESSAGE_BW` = 0.025, scaled to unit RMS per frame.
  AM-DSB is with carrier, s = 1 + :data:`AM_INDEX` m (index 0.5); AM-SSB the upper sideband,
  s = m + j H{m} (H the Hilbert transform, via the FFT); WBFM s = exp(j 2 pi
  :data:`FM_DEVIATION` sum m), a frequency deviation of 0.075 per unit of m (modulation index
  about 3).
* Every frame then starts at a random sample (a random symbol timing), gets a random carrier
  phase U[0, 2 pi) and a random frequency offset U[-:data:`MAX_FREQ_OFFSET`,
  +:data:`MAX_FREQ_OFFSET`] (5e-4, at most 0.4 rad of drift over 128 samples), and is scaled to
  unit mean power |s|^2 over its L samples. Then complex white Gaussian noise w of variance
  10^(-SNR/10) per sample (half in I, half in Q) is added: the SNR is signal power over noise
  power in the full sample bandwidth. Last (``normalize=True``, the default), the noisy frame
  is scaled to unit mean power again. Without that step a -20 dB frame is 10 times larger than
  a clean one and training is slower: three epochs of the student (dropout 0.2, 22k frames)
  reached 44 % at SNR >= 10 dB on unnormalized frames and 57 % on normalized ones, and with
  Adam at 3e-3 (no dropout) it stayed at chance (loss ln 11) on unnormalized frames.

Signals and noise come from two streams spawned from ``numpy.random.SeedSequence(seed)``, so a
seed fixes the data, and the same seed with other SNRs (or ``noise=False``) gives the same
clean frames.

**Networks.** :func:`teacher` and :func:`student` build Tables 4.3 and 4.4; at ``scale=1`` their
parameter counts are the tables' (9,278,475 and 2,830,427), layer by layer. The student is
O'Shea et al.'s CNN: the I/Q frame as a 1-channel 2 x 128 image, zero-padded by 2 columns before
each convolution, conv 256 x (1, 3) -> conv 80 x (2, 3) -> dense 256 -> dense 11. The tables
give only parameter counts; the teacher is taken as conv 256 x (1, 3) -> conv 256 x (1, 3)
("conv1.5") -> conv 128 x (2, 3) -> conv 128 x (1, 6) -> dense 512 -> dense 256 -> dense 11,
with paddings chosen so that the flattened width is 128 x 132, which its dense1 count
(8,651,264 = (16,896 + 1) x 512) requires. Every hidden layer has a ReLU and dropout, 0.2 by
default: with O'Shea et al.'s 0.5 a 3-epoch run of the student on 22k frames reached 31 % at
SNR >= 10 dB, with 0.2 57 % (0 gave 56 %). The default
``scale=0.25`` divides every width by 4 (teacher 580,875 parameters, student 177,695: a ratio of
3.27, the seed's), so that a few epochs on ~20k frames run in minutes on one CPU core.

**Training.** :func:`train` is Adam on cross-entropy, or, given a teacher, Hinton et al.'s (2015)
distillation (chapter 4): loss = alpha T^2 KL(softmax(z_t / T) || softmax(z_s / T))
+ (1 - alpha) CE(z_s, y).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

__all__ = [
    "CLASSES", "DIGITAL", "SPS", "ROLLOFF", "SPAN", "CPFSK_H", "GFSK_H", "GFSK_BT", "MESSAGE_BW",
    "AM_INDEX", "FM_DEVIATION", "MAX_FREQ_OFFSET", "RADIOML_SNRS", "rrc_taps", "gaussian_taps",
    "generate", "ModRecCNN", "teacher", "student", "train", "accuracy_by_snr", "confusion",
]

#: The eleven classes, in RadioML 2016.10a's order; labels index this tuple.
CLASSES = ("8PSK", "AM-DSB", "AM-SSB", "BPSK", "CPFSK", "GFSK", "PAM4", "QAM16", "QAM64", "QPSK",
           "WBFM")
#: Samples per symbol of the digital classes.
SPS = 8
#: Roll-off of the root-raised-cosine pulse.
ROLLOFF = 0.35
#: The pulse is truncated to +-SPAN symbols.
SPAN = 4
#: Modulation index of CPFSK (frequency deviation h / (2 SPS) cycles per sample).
CPFSK_H = 0.5
#: Modulation index of GFSK.
GFSK_H = 1.0
#: Bandwidth-time product of GFSK's Gaussian filter.
GFSK_BT = 0.35
#: Bandwidth of the analog message, cycles per sample.
MESSAGE_BW = 0.025
#: AM-DSB modulation index: s = 1 + AM_INDEX m, m of unit RMS.
AM_INDEX = 0.5
#: WBFM frequency deviation per unit of message, cycles per sample.
FM_DEVIATION = 0.075
#: Largest carrier frequency offset, cycles per sample.
MAX_FREQ_OFFSET = 5e-4
#: RadioML 2016.10a's SNRs: -20, -18, ..., 18 dB.
RADIOML_SNRS = tuple(range(-20, 20, 2))

_ALPHABETS = {
    "BPSK": np.array([1.0, -1.0], dtype=np.complex128),
    "QPSK": np.exp(1j * (np.pi / 4 + np.pi / 2 * np.arange(4))),
    "8PSK": np.exp(1j * np.pi / 4 * np.arange(8)),
    "PAM4": np.array([-3.0, -1.0, 1.0, 3.0], dtype=np.complex128) / math.sqrt(5.0),
    "QAM16": (np.add.outer(np.arange(-3, 4, 2), 1j * np.arange(-3, 4, 2)).ravel()
              / math.sqrt(10.0)),
    "QAM64": (np.add.outer(np.arange(-7, 8, 2), 1j * np.arange(-7, 8, 2)).ravel()
              / math.sqrt(42.0)),
}
#: Classes made of pulse-shaped symbols from a fixed alphabet.
DIGITAL = tuple(sorted(_ALPHABETS))


# ---------------------------------------------------------------------------------------------
# Pulses and filtering
# ---------------------------------------------------------------------------------------------

def rrc_taps(sps: int = SPS, rolloff: float = ROLLOFF, span: int = SPAN) -> np.ndarray:
    """Root-raised-cosine taps, ``2 span sps + 1`` of them, unit energy (sum of squares 1)."""
    t = np.arange(-span * sps, span * sps + 1) / sps          # in symbols
    b = rolloff
    h = np.empty_like(t)
    for i, ti in enumerate(t):
        if abs(ti) < 1e-12:
            h[i] = 1.0 + b * (4.0 / np.pi - 1.0)
        elif b > 0 and abs(abs(4.0 * b * ti) - 1.0) < 1e-9:
            h[i] = b / math.sqrt(2.0) * ((1 + 2 / np.pi) * math.sin(np.pi / (4 * b))
                                        + (1 - 2 / np.pi) * math.cos(np.pi / (4 * b)))
        else:
            h[i] = ((math.sin(np.pi * ti * (1 - b)) + 4 * b * ti * math.cos(np.pi * ti * (1 + b)))
                    / (np.pi * ti * (1 - (4 * b * ti) ** 2)))
    return h / np.sqrt(np.sum(h * h))


def gaussian_taps(sps: int = SPS, bt: float = GFSK_BT, span: int = 2) -> np.ndarray:
    """Gaussian frequency-smoothing taps of bandwidth-time product ``bt`` over +-span symbols,
    unit sum (so a long run of one symbol keeps its full frequency)."""
    t = np.arange(-span * sps, span * sps + 1) / sps
    sigma = math.sqrt(math.log(2.0)) / (2.0 * np.pi * bt)    # in symbols
    h = np.exp(-t * t / (2.0 * sigma * sigma))
    return h / h.sum()


def _convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Full linear convolution of every row of ``x`` with ``h``, by the FFT."""
    length = x.shape[-1] + len(h) - 1
    nfft = 1 << (length - 1).bit_length()
    if np.iscomplexobj(x):
        y = np.fft.ifft(np.fft.fft(x, nfft, axis=-1) * np.fft.fft(h, nfft), axis=-1)
    else:
        y = np.fft.irfft(np.fft.rfft(x, nfft, axis=-1) * np.fft.rfft(h, nfft), nfft, axis=-1)
    return y[..., :length]


def _window(x: np.ndarray, start: np.ndarray, length: int) -> np.ndarray:
    """Row i of the result is ``x[i, start[i]:start[i] + length]``."""
    return np.take_along_axis(x, start[:, None] + np.arange(length)[None, :], axis=1)


# ---------------------------------------------------------------------------------------------
# Class generators: n clean complex frames of `length` samples (before phase, offset, power)
# ---------------------------------------------------------------------------------------------

def _digital(name, n, length, rng):
    n_sym = length // SPS + 2 * SPAN + 2
    symbols = rng.choice(_ALPHABETS[name], size=(n, n_sym))
    up = np.zeros((n, n_sym * SPS), dtype=np.complex128)
    up[:, ::SPS] = symbols
    shaped = _convolve(up, rrc_taps())
    # skip the filter's ramp-up: start within the fully overlapped part, at a random sample
    start = 2 * SPAN * SPS + rng.integers(0, SPS, n)
    return _window(shaped, start, length)


def _fsk(n, length, rng, h, smooth):
    n_sym = length // SPS + 6
    bits = rng.integers(0, 2, (n, n_sym)) * 2.0 - 1.0
    freq = np.repeat(bits, SPS, axis=1)                         # NRZ, in units of the deviation
    if smooth:
        freq = _convolve(freq, gaussian_taps())[:, 2 * SPS:2 * SPS + n_sym * SPS]
    phase = np.cumsum(np.pi * h / SPS * freq, axis=1)
    start = 2 * SPS + rng.integers(0, SPS, n)
    return _window(np.exp(1j * phase), start, length)


def _message(n, length, rng):
    """Unit-RMS Gaussian messages low-passed to MESSAGE_BW, twice ``length`` long (analytic
    signals are taken on the long frame, then cut)."""
    long = 2 * length
    spectrum = np.fft.rfft(rng.standard_normal((n, long)), axis=1)
    spectrum[:, np.fft.rfftfreq(long) > MESSAGE_BW] = 0.0
    spectrum[:, 0] = 0.0                                         # no DC: AM-DSB's carrier is 1
    m = np.fft.irfft(spectrum, long, axis=1)
    return m / np.sqrt(np.mean(m * m, axis=1, keepdims=True))


def _analog(name, n, length, rng):
    m = _message(n, length, rng)
    if name == "AM-DSB":
        s = 1.0 + AM_INDEX * m + 0j
    elif name == "AM-SSB":
        spectrum = np.fft.fft(m, axis=1)
        freqs = np.fft.fftfreq(m.shape[1])
        spectrum[:, freqs < 0] = 0.0
        spectrum[:, freqs > 0] *= 2.0
        s = np.fft.ifft(spectrum, axis=1)                        # m + j H{m}: upper sideband
    else:                                                        # WBFM
        s = np.exp(2j * np.pi * FM_DEVIATION * np.cumsum(m, axis=1))
    start = rng.integers(0, m.shape[1] - length + 1, n)
    return _window(s, start, length)


def _clean(name, n, length, rng):
    if name in _ALPHABETS:
        return _digital(name, n, length, rng)
    if name == "CPFSK":
        return _fsk(n, length, rng, CPFSK_H, smooth=False)
    if name == "GFSK":
        return _fsk(n, length, rng, GFSK_H, smooth=True)
    return _analog(name, n, length, rng)


def generate(n_per_class_per_snr: int, snrs_db: Sequence[float] = RADIOML_SNRS,
             frame_len: int = 128, seed: int = 0, *, noise: bool = True, normalize: bool = True
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RadioML-like frames of the eleven :data:`CLASSES` (parameters in the module docstring).

    Parameters
    ----------
    n_per_class_per_snr : int
        Frames of each class at each SNR.
    snrs_db : sequence of float
        The SNRs in dB (RadioML's -20 .. 18 by default).
    frame_len : int
        Complex samples per frame, L.
    seed : int
        Fixes every frame.
    noise : bool
        False leaves out the noise: the clean, unit-power frames the noisy ones are made of.
    normalize : bool
        Scale every noisy frame, s + w, to unit mean power as well, so the network sees one
        scale at every SNR (the SNR is unchanged: signal and noise scale together). False keeps
        s + w: signal power 1, noise power 10^(-SNR/10), total 1 + 10^(-SNR/10).

    Returns
    -------
    x : np.ndarray
        ``(N, 2, L)`` float32 I/Q, N = 11 n_per_class_per_snr len(snrs_db).
    labels : np.ndarray
        ``(N,)`` int64 indices into :data:`CLASSES`.
    snr : np.ndarray
        ``(N,)`` float32 SNR of each frame in dB.
    """
    snrs = np.asarray(list(snrs_db), dtype=np.float64)
    if n_per_class_per_snr < 1 or snrs.size < 1 or frame_len < 1:
        raise ValueError("need n_per_class_per_snr >= 1, some SNRs and frame_len >= 1")
    signal_rng, noise_rng = (np.random.default_rng(s)
                             for s in np.random.SeedSequence(seed).spawn(2))
    per_class = n_per_class_per_snr * snrs.size
    frames = []
    for name in CLASSES:
        s = _clean(name, per_class, frame_len, signal_rng)
        phase = signal_rng.uniform(0.0, 2.0 * np.pi, (per_class, 1))
        offset = signal_rng.uniform(-MAX_FREQ_OFFSET, MAX_FREQ_OFFSET, (per_class, 1))
        s = s * np.exp(1j * (phase + 2.0 * np.pi * offset * np.arange(frame_len)))
        frames.append(s / np.sqrt(np.mean(np.abs(s) ** 2, axis=1, keepdims=True)))
    s = np.concatenate(frames)
    labels = np.repeat(np.arange(len(CLASSES), dtype=np.int64), per_class)
    snr = np.tile(np.repeat(snrs, n_per_class_per_snr), len(CLASSES))
    x = np.stack([s.real, s.imag], axis=1)
    if noise:
        sigma = np.sqrt(10.0 ** (-snr / 10.0) / 2.0)             # per real dimension
        x = x + sigma[:, None, None] * noise_rng.standard_normal(x.shape)
        if normalize:
            x = x / np.sqrt(2.0 * np.mean(x * x, axis=(1, 2), keepdims=True))
    return x.astype(np.float32), labels, snr.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Networks (Tables 4.3, 4.4)
# ---------------------------------------------------------------------------------------------

class ModRecCNN(nn.Module):
    """A CNN over the I/Q frame as a 1-channel 2 x L image: convolutions, then dense layers.

    Parameters
    ----------
    convs : sequence of (int, (int, int), padding)
        Per convolution: output channels, kernel (rows, columns) and padding: a pair (rows,
        columns) for ``nn.Conv2d``, zeros on both sides, or a 4-tuple (left, right, top, bottom)
        for an ``nn.ZeroPad2d`` before it. Each is followed by a ReLU and dropout.
    dense : sequence of int
        Widths of the hidden dense layers (ReLU, dropout); a last dense layer gives the logits.
    frame_len : int
        L, which fixes the flattened width.
    n_classes : int
        Logits.
    dropout : float
        Dropout probability after every hidden layer (O'Shea et al. use 0.5).
    """

    def __init__(self, convs, dense, frame_len: int = 128, n_classes: int = len(CLASSES),
                 dropout: float = 0.5):
        super().__init__()
        layers, channels = [], 1
        for out, kernel, padding in convs:
            if len(padding) == 4:                                # (left, right, top, bottom)
                layers.append(nn.ZeroPad2d(padding))
                padding = 0
            layers += [nn.Conv2d(channels, out, kernel, padding=padding), nn.ReLU(),
                       nn.Dropout(dropout)]
            channels = out
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            flat = self.features(torch.zeros(1, 1, 2, frame_len)).numel()
        layers, width = [nn.Flatten()], flat
        for out in dense:
            layers += [nn.Linear(width, out), nn.ReLU(), nn.Dropout(dropout)]
            width = out
        layers.append(nn.Linear(width, n_classes))
        self.classifier = nn.Sequential(*layers)
        self.frame_len = frame_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, n_classes)`` of I/Q frames ``(B, 2, L)``."""
        return self.classifier(self.features(x.unsqueeze(1)))


def _width(w: int, scale: float) -> int:
    return max(1, round(w * scale))


def _seeded(build, seed):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def teacher(scale: float = 0.25, *, frame_len: int = 128, dropout: float = 0.2,
            seed: int = 0) -> ModRecCNN:
    """Table 4.3's teacher, every width times ``scale`` (``scale=1``: 9,278,475 parameters).

    conv 256 x (1, 3) pad (0, 2) -> conv 256 x (1, 3) pad (0, 2) -> conv 128 x (2, 3)
    pad (0, 1) -> conv 128 x (1, 6) pad (2 left, 3 right) -> dense 512 -> dense 256 -> dense 11.
    ``seed`` seeds the initialization (the global torch RNG is left as it was).
    """
    c = lambda w: _width(w, scale)                               # noqa: E731
    convs = [(c(256), (1, 3), (0, 2)), (c(256), (1, 3), (0, 2)), (c(128), (2, 3), (0, 1)),
             (c(128), (1, 6), (2, 3, 0, 0))]
    return _seeded(lambda: ModRecCNN(convs, [c(512), c(256)], frame_len, dropout=dropout), seed)


def student(scale: float = 0.25, *, frame_len: int = 128, dropout: float = 0.2,
            seed: int = 0) -> ModRecCNN:
    """Table 4.4's student, O'Shea et al.'s CNN, every width times ``scale`` (``scale=1``:
    2,830,427 parameters).

    conv 256 x (1, 3) pad (0, 2) -> conv 80 x (2, 3) pad (0, 2) -> dense 256 -> dense 11.
    """
    c = lambda w: _width(w, scale)                               # noqa: E731
    convs = [(c(256), (1, 3), (0, 2)), (c(80), (2, 3), (0, 2))]
    return _seeded(lambda: ModRecCNN(convs, [c(256)], frame_len, dropout=dropout), seed)


# ---------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------

def _distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       labels: torch.Tensor, T: float, alpha: float) -> torch.Tensor:
    """alpha T^2 KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) CE(z_s, y), batch mean."""
    kl = F.kl_div(F.log_softmax(student_logits / T, dim=1),
                  F.log_softmax(teacher_logits / T, dim=1), reduction="batchmean", log_target=True)
    return alpha * T * T * kl + (1.0 - alpha) * F.cross_entropy(student_logits, labels)


@torch.no_grad()
def _logits(model: nn.Module, x: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    finally:
        model.train(was_training)


def _tensors(data):
    x, labels, snr = data
    return (torch.as_tensor(np.asarray(x), dtype=torch.float32),
            torch.as_tensor(np.asarray(labels), dtype=torch.long), np.asarray(snr))


def train(model: nn.Module, data, *, epochs: int = 5, lr: float = 1e-3, seed: int = 0,
          batch: int = 256, teacher: nn.Module | None = None, T: float = 4.0,
          alpha: float = 0.7, progress: bool = False) -> nn.Module:
    """Adam on cross-entropy over shuffled mini-batches; with ``teacher``, distillation.

    Parameters
    ----------
    model : nn.Module
        Trained in place.
    data : tuple
        ``(x, labels, snr)`` as :func:`generate` returns.
    epochs, lr, batch : int, float, int
        Passes over ``data``, Adam's learning rate, frames per step.
    seed : int
        Seeds the shuffling and dropout.
    teacher : nn.Module, optional
        A trained teacher: the loss becomes alpha T^2 KL(softmax(z_t / T) || softmax(z_s / T))
        + (1 - alpha) CE(z_s, y) (Hinton et al. 2015), the teacher's logits z_t taken once, in
        eval mode (no dropout), before training.
    T, alpha : float
        Temperature and weight of the soft-target term (distillation only).
    progress : bool
        Show a tqdm bar over the epochs.

    Returns
    -------
    nn.Module
        ``model`` in eval mode; its mean loss per epoch is in ``model.losses``.

    Runs on one CPU thread (restored afterwards).
    """
    if epochs < 1 or batch < 1 or lr <= 0 or T <= 0 or not 0.0 <= alpha <= 1.0:
        raise ValueError("need epochs >= 1, batch >= 1, lr > 0, T > 0, 0 <= alpha <= 1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x, y, _ = _tensors(data)
        soft = _logits(teacher, x) if teacher is not None else None
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        losses = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)                              # dropout masks
            model.train()
            for _ in tqdm(range(epochs), desc="train", unit="epoch", disable=not progress):
                perm = torch.randperm(len(x), generator=gen)
                total = 0.0
                for i in range(0, len(x), batch):
                    idx = perm[i:i + batch]
                    logits = model(x[idx])
                    if soft is None:
                        loss = F.cross_entropy(logits, y[idx])
                    else:
                        loss = _distillation_loss(logits, soft[idx], y[idx], T, alpha)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(idx)
                losses.append(total / len(x))
        model.eval()
        model.losses = losses
        return model
    finally:
        torch.set_num_threads(threads)


def _predict(model, data):
    x, y, snr = _tensors(data)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _logits(model, x).argmax(dim=1).numpy(), y.numpy(), snr
    finally:
        torch.set_num_threads(threads)


def accuracy_by_snr(model: nn.Module, data) -> dict[float, float]:
    """Fraction of frames classified correctly at each SNR (Fig. 4.2), ascending SNR."""
    pred, y, snr = _predict(model, data)
    return {float(s): float(np.mean(pred[snr == s] == y[snr == s])) for s in np.unique(snr)}


def confusion(model: nn.Module, data, *, min_snr: float | None = None) -> np.ndarray:
    """Counts ``c[true, predicted]`` over the frames (Fig. 2.11), optionally only those with
    SNR >= ``min_snr``; rows and columns in :data:`CLASSES` order."""
    pred, y, snr = _predict(model, data)
    keep = np.ones(len(y), dtype=bool) if min_snr is None else snr >= min_snr
    k = len(CLASSES)
    return np.bincount(y[keep] * k + pred[keep], minlength=k * k).reshape(k, k)
