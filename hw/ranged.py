"""Values with exact integer ranges, max / min trees over them, and ROMs of variable-width fields.

The building blocks of the Sum-and-Max engine (:class:`hwgen.hw.sam.SAMEngine`), public
for other SAM engines to reuse:

* :class:`Ranged`, :func:`fit`, :func:`named`: a value with the exact integer range it can
  take, the narrowest two's complement (or unsigned) shape holding that range, and a named
  signal for a value read more than once;
* :func:`reduce_tree` (and its pure-range core :func:`tree_order`): a balanced max or min tree
  that first drops the items which can never win (:func:`undominated`);
* :class:`RomFields`: ROM words made of variable-width fields, a field that never changes
  being a constant that takes no bits; :func:`range_bits` and :func:`field_columns` count
  their bits for a cost estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, Value

from hwgen.hw.kit import element_shape, rom
from hwgen.sw.core import ir

__all__ = [
    "Ranged", "range_shape", "fit", "named", "reduce_range", "undominated", "tree_order",
    "reduce_pair", "reduce_tree", "RomFields", "range_bits", "field_columns",
]

# --- ranged values and max / min trees ---------------------------------------------------------

@dataclass(frozen=True)
class Ranged:
    """A hardware ``value`` known to lie in ``lo .. hi`` (``value`` is None when only the range
    is planned, as the estimator does)."""

    value: Value | None
    lo: int
    hi: int


def range_shape(lo: int, hi: int) -> Shape:
    """The narrowest shape holding ``lo .. hi``: unsigned when ``lo >= 0``, else signed."""
    return Shape.cast(element_shape(ir.TensorType.for_range(int(lo), int(hi))))


def fit(value: Value, lo: int, hi: int) -> Value:
    """``value``, known to lie in ``lo .. hi``, in exactly :func:`range_shape` ``(lo, hi)``:
    truncated (exact, since the value fits) or extended, then reinterpreted."""
    shape = range_shape(lo, hi)
    value = Value.cast(value)
    if len(value) < shape.width:
        top = value[-1] if value.shape().signed else Const(0, 1)
        value = Cat(value, top.replicate(shape.width - len(value)))
    value = value[:shape.width]
    return value.as_signed() if shape.signed else value.as_unsigned()


def reduce_range(a: Ranged, b: Ranged, reduce: str) -> tuple[int, int]:
    """Range of ``max(a, b)`` (``reduce == "max"``) or ``min(a, b)``."""
    if reduce == "max":
        return max(a.lo, b.lo), max(a.hi, b.hi)
    return min(a.lo, b.lo), min(a.hi, b.hi)


def undominated(items: Sequence[Ranged], reduce: str) -> list[Ranged]:
    """``items`` without those that can never change the max (min), order kept.

    For a max with ``L`` the largest ``lo``: an item whose ``hi`` is at most ``L`` never
    exceeds the item that holds ``L``, so it is dropped, and of the items holding ``L`` only
    the one with the largest ``hi`` stays (a tie changes no value, eq. 3-5). A min likewise.
    """
    sign = 1 if reduce == "max" else -1
    lo = [sign * (it.lo if sign > 0 else it.hi) for it in items]     # mirrored for a min
    hi = [sign * (it.hi if sign > 0 else it.lo) for it in items]
    bound = max(lo)
    keeper = max((i for i in range(len(items)) if lo[i] == bound), key=lambda i: hi[i])
    return [it for i, it in enumerate(items) if i == keeper or hi[i] > bound]


def tree_order(items: Sequence[Ranged], reduce: str,
               combine: Callable[[Ranged, Ranged], Ranged]) -> Ranged:
    """The balanced tree of :func:`reduce_tree` over ``items`` (:func:`undominated` first,
    then neighbours paired level by level), each node made by ``combine``: a comparator and a
    multiplexer in the engine, a cost count in the estimator."""
    items = undominated(items, reduce)
    while len(items) > 1:
        paired = [combine(items[i], items[i + 1]) for i in range(0, len(items) - 1, 2)]
        items = paired + items[len(paired) * 2:]
    return items[0]


def named(m: Module, value: Value, lo: int, hi: int, name: str) -> Ranged:
    """``value`` (in ``lo .. hi``) through a named signal of :func:`range_shape`, so that its
    readers share one copy: Amaranth emits an expression once per use."""
    sig = Signal(range_shape(lo, hi), name=name)
    m.d.comb += sig.eq(value)
    return Ranged(sig, lo, hi)


def reduce_pair(m: Module, a: Ranged, b: Ranged, reduce: str, name: str) -> Ranged:
    """``max(a, b)`` or ``min(a, b)`` in a signal ``name``: one comparator and one multiplexer,
    as wide as the exact range of the result. On a tie either input is the result, with the
    same value."""
    lo, hi = reduce_range(a, b, reduce)
    take_a = a.value >= b.value if reduce == "max" else a.value <= b.value
    return named(m, fit(Mux(take_a, a.value, b.value), lo, hi), lo, hi, name)


def reduce_tree(m: Module, items: Sequence[Ranged], reduce: str, name: str) -> Ranged:
    """Max (``reduce == "max"``) or min of non-empty ``items`` by a balanced tree of
    :func:`reduce_pair` nodes (signals ``name``, numbered by Amaranth), depth
    ``ceil(log2 N)``; items that can never win cost nothing (:func:`undominated`). The items'
    values are read twice each (comparator and multiplexer), so they should be signals."""
    return tree_order(items, reduce, lambda a, b: reduce_pair(m, a, b, reduce, name))


# --- ROM words of variable-width fields ---------------------------------------------------------

@dataclass
class _Field:
    values: np.ndarray        # int64, one per word
    lo: int
    hi: int
    offset: int = -1          # bit offset in the word; -1 for a constant
    value: Value | None = None


class RomFields:
    """The words of a ROM, made of fields of one value per word.

    :meth:`add` each field, :meth:`build` the ROM (:func:`hwgen.hw.kit.rom`: read one
    cycle after its address, a constant when there is a single word), then read each field
    with :meth:`value`. A field whose values are all equal is a constant and takes no bit; the
    others are as wide as :func:`range_shape` of their values, two's complement when negative.

    Parameters
    ----------
    words : int
        Words of the ROM (its address range).
    """

    def __init__(self, words: int):
        self.words = words
        self.fields: list[_Field] = []
        self.width = 0

    def add(self, values) -> int:
        """A field holding ``values[k]`` in word k; returns its handle for :meth:`value`."""
        values = np.broadcast_to(np.asarray(values, dtype=np.int64), (self.words,))
        f = _Field(values, int(values.min()), int(values.max()))
        if f.lo != f.hi:
            f.offset = self.width
            self.width += range_shape(f.lo, f.hi).width
        self.fields.append(f)
        return len(self.fields) - 1

    def constant(self, handle: int) -> int | None:
        """The value of a field that never changes, None for a stored one."""
        f = self.fields[handle]
        return f.lo if f.offset < 0 else None

    def packed(self) -> list[int]:
        """The ROM contents: one integer per word, each field at its offset."""
        words = [0] * self.words
        for f in self.fields:
            if f.offset >= 0:
                mask = (1 << range_shape(f.lo, f.hi).width) - 1
                for k, v in enumerate(f.values.tolist()):
                    words[k] |= (v & mask) << f.offset
        return words

    def build(self, m: Module, name: str, addr: Value, mode: str) -> None:
        """Add the ROM to ``m`` (nothing when every field is constant)."""
        word = rom(m, name, self.packed(), self.width, addr, mode) if self.width else None
        for f in self.fields:
            if f.offset < 0:
                f.value = Const(f.lo, range_shape(f.lo, f.hi))
            else:
                bits = word[f.offset:f.offset + range_shape(f.lo, f.hi).width]
                f.value = bits.as_signed() if f.lo < 0 else bits

    def value(self, handle: int) -> Ranged:
        """The field in the cycle after the ROM's address, with its range."""
        f = self.fields[handle]
        return Ranged(f.value, f.lo, f.hi)

    def columns(self) -> np.ndarray:
        """uint8 (width, words): each bit of the word as a function of the address."""
        stored = [f.values for f in self.fields if f.offset >= 0]
        if not stored:
            return np.zeros((0, self.words), np.uint8)
        return field_columns(np.array(stored))


def range_bits(lo, hi) -> np.ndarray:
    """:func:`range_shape` widths of arrays of ranges ``lo .. hi``."""
    lo, hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)

    def bit_length(v):
        return np.frexp(np.maximum(v, 0).astype(np.float64))[1].astype(np.int64)

    return np.where(lo >= 0, np.maximum(bit_length(hi), 1),
                    1 + np.maximum(bit_length(hi), bit_length(-lo - 1)))


def field_columns(values: np.ndarray) -> np.ndarray:
    """uint8 (bits, words): the bit columns of fields holding ``values`` (fields, words), each
    as wide as :func:`range_bits` of its values (two's complement bits of negatives)."""
    widths = range_bits(values.min(axis=1), values.max(axis=1))
    planes = (values[:, None, :] >> np.arange(int(widths.max(initial=1)))[None, :, None]) & 1
    return planes[np.arange(planes.shape[1])[None, :] < widths[:, None]].astype(np.uint8)
