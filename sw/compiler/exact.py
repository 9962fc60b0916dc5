"""Exact arithmetic for the compiler's affine maps: rationals, and the surds a batch norm brings.

Every float constant of an ONNX graph is a binary fraction, so every ``Mul``, ``Div``, ``Add``
and ``Sub`` by constants keeps the float value of a tensor an exact rational affine map of its
integer codes (:class:`fractions.Fraction`). ``BatchNormalization`` divides by
``sqrt(var + eps)``, which is irrational unless ``var + eps`` is the square of a rational; its
outputs are numbers ``p + q sqrt(d)`` with rational ``p``, ``q``, ``d`` (:class:`Surd`), with
one radicand ``d`` per channel. Comparisons are exact (by squaring, signs kept apart), so an
accumulator that lands exactly on a quantizer's boundary is decided by the rounding mode, never
by float rounding. Two batch norms on one channel without a quantizer between them would need
two radicands; :class:`NotExact` says so.
"""

from __future__ import annotations

import math
from fractions import Fraction
from numbers import Rational

import numpy as np

__all__ = ["NotExact", "Surd", "exact", "exact_array", "inv_sqrt", "is_rational", "magnitude",
           "sign", "to_float"]


class NotExact(ValueError):
    """A value this module cannot hold exactly (two different radicands in one number)."""


def exact(x) -> Fraction | Surd:
    """``x`` (an int, a float, a NumPy scalar, a Fraction or a Surd) as an exact number: a float
    becomes the binary fraction it is. NaN and infinities are refused."""
    if isinstance(x, (Fraction, Surd)):
        return x
    if isinstance(x, (int, np.integer)):
        return Fraction(int(x))
    f = float(x)
    if not math.isfinite(f):
        raise NotExact(f"{f} is not a finite number")
    return Fraction(f)


def exact_array(a) -> np.ndarray:
    """An object array of :func:`exact` numbers, of ``a``'s shape."""
    a = np.asarray(a)
    out = np.empty(a.shape, object)
    flat = out.reshape(-1)
    for i, v in enumerate(a.reshape(-1)):
        flat[i] = exact(v)
    return out


def is_rational(x) -> bool:
    return not isinstance(x, Surd)


def _square_root(r: Fraction) -> Fraction | None:
    """The rational square root of ``r >= 0``, or None when it has none."""
    n, d = math.isqrt(r.numerator), math.isqrt(r.denominator)
    return Fraction(n, d) if n * n == r.numerator and d * d == r.denominator else None


def inv_sqrt(v) -> Fraction | Surd:
    """``1 / sqrt(v)`` for a positive rational ``v``: ``sqrt(v) / v``."""
    v = exact(v)
    if not is_rational(v) or v <= 0:
        raise NotExact(f"1/sqrt of {float(v):g}: needs a positive rational")
    root = _square_root(v)
    return 1 / root if root is not None else Surd(Fraction(0), 1 / v, v)


def to_float(x) -> float:
    """``x`` as the nearest float, or an infinity of its sign beyond the float range."""
    try:
        return float(x)
    except OverflowError:
        return math.copysign(math.inf, sign(x))


def magnitude(x) -> float:
    """``|p| + |q| sqrt(d)`` in floats: the size of the terms a float evaluation of ``x`` rounds
    (``|x|`` for a rational), which bounds that evaluation's error."""
    if isinstance(x, Surd):
        return abs(to_float(x.p)) + abs(to_float(x.q)) * math.sqrt(to_float(x.d))
    return abs(to_float(x))


def sign(x) -> int:
    """-1, 0 or +1, exactly."""
    if isinstance(x, Surd):
        return x.sign()
    return (x > 0) - (x < 0)


class Surd:
    """``p + q sqrt(d)`` with rationals ``p``, ``q`` and ``d > 0`` not a rational square. Built
    by :func:`inv_sqrt`; an operation whose result is rational returns a Fraction."""

    __slots__ = ("p", "q", "d")

    def __init__(self, p: Fraction, q: Fraction, d: Fraction):
        self.p, self.q, self.d = p, q, d

    @staticmethod
    def _make(p, q, d):
        return p if q == 0 else Surd(p, q, d)

    def _parts(self, other) -> tuple[Fraction, Fraction]:
        """(p, q) of ``other`` over this radicand."""
        if isinstance(other, Surd):
            if other.d != self.d:
                raise NotExact("two different square roots meet in one value (two batch "
                               "norms without a quantizer between them)")
            return other.p, other.q
        if isinstance(other, (Rational, float, np.number)):
            return exact(other), Fraction(0)
        return NotImplemented

    def __add__(self, other):
        parts = self._parts(other)
        if parts is NotImplemented:
            return NotImplemented
        return Surd._make(self.p + parts[0], self.q + parts[1], self.d)

    __radd__ = __add__

    def __neg__(self):
        return Surd(-self.p, -self.q, self.d)

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self) + other

    def __mul__(self, other):
        parts = self._parts(other)
        if parts is NotImplemented:
            return NotImplemented
        p, q = parts
        return Surd._make(self.p * p + self.q * q * self.d, self.p * q + self.q * p, self.d)

    __rmul__ = __mul__

    def _inverse(self):
        norm = self.p * self.p - self.q * self.q * self.d      # never 0: d is no square
        return Surd(self.p / norm, -self.q / norm, self.d)

    def __truediv__(self, other):
        if isinstance(other, Surd):
            return self * other._inverse()
        return self * (1 / exact(other))

    def __rtruediv__(self, other):
        return self._inverse() * other

    def sign(self) -> int:
        sp, sq = sign(self.p), sign(self.q)
        if sp == sq or sq == 0:
            return sp
        if sp == 0:
            return sq
        # opposite signs: compare p^2 with q^2 d, which are never equal
        return sp if self.p * self.p > self.q * self.q * self.d else sq

    def _cmp(self, other) -> int:
        return sign(self - other)

    def __eq__(self, other):
        try:
            return self._cmp(other) == 0
        except NotExact:
            return False

    def __hash__(self):
        return hash((self.p, self.q, self.d))

    def __lt__(self, other):
        return self._cmp(other) < 0

    def __le__(self, other):
        return self._cmp(other) <= 0

    def __gt__(self, other):
        return self._cmp(other) > 0

    def __ge__(self, other):
        return self._cmp(other) >= 0

    def __float__(self):
        return float(self.p) + float(self.q) * math.sqrt(self.d)

    def __floor__(self) -> int:
        f = math.floor(float(self))
        while self < f:
            f -= 1
        while self >= f + 1:
            f += 1
        return f

    def __ceil__(self) -> int:
        return -math.floor(-self)

    def __repr__(self):
        return f"Surd({self.p} + {self.q} * sqrt({self.d}))"
