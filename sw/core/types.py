"""Element types and thresholds of the integer layer IR (conventions in :mod:`hwgen.sw.core.ir`).

:class:`TensorType` types every vector element (bipolar, odd, pow2, unsigned, signed, with an
exact width); :class:`Threshold` and :class:`MultiThreshold` turn a layer's integer accumulator
into the next layer's codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["IRFormatError", "unsigned_bits", "signed_bits", "TensorType", "odd_type",
           "pow2_type", "Threshold", "MultiThreshold"]


class IRFormatError(ValueError):
    """A serialized IR that cannot be read back."""


def unsigned_bits(hi: int) -> int:
    """Width of an unsigned integer holding 0..hi."""
    return max(1, int(hi).bit_length())


def signed_bits(lo: int, hi: int) -> int:
    """Width of a two's complement integer holding lo..hi."""
    lo, hi = int(lo), int(hi)
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


@dataclass(frozen=True)
class TensorType:
    """Element type of a vector: ``bipolar`` (1 bit, -1/+1), ``odd`` (M-bit odd states),
    ``pow2`` (n-bit power-of-two levels; see the module docs for both), ``unsigned`` or
    ``signed`` of ``bits``."""

    kind: str
    bits: int

    def __post_init__(self):
        if self.kind not in ("bipolar", "odd", "pow2", "unsigned", "signed"):
            raise ValueError(f"tensor kind must be bipolar, odd, pow2, unsigned or signed, "
                             f"not {self.kind!r}")
        if self.bits < 1 or (self.kind == "bipolar" and self.bits != 1) or \
                (self.kind == "odd" and self.bits < 2) or \
                (self.kind == "pow2" and not 2 <= self.bits <= 6):
            raise ValueError(f"bad width {self.bits!r} for a {self.kind} tensor")

    @property
    def digits(self) -> int:
        """Bipolar digits per element (M) of a bipolar or odd type; 0 for other types."""
        return self.bits if self.kind in ("bipolar", "odd") else 0

    @property
    def is_integer(self) -> bool:
        """Whether a stored code is its own value (unsigned and signed types)."""
        return self.kind in ("unsigned", "signed")

    def values(self, codes: np.ndarray) -> np.ndarray:
        """The integer values of stored ``codes``: odd states for bipolar and odd types, the
        scaled power-of-two levels for pow2, the codes themselves for integer types."""
        codes = np.asarray(codes, dtype=np.int64)
        if self.digits:
            return 2 * codes - self.hi
        if self.kind == "pow2":
            j = codes - self.hi // 2
            return np.sign(j) * np.left_shift(1, np.maximum(np.abs(j) - 1, 0))
        return codes

    @property
    def value_range(self) -> tuple[int, int]:
        """(smallest, largest) value of the type."""
        lo, hi = self.values(np.array([self.lo, self.hi]))
        return int(lo), int(hi)

    @classmethod
    def for_range(cls, lo: int, hi: int) -> "TensorType":
        if lo >= 0:
            return cls("unsigned", unsigned_bits(hi))
        return cls("signed", signed_bits(lo, hi))

    @property
    def lo(self) -> int:
        """Smallest stored code."""
        return -(1 << (self.bits - 1)) if self.kind == "signed" else 0

    @property
    def hi(self) -> int:
        """Largest stored code (``2q`` for pow2, whose top code ``2^n - 1`` is unused)."""
        if self.kind == "signed":
            return (1 << (self.bits - 1)) - 1
        return (1 << self.bits) - 1 - (self.kind == "pow2")

    def to_json(self) -> str:
        return "bipolar" if self.kind == "bipolar" else f"{self.kind[0]}{self.bits}"

    @classmethod
    def from_json(cls, s: str) -> "TensorType":
        if s == "bipolar":
            return cls("bipolar", 1)
        if len(s) > 1 and s[0] in "usop" and s[1:].isdigit():
            try:
                return cls({"u": "unsigned", "s": "signed", "o": "odd", "p": "pow2"}[s[0]],
                           int(s[1:]))
            except ValueError:
                pass
        raise IRFormatError(f"unknown tensor type {s!r}")


def odd_type(digits: int) -> TensorType:
    """The type of M-digit odd states: ``bipolar`` for one digit, ``odd`` otherwise."""
    return TensorType("bipolar", 1) if digits == 1 else TensorType("odd", digits)


def pow2_type(bits: int) -> TensorType:
    """The type of n-bit power-of-two levels (eq. 22): ``bipolar`` (sign, eq. 4) for one bit."""
    return TensorType("bipolar", 1) if bits == 1 else TensorType("pow2", bits)


@dataclass
class Threshold:
    """Per-output comparison turning an accumulator into a bipolar bit (see module docs)."""

    t: np.ndarray      # int64, one per output
    flip: np.ndarray   # bool, one per output: compare with <= instead of >=

    def __post_init__(self):
        self.t = np.asarray(self.t, dtype=np.int64)
        self.flip = np.asarray(self.flip, dtype=bool)
        if self.t.shape != self.flip.shape or self.t.ndim != 1:
            raise ValueError("threshold t and flip must be vectors of one length")

    @property
    def out(self) -> "TensorType":
        """The type of the emitted bits: bipolar."""
        return TensorType("bipolar", 1)

    def apply(self, acc: np.ndarray) -> np.ndarray:
        return np.where(self.flip, acc <= self.t, acc >= self.t).astype(np.int64)

    def clamp(self, lo: int, hi: int) -> "Threshold":
        return Threshold(np.clip(self.t, lo - 1, hi + 1), self.flip)

    def to_json(self) -> dict:
        return {"t": self.t.tolist(), "flip": "".join("1" if f else "0" for f in self.flip)}

    @classmethod
    def from_json(cls, d: dict) -> "Threshold":
        return cls(np.array(d["t"], dtype=np.int64), np.array([c == "1" for c in d["flip"]]))


@dataclass
class MultiThreshold:
    """Per-output multi-threshold: accumulator -> code in 0..L of ``out`` (see module docs).

    Members
    -------
    t : numpy.ndarray
        int64 (n, L), each row sorted ascending, or descending where ``flip``.
    flip : numpy.ndarray
        bool (n,): count the levels with ``acc <= t`` instead of ``acc >= t``.
    out : TensorType
        Type of the emitted codes; ``L == out.hi`` (one level per code above 0).
    """

    t: np.ndarray
    flip: np.ndarray
    out: TensorType

    def __post_init__(self):
        self.t = np.asarray(self.t, dtype=np.int64)
        self.flip = np.asarray(self.flip, dtype=bool)
        if self.t.ndim != 2 or self.flip.shape != self.t.shape[:1]:
            raise ValueError("multi-threshold t must be (n, L) and flip (n,)")
        if self.out.kind == "signed" or self.t.shape[1] != self.out.hi:
            raise ValueError(f"{self.t.shape[1]} levels cannot emit codes of type "
                             f"{self.out.to_json()}")
        steps = np.diff(self.t, axis=1)
        if np.any(np.where(self.flip[:, None], steps > 0, steps < 0)):
            raise ValueError("multi-threshold rows must be sorted (descending where flipped)")

    @property
    def levels(self) -> int:
        return self.t.shape[1]

    def apply(self, acc: np.ndarray) -> np.ndarray:
        acc = np.asarray(acc, dtype=np.int64)[..., None]
        passed = np.where(self.flip[:, None], acc <= self.t, acc >= self.t)
        return passed.sum(axis=-1, dtype=np.int64)

    def clamp(self, lo: int, hi: int) -> "MultiThreshold":
        return MultiThreshold(np.clip(self.t, lo - 1, hi + 1), self.flip, self.out)

    def to_json(self) -> dict:
        return {"t": self.t.tolist(), "flip": "".join("1" if f else "0" for f in self.flip),
                "out": self.out.to_json()}

    @classmethod
    def from_json(cls, d: dict) -> "MultiThreshold":
        return cls(np.array(d["t"], dtype=np.int64).reshape(len(d["flip"]), -1),
                   np.array([c == "1" for c in d["flip"]]), TensorType.from_json(d["out"]))
