"""``dense_mbbn``: the multi-branch binary layer of seed 003, M-bit odd inputs and K-bit odd
weights summed by eq. 8 (conventions in :mod:`hwgen.sw.core.ir`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bits import branch_sum, digit_planes
from .layer import MatrixLayer, register_kind, state_bits
from .types import TensorType, odd_type

__all__ = ["DenseMBBN"]


@register_kind
@dataclass
class DenseMBBN(MatrixLayer):
    """Multi-branch binary dense layer (seed 003): M-bit odd inputs, K-bit odd weights.

    With input digits ``c_m`` and weight digits ``d_k`` (bit m of the codes, module docs), the
    accumulator is the weighted sum of the M * K branch popcounts (eq. 8)::

        acc_j = sum_{m,k} 2^(m+k) popcount(xnor(c_m, d_jk))       in 0 .. N (2^M - 1)(2^K - 1)

    and the dot product of the states is ``sum_i q_i w_ji = 2 acc_j - N (2^M - 1)(2^K - 1)``,
    as the popcount P of ``dense_binary`` gives ``2 P - N`` (that kind is this one at M = K = 1).
    An optional :class:`MultiThreshold` turns the accumulator into the next layer's codes.

    Members
    -------
    weights : numpy.ndarray
        uint8 (n_out, n_in) offset codes of the K-bit weight states.
    m_bits : int
        M, the digits of an input (the input type is ``odd_type(m_bits)``).
    k_bits : int
        K, the digits of a weight.
    threshold : MultiThreshold or None
        None: emit the accumulator.
    """

    kind = "dense_mbbn"
    m_bits: int = 1
    k_bits: int = 1
    json_keys = ("m_bits", "k_bits")

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=np.uint8)
        for what, bits in (("input digits M", self.m_bits), ("weight digits K", self.k_bits)):
            if not isinstance(bits, int) or not 1 <= bits <= 8:
                raise ValueError(f"{self.name}: {what} must lie in 1..8, not {bits!r}")
        if self.weights.ndim != 2 or self.weights.max(initial=0) >= 1 << self.k_bits:
            raise ValueError(f"{self.name}: weights must be a matrix of {self.k_bits}-bit codes")
        self.check_threshold()

    def weight_values(self) -> np.ndarray:
        """(n_out, n_in) int64 weight states ``2 u - (2^K - 1)``."""
        return odd_type(self.k_bits).values(self.weights)

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        if in_type != odd_type(self.m_bits):
            raise ValueError(f"{self.name}: dense_mbbn with M = {self.m_bits} takes "
                             f"{odd_type(self.m_bits).to_json()} inputs, not {in_type.to_json()}")
        lm, lk = (1 << self.m_bits) - 1, (1 << self.k_bits) - 1
        # the dot product of row j lies in +-L_M sum|w_j|, both ends reached by x = +-L_M sign(w)
        reach = lm * np.abs(self.weight_values()).sum(axis=1)
        mid = self.n_in * lm * lk
        return int((mid - reach.max()) // 2), int((mid + reach.max()) // 2)

    def accumulate(self, x: np.ndarray, in_type: TensorType | None) -> np.ndarray:
        return branch_sum(digit_planes(x, self.m_bits), digit_planes(self.weights, self.k_bits),
                          self.n_in)

    @classmethod
    def lowers(cls, in_type: TensorType, codes: np.ndarray, integer_weights: bool) -> bool:
        # odd states on odd inputs, but for the 1-bit case of dense_binary
        return not integer_weights and in_type.digits > 0 and not np.any(codes % 2 == 0) and \
            not (in_type.kind == "bipolar" and state_bits(codes) == 1)

    @classmethod
    def from_codes(cls, name: str, codes: np.ndarray, in_type: TensorType) -> "DenseMBBN":
        k_bits = state_bits(codes)
        return cls(name=name, weights=((codes + (1 << k_bits) - 1) // 2).astype(np.uint8),
                   m_bits=in_type.digits, k_bits=k_bits)

    def float_tail(self, alpha: float, scale: np.ndarray, offset: np.ndarray):
        # the state dot product is 2 acc - N (2^M - 1)(2^K - 1)
        lm, lk = (1 << self.m_bits) - 1, (1 << self.k_bits) - 1
        return 2 * alpha * scale, offset - alpha * scale * self.n_in * lm * lk
