"""``hwgen demo``: the embedded default, from training to a synthesized, verified design.

Trains a network on scikit-learn's digits, exports ``model.onnx``, checks PyTorch inference
against the golden model on the whole test split, then runs :func:`hwgen.sw.build.build` with the
test split added to the random verification vectors. The families:

* ``binary`` (the default): a binary MLP (xnor-popcount layers, seed 004's sign nets);
* ``mbbn``: a multi-branch binary MLP of ``bits``-bit activations and weights (seed 003),
  trained as a quantized network (Algorithm 2) whose layers the hardware computes as
  ``bits * bits`` xnor-popcount branches combined by shifts (eq. 8);
* ``shift``: a MINW-Net MLP of ``bits``-bit power-of-two activations and weights (seed 004),
  trained with AQE (alpha from 1/2 to 1 over the first 80 % of the steps); its layers are
  shift-accumulate (``dense_shift``) layers, add-subtract-skip at 2 bits, xnor at 1;
* ``sam``: a Sum-and-Max hidden layer (seed 002, eq. 5) of ``hidden[0]`` outputs on the pixels,
  then a dense layer to the classes. After training, every entry selected by fewer than
  :data:`SAM_PRUNE_RATE` of the training images is removed (§III-D), and the network is
  quantized to integers (:mod:`hwgen.sw.sam_lower`: pixels and SAM weights on a grid of step 1,
  ``bits``-bit output weights, ``bits`` at least 2); its PyTorch inference is that integer
  network. The hardware is a ``sam`` layer of adders and comparators, a ``dense_mac`` layer
  and the argmax.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import golden
from .build import BuildError, BuildResult, build
from .compiler import compile_onnx
from .data import digits
from .export import export_onnx
from .layers import BinaryMLP
from .train import predict, train

__all__ = ["demo", "DemoResult", "FAMILIES"]

FAMILIES = ("binary", "mbbn", "shift", "sam")

#: ``sam`` family: activation rate below which an entry is pruned (§III-D of seed 002).
SAM_PRUNE_RATE = 0.03
#: ``sam`` family: Adam learning rate and the spread of the initial SAM weights (pixels 0..16).
SAM_LR, SAM_INIT_STD = 0.03, 4.0


@dataclass
class DemoResult:
    accuracy: float
    n_test: int
    build: BuildResult
    network: str = "binary MLP"

    def summary(self) -> str:
        return (f"digits test accuracy ({self.network}, PyTorch inference): {self.accuracy:.4f} "
                f"on {self.n_test} images\n"
                f"PyTorch == golden(IR) on all {self.n_test} test images\n" + self.build.summary())


def _network(family: str, split, hidden, bits: int):
    n_in = split.x_train.shape[1]
    if family == "binary":
        return BinaryMLP(n_in, hidden, split.n_classes, in_bits=split.in_bits), "binary MLP"
    if family == "mbbn":
        from .mbbn import QuantMLP

        if not 1 <= bits <= 8:
            raise ValueError(f"--bits must lie in 1..8, not {bits}")
        net = QuantMLP(n_in, hidden, split.n_classes, bits=[(bits, bits)] * (len(hidden) + 1),
                       in_max=float(split.x_train.max()))
        return net, f"{bits}-bit multi-branch MLP"
    if family == "shift":
        from .aqe import AQE, FLOAT_BITS, MINWMLP

        if not 1 <= bits < FLOAT_BITS:
            raise ValueError(f"--bits must lie in 1..{FLOAT_BITS - 1}, not {bits}")
        net = MINWMLP(n_in, hidden, split.n_classes, in_max=int(split.x_train.max()),
                      act_bits=bits, weight_bits=bits, estimator=AQE(0.5))
        return net, f"{bits}-bit power-of-two MINW-Net MLP (AQE)"
    if family == "sam":
        from torch import nn

        from .sam import SAMLinear

        if bits < 2:
            raise ValueError(f"--bits (the output layer's weight bits) must be at least 2, "
                             f"not {bits}")
        net = nn.Sequential(SAMLinear(n_in, hidden[0], init_std=SAM_INIT_STD),
                            nn.Linear(hidden[0], split.n_classes))
        return net, f"SAM network ({hidden[0]} Sum-and-Max outputs, pruned, {bits}-bit output)"
    raise ValueError(f"unknown family {family!r}; choose one of {', '.join(FAMILIES)}")


def _sam_integer(net, split, bits: int, log):
    """Prune the trained SAM network by activation rate and quantize it to integers."""
    from .sam import count_activations, prune
    from .sam_lower import InputGrid, integer_network

    x_train = torch.as_tensor(split.x_train, dtype=torch.float32)
    pruned = prune(net[0], count_activations(net[0], x_train), SAM_PRUNE_RATE)
    # step 1: the pixels are their own codes, and the weights round to integers
    grid = InputGrid(bits=max(2, int(split.x_train.max()).bit_length() + 1),
                     clip=float(1 << max(1, int(split.x_train.max()).bit_length())))
    log(f"pruned the SAM layer to {pruned.n_params} of "
        f"{sum(w.numel() for w in net[0].term_weights())} entries")
    return integer_network(pruned, net[-1], grid=grid, weight_bits=bits), grid


def demo(*, out, target: str = "ice40", family: str = "binary", bits: int | None = None,
         epochs: int = 60, hidden=(128, 128), seed: int = 0, synth: bool = True,
         log=print) -> DemoResult:
    """Train, export, check and build one family (module docs); ``bits`` defaults to 8 for
    ``sam`` and 2 otherwise."""
    out = Path(out)
    if bits is None:
        bits = 8 if family == "sam" else 2
    split = digits(seed=seed)
    net, network = _network(family, split, tuple(hidden), bits)
    out.mkdir(parents=True, exist_ok=True)
    on_step = None
    if family == "shift":
        from .aqe import AlphaSchedule, set_alpha

        steps = epochs * -(-len(split.x_train) // 64)          # train()'s batch size
        schedule = AlphaSchedule(max(1, int(0.8 * steps)))
        on_step = lambda t: set_alpha(net, schedule(t))      # noqa: E731
    train(net, split.x_train, split.y_train, epochs=epochs, seed=seed, on_step=on_step,
          **({"lr": SAM_LR} if family == "sam" else {}))
    if family == "sam":
        net, grid = _sam_integer(net, split, bits, log)
        torch_pred = net(grid.codes(torch.as_tensor(split.x_test))).argmax(dim=1).numpy()
    else:
        torch_pred = predict(net, split.x_test)
    acc = float((torch_pred == split.y_test).mean())
    log(f"test accuracy {acc:.4f}")

    export_onnx(net, out / "model.onnx")
    np.save(out / "digits_test.npy", split.x_test)
    gold = golden.run(compile_onnx(out / "model.onnx"), split.x_test)[:, 0]
    if not np.array_equal(gold, torch_pred):
        raise BuildError(f"golden model disagrees with PyTorch on "
                         f"{int((gold != torch_pred).sum())} of {len(gold)} test images")
    result = build(out / "model.onnx", target=target, out=out / "build",
                   vectors=out / "digits_test.npy", seed=seed, synth=synth, log=log)
    return DemoResult(acc, len(split.x_test), result, network)
