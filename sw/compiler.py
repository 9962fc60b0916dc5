"""ONNX (QONNX op vocabulary) -> hwgen layer IR.

The graph must be a chain from one quantized input to one output. The compiler walks it once,
tracking every float tensor exactly (float64) as an affine map of integers:

* ``Quant`` on the graph input (zero point 0) gives the input's integer type; its scale is the
  float value of one input step (1 for integer samples).
* A quantized tensor's float value is tracked as ``alpha * v + beta`` per element, ``v`` the
  IR value of its codes (the integer, or the odd state of bipolar/odd codes, see
  :mod:`hwgen.sw.ir`); ``Mul``, ``Div``, ``Add``, ``Sub`` by constants update the map.
* ``MatMul`` / ``Gemm`` whose weight is a scaled matrix of odd integers (``BipolarQuant`` of an
  initializer, or an initializer equal to ``s * c`` with ``c`` odd, ``|c| <= 2^K - 1``) opens a
  dense layer: ``dense_int_binw`` on integer inputs (K = 1), ``dense_binary`` (xnor-popcount)
  on bipolar inputs (K = 1), and ``dense_mbbn`` (multi-branch, seed 003 eq. 8) on odd inputs
  or K > 1. A weight equal to ``s * c`` with every ``c`` 0 or ``+-2^e`` (and some ``c`` even or
  0), or any weight on power-of-two inputs, opens a ``dense_shift`` layer (seed 004): a
  shift-accumulate of the input values. A weight that is a QONNX ``Quant`` (zero point 0) of
  an initializer opens a ``dense_mac`` layer (integer multiply-accumulate) on integer inputs,
  its codes being the Quant's rounded, clamped integers; after an activation ``Quant`` it
  multiplies that activation's codes read as unsigned integers (the previous multi-threshold
  then emits ``unsigned`` codes). The output is tracked as a per-channel affine map
  ``a * acc + b`` of the layer's integer accumulator; ``BatchNormalization``, the constant ops
  and a Gemm bias update it.
* ``BipolarQuant`` closes the layer with a threshold (sign(0) = +1); ``Quant`` of n bits
  closes it with a multi-threshold of ``2^n - 1`` levels whose codes are the next layer's
  n-digit odd states (the QONNX rounding modes FLOOR, CEIL, ROUND (half to even), HALF_UP and
  HALF_DOWN are each turned into exact integer levels); ``PowerOfTwoQuant`` of n bits (domain
  ``hwgen.custom_op``, see :mod:`hwgen.sw.export`) closes it with the ``2^n - 2`` levels
  between eq. 22's power-of-two values, whose codes are ``pow2`` elements. On an integer
  tensor without a layer, any of them becomes an element-wise ``multithreshold`` layer.
* ``SumAndMax`` (domain ``hwgen.custom_op``, see :mod:`hwgen.sw.export`) on an integer tensor
  of scale ``s`` (offset 0) is a ``sam`` layer (seed 002): its finite weights and the fills of
  its empty rows, divided by ``s``, must be integers, and its output is an integer tensor of
  the same scale. A +inf in a max term (or -inf in a min term) would always win and is refused.
* ``QAMSlicer`` (domain ``hwgen.custom_op``, see :mod:`hwgen.sw.export`) is a ``qam_slicer``
  layer (seed 000): on an integer tensor of one scale ``s`` (offset 0), or after a
  ``dense_mac`` layer, which then emits its accumulator (its offset an integer bias, as at the
  graph output) to the slicer. The boundaries are the exact ``ceil(b_i / s)`` of
  :meth:`hwgen.sw.ir.QAMSlicer.for_grid`; the output is the level value, an odd tensor of
  scale ``delta / (M - 1)``.
* At the graph output, a ``dense_mac`` layer takes the per-class offset as its integer bias
  (offset / scale must be integers). For the other kinds, an affine map that is the same positive scale and offset for every
  channel cannot change the argmax, so the layer emits its accumulator and an ``argmax`` layer
  is appended; any other map is refused, since no integer layer could represent it exactly.

Every refusal is a :class:`CompileError` whose message names the offending node.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from .core import ir
from .core.levels import power_of_two_levels
from .core.onnx_ops import HWGEN_DOMAIN

__all__ = ["CompileError", "compile_onnx", "load_onnx"]

_PASSTHROUGH = {"Identity", "Flatten"}
_AFFINE = {"BatchNormalization", "Mul", "Div", "Add", "Sub"}


class CompileError(ValueError):
    """A model the compiler cannot lower; the message names the node or file."""


def load_onnx(path) -> onnx.ModelProto:
    path = Path(path)
    if not path.is_file():
        raise CompileError(f"{path}: no such file")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises several unrelated types for a corrupt file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CompileError(f"{path}: not a valid ONNX model ({first})") from None
    return model


class _Graph:
    def __init__(self, model: onnx.ModelProto):
        g = model.graph
        self.inits = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
        for node in g.node:
            if node.op_type == "Constant":
                self.inits[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self.nodes = [n for n in g.node if n.op_type != "Constant"]
        self.producer = {o: n for n in self.nodes for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in self.nodes:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.inputs = [i.name for i in g.input if i.name not in self.inits]
        self.outputs = [o.name for o in g.output]

    def const(self, node, index: int) -> np.ndarray:
        name = node.input[index] if index < len(node.input) else ""
        if name not in self.inits:
            raise CompileError(f"node {node.name or node.op_type}: input {index} ({name or 'absent'}) "
                               "must be a constant initializer")
        return self.inits[name]

    def next_node(self, tensor: str):
        users = self.consumers.get(tensor, [])
        if len(users) > 1:
            names = ", ".join(n.name or n.op_type for n in users)
            raise CompileError(f"tensor {tensor} feeds several nodes ({names}); "
                               "only chains are supported")
        return users[0] if users else None


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _bit_width(node, bits: np.ndarray, what: str, why: str) -> int:
    """A Quant node's bit width, an integer from 1 to 8, or a CompileError naming the node."""
    n = bits.item()
    if n != int(n) or not 1 <= n <= 8:
        raise CompileError(f"node {_node_name(node)}: {what} {n:g} is not an integer from 1 to 8"
                           + why)
    return int(n)


def _node_name(node) -> str:
    return node.name or f"{node.op_type}({node.output[0]})"


# relative distance under which a float level counts as landing on an integer accumulator
_SNAP = 1e-9


def _levels_to_thresholds(a, b, bounds, lo: int, hi: int):
    """Integer levels of ``z = a * acc + b`` (per channel) against float bounds.

    ``bounds`` lists ``(c, strict)`` per level: the level is passed when ``z >= c`` (``z > c``
    when strict); c may be per channel. Returns (t of shape (n, L), flip) in the convention
    of :class:`hwgen.sw.ir.MultiThreshold`, clamped to ``[lo - 1, hi + 1]``.
    """
    n = a.shape[0]
    t = np.empty((n, len(bounds)), np.int64)
    for k, (c, strict) in enumerate(bounds):
        c = np.broadcast_to(np.asarray(c, np.float64), (n,))
        with np.errstate(divide="ignore", invalid="ignore"):
            r = (c - b) / a
            near = np.round(r)
            r = np.where(np.abs(r - near) <= _SNAP * np.maximum(1.0, np.abs(r)), near, r)
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


_ROUNDING = ("FLOOR", "CEIL", "ROUND", "HALF_EVEN", "HALF_UP", "HALF_DOWN")


def _quant_bounds(j: int, mode: str) -> tuple[float, bool]:
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


class _Activation:
    """A Quant / BipolarQuant node read as integer levels of its input and the codes' value."""

    def __init__(self, node, g: "_Graph"):
        name = _node_name(node)
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
        n = _bit_width(node, bits, "activation bit width", "")
        if _attr(node, "narrow", 0):
            raise CompileError(f"node {name}: narrow-range activation Quant is not supported")
        mode = _attr(node, "rounding_mode", "ROUND")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        if mode.upper() not in _ROUNDING:
            raise CompileError(f"node {name}: rounding mode {mode} is not one of "
                               f"{', '.join(_ROUNDING)}")
        s, z0 = s.item(), z0.item()
        qmin = -(1 << (n - 1)) if _attr(node, "signed", 1) else 0
        levels = (1 << n) - 1
        # code c = R(clamp(z / s + z0)) - qmin in 0..L, passing level k iff R(.) >= qmin + k
        self.bounds = []
        for k in range(1, levels + 1):
            c, strict = _quant_bounds(qmin + k, mode.upper())
            self.bounds.append((s * (c - z0), strict))
        self.out = ir.odd_type(n)
        # value (c + qmin - z0) s with c = (v + L) / 2, v the odd state
        self.alpha, self.beta = s / 2, s * (levels / 2 + qmin - z0)

    def _power_of_two(self, node, g: "_Graph") -> None:
        """``scale * h_n(z / scale)``, eq. 22's levels (the PowerOfTwoQuant of :mod:`hwgen.sw.core.onnx_ops`)."""
        name = _node_name(node)
        s = g.const(node, 1)
        n = _attr(node, "bits")
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
        t, flip = _levels_to_thresholds(a, b, self.bounds, lo, hi)
        return ir.MultiThreshold(t, flip, self.out)


class _Quantized:
    """A quantized tensor: codes of ``type`` whose float value is ``alpha * v + beta``."""

    def __init__(self, t: ir.TensorType, n: int, alpha=1.0, beta=0.0):
        self.type, self.n = t, n
        self.alpha = np.broadcast_to(np.asarray(alpha, np.float64), (n,)).copy()
        self.beta = np.broadcast_to(np.asarray(beta, np.float64), (n,)).copy()

    def affine(self, node, g: "_Graph") -> None:
        self.alpha, self.beta = _apply_affine(node, g, self.alpha, self.beta)


def _apply_affine(node, g: "_Graph", a: np.ndarray, b: np.ndarray):
    """``a * x + b`` after one BatchNormalization / Mul / Div / Add / Sub by constants."""
    op = node.op_type
    if op == "BatchNormalization":
        gamma, beta, mean, var = (g.const(node, i) for i in range(1, 5))
        k = gamma / np.sqrt(var + float(_attr(node, "epsilon", 1e-5)))
        return a * k, (b - mean) * k + beta
    c = g.const(node, 1)
    if c.size not in (1, a.size):
        raise CompileError(f"node {_node_name(node)}: constant of shape {c.shape} does not "
                           f"broadcast over {a.size} channels")
    c = np.broadcast_to(c.reshape(-1), a.shape)
    if op == "Mul":
        return a * c, b * c
    if op == "Div":
        return a / c, b / c
    if op == "Add":
        return a, b + c
    return a, b - c


class _OpenDense:
    """A dense layer whose accumulator has been computed and whose float tail is being tracked.

    The float output is ``a * acc + b`` per channel, ``acc`` the layer kind's accumulator.
    """

    def __init__(self, node, x: _Quantized, codes: np.ndarray, k_bits: int, scale: np.ndarray,
                 general: bool = False):
        name = _node_name(node)
        if general and x.type.digits:
            # an odd state v is stored as the unsigned code u = (v + L) / 2: integer weights
            # multiply the codes, whose value is 2 alpha u + beta - alpha L
            lm = (1 << x.type.digits) - 1
            x = _Quantized(ir.TensorType("unsigned", x.type.digits), x.n, 2 * x.alpha,
                           x.beta - x.alpha * lm)
        if not np.allclose(x.alpha, x.alpha[0], rtol=1e-12, atol=0) or x.alpha[0] == 0:
            raise CompileError(f"node {name}: its input has a different scale per element, "
                               "which no integer dot product can carry")
        self.name, self.in_type = name, x.type
        n_out, n_in = codes.shape
        digits = x.type.digits
        ws = np.broadcast_to(np.asarray(scale, np.float64), (n_out,))
        alpha, offset = x.alpha[0], ws * (codes.astype(np.float64) @ x.beta)
        lk = (1 << k_bits) - 1
        if general:
            # integer weights from a weight Quant: a multiply-accumulate of the integers
            if not x.type.is_integer:
                raise CompileError(f"node {name}: integer (Quant) weights need integer inputs, "
                                   f"not {x.type.kind}")
            self.kind = ir.DenseMAC
            self.layer_args = dict(weights=codes)
            self.a, self.b = alpha * ws, offset
        elif x.type.kind == "pow2" or np.any(codes % 2 == 0):
            # power-of-two weights, or power-of-two inputs: shift-accumulate on input values
            self.kind = ir.DenseShift
            if not ir.is_pow2_weight(codes).all():
                raise CompileError(f"node {name}: weights of odd multi-bit states need odd "
                                   f"or bipolar inputs, not {x.type.kind}")
            self.layer_args = dict(weights=codes)
            self.a, self.b = alpha * ws, offset
        elif digits == 0:
            if k_bits != 1:
                raise CompileError(f"node {name}: {k_bits}-bit weights need bipolar or odd "
                                   f"inputs, not {x.type.kind} (quantize the input first)")
            self.kind = ir.DenseIntBinW
            self.layer_args = dict(weights=(codes > 0).astype(np.uint8))
            self.a, self.b = alpha * ws, offset
        else:
            lm = (1 << digits) - 1
            self.kind = ir.DenseBinary if digits == 1 and k_bits == 1 else ir.DenseMBBN
            self.layer_args = dict(weights=((codes + lk) // 2).astype(np.uint8))
            if self.kind is ir.DenseMBBN:
                self.layer_args.update(m_bits=digits, k_bits=k_bits)
            # the state dot product is 2 acc - N L_M L_K (acc = P for dense_binary)
            self.a, self.b = 2 * alpha * ws, offset - alpha * ws * n_in * lm * lk

    def affine(self, node, g: "_Graph") -> None:
        self.a, self.b = _apply_affine(node, g, self.a, self.b)

    def close(self, act: _Activation) -> ir.Layer:
        if self.kind in (ir.DenseMBBN, ir.DenseShift, ir.DenseMAC):
            layer = self.kind(name=self.name, **self.layer_args)
            lo, hi = layer.acc_range(self.in_type)
            layer.threshold = act.multithreshold(self.a, self.b, lo, hi)
            return layer
        if act.out.kind == "bipolar":
            layer = self.kind(name=self.name, **self.layer_args)
            lo, hi = layer.acc_range(self.in_type)
            mt = act.multithreshold(self.a, self.b, lo, hi)
            layer.threshold = ir.Threshold(mt.t[:, 0], mt.flip)
            return layer
        if self.kind is ir.DenseBinary:
            # a binary layer with multi-bit outputs is the multi-branch layer of M = K = 1
            self.kind = ir.DenseMBBN
            self.layer_args.update(m_bits=1, k_bits=1)
            return self.close(act)
        # an add-subtract layer with multi-bit outputs is the shift layer of exponent 0: the
        # same accumulator (sum of +-x), so a and b carry over
        self.kind = ir.DenseShift
        self.layer_args = dict(weights=2 * self.layer_args["weights"].astype(np.int64) - 1)
        return self.close(act)

    def close_at_output(self) -> ir.Layer:
        a, b = self.a, self.b
        if self.kind is ir.DenseMAC and np.all(a == a[0]) and a[0] > 0:
            # the per-class offset becomes the layer's integer bias
            bias = b / a[0]
            if np.any(np.abs(bias - np.round(bias)) > _SNAP * np.maximum(1, np.abs(bias))):
                raise CompileError(f"layer {self.name}: its bias is not an integer number of "
                                   "accumulator steps, so it has no exact integer form")
            return self.kind(name=self.name, bias=np.round(bias).astype(np.int64),
                             **self.layer_args)
        if not (np.all(a == a[0]) and a[0] > 0 and np.all(b == b[0])):
            raise CompileError(f"layer {self.name}: the output's per-class scale or offset is "
                               "not one positive constant, so its argmax has no exact integer form")
        return self.kind(name=self.name, **self.layer_args)


def _weights(node, g: "_Graph") -> tuple[np.ndarray, int, np.ndarray, bool]:
    """(integer weights (out, in), K, positive scale per output, general) of a MatMul/Gemm
    weight.

    The integers are odd states (binary when K = 1), or 0 and +-2^e (shift weights, seed 004),
    or, from a QONNX weight ``Quant`` (``general``), any integers; K is the width of the
    largest."""
    name = node.input[1]
    src = g.producer.get(name)
    if src is not None and src.op_type == "Quant":
        codes, scale = _quant_weight(src, g)
        return _oriented(node, name, codes, scale) + (True,)
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
            raise CompileError(f"node {_node_name(node)}: weight {name} is not binary nor a "
                               f"scaled matrix of odd states or of 0 and powers of two (values "
                               f"{shown}, ...); quantize it with BipolarQuant, to odd "
                               "multi-bit states or to power-of-two levels")
    else:
        raise CompileError(f"node {_node_name(node)}: weight {name} must be a constant, or "
                           "BipolarQuant or Quant of a constant")
    return _oriented(node, name, codes, scale) + (False,)


def _quant_weight(src, g: "_Graph") -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and scale of a QONNX ``Quant`` of a weight initializer (zero point 0):
    ``clamp(round(w / scale))`` to the signed (narrow: symmetric) or unsigned range."""
    w, scale, zero, bits = (g.const(src, i) for i in range(4))
    name = _node_name(src)
    n = bits.item()
    if zero.size != 1 or zero.item() != 0 or np.any(scale <= 0):
        raise CompileError(f"node {name}: a weight Quant needs zero point 0 and positive scales")
    if n != int(n) or not 2 <= n <= 16:
        raise CompileError(f"node {name}: weight bit width {n:g} is not an integer from 2 to 16")
    n = int(n)
    if _attr(src, "signed", 1):
        lo, hi = -(1 << (n - 1)) + bool(_attr(src, "narrow", 0)), (1 << (n - 1)) - 1
    else:
        lo, hi = 0, (1 << n) - 1
    mode = _attr(src, "rounding_mode", "ROUND")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "ROUND":
        raise CompileError(f"node {name}: weight rounding mode {mode} is not supported (ROUND)")
    return np.clip(np.round(w / scale), lo, hi).astype(np.int64), scale


def _oriented(node, name: str, codes: np.ndarray, scale) -> tuple[np.ndarray, int, np.ndarray]:
    """Codes as (out, in) for a MatMul/Gemm, the width of the largest, the scale per output."""
    scale = np.asarray(scale, np.float64).reshape(-1)
    if np.any(scale <= 0):
        raise CompileError(f"node {_node_name(node)}: weight scale must be positive")
    if node.op_type == "MatMul":
        codes = codes.T
    elif node.op_type == "Gemm":
        if _attr(node, "transA", 0):
            raise CompileError(f"node {_node_name(node)}: Gemm with transA is not supported")
        if not _attr(node, "transB", 0):
            codes = codes.T
        scale = scale * float(_attr(node, "alpha", 1.0))
    if codes.ndim != 2:
        raise CompileError(f"node {_node_name(node)}: weight {name} must be a matrix")
    if scale.size not in (1, codes.shape[0]):
        raise CompileError(f"node {_node_name(node)}: weight scale has {scale.size} entries "
                           f"for {codes.shape[0]} outputs")
    k_bits = max(1, int(np.abs(codes).max()).bit_length())
    return codes.astype(np.int64), k_bits, scale


def _integers(v: np.ndarray, step: float, what: str, node) -> np.ndarray:
    """``v / step`` as int64, or a CompileError when some value is off the grid."""
    r = v / step
    codes = np.round(r)
    if np.any(np.abs(r - codes) > _SNAP * np.maximum(1, np.abs(r))):
        raise CompileError(f"node {_node_name(node)}: {what} is not a multiple of the input "
                           f"step {step:g}, so x + w is no integer add")
    return codes.astype(np.int64)


def _sum_and_max(node, g: "_Graph", x: _Quantized) -> ir.SAMLayer:
    """The ``sam`` layer of a ``SumAndMax`` node on integers of one scale (module docs)."""
    name = _node_name(node)
    step = x.alpha[0]
    if not np.all(x.alpha == step) or step <= 0 or np.any(x.beta != 0):
        raise CompileError(f"node {name}: its input needs one positive scale and no offset")
    w, fill = g.const(node, 1), g.const(node, 2)
    reduces = [r.decode() if isinstance(r, bytes) else r for r in _attr(node, "reduces", [])]
    signs = list(_attr(node, "signs", []))
    if w.ndim != 3 or w.shape[2] != x.n or fill.shape != w.shape[:2] or \
            len(reduces) != len(w) or len(signs) != len(w):
        raise CompileError(f"node {name}: needs weights (terms, m, {x.n}), fill (terms, m) and "
                           "one reduce and sign per term")
    terms = []
    for k, (reduce, sign) in enumerate(zip(reduces, signs)):
        if reduce not in ir.SAM_REDUCES or sign not in (1, -1):
            raise CompileError(f"node {name}: term {k} must reduce by max or min with sign "
                               f"+-1, not {reduce!r}, {sign!r}")
        keep = np.isfinite(w[k])
        never = np.inf if reduce == "max" else -np.inf
        if np.any(w[k] == never) or np.isnan(w[k]).any():
            raise CompileError(f"node {name}: term {k} holds {never} or NaN weights; a pruned "
                               f"entry of a {reduce} term is {-never}")
        codes = _integers(np.where(keep, w[k], 0.0), step, f"a weight of term {k}", node)
        empty = ~keep.any(axis=1)
        fills = _integers(np.where(empty, fill[k], 0.0), step, f"a fill of term {k}", node)
        terms.append(ir.SAMTerm(reduce, int(sign), codes, keep, fills))
    return ir.SAMLayer(name=name, n=x.n, terms=terms)


def _qam_slicer(node, g: "_Graph", x: _Quantized | None, open_dense: "_OpenDense | None",
                layers: list) -> tuple[ir.QAMSlicer, _Quantized]:
    """The ``qam_slicer`` layer of a ``QAMSlicer`` node (module docs), and its output tensor;
    a ``dense_mac`` layer open in front of it is closed into ``layers`` first."""
    name = _node_name(node)
    order, delta = int(_attr(node, "order", 0)), float(_attr(node, "delta", 1.0))
    if open_dense is not None:
        a = open_dense.a
        if open_dense.kind is not ir.DenseMAC or not (np.all(a == a[0]) and a[0] > 0):
            raise CompileError(f"node {name}: a QAMSlicer can follow a layer of Quant weights "
                               "with one positive scale, or an integer tensor")
        layers.append(open_dense.close_at_output())
        in_type = layers[-1].acc_type(open_dense.in_type)
        n, step = len(a), a[0]
    elif x is not None and x.type.is_integer:
        n, step = x.n, x.alpha[0]
        if not np.all(x.alpha == step) or step <= 0 or np.any(x.beta != 0):
            raise CompileError(f"node {name}: its input needs one positive scale and no offset")
        in_type = x.type
    else:
        raise CompileError(f"node {name}: QAMSlicer must follow an integer tensor or a layer "
                           "of Quant weights")
    if n % 2:
        raise CompileError(f"node {name}: a QAM slicer takes complex elements in block layout "
                           f"(real parts, then imaginary parts), so an even width, not {n}")
    try:
        layer = ir.QAMSlicer.for_grid(name, n // 2, order, delta, step, output="value")
    except ValueError as e:             # its message starts with the node's name
        raise CompileError(f"node {e}") from None
    return layer, _Quantized(layer.out_type(in_type), n, delta / (layer.levels - 1))


def _input_type(node, g: _Graph) -> tuple[ir.TensorType, float]:
    """The input codes' type and the float value of one step."""
    scale, zero, bits = (g.const(node, i) for i in range(1, 4))
    if scale.size != 1 or not scale.item() > 0 or zero.size != 1 or zero.item() != 0:
        raise CompileError(f"node {_node_name(node)}: the input Quant must have one positive "
                           "scale and zero point 0 (integer inputs)")
    nbits = _bit_width(node, bits, "input bit width", " (one UART byte per element)")
    return ir.TensorType("signed" if _attr(node, "signed", 1) else "unsigned", nbits), \
        float(scale.item())


def compile_onnx(source) -> ir.Model:
    """Lower an ONNX model (a path or a ModelProto) to a checked :class:`hwgen.sw.ir.Model`."""
    model = source if isinstance(source, onnx.ModelProto) else load_onnx(source)
    g = _Graph(model)
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise CompileError(f"the graph must have one input and one output, not "
                           f"{len(g.inputs)} and {len(g.outputs)}")
    tensor = g.inputs[0]
    first = g.next_node(tensor)
    if first is None or first.op_type != "Quant":
        raise CompileError(f"graph input {tensor} must feed a Quant node that makes it integer")
    in_type, in_step = _input_type(first, g)
    n_in = _input_width(model, tensor)
    tensor = first.output[0]

    layers: list[ir.Layer] = []
    quantized: _Quantized | None = _Quantized(in_type, n_in, in_step)  # None inside a layer
    open_dense: _OpenDense | None = None
    while (node := g.next_node(tensor)) is not None:
        op, name = node.op_type, _node_name(node)
        if op in _PASSTHROUGH:
            pass
        elif op in ("MatMul", "Gemm"):
            if quantized is None:
                raise CompileError(f"node {name}: its input is not quantized; put a "
                                   "BipolarQuant (sign) or Quant before it")
            codes, k_bits, scale, general = _weights(node, g)
            if codes.shape[1] != quantized.n:
                raise CompileError(f"node {name}: weight has {codes.shape[1]} inputs, its input "
                                   f"tensor {quantized.n} elements")
            open_dense = _OpenDense(node, quantized, codes, k_bits, scale, general)
            if op == "Gemm" and len(node.input) > 2 and node.input[2]:
                open_dense.b = open_dense.b + float(_attr(node, "beta", 1.0)) * \
                    np.broadcast_to(g.const(node, 2).reshape(-1), open_dense.b.shape)
            quantized = None
        elif (op, node.domain) == ("SumAndMax", HWGEN_DOMAIN):
            if quantized is None or not quantized.type.is_integer:
                raise CompileError(f"node {name}: SumAndMax must follow an integer tensor")
            layer = _sum_and_max(node, g, quantized)
            layers.append(layer)
            quantized = _Quantized(layer.out_type(quantized.type), layer.n_out,
                                   quantized.alpha[0])
        elif (op, node.domain) == ("QAMSlicer", HWGEN_DOMAIN):
            layer, quantized = _qam_slicer(node, g, quantized, open_dense, layers)
            layers.append(layer)
            open_dense = None
        elif op in _AFFINE:
            if open_dense is not None:
                open_dense.affine(node, g)
            elif op == "BatchNormalization" or quantized is None:
                raise CompileError(f"node {name}: {op} must follow a MatMul/Gemm or scale a "
                                   "quantized tensor")
            else:
                quantized.affine(node, g)
        elif op in ("BipolarQuant", "Quant") or (op, node.domain) == ("PowerOfTwoQuant",
                                                                       HWGEN_DOMAIN):
            act = _Activation(node, g)
            if open_dense is not None:
                layers.append(open_dense.close(act))
                n = open_dense.a.shape[0]
            elif quantized is not None and quantized.type.is_integer:
                # an element-wise requantization of integers: the accumulator is the element
                n = quantized.n
                mt = act.multithreshold(quantized.alpha, quantized.beta,
                                        quantized.type.lo, quantized.type.hi)
                layers.append(ir.MultiThresholdLayer(name=name, threshold=mt))
            else:
                raise CompileError(f"node {name}: {op} must follow a MatMul/Gemm or an integer "
                                   "tensor")
            open_dense, quantized = None, _Quantized(act.out, n, act.alpha, act.beta)
        else:
            raise CompileError(f"node {name}: unsupported op {op}"
                               + (f" (domain {node.domain})" if node.domain else ""))
        tensor = node.output[0]

    if tensor != g.outputs[0]:
        raise CompileError(f"tensor {tensor} ends the chain but is not the graph output")
    if open_dense is not None:
        # a classifier's logits: the hardware emits the class, the argmax of the accumulators
        layers.append(open_dense.close_at_output())
        if layers[-1].n_out > 1:
            layers.append(ir.ArgMax(name="argmax", n=layers[-1].n_out))
    elif not layers:
        raise CompileError("the graph holds no layer")
    _integer_codes_for_mac(layers)
    try:
        return ir.Model(in_type, n_in, layers, meta={"source": model.graph.name}).check()
    except ValueError as e:
        raise CompileError(str(e)) from None


def _integer_codes_for_mac(layers: list[ir.Layer]) -> None:
    """A multi-threshold feeding a ``dense_mac`` layer emits its codes as unsigned integers
    (the odd state's offset code u is the integer the MAC's weights multiply, see
    :class:`_OpenDense`)."""
    for prev, layer in zip(layers, layers[1:]):
        th = getattr(prev, "threshold", None)
        if layer.kind == ir.DenseMAC.kind and isinstance(th, ir.MultiThreshold) and \
                th.out.digits:
            prev.threshold = ir.MultiThreshold(th.t, th.flip,
                                               ir.TensorType("unsigned", th.out.digits))


def _input_width(model: onnx.ModelProto, name: str) -> int:
    for vi in model.graph.input:
        if vi.name == name:
            dims = vi.type.tensor_type.shape.dim
            if dims and dims[-1].HasField("dim_value") and dims[-1].dim_value > 0:
                return int(dims[-1].dim_value)
    raise CompileError(f"graph input {name} must have a fixed last dimension (its width)")
