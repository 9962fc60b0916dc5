"""The split network of seed 000's experiments (§4, Figs. 4-5), CPU-sized, on the digits.

A complex MLP split at one point over a MIMO over-the-air (OAC) link (§2.2):

    transmitter:  x (64 real pixels / 16, imaginary part 0) -> ComplexLinear(64 -> h)
                  -> ComplexBatchNorm1d(h) -> activation          (what the link carries)
    link:         OACLinear(h -> h2, channel, rank)               (eq. 1-11, noisy, reciprocal)
                  or, for the *centralized* baseline, ComplexLinear(h -> h2) with no channel
    receiver:     ComplexBatchNorm1d(h2) -> activation -> ComplexLinear(h2 -> 10)
    logits:       the real part of the last layer's output

Conventions fixed here:

* **Activation** ``"qam16"`` is :class:`hwgen.sw.families.constellation.qam.QAM` (16-QAM,
  Delta = 1: levels -1, -1/3, 1/3, 1 on each axis, eq. 12-14 backward), so every element the
  transmitter hands to the link is one 16-QAM point; ``"crelu"`` is
  :class:`hwgen.sw.families.constellation.complex_nn.CReLU`. The same activation is used on
  both sides of the link.
* **Logits** are ``Re z`` of the output layer (not ``|z|``): a linear read-out, so the last
  layer stays an ordinary affine map of its input's real and imaginary parts and cross-entropy
  sees signed scores.
* **Input scaling**: the network divides its (pixel) input by ``input_scale = 16``, the
  digits' largest pixel, so the first layer sees values in [0, 1].
* **Link bias**: neither link has a bias (the OAC layer computes ``y = W x``, §2.2; a bias
  would live at the receiver, and the batch norm right after the link removes it anyway), so
  the centralized link is ``ComplexLinear(h, h2, bias=False)``, the same function class.
* **Noise at test time**: the OAC link is physical, so evaluation runs over the noisy channel
  too (the current ``H``, noise at ``snr_db``); batch norms use their running statistics.
* **Beam losses** (§3, eq. 15-16,
  :func:`hwgen.sw.families.constellation.oac.forward_beam_loss` and
  :func:`hwgen.sw.families.constellation.oac.backward_beam_loss`): with ``beam_loss=True`` the
  training loss is ``CE + beam_weight * (l_f + l_b)``. ``l_f`` uses the signals received in
  this batch's forward; ``l_b`` needs received gradients, which exist only after a backward, so
  it uses those of the *previous* batch (none on the first batch). The paper adds them with
  weight 1; we default to a small weight (0.01) because our ``l_f``, ``l_b`` are squared
  Frobenius norms whose scale the paper does not fix.

Scale: the paper uses a complex ResNet on CIFAR-10, split at two points, each over an
independent 64 x 64 MIMO channel with 8 paths (rank ~ 8), batch 64, Adam at 5e-3. Here: one split
point, ``h = h2 = 32``, a 16 x 16 channel with 8 paths (rank 8, eq. 17), ``rank = 8`` streams, so
``K = ceil(h2 / rank) = 4`` transmissions per sample; digits (1,437 training and 360 test
images, 23 batches of 64 per epoch); the paper's batch size and learning rate.

Determinism: :func:`train_eval` seeds ``torch.manual_seed(seed)`` (initialization and channel
noise) and shuffles with its own generator seeded by ``seed``; the channel it builds is seeded by
``channel_seed`` (default ``seed``). Two calls with the same arguments in the same thread
setting give the same numbers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from ..data import digits
from .complex_nn import ComplexBatchNorm1d, ComplexLinear, CReLU
from .oac import DriftingChannel, OACLinear, backward_beam_loss, forward_beam_loss
from .qam import QAM

__all__ = ["ACTIVATIONS", "LINKS", "make_activation", "OACNet", "evaluate", "TrainResult",
           "train_eval", "comm_cost"]

ACTIVATIONS = ("qam16", "crelu")
LINKS = ("oac", "central")
#: Defaults of the CPU-sized experiments (see the module docstring).
DEFAULTS = {"h": 32, "h2": 32, "antennas": 16, "paths": 8, "rank": 8, "lr": 5e-3,
            "batch_size": 64, "beam_weight": 1e-2}


def make_activation(name: str) -> nn.Module:
    """``"qam16"``: 16-QAM with Delta = 1; ``"crelu"``: complex ReLU."""
    if name == "qam16":
        return QAM(16, 1.0)
    if name == "crelu":
        return CReLU()
    raise ValueError(f"activation must be one of {ACTIVATIONS}, not {name!r}")


class OACNet(nn.Module):
    """Complex MLP ``n_in -> h -> [link] -> h2 -> n_classes`` split over one link.

    Parameters
    ----------
    activation : str
        ``"qam16"`` or ``"crelu"`` (both sides of the link).
    link : str
        ``"oac"``: :class:`hwgen.sw.families.constellation.oac.OACLinear` over ``channel``;
        ``"central"``: a plain ``ComplexLinear(h, h2, bias=False)``, no channel (``channel``,
        ``rank``, ``snr_db`` are then ignored).
    channel : object with ``.H`` or torch.Tensor
        The MIMO channel, needed for ``link="oac"``.
    rank, snr_db : int, float or None
        Streams per transmission and per-antenna SNR of the OAC link (None: noiseless).
    h, h2, n_in, n_classes : int
        Widths.
    input_scale : float
        The input is divided by it (16: digits' pixels to [0, 1]).

    Members
    -------
    tx : nn.Sequential
        ComplexLinear(n_in, h), ComplexBatchNorm1d(h), activation: the transmitter.
    link : OACLinear or ComplexLinear
    rx : nn.Sequential
        ComplexBatchNorm1d(h2), activation, ComplexLinear(h2, n_classes): the receiver.
    """

    def __init__(self, activation: str = "qam16", link: str = "oac", channel=None,
                 rank: int = DEFAULTS["rank"], snr_db: float | None = None,
                 h: int = DEFAULTS["h"], h2: int = DEFAULTS["h2"], n_in: int = 64,
                 n_classes: int = 10, input_scale: float = 16.0):
        super().__init__()
        if link not in LINKS:
            raise ValueError(f"link must be one of {LINKS}, not {link!r}")
        if link == "oac" and channel is None:
            raise ValueError("an OAC link needs a channel")
        self.activation, self.link_kind, self.input_scale = activation, link, float(input_scale)
        self.tx = nn.Sequential(ComplexLinear(n_in, h), ComplexBatchNorm1d(h),
                                make_activation(activation))
        self.link = (OACLinear(h, h2, channel, rank, snr_db) if link == "oac"
                     else ComplexLinear(h, h2, bias=False))
        self.rx = nn.Sequential(ComplexBatchNorm1d(h2), make_activation(activation),
                                ComplexLinear(h2, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Real inputs ``(B, n_in)`` -> real logits ``(B, n_classes)`` (``Re`` of the output)."""
        z = self.tx(x.to(torch.float32) / self.input_scale)
        return self.rx(self.link(z)).real

    def beam_loss(self) -> torch.Tensor:
        """``l_f + l_b`` of the last forward / last backward (0 for a centralized link)."""
        if not isinstance(self.link, OACLinear):
            return torch.zeros(())
        loss = forward_beam_loss(self.link)
        if self.link.received_gradient is not None:
            loss = loss + backward_beam_loss(self.link)
        return loss


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of ``model`` in eval mode on one batch (restores the previous mode)."""
    was = model.training
    model.eval()
    try:
        return float((model(x).argmax(dim=1) == y).double().mean())
    finally:
        model.train(was)


@dataclass
class TrainResult:
    """What :func:`train_eval` measured.

    Members
    -------
    accuracy : list[float]
        Test accuracy after each epoch.
    loss : list[float]
        Mean training cross-entropy of each epoch.
    best, final : float
        ``max(accuracy)`` and ``accuracy[-1]``.
    batches, channel_updates : int
        Training batches run and how many ``channel.step()`` calls moved H.
    seconds : float
        Wall time of training and evaluation.
    model : OACNet
        The trained network (not part of :meth:`summary`).
    """

    accuracy: list[float]
    loss: list[float]
    batches: int
    channel_updates: int
    seconds: float
    model: OACNet = field(repr=False)

    @property
    def best(self) -> float:
        return max(self.accuracy)

    @property
    def final(self) -> float:
        return self.accuracy[-1]

    def summary(self) -> dict:
        return {"accuracy": self.accuracy, "loss": self.loss, "best": self.best,
                "final": self.final, "batches": self.batches,
                "channel_updates": self.channel_updates, "seconds": self.seconds}


def _tensors(data, train_subset: int | None):
    x_tr = torch.as_tensor(data.x_train, dtype=torch.float32)
    y_tr = torch.as_tensor(data.y_train, dtype=torch.int64)
    if train_subset is not None:
        x_tr, y_tr = x_tr[:train_subset], y_tr[:train_subset]
    return (x_tr, y_tr, torch.as_tensor(data.x_test, dtype=torch.float32),
            torch.as_tensor(data.y_test, dtype=torch.int64))


def train_eval(activation: str = "qam16", link: str = "oac", *, snr_db: float | None = None,
               rho: float = 0.0, every: int = 50, epochs: int = 10, seed: int = 0,
               channel_seed: int | None = None, channel=None,
               antennas: int = DEFAULTS["antennas"], paths: int = DEFAULTS["paths"],
               rank: int = DEFAULTS["rank"], h: int = DEFAULTS["h"], h2: int = DEFAULTS["h2"],
               lr: float = DEFAULTS["lr"], batch_size: int = DEFAULTS["batch_size"],
               beam_loss: bool = True, beam_weight: float = DEFAULTS["beam_weight"],
               data=None, train_subset: int | None = None, progress=None) -> TrainResult:
    """Train :class:`OACNet` on digits with Adam and report test accuracy after every epoch.

    Parameters
    ----------
    activation, link : str
        See :class:`OACNet`.
    snr_db : float or None
        Per-antenna SNR of the OAC link, forward and backward (None: noiseless).
    rho, every : float, int
        Channel drift of eq. 18 (``rho = 0``: a stable channel) every ``every`` batches; used
        when ``channel`` is not given.
    epochs, seed, channel_seed : int
        Passes over the training set; seed of initialization, noise and shuffling; seed of the
        channel's draws (default ``seed``).
    channel : object with ``.H`` (and optionally ``.step()``), or torch.Tensor
        Use this channel instead of building ``DriftingChannel(antennas, antennas, rho, every,
        paths, channel_seed)``. ``channel.step()``, when it exists, is called once per training
        batch, after the optimizer step.
    antennas, paths, rank, h, h2 : int
        Channel size (N_t = N_r), its paths (eq. 17), streams, widths.
    lr, batch_size : float, int
        Adam's learning rate and the batch size (the paper's 5e-3 and 64).
    beam_loss, beam_weight : bool, float
        Add ``beam_weight * (l_f + l_b)`` (eq. 15-16) to the cross-entropy (OAC link only).
    data : hwgen.sw.families.data.Split or None
        Default ``digits(seed=0)``.
    train_subset : int or None
        Train on only the first ``train_subset`` training images.
    progress : callable or None
        Called as ``progress(epoch, accuracy)`` after every epoch.

    Returns
    -------
    TrainResult
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, not {activation!r}")
    if epochs < 1 or batch_size < 2:
        raise ValueError(f"need epochs >= 1 and batch_size >= 2, not {epochs}, {batch_size}")
    if data is None:
        data = digits(seed=0)
    x_tr, y_tr, x_te, y_te = _tensors(data, train_subset)
    start = time.perf_counter()
    if link == "oac" and channel is None:
        channel = DriftingChannel(antennas, antennas, rho, every, paths,
                                  seed=seed if channel_seed is None else channel_seed)
    torch.manual_seed(seed)
    model = OACNet(activation, link, channel if link == "oac" else None, rank, snr_db, h, h2,
                   n_in=x_tr.shape[1], n_classes=int(data.n_classes))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    shuffle = torch.Generator().manual_seed(seed)
    stepper = getattr(channel, "step", None) if link == "oac" else None
    n = len(x_tr)
    accs, losses, batches, updates = [], [], 0, 0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=shuffle)
        starts = list(range(0, n, batch_size))
        if n - starts[-1] < 2 and len(starts) > 1:      # batch norm needs 2 samples
            starts.pop()
        total = 0.0
        for s in starts:
            idx = order[s:s + batch_size]
            logits = model(x_tr[idx])
            ce = F.cross_entropy(logits, y_tr[idx])
            loss = ce + beam_weight * model.beam_loss() if beam_loss else ce
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(ce.detach()) * len(idx)
            batches += 1
            if stepper is not None:
                updates += bool(stepper())
        losses.append(total / sum(len(order[s:s + batch_size]) for s in starts))
        accs.append(evaluate(model, x_te, y_te))
        if progress is not None:
            progress(epoch + 1, accs[-1])
    return TrainResult(accs, losses, batches, updates, time.perf_counter() - start, model)


def comm_cost(h: int = DEFAULTS["h"], h2: int = DEFAULTS["h2"], rank: int = DEFAULTS["rank"],
              bits_per_stream_use: int = 4) -> dict:
    """Per-sample, per-direction link cost of §4.1: split learning (SL) vs the OAC link.

    Assumptions (stated, not measured):

    * SL sends each of the ``h`` complex activations as two float32: 64 bits each.
    * A digital link carries ``bits_per_stream_use`` bits (4 = log2 16, uncoded 16-QAM) per
      stream per channel use over ``rank`` parallel streams, so ``b`` bits need
      ``ceil(b / (rank * bits_per_stream_use))`` channel uses.
    * The OAC link needs ``K = ceil(h2 / rank)`` channel uses (each carries ``rank`` analog
      streams) and computes the layer in them; no bits are sent. With 16-QAM activations each
      element of the layer's input is one 16-QAM point, 4 bits, so sending the activations
      themselves digitally (SL with QAM activations) needs ``ceil(4 h / (4 rank))`` uses.
    * The backward direction costs the same in each scheme (h complex gradients for SL; K
      backward transmissions for OAC).

    Returns
    -------
    dict
        ``sl_bits``, ``sl_uses``, ``sl_qam_bits``, ``sl_qam_uses``, ``oac_uses``, ``oac_streams``
        (analog symbols), ``ratio_uses`` (SL / OAC channel uses) and ``ratio_bits_per_element``
        (64 bits of a float32 pair over the 4 bits of one 16-QAM point).
    """
    per_use = rank * bits_per_stream_use
    sl_bits = 64 * h
    sl_qam_bits = 4 * h
    K = math.ceil(h2 / rank)
    sl_uses = math.ceil(sl_bits / per_use)
    return {"h": h, "h2": h2, "rank": rank, "bits_per_stream_use": bits_per_stream_use,
            "sl_bits": sl_bits, "sl_uses": sl_uses,
            "sl_qam_bits": sl_qam_bits, "sl_qam_uses": math.ceil(sl_qam_bits / per_use),
            "oac_uses": K, "oac_streams": K * rank,
            "ratio_uses": sl_uses / K, "ratio_bits_per_element": 64 / 4}
