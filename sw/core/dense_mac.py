"""``dense_mac``: the integer multiply-accumulate layer, ``acc = W x + b`` with 16-bit signed
weights (conventions in :mod:`hwgen.sw.core.ir`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layer import MatrixLayer, check_integer_input, register_kind
from .types import TensorType, signed_bits

__all__ = ["DenseMAC"]


@register_kind
@dataclass
class DenseMAC(MatrixLayer):
    """Integer multiply-accumulate dense layer: ``acc_j = sum_i w_ji x_i + b_j``.

    The general dense layer of quantized networks (e.g. the 8-bit output layer after a SAM
    layer); hardware multiplies in DSP blocks or in LUTs. An optional :class:`MultiThreshold`
    turns the accumulator (bias included) into the next layer's codes.

    Members
    -------
    weights : numpy.ndarray
        int64 (n_out, n_in), each in -2^15 .. 2^15 - 1.
    bias : numpy.ndarray
        int64 (n_out,).
    threshold : MultiThreshold or None
        None: emit the accumulator.
    """

    kind = "dense_mac"
    integer_weights = True
    has_bias = True
    bias: np.ndarray = None

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=np.int64)
        if self.weights.ndim != 2 or self.weights.min(initial=0) < -(1 << 15) or \
                self.weights.max(initial=0) >= 1 << 15:
            raise ValueError(f"{self.name}: MAC weights must be a matrix of 16-bit signed "
                             "integers")
        self.bias = np.zeros(self.n_out, np.int64) if self.bias is None else \
            np.asarray(self.bias, dtype=np.int64)
        if self.bias.shape != (self.n_out,):
            raise ValueError(f"{self.name}: {self.bias.shape} bias for {self.n_out} outputs")
        self.check_threshold()

    @property
    def weight_type(self) -> TensorType:
        """The narrowest signed type holding every weight."""
        return TensorType("signed", signed_bits(min(0, self.weights.min(initial=0)),
                                                max(0, self.weights.max(initial=0))))

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        check_integer_input(self, in_type)
        w = self.weights
        hi = np.maximum(w * in_type.lo, w * in_type.hi).sum(axis=1) + self.bias
        lo = np.minimum(w * in_type.lo, w * in_type.hi).sum(axis=1) + self.bias
        return int(lo.min(initial=0)), int(hi.max(initial=0))

    def to_json(self) -> dict:
        return {**super().to_json(), "bias": self.bias.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "DenseMAC":
        layer = super().from_json(d)
        layer.bias = np.array(d["bias"], dtype=np.int64)
        layer.__post_init__()
        return layer

    def accumulate(self, x: np.ndarray, in_type: TensorType | None) -> np.ndarray:
        return x @ self.weights.T + self.bias

    @classmethod
    def lowers(cls, in_type: TensorType, codes: np.ndarray, integer_weights: bool) -> bool:
        return integer_weights

    @classmethod
    def from_codes(cls, name: str, codes: np.ndarray, in_type: TensorType) -> "DenseMAC":
        return cls(name=name, weights=codes)
