"""Quantized tensors and activations: every float tensor tracked exactly (rationals, and the
surds of a batch norm: :mod:`~hwgen.sw.compiler.exact`) as an affine map of integer codes, and
each activation ``Quant`` / ``BipolarQuant`` / ``PowerOfTwoQuant`` turned into exact integer
levels of the accumulator it follows, ties included."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from hwgen.sw.core import ir
from hwgen.sw.core.levels import power_of_two_levels

from .exact import NotExact, exact, exact_array, inv_sqrt, magnitude, sign, to_float
from .graph import CompileError, Graph, attr, bit_width, node_name

__all__ = ["levels_to_thresholds", "ROUNDING", "quant_bounds", "Activation", "Quantized",
           "apply_affine", "one_value"]


def levels_to_thresholds(a, b, bounds, lo: int, hi: int):
    """Integer levels of ``z = a * acc + b`` (per channel, exact numbers of
    :mod:`~hwgen.sw.compiler.exact`) against exact bounds.

    ``bounds`` lists ``(c, strict)`` per level: the level is passed when ``z >= c`` (``z > c``
    when strict); c may be per channel. Returns (t of shape (n, L), flip) in the convention
    of :class:`hwgen.sw.core.ir.MultiThreshold`, clamped to ``[lo - 1, hi + 1]``. Every
    threshold is exact: an accumulator whose ``z`` equals ``c`` passes unless ``strict``.
    """
    n = len(a)
    t = np.empty((n, len(bounds)), np.int64)
    af, bf = (np.array([to_float(v) for v in x]) for x in (a, b))
    a_size, b_size = (np.array([magnitude(v) for v in x]) for x in (a, b))
    flip = af < 0
    for k, (c, strict) in enumerate(bounds):
        c = np.broadcast_to(np.asarray(c, object), (n,))
        cf = np.array([to_float(v) for v in c])
        # the float quotient decides where it lies clearly off an integer: its error is a few
        # ulps of the terms it is made of, bounded here with a margin of 1000
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            r = (cf - bf) / af
            err = 1e3 * 16 * np.finfo(float).eps * (
                (np.abs(cf) + b_size) / np.abs(af) + np.abs(r) * (1 + a_size / np.abs(af)))
            if strict:
                col = np.where(flip, np.ceil(r) - 1, np.floor(r) + 1)
            else:
                col = np.where(flip, np.floor(r), np.ceil(r))
            clear = np.isfinite(r) & np.isfinite(err) & (np.abs(r - np.round(r)) > err) & \
                (np.abs(af) > 1e3 * 16 * np.finfo(float).eps * a_size)
        t[:, k] = np.clip(np.where(clear, col, 0), lo - 1, hi + 1)
        for j in np.nonzero(~clear)[0]:
            t[j, k] = _level(a[j], b[j], c[j], strict, lo, hi)
    return t, np.array([sign(v) < 0 for v in a], bool)


def _level(a, b, c, strict: bool, lo: int, hi: int) -> int:
    """The threshold of one channel and level (see :func:`levels_to_thresholds`)."""
    if sign(a) == 0:                     # a constant channel: always or never passes
        passes = b > c if strict else b >= c
        return lo if passes else hi + 1
    r = (c - b) / a                      # the accumulator at which z = c
    if r > hi + 2:
        r = Fraction(hi + 2)
    elif r < lo - 2:
        r = Fraction(lo - 2)
    if sign(a) > 0:                      # passes for acc >= t
        t = math.floor(r) + 1 if strict else math.ceil(r)
    else:                                # passes for acc <= t
        t = math.ceil(r) - 1 if strict else math.floor(r)
    return min(max(t, lo - 1), hi + 1)


ROUNDING = ("FLOOR", "CEIL", "ROUND", "HALF_EVEN", "HALF_UP", "HALF_DOWN")


def quant_bounds(j: int, mode: str) -> tuple[Fraction, bool]:
    """``R(y) >= j`` as ``y >= c`` (or ``y > c`` when strict) for the rounding function R."""
    half = Fraction(2 * j - 1, 2)
    if mode == "FLOOR":
        return Fraction(j), False
    if mode == "CEIL":
        return Fraction(j - 1), True
    if mode in ("ROUND", "HALF_EVEN"):          # a tie j - 1/2 goes to the even neighbour
        return half, j % 2 != 0
    if mode == "HALF_UP":                       # ties away from zero
        return half, half < 0
    return half, half > 0                       # HALF_DOWN: ties towards zero


class Activation:
    """A Quant / BipolarQuant node read as integer levels of its input and the codes' value."""

    def __init__(self, node, g: Graph):
        name = node_name(node)
        if node.op_type == "PowerOfTwoQuant":
            self._power_of_two(node, g)
            return
        if node.op_type == "BipolarQuant":
            s = g.const(node, 1)
            if s.size != 1 or s.item() <= 0:
                raise CompileError(f"node {name}: activation BipolarQuant needs one positive scale")
            self.out = ir.TensorType("bipolar", 1)
            self.bounds = [(Fraction(0), False)]          # sign(0) = +1
            self.alpha, self.beta = exact(s.item()), Fraction(0)
            return
        s, z0, bits = (g.const(node, i) for i in range(1, 4))
        if s.size != 1 or z0.size != 1 or bits.size != 1 or s.item() <= 0:
            raise CompileError(f"node {name}: activation Quant needs one positive scale, one "
                               "zero point and one bit width")
        n = bit_width(node, bits, "activation bit width", "")
        if attr(node, "narrow", 0):
            raise CompileError(f"node {name}: narrow-range activation Quant is not supported")
        mode = attr(node, "rounding_mode", "ROUND")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        if mode.upper() not in ROUNDING:
            raise CompileError(f"node {name}: rounding mode {mode} is not one of "
                               f"{', '.join(ROUNDING)}")
        s, z0 = exact(s.item()), exact(z0.item())
        qmin = -(1 << (n - 1)) if attr(node, "signed", 1) else 0
        levels = (1 << n) - 1
        # code c = R(clamp(z / s + z0)) - qmin in 0..L, passing level k iff R(.) >= qmin + k
        self.bounds = []
        for k in range(1, levels + 1):
            c, strict = quant_bounds(qmin + k, mode.upper())
            self.bounds.append((s * (c - z0), strict))
        self.out = ir.odd_type(n)
        # value (c + qmin - z0) s with c = (v + L) / 2, v the odd state
        self.alpha, self.beta = s / 2, s * (Fraction(levels, 2) + qmin - z0)

    def _power_of_two(self, node, g: Graph) -> None:
        """``scale * h_n(z / scale)``, eq. 22's levels (the ``PowerOfTwoQuant`` of
        :mod:`hwgen.sw.families.shift.export`)."""
        name = node_name(node)
        s = g.const(node, 1)
        n = attr(node, "bits")
        if s.size != 1 or s.item() <= 0:
            raise CompileError(f"node {name}: PowerOfTwoQuant needs one positive scale")
        if not isinstance(n, int) or not 2 <= n <= 6:
            raise CompileError(f"node {name}: PowerOfTwoQuant bits must be an integer from 2 "
                               f"to 6, not {n!r}")
        s = exact(s.item())
        # magnitudes' midpoints, ascending (sums of powers of two: exact binary fractions)
        theta = [exact(v) for v in power_of_two_levels(n).thresholds]
        q = len(theta)
        # code c passes level k <= q (a non-positive level) iff z/s >= -theta_(q-k+1): a value
        # on a threshold goes to the smaller magnitude, i.e. up on the negative side; level
        # k > q (a positive one) iff z/s > theta_(k-q), strictly
        self.bounds = [(-s * theta[q - k], False) for k in range(1, q + 1)] + \
                      [(s * theta[k - 1], True) for k in range(1, q + 1)]
        self.out = ir.pow2_type(n)
        # the code's value v is the level times 2^(q-1)
        self.alpha, self.beta = s / (1 << (q - 1)), Fraction(0)

    def multithreshold(self, a, b, lo, hi) -> ir.MultiThreshold:
        t, flip = levels_to_thresholds(a, b, self.bounds, lo, hi)
        return ir.MultiThreshold(t, flip, self.out)


class Quantized:
    """A quantized tensor: codes of ``type`` whose float value is ``alpha * v + beta``, both
    exact per element (object arrays of :mod:`~hwgen.sw.compiler.exact` numbers)."""

    def __init__(self, t: ir.TensorType, n: int, alpha=1, beta=0):
        self.type, self.n = t, n
        self.alpha = _per_channel(alpha, n)
        self.beta = _per_channel(beta, n)

    def affine(self, node, g: Graph) -> None:
        self.alpha, self.beta = apply_affine(node, g, self.alpha, self.beta)

    def one_scale(self):
        """The one scale of every element, or None when the scales differ."""
        return one_value(self.alpha)


def one_value(values: np.ndarray):
    """The value every entry of ``values`` equals (exactly), or None when they differ."""
    first = values[0]
    return first if all(v == first for v in values) else None


def _per_channel(v, n: int) -> np.ndarray:
    v = np.asarray(v, object)
    if v.ndim == 0:
        out = np.empty(n, object)
        out[:] = [exact(v.item())] * n
        return out
    return exact_array(np.broadcast_to(v, (n,)))


def apply_affine(node, g: Graph, a: np.ndarray, b: np.ndarray):
    """``a * x + b`` after one BatchNormalization / Mul / Div / Add / Sub by constants, exactly
    (object arrays in, object arrays out)."""
    try:
        return _affine(node, g, a, b)
    except NotExact as e:
        raise CompileError(f"node {node_name(node)}: {e}") from None


def _affine(node, g: Graph, a: np.ndarray, b: np.ndarray):
    op = node.op_type
    n = a.shape[0]

    def per_channel(i: int) -> np.ndarray:
        c = g.const(node, i)
        if c.size not in (1, n):
            raise CompileError(f"node {node_name(node)}: constant of shape {c.shape} does not "
                               f"broadcast over {n} channels")
        return exact_array(np.broadcast_to(c.reshape(-1), (n,)))

    if op == "BatchNormalization":
        gamma, beta, mean, var = (per_channel(i) for i in range(1, 5))
        eps = exact(attr(node, "epsilon", 1e-5))
        if any(v + eps <= 0 for v in var):
            raise CompileError(f"node {node_name(node)}: running variance + epsilon must be "
                               "positive")
        k = np.empty(n, object)
        k[:] = [gm * inv_sqrt(v + eps) for gm, v in zip(gamma, var)]
        return a * k, (b - mean) * k + beta
    c = per_channel(1)
    if op == "Mul":
        return a * c, b * c
    if op == "Div":
        if any(sign(v) == 0 for v in c):
            raise CompileError(f"node {node_name(node)}: division by zero")
        return a / c, b / c
    if op == "Add":
        return a, b + c
    return a, b - c
