"""The channel autoencoder of seed 001 (§2.2.1, Fig. 2.4; teacher and student of Tables 4.1, 4.2).

A transmitter sends one of M = 2^k messages in n real channel uses; transmitter, channel and
receiver are trained end to end as one network (O'Shea and Hoydis 2017):

    m -> one-hot (M) -> encoder -> x (n reals) -> normalize -> channel -> y (n reals)
      -> decoder -> M logits  (cross-entropy against m)

Conventions fixed here:

* **Energy.** Every codeword is scaled to energy n, ``x <- sqrt(n) x / ||x||``: unit energy,
  Es = 1, per real channel use, exactly, for every codeword (``power="codeword"``, the default).
  ``power="codebook"`` instead scales the whole codebook (all M codewords, equally likely) to
  *average* energy n per codeword (O'Shea and Hoydis's average-power alternative).
  With n = 1 and ``"codeword"`` the only codewords are +1 and -1 and the normalization
  ``x / |x|`` has zero gradient: the encoder's sign pattern is fixed by its initialization and
  only the decoder learns; ``"codebook"`` lets a 1-channel encoder move its points.
* **Eb/N0.** The rate is R = k/n bits per real channel use, so Eb = Es / R = 1 / R and, with
  N0 / 2 the noise variance per real dimension,

      sigma^2 = N0 / 2 = 1 / (2 R Eb/N0)          (Eb/N0 as a ratio: 10^(dB/10))

  For k = n = 1 this is BPSK's sigma^2 = 1 / (2 Eb/N0) and its bit error Q(sqrt(2 Eb/N0)).
* **Channels.** ``"awgn"``: y = x + w, w ~ N(0, sigma^2 I). ``"rayleigh"``: Rayleigh *block*
  fading, y = h x + w with one real amplitude h = |g|, g ~ CN(0, 1) (so E h^2 = 1), drawn per
  codeword and shared by its n channel uses; Eb/N0 is the *average* one (E h^2 = 1). The decoder
  sees y only, no channel state information. (The amplitude only: a real-valued model has no
  carrier phase to rotate.)
* **Architectures.** Table 4.1's teacher for 8 bits, 8 channels (135,944 parameters) is
  encoder Linear(M, M) + ReLU + Linear(M, n), decoder Linear(n, M) + ReLU + Linear(M, M)
  (65,792 + 2,056 + 2,304 + 65,792: the layer sizes fix it; the ReLUs are O'Shea and Hoydis's):
  ``hidden = M``. Table 4.2's student (4,360) is encoder Linear(M, n), decoder Linear(n, M):
  ``hidden = 0``. :func:`teacher` and :func:`student` build them for any (k, n); the seed's
  settings are :data:`SETTINGS`. A linear decoder suffices in principle: with equal-energy
  codewords the maximum-likelihood decision argmax_m <y, c_m> is linear in y, on AWGN and
  also on the amplitude-only block fading above (h > 0 scales every <y, c_m> alike).
* **Baselines.** Uncoded BPSK (k bits in k channel uses, one block error if any bit is wrong)
  and the (7, 4) Hamming code with BPSK and hard-decision syndrome decoding, from theory and by
  simulation; :func:`qfunc` is the Gaussian tail Q(x) = erfc(x / sqrt 2) / 2.

Noise and messages come from seeded ``torch.Generator`` / ``numpy.random.Generator`` objects, so
every simulation and training run is deterministic by its ``seed``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

__all__ = [
    "CHANNELS", "POWERS", "SETTINGS", "ebn0_ratio", "noise_variance", "channel", "Autoencoder",
    "teacher", "student", "train_autoencoder", "bler", "qfunc", "bler_uncoded_bpsk",
    "bler_uncoded_bpsk_rayleigh", "simulate_uncoded_bpsk", "HAMMING74_G", "HAMMING74_H",
    "hamming74_encode", "hamming74_decode", "bler_hamming74_hard", "simulate_hamming74_hard",
]

#: Channel models of :func:`channel`.
CHANNELS = ("awgn", "rayleigh")
#: Power normalizations of :class:`Autoencoder`.
POWERS = ("codeword", "codebook")
#: The seed's (k, n) settings: 1 bit in 1 channel use (Fig. 2.4), 4 in 7 (Hamming's rate),
#: 8 in 8 (Tables 4.1, 4.2).
SETTINGS = ((1, 1), (4, 7), (8, 8))


# ---------------------------------------------------------------------------------------------
# Channel (§2.2.1: Y = X + N)
# ---------------------------------------------------------------------------------------------

def ebn0_ratio(ebn0_db: float) -> float:
    """Eb/N0 as a ratio: 10^(dB / 10)."""
    return 10.0 ** (float(ebn0_db) / 10.0)


def noise_variance(ebn0_db: float, rate: float) -> float:
    """sigma^2 = 1 / (2 R Eb/N0): noise variance per real channel use for Es = 1.

    Parameters
    ----------
    ebn0_db : float
        Energy per information bit over the noise spectral density, in dB.
    rate : float
        R = k / n, information bits per real channel use.
    """
    if rate <= 0:
        raise ValueError(f"rate must be positive, not {rate!r}")
    return 1.0 / (2.0 * rate * ebn0_ratio(ebn0_db))


def channel(x: torch.Tensor, ebn0_db: float, rate: float, kind: str = "awgn",
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Pass codewords through the channel.

    Parameters
    ----------
    x : torch.Tensor
        Codewords, shape ``(B, n)``, unit energy per channel use.
    ebn0_db, rate : float
        Set sigma^2 by :func:`noise_variance`.
    kind : str
        ``"awgn"``: y = x + w. ``"rayleigh"``: y = h x + w with one Rayleigh amplitude h per row
        (per codeword, E h^2 = 1).
    generator : torch.Generator, optional
        Source of the noise and the fades.

    Returns
    -------
    torch.Tensor
        The received reals, shape ``(B, n)``.
    """
    if kind not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}, not {kind!r}")
    sigma = math.sqrt(noise_variance(ebn0_db, rate))
    if kind == "rayleigh":
        g = torch.randn(x.shape[0], 2, generator=generator, dtype=x.dtype)
        h = torch.sqrt((g * g).sum(dim=1, keepdim=True) / 2.0)    # |CN(0, 1)|: E h^2 = 1
        x = h * x
    return x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype)


# ---------------------------------------------------------------------------------------------
# The autoencoder (§2.2.1) and its teacher / student sizes (Tables 4.1, 4.2)
# ---------------------------------------------------------------------------------------------

class Autoencoder(nn.Module):
    """Transmitter, channel and receiver of k bits in n real channel uses.

    Parameters
    ----------
    k : int
        Bits per message; there are M = 2^k messages.
    n : int
        Real channel uses per message.
    hidden : int
        Width of the one hidden (ReLU) layer of the encoder and of the decoder; 0 for none (a
        single linear layer each). Table 4.1's teacher has ``hidden = M``, Table 4.2's student 0.
    channel : str
        ``"awgn"`` or ``"rayleigh"`` (block fading), see :func:`channel`.
    power : str
        ``"codeword"`` (each codeword has energy n) or ``"codebook"`` (average energy n).

    Attributes
    ----------
    encoder : nn.Sequential
        One-hot (M) to n unnormalized reals.
    decoder : nn.Sequential
        n received reals to M logits; deployable alone on a receiver.
    """

    def __init__(self, k: int, n: int, hidden: int = 0, channel: str = "awgn",
                 power: str = "codeword"):
        super().__init__()
        if k < 1 or n < 1 or hidden < 0:
            raise ValueError(f"need k >= 1, n >= 1, hidden >= 0, not {k!r}, {n!r}, {hidden!r}")
        if k > 16:
            raise ValueError(f"k = {k} means 2^{k} messages and one-hots: too many")
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {CHANNELS}, not {channel!r}")
        if power not in POWERS:
            raise ValueError(f"power must be one of {POWERS}, not {power!r}")
        self.k, self.n, self.hidden, self.channel, self.power = k, n, hidden, channel, power
        m = self.m
        if hidden:
            self.encoder = nn.Sequential(nn.Linear(m, hidden), nn.ReLU(), nn.Linear(hidden, n))
            self.decoder = nn.Sequential(nn.Linear(n, hidden), nn.ReLU(), nn.Linear(hidden, m))
        else:
            self.encoder = nn.Sequential(nn.Linear(m, n))
            self.decoder = nn.Sequential(nn.Linear(n, m))

    @property
    def m(self) -> int:
        """Number of messages, 2^k."""
        return 1 << self.k

    @property
    def rate(self) -> float:
        """R = k / n bits per real channel use."""
        return self.k / self.n

    def normalize(self, x: torch.Tensor, codebook: torch.Tensor | None = None) -> torch.Tensor:
        """Scale encoder outputs to energy n each (``"codeword"``) or on average over the codebook.

        ``codebook`` is the unnormalized encoder output for all M messages (``"codebook"`` only;
        computed when not given).
        """
        if self.power == "codeword":
            return math.sqrt(self.n) * x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
        if codebook is None:
            codebook = self.encoder(torch.eye(self.m, dtype=x.dtype, device=x.device))
        mean_energy = (codebook * codebook).sum(dim=1).mean()
        return x * torch.sqrt(self.n / mean_energy.clamp_min(1e-24))

    def encode(self, messages: torch.Tensor) -> torch.Tensor:
        """Normalized codewords ``(B, n)`` of integer messages ``(B,)`` in 0 .. M-1."""
        onehot = F.one_hot(messages.long(), self.m).to(torch.float32)
        return self.normalize(self.encoder(onehot))

    def codebook(self) -> torch.Tensor:
        """All M normalized codewords, row m for message m: ``(M, n)``."""
        return self.encode(torch.arange(self.m))

    def forward(self, messages: torch.Tensor, ebn0_db: float,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits ``(B, M)`` for messages ``(B,)`` sent through the channel at ``ebn0_db``."""
        y = channel(self.encode(messages), ebn0_db, self.rate, self.channel, generator)
        return self.decoder(y)


def _seeded(build, seed: int):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def teacher(k: int, n: int, *, channel: str = "awgn", power: str = "codeword",
            seed: int = 0) -> Autoencoder:
    """Table 4.1's teacher: one hidden ReLU layer of M = 2^k units in encoder and decoder.

    For (k, n) = (8, 8) it has 135,944 parameters, the table's total. ``seed`` seeds the
    initialization (the global torch RNG is left as it was).
    """
    return _seeded(lambda: Autoencoder(k, n, hidden=1 << k, channel=channel, power=power), seed)


def student(k: int, n: int, *, channel: str = "awgn", power: str = "codeword",
            seed: int = 0) -> Autoencoder:
    """Table 4.2's student: encoder Linear(M, n), decoder Linear(n, M), no hidden layer.

    For (k, n) = (8, 8) it has 4,360 parameters, the table's total.
    """
    return _seeded(lambda: Autoencoder(k, n, hidden=0, channel=channel, power=power), seed)


def train_autoencoder(model: Autoencoder, *, ebn0_db: float, steps: int = 2000,
                      batch: int = 256, lr: float = 1e-3, seed: int = 0,
                      progress: bool = False) -> Autoencoder:
    """Adam on cross-entropy, fresh uniform messages and fresh channel noise every step.

    Parameters
    ----------
    model : Autoencoder
        Trained in place (its channel model is the one trained on).
    ebn0_db : float
        Training Eb/N0 in dB.
    steps, batch, lr : int, int, float
        Optimizer steps, messages per step, Adam learning rate.
    seed : int
        Seeds the messages and the noise (not the initialization: see :func:`teacher`).
    progress : bool
        Show a tqdm bar over the steps.

    Returns
    -------
    Autoencoder
        ``model``, in eval mode. Its per-step losses are in ``model.losses``.
    """
    if steps < 1 or batch < 1 or lr <= 0:
        raise ValueError(f"need steps >= 1, batch >= 1, lr > 0: {steps!r}, {batch!r}, {lr!r}")
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in tqdm(range(steps), desc="train", unit="step", disable=not progress):
        messages = torch.randint(0, model.m, (batch,), generator=gen)
        loss = F.cross_entropy(model(messages, ebn0_db, gen), messages)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    model.losses = losses
    return model


@torch.no_grad()
def bler(model: Autoencoder, ebn0_db: float, n_blocks: int = 100_000, seed: int = 1, *,
         batch: int = 65_536) -> float:
    """Block error rate by simulation: the fraction of messages decoded wrongly.

    Message j of the ``n_blocks`` is ``j mod M`` (every message equally often); noise and fades
    come from ``torch.Generator().manual_seed(seed)``.
    """
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    errors = 0
    try:
        for start in range(0, n_blocks, batch):
            messages = torch.arange(start, min(start + batch, n_blocks)) % model.m
            errors += int((model(messages, ebn0_db, gen).argmax(dim=1) != messages).sum())
    finally:
        model.train(was_training)
    return errors / n_blocks


# ---------------------------------------------------------------------------------------------
# Baselines: uncoded BPSK and Hamming (7, 4) with hard decisions
# ---------------------------------------------------------------------------------------------

_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def qfunc(x):
    """Gaussian tail Q(x) = P(N(0, 1) > x) = erfc(x / sqrt 2) / 2 (float or array)."""
    out = 0.5 * _erfc(np.asarray(x, dtype=np.float64) / math.sqrt(2.0))
    return float(out) if out.ndim == 0 else out


def bler_uncoded_bpsk(k: int, ebn0_db):
    """Block error of k uncoded BPSK bits on AWGN: 1 - (1 - Q(sqrt(2 Eb/N0)))^k."""
    p = qfunc(np.sqrt(2.0 * 10.0 ** (np.asarray(ebn0_db, dtype=np.float64) / 10.0)))
    return 1.0 - (1.0 - p) ** k


def bler_uncoded_bpsk_rayleigh(k: int, ebn0_db: float, *, points: int = 4001) -> float:
    """Block error of k uncoded BPSK bits sharing one Rayleigh fade (no coding), from theory.

    E_h[1 - (1 - Q(h sqrt(2 Eb/N0)))^k] with h Rayleigh, density 2 h exp(-h^2), integrated by
    the trapezoid rule on h in [0, 8] (the tail beyond holds e^-64 of the mass). For k = 1 it
    is the classical (1 - sqrt(g / (1 + g))) / 2, g = Eb/N0.
    """
    h = np.linspace(0.0, 8.0, points)
    pdf = 2.0 * h * np.exp(-h * h)
    p = qfunc(h * math.sqrt(2.0 * ebn0_ratio(ebn0_db)))
    f = pdf * (1.0 - (1.0 - p) ** k)
    return float(np.sum((f[1:] + f[:-1]) * np.diff(h)) / 2.0)


def simulate_uncoded_bpsk(k: int, ebn0_db: float, n_blocks: int = 100_000, seed: int = 1, *,
                          kind: str = "awgn") -> float:
    """Monte-Carlo block error of k uncoded BPSK bits in k channel uses (``kind`` as
    :func:`channel`; with ``"rayleigh"`` one fade per block of k bits, detected by sign, which
    needs no channel state)."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, (n_blocks, k))
    x = 1.0 - 2.0 * bits
    if kind == "rayleigh":
        g = rng.standard_normal((n_blocks, 2))
        x = x * np.sqrt((g * g).sum(axis=1, keepdims=True) / 2.0)
    elif kind != "awgn":
        raise ValueError(f"kind must be one of {CHANNELS}, not {kind!r}")
    y = x + math.sqrt(noise_variance(ebn0_db, 1.0)) * rng.standard_normal((n_blocks, k))
    return float(np.mean(np.any((y < 0) != bits.astype(bool), axis=1)))


#: Systematic generator of the (7, 4) Hamming code: c = d G (mod 2), c = [d1..d4, p1, p2, p3]
#: with p1 = d1+d2+d4, p2 = d1+d3+d4, p3 = d2+d3+d4.
HAMMING74_G = np.array([[1, 0, 0, 0, 1, 1, 0],
                        [0, 1, 0, 0, 1, 0, 1],
                        [0, 0, 1, 0, 0, 1, 1],
                        [0, 0, 0, 1, 1, 1, 1]], dtype=np.int64)
#: Parity-check matrix [P^T | I3]: G H^T = 0 (mod 2); its 7 columns are the 7 distinct
#: nonzero syndromes, so every single-bit error is located by its syndrome.
HAMMING74_H = np.concatenate([HAMMING74_G[:, 4:].T, np.eye(3, dtype=np.int64)], axis=1)

# syndrome (as the integer s1 + 2 s2 + 4 s3) -> flipped position, -1 for "no error"
_SYNDROME_POS = np.full(8, -1, dtype=np.int64)
_SYNDROME_POS[HAMMING74_H.T @ np.array([1, 2, 4])] = np.arange(7)


def hamming74_encode(data: np.ndarray) -> np.ndarray:
    """Codewords ``(..., 7)`` of data bits ``(..., 4)`` (0/1 integers)."""
    return (np.asarray(data, dtype=np.int64) @ HAMMING74_G) % 2


def hamming74_decode(received: np.ndarray) -> np.ndarray:
    """Data bits ``(..., 4)`` of hard-decision words ``(..., 7)`` by syndrome decoding.

    A nonzero syndrome equals one column of :data:`HAMMING74_H`; that bit is flipped (the
    maximum-likelihood, nearest-codeword decision, since the code is perfect).
    """
    r = np.asarray(received, dtype=np.int64) % 2
    syndrome = ((r @ HAMMING74_H.T) % 2) @ np.array([1, 2, 4])
    pos = _SYNDROME_POS[syndrome]
    flip = (pos[..., None] == np.arange(7)).astype(np.int64)
    return ((r + flip) % 2)[..., :4]


def bler_hamming74_hard(ebn0_db):
    """Block error of the (7, 4) Hamming code, BPSK on AWGN, hard decisions, from theory.

    Each code bit is wrong with p = Q(sqrt(2 (4/7) Eb/N0)) (Es = (4/7) Eb per code bit); the
    decoder corrects exactly the patterns of at most one error, so
    BLER = 1 - [(1 - p)^7 + 7 p (1 - p)^6].
    """
    p = qfunc(np.sqrt(2.0 * (4.0 / 7.0) * 10.0 ** (np.asarray(ebn0_db, dtype=np.float64) / 10.0)))
    return 1.0 - ((1.0 - p) ** 7 + 7.0 * p * (1.0 - p) ** 6)


def simulate_hamming74_hard(ebn0_db: float, n_blocks: int = 100_000, seed: int = 1) -> float:
    """Monte-Carlo block error of (7, 4) Hamming + BPSK on AWGN + hard-decision syndrome decoding.

    Unit-energy BPSK symbols (bit b -> 1 - 2b), sigma^2 = 1 / (2 (4/7) Eb/N0) as
    :func:`noise_variance` at R = 4/7; a block is wrong if any of its 4 data bits is.
    """
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 2, (n_blocks, 4))
    x = 1.0 - 2.0 * hamming74_encode(data)
    y = x + math.sqrt(noise_variance(ebn0_db, 4.0 / 7.0)) * rng.standard_normal(x.shape)
    decoded = hamming74_decode((y < 0).astype(np.int64))
    return float(np.mean(np.any(decoded != data, axis=1)))
