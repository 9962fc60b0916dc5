"""The integer layer IR: the contract between the compiler, the golden model and the hardware.

Every tensor is a flat vector of integers with a :class:`TensorType`. Conventions that could
differ between implementations are fixed here, once:

* **Bipolar encoding.** A bipolar element is stored as one bit ``b``; its value is ``2*b - 1``
  (bit 1 means +1, bit 0 means -1). A binary weight is encoded the same way.
* **Odd (multi-branch) encoding.** An ``odd`` element of M bits is an odd state
  ``q`` in ``[-(2^M - 1), 2^M - 1]`` (seed 003, eq. 7), stored as its offset code
  ``u = (q + 2^M - 1) / 2`` in ``0 .. 2^M - 1``. Bit m of ``u`` is the bipolar digit of weight
  2^m, so ``q = sum_m 2^m (2 u_m - 1)``; a bipolar element is the odd element of one bit, and
  is always spelled ``bipolar``. K-bit multi-branch weights are stored the same way.
* **Power-of-two encoding.** A ``pow2`` element of n bits (seed 004, eq. 22) takes one of
  the ``2q + 1 = 2^n - 1`` levels ``{0, +-2^-p : p = 0 .. q-1}``, ``q = 2^(n-1) - 1``, scaled
  by ``2^(q-1)`` to the integers ``{0, +-1, +-2, .., +-2^(q-1)}`` (ternary -1/0/+1 for n = 2).
  It is stored as its ordinal code ``c`` in ``0 .. 2q``, the number of levels below it: with
  ``j = c - q`` the value is ``sign(j) 2^(|j| - 1)``, and 0 for ``j = 0``. The code is what a
  multi-threshold emits; ``TensorType.values`` turns codes into the integers a layer sums.
* **sign(0) = +1.** Every binarization maps 0 to +1 (QONNX ``BipolarQuant`` does the same).
* **xnor-popcount.** For bipolar ``x`` and ``w`` of length N, ``P = popcount(xnor(x, w))`` counts
  the positions where they agree, and the bipolar dot product is ``2*P - N``.
* **Thresholds.** A thresholded layer emits bit 1 for output j iff ``acc_j >= t_j`` (``flip_j``
  false) or ``acc_j <= t_j`` (``flip_j`` true), where ``acc`` is the layer's integer accumulator
  (the popcount P for bipolar inputs, the signed sum for integer inputs). Equality counts as a 1,
  which is sign(0) = +1 after batch norm. Thresholds are clamped to ``[acc_lo - 1, acc_hi + 1]``,
  so a channel that is constant keeps a bounded threshold.
* **Multi-thresholds.** A multi-threshold with L levels emits, per output j, the count
  ``u_j = #{l : acc_j >= t_jl}`` (or ``#{l : acc_j <= t_jl}`` when ``flip_j``), a code in
  ``0 .. L``; rows are sorted (ascending, or descending when flipped) so the count is the index
  of the interval holding ``acc_j``. Equality counts as passing the level, as for thresholds.
  The code is the storage of the output type (unsigned, or odd with L = 2^M - 1).
* **QAM slicer** (seed 000, §2.3). A ``qam_slicer`` layer of ``n`` complex elements takes the
  block layout ``[Re z_0 .. Re z_{n-1}, Im z_0 .. Im z_{n-1}]`` (the layout of a complex
  layer's real embedding ``[[A, -B], [B, A]]``) and slices every element on its own against
  one ascending row of ``M - 1`` integer decision boundaries, ``M = sqrt(order)`` levels per
  axis: the code is ``#{i : x >= b_i}``, so an input **on a boundary goes to the upper level**
  (equality passes, as for thresholds) and inputs beyond the outer boundaries saturate to the
  outer levels. The code is the level index ``0 .. M - 1``; the ``value`` output reads the same
  code as the odd state ``2 * code - (M - 1)``, the constellation level in units of half its
  spacing (``bipolar`` for 4-QAM).
* **Argmax ties** go to the lowest index (as ``numpy.argmax`` and ``torch.argmax``).
* **Sum-and-Max** (seed 002, eq. 5). A ``sam`` term of output j is ``max_i (x_i + w_ji)`` (or
  ``min``) over the *kept* entries of row j only: a pruned entry is absent (-inf for a max,
  +inf for a min), not a large number. A row with no kept entry has the constant value
  ``fill_j``. Inputs and weights are integers on one grid (the input's scale), so ``x + w`` is
  an integer add; which entry attains a max or min does not change the value, so ties need no
  rule. Quantizing a trained layer to that grid (:mod:`hwgen.sw.sam_lower`) rounds half to
  even and saturates inputs to the input type; nothing saturates inside the layer.
* **Multiply-accumulate.** ``dense_mac`` is ``acc_j = sum_i w_ji x_i + b_j`` on integer
  inputs with signed integer weights of at most 16 bits and an integer bias, exactly.
* **No saturation anywhere.** Accumulator widths come from exact bounds over the actual weights,
  so no sum can overflow.
* **Stream packing.** A vector travels as one stream payload; element i occupies bits
  ``[i*w, (i+1)*w)`` of it, w being the element type's width (two's complement when signed;
  the offset code when odd). ``TensorType.lo`` / ``hi`` bound the stored codes.

Layer kinds register themselves in :data:`LAYER_KINDS`; the golden model, the hardware
generators and the resource estimator each keep a registry keyed by the same ``kind`` string.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

__all__ = [
    "TensorType", "Threshold", "MultiThreshold", "Layer", "DenseIntBinW", "DenseBinary",
    "DenseMBBN", "MultiThresholdLayer", "ArgMax", "Model", "LAYER_KINDS", "IRFormatError",
    "DenseShift", "signed_bits", "unsigned_bits", "odd_type", "pow2_type", "SAMTerm", "SAMLayer",
    "SAM_REDUCES", "DenseMAC", "QAMSlicer", "QAM_ORDERS",
]

IR_VERSION = 1


class IRFormatError(ValueError):
    """A serialized IR that cannot be read back."""


def unsigned_bits(hi: int) -> int:
    """Width of an unsigned integer holding 0..hi."""
    return max(1, int(hi).bit_length())


def signed_bits(lo: int, hi: int) -> int:
    """Width of a two's complement integer holding lo..hi."""
    lo, hi = int(lo), int(hi)
    n = 1
    while not (-(1 << (n - 1)) <= lo and hi <= (1 << (n - 1)) - 1):
        n += 1
    return n


@dataclass(frozen=True)
class TensorType:
    """Element type of a vector: ``bipolar`` (1 bit, -1/+1), ``odd`` (M-bit odd states),
    ``pow2`` (n-bit power-of-two levels; see the module docs for both), ``unsigned`` or
    ``signed`` of ``bits``."""

    kind: str
    bits: int

    def __post_init__(self):
        if self.kind not in ("bipolar", "odd", "pow2", "unsigned", "signed"):
            raise ValueError(f"tensor kind must be bipolar, odd, pow2, unsigned or signed, "
                             f"not {self.kind!r}")
        if self.bits < 1 or (self.kind == "bipolar" and self.bits != 1) or \
                (self.kind == "odd" and self.bits < 2) or \
                (self.kind == "pow2" and not 2 <= self.bits <= 6):
            raise ValueError(f"bad width {self.bits!r} for a {self.kind} tensor")

    @property
    def digits(self) -> int:
        """Bipolar digits per element (M) of a bipolar or odd type; 0 for other types."""
        return self.bits if self.kind in ("bipolar", "odd") else 0

    @property
    def is_integer(self) -> bool:
        """Whether a stored code is its own value (unsigned and signed types)."""
        return self.kind in ("unsigned", "signed")

    def values(self, codes: np.ndarray) -> np.ndarray:
        """The integer values of stored ``codes``: odd states for bipolar and odd types, the
        scaled power-of-two levels for pow2, the codes themselves for integer types."""
        codes = np.asarray(codes, dtype=np.int64)
        if self.digits:
            return 2 * codes - self.hi
        if self.kind == "pow2":
            j = codes - self.hi // 2
            return np.sign(j) * np.left_shift(1, np.maximum(np.abs(j) - 1, 0))
        return codes

    @property
    def value_range(self) -> tuple[int, int]:
        """(smallest, largest) value of the type."""
        lo, hi = self.values(np.array([self.lo, self.hi]))
        return int(lo), int(hi)

    @classmethod
    def for_range(cls, lo: int, hi: int) -> "TensorType":
        if lo >= 0:
            return cls("unsigned", unsigned_bits(hi))
        return cls("signed", signed_bits(lo, hi))

    @property
    def lo(self) -> int:
        """Smallest stored code."""
        return -(1 << (self.bits - 1)) if self.kind == "signed" else 0

    @property
    def hi(self) -> int:
        """Largest stored code (``2q`` for pow2, whose top code ``2^n - 1`` is unused)."""
        if self.kind == "signed":
            return (1 << (self.bits - 1)) - 1
        return (1 << self.bits) - 1 - (self.kind == "pow2")

    def to_json(self) -> str:
        return "bipolar" if self.kind == "bipolar" else f"{self.kind[0]}{self.bits}"

    @classmethod
    def from_json(cls, s: str) -> "TensorType":
        if s == "bipolar":
            return cls("bipolar", 1)
        if len(s) > 1 and s[0] in "usop" and s[1:].isdigit():
            try:
                return cls({"u": "unsigned", "s": "signed", "o": "odd", "p": "pow2"}[s[0]],
                           int(s[1:]))
            except ValueError:
                pass
        raise IRFormatError(f"unknown tensor type {s!r}")


def odd_type(digits: int) -> TensorType:
    """The type of M-digit odd states: ``bipolar`` for one digit, ``odd`` otherwise."""
    return TensorType("bipolar", 1) if digits == 1 else TensorType("odd", digits)


def pow2_type(bits: int) -> TensorType:
    """The type of n-bit power-of-two levels (eq. 22): ``bipolar`` (sign, eq. 4) for one bit."""
    return TensorType("bipolar", 1) if bits == 1 else TensorType("pow2", bits)


@dataclass
class Threshold:
    """Per-output comparison turning an accumulator into a bipolar bit (see module docs)."""

    t: np.ndarray      # int64, one per output
    flip: np.ndarray   # bool, one per output: compare with <= instead of >=

    def __post_init__(self):
        self.t = np.asarray(self.t, dtype=np.int64)
        self.flip = np.asarray(self.flip, dtype=bool)
        if self.t.shape != self.flip.shape or self.t.ndim != 1:
            raise ValueError("threshold t and flip must be vectors of one length")

    @property
    def out(self) -> "TensorType":
        """The type of the emitted bits: bipolar."""
        return TensorType("bipolar", 1)

    def apply(self, acc: np.ndarray) -> np.ndarray:
        return np.where(self.flip, acc <= self.t, acc >= self.t).astype(np.int64)

    def clamp(self, lo: int, hi: int) -> "Threshold":
        return Threshold(np.clip(self.t, lo - 1, hi + 1), self.flip)

    def to_json(self) -> dict:
        return {"t": self.t.tolist(), "flip": "".join("1" if f else "0" for f in self.flip)}

    @classmethod
    def from_json(cls, d: dict) -> "Threshold":
        return cls(np.array(d["t"], dtype=np.int64), np.array([c == "1" for c in d["flip"]]))


@dataclass
class MultiThreshold:
    """Per-output multi-threshold: accumulator -> code in 0..L of ``out`` (see module docs).

    Members
    -------
    t : numpy.ndarray
        int64 (n, L), each row sorted ascending, or descending where ``flip``.
    flip : numpy.ndarray
        bool (n,): count the levels with ``acc <= t`` instead of ``acc >= t``.
    out : TensorType
        Type of the emitted codes; ``L == out.hi`` (one level per code above 0).
    """

    t: np.ndarray
    flip: np.ndarray
    out: TensorType

    def __post_init__(self):
        self.t = np.asarray(self.t, dtype=np.int64)
        self.flip = np.asarray(self.flip, dtype=bool)
        if self.t.ndim != 2 or self.flip.shape != self.t.shape[:1]:
            raise ValueError("multi-threshold t must be (n, L) and flip (n,)")
        if self.out.kind == "signed" or self.t.shape[1] != self.out.hi:
            raise ValueError(f"{self.t.shape[1]} levels cannot emit codes of type "
                             f"{self.out.to_json()}")
        steps = np.diff(self.t, axis=1)
        if np.any(np.where(self.flip[:, None], steps > 0, steps < 0)):
            raise ValueError("multi-threshold rows must be sorted (descending where flipped)")

    @property
    def levels(self) -> int:
        return self.t.shape[1]

    def apply(self, acc: np.ndarray) -> np.ndarray:
        acc = np.asarray(acc, dtype=np.int64)[..., None]
        passed = np.where(self.flip[:, None], acc <= self.t, acc >= self.t)
        return passed.sum(axis=-1, dtype=np.int64)

    def clamp(self, lo: int, hi: int) -> "MultiThreshold":
        return MultiThreshold(np.clip(self.t, lo - 1, hi + 1), self.flip, self.out)

    def to_json(self) -> dict:
        return {"t": self.t.tolist(), "flip": "".join("1" if f else "0" for f in self.flip),
                "out": self.out.to_json()}

    @classmethod
    def from_json(cls, d: dict) -> "MultiThreshold":
        return cls(np.array(d["t"], dtype=np.int64).reshape(len(d["flip"]), -1),
                   np.array([c == "1" for c in d["flip"]]), TensorType.from_json(d["out"]))


LAYER_KINDS: dict[str, type["Layer"]] = {}


def register_kind(cls):
    LAYER_KINDS[cls.kind] = cls
    return cls


@dataclass
class Layer:
    """Base of all layer kinds. ``name`` is the ONNX node (or layer) it came from."""

    kind = "layer"
    name: str

    @property
    def n_in(self) -> int:
        raise NotImplementedError

    @property
    def n_out(self) -> int:
        raise NotImplementedError

    def out_type(self, in_type: TensorType) -> TensorType:
        raise NotImplementedError

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        """Exact (lo, hi) of the accumulator over all inputs of ``in_type``."""
        raise NotImplementedError

    def acc_type(self, in_type: TensorType) -> TensorType:
        return TensorType.for_range(*self.acc_range(in_type))

    def to_json(self) -> dict:
        raise NotImplementedError


@dataclass
class _MatrixLayer(Layer):
    """A dense layer: a weight matrix (n_out, n_in) and an optional :class:`Threshold` or
    :class:`MultiThreshold` (None: the layer emits its accumulator)."""

    weights: np.ndarray = field(default=None)
    threshold: Threshold | MultiThreshold | None = None
    _threshold_cls = MultiThreshold
    _json_keys = ()          # integer members beyond weights and threshold, for from_json

    def _check_threshold(self) -> None:
        if self.threshold is not None and self.threshold.t.shape[0] != self.n_out:
            raise ValueError(f"{self.name}: {self.threshold.t.shape[0]} thresholds for "
                             f"{self.n_out} outputs")

    @property
    def n_in(self) -> int:
        return self.weights.shape[1]

    @property
    def n_out(self) -> int:
        return self.weights.shape[0]

    def out_type(self, in_type: TensorType) -> TensorType:
        return self.acc_type(in_type) if self.threshold is None else self.threshold.out

    def to_json(self) -> dict:
        d = {"kind": self.kind, "name": self.name, "n_in": self.n_in, "n_out": self.n_out,
             **{k: getattr(self, k) for k in self._json_keys},
             "weights": self._weights_to_json()}
        if self.threshold is not None:
            d["threshold"] = self.threshold.to_json()
        return d

    def _weights_to_json(self):
        return self.weights.tolist()

    @classmethod
    def _weights_from_json(cls, rows) -> np.ndarray:
        return np.array(rows, dtype=np.int64)

    @classmethod
    def from_json(cls, d: dict) -> "_MatrixLayer":
        th = cls._threshold_cls.from_json(d["threshold"]) if "threshold" in d else None
        return cls(name=d["name"], weights=cls._weights_from_json(d["weights"]), threshold=th,
                   **{k: int(d[k]) for k in cls._json_keys})


@dataclass
class _Dense(_MatrixLayer):
    """Binary weights (uint8, 1 means +1) and an optional one-level :class:`Threshold`."""

    _threshold_cls = Threshold

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=np.uint8)
        if self.weights.ndim != 2 or not np.isin(self.weights, (0, 1)).all():
            raise ValueError(f"{self.name}: binary weights must be a 0/1 matrix")
        if self.threshold is not None and self.threshold.t.ndim != 1:
            raise ValueError(f"{self.name}: a binary layer takes a one-level threshold")
        self._check_threshold()

    def _weights_to_json(self):
        # one readable string per output neuron: '+' for weight +1, '-' for weight -1
        return ["".join("+" if b else "-" for b in row) for row in self.weights]

    @classmethod
    def _weights_from_json(cls, rows) -> np.ndarray:
        if any(set(r) - set("+-") for r in rows):
            raise IRFormatError("binary weight rows may hold only '+' and '-'")
        return np.array([[c == "+" for c in r] for r in rows], dtype=np.uint8)


@register_kind
@dataclass
class DenseIntBinW(_Dense):
    """Binary-weight dense layer on integer inputs: ``acc_j = sum_i (2 w_ji - 1) * x_i``.

    The first layer of a binary network, fed with quantized pixels ("XNOR ADDER"): every
    product is +x or -x, so the hardware only adds and subtracts.
    """

    kind = "dense_int_binw"

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        if not in_type.is_integer:
            raise ValueError(f"{self.name}: dense_int_binw takes integer inputs, "
                             f"not {in_type.kind}")
        plus = self.weights.astype(np.int64).sum(axis=1)
        minus = self.n_in - plus
        hi = plus * in_type.hi - minus * in_type.lo
        lo = plus * in_type.lo - minus * in_type.hi
        return int(lo.min()), int(hi.max())


@register_kind
@dataclass
class DenseBinary(_Dense):
    """xnor-popcount dense layer on bipolar inputs: ``acc_j = popcount(xnor(x, w_j))`` in 0..N."""

    kind = "dense_binary"

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        if in_type.kind != "bipolar":
            raise ValueError(f"{self.name}: dense_binary takes bipolar inputs, not {in_type.kind}")
        return 0, self.n_in


@register_kind
@dataclass
class DenseMBBN(_MatrixLayer):
    """Multi-branch binary dense layer (seed 003): M-bit odd inputs, K-bit odd weights.

    With input digits ``c_m`` and weight digits ``d_k`` (bit m of the codes, module docs), the
    accumulator is the weighted sum of the M * K branch popcounts (eq. 8)::

        acc_j = sum_{m,k} 2^(m+k) popcount(xnor(c_m, d_jk))       in 0 .. N (2^M - 1)(2^K - 1)

    and the dot product of the states is ``sum_i q_i w_ji = 2 acc_j - N (2^M - 1)(2^K - 1)``,
    as the popcount P of ``dense_binary`` gives ``2 P - N`` (that kind is this one at M = K = 1).
    An optional :class:`MultiThreshold` turns the accumulator into the next layer's codes.

    Members
    -------
    weights : numpy.ndarray
        uint8 (n_out, n_in) offset codes of the K-bit weight states.
    m_bits : int
        M, the digits of an input (the input type is ``odd_type(m_bits)``).
    k_bits : int
        K, the digits of a weight.
    threshold : MultiThreshold or None
        None: emit the accumulator.
    """

    kind = "dense_mbbn"
    m_bits: int = 1
    k_bits: int = 1
    _json_keys = ("m_bits", "k_bits")

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=np.uint8)
        for what, bits in (("input digits M", self.m_bits), ("weight digits K", self.k_bits)):
            if not isinstance(bits, int) or not 1 <= bits <= 8:
                raise ValueError(f"{self.name}: {what} must lie in 1..8, not {bits!r}")
        if self.weights.ndim != 2 or self.weights.max(initial=0) >= 1 << self.k_bits:
            raise ValueError(f"{self.name}: weights must be a matrix of {self.k_bits}-bit codes")
        self._check_threshold()

    def weight_values(self) -> np.ndarray:
        """(n_out, n_in) int64 weight states ``2 u - (2^K - 1)``."""
        return odd_type(self.k_bits).values(self.weights)

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        if in_type != odd_type(self.m_bits):
            raise ValueError(f"{self.name}: dense_mbbn with M = {self.m_bits} takes "
                             f"{odd_type(self.m_bits).to_json()} inputs, not {in_type.to_json()}")
        lm, lk = (1 << self.m_bits) - 1, (1 << self.k_bits) - 1
        # the dot product of row j lies in +-L_M sum|w_j|, both ends reached by x = +-L_M sign(w)
        reach = lm * np.abs(self.weight_values()).sum(axis=1)
        mid = self.n_in * lm * lk
        return int((mid - reach.max()) // 2), int((mid + reach.max()) // 2)


def is_pow2_weight(w: np.ndarray) -> np.ndarray:
    """Elementwise: is each integer 0 or +-2^e?"""
    a = np.abs(np.asarray(w, dtype=np.int64))
    return (a & (a - 1)) == 0


@register_kind
@dataclass
class DenseShift(_MatrixLayer):
    """Shift-accumulate dense layer (seed 004): power-of-two weights on integer-valued inputs.

    Every weight is 0 or ``+-2^e`` (the scaled levels of eq. 21-22, ternary when all ``e`` are
    0), and the accumulator is the exact integer sum of the products with the input *values*
    (``TensorType.values``: pow2 levels, bipolar or odd states, or plain integers)::

        acc_j = sum_i w_ji * value(x_i)

    Each product is the input shifted by ``e`` and added or subtracted, or skipped where the
    weight is 0; two powers of two multiply into one shift. An optional
    :class:`MultiThreshold` turns the accumulator into the next layer's codes.

    Members
    -------
    weights : numpy.ndarray
        int64 (n_out, n_in), each 0 or +-2^e with e in 0..15.
    threshold : MultiThreshold or None
        None: emit the accumulator.
    """

    kind = "dense_shift"

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=np.int64)
        if self.weights.ndim != 2 or not is_pow2_weight(self.weights).all() or \
                np.abs(self.weights).max(initial=0) > 1 << 15:
            raise ValueError(f"{self.name}: shift weights must be a matrix of 0 and +-2^e, "
                             "e in 0..15")
        self._check_threshold()

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        vlo, vhi = in_type.value_range
        w = self.weights
        hi = np.maximum(w * vlo, w * vhi).sum(axis=1)
        lo = np.minimum(w * vlo, w * vhi).sum(axis=1)
        return int(lo.min(initial=0)), int(hi.max(initial=0))


SAM_REDUCES = ("max", "min")


def _integer_input(layer: Layer, in_type: TensorType) -> None:
    if not in_type.is_integer:
        raise ValueError(f"{layer.name}: {layer.kind} takes integer inputs, not {in_type.kind}")


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
        _integer_input(self, in_type)
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


@register_kind
@dataclass
class DenseMAC(_MatrixLayer):
    """Integer multiply-accumulate dense layer: ``acc_j = sum_i w_ji x_i + b_j``.

    The general dense layer of quantized networks (e.g. the 8-bit output layer after a SAM
    layer); hardware multiplies in DSP blocks or in LUTs. An optional :class:`MultiThreshold`
    turns the accumulator (bias included) into the next layer's codes.

    Members
    -------
    weights : numpy.ndarray
        int64 (n_out, n_in), each in -2^15 .. 2^15 - 1.
    bias : numpy.ndarray
        int64 (n_out,).
    threshold : MultiThreshold or None
        None: emit the accumulator.
    """

    kind = "dense_mac"
    bias: np.ndarray = None

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=np.int64)
        if self.weights.ndim != 2 or self.weights.min(initial=0) < -(1 << 15) or \
                self.weights.max(initial=0) >= 1 << 15:
            raise ValueError(f"{self.name}: MAC weights must be a matrix of 16-bit signed "
                             "integers")
        self.bias = np.zeros(self.n_out, np.int64) if self.bias is None else \
            np.asarray(self.bias, dtype=np.int64)
        if self.bias.shape != (self.n_out,):
            raise ValueError(f"{self.name}: {self.bias.shape} bias for {self.n_out} outputs")
        self._check_threshold()

    @property
    def weight_type(self) -> TensorType:
        """The narrowest signed type holding every weight."""
        return TensorType("signed", signed_bits(min(0, self.weights.min(initial=0)),
                                                max(0, self.weights.max(initial=0))))

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        _integer_input(self, in_type)
        w = self.weights
        hi = np.maximum(w * in_type.lo, w * in_type.hi).sum(axis=1) + self.bias
        lo = np.minimum(w * in_type.lo, w * in_type.hi).sum(axis=1) + self.bias
        return int(lo.min(initial=0)), int(hi.max(initial=0))

    def to_json(self) -> dict:
        return {**super().to_json(), "bias": self.bias.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "DenseMAC":
        layer = super().from_json(d)
        layer.bias = np.array(d["bias"], dtype=np.int64)
        layer.__post_init__()
        return layer


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
        The ``sqrt(order) - 1`` decision boundaries in input codes, strictly ascending, shared
        by both axes and every element.
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
                any(b >= c for b, c in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"{self.name}: {self.order}-QAM needs {self.levels - 1} strictly "
                             f"ascending boundaries, not {list(self.boundaries)}")
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
        d, s = Fraction(float(delta)), Fraction(float(scale))
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
        _integer_input(self, in_type)
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
        if step & (step - 1) or any(c - a != step for a, c in zip(b, b[1:])):
            return None
        return b[0], step.bit_length() - 1

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "n": self.n, "order": self.order,
                "boundaries": list(self.boundaries), "output": self.output}

    @classmethod
    def from_json(cls, d: dict) -> "QAMSlicer":
        return cls(name=d["name"], n=int(d["n"]), order=int(d["order"]),
                   boundaries=tuple(d["boundaries"]), output=d["output"])


@register_kind
@dataclass
class ArgMax(Layer):
    """Index of the largest element, ties to the lowest index."""

    kind = "argmax"
    n: int = 0

    @property
    def n_in(self) -> int:
        return self.n

    @property
    def n_out(self) -> int:
        return 1

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        return 0, self.n - 1

    def out_type(self, in_type: TensorType) -> TensorType:
        return TensorType("unsigned", unsigned_bits(self.n - 1))

    def to_json(self) -> dict:
        return {"kind": self.kind, "name": self.name, "n": self.n}

    @classmethod
    def from_json(cls, d: dict) -> "ArgMax":
        return cls(name=d["name"], n=int(d["n"]))


@dataclass
class Model:
    """A chain of layers from an input vector of ``n_in`` elements of ``in_type``."""

    in_type: TensorType
    n_in: int
    layers: list[Layer]
    meta: dict = field(default_factory=dict)

    def types(self) -> list[TensorType]:
        """The element type at each point of the chain: input, then each layer's output."""
        ts = [self.in_type]
        for layer in self.layers:
            ts.append(layer.out_type(ts[-1]))
        return ts

    def check(self) -> "Model":
        """Raise ValueError naming the layer if the chain's shapes or types do not line up."""
        n, t = self.n_in, self.in_type
        for layer in self.layers:
            if layer.n_in != n:
                raise ValueError(f"layer {layer.name}: expects {layer.n_in} inputs, gets {n}")
            layer.acc_range(t)  # raises on a type the kind cannot take
            n, t = layer.n_out, layer.out_type(t)
        return self

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out if self.layers else self.n_in

    def to_json(self) -> dict:
        return {"hwgen_ir": IR_VERSION, "input": {"n": self.n_in, "type": self.in_type.to_json()},
                "layers": [layer.to_json() for layer in self.layers], "meta": self.meta}

    @classmethod
    def from_json(cls, d: dict) -> "Model":
        if d.get("hwgen_ir") != IR_VERSION:
            raise IRFormatError(f"not a hwgen IR version {IR_VERSION} document")
        layers = []
        for ld in d["layers"]:
            if ld.get("kind") not in LAYER_KINDS:
                raise IRFormatError(f"unknown layer kind {ld.get('kind')!r}")
            layers.append(LAYER_KINDS[ld["kind"]].from_json(ld))
        return cls(TensorType.from_json(d["input"]["type"]), int(d["input"]["n"]), layers,
                   d.get("meta", {})).check()

    def save(self, path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path) -> "Model":
        try:
            return cls.from_json(json.loads(Path(path).read_text()))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise IRFormatError(f"{path}: not a hwgen IR file ({e})") from None
