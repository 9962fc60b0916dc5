"""The integer layer IR: the contract between the compiler, the golden model and the hardware.

Every tensor is a flat vector of integers with a :class:`TensorType`. Conventions that could
differ between implementations are fixed here, once:

* **Bipolar encoding.** A bipolar element is stored as one bit ``b``; its value is ``2*b - 1``
  (bit 1 means +1, bit 0 means -1). A binary weight is encoded the same way.
* **sign(0) = +1.** Every binarization maps 0 to +1 (QONNX ``BipolarQuant`` does the same).
* **xnor-popcount.** For bipolar ``x`` and ``w`` of length N, ``P = popcount(xnor(x, w))`` counts
  the positions where they agree, and the bipolar dot product is ``2*P - N``.
* **Thresholds.** A thresholded layer emits bit 1 for output j iff ``acc_j >= t_j`` (``flip_j``
  false) or ``acc_j <= t_j`` (``flip_j`` true), where ``acc`` is the layer's integer accumulator
  (the popcount P for bipolar inputs, the signed sum for integer inputs). Equality counts as a 1,
  which is sign(0) = +1 after batch norm. Thresholds are clamped to ``[acc_lo - 1, acc_hi + 1]``,
  so a channel that is constant keeps a bounded threshold.
* **Argmax ties** go to the lowest index (as ``numpy.argmax`` and ``torch.argmax``).
* **No saturation anywhere.** Accumulator widths come from exact bounds over the actual weights,
  so no sum can overflow.
* **Stream packing.** A vector travels as one stream payload; element i occupies bits
  ``[i*w, (i+1)*w)`` of it, w being the element type's width (two's complement when signed).

Layer kinds register themselves in :data:`LAYER_KINDS`; the golden model, the hardware
generators and the resource estimator each keep a registry keyed by the same ``kind`` string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "TensorType", "Threshold", "Layer", "DenseIntBinW", "DenseBinary", "ArgMax", "Model",
    "LAYER_KINDS", "IRFormatError", "signed_bits", "unsigned_bits",
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
    """Element type of a vector: ``bipolar`` (1 bit, -1/+1), ``unsigned`` or ``signed`` of ``bits``."""

    kind: str
    bits: int

    def __post_init__(self):
        if self.kind not in ("bipolar", "unsigned", "signed"):
            raise ValueError(f"tensor kind must be bipolar, unsigned or signed, not {self.kind!r}")
        if self.bits < 1 or (self.kind == "bipolar" and self.bits != 1):
            raise ValueError(f"bad width {self.bits!r} for a {self.kind} tensor")

    @classmethod
    def for_range(cls, lo: int, hi: int) -> "TensorType":
        if lo >= 0:
            return cls("unsigned", unsigned_bits(hi))
        return cls("signed", signed_bits(lo, hi))

    @property
    def lo(self) -> int:
        return {"bipolar": 0, "unsigned": 0, "signed": -(1 << (self.bits - 1))}[self.kind]

    @property
    def hi(self) -> int:
        return {"bipolar": 1, "unsigned": (1 << self.bits) - 1,
                "signed": (1 << (self.bits - 1)) - 1}[self.kind]

    def to_json(self) -> str:
        return "bipolar" if self.kind == "bipolar" else f"{self.kind[0]}{self.bits}"

    @classmethod
    def from_json(cls, s: str) -> "TensorType":
        if s == "bipolar":
            return cls("bipolar", 1)
        if len(s) > 1 and s[0] in "us" and s[1:].isdigit():
            return cls({"u": "unsigned", "s": "signed"}[s[0]], int(s[1:]))
        raise IRFormatError(f"unknown tensor type {s!r}")


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

    def apply(self, acc: np.ndarray) -> np.ndarray:
        return np.where(self.flip, acc <= self.t, acc >= self.t).astype(np.int64)

    def clamp(self, lo: int, hi: int) -> "Threshold":
        return Threshold(np.clip(self.t, lo - 1, hi + 1), self.flip)

    def to_json(self) -> dict:
        return {"t": self.t.tolist(), "flip": "".join("1" if f else "0" for f in self.flip)}

    @classmethod
    def from_json(cls, d: dict) -> "Threshold":
        return cls(np.array(d["t"], dtype=np.int64), np.array([c == "1" for c in d["flip"]]))


def _weights_to_json(w: np.ndarray) -> list[str]:
    # one readable string per output neuron: '+' for weight +1, '-' for weight -1
    return ["".join("+" if b else "-" for b in row) for row in w]


def _weights_from_json(rows: list[str]) -> np.ndarray:
    if any(set(r) - set("+-") for r in rows):
        raise IRFormatError("binary weight rows may hold only '+' and '-'")
    return np.array([[c == "+" for c in r] for r in rows], dtype=np.uint8)


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
class _Dense(Layer):
    weights: np.ndarray = field(default=None)          # uint8 (n_out, n_in), 1 means +1
    threshold: Threshold | None = None                  # None: emit the accumulator itself

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=np.uint8)
        if self.weights.ndim != 2 or not np.isin(self.weights, (0, 1)).all():
            raise ValueError(f"{self.name}: binary weights must be a 0/1 matrix")
        if self.threshold is not None and self.threshold.t.shape != (self.n_out,):
            raise ValueError(f"{self.name}: {self.threshold.t.shape[0]} thresholds for "
                             f"{self.n_out} outputs")

    @property
    def n_in(self) -> int:
        return self.weights.shape[1]

    @property
    def n_out(self) -> int:
        return self.weights.shape[0]

    def out_type(self, in_type: TensorType) -> TensorType:
        if self.threshold is not None:
            return TensorType("bipolar", 1)
        return self.acc_type(in_type)

    def to_json(self) -> dict:
        d = {"kind": self.kind, "name": self.name, "n_in": self.n_in, "n_out": self.n_out,
             "weights": _weights_to_json(self.weights)}
        if self.threshold is not None:
            d["threshold"] = self.threshold.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict) -> "_Dense":
        th = Threshold.from_json(d["threshold"]) if "threshold" in d else None
        return cls(name=d["name"], weights=_weights_from_json(d["weights"]), threshold=th)


@register_kind
@dataclass
class DenseIntBinW(_Dense):
    """Binary-weight dense layer on integer inputs: ``acc_j = sum_i (2 w_ji - 1) * x_i``.

    The first layer of a binary network, fed with quantized pixels ("XNOR ADDER"): every
    product is +x or -x, so the hardware only adds and subtracts.
    """

    kind = "dense_int_binw"

    def acc_range(self, in_type: TensorType) -> tuple[int, int]:
        if in_type.kind == "bipolar":
            raise ValueError(f"{self.name}: dense_int_binw takes integer inputs, not bipolar")
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
