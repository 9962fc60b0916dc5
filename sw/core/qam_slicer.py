"""``qam_slicer``: the QAM decision device of seed 000 (§2.3, eq. 12-14) (conventions in
:mod:`hwgen.sw.core.ir`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .layer import Layer, check_integer_input, register_kind
from .types import TensorType, odd_type

__all__ = ["QAM_ORDERS", "QAMSlicer"]


#: The square QAM orders a ``qam_slicer`` takes (4-QAM is 4-PSK).
QAM_ORDERS = (4, 16, 64, 256)


@register_kind
@dataclass
class QAMSlicer(Layer):
    """QAM decision device (seed 000, §2.3): every element of a complex vector's real and
    imaginary parts goes to its nearest constellation level (conventions in the module docs).

    Members
    -------
    n : int
        Complex elements; the vector holds ``2 n`` integers in block layout.
    order : int
        Constellation points, one of :data:`QAM_ORDERS`; ``sqrt(order)`` levels per axis.
    boundaries : tuple of int
        The ``sqrt(order) - 1`` decision boundaries in input codes, ascending, shared by both
        axes and every element. Two may be equal: where the levels lie closer than one input
        step, the level between them is never chosen (the nearest one still is).
    output : ``"index"`` or ``"value"``
        Emit the level index (unsigned) or the same code read as the odd level value.
    """

    kind = "qam_slicer"
    n: int = 0
    order: int = 16
    boundaries: tuple = ()
    output: str = "index"

    def __post_init__(self):
        if self.order not in QAM_ORDERS:
            raise ValueError(f"{self.name}: QAM order must be one of {QAM_ORDERS}, "
                             f"not {self.order!r}")
        self.boundaries = tuple(int(b) for b in self.boundaries)
        if len(self.boundaries) != self.levels - 1 or \
                any(b > c for b, c in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"{self.name}: {self.order}-QAM needs {self.levels - 1} ascending "
                             f"boundaries, not {list(self.boundaries)}")
        if self.output not in ("index", "value"):
            raise ValueError(f"{self.name}: output must be 'index' or 'value', "
                             f"not {self.output!r}")
        if self.n < 1:
            raise ValueError(f"{self.name}: a slicer needs at least one element, not {self.n!r}")

    @classmethod
    def for_grid(cls, name: str, n: int, order: int, delta, scale, *,
                 output: str = "index") -> "QAMSlicer":
        """The slicer of the constellation with levels ``{-delta, .., delta}`` per axis (seed
        000, eq. 12: ``M`` levels evenly spaced) on inputs whose code ``x`` stands for
        ``x * scale``. Decision boundaries lie halfway between adjacent levels,
        ``-delta + (2 i + 1) delta / (M - 1)``; as the code is ``#{i : x >= b_i}`` for real
        ``b_i``, an integer boundary is ``ceil(b_i / scale)``, computed exactly from the binary
        values of ``delta`` and ``scale`` (an input on a real boundary goes to the upper
        level, as the float model's ``x >= b_i`` does)."""
        if order not in QAM_ORDERS:
            raise ValueError(f"{name}: QAM order must be one of {QAM_ORDERS}, not {order!r}")
        d, s = Fraction(delta), Fraction(scale)      # a float is the binary fraction it is
        if d <= 0 or s <= 0:
            raise ValueError(f"{name}: delta and scale must be positive, not {delta}, {scale}")
        m = math.isqrt(order)
        bounds = [math.ceil((-d + (2 * i + 1) * d / (m - 1)) / s) for i in range(m - 1)]
        return cls(name=name, n=n, order=order, boundaries=tuple(bounds), output=output)

    @property
    def levels(self) -> int:
        """Levels per axis, ``M = sqrt(order)``."""
        return math.isqrt(self.order)

    @property
    def bits_per_axis(self) -> int:
        return self.levels.bit_length() - 1

    @property
    def n_in(self) -> int:
        return 2 * self.n

    @property
    def n_out(self) -> int:
        return 2 * self.n

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        check_integer_input(self, in_type)
        return in_type.lo, in_type.hi

    def out_type(self, in_type: TensorType) -> TensorType:
        if self.output == "value":
            return odd_type(self.bits_per_axis)
        return TensorType("unsigned", self.bits_per_axis)

    def shift_form(self) -> tuple[int, int] | None:
        """``(base, k)`` when the boundaries are ``base + i * 2^k``: then the code is
        ``clamp((x - base + 2^k) >> k, 0, M - 1)`` (arithmetic shift, i.e. floor), the
        slicer's shift-and-saturate form; None when the grid does not allow it."""
        b = self.boundaries
        if len(b) == 1:
            return b[0], 0
        step = b[1] - b[0]
        if step <= 0 or step & (step - 1) or any(c - a != step for a, c in zip(b, b[1:])):
            return None
        return b[0], step.bit_length() - 1

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "n": self.n, "order": self.order,
                "boundaries": list(self.boundaries), "output": self.output}

    @classmethod
    def from_json(cls, d: dict) -> "QAMSlicer":
        return cls(name=d["name"], n=int(d["n"]), order=int(d["order"]),
                   boundaries=tuple(d["boundaries"]), output=d["output"])

    def accumulate(self, x: np.ndarray, in_type: TensorType | None) -> np.ndarray:
        # the count of boundaries at or below each element: ties go to the upper level
        return np.searchsorted(np.asarray(self.boundaries), x, side="right").astype(np.int64)
