"""Histograms of a layer's weights and activations during training (seed 004, Figs. 1-4).

The seed shows the asymptotic behaviour of AQE (Theorem 3) by the distribution of one layer's
weights and activations at a few epochs: with training, the values gather on the quantized
levels. :class:`HistogramRecorder` is an ``on_epoch`` callback for
:func:`hwgen.sw.families.train.train` that records, at chosen epochs, what the network computes
with in training mode:

* weights: the quantizer's output ``alpha h(W) + (1 - alpha) W`` (eq. 19);
* activations: the activation quantizer's output ``alpha h(a) + (1 - alpha) a`` (eq. 18) on a
  fixed batch of inputs, without noise.

:func:`save_histograms` draws them, one panel per epoch on a logarithmic count axis, as the
seed's figures do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["HistogramRecorder", "save_histograms"]


class HistogramRecorder:
    """Record ``layer``'s weight and ``act``'s output at ``epochs`` (an ``on_epoch`` callback).

    Parameters
    ----------
    model : nn.Module
        The network being trained; run on ``x`` to see the activations.
    layer : nn.Module
        A module with ``weight`` and ``weight_quantizer`` (``QuantLinear``, ``QuantConv2d``).
    act : nn.Module
        The activation quantizer whose outputs are recorded.
    x : numpy.ndarray
        The fixed batch of inputs.
    epochs : iterable of int
        Epochs (1-based, counted as :func:`hwgen.sw.families.train.train` does) to record.

    Members
    -------
    weights, activations : dict of int to numpy.ndarray
        Flattened values per recorded epoch.
    """

    def __init__(self, model: nn.Module, layer: nn.Module, act: nn.Module, x: np.ndarray,
                 epochs):
        self.model, self.layer, self.act = model, layer, act
        self.x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        self.epochs = set(epochs)
        self.weights: dict[int, np.ndarray] = {}
        self.activations: dict[int, np.ndarray] = {}

    @torch.no_grad()
    def __call__(self, epoch: int) -> None:
        if epoch not in self.epochs:
            return
        noise = getattr(self.act.estimator, "noise", False)
        seen = []
        handle = self.act.register_forward_hook(lambda m, i, o: seen.append(o.detach()))
        # the batch norm statistics must not move: run a copy of the state in eval for BN only
        bns = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [bn.momentum for bn in bns]
        try:
            for bn in bns:
                bn.momentum = 0.0
            if noise:
                self.act.estimator.noise = False
            self.model(self.x)
        finally:
            handle.remove()
            for bn, m in zip(bns, momenta):
                bn.momentum = m
            if noise:
                self.act.estimator.noise = True
        self.weights[epoch] = self.layer.weight_quantizer(self.layer.weight).flatten().numpy()
        self.activations[epoch] = torch.cat([s.flatten() for s in seen]).numpy()


def save_histograms(recorder: HistogramRecorder, path, *, title: str, bins: int = 101) -> list[Path]:
    """Write ``<path>_weights.png`` and ``<path>_activations.png``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    for what, data in (("weights", recorder.weights), ("activations", recorder.activations)):
        epochs = sorted(data)
        fig, axes = plt.subplots(1, len(epochs), figsize=(4 * len(epochs), 3), squeeze=False,
                                 sharey=True)
        lo = min(float(d.min()) for d in data.values())
        hi = max(float(d.max()) for d in data.values())
        for ax, epoch in zip(axes[0], epochs):
            ax.hist(data[epoch], bins=np.linspace(lo, hi, bins))
            ax.set_yscale("log")
            ax.set_title(f"epoch {epoch}")
            ax.set_xlabel(what[:-1])
        axes[0][0].set_ylabel("count")
        fig.suptitle(f"{title}: {what}")
        fig.tight_layout()
        target = Path(f"{path}_{what}.png")
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, dpi=80)
        plt.close(fig)
        out.append(target)
    return out
