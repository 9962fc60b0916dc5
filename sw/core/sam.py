"""``sam``: the Sum-and-Max layer of seed 002 (eq. 5), additions and comparisons only, pruned
entries absent (conventions in :mod:`hwgen.sw.core.ir`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .layer import Layer, check_integer_input, register_kind
from .types import TensorType

__all__ = ["SAM_REDUCES", "SAM_CHUNK", "SAMTerm", "SAMLayer", "sam_term"]

SAM_REDUCES = ("max", "min")

#: Most sums ``x_i + w_ji`` :func:`sam_term` holds at once (64 MiB of int64).
SAM_CHUNK = 1 << 23


@dataclass
class SAMTerm:
    """One max or min term of a :class:`SAMLayer` (see the module docs).

    Members
    -------
    reduce : str
        ``"max"`` or ``"min"``.
    sign : int
        +1 or -1: how the term enters the output (eq. 4 subtracts its second max).
    weights : numpy.ndarray
        int64 (n_out, n_in); 0 where an entry is pruned.
    keep : numpy.ndarray
        bool (n_out, n_in): the entries that exist.
    fill : numpy.ndarray
        int64 (n_out,): the value of a row with no kept entry; 0 on the other rows.
    """

    reduce: str
    sign: int
    weights: np.ndarray
    keep: np.ndarray
    fill: np.ndarray

    def __post_init__(self):
        if self.reduce not in SAM_REDUCES or self.sign not in (1, -1):
            raise ValueError(f"a SAM term reduces by max or min with sign +-1, not "
                             f"{self.reduce!r}, {self.sign!r}")
        self.keep = np.asarray(self.keep, dtype=bool)
        self.weights = np.where(self.keep, np.asarray(self.weights, dtype=np.int64), 0)
        self.fill = np.asarray(self.fill, dtype=np.int64)
        if self.weights.ndim != 2 or self.fill.shape != self.weights.shape[:1]:
            raise ValueError("SAM term weights must be (n_out, n_in) and fill (n_out,)")
        self.fill = np.where(self.empty, self.fill, 0)

    @property
    def empty(self) -> np.ndarray:
        """bool (n_out,): rows with no kept entry, whose value is their fill."""
        return ~self.keep.any(axis=1)

    @property
    def n_kept(self) -> int:
        return int(self.keep.sum())

    def bounds(self, in_type: TensorType) -> tuple[np.ndarray, np.ndarray]:
        """Per output, the exact (lo, hi) of the unsigned term over inputs of ``in_type``: a
        max lies in ``[x_lo + max_i w_ji, x_hi + max_i w_ji]``, both ends reached by a constant
        input vector, a min likewise with ``min_i w_ji``."""
        big = np.iinfo(np.int64).max // 4
        if self.reduce == "max":
            w = np.where(self.keep, self.weights, -big).max(axis=1)
        else:
            w = np.where(self.keep, self.weights, big).min(axis=1)
        lo = np.where(self.empty, self.fill, in_type.lo + w)
        hi = np.where(self.empty, self.fill, in_type.hi + w)
        return lo, hi

    def to_json(self) -> dict:
        rows = [[[int(i), int(self.weights[j, i])] for i in np.flatnonzero(self.keep[j])]
                for j in range(self.weights.shape[0])]
        return {"reduce": self.reduce, "sign": self.sign, "rows": rows,
                "fill": self.fill.tolist()}

    @classmethod
    def from_json(cls, d: dict, n_in: int) -> "SAMTerm":
        n_out = len(d["rows"])
        w = np.zeros((n_out, n_in), np.int64)
        keep = np.zeros((n_out, n_in), bool)
        for j, row in enumerate(d["rows"]):
            for i, v in row:
                w[j, i], keep[j, i] = v, True
        return cls(d["reduce"], int(d["sign"]), w, keep, np.array(d["fill"], dtype=np.int64))


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


@register_kind
@dataclass
class SAMLayer(Layer):
    """Sum-and-Max layer (seed 002): additions and comparisons, no multiplications.

    ``o_j = sum_t sign_t * term_t,j`` over its :class:`SAMTerm` s; the paper's layer (eq. 5)
    is a max term plus a min term, eq. 3 a single max and eq. 4 a max minus a max. Inputs
    are integers (signed or unsigned); the output is the exact integer ``o``.

    Members
    -------
    n : int
        Inputs.
    terms : list of SAMTerm
        All of one shape (n_out, n).
    """

    kind = "sam"
    n: int = 0
    terms: list = field(default_factory=list)

    def __post_init__(self):
        if not self.terms or any(t.weights.shape != (self.terms[0].weights.shape[0], self.n)
                                 for t in self.terms):
            raise ValueError(f"{self.name}: a SAM layer needs terms of one shape (n_out, "
                             f"{self.n})")

    @property
    def n_in(self) -> int:
        return self.n

    @property
    def n_out(self) -> int:
        return self.terms[0].weights.shape[0]

    @property
    def n_kept(self) -> int:
        """Parameters: the kept entries of every term (fills are not counted)."""
        return sum(t.n_kept for t in self.terms)

    def out_bounds(self, in_type: TensorType) -> tuple[np.ndarray, np.ndarray]:
        """Per output, bounds of ``o_j``: the sum of the signed terms' bounds."""
        check_integer_input(self, in_type)
        lo = np.zeros(self.n_out, np.int64)
        hi = np.zeros(self.n_out, np.int64)
        for t in self.terms:
            tlo, thi = t.bounds(in_type)
            lo, hi = (lo + tlo, hi + thi) if t.sign > 0 else (lo - thi, hi - tlo)
        return lo, hi

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        lo, hi = self.out_bounds(in_type)
        return int(lo.min()), int(hi.max())

    def out_type(self, in_type: TensorType) -> TensorType:
        return self.acc_type(in_type)

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "n_in": self.n,
                "terms": [t.to_json() for t in self.terms]}

    @classmethod
    def from_json(cls, d: dict) -> "SAMLayer":
        n = int(d["n_in"])
        return cls(name=d["name"], n=n, terms=[SAMTerm.from_json(t, n) for t in d["terms"]])

    def accumulate(self, x: np.ndarray, in_type: TensorType | None) -> np.ndarray:
        return sum(t.sign * sam_term(t, x) for t in self.terms)
