"""The ``binary`` family of ``hwgen demo`` (:mod:`hwgen.demo`): a binary MLP (seed 004's
sign nets) whose hidden layers are xnor-popcounts, trained as it is and exported as it is.

A demo module holds :data:`DESCRIPTION`, :data:`DEFAULT_BITS` and :func:`run`.
"""

from __future__ import annotations

from ..train import predict, train
from .layers import BinaryMLP

__all__ = ["DESCRIPTION", "DEFAULT_BITS", "run"]

#: The family in the demo's help.
DESCRIPTION = "a binary MLP (xnor-popcount layers, seed 004's sign nets)"
#: ``bits`` when none is given (unused: every weight and activation is one bit).
DEFAULT_BITS = 2


def run(split, *, hidden, bits, epochs, seed, log):
    """Build and train the network on ``split``.

    Returns
    -------
    tuple
        The model to export, its PyTorch predictions on ``split.x_test`` (int64) and the
        network's name.
    """
    net = BinaryMLP(split.x_train.shape[1], tuple(hidden), split.n_classes, in_bits=split.in_bits)
    train(net, split.x_train, split.y_train, epochs=epochs, seed=seed)
    return net, predict(net, split.x_test), "binary MLP"
