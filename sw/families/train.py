"""Training loop of hwgen's front ends: Adam with a progress bar, weights clipped after every
step (:func:`hwgen.sw.families.ste.clip_weights`); float64 inference."""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .ste import clip_weights

__all__ = ["train", "predict", "accuracy"]


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int = 60,
          batch_size: int = 64, lr: float = 1e-2, seed: int = 0, progress: bool = True,
          on_step: Callable[[int], None] | None = None,
          on_epoch: Callable[[int], None] | None = None,
          objective: Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor],
                              torch.Tensor] | None = None,
          ) -> nn.Module:
    """Adam on cross-entropy with weights clipped to [-1, 1] after every step; cosine LR decay.

    ``on_step(t)`` runs before optimizer step t (0, 1, ...), e.g. to set AQE's alpha from a
    schedule; ``on_epoch(e)`` after epoch e (1 .. epochs), the model still in training mode.
    ``objective(model, x, y, idx)`` replaces ``cross_entropy(model(x), y)`` for each batch
    (``idx``: the batch's rows of the training set), e.g. to distill from a teacher on
    augmented inputs.

    Runs on one CPU thread: these networks are small, and more threads only contend (measured
    on 2 busy cores: 63 s with two threads, 6 s with one, for the demo's 60 epochs).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(model, x, y, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                      progress=progress, on_step=on_step, on_epoch=on_epoch,
                      objective=objective)
    finally:
        torch.set_num_threads(threads)


def _train(model, x, y, *, epochs, batch_size, lr, seed, progress, on_step, on_epoch,
           objective):
    torch.manual_seed(seed)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * ((len(xt) + batch_size - 1) // batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    ce = nn.CrossEntropyLoss()
    if objective is None:
        def objective(net, xb, yb, idx):
            return ce(net(xb), yb)
    gen = torch.Generator().manual_seed(seed)
    bar = tqdm(range(epochs), desc="train", unit="epoch", disable=not progress)
    model.train()
    step = 0
    for epoch in bar:
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(xt), batch_size):
            idx = perm[i:i + batch_size]
            if on_step is not None:
                on_step(step)
            step += 1
            value = objective(model, xt[idx], yt[idx], idx)
            opt.zero_grad()
            value.backward()
            opt.step()
            sched.step()
            clip_weights(model)
            total += value.item() * len(idx)
        bar.set_postfix(loss=f"{total / len(xt):.3f}")
        if on_epoch is not None:
            on_epoch(epoch + 1)
    model.eval()
    return model


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Class predictions of ``model`` in inference mode, computed in float64.

    float64 keeps every integer accumulator exact and makes batch norm's rounding negligible
    next to the compiler's integer thresholds (see docs/architecture.md, the ladder).
    """
    model64 = _double_copy(model)
    logits = model64(torch.as_tensor(x, dtype=torch.float64))
    return logits.argmax(dim=1).numpy().astype(np.int64)


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict(model, x) == y).mean())


def _double_copy(model: nn.Module) -> nn.Module:
    m = copy.deepcopy(model).double()
    m.eval()
    return m
