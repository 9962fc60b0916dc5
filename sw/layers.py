"""PyTorch layers of binary networks (seed 004, §II-B and Algorithm 1).

Forward binarization is ``sign`` with sign(0) = +1 (eq. 4); the backward pass is the
straight-through estimator with the gradient cancelled where |x| > 1 (eq. 5), which is the
derivative of HardTanh. Real-valued weights are kept for the optimizer and clipped to [-1, 1]
after every step (:func:`clip_weights`), so their STE gradient never vanishes for good.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["binarize", "ClippedWeights", "BinaryLinear", "BinaryActivation", "BinaryMLP",
           "clip_weights"]


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


class BinaryLinear(ClippedWeights, nn.Linear):
    """Linear layer with weights binarized by :func:`binarize`; no bias (batch norm follows)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False)
        nn.init.uniform_(self.weight, -1.0, 1.0)

    def binary_weight(self) -> torch.Tensor:
        return binarize(self.weight)

    def forward(self, x):
        return nn.functional.linear(x, self.binary_weight())


class BinaryActivation(nn.Module):
    """sign activation with the STE of eq. 5 (HardTanh's gradient)."""

    def forward(self, x):
        return binarize(x)


class BinaryMLP(nn.Module):
    """Binary MLP: integer inputs -> [binary linear, batch norm, sign] x len(hidden) -> binary linear.

    The first layer takes the quantized pixels as integers with binary weights; every later
    layer is xnor-popcount. The logits are the last layer's bipolar dot products times one
    positive learned scale (a softmax temperature; it cannot change the argmax).
    """

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_classes: int, *, in_bits: int):
        super().__init__()
        if in_bits < 1:
            raise ValueError(f"in_bits must be positive, not {in_bits!r}")
        self.n_in, self.hidden, self.n_classes, self.in_bits = n_in, tuple(hidden), n_classes, in_bits
        blocks, width = [], n_in
        for h in self.hidden:
            blocks.append(nn.ModuleDict({"linear": BinaryLinear(width, h),
                                         "bn": nn.BatchNorm1d(h), "act": BinaryActivation()}))
            width = h
        self.blocks = nn.ModuleList(blocks)
        self.head = BinaryLinear(width, n_classes)
        self.log_scale = nn.Parameter(torch.tensor(-2.0))

    def forward(self, x):
        for block in self.blocks:
            x = block["act"](block["bn"](block["linear"](x)))
        return self.head(x) * self.log_scale.exp()


@torch.no_grad()
def clip_weights(model: nn.Module) -> None:
    """Clip the real weights of every :class:`ClippedWeights` module to [-1, 1] (Algorithm 1
    of seed 004): outside it the STE gradient (eq. 5) is zero and the weight would stop learning."""
    for module in model.modules():
        if isinstance(module, ClippedWeights):
            module.weight.clamp_(-1.0, 1.0)
