"""``argmax``: the index of the largest element, ties to the lowest index (conventions in
:mod:`hwgen.sw.core.ir`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layer import Layer, register_kind
from .types import TensorType, unsigned_bits

__all__ = ["ArgMax"]


@register_kind
@dataclass
class ArgMax(Layer):
    """Index of the largest element, ties to the lowest index."""

    kind = "argmax"
    n: int = 0

    @property
    def n_in(self) -> int:
        return self.n

    @property
    def n_out(self) -> int:
        return 1

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        return 0, self.n - 1

    def out_type(self, in_type: TensorType) -> TensorType:
        return TensorType("unsigned", unsigned_bits(self.n - 1))

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "n": self.n}

    @classmethod
    def from_json(cls, d: dict) -> "ArgMax":
        return cls(name=d["name"], n=int(d["n"]))

    def accumulate(self, x: np.ndarray, in_type: TensorType | None) -> np.ndarray:
        return np.argmax(x, axis=1).astype(np.int64)[:, None]
