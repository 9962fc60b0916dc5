"""``multithreshold``: an element-wise multi-threshold, e.g. integer pixels quantized to the
next layer's codes (conventions in :mod:`hwgen.sw.core.ir`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layer import Layer, register_kind
from .types import MultiThreshold, TensorType

__all__ = ["MultiThresholdLayer"]


@register_kind
@dataclass
class MultiThresholdLayer(Layer):
    """Element-wise multi-threshold: element i's code is ``threshold`` row i applied to x_i.

    Quantizes a vector without weights, e.g. a network's integer input into the odd codes of
    its first multi-branch layer. The accumulator is the input element itself.
    """

    kind = "multithreshold"
    threshold: MultiThreshold = None

    @property
    def n_in(self) -> int:
        return self.threshold.t.shape[0]

    @property
    def n_out(self) -> int:
        return self.n_in

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        if not in_type.is_integer:
            raise ValueError(f"{self.name}: multithreshold takes integer inputs, "
                             f"not {in_type.kind}")
        return in_type.lo, in_type.hi

    def out_type(self, in_type: TensorType) -> TensorType:
        return self.threshold.out

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "threshold": self.threshold.to_json()}

    @classmethod
    def from_json(cls, d: dict) -> "MultiThresholdLayer":
        return cls(name=d["name"], threshold=MultiThreshold.from_json(d["threshold"]))

    def accumulate(self, x: np.ndarray, in_type: TensorType | None) -> np.ndarray:
        return x.astype(np.int64)
