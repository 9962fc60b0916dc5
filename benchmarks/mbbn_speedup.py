"""CPU speedup of the multi-branch binary matmul over float32, against eq. 16 (seed 003, Fig. 7).

For every M, K in 1..6 (``--max-bits``) one run times, on the same shapes, a float32 matmul
``(rows x N) @ (N x cols)`` (NumPy's BLAS) and the eq. 8 product of M-bit by K-bit states on
packed digit planes (``hwgen.sw.families.mbbn.layers.mbbn_matmul_packed``: M * K rounds of xor +
``numpy.bitwise_count`` + sum, then the weighted sum of branches). Both run on one thread: BLAS
is held to one with threadpoolctl, and NumPy's ufuncs use one anyway. The two are timed
alternately ``--reps`` times and the medians compared; operands are made and packed beforehand
(weights are packed once offline, activations by the encoder), so neither time counts packing.
Every product is checked against the exact integer result.

Eq. 16 is printed beside it with the seed's constants (gamma = 1.91, beta = gamma / 2, L = 64)
for the same N. It models a fused xnor-popcount-accumulate against a scalar multiply-add; here
the float side is an optimized SIMD BLAS kernel and the bitwise side three NumPy passes over
memory, so expect the 1/(M K) shape of Fig. 7 at a much lower level.

Usage: ``python benchmarks/mbbn_speedup.py [--rows 128] [--cols 128] [--n 8192] [--reps 5]``.
"""

import argparse
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from hwgen.sw.families.mbbn.layers import eq16_speedup, mbbn_matmul_packed, pack_digits


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def measure(m_bits: int, k_bits: int, *, rows: int, cols: int, n: int, reps: int, rng):
    """Median seconds of the float32 and of the packed product for one (M, K); checks the latter."""
    x_codes = 2 * rng.integers(0, 2 ** m_bits, (rows, n)) - (2 ** m_bits - 1)
    w_codes = 2 * rng.integers(0, 2 ** k_bits, (cols, n)) - (2 ** k_bits - 1)
    x_planes, w_planes = pack_digits(x_codes, m_bits), pack_digits(w_codes, k_bits)
    x_f32 = rng.standard_normal((rows, n), dtype=np.float32)
    w_f32 = np.ascontiguousarray(rng.standard_normal((cols, n), dtype=np.float32).T)
    t_float, t_bits = [], []
    for _ in range(reps):
        t_float.append(_timed(lambda: x_f32 @ w_f32)[0])
        t, acc = _timed(lambda: mbbn_matmul_packed(x_planes, w_planes, n))
        t_bits.append(t)
    # |sums| <= n (2^M - 1)(2^K - 1) < 2^53: the float64 product is exact
    exact = (x_codes.astype(np.float64) @ w_codes.T.astype(np.float64)).astype(np.int64)
    if not np.array_equal(acc, exact):
        raise RuntimeError(f"M={m_bits} K={k_bits}: packed product differs from the integer one")
    return statistics.median(t_float), statistics.median(t_bits)


def _grid(title: str, values: dict, bits: range, fmt: str) -> list[str]:
    lines = [title, "M\\K " + "".join(f"{k:>8}" for k in bits)]
    for m in bits:
        lines.append(f"{m:>3} " + "".join(f"{values[m, k]:>8{fmt}}" for k in bits))
    return lines


def main(argv) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=128, help="rows of the activation matrix")
    ap.add_argument("--cols", type=int, default=128, help="columns (neurons) of the weights")
    ap.add_argument("--n", type=int, default=8192, help="dot product length N")
    ap.add_argument("--reps", type=int, default=5, help="timed repetitions per (M, K)")
    ap.add_argument("--max-bits", type=int, default=6, help="M and K run over 1..max-bits")
    args = ap.parse_args(argv)
    bits = range(1, args.max_bits + 1)
    rng = np.random.default_rng(0)
    measured, predicted, float_times = {}, {}, []
    with threadpool_limits(limits=1):
        blas = ", ".join(f"{p['internal_api']} {p['num_threads']} thread(s)"
                         for p in threadpool_info()) or "none found"
        try:
            for m in bits:
                for k in bits:
                    t_float, t_bits = measure(m, k, rows=args.rows, cols=args.cols, n=args.n,
                                              reps=args.reps, rng=rng)
                    float_times.append(t_float)
                    measured[m, k] = t_float / t_bits
                    predicted[m, k] = eq16_speedup(args.n, m, k)
        except RuntimeError as err:
            print(err, file=sys.stderr)
            return 1
    t_float = statistics.median(float_times)
    print(f"(rows x N) @ (N x cols) = ({args.rows} x {args.n}) @ ({args.n} x {args.cols}); "
          f"median of {args.reps} alternating runs per (M, K)")
    print(f"single thread for both: BLAS pools {blas}; bitwise path NumPy ufuncs (1 thread)")
    print(f"float32 matmul: {1e3 * t_float:.2f} ms median, "
          f"{2 * args.rows * args.cols * args.n / t_float / 1e9:.1f} GFLOP/s")
    print()
    print("\n".join(_grid("measured speedup, float32 time / packed eq. 8 time", measured, bits,
                          ".3f")))
    print()
    print("\n".join(_grid(f"eq. 16 (gamma=1.91, beta=gamma/2, L=64, N={args.n})", predicted,
                          bits, ".2f")))
    print()
    print("\n".join(_grid("measured x M K (flat if the time grows as M K, as eq. 16 assumes)",
                          {mk: s * mk[0] * mk[1] for mk, s in measured.items()}, bits, ".3f")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
