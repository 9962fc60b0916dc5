"""``dense_int_binw``: binary weights on integer inputs, add and subtract only (conventions in
:mod:`hwgen.sw.core.ir`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dense_shift import DenseShift
from .layer import BinaryWeightLayer, register_kind, state_bits
from .types import TensorType

__all__ = ["DenseIntBinW"]


@register_kind
@dataclass
class DenseIntBinW(BinaryWeightLayer):
    """Binary-weight dense layer on integer inputs: ``acc_j = sum_i (2 w_ji - 1) * x_i``.

    The first layer of a binary network, fed with quantized pixels ("XNOR ADDER"): every
    product is +x or -x, so the hardware only adds and subtracts.
    """

    kind = "dense_int_binw"

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        if not in_type.is_integer:
            raise ValueError(f"{self.name}: dense_int_binw takes integer inputs, "
                             f"not {in_type.kind}")
        plus = self.weights.astype(np.int64).sum(axis=1)
        minus = self.n_in - plus
        hi = plus * in_type.hi - minus * in_type.lo
        lo = plus * in_type.lo - minus * in_type.hi
        return int(lo.min()), int(hi.max())

    def accumulate(self, x: np.ndarray, in_type: TensorType | None) -> np.ndarray:
        w = 2 * self.weights.astype(np.int64) - 1
        return x.astype(np.int64) @ w.T

    @classmethod
    def lowers(cls, in_type: TensorType, codes: np.ndarray, integer_weights: bool) -> bool:
        # odd states on integer inputs (more than one digit is refused by from_codes)
        return not integer_weights and in_type.is_integer and not np.any(codes % 2 == 0)

    @classmethod
    def from_codes(cls, name: str, codes: np.ndarray, in_type: TensorType) -> "DenseIntBinW":
        k_bits = state_bits(codes)
        if k_bits != 1:
            raise ValueError(f"{k_bits}-bit weights need bipolar or odd inputs, not "
                             f"{in_type.kind} (quantize the input first)")
        return cls(name=name, weights=cls.binary_codes(codes))

    def widened(self) -> DenseShift:
        # with multi-bit outputs, an add-subtract layer is the shift layer of exponent 0: the
        # same accumulator (the sum of +-x)
        return DenseShift(name=self.name, weights=2 * self.weights.astype(np.int64) - 1)
