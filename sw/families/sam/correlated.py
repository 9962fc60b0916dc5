"""The classification task of seed 002 (§III-A) and its two networks, configurations A and B.

A signal of n samples is drawn from a zero-mean Gaussian with covariance X_ij = r^|i-j| (eq. 6);
the class is which of ``n_classes`` values of r, evenly spaced in [-r_max, r_max], made it.

Signals are generated with the AR(1) recursion

    x_0 = e_0,    x_t = r x_{t-1} + sqrt(1 - r^2) e_t,    e_t ~ N(0, 1) i.i.d.,

which is stationary with Var x_t = 1 and Cov(x_t, x_{t+k}) = r^k: exactly eq. 6. It costs O(n)
per signal and needs no n x n matrix (it *is* multiplication by the Cholesky factor of the
Toeplitz covariance, done as a recursion). On an accelerator, where n small steps cost n kernel
launches, a generator on that device draws the batch as that product instead: x = L e with
L_tk = r^(t-k) c_k for k <= t (c_0 = 1, c_k = sqrt(1 - r^2)), the same distribution by a
different stream of random numbers. Fixed sets (:meth:`CorrelatedTask.test_set`) always use the
recursion on the CPU, so they are the same on every machine.

Configuration A is a MAC hidden layer (307 units, ReLU: the paper does not name the activation)
and B a SAM hidden layer (1024 units, eq. 5), each followed by a dense layer with 10 outputs and a
softmax (in the loss). Training draws fresh signals for every step (§III-C), so there is no
training set and no validation set; the test set is fixed (10^5 signals from a seed, §III-D).
"""

from __future__ import annotations

import copy
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from .layers import FORMS, SAMLinear

__all__ = ["CorrelatedTask", "CorrelatedConfig", "CONFIG_A", "CONFIG_B", "build_model",
           "CorrelatedTrainer", "train_correlated", "accuracy", "confusion", "magnitude_prune"]


@dataclass(frozen=True)
class CorrelatedTask:
    """Signals with covariance r^|i-j| (eq. 6), one class per value of r.

    Members
    -------
    n : int
        Samples per signal (the network's inputs).
    n_classes : int
        Number of values of r.
    r_max : float
        The values of r are evenly spaced in [-r_max, r_max].
    """

    n: int = 512
    n_classes: int = 10
    r_max: float = 0.9

    def __post_init__(self):
        if self.n < 2 or self.n_classes < 2:
            raise ValueError(f"need n >= 2 and n_classes >= 2, not {self.n!r}, {self.n_classes!r}")
        if not 0.0 < self.r_max < 1.0:
            raise ValueError(f"r_max must lie in (0, 1), not {self.r_max!r}")

    @property
    def rs(self) -> torch.Tensor:
        """The value of r of each class, ascending."""
        return torch.linspace(-self.r_max, self.r_max, self.n_classes, dtype=torch.float64)

    def signals(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One float32 signal of shape ``(n,)`` per label, by the AR(1) recursion."""
        r = self.rs[labels].to(torch.float32)
        innovation = torch.sqrt(1.0 - r * r)
        x = torch.randn(len(labels), self.n, generator=generator)
        for t in range(1, self.n):
            x[:, t] = r * x[:, t - 1] + innovation * x[:, t]
        return x

    def factors(self, device: torch.device | str) -> torch.Tensor:
        """The Cholesky factors of every class side by side, transposed: ``(n, n_classes * n)``.

        Column block c is L_c^T with L_c[t, k] = r_c^(t-k) c_k for k <= t (the recursion's
        product form), so ``e @ factors`` is every class's signal for the innovations ``e``.
        """
        return _factors(self.n, self.n_classes, self.r_max, str(device))

    def sample(self, batch_size: int, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """A fresh batch of (signals, labels) with uniformly random labels, on the generator's
        device (by the recursion on the CPU, by the Cholesky product elsewhere)."""
        device = generator.device
        y = torch.randint(0, self.n_classes, (batch_size,), generator=generator, device=device)
        if device.type == "cpu":
            return self.signals(y, generator), y
        e = torch.randn(batch_size, self.n, generator=generator, device=device)
        every = (e @ self.factors(device)).view(batch_size, self.n_classes, self.n)
        return every[torch.arange(batch_size, device=device), y], y

    def test_set(self, size: int = 100_000, *, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed, balanced test set: label ``k % n_classes`` for the k-th signal."""
        y = torch.arange(size) % self.n_classes
        return self.signals(y, torch.Generator().manual_seed(seed)), y


@functools.lru_cache(maxsize=8)
def _factors(n: int, n_classes: int, r_max: float, device: str) -> torch.Tensor:
    rs = torch.linspace(-r_max, r_max, n_classes, dtype=torch.float64)
    t = torch.arange(n, dtype=torch.float64)
    lag = t[:, None] - t[None, :]                                   # t - k
    scale = torch.full((n,), 1.0, dtype=torch.float64)
    blocks = []
    for r in rs.tolist():
        scale[1:] = (1.0 - r * r) ** 0.5
        low = torch.where(lag >= 0, torch.tensor(r, dtype=torch.float64) ** lag.clamp(min=0), 0.0)
        blocks.append((low * scale[None, :]).T)                     # L^T: (k, t)
    return torch.cat(blocks, dim=1).to(device=device, dtype=torch.float32)


@dataclass(frozen=True)
class CorrelatedConfig:
    """One network of §III-B with its training settings of §III-C.

    Members
    -------
    hidden : str
        ``"mac"`` (dense + bias + ReLU) or ``"sam"`` (:class:`SAMLinear`).
    width : int
        Outputs of the hidden layer.
    batch_size, lr, steps_per_epoch, epochs : int, float, int, int
        Adam training on fresh signals; the paper trains 1000 epochs.
    sam_form : str
        The SAM form (:data:`hwgen.sw.families.sam.layers.FORMS`) of a ``"sam"`` hidden layer.
    task : CorrelatedTask
        The signals to classify.
    """

    hidden: str
    width: int
    batch_size: int
    lr: float
    steps_per_epoch: int
    epochs: int = 1000
    sam_form: str = "max+min"
    task: CorrelatedTask = field(default_factory=CorrelatedTask)

    def __post_init__(self):
        if self.hidden not in ("mac", "sam"):
            raise ValueError(f"hidden must be 'mac' or 'sam', not {self.hidden!r}")
        if self.sam_form not in FORMS:
            raise ValueError(f"sam_form must be one of {sorted(FORMS)}, not {self.sam_form!r}")
        if min(self.width, self.batch_size, self.steps_per_epoch, self.epochs) < 1 or self.lr <= 0:
            raise ValueError(f"sizes, steps and lr must be positive: {self!r}")


#: Configuration A: MAC hidden layer of 0.6 n ~ 307 units; batch 64, Adam 1e-3, 1000 steps/epoch.
CONFIG_A = CorrelatedConfig(hidden="mac", width=307, batch_size=64, lr=1e-3, steps_per_epoch=1000)
#: Configuration B: SAM hidden layer of 2 n = 1024 units; batch 256, Adam 8e-3, 250 steps/epoch.
CONFIG_B = CorrelatedConfig(hidden="sam", width=1024, batch_size=256, lr=8e-3, steps_per_epoch=250)


def build_model(config: CorrelatedConfig) -> nn.Sequential:
    """Hidden layer of ``config`` followed by a dense layer with one logit per class (Fig. 2)."""
    n, classes = config.task.n, config.task.n_classes
    if config.hidden == "mac":
        hidden = [nn.Linear(n, config.width), nn.ReLU()]
    else:
        hidden = [SAMLinear(n, config.width, form=config.sam_form)]
    return nn.Sequential(*hidden, nn.Linear(config.width, classes))


class CorrelatedTrainer:
    """Adam on cross-entropy over fresh batches (§III-C), resumable, on any device.

    The initialization draws from ``torch.manual_seed(seed)`` on the CPU, so a model starts the
    same on every device; the training signals come from a generator on ``device`` seeded with
    ``seed``. :meth:`state_dict` holds everything needed to continue exactly where it stopped:
    the model, the optimizer, the generator, the epochs done and their history.

    Parameters
    ----------
    config : CorrelatedConfig
        Network and training settings.
    seed : int
        Seeds the initialization and the training signals.
    device : str or torch.device
        Where to train (``"cpu"``, ``"cuda"``).

    Members
    -------
    model : nn.Sequential
        The network, on ``device``.
    epoch : int
        Epochs done.
    history : list of [epoch, loss, accuracy]
        Per epoch done: the mean cross-entropy and the training accuracy over its batches
        (Fig. 3; the signals are fresh, so it is also a validation accuracy).
    seconds : float
        Training time spent so far, over every run.
    """

    def __init__(self, config: CorrelatedConfig, *, seed: int = 0,
                 device: torch.device | str = "cpu"):
        self.config, self.device = config, torch.device(device)
        torch.manual_seed(seed)
        self.model = build_model(config).to(self.device)
        fused = {"fused": True} if self.device.type == "cuda" else {}
        self.opt = torch.optim.Adam(self.model.parameters(), lr=config.lr, **fused)
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.epoch, self.history, self.seconds = 0, [], 0.0

    @property
    def done(self) -> bool:
        return self.epoch >= self.config.epochs

    def run(self, *, deadline: float | None = None, progress: bool = True,
            on_epoch: Callable[[int, float, float], None] | None = None) -> bool:
        """Train the remaining epochs, or stop after the first epoch that ends past ``deadline``
        (a :func:`time.monotonic` value). Returns :attr:`done`; the model is left in eval mode.

        ``on_epoch(epoch, loss, accuracy)`` is called after every epoch, the epoch from 1.
        """
        config, loss_fn = self.config, nn.CrossEntropyLoss()
        bar = tqdm(range(self.epoch, config.epochs), desc="train", unit="epoch",
                   initial=self.epoch, total=config.epochs, disable=not progress)
        self.model.train()
        try:
            for _ in bar:
                start = time.perf_counter()
                total = torch.zeros((), dtype=torch.float64, device=self.device)
                correct = torch.zeros((), dtype=torch.int64, device=self.device)
                for _ in range(config.steps_per_epoch):
                    x, y = config.task.sample(config.batch_size, self.gen)
                    logits = self.model(x)
                    loss = loss_fn(logits, y)
                    self.opt.zero_grad()
                    loss.backward()
                    self.opt.step()
                    # summed on the device: no synchronization per step
                    total += loss.detach()
                    correct += (logits.detach().argmax(dim=1) == y).sum()
                mean = float(total) / config.steps_per_epoch
                acc = int(correct) / (config.steps_per_epoch * config.batch_size)
                self.epoch += 1
                self.history.append([self.epoch, mean, acc])
                self.seconds += time.perf_counter() - start
                bar.set_postfix(loss=f"{mean:.3f}")
                if on_epoch is not None:
                    on_epoch(self.epoch, mean, acc)
                if deadline is not None and time.monotonic() > deadline and not self.done:
                    break
        finally:
            bar.close()
            self.model.eval()
        return self.done

    def state_dict(self) -> dict:
        """Everything :meth:`load_state_dict` needs, tensors on the CPU."""
        return {"model": {k: v.cpu() for k, v in self.model.state_dict().items()},
                "optimizer": _to_cpu(self.opt.state_dict()), "generator": self.gen.get_state(),
                "epoch": self.epoch, "history": self.history, "seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.gen.set_state(state["generator"])
        self.epoch, self.history = state["epoch"], [list(h) for h in state["history"]]
        self.seconds = state["seconds"]


def _to_cpu(tree):
    if isinstance(tree, torch.Tensor):
        return tree.cpu()
    if isinstance(tree, dict):
        return {k: _to_cpu(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_to_cpu(v) for v in tree]
    return tree


def train_correlated(config: CorrelatedConfig, *, seed: int = 0, progress: bool = True,
                     on_epoch: Callable[[int, float, float], None] | None = None,
                     device: torch.device | str = "cpu") -> nn.Sequential:
    """Train ``build_model(config)`` with :class:`CorrelatedTrainer` (``config``, ``seed``,
    ``device``) to the end, and return its model, in eval mode, on ``device``.

    ``progress`` shows a tqdm bar over the epochs; ``on_epoch(epoch, loss, accuracy)`` is called
    after every epoch (see :attr:`CorrelatedTrainer.history`) and changes nothing else. On the
    CPU it runs on one thread (restored afterwards): the forward of a SAM layer is
    memory-bound, and more threads only contend on the shared cores.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trainer = CorrelatedTrainer(config, seed=seed, device=device)
        trainer.run(progress=progress, on_epoch=on_epoch)
        return trainer.model
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def _predict(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Predicted classes on the CPU; the batches run on the device of the model's parameters."""
    device = next(model.parameters()).device
    return torch.cat([model(x[i:i + batch_size].to(device)).argmax(dim=1).cpu()
                      for i in range(0, len(x), batch_size)])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1024
             ) -> float:
    """Fraction of ``x`` classified as ``y`` (argmax ties to the lowest class)."""
    return float((_predict(model, x, batch_size) == y.cpu()).double().mean())


def confusion(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n_classes: int, *,
              batch_size: int = 1024) -> torch.Tensor:
    """Counts ``c[true, predicted]`` as in Fig. 4 of seed 002."""
    pred = _predict(model, x, batch_size)
    return torch.bincount(y.cpu() * n_classes + pred,
                          minlength=n_classes ** 2).view(n_classes, n_classes)


@torch.no_grad()
def magnitude_prune(linear: nn.Linear, threshold: float) -> tuple[nn.Linear, int]:
    """Configuration A's pruning (§III-D): zero every weight with ``|w| < threshold``.

    Parameters
    ----------
    linear : nn.Linear
        The trained hidden layer; it is not modified.
    threshold : float
        Magnitude below which a weight is removed (set to 0); 0 keeps every weight.

    Returns
    -------
    pruned : nn.Linear
        A copy with the removed weights at 0. The bias is kept whole.
    kept : int
        Weights with ``|w| >= threshold``: the paper's parameter count N_A, which counts the
        weights only (its 157,286 "weights plus 307 bias values").
    """
    if not threshold >= 0.0:
        raise ValueError(f"threshold must be >= 0, not {threshold!r}")
    keep = linear.weight.abs() >= threshold
    pruned = copy.deepcopy(linear)      # no fresh nn.Linear: that would draw from the global RNG
    pruned.weight.mul_(keep)
    return pruned, int(keep.sum())
