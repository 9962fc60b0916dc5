"""The ``mbbn`` family of ``hwgen demo`` (:mod:`hwgen.demo`): a multi-branch binary MLP of
``bits``-bit activations and weights (seed 003), trained as a quantized network (Algorithm 2,
:class:`hwgen.sw.families.mbbn.layers.QuantMLP`) whose layers the hardware computes as
``bits * bits`` xnor-popcount branches combined by shifts (eq. 8).
"""

from __future__ import annotations

from ..train import predict, train
from .layers import QuantMLP

__all__ = ["DESCRIPTION", "DEFAULT_BITS", "run"]

#: The family in the demo's help.
DESCRIPTION = "a multi-branch binary MLP of bits-bit activations and weights (seed 003)"
#: Activation and weight bits when none are given.
DEFAULT_BITS = 2


def run(split, *, hidden, bits, epochs, seed, log):
    """Build and train the network on ``split`` (ValueError unless ``bits`` lies in 1..8).

    Returns
    -------
    tuple
        The model to export, its PyTorch predictions on ``split.x_test`` (int64) and the
        network's name.
    """
    if not 1 <= bits <= 8:
        raise ValueError(f"--bits must lie in 1..8, not {bits}")
    hidden = tuple(hidden)
    net = QuantMLP(split.x_train.shape[1], hidden, split.n_classes,
                   bits=[(bits, bits)] * (len(hidden) + 1), in_max=float(split.x_train.max()))
    train(net, split.x_train, split.y_train, epochs=epochs, seed=seed)
    return net, predict(net, split.x_test), f"{bits}-bit multi-branch MLP"
