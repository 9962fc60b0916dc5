"""The ``sam`` family of ``hwgen demo`` (:mod:`hwgen.demo`): a Sum-and-Max hidden layer
(seed 002, eq. 5) of ``hidden[0]`` outputs on the pixels, then a dense layer to the classes.

After training, every entry selected by fewer than :data:`PRUNE_RATE` of the training images
is removed (§III-D), and the network is quantized to integers
(:func:`hwgen.sw.families.sam.lower.lower`: pixels and SAM weights on a grid of step 1,
``bits``-bit output weights, ``bits`` at least 2); its PyTorch inference is that integer
network. The hardware is a ``sam`` layer of adders and comparators, a ``dense_mac`` layer and
the argmax.
"""

from __future__ import annotations

import torch
from torch import nn

from ..train import train
from .layers import SAMLinear, count_activations, prune
from .lower import InputGrid, lower

__all__ = ["DESCRIPTION", "DEFAULT_BITS", "run"]

#: The family in the demo's help.
DESCRIPTION = "a pruned Sum-and-Max network (seed 002)"
#: The output layer's weight bits when none are given.
DEFAULT_BITS = 8
#: Activation rate below which an entry is pruned (§III-D of seed 002).
PRUNE_RATE = 0.03
#: Adam learning rate and the spread of the initial SAM weights (pixels 0..16).
LR, INIT_STD = 0.03, 4.0


def run(split, *, hidden, bits, epochs, seed, log):
    """Build, train, prune and quantize the network on ``split`` (ValueError for ``bits`` below
    2).

    Returns
    -------
    tuple
        The integer network (:class:`hwgen.sw.families.sam.lower.IntegerSAMNet`), its
        predictions on ``split.x_test``'s codes (int64) and the network's name.
    """
    if bits < 2:
        raise ValueError(f"--bits (the output layer's weight bits) must be at least 2, "
                         f"not {bits}")
    net = nn.Sequential(SAMLinear(split.x_train.shape[1], hidden[0], init_std=INIT_STD),
                        nn.Linear(hidden[0], split.n_classes))
    train(net, split.x_train, split.y_train, epochs=epochs, seed=seed, lr=LR)
    integer, grid = _integer(net, split, bits, log)
    torch_pred = integer(grid.codes(torch.as_tensor(split.x_test))).argmax(dim=1).numpy()
    return (integer, torch_pred,
            f"SAM network ({hidden[0]} Sum-and-Max outputs, pruned, {bits}-bit output)")


def _integer(net, split, bits: int, log):
    """Prune the trained SAM network by activation rate and quantize it to integers."""
    x_train = torch.as_tensor(split.x_train, dtype=torch.float32)
    pruned = prune(net[0], count_activations(net[0], x_train), PRUNE_RATE)
    # step 1: the pixels are their own codes, and the weights round to integers
    grid = InputGrid(bits=max(2, int(split.x_train.max()).bit_length() + 1),
                     clip=float(1 << max(1, int(split.x_train.max()).bit_length())))
    log(f"pruned the SAM layer to {pruned.n_params} of "
        f"{sum(w.numel() for w in net[0].term_weights())} entries")
    return lower(pruned, net[-1], grid=grid, weight_bits=bits), grid
