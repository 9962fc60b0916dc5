"""``dense_shift``: power-of-two weights of seed 004 (eq. 21-22) on integer-valued inputs,
shift and add only (conventions in :mod:`hwgen.sw.core.ir`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layer import MatrixLayer, register_kind
from .types import TensorType

__all__ = ["DenseShift", "is_pow2_weight"]


def is_pow2_weight(w: np.ndarray) -> np.ndarray:
    """Elementwise: is each integer 0 or +-2^e?"""
    a = np.abs(np.asarray(w, dtype=np.int64))
    return (a & (a - 1)) == 0


@register_kind
@dataclass
class DenseShift(MatrixLayer):
    """Shift-accumulate dense layer (seed 004): power-of-two weights on integer-valued inputs.

    Every weight is 0 or ``+-2^e`` (the scaled levels of eq. 21-22, ternary when all ``e`` are
    0), and the accumulator is the exact integer sum of the products with the input *values*
    (``TensorType.values``: pow2 levels, bipolar or odd states, or plain integers)::

        acc_j = sum_i w_ji * value(x_i)

    Each product is the input shifted by ``e`` and added or subtracted, or skipped where the
    weight is 0; two powers of two multiply into one shift. An optional
    :class:`MultiThreshold` turns the accumulator into the next layer's codes.

    Members
    -------
    weights : numpy.ndarray
        int64 (n_out, n_in), each 0 or +-2^e with e in 0..15.
    threshold : MultiThreshold or None
        None: emit the accumulator.
    """

    kind = "dense_shift"
    needs_in_type = True

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=np.int64)
        if self.weights.ndim != 2 or not is_pow2_weight(self.weights).all() or \
                np.abs(self.weights).max(initial=0) > 1 << 15:
            raise ValueError(f"{self.name}: shift weights must be a matrix of 0 and +-2^e, "
                             "e in 0..15")
        self.check_threshold()

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        vlo, vhi = in_type.value_range
        w = self.weights
        hi = np.maximum(w * vlo, w * vhi).sum(axis=1)
        lo = np.minimum(w * vlo, w * vhi).sum(axis=1)
        return int(lo.min(initial=0)), int(hi.max(initial=0))

    def accumulate(self, x: np.ndarray, in_type: TensorType | None) -> np.ndarray:
        # exact: |acc| < 2^15 * N * max|value| stays far inside int64 for any layer that fits
        return in_type.values(x) @ self.weights.T

    @classmethod
    def lowers(cls, in_type: TensorType, codes: np.ndarray, integer_weights: bool) -> bool:
        # power-of-two weights, or any weights on power-of-two inputs
        return not integer_weights and (in_type.kind == "pow2" or bool(np.any(codes % 2 == 0)))

    @classmethod
    def from_codes(cls, name: str, codes: np.ndarray, in_type: TensorType) -> "DenseShift":
        if not is_pow2_weight(codes).all():
            raise ValueError(f"weights of odd multi-bit states need odd or bipolar inputs, "
                             f"not {in_type.kind}")
        return cls(name=name, weights=codes)
