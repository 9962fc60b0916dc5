"""Shared fixtures: one trained demo network per test session (training takes seconds)."""

import numpy as np
import pytest

from hwgen.sw.families.binary.layers import BinaryMLP
from hwgen.sw.families.data import digits
from hwgen.sw.families.export import export_onnx
from hwgen.sw.families.train import train


@pytest.fixture(scope="session")
def digits_split():
    return digits(seed=0)


@pytest.fixture(scope="session")
def trained_mlp(digits_split):
    """The demo's network and settings: binary MLP 64 -> 128 -> 128 -> 10 on digits."""
    s = digits_split
    net = BinaryMLP(s.x_train.shape[1], (128, 128), s.n_classes, in_bits=s.in_bits)
    return train(net, s.x_train, s.y_train, epochs=60, seed=0, progress=False)


@pytest.fixture(scope="session")
def trained_onnx(trained_mlp, tmp_path_factory, digits_split):
    d = tmp_path_factory.mktemp("model")
    export_onnx(trained_mlp, d / "model.onnx")
    np.save(d / "digits_test.npy", digits_split.x_test)
    return d / "model.onnx"


@pytest.fixture(scope="session")
def small_onnx(tmp_path_factory, digits_split):
    """A small binary MLP (64 -> 32 -> 10) for end-to-end CLI runs: quick to build and simulate."""
    s = digits_split
    net = train(BinaryMLP(s.x_train.shape[1], (32,), s.n_classes, in_bits=s.in_bits),
                s.x_train, s.y_train, epochs=20, seed=0, progress=False)
    d = tmp_path_factory.mktemp("small")
    export_onnx(net, d / "model.onnx")
    np.save(d / "digits_test.npy", s.x_test)
    return d / "model.onnx"
