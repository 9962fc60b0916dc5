"""``hwgen demo``: the embedded default, from training to a synthesized, verified design.

Trains a network on scikit-learn's digits, exports ``model.onnx``, checks PyTorch inference
against the golden model on the whole test split, then runs :func:`hwgen.build.build` with the
test split added to the random verification vectors.

The families are the sub-packages of :mod:`hwgen.sw.families` that hold a ``demo`` module
(:data:`~hwgen.sw.families.DEMO_FAMILIES`): ``binary`` (the default, a binary MLP of
xnor-popcount layers), ``mbbn`` (a multi-branch binary MLP, seed 003), ``shift`` (a
power-of-two MINW-Net MLP trained with AQE, seed 004) and ``sam`` (a pruned Sum-and-Max
network, seed 002). A demo module has

* ``DESCRIPTION``: the family in a phrase;
* ``DEFAULT_BITS``: ``bits`` when none is given;
* ``run(split, *, hidden, bits, epochs, seed, log)``: builds the network (ValueError for bad
  ``bits``), trains it on ``split`` and converts it where the family needs it, and returns the
  model to export, its PyTorch predictions on ``split.x_test`` and the network's name.

Its module docs say what the family trains and how.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hwgen.build import BuildError, BuildResult, build
from hwgen.sw.compiler import compile_onnx
from hwgen.sw.core import golden
from hwgen.sw.families import DEMO_FAMILIES
from hwgen.sw.families.data import digits
from hwgen.sw.families.export import export_onnx

__all__ = ["agreement", "demo", "DemoResult", "family_module", "pytorch_disagreements",
           "train_family"]


@dataclass
class DemoResult:
    accuracy: float
    n_test: int
    build: BuildResult
    network: str = "binary MLP"
    n_float_differ: int = 0        # test images where PyTorch's float class differs from golden

    def summary(self) -> str:
        return (f"digits test accuracy ({self.network}, PyTorch inference): {self.accuracy:.4f} "
                f"on {self.n_test} images\n{agreement(self.n_test, self.n_float_differ)}\n"
                + self.build.summary())


#: The largest share of test images on which PyTorch's float inference may disagree with the
#: exact golden model: a float rounding at an exact tie is rare; more means a wrong export.
MAX_FLOAT_DIFFER = 0.01


def agreement(n: int, n_differ: int) -> str:
    """The line that says how far PyTorch's float inference agrees with the golden model."""
    if not n_differ:
        return f"PyTorch == golden(IR) on all {n} test images"
    return (f"PyTorch == golden(IR) on {n - n_differ} of {n} test images; on {n_differ} "
            "PyTorch's float rounding decides an exact tie differently (golden computes "
            "exactly, and the RTL equals golden)")


def pytorch_disagreements(gold: np.ndarray, torch_pred: np.ndarray) -> int:
    """How many of the golden model's classes differ from PyTorch's; BuildError when more than
    :data:`MAX_FLOAT_DIFFER` of them do, which no float tie explains."""
    n_differ = int((gold != torch_pred).sum())
    if n_differ > MAX_FLOAT_DIFFER * len(gold):
        raise BuildError(f"golden model disagrees with PyTorch on {n_differ} of {len(gold)} "
                         "test images: more than float ties explain; the export is wrong")
    return n_differ


def family_module(family: str):
    """The demo module of ``family`` (``hwgen.sw.families.<family>.demo``); ValueError for a
    family not in :data:`~hwgen.sw.families.DEMO_FAMILIES`."""
    if family not in DEMO_FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {', '.join(DEMO_FAMILIES)}")
    return importlib.import_module(f"hwgen.sw.families.{family}.demo")


def train_family(family: str, *, bits: int | None = None, epochs: int = 60, hidden=(128, 128),
                 seed: int = 0, log=print):
    """``(net, torch_pred, network, split)``: the family's network trained on digits, its
    PyTorch predictions on the test split, its name and the split. Everything random (the
    split, the initial weights, the batches) follows ``seed``, so a second call with the same
    arguments returns the same network to the bit."""
    recipe = family_module(family)
    if bits is None:
        bits = recipe.DEFAULT_BITS
    split = digits(seed=seed)
    torch.manual_seed(seed)              # the network's initial weights, before it is built
    net, torch_pred, network = recipe.run(split, hidden=tuple(hidden), bits=bits, epochs=epochs,
                                          seed=seed, log=log)
    return net, torch_pred, network, split


def demo(*, out, target: str = "ice40", family: str = "binary", bits: int | None = None,
         epochs: int = 60, hidden=(128, 128), seed: int = 0, synth: bool = True,
         log=print) -> DemoResult:
    """Train, export, check and build one family (module docs); ``bits`` defaults to the
    family's ``DEFAULT_BITS`` (8 for ``sam``, 2 otherwise)."""
    out = Path(out)
    net, torch_pred, network, split = train_family(family, bits=bits, epochs=epochs,
                                                   hidden=hidden, seed=seed, log=log)
    acc = float((torch_pred == split.y_test).mean())
    log(f"test accuracy {acc:.4f}")

    out.mkdir(parents=True, exist_ok=True)
    export_onnx(net, out / "model.onnx")
    np.save(out / "digits_test.npy", split.x_test)
    gold = golden.run(compile_onnx(out / "model.onnx"), split.x_test)[:, 0]
    n_differ = pytorch_disagreements(gold, torch_pred)
    log(agreement(len(gold), n_differ))
    result = build(out / "model.onnx", target=target, out=out / "build",
                   vectors=out / "digits_test.npy", seed=seed, synth=synth, log=log)
    return DemoResult(acc, len(split.x_test), result, network, n_differ)
