"""The binary front end: eq. 4-5 of seed 004 and weight clipping."""

import torch

from hwgen.sw.families.binary.layers import BinaryLinear, BinaryMLP
from hwgen.sw.families.ste import binarize, clip_weights


def test_sign_forward_maps_zero_to_plus_one():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.25, 3.0])
    assert binarize(x).tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]


def test_ste_gradient_is_cancelled_outside_unit_interval():
    # eq. 5: g_a = g_h * 1{|a| <= 1}, the boundary |a| = 1 included
    x = torch.tensor([-1.5, -1.0, -0.3, 0.0, 0.9, 1.0, 1.01], requires_grad=True)
    g = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    binarize(x).backward(g)
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]


def test_binary_linear_uses_sign_of_weights():
    layer = BinaryLinear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.2, -0.7, 0.0], [-0.1, 0.4, -0.9]]))
    x = torch.tensor([[1.0, 2.0, 4.0]])
    # row 0: +1 -2 +4 ; row 1: -1 +2 -4
    assert layer(x).tolist() == [[3.0, -3.0]]


def test_clip_weights_keeps_real_weights_in_unit_interval():
    model = BinaryMLP(4, (3,), 2, in_bits=4)
    with torch.no_grad():
        model.blocks[0]["linear"].weight.mul_(10)
    clip_weights(model)
    w = model.blocks[0]["linear"].weight
    assert w.max() <= 1.0 and w.min() >= -1.0 and (w.abs() == 1.0).any()
