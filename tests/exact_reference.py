"""An exact evaluation of an exported ONNX graph (QONNX op vocabulary) on integer input codes.

Written independently of the compiler (nothing of ``hwgen.sw.compiler`` and none of its
threshold arithmetic is used): every float32/float64 constant is the rational it exactly is
(:class:`fractions.Fraction`), and every op is evaluated on those rationals, so the result is
what the exported network computes with no rounding at all. The golden model must equal it on
every vector; PyTorch's float inference may differ from it only where a quantizer's input lands
exactly on a decision boundary (an *exact tie*, where the float rounding decides the side), and
:func:`evaluate` reports those rows.

``BatchNormalization`` divides by ``sqrt(var + eps)``, an irrational number in general. A value
between a batch norm and the next quantizer is kept exactly as ``p + q sqrt(d)`` with rationals
``p``, ``q``, ``d`` (:class:`Surd`); comparing it with a rational is exact (squaring, with the
signs taken care of). Anything the reference cannot represent exactly (two different surds
meeting, a surd into a MatMul, NaN or an infinity where no rule gives it a meaning) raises
:class:`ExactError`: the reference never guesses.

Ops (the vocabulary of ``hwgen.sw.families.*.export``):

* ``Quant`` (QONNX): ``(R(clamp(x / s + z, qmin, qmax)) - z) s`` with R one of ROUND
  (= HALF_EVEN, half to even), HALF_UP (half away from zero), HALF_DOWN (half towards zero),
  FLOOR, CEIL; signed/unsigned, narrow. A tie: ``x / s + z`` on a boundary between two codes.
* ``BipolarQuant`` (QONNX): ``s`` where ``x >= 0``, else ``-s`` (sign(0) = +1); a tie: x = 0.
* ``PowerOfTwoQuant`` (hwgen): ``s h_n(x / s)``, ``h_n`` the nearest of eq. 22's levels
  ``{0, +-2^-p}`` (p < q = 2^(n-1) - 1), a value on a midpoint going to the smaller magnitude;
  a tie: ``|x / s|`` on a midpoint.
* ``MatMul``, ``Gemm`` (alpha, beta, transA, transB, bias), ``BatchNormalization``,
  ``Mul``/``Div``/``Add``/``Sub`` with a constant, ``Identity``, ``Flatten``.
* ``SumAndMax`` (hwgen): ``sum_t sign_t reduce_t,i (x_i + w[t, j, i])`` over the finite weights
  of row j, or ``fill[t, j]`` for a row without one.
* ``QAMSlicer`` (hwgen): per element the nearest of the levels ``delta (2k - (M-1)) / (M-1)``,
  ``M = sqrt(order)``, a value on a midpoint going up; a tie: on a midpoint.

The result is the graph's integer output as the IR defines it: for a ``QAMSlicer`` output the
level index per element, otherwise (logits) the argmax, ties to the lowest index, as one
column.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import onnx
from onnx import numpy_helper

from hwgen.sw.core.onnx_ops import HWGEN_DOMAIN

__all__ = ["ExactError", "Surd", "ExactResult", "evaluate", "exact", "cmp", "floor",
           "round_mode", "pow2_quant", "qam_index"]


class ExactError(ValueError):
    """A value the reference cannot represent exactly, or an op it does not know."""


def exact(v) -> Fraction:
    """The rational a finite float (or int) exactly is; ExactError for NaN or an infinity."""
    if isinstance(v, Fraction):
        return v
    f = float(v)
    if not math.isfinite(f):
        raise ExactError(f"{f} has no exact value")
    return Fraction(f)


def _is_square(n: int) -> bool:
    return n >= 0 and math.isqrt(n) ** 2 == n


@dataclass(frozen=True)
class Surd:
    """``p + q sqrt(d)``: rationals, ``d > 0`` not a square, ``q != 0`` (so irrational).

    Build it with :meth:`make`, which returns a plain Fraction when the value is rational.
    Arithmetic with rationals and with surds of the same ``d`` stays exact; anything else raises
    ExactError.
    """

    p: Fraction
    q: Fraction
    d: Fraction

    @staticmethod
    def make(p, q, d):
        p, q, d = Fraction(p), Fraction(q), Fraction(d)
        if d < 0:
            raise ExactError(f"sqrt({d}) is not real")
        if q == 0 or d == 0:
            return p
        if _is_square(d.numerator) and _is_square(d.denominator):
            return p + q * Fraction(math.isqrt(d.numerator), math.isqrt(d.denominator))
        return Surd(p, q, d)

    def _same(self, other: "Surd") -> None:
        if other.d != self.d:
            raise ExactError(f"sqrt({self.d}) and sqrt({other.d}) meet in one value")

    def __add__(self, other):
        if isinstance(other, Surd):
            self._same(other)
            return Surd.make(self.p + other.p, self.q + other.q, self.d)
        return Surd(self.p + exact(other), self.q, self.d)

    __radd__ = __add__

    def __neg__(self):
        return self * -1

    def __sub__(self, other):
        return self + other * -1

    def __rsub__(self, other):
        return self * -1 + other

    def __mul__(self, other):
        if isinstance(other, Surd):
            self._same(other)
            return Surd.make(self.p * other.p + self.q * other.q * self.d,
                             self.p * other.q + self.q * other.p, self.d)
        c = exact(other)
        return Surd.make(self.p * c, self.q * c, self.d)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, Surd):
            raise ExactError("division by a surd")
        c = exact(other)
        if c == 0:
            raise ExactError("division by zero")
        return Surd.make(self.p / c, self.q / c, self.d)

    def __rtruediv__(self, other):
        raise ExactError("division by a surd")

    def __float__(self):
        return float(self.p) + float(self.q) * math.sqrt(self.d)


def cmp(a, b) -> int:
    """-1, 0 or 1 as ``a <, ==, > b``, exactly (Fractions and surds; two surds of one ``d``)."""
    if isinstance(b, Surd) and isinstance(a, Surd):
        diff = a - b
        if not isinstance(diff, Surd):
            return (diff > 0) - (diff < 0)
        a, b = diff, Fraction(0)
    elif isinstance(b, Surd):
        return -cmp(b, a)
    if not isinstance(a, Surd):
        a, b = exact(a), exact(b)
        return (a > b) - (a < b)
    p, q = a.p - exact(b), a.q            # the sign of p + q sqrt(d), which is never 0
    if p >= 0 and q > 0:
        return 1
    if p <= 0 and q < 0:
        return -1
    # opposite signs: compare p^2 with q^2 d
    return 1 if (p > 0) == (p * p > q * q * a.d) else -1


def floor(v) -> int:
    """The exact floor of a rational or a surd."""
    if not isinstance(v, Surd):
        return math.floor(exact(v))
    r = v.q * v.q * v.d                     # |q sqrt(d)| = sqrt(r), irrational
    root = math.isqrt(r.numerator * r.denominator) // r.denominator
    s_floor = root if v.q > 0 else -root - 1
    n = math.floor(v.p) + s_floor           # floor(p + s) is n or n + 1
    return n + 1 if cmp(v, n + 1) >= 0 else n


def round_mode(y, mode: str) -> tuple[int, bool]:
    """``R(y)`` for a QONNX rounding mode, and whether ``y`` lies on one of R's boundaries
    (a half-integer for the rounding modes, an integer for FLOOR and CEIL)."""
    n = floor(y)
    frac = None if isinstance(y, Surd) else y - n
    if mode == "FLOOR":
        return n, frac == 0
    if mode == "CEIL":
        return (n if frac == 0 else n + 1), frac == 0
    if mode not in ("ROUND", "HALF_EVEN", "HALF_UP", "HALF_DOWN"):
        raise ExactError(f"unknown rounding mode {mode}")
    if frac is None or frac != Fraction(1, 2):
        return (n + 1 if cmp(y, n + Fraction(1, 2)) > 0 else n), False
    if mode in ("ROUND", "HALF_EVEN"):
        return (n if n % 2 == 0 else n + 1), True
    away = n + 1 if y > 0 else n             # HALF_UP: ties away from zero
    toward = n if y > 0 else n + 1           # HALF_DOWN: ties towards zero
    return (away if mode == "HALF_UP" else toward), True


def pow2_thresholds(bits: int) -> tuple[list[Fraction], list[Fraction]]:
    """Eq. 22's magnitudes ``0, 2^-(q-1), .., 1`` and the midpoints between them."""
    if not 2 <= bits <= 16:
        raise ExactError(f"PowerOfTwoQuant of {bits} bits")
    q = (1 << (bits - 1)) - 1
    mags = [Fraction(0)] + [Fraction(1, 1 << p) for p in range(q - 1, -1, -1)]
    return mags, [(lo + hi) / 2 for lo, hi in zip(mags, mags[1:])]


def pow2_quant(a, bits: int) -> tuple[Fraction, bool]:
    """``h_n(a)`` (eq. 22, ties to the smaller magnitude) and whether ``|a|`` is a midpoint."""
    mags, mids = pow2_thresholds(bits)
    mag = -a if cmp(a, 0) < 0 else a
    k, tie = 0, False
    for m in mids:
        c = cmp(mag, m)
        tie |= c == 0
        k += c > 0
    return (mags[k] if cmp(a, 0) >= 0 else -mags[k]), tie


def qam_index(x, levels: int, delta: Fraction) -> tuple[int, bool]:
    """The level index of ``x`` (midpoints ``delta (2i + 2 - M) / (M - 1)`` go up), and whether
    ``x`` is on one."""
    k, tie = 0, False
    for i in range(levels - 1):
        c = cmp(x, delta * (2 * i + 2 - levels) / (levels - 1))
        tie |= c == 0
        k += c >= 0
    return k, tie


# ---------------------------------------------------------------------------------------------
# tensors: numpy object arrays of Fractions / Surds; constants have no batch axis


class Value:
    """A tensor: an object array of Fractions / Surds, ``batched`` when its first axis is the
    batch of input vectors; a constant keeps its float array ``raw`` and converts it on use."""

    def __init__(self, data: np.ndarray | None, batched: bool, raw: np.ndarray | None = None):
        self._data, self.batched, self.raw = data, batched, raw

    @property
    def data(self) -> np.ndarray:
        if self._data is None:
            self._data = _fractions(self.raw)
        return self._data


def _fractions(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    out = np.empty(a.shape, object)
    flat = out.reshape(-1)
    for i, v in enumerate(a.reshape(-1)):
        flat[i] = exact(v.item() if hasattr(v, "item") else v)
    return out


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            v = onnx.helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def _scalar(v: Value, what: str) -> Fraction:
    if v.batched or v.data.size != 1:
        raise ExactError(f"{what} must be one constant")
    return v.data.reshape(-1)[0]


def _elementwise(fn, x: Value, *consts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply ``fn(value, *const_elements) -> (out, tie)`` per element of ``x`` (constants
    broadcast); returns the outputs and the tie flags."""
    parts = np.broadcast_arrays(x.data, *consts)
    out = np.empty(parts[0].shape, object)
    ties = np.zeros(parts[0].shape, bool)
    for idx in np.ndindex(parts[0].shape):
        out[idx], ties[idx] = fn(*(p[idx] for p in parts))
    return out, ties


def _common(a: np.ndarray) -> tuple[np.ndarray, int]:
    """Rationals as integers over one common denominator: (ints, den)."""
    flat = a.reshape(-1)
    if any(isinstance(v, Surd) for v in flat):
        raise ExactError("a sum of products of irrational values (a surd into MatMul/SumAndMax)")
    den = math.lcm(1, *(v.denominator for v in flat))
    ints = np.empty(a.shape, object)
    ints.reshape(-1)[:] = [v.numerator * (den // v.denominator) for v in flat]
    return ints, den


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ai, da = _common(a)
    bi, db = _common(b)
    prod = ai @ bi
    out = np.empty(prod.shape, object)
    out.reshape(-1)[:] = [Fraction(v, da * db) for v in prod.reshape(-1)]
    return out


@dataclass
class ExactResult:
    """Per input vector: ``outputs`` (B, n_out) int64 as the IR's last layer gives them (the
    argmax class, or the QAM slicer's level indices), ``ties`` (B,) bool, True where some
    quantizer input lies exactly on a decision boundary, and ``tie_nodes``, how many rows tie at
    each quantizer node."""

    outputs: np.ndarray
    ties: np.ndarray
    tie_nodes: Counter = field(default_factory=Counter)
    logits: np.ndarray | None = None


class _Run:
    def __init__(self, model: onnx.ModelProto, codes: np.ndarray):
        g = model.graph
        self.env: dict[str, Value] = {t.name: Value(None, False, numpy_helper.to_array(t))
                                      for t in g.initializer}
        self.nodes = list(g.node)
        self.batch = len(codes)
        self.ties = np.zeros(self.batch, bool)
        self.tie_nodes: Counter = Counter()
        self.slicer_codes: dict[str, np.ndarray] = {}
        inputs = [i.name for i in g.input if i.name not in self.env]
        if len(inputs) != 1 or len(g.output) != 1:
            raise ExactError("the graph must have one input and one output")
        first = [n for n in self.nodes if inputs[0] in n.input]
        if len(first) != 1 or first[0].op_type != "Quant":
            raise ExactError("the graph input must feed one Quant")
        step = _scalar(self.env[first[0].input[1]], "the input step")
        x = np.empty(codes.shape, object)
        x.reshape(-1)[:] = [Fraction(int(c)) * step for c in codes.reshape(-1)]
        self.env[inputs[0]] = Value(x, True)
        self.output = g.output[0].name

    def tie(self, node, ties: np.ndarray, batched: bool) -> None:
        if not batched:
            return                      # a constant (a weight) quantizes the same every time
        rows = ties.reshape(self.batch, -1).any(axis=1)
        if rows.any():
            self.tie_nodes[node.name or node.output[0]] += int(rows.sum())
        self.ties |= rows

    def run(self) -> ExactResult:
        for node in self.nodes:
            if node.op_type == "Constant":
                t = node.attribute[0].t
                self.env[node.output[0]] = Value(None, False, numpy_helper.to_array(t))
                continue
            op = getattr(self, f"op_{node.op_type}", None)
            if op is None:
                raise ExactError(f"node {node.name}: op {node.op_type} is not known here")
            if node.op_type in ("PowerOfTwoQuant", "SumAndMax", "QAMSlicer") and \
                    node.domain != HWGEN_DOMAIN:
                raise ExactError(f"node {node.name}: {node.op_type} of domain {node.domain!r}")
            ins = [self.env[i] if i else None for i in node.input]
            self.env[node.output[0]] = op(node, *ins)
        out = self.env[self.output]
        if self.output in self.slicer_codes:
            return ExactResult(self.slicer_codes[self.output], self.ties, self.tie_nodes)
        return ExactResult(argmax(out.data), self.ties, self.tie_nodes, out.data)

    # --- quantizers

    def op_Quant(self, node, x, scale, zero, bits):
        n = int(_scalar(bits, "the bit width"))
        signed, narrow = int(_attr(node, "signed", 1)), int(_attr(node, "narrow", 0))
        mode = str(_attr(node, "rounding_mode", "ROUND")).upper()
        if n < 1 or (n == 1 and signed):
            raise ExactError(f"node {node.name}: a {n}-bit {'signed ' * signed}Quant")
        qmin = -(1 << (n - 1)) + narrow if signed else 0
        qmax = (1 << (n - 1)) - 1 if signed else (1 << n) - 1 - narrow
        if scale.batched or zero.batched:
            raise ExactError(f"node {node.name}: scale and zero point must be constants")

        def quant(v, s, z):
            if s <= 0:
                raise ExactError(f"node {node.name}: scale {s} is not positive")
            y = v / s + z
            if cmp(y, qmin) < 0:
                return (qmin - z) * s, False
            if cmp(y, qmax) > 0:
                return (qmax - z) * s, False
            r, tie = round_mode(y, mode)
            # an integer is FLOOR's boundary below it and CEIL's above it: one between two
            # codes only inside the range
            if tie and mode == "FLOOR":
                tie = y > qmin
            elif tie and mode == "CEIL":
                tie = y < qmax
            return (min(max(r, qmin), qmax) - z) * s, tie

        out, ties = _elementwise(quant, x, scale.data, zero.data)
        self.tie(node, ties, x.batched)
        return Value(out, x.batched)

    def op_BipolarQuant(self, node, x, scale):
        def bipolar(v, s):
            if s <= 0:
                raise ExactError(f"node {node.name}: scale {s} is not positive")
            c = cmp(v, 0)
            return (s if c >= 0 else -s), c == 0

        out, ties = _elementwise(bipolar, x, scale.data)
        self.tie(node, ties, x.batched)
        return Value(out, x.batched)

    def op_PowerOfTwoQuant(self, node, x, scale):
        bits = _attr(node, "bits")

        def quant(v, s):
            if s <= 0:
                raise ExactError(f"node {node.name}: scale {s} is not positive")
            h, tie = pow2_quant(v / s, bits)
            return s * h, tie

        out, ties = _elementwise(quant, x, scale.data)
        self.tie(node, ties, x.batched)
        return Value(out, x.batched)

    def op_QAMSlicer(self, node, x):
        order, delta = int(_attr(node, "order")), exact(_attr(node, "delta", 1.0))
        levels = math.isqrt(order)
        if levels * levels != order or levels < 2 or delta <= 0:
            raise ExactError(f"node {node.name}: order {order}, delta {delta}")
        codes = np.empty(x.data.shape, np.int64)

        def slice_(v):
            k, tie = qam_index(v, levels, delta)
            return delta * (2 * k - (levels - 1)) / (levels - 1), tie

        out, ties = _elementwise(slice_, x)
        for idx in np.ndindex(x.data.shape):
            codes[idx] = int((out[idx] * (levels - 1) / delta + levels - 1) / 2)
        self.tie(node, ties, x.batched)
        self.slicer_codes[node.output[0]] = codes
        return Value(out, x.batched)

    # --- linear ops

    def op_MatMul(self, node, a, b):
        if b.batched or not a.batched:
            raise ExactError(f"node {node.name}: MatMul of a batch by a constant only")
        return Value(_matmul(a.data, b.data), True)

    def op_Gemm(self, node, a, b, c=None):
        if b.batched or not a.batched or (c is not None and c.batched):
            raise ExactError(f"node {node.name}: Gemm of a batch by constants only")
        if _attr(node, "transA", 0):
            raise ExactError(f"node {node.name}: transA")
        w = b.data.T if _attr(node, "transB", 0) else b.data
        alpha, beta = exact(_attr(node, "alpha", 1.0)), exact(_attr(node, "beta", 1.0))
        y = _matmul(a.data, w) * alpha
        if c is not None:
            y = y + beta * np.broadcast_to(c.data, y.shape)
        return Value(y, True)

    def op_BatchNormalization(self, node, x, gamma, beta, mean, var):
        if int(_attr(node, "training_mode", 0)):
            raise ExactError(f"node {node.name}: training-mode batch norm")
        eps = exact(_attr(node, "epsilon", 1e-5))
        shape = (1, -1) + (1,) * (x.data.ndim - 2)
        params = [np.asarray(p.data).reshape(shape) for p in (gamma, beta, mean, var)]

        def bn(v, g, b, m, d):
            d = d + eps
            if d <= 0:
                raise ExactError(f"node {node.name}: var + eps = {d} has no real square root")
            if isinstance(v, Surd):
                raise ExactError(f"node {node.name}: batch norm of a surd")
            # g (v - m) / sqrt(d) + b = b + (g (v - m) / d) sqrt(d)
            return Surd.make(b, g * (v - m) / d, d), False

        out, _ = _elementwise(bn, x, *params)
        return Value(out, x.batched)

    def _binary(self, node, a, b, fn):
        if a.batched and b.batched:
            raise ExactError(f"node {node.name}: {node.op_type} of two batch tensors")
        data = fn(a.data, b.data)
        return Value(np.asarray(data, object), a.batched or b.batched)

    def op_Mul(self, node, a, b):
        return self._binary(node, a, b, lambda u, v: u * v)

    def op_Div(self, node, a, b):
        if b.batched or any(v == 0 for v in b.data.reshape(-1)):
            raise ExactError(f"node {node.name}: division by zero or by a batch tensor")
        return self._binary(node, a, b, lambda u, v: u / v)

    def op_Add(self, node, a, b):
        return self._binary(node, a, b, lambda u, v: u + v)

    def op_Sub(self, node, a, b):
        return self._binary(node, a, b, lambda u, v: u - v)

    def op_Identity(self, node, x):
        return x

    def op_Flatten(self, node, x):
        if _attr(node, "axis", 1) != 1:
            raise ExactError(f"node {node.name}: Flatten axis other than 1")
        return Value(x.data.reshape(len(x.data), -1), x.batched)

    def op_SumAndMax(self, node, x, weights, fill):
        reduces, signs = list(_attr(node, "reduces", [])), list(_attr(node, "signs", []))
        if weights.raw is None or fill.raw is None:
            raise ExactError(f"node {node.name}: SumAndMax weights and fill must be initializers")
        w = np.asarray(weights.raw, np.float64)
        if not x.batched or weights.batched or fill.batched:
            raise ExactError(f"node {node.name}: SumAndMax of a batch by constants only")
        reduces = [r.decode() if isinstance(r, bytes) else r for r in reduces]
        if w.ndim != 3 or len(reduces) != len(w) or len(signs) != len(w):
            raise ExactError(f"node {node.name}: malformed SumAndMax")
        xi, dx = _common(x.data)
        kept = np.isfinite(w)
        for t, reduce in enumerate(reduces):
            never = np.inf if reduce == "max" else -np.inf
            if reduce not in ("max", "min") or np.isnan(w[t]).any() or (w[t] == never).any():
                raise ExactError(f"node {node.name}: term {t} ({reduce}) holds NaN or {never}")
        wi, dw = _common(_fractions(np.where(kept, w, 0.0)))
        fills = _fractions(np.asarray(fill.raw, np.float64)).reshape(w.shape[:2])
        den = math.lcm(dx, dw, *(f.denominator for f in fills.reshape(-1)))
        xi, wi = xi * (den // dx), wi * (den // dw)
        total = np.zeros((len(xi), w.shape[1]), object)
        for t, (reduce, sign) in enumerate(zip(reduces, signs)):
            for j in range(w.shape[1]):
                cols = np.flatnonzero(kept[t, j])
                if len(cols) == 0:
                    term = np.full(len(xi), int(fills[t, j] * den), object)
                else:
                    sums = xi[:, cols] + wi[t, j, cols]
                    term = sums.max(axis=1) if reduce == "max" else sums.min(axis=1)
                total[:, j] += int(sign) * term
        out = np.empty(total.shape, object)
        out.reshape(-1)[:] = [Fraction(v) / den for v in total.reshape(-1)]
        return Value(out, True)


def argmax(logits: np.ndarray) -> np.ndarray:
    """(B, 1) int64: the index of the largest logit per row, ties to the lowest index."""
    out = np.zeros((len(logits), 1), np.int64)
    for b, row in enumerate(logits):
        best = 0
        for j in range(1, len(row)):
            if cmp(row[j], row[best]) > 0:
                best = j
        out[b, 0] = best
    return out


def evaluate(model: onnx.ModelProto, codes: np.ndarray) -> ExactResult:
    """The exact outputs of ``model`` on a batch of integer input ``codes`` (B, n_in): the
    graph input is ``codes`` times the input Quant's step (module docs)."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"codes must be a (B, n_in) integer array, not {codes.dtype} "
                         f"{codes.shape}")
    return _Run(model, codes).run()
