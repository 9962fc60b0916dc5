"""iCE40 cost of one multi-branch binary layer per (M, K), branches in parallel and in time.

The layer is fixed: ``dense_mbbn`` with 64 inputs of M-bit odd states, 32 outputs, K-bit weights
(random, seed 0), and a multi-threshold back to M-bit codes, computed with ``pe = 4`` neurons and
``simd = 16`` inputs per cycle. Two branch foldings are built for every (M, K):

* ``parallel``: all M * K xnor-popcount branches in one cycle (``branch_folds = 1``);
* ``in time``: one branch per cycle (``branch_folds = M * K``), M * K times the cycles.

Each design is measured twice, in the same run, from real tool runs:

* the engine alone, out of context (``hwgen.boards.ooc.synth_ooc``: yosys ``synth_ice40`` then
  nextpnr-ice40 ``--pack-only``): packed logic cells, RAM blocks (EBR) and DSPs;
* the engine with an argmax over its 32 codes inside the UART wrapper of ``hwgen build``, placed
  and routed for the iCEBreaker (UP5K) by ``hwgen.boards.flow.build``: Fmax from nextpnr.

``cycles`` is the engine's cycles per vector at full throughput (fold steps + 3). The baseline
of the run is (M, K) = (1, 1), the plain xnor-popcount layer of the spine, built the same way.

Usage: ``python benchmarks/mbbn_hw.py [--pairs 1,1 2,2 ...] [--weights logic|bram]``; about a
minute per design.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hwgen.boards.flow import DoesNotFitError, build as board_build
from hwgen.boards.ooc import synth_ooc
from hwgen.hw import registry
from hwgen.hw.pipeline import Pipeline
from hwgen.hw.resources import Folding
from hwgen.sw.core import golden, ir

N_IN, N_OUT, PE, SIMD = 64, 32, 4, 16
PAIRS = [(1, 1), (2, 2), (3, 2), (2, 3), (4, 4)]


def layer_for(m_bits: int, k_bits: int) -> ir.DenseMBBN:
    """The fixed layer: random weights, thresholds at quantiles of its accumulators."""
    rng = np.random.default_rng(0)
    layer = ir.DenseMBBN(name="fc", weights=rng.integers(0, 1 << k_bits, (N_OUT, N_IN)),
                         m_bits=m_bits, k_bits=k_bits)
    x = rng.integers(0, 1 << m_bits, (2000, N_IN))
    acc = golden.run_layer(layer, x)
    levels = (1 << m_bits) - 1
    t = np.quantile(acc, np.arange(1, levels + 1) / (levels + 1), axis=0).T.round()
    layer.threshold = ir.MultiThreshold(t.astype(np.int64), np.zeros(N_OUT, bool),
                                        ir.odd_type(m_bits))
    return layer


def measure(m_bits: int, k_bits: int, branch_folds: int, weights: str, work: Path) -> dict:
    layer = layer_for(m_bits, k_bits)
    in_type = ir.odd_type(m_bits)
    folding = Folding(PE, SIMD, weights, branch_folds)
    engine = registry.engine(layer, in_type, folding)
    ooc = synth_ooc(engine, top="engine", build_dir=work / "ooc")   # a Component: its signature
    model = ir.Model(in_type, N_IN, [layer, ir.ArgMax(name="argmax", n=N_OUT)])
    pipeline = Pipeline(model, {"fc": folding, "argmax": Folding(1, 1)})
    try:
        report = board_build(pipeline, target="ice40", build_dir=work / "board", n_in=N_IN,
                             in_bits=in_type.bits, out_bits=model.types()[-1].bits,
                             cycles_per_inference=pipeline.interval, progress=lambda step: None)
        fmax = f"{report.fmax_mhz:.1f}"
    except DoesNotFitError as e:          # out of context it still counts; placed it cannot be
        fmax = f"({e.needed} LCs)"
    return {"lcs": ooc.lcs, "ebr": ooc.ebr, "dsp": ooc.dsp, "fmax": fmax,
            "cycles": engine.interval}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", nargs="+", default=[f"{m},{k}" for m, k in PAIRS],
                   help="(M,K) pairs as M,K (default: %(default)s)")
    p.add_argument("--weights", choices=("logic", "bram"), default="logic",
                   help="where the weight ROM lives (default logic)")
    args = p.parse_args(argv)
    pairs = [tuple(int(v) for v in s.split(",")) for s in args.pairs]
    if (1, 1) not in pairs:
        pairs.insert(0, (1, 1))            # the baseline is always measured in the same run

    rows = []
    start = time.perf_counter()
    jobs = [(m, k, bf) for m, k in pairs for bf in sorted({1, m * k})]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (m, k, bf) in enumerate(tqdm(jobs, desc="synthesis", unit="design")):
            rows.append((m, k, bf, measure(m, k, bf, args.weights, Path(tmp) / str(i))))

    base = next(r for m, k, bf, r in rows if (m, k, bf) == (1, 1, 1))
    print(f"dense_mbbn {N_IN} -> {N_OUT}, pe={PE}, simd={SIMD}, weights in {args.weights}; "
          "iCE40 UP5K (5,280 LCs, 30 EBR, 8 DSP)")
    print(f"{'M':>2} {'K':>2} {'branches':>9} {'LCs':>6} {'xLC(1,1)':>8} {'EBR':>4} {'DSP':>4} "
          f"{'Fmax MHz':>9} {'cycles':>7} {'xcyc(1,1)':>9}")
    for m, k, bf, r in rows:
        mode = "parallel" if bf == 1 else "in time"
        print(f"{m:>2} {k:>2} {mode:>9} {r['lcs']:>6} {r['lcs'] / base['lcs']:>8.2f} "
              f"{r['ebr']:>4} {r['dsp']:>4} {r['fmax']:>9} {r['cycles']:>7} "
              f"{r['cycles'] / base['cycles']:>9.2f}")
    print("Fmax: placed and routed with the UART wrapper; '(n LCs)' where that design needs more "
          "logic cells than the UP5K has")
    print(f"{len(rows)} designs in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
