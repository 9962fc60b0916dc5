"""PyTorch layers of binary networks (seed 004, §II-B and Algorithm 1).

Weights and activations are binarized by :func:`hwgen.sw.families.ste.binarize`: ``sign`` with
sign(0) = +1 (eq. 4) forward, the straight-through estimator with the gradient cancelled where
|x| > 1 (eq. 5) backward. The real weights are kept for the optimizer and clipped to [-1, 1]
after every step (:func:`hwgen.sw.families.ste.clip_weights`), so their STE gradient never
vanishes for good.
"""

from __future__ import annotations

import torch
from torch import nn

from ..export import BN_EPS
from ..ste import ClippedWeights, binarize

__all__ = ["BinaryLinear", "BinaryActivation", "BinaryMLP"]


class BinaryLinear(ClippedWeights, nn.Linear):
    """Linear layer with weights binarized by :func:`hwgen.sw.families.ste.binarize`; no bias
    (batch norm follows)."""

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
                                         "bn": nn.BatchNorm1d(h, eps=BN_EPS), "act": BinaryActivation()}))
            width = h
        self.blocks = nn.ModuleList(blocks)
        self.head = BinaryLinear(width, n_classes)
        self.log_scale = nn.Parameter(torch.tensor(-2.0))

    def forward(self, x):
        for block in self.blocks:
            x = block["act"](block["bn"](block["linear"](x)))
        return self.head(x) * self.log_scale.exp()

