"""The sign with a straight-through gradient and clipped real weights (seed 004, §II-B and
Algorithm 1), shared by every family whose weights are binarized or quantized from real ones.

Forward binarization is ``sign`` with sign(0) = +1 (eq. 4); the backward pass is the
straight-through estimator with the gradient cancelled where |x| > 1 (eq. 5), which is the
derivative of HardTanh. Real-valued weights are kept for the optimizer and clipped to [-1, 1]
after every step (:func:`clip_weights`, which :func:`hwgen.sw.families.train.train` calls), so
their STE gradient never vanishes for good.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["binarize", "ClippedWeights", "clip_weights"]


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        # eq. 4 with the IR's convention sign(0) = +1
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        # eq. 5: g_a = g_h * 1{|a| <= 1}
        return grad * (x.abs() <= 1).to(grad.dtype)


def binarize(x: torch.Tensor) -> torch.Tensor:
    """sign(x) in {-1, +1} forward, straight-through gradient clipped to |x| <= 1 backward."""
    return _SignSTE.apply(x)


class ClippedWeights:
    """Marks a module whose real ``weight`` :func:`clip_weights` keeps in [-1, 1]."""


@torch.no_grad()
def clip_weights(model: nn.Module) -> None:
    """Clip the real weights of every :class:`ClippedWeights` module to [-1, 1] (Algorithm 1
    of seed 004): outside it the STE gradient (eq. 5) is zero and the weight would stop learning."""
    for module in model.modules():
        if isinstance(module, ClippedWeights):
            module.weight.clamp_(-1.0, 1.0)
