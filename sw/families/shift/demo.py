"""The ``shift`` family of ``hwgen demo`` (:mod:`hwgen.demo`): a MINW-Net MLP of ``bits``-bit
power-of-two activations and weights (seed 004), trained with AQE, alpha rising from 1/2 to 1
over the first :data:`ALPHA_RAMP` of the optimizer steps
(:class:`~hwgen.sw.families.shift.aqe.AlphaSchedule`). Its layers are shift-accumulate
(``dense_shift``) layers, add-subtract-skip at 2 bits, xnor at 1.
"""

from __future__ import annotations

from ..train import predict, train
from .aqe import AQE, FLOAT_BITS, MINWMLP, AlphaSchedule, set_alpha

__all__ = ["DESCRIPTION", "DEFAULT_BITS", "run"]

#: The family in the demo's help.
DESCRIPTION = "a power-of-two shift MLP trained with AQE (seed 004)"
#: Activation and weight bits when none are given.
DEFAULT_BITS = 2
#: The share of the optimizer steps over which AQE's alpha rises to 1.
ALPHA_RAMP = 0.8
#: Training batch size (that of :func:`hwgen.sw.families.train.train`), to count the steps.
BATCH_SIZE = 64


def run(split, *, hidden, bits, epochs, seed, log):
    """Build and train the network on ``split`` (ValueError unless ``bits`` lies in
    1..FLOAT_BITS - 1).

    Returns
    -------
    tuple
        The model to export, its PyTorch predictions on ``split.x_test`` (int64) and the
        network's name.
    """
    if not 1 <= bits < FLOAT_BITS:
        raise ValueError(f"--bits must lie in 1..{FLOAT_BITS - 1}, not {bits}")
    net = MINWMLP(split.x_train.shape[1], tuple(hidden), split.n_classes,
                  in_max=int(split.x_train.max()), act_bits=bits, weight_bits=bits,
                  estimator=AQE(0.5))
    steps = epochs * -(-len(split.x_train) // BATCH_SIZE)
    schedule = AlphaSchedule(max(1, int(ALPHA_RAMP * steps)))
    train(net, split.x_train, split.y_train, epochs=epochs, batch_size=BATCH_SIZE, seed=seed,
          on_step=lambda t: set_alpha(net, schedule(t)))
    return net, predict(net, split.x_test), f"{bits}-bit power-of-two MINW-Net MLP (AQE)"
