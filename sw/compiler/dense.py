"""Dense layers: a ``MatMul`` / ``Gemm`` opens the one IR kind that computes its integer weight
states on its input type (:meth:`hwgen.sw.core.ir.MatrixLayer.lowers`), and its float tail
``a * acc + b`` is followed until an activation or the graph output closes it."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwgen.sw.core import ir

from .graph import SNAP, CompileError, Graph, attr, node_name
from .quantized import Activation, Quantized, apply_affine

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
        if not np.allclose(x.alpha, x.alpha[0], rtol=1e-12, atol=0) or x.alpha[0] == 0:
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
        ws = np.broadcast_to(np.asarray(scale, np.float64), (codes.shape[0],))
        offset = ws * (codes.astype(np.float64) @ x.beta)
        self.a, self.b = self.layer.float_tail(x.alpha[0], ws, offset)

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
        if self.layer.has_bias and np.all(a == a[0]) and a[0] > 0:
            # the per-class offset becomes the layer's integer bias
            bias = b / a[0]
            if np.any(np.abs(bias - np.round(bias)) > SNAP * np.maximum(1, np.abs(bias))):
                raise CompileError(f"layer {self.name}: its bias is not an integer number of "
                                   "accumulator steps, so it has no exact integer form")
            return dataclasses.replace(self.layer, bias=np.round(bias).astype(np.int64))
        if not (np.all(a == a[0]) and a[0] > 0 and np.all(b == b[0])):
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
        mags = np.abs(w)
        scale = mags[mags > 0].min() if np.any(mags > 0) else 0.0
        r = w / scale if scale > 0 else np.zeros_like(w)
        codes = np.round(r).astype(np.int64)
        exact = scale > 0 and not np.any(np.abs(r - codes) > 1e-6 * np.maximum(1, np.abs(r)))
        odd = exact and not np.any(codes % 2 == 0) and np.abs(codes).max() <= 255
        pow2 = exact and ir.is_pow2_weight(codes).all() and np.abs(codes).max() <= 1 << 15
        if not (odd or pow2):
            shown = ", ".join(f"{v:g}" for v in np.unique(w)[:4])
            raise CompileError(f"node {node_name(node)}: weight {name} is not binary nor a "
                               f"scaled matrix of odd states or of 0 and powers of two (values "
                               f"{shown}, ...); quantize it with BipolarQuant, to odd "
                               "multi-bit states or to power-of-two levels")
    else:
        raise CompileError(f"node {node_name(node)}: weight {name} must be a constant, or "
                           "BipolarQuant or Quant of a constant")
    return oriented(node, name, codes, scale) + (False,)


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
    return np.clip(np.round(w / scale), lo, hi).astype(np.int64), scale


def oriented(node, name: str, codes: np.ndarray, scale) -> tuple[np.ndarray, np.ndarray]:
    """Codes as (out, in) for a MatMul/Gemm and the scale per output."""
    scale = np.asarray(scale, np.float64).reshape(-1)
    if np.any(scale <= 0):
        raise CompileError(f"node {node_name(node)}: weight scale must be positive")
    if node.op_type == "MatMul":
        codes = codes.T
    elif node.op_type == "Gemm":
        if attr(node, "transA", 0):
            raise CompileError(f"node {node_name(node)}: Gemm with transA is not supported")
        if not attr(node, "transB", 0):
            codes = codes.T
        scale = scale * float(attr(node, "alpha", 1.0))
    if codes.ndim != 2:
        raise CompileError(f"node {node_name(node)}: weight {name} must be a matrix")
    if scale.size not in (1, codes.shape[0]):
        raise CompileError(f"node {node_name(node)}: weight scale has {scale.size} entries "
                           f"for {codes.shape[0]} outputs")
    return codes.astype(np.int64), scale
