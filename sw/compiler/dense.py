"""Dense layers: a ``MatMul`` / ``Gemm`` opens the one IR kind that computes its integer weight
states on its input type (:meth:`hwgen.sw.core.ir.MatrixLayer.lowers`), and its float tail
``a * acc + b`` is followed until an activation or the graph output closes it."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np

from hwgen.sw.core import ir

from .exact import exact, exact_array, is_rational, sign
from .graph import CompileError, Graph, attr, node_name
from .quantized import Activation, Quantized, apply_affine, one_value

__all__ = ["OpenDense", "read_weights", "quant_weight", "oriented"]


class OpenDense:
    """A dense layer whose accumulator has been computed and whose float tail is being tracked.

    The float output is ``a * acc + b`` per channel, ``acc`` the layer kind's accumulator. The
    kind is the one IR kind whose :meth:`~hwgen.sw.core.ir.MatrixLayer.lowers` accepts the
    weight states ``codes`` on the input's type (``integer_weights``: they come from a weight
    ``Quant``, any integers).
    """

    def __init__(self, node, x: Quantized, codes: np.ndarray, scale: np.ndarray,
                 integer_weights: bool = False):
        name = node_name(node)
        if integer_weights and x.type.digits:
            # an odd state v is stored as the unsigned code u = (v + L) / 2: integer weights
            # multiply the codes, whose value is 2 alpha u + beta - alpha L
            lm = (1 << x.type.digits) - 1
            x = Quantized(ir.TensorType("unsigned", x.type.digits), x.n, 2 * x.alpha,
                          x.beta - x.alpha * lm)
        alpha = x.one_scale()
        if alpha is None or sign(alpha) == 0:
            raise CompileError(f"node {name}: its input has a different scale per element, "
                               "which no integer dot product can carry")
        self.name, self.in_type = name, x.type
        kinds = [k for k in ir.LAYER_KINDS.values()
                 if issubclass(k, ir.MatrixLayer) and k.lowers(x.type, codes, integer_weights)]
        if len(kinds) != 1:
            raise CompileError(f"node {name}: {len(kinds)} layer kinds compute these weights on "
                               f"{x.type.to_json()} inputs, not one")
        try:
            self.layer = kinds[0].from_codes(name, codes, x.type)
        except ValueError as e:
            raise CompileError(f"node {name}: {e}") from None
        ws = np.broadcast_to(np.asarray(scale, object), (codes.shape[0],))
        offset = ws * weighted_sum(codes, x.beta)
        self.a, self.b = self.layer.float_tail(alpha, ws, offset)

    def affine(self, node, g: Graph) -> None:
        self.a, self.b = apply_affine(node, g, self.a, self.b)

    def close(self, act: Activation) -> ir.Layer:
        """The layer, thresholded by the activation ``act``: a one-level threshold where the
        kind takes one and ``act`` is bipolar, else a multi-threshold (on the kind
        :meth:`~hwgen.sw.core.ir.MatrixLayer.widened` to one that takes it)."""
        layer = self.layer
        if layer.threshold_type is ir.Threshold:
            if act.out.kind == "bipolar":
                lo, hi = layer.acc_range(self.in_type)
                mt = act.multithreshold(self.a, self.b, lo, hi)
                layer.threshold = ir.Threshold(mt.t[:, 0], mt.flip)
                return layer
            layer = layer.widened()
        lo, hi = layer.acc_range(self.in_type)
        layer.threshold = act.multithreshold(self.a, self.b, lo, hi)
        return layer

    def close_at_output(self) -> ir.Layer:
        a, b = self.a, self.b
        scale = one_value(a)
        one_scale = scale is not None and sign(scale) > 0
        if self.layer.has_bias and one_scale:
            # the per-class offset becomes the layer's integer bias
            bias = [v / scale for v in b]
            if not all(is_rational(v) and v.denominator == 1 for v in bias):
                raise CompileError(f"layer {self.name}: its bias is not an integer number of "
                                   "accumulator steps, so it has no exact integer form")
            return dataclasses.replace(self.layer, bias=np.array([int(v) for v in bias],
                                                                  np.int64))
        if not (one_scale and one_value(b) is not None):
            raise CompileError(f"layer {self.name}: the output's per-class scale or offset is "
                               "not one positive constant, so its argmax has no exact integer form")
        return self.layer


def read_weights(node, g: Graph) -> tuple[np.ndarray, np.ndarray, bool]:
    """(integer weights (out, in), positive scale per output, integer weights) of a MatMul/Gemm
    weight.

    The integers are odd states (binary when K = 1), or 0 and +-2^e (shift weights, seed 004),
    or, from a QONNX weight ``Quant`` (integer weights), any integers."""
    name = node.input[1]
    src = g.producer.get(name)
    if src is not None and src.op_type == "Quant":
        codes, scale = quant_weight(src, g)
        return oriented(node, name, codes, scale) + (True,)
    if src is not None and src.op_type == "BipolarQuant":
        w = g.const(src, 0)
        scale = g.const(src, 1)
        codes = np.where(w >= 0, 1, -1)  # sign(0) = +1
    elif name in g.inits:
        w = g.inits[name]
        try:
            codes, scale = scaled_states(w)
        except ValueError as e:
            raise CompileError(f"node {node_name(node)}: weight {name}: {e}") from None
        if codes is None:
            shown = ", ".join(f"{v:g}" for v in np.unique(w)[:4])
            raise CompileError(f"node {node_name(node)}: weight {name} is not binary nor a "
                               f"scaled matrix of odd states or of 0 and powers of two (values "
                               f"{shown}, ...); quantize it with BipolarQuant, to odd "
                               "multi-bit states or to power-of-two levels")
    else:
        raise CompileError(f"node {node_name(node)}: weight {name} must be a constant, or "
                           "BipolarQuant or Quant of a constant")
    return oriented(node, name, codes, scale) + (False,)


# the largest odd state (K = 8 bits) and power-of-two weight (2^15) a plain initializer may hold
MAX_ODD, MAX_POW2 = 255, 1 << 15


def scaled_states(w: np.ndarray) -> tuple[np.ndarray | None, Fraction]:
    """``(codes, s)`` with ``w == s * codes`` exactly, the codes all odd (``|c| <= 255``) or all
    0 and ``+-2^e`` (``|c| <= 2^15``), s the largest such scale (the greatest common divisor of
    the magnitudes, a binary fraction); ``(None, s)`` when no scale makes them so, ValueError
    when powers of two span more than 2^15. An all-zero matrix is zeros at scale 1."""
    mags = np.unique(np.abs(w[w != 0]))
    if mags.size == 0:
        return np.zeros(w.shape, np.int64), Fraction(1)
    if mags.size > MAX_ODD:                     # more magnitudes than any such matrix has
        return None, Fraction(0)
    fr = [Fraction(float(v)) for v in mags]
    den = max(f.denominator for f in fr)        # powers of two: the largest is a multiple
    scale = Fraction(math.gcd(*(f.numerator * (den // f.denominator) for f in fr)), den)
    ints = [int(f / scale) for f in fr]
    odd = all(c % 2 == 1 for c in ints) and ints[-1] <= MAX_ODD
    pow2 = all(c & (c - 1) == 0 for c in ints)
    if pow2 and ints[-1] > MAX_POW2 and not odd:
        raise ValueError(f"its powers of two span 2^{ints[-1].bit_length() - 1}, more than "
                         f"the 2^{MAX_POW2.bit_length() - 1} a shift layer takes (a MINW-Net "
                         "of at most 5 weight bits always fits)")
    if not (odd or pow2):
        return None, scale
    states = np.array(ints, np.int64)
    codes = np.sign(w).astype(np.int64) * states[np.searchsorted(mags, np.abs(w))]
    return np.where(w == 0, 0, codes), scale


def weighted_sum(codes: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``codes @ beta`` exactly for integer ``codes`` (out, in) and exact numbers ``beta`` (in,),
    one integer column sum per distinct value of beta."""
    out = np.empty(codes.shape[0], object)
    out[:] = [Fraction(0)] * codes.shape[0]
    columns: dict = {}
    for i, v in enumerate(beta):
        columns.setdefault(v, []).append(i)
    for v, idx in columns.items():
        if sign(v) != 0:
            out = out + codes[:, idx].sum(axis=1).astype(object) * v
    return out


def quant_weight(src, g: Graph) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and scale of a QONNX ``Quant`` of a weight initializer (zero point 0):
    ``clamp(round(w / scale))`` to the signed (narrow: symmetric) or unsigned range."""
    w, scale, zero, bits = (g.const(src, i) for i in range(4))
    name = node_name(src)
    n = bits.item()
    if zero.size != 1 or zero.item() != 0 or np.any(scale <= 0):
        raise CompileError(f"node {name}: a weight Quant needs zero point 0 and positive scales")
    if n != int(n) or not 2 <= n <= 16:
        raise CompileError(f"node {name}: weight bit width {n:g} is not an integer from 2 to 16")
    n = int(n)
    if attr(src, "signed", 1):
        lo, hi = -(1 << (n - 1)) + bool(attr(src, "narrow", 0)), (1 << (n - 1)) - 1
    else:
        lo, hi = 0, (1 << n) - 1
    mode = attr(src, "rounding_mode", "ROUND")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "ROUND":
        raise CompileError(f"node {name}: weight rounding mode {mode} is not supported (ROUND)")
    return np.clip(round_half_even(w, scale), lo, hi), scale


def round_half_even(w: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``round(w / scale)`` exactly, ties to even: the float quotient where it is far from a
    tie, the exact one where it might be one."""
    scale = np.broadcast_to(scale, w.shape)
    q = w / scale
    codes = np.round(q)
    for i in zip(*np.nonzero(np.abs(np.abs(q - np.trunc(q)) - 0.5) < 1e-6)):
        codes[i] = round(Fraction(float(w[i])) / Fraction(float(scale[i])))
    return codes.astype(np.int64)


def oriented(node, name: str, codes: np.ndarray, scale) -> tuple[np.ndarray, np.ndarray]:
    """Codes as (out, in) for a MatMul/Gemm and the scale per output."""
    scale = exact_array(np.asarray(scale, np.float64).reshape(-1))
    if any(v <= 0 for v in scale):
        raise CompileError(f"node {node_name(node)}: weight scale must be positive")
    if node.op_type == "MatMul":
        codes = codes.T
    elif node.op_type == "Gemm":
        if attr(node, "transA", 0):
            raise CompileError(f"node {node_name(node)}: Gemm with transA is not supported")
        if not attr(node, "transB", 0):
            codes = codes.T
        scale = scale * exact(attr(node, "alpha", 1.0))
    if codes.ndim != 2:
        raise CompileError(f"node {node_name(node)}: weight {name} must be a matrix")
    if scale.size not in (1, codes.shape[0]):
        raise CompileError(f"node {node_name(node)}: weight scale has {scale.size} entries "
                           f"for {codes.shape[0]} outputs")
    return codes.astype(np.int64), scale
