"""The base of every IR layer kind and the kind registry (conventions in :mod:`hwgen.sw.core.ir`).

A kind is one module of :mod:`hwgen.sw.core` named by its kind string (``sw/core/<kind>.py``):
a :class:`Layer` dataclass with a ``kind``
string, registered with :func:`register_kind`, that says what it takes and gives
(``n_in``, ``n_out``, ``out_type``), the exact range of its accumulator (``acc_range``), its
golden semantics (``accumulate``) and its JSON form. Dense kinds derive from
:class:`MatrixLayer`, which also says how the compiler opens one from an ONNX ``MatMul``
(``lowers``, ``from_codes``, ``float_tail``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .types import IRFormatError, MultiThreshold, TensorType, Threshold

__all__ = ["LAYER_KINDS", "register_kind", "Layer", "MatrixLayer", "BinaryWeightLayer",
           "check_integer_input", "state_bits"]

LAYER_KINDS: dict[str, type["Layer"]] = {}
"""Every layer kind by its ``kind`` string, filled by :func:`register_kind`."""


def register_kind(cls):
    """Class decorator: register a :class:`Layer` subclass under its ``kind`` string."""
    if LAYER_KINDS.get(cls.kind, cls) is not cls:
        raise ValueError(f"layer kind {cls.kind!r} is registered twice")
    LAYER_KINDS[cls.kind] = cls
    return cls


def state_bits(codes: np.ndarray) -> int:
    """K, the bits of the widest of the integer weight states ``codes`` (at least 1)."""
    return max(1, int(np.abs(codes).max()).bit_length())


def check_integer_input(layer: "Layer", in_type: TensorType) -> None:
    """Raise ValueError naming ``layer`` unless ``in_type`` is unsigned or signed."""
    if not in_type.is_integer:
        raise ValueError(f"{layer.name}: {layer.kind} takes integer inputs, not {in_type.kind}")


@dataclass
class Layer:
    """Base of all layer kinds. ``name`` is the ONNX node (or layer) it came from."""

    kind = "layer"
    #: The golden function reads its input's values, not only its codes: it needs ``in_type``.
    needs_in_type = False
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

    def accumulate(self, x: np.ndarray, in_type: TensorType | None) -> np.ndarray:
        """The golden semantics: the (B, n_out) int64 accumulators of a batch of (B, n_in)
        int64 input codes of ``in_type`` (a threshold, if any, is applied after)."""
        raise NotImplementedError

    def to_json(self) -> dict:
        raise NotImplementedError


@dataclass
class MatrixLayer(Layer):
    """A dense layer: a weight matrix (n_out, n_in) and an optional :class:`Threshold` or
    :class:`MultiThreshold` (None: the layer emits its accumulator).

    The compiler opens the one dense kind whose :meth:`lowers` accepts an ONNX ``MatMul``'s
    integer weight states and input type, builds it by :meth:`from_codes`, and follows the
    float value of its output as ``a * acc + b`` from :meth:`float_tail`.
    """

    weights: np.ndarray = field(default=None)
    threshold: Threshold | MultiThreshold | None = None
    #: The threshold type this kind takes; a kind of one-level thresholds is :meth:`widened`
    #: into one that takes multi-thresholds when a multi-bit activation follows it.
    threshold_type = MultiThreshold
    #: Integer members beyond weights and threshold, for :meth:`from_json`.
    json_keys = ()
    #: The kind takes any integer weights (a QONNX weight ``Quant``), multiplying input codes.
    integer_weights = False
    #: The kind adds an integer bias to its accumulator.
    has_bias = False

    def check_threshold(self) -> None:
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

    @classmethod
    def lowers(cls, in_type: TensorType, codes: np.ndarray, integer_weights: bool) -> bool:
        """Whether this kind computes a ``MatMul`` of integer weight states ``codes``
        (n_out, n_in) on inputs of ``in_type``; ``integer_weights`` when the weights come from
        a weight ``Quant`` (any integers). Exactly one kind accepts any such pair."""
        return False

    @classmethod
    def from_codes(cls, name: str, codes: np.ndarray, in_type: TensorType) -> "MatrixLayer":
        """The layer of weight states ``codes`` (n_out, n_in) on inputs of ``in_type``;
        ValueError when the states do not suit the kind."""
        raise NotImplementedError

    def float_tail(self, alpha: float, scale: np.ndarray, offset: np.ndarray):
        """``(a, b)`` per output with ``a * acc + b`` the float value of the layer's output,
        for inputs whose float value is ``alpha * value + beta`` and weights ``scale * state``
        per output; ``offset`` is the inputs' offsets weighted, ``scale * (states @ beta)``."""
        return alpha * scale, offset

    def widened(self) -> "MatrixLayer":
        """This layer as a kind that takes a :class:`MultiThreshold`, with the same
        accumulator."""
        return self

    def to_json(self) -> dict:
        d = {"kind": self.kind, "name": self.name, "n_in": self.n_in, "n_out": self.n_out,
             **{k: getattr(self, k) for k in self.json_keys},
             "weights": self.weights_to_json()}
        if self.threshold is not None:
            d["threshold"] = self.threshold.to_json()
        return d

    def weights_to_json(self):
        return self.weights.tolist()

    @classmethod
    def weights_from_json(cls, rows) -> np.ndarray:
        return np.array(rows, dtype=np.int64)

    @classmethod
    def from_json(cls, d: dict) -> "MatrixLayer":
        th = cls.threshold_type.from_json(d["threshold"]) if "threshold" in d else None
        return cls(name=d["name"], weights=cls.weights_from_json(d["weights"]), threshold=th,
                   **{k: int(d[k]) for k in cls.json_keys})


@dataclass
class BinaryWeightLayer(MatrixLayer):
    """Binary weights (uint8, 1 means +1) and an optional one-level :class:`Threshold`."""

    threshold_type = Threshold

    def __post_init__(self):
        self.weights = np.asarray(self.weights, dtype=np.uint8)
        if self.weights.ndim != 2 or not np.isin(self.weights, (0, 1)).all():
            raise ValueError(f"{self.name}: binary weights must be a 0/1 matrix")
        if self.threshold is not None and self.threshold.t.ndim != 1:
            raise ValueError(f"{self.name}: a binary layer takes a one-level threshold")
        self.check_threshold()

    @staticmethod
    def binary_codes(codes: np.ndarray) -> np.ndarray:
        """Stored weight bits of states +-1: 1 for +1."""
        return (codes > 0).astype(np.uint8)

    def weights_to_json(self):
        # one readable string per output neuron: '+' for weight +1, '-' for weight -1
        return ["".join("+" if b else "-" for b in row) for row in self.weights]

    @classmethod
    def weights_from_json(cls, rows) -> np.ndarray:
        if any(set(r) - set("+-") for r in rows):
            raise IRFormatError("binary weight rows may hold only '+' and '-'")
        return np.array([[c == "+" for c in r] for r in rows], dtype=np.uint8)
