"""MINW-Net's Table I grid on iCE40: accuracy, inference operation, logic cells and Fmax (seed 004).

For activations (the seed's "inputs") of M = 1, 2, 3 bits and weights of N = 1, 2, 3 bits, plus
full precision (float, Table I's 32-bit row and column), this trains a
:class:`hwgen.sw.families.shift.aqe.MINWMLP` 64-64-64-10 on scikit-learn's digits with AQE (alpha
from 1/2 to 1 over half the steps, as ``benchmarks/aqe_vs_ste.py``), the first layer reading the
integer pixels (§III-E), and reports per cell:

* test accuracy (PyTorch inference; for the quantized cells PyTorch is compared with the golden
  model on the whole test split, the count of images where its float rounding decides a tie
  differently printed, and the script exits 1 when more than 1 % differ);
* the inference operation of Table I (:func:`hwgen.sw.families.shift.aqe.inference_op`: the smaller
  width decides XNOR, SHIFT or MAC) and the IR kinds the compiler chose for the hidden layers;
* for every quantized cell, the design ``hwgen build`` would make: ``choose_folding`` for the
  iCE40 UP5K budget, then synthesis, placement and routing inside the UART wrapper
  (:func:`hwgen.boards.flow.build`: yosys + nextpnr): packed logic cells, RAM blocks, DSPs
  (always 0: no multiplier), Fmax, and cycles per inference. The float cells have no
  multiplier-free hardware and get none.

The baseline of the run is the float network's accuracy, trained the same way in the same run.

Usage: ``python benchmarks/minw_grid.py [--bits 1,2,3] [--epochs 60] [--seed 0] [--no-synth]``;
the default grid synthesizes 9 designs, about 1-3 minutes each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hwgen.boards.flow import DoesNotFitError, build as board_build
from hwgen.boards.targets import get_target
from hwgen.hw.folding import choose_folding
from hwgen.hw.pipeline import Pipeline
from hwgen.demo import agreement, pytorch_disagreements
from hwgen.sw.core import golden
from hwgen.sw.families.shift.aqe import (AQE, FLOAT_BITS, MINWMLP, AlphaSchedule, inference_op,
                                         set_alpha)
from hwgen.build import BuildError, folding_budget
from hwgen.sw.compiler import compile_onnx
from hwgen.sw.families.data import digits
from hwgen.sw.families.export import export_onnx
from hwgen.sw.families.train import predict, train

HIDDEN = (64, 64)


def train_cell(split, act_bits: int, weight_bits: int, epochs: int, seed: int) -> MINWMLP:
    torch.manual_seed(seed)
    net = MINWMLP(split.x_train.shape[1], HIDDEN, split.n_classes,
                  in_max=int(split.x_train.max()), act_bits=act_bits, weight_bits=weight_bits,
                  estimator=AQE(0.5))
    steps = epochs * -(-len(split.x_train) // 64)
    schedule = AlphaSchedule(max(1, steps // 2))
    return train(net, split.x_train, split.y_train, epochs=epochs, seed=seed, progress=False,
                 on_step=lambda t: set_alpha(net, schedule(t)))


def hardware(net: MINWMLP, split, work: Path) -> dict:
    work.mkdir(parents=True)
    model = compile_onnx(export_onnx(net, work / "model.onnx"))
    gold = golden.run(model, split.x_test)[:, 0]
    try:
        print("   ", agreement(len(gold), pytorch_disagreements(gold, predict(net, split.x_test))))
    except BuildError as e:
        raise SystemExit(str(e)) from None
    target = get_target("ice40")
    kinds = "/".join(sorted({layer.kind for layer in model.layers[:-1]}))
    try:
        folding = choose_folding(model, **folding_budget(model, target))
        pipeline = Pipeline(model, folding)
        report = board_build(pipeline, target=target, build_dir=work / "board", n_in=model.n_in,
                             in_bits=model.in_type.bits, out_bits=model.types()[-1].bits,
                             cycles_per_inference=pipeline.interval, progress=lambda step: None)
    except DoesNotFitError as e:
        return {"kinds": kinds, "lcs": f"({e.needed})", "ebr": "", "dsp": "", "fmax": "no fit",
                "cycles": ""}
    return {"kinds": kinds, "lcs": str(report.lcs), "ebr": str(report.ebr),
            "dsp": str(report.dsps), "fmax": f"{report.fmax_mhz:.1f}",
            "cycles": str(report.cycles_per_inference)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bits", default="1,2,3", help="quantized widths of the grid")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0, help="data split and initialization seed")
    ap.add_argument("--no-synth", action="store_true", help="accuracy and operation only")
    args = ap.parse_args(argv)
    bits = [int(b) for b in args.bits.split(",") if b]
    if not bits or not all(1 <= b < FLOAT_BITS for b in bits):
        ap.error(f"--bits takes widths from 1 to {FLOAT_BITS - 1}")
    widths = bits + [FLOAT_BITS * 2]          # 32: float
    split = digits(seed=args.seed)
    start = time.perf_counter()
    rows = []
    cells = [(m, n) for m in widths for n in widths]
    with tempfile.TemporaryDirectory() as tmp:
        for i, (m, n) in enumerate(tqdm(cells, desc="grid", unit="cell")):
            net = train_cell(split, m, n, args.epochs, args.seed)
            acc = float((predict(net, split.x_test) == split.y_test).mean())
            hw = {"kinds": "float", "lcs": "", "ebr": "", "dsp": "", "fmax": "", "cycles": ""}
            if max(m, n) < FLOAT_BITS:
                hw = hardware(net, split, Path(tmp) / str(i)) if not args.no_synth else \
                    {**hw, "kinds": "(not built)"}
            rows.append((m, n, acc, inference_op(m, n), hw))

    base = next(acc for m, n, acc, _, _ in rows if m == n == FLOAT_BITS * 2)
    name = lambda b: "float" if b >= FLOAT_BITS else str(b)            # noqa: E731
    print(f"MINWMLP 64-{'-'.join(map(str, HIDDEN))}-10 on digits (AQE, {args.epochs} epochs, "
          f"seed {args.seed}); iCE40 UP5K in the UART wrapper (5,280 LCs, 30 EBR, 8 DSP)")
    print(f"{'act':>5} {'wt':>5} {'test %':>7} {'vs float':>8} {'op':>5}  {'IR kinds':<34}"
          f"{'LCs':>6} {'EBR':>4} {'DSP':>4} {'Fmax MHz':>9} {'cycles':>7}")
    for m, n, acc, op, hw in rows:
        print(f"{name(m):>5} {name(n):>5} {100 * acc:>7.2f} {100 * (acc - base):>+8.2f} {op:>5}  "
              f"{hw['kinds']:<34}{hw['lcs']:>6} {hw['ebr']:>4} {hw['dsp']:>4} {hw['fmax']:>9} "
              f"{hw['cycles']:>7}")
    print("op: Table I's rule (the smaller width decides); '(n)' LCs: needs n, more than fit")
    print(f"{len(rows)} cells in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
