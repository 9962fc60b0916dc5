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
* **Ties are decided in real numbers.** A threshold lowered from a float model (ONNX) is the
  exact integer at which the real-valued map from accumulator to quantizer input crosses the
  quantizer's boundary: constants are the binary fractions they are and a batch norm's square
  root is kept exact (:mod:`hwgen.sw.compiler.exact`), so an accumulator exactly on a boundary
  goes where the rounding mode (and sign(0) = +1) sends it. A float evaluation of the same
  model, PyTorch's included, may round such a tie the other way; the golden model, and so the
  RTL, follows the exact one.
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
  rule. Quantizing a trained layer to that grid (:mod:`hwgen.sw.families.sam.lower`) rounds half to
  even and saturates inputs to the input type; nothing saturates inside the layer.
* **Multiply-accumulate.** ``dense_mac`` is ``acc_j = sum_i w_ji x_i + b_j`` on integer
  inputs with signed integer weights of at most 16 bits and an integer bias, exactly.
* **No saturation anywhere.** Accumulator widths come from exact bounds over the actual weights,
  so no sum can overflow.
* **Stream packing.** A vector travels as one stream payload; element i occupies bits
  ``[i*w, (i+1)*w)`` of it, w being the element type's width (two's complement when signed;
  the offset code when odd). ``TensorType.lo`` / ``hi`` bound the stored codes.

Every layer kind is one module ``sw/core/<kind>.py`` (its class, registered in
:data:`LAYER_KINDS` under its ``kind`` string, with its golden semantics ``accumulate``); this
module imports and re-exports all of them, with the element types of :mod:`hwgen.sw.core.types`
and the chain of layers, :class:`Model`. The hardware of a kind registers itself, keyed on the
same class, in :mod:`hwgen.hw.registry`.
"""


from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .argmax import ArgMax
from .dense_binary import DenseBinary
from .dense_int_binw import DenseIntBinW
from .dense_mac import DenseMAC
from .dense_mbbn import DenseMBBN
from .dense_shift import DenseShift, is_pow2_weight
from .layer import LAYER_KINDS, Layer, MatrixLayer, register_kind
from .multithreshold import MultiThresholdLayer
from .qam_slicer import QAM_ORDERS, QAMSlicer
from .sam import SAM_REDUCES, SAMLayer, SAMTerm
from .types import (IRFormatError, MultiThreshold, TensorType, Threshold, odd_type, pow2_type,
                    signed_bits, unsigned_bits)

__all__ = [
    "TensorType", "Threshold", "MultiThreshold", "Layer", "MatrixLayer", "DenseIntBinW",
    "DenseBinary", "DenseMBBN", "MultiThresholdLayer", "ArgMax", "Model", "LAYER_KINDS",
    "IRFormatError", "DenseShift", "signed_bits", "unsigned_bits", "odd_type", "pow2_type",
    "SAMTerm", "SAMLayer", "SAM_REDUCES", "DenseMAC", "QAMSlicer", "QAM_ORDERS",
    "is_pow2_weight", "register_kind", "IR_VERSION",
]

IR_VERSION = 1


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
        """Raise ValueError naming the layer if the chain's shapes or types do not line up, or if
        two layers share a name (a name keys a layer's folding)."""
        n, t = self.n_in, self.in_type
        names = [layer.name for layer in self.layers]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"layer name {name} is used by {names.count(name)} layers; "
                                 "layer names must be unique")
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
