"""Quantized tensors and activations: every float tensor tracked exactly (float64) as an affine
map of integer codes, and each activation ``Quant`` / ``BipolarQuant`` / ``PowerOfTwoQuant``
turned into exact integer levels of the accumulator it follows, ties included."""

from __future__ import annotations

import numpy as np

from hwgen.sw.core import ir
from hwgen.sw.core.levels import power_of_two_levels

from .graph import SNAP, CompileError, Graph, attr, bit_width, node_name

__all__ = ["levels_to_thresholds", "ROUNDING", "quant_bounds", "Activation", "Quantized",
           "apply_affine"]


def levels_to_thresholds(a, b, bounds, lo: int, hi: int):
    """Integer levels of ``z = a * acc + b`` (per channel) against float bounds.

    ``bounds`` lists ``(c, strict)`` per level: the level is passed when ``z >= c`` (``z > c``
    when strict); c may be per channel. Returns (t of shape (n, L), flip) in the convention
    of :class:`hwgen.sw.core.ir.MultiThreshold`, clamped to ``[lo - 1, hi + 1]``.
    """
    n = a.shape[0]
    t = np.empty((n, len(bounds)), np.int64)
    for k, (c, strict) in enumerate(bounds):
        c = np.broadcast_to(np.asarray(c, np.float64), (n,))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = (c - b) / a
            near = np.round(r)
            r = np.where(np.abs(r - near) <= SNAP * np.maximum(1.0, np.abs(r)), near, r)
        if strict:
            up, down = np.floor(r) + 1, np.ceil(r) - 1
            always = b > c
        else:
            up, down = np.ceil(r), np.floor(r)
            always = b >= c
        col = np.where(a > 0, up, down)
        col = np.where(a == 0, np.where(always, lo, hi + 1), col)
        t[:, k] = np.clip(np.nan_to_num(col, posinf=hi + 1, neginf=lo - 1), lo - 1, hi + 1)
    return t, a < 0


ROUNDING = ("FLOOR", "CEIL", "ROUND", "HALF_EVEN", "HALF_UP", "HALF_DOWN")


def quant_bounds(j: int, mode: str) -> tuple[float, bool]:
    """``R(y) >= j`` as ``y >= c`` (or ``y > c`` when strict) for the rounding function R."""
    if mode == "FLOOR":
        return j, False
    if mode == "CEIL":
        return j - 1, True
    if mode in ("ROUND", "HALF_EVEN"):          # a tie j - 1/2 goes to the even neighbour
        return j - 0.5, j % 2 != 0
    if mode == "HALF_UP":                       # ties away from zero
        return j - 0.5, j - 0.5 < 0
    return j - 0.5, j - 0.5 > 0                 # HALF_DOWN: ties towards zero


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
            self.bounds = [(0.0, False)]          # sign(0) = +1
            self.alpha, self.beta = s.item(), 0.0
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
        s, z0 = s.item(), z0.item()
        qmin = -(1 << (n - 1)) if attr(node, "signed", 1) else 0
        levels = (1 << n) - 1
        # code c = R(clamp(z / s + z0)) - qmin in 0..L, passing level k iff R(.) >= qmin + k
        self.bounds = []
        for k in range(1, levels + 1):
            c, strict = quant_bounds(qmin + k, mode.upper())
            self.bounds.append((s * (c - z0), strict))
        self.out = ir.odd_type(n)
        # value (c + qmin - z0) s with c = (v + L) / 2, v the odd state
        self.alpha, self.beta = s / 2, s * (levels / 2 + qmin - z0)

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
        s = s.item()
        theta = power_of_two_levels(n).thresholds           # magnitudes' midpoints, ascending
        q = len(theta)
        # code c passes level k <= q (a non-positive level) iff z/s >= -theta_(q-k+1): a value
        # on a threshold goes to the smaller magnitude, i.e. up on the negative side; level
        # k > q (a positive one) iff z/s > theta_(k-q), strictly
        self.bounds = [(-s * theta[q - k], False) for k in range(1, q + 1)] + \
                      [(s * theta[k - 1], True) for k in range(1, q + 1)]
        self.out = ir.pow2_type(n)
        # the code's value v is the level times 2^(q-1)
        self.alpha, self.beta = s / (1 << (q - 1)), 0.0

    def multithreshold(self, a, b, lo, hi) -> ir.MultiThreshold:
        t, flip = levels_to_thresholds(a, b, self.bounds, lo, hi)
        return ir.MultiThreshold(t, flip, self.out)


class Quantized:
    """A quantized tensor: codes of ``type`` whose float value is ``alpha * v + beta``."""

    def __init__(self, t: ir.TensorType, n: int, alpha=1.0, beta=0.0):
        self.type, self.n = t, n
        self.alpha = np.broadcast_to(np.asarray(alpha, np.float64), (n,)).copy()
        self.beta = np.broadcast_to(np.asarray(beta, np.float64), (n,)).copy()

    def affine(self, node, g: Graph) -> None:
        self.alpha, self.beta = apply_affine(node, g, self.alpha, self.beta)


def apply_affine(node, g: Graph, a: np.ndarray, b: np.ndarray):
    """``a * x + b`` after one BatchNormalization / Mul / Div / Add / Sub by constants."""
    op = node.op_type
    if op == "BatchNormalization":
        gamma, beta, mean, var = (g.const(node, i) for i in range(1, 5))
        k = gamma / np.sqrt(var + float(attr(node, "epsilon", 1e-5)))
        return a * k, (b - mean) * k + beta
    c = g.const(node, 1)
    if c.size not in (1, a.size):
        raise CompileError(f"node {node_name(node)}: constant of shape {c.shape} does not "
                           f"broadcast over {a.size} channels")
    c = np.broadcast_to(c.reshape(-1), a.shape)
    if op == "Mul":
        return a * c, b * c
    if op == "Div":
        return a / c, b / c
    if op == "Add":
        return a, b + c
    return a, b - c
