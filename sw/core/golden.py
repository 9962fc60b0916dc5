"""The golden model: executes the layer IR on NumPy integers, vectorized over a batch.

This *is* the reference semantics of hwgen (conventions in :mod:`hwgen.sw.core.ir`). Every other
implementation, PyTorch in inference mode, the Amaranth simulation, the RTL, must equal it.
Each kind's golden function is its ``accumulate`` (a small pure function of the layer and a
batch of input codes, in its module ``sw/core/<kind>.py``); a threshold, if the layer has one, then
turns the accumulator into the next layer's codes. Binary and multi-branch layers run as packed
bitwise xnor + ``numpy.bitwise_count`` (:mod:`hwgen.sw.core.bits`), not as float matmuls.
"""

from __future__ import annotations

import numpy as np

from .ir import Layer, Model, TensorType

__all__ = ["run", "run_layers", "run_layer"]


def run_layer(layer: Layer, x: np.ndarray, in_type: TensorType | None = None) -> np.ndarray:
    """One layer's output codes for a batch of input codes ``x`` of ``in_type`` (needed by
    the kinds that sum input values, such as ``dense_shift``; the others read codes)."""
    if in_type is None and layer.needs_in_type:
        raise ValueError(f"{layer.name}: a {layer.kind} layer needs its input type")
    acc = layer.accumulate(np.asarray(x, dtype=np.int64), in_type)
    threshold = getattr(layer, "threshold", None)
    return threshold.apply(acc) if threshold is not None else acc


def run_layers(model: Model, x: np.ndarray) -> list[np.ndarray]:
    """Outputs of every layer for a batch ``x`` of shape (B, n_in); each (B, n_out) int64."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != model.n_in:
        raise ValueError(f"input batch must have shape (B, {model.n_in}), not {x.shape}")
    lo, hi = model.in_type.lo, model.in_type.hi
    if x.size and (x.min() < lo or x.max() > hi):
        raise ValueError(f"inputs must lie in [{lo}, {hi}] for type {model.in_type.to_json()}")
    outs = []
    x = x.astype(np.int64)
    for layer, t in zip(model.layers, model.types()):
        x = run_layer(layer, x, t)
        outs.append(x)
    return outs


def run(model: Model, x: np.ndarray) -> np.ndarray:
    """The model's final output for a batch: (B, n_out) int64."""
    return run_layers(model, x)[-1]
