"""The golden model: executes the layer IR on NumPy integers, vectorized over a batch.

This *is* the reference semantics of hwgen (conventions in :mod:`hwgen.sw.ir`). Every other
implementation, PyTorch in inference mode, the Amaranth simulation, the RTL, must equal it.
Binary layers run as packed bitwise xnor + ``numpy.bitwise_count``, not as float matmuls.
"""

from __future__ import annotations

import numpy as np

from .core.bits import branch_sum, digit_planes, disagreements, pack_bits, popcount_xnor
from .ir import (ArgMax, DenseBinary, DenseIntBinW, DenseMAC, DenseMBBN, DenseShift, Layer,
                 Model, MultiThresholdLayer, QAMSlicer, SAMLayer, SAMTerm, TensorType)

__all__ = ["run", "run_layers", "GOLDEN", "pack_bits", "popcount_xnor", "disagreements",
           "digit_planes", "branch_sum", "sam_term"]

#: Most sums ``x_i + w_ji`` :func:`sam_term` holds at once (64 MiB of int64).
SAM_CHUNK = 1 << 23


def _dense_int_binw(layer: DenseIntBinW, x: np.ndarray, in_type: TensorType) -> np.ndarray:
    w = 2 * layer.weights.astype(np.int64) - 1
    return x.astype(np.int64) @ w.T


def _dense_binary(layer: DenseBinary, x: np.ndarray, in_type: TensorType) -> np.ndarray:
    return popcount_xnor(x, layer.weights)


def _dense_mbbn(layer: DenseMBBN, x: np.ndarray, in_type: TensorType) -> np.ndarray:
    return branch_sum(digit_planes(x, layer.m_bits), digit_planes(layer.weights, layer.k_bits),
                      layer.n_in)


def _dense_shift(layer: DenseShift, x: np.ndarray, in_type: TensorType) -> np.ndarray:
    # exact: |acc| < 2^15 * N * max|value| stays far inside int64 for any layer that fits
    return in_type.values(x) @ layer.weights.T


def sam_term(term: SAMTerm, x: np.ndarray) -> np.ndarray:
    """(B, n_out) int64 values of one SAM term: per row, the max (min) of ``x_i + w_ji`` over its
    kept entries only, or its fill where it keeps none.

    Only kept entries are summed: ``np.maximum.reduceat`` over each row's run of entries, the
    batch taken in chunks of at most :data:`SAM_CHUNK` sums.
    """
    rows, cols = np.nonzero(term.keep)                  # row-major: each row's run in order
    out = np.broadcast_to(term.fill, (len(x), len(term.fill))).copy()
    if len(cols) == 0:
        return out
    counts = term.keep.sum(axis=1)
    live = np.flatnonzero(counts)
    starts = (np.cumsum(counts) - counts)[live]
    w = term.weights[rows, cols]
    ufunc = np.maximum if term.reduce == "max" else np.minimum
    chunk = max(1, SAM_CHUNK // len(cols))
    for b in range(0, len(x), chunk):
        sums = x[b:b + chunk, cols] + w
        out[b:b + chunk, live] = ufunc.reduceat(sums, starts, axis=1)
    return out


def _sam(layer: SAMLayer, x: np.ndarray, in_type: TensorType) -> np.ndarray:
    return sum(t.sign * sam_term(t, x) for t in layer.terms)


def _dense_mac(layer: DenseMAC, x: np.ndarray, in_type: TensorType) -> np.ndarray:
    return x @ layer.weights.T + layer.bias


def _multithreshold(layer: MultiThresholdLayer, x: np.ndarray, in_type: TensorType) -> np.ndarray:
    return x.astype(np.int64)


def _qam_slicer(layer: QAMSlicer, x: np.ndarray, in_type: TensorType) -> np.ndarray:
    # the count of boundaries at or below each element: ties go to the upper level
    return np.searchsorted(np.asarray(layer.boundaries), x, side="right").astype(np.int64)


def _argmax(layer: ArgMax, x: np.ndarray, in_type: TensorType) -> np.ndarray:
    return np.argmax(x, axis=1).astype(np.int64)[:, None]


GOLDEN = {
    DenseIntBinW.kind: _dense_int_binw,
    DenseBinary.kind: _dense_binary,
    DenseMBBN.kind: _dense_mbbn,
    DenseShift.kind: _dense_shift,
    SAMLayer.kind: _sam,
    DenseMAC.kind: _dense_mac,
    MultiThresholdLayer.kind: _multithreshold,
    QAMSlicer.kind: _qam_slicer,
    ArgMax.kind: _argmax,
}


def run_layer(layer: Layer, x: np.ndarray, in_type: TensorType | None = None) -> np.ndarray:
    """One layer's output codes for a batch of input codes ``x`` of ``in_type`` (needed by
    the kinds that sum input values, ``dense_shift``; the others read codes)."""
    if in_type is None and layer.kind == DenseShift.kind:
        raise ValueError(f"{layer.name}: a dense_shift layer needs its input type")
    acc = GOLDEN[layer.kind](layer, np.asarray(x, dtype=np.int64), in_type)
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
