"""``dense_binary``: xnor-popcount on bipolar inputs (conventions in :mod:`hwgen.sw.core.ir`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bits import popcount_xnor
from .dense_mbbn import DenseMBBN
from .layer import BinaryWeightLayer, register_kind, state_bits
from .types import TensorType

__all__ = ["DenseBinary"]


@register_kind
@dataclass
class DenseBinary(BinaryWeightLayer):
    """xnor-popcount dense layer on bipolar inputs: ``acc_j = popcount(xnor(x, w_j))`` in 0..N."""

    kind = "dense_binary"

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        if in_type.kind != "bipolar":
            raise ValueError(f"{self.name}: dense_binary takes bipolar inputs, not {in_type.kind}")
        return 0, self.n_in

    def accumulate(self, x: np.ndarray, in_type: TensorType | None) -> np.ndarray:
        return popcount_xnor(x, self.weights)

    @classmethod
    def lowers(cls, in_type: TensorType, codes: np.ndarray, integer_weights: bool) -> bool:
        return not integer_weights and in_type.kind == "bipolar" and \
            not np.any(codes % 2 == 0) and state_bits(codes) == 1

    @classmethod
    def from_codes(cls, name: str, codes: np.ndarray, in_type: TensorType) -> "DenseBinary":
        return cls(name=name, weights=cls.binary_codes(codes))

    def float_tail(self, alpha: float, scale: np.ndarray, offset: np.ndarray):
        # the state dot product is 2 P - N
        return 2 * alpha * scale, offset - alpha * scale * self.n_in

    def widened(self) -> DenseMBBN:
        # with multi-bit outputs, a binary layer is the multi-branch layer of M = K = 1
        return DenseMBBN(name=self.name, weights=self.weights, m_bits=1, k_bits=1)
