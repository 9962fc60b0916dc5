"""Stream payload packing: integer vectors to and from the wide words on ``*_stream__payload``.

Element i of a vector occupies bits ``[i*w, (i+1)*w)`` of the payload, two's complement when
signed (the stream packing rule of :mod:`hwgen.sw.core.ir`). A payload is a Python ``int`` of any
width, which is what cocotb reads and writes fastest; the conversions go through NumPy bit planes
so that tens of thousands of vectors hundreds of bits wide pack in milliseconds.
"""

from __future__ import annotations

import numpy as np

__all__ = ["element_range", "pack", "unpack"]


def _check_bits(bits: int) -> None:
    if not 1 <= bits <= 64:
        raise ValueError(f"element width must be 1 to 64 bits, not {bits!r}")


def element_range(bits: int, signed: bool) -> tuple[int, int]:
    """The smallest and largest value of a ``bits``-wide element."""
    _check_bits(bits)
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def pack(vectors, bits: int, signed: bool) -> list[int]:
    """One payload word per row of the integer array ``vectors`` (shape ``(B, n)``).

    Raises ``ValueError`` naming the first element that does not fit in ``bits``.
    """
    values = np.asarray(vectors)
    if values.ndim != 2:
        raise ValueError(f"vectors must be a 2-D array (B, n), not of shape {values.shape}")
    lo, hi = element_range(bits, signed)
    values = values.astype(np.int64)
    bad = np.argwhere((values < lo) | (values > hi))
    if len(bad):
        row, col = bad[0]
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"element [{row}, {col}] = {values[row, col]} does not fit in "
                         f"{bits} {kind} bits ({lo}..{hi})")
    raw = values.view(np.uint64)
    planes = (raw[:, :, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)
    packed = np.packbits(planes.astype(np.uint8).reshape(len(values), -1), axis=1,
                         bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def unpack(words, n: int, bits: int, signed: bool) -> np.ndarray:
    """The ``(len(words), n)`` int64 array of the elements packed in each payload word.

    An unsigned 64-bit element above ``2**63 - 1`` wraps to a negative int64.
    """
    _check_bits(bits)
    width = n * bits
    nbytes = (width + 7) // 8
    buf = np.frombuffer(b"".join(int(w).to_bytes(nbytes, "little") for w in words),
                        dtype=np.uint8).reshape(len(words), nbytes)
    planes = np.unpackbits(buf, axis=1, count=width, bitorder="little")
    planes = planes.reshape(len(words), n, bits).astype(np.uint64)
    raw = (planes << np.arange(bits, dtype=np.uint64)).sum(axis=2, dtype=np.uint64)
    if signed and bits < 64:
        sign = np.uint64(1 << (bits - 1))
        raw = np.where(raw & sign, raw | ~np.uint64((1 << bits) - 1), raw)
    return raw.view(np.int64)
