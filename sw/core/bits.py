"""Packed bit arithmetic on NumPy: bit vectors as uint64 words, xnor-popcounts and the digit
planes of offset codes. The golden model's binary and multi-branch layers (conventions in
:mod:`hwgen.sw.core.ir`) and the multi-branch front end's packed inference use it."""

from __future__ import annotations

import numpy as np

__all__ = ["pack_bits", "disagreements", "popcount_xnor", "digit_planes", "branch_sum"]


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack a (..., N) 0/1 array into (..., ceil(N/64)) uint64 words, zero padded."""
    bits = np.asarray(bits, dtype=np.uint8)
    n = bits.shape[-1]
    pad = (-n) % 64
    if pad:
        bits = np.concatenate([bits, np.zeros(bits.shape[:-1] + (pad,), np.uint8)], axis=-1)
    packed = np.packbits(bits, axis=-1, bitorder="little")
    return packed.view(np.uint64) if packed.flags.c_contiguous else \
        np.ascontiguousarray(packed).view(np.uint64)


def disagreements(xp: np.ndarray, wp: np.ndarray) -> np.ndarray:
    """D[b, j] = popcount(xp[b] xor wp[j]) over packed (B, words) and (J, words) uint64 rows.

    Rows of ``xp`` go in chunks of about 1 MiB of intermediate words, so memory stays bounded.
    """
    rows, words = xp.shape
    cols = wp.shape[0]
    out = np.empty((rows, cols), np.int64)
    chunk = max(1, (1 << 17) // max(1, cols * words))
    diff = np.empty((min(chunk, rows), cols, words), np.uint64)
    count = np.empty((min(chunk, rows), cols, words), np.uint8)
    for i in range(0, rows, chunk):
        r = min(chunk, rows - i)
        np.bitwise_xor(xp[i:i + r, None, :], wp[None, :, :], out=diff[:r])
        np.bitwise_count(diff[:r], out=count[:r])
        out[i:i + r] = count[:r].sum(axis=-1, dtype=np.int64)
    return out


def popcount_xnor(x_bits: np.ndarray, w_bits: np.ndarray) -> np.ndarray:
    """P[b, j] = popcount(xnor(x[b], w[j])) for 0/1 arrays x (B, N) and w (J, N)."""
    n = x_bits.shape[-1]
    # xor counts disagreements; the zero padding agrees in both, so it adds nothing to xor
    return n - disagreements(pack_bits(x_bits), pack_bits(w_bits))


def digit_planes(codes: np.ndarray, digits: int) -> np.ndarray:
    """(rows, N) offset codes -> (digits, rows, ceil(N/64)) packed bit planes; plane m is bit m."""
    codes = np.asarray(codes, dtype=np.int64)
    return np.stack([pack_bits((codes >> m) & 1) for m in range(digits)])


def branch_sum(x_planes: np.ndarray, w_planes: np.ndarray, n: int) -> np.ndarray:
    """``sum_{m,k} 2^(m+k) popcount(xnor(x_m, w_k))`` over packed planes of N-element rows.

    The accumulator of :class:`hwgen.sw.core.ir.DenseMBBN` (eq. 8 of seed 003), (B, J) int64.
    """
    acc = np.zeros((x_planes.shape[1], w_planes.shape[1]), np.int64)
    for m, xp in enumerate(x_planes):
        for k, wp in enumerate(w_planes):
            acc += (n - disagreements(xp, wp)) << (m + k)
    return acc
