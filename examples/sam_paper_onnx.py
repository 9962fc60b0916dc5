"""The pruned paper network of seed 002 (configuration B) as an integer ONNX model for ``hwgen build``.

Takes the configuration B that ``benchmarks/sam_paper.py --full`` trained (``config_b.pt`` in
its ``--out`` folder), counts the activations on the same counting set as the benchmark (10^5
signals, seed 2), keeps the ``--params`` entries of highest activation rate (§III-D; default
6,041, the fewest at which the benchmark's ``--full`` run kept accuracy >= 0.95), quantizes it
with :func:`hwgen.sw.families.sam.lower.lower` (8-bit input codes of step 4/128, the SAM
weights on that grid, 8-bit output weights), reports the float and the integer network's
accuracy on the benchmark's test set (10^5 signals, seed 1), and writes the integer network.

The 6,041-entry network as this script writes it is ``examples/sam_paper_b.onnx`` in the
repository; ``hwgen build examples/sam_paper_b.onnx --target ice40`` builds it (README).

Usage: ``python examples/sam_paper_onnx.py [--run runs/sam_full] [--params 6041]
[--out examples/sam_paper_b.onnx] [--count-size 100000] [--test-size 100000]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
from torch import nn

from hwgen.sw.families.export import export_onnx
from hwgen.sw.families.sam.correlated import CONFIG_B, accuracy, build_model
from hwgen.sw.families.sam.layers import count_activations, prune
from hwgen.sw.families.sam.lower import InputGrid, lower


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=os.path.join("runs", "sam_full"),
                    help="folder holding config_b.pt (sam_paper.py --out)")
    ap.add_argument("--params", type=int, default=6041, help="SAM entries to keep")
    ap.add_argument("--out", default=os.path.join("examples", "sam_paper_b.onnx"))
    ap.add_argument("--count-size", type=int, default=100_000)
    ap.add_argument("--test-size", type=int, default=100_000)
    ap.add_argument("--weight-bits", type=int, default=8, help="output-layer weight bits")
    args = ap.parse_args(argv)
    path = os.path.join(args.run, "config_b.pt")
    if not os.path.exists(path):
        ap.error(f"no {path}: train it with benchmarks/sam_paper.py --full --out {args.run}")
    if min(args.params, args.count_size, args.test_size) < 1:
        ap.error("--params, --count-size and --test-size must be positive")
    start = time.perf_counter()
    state = torch.load(path, weights_only=True)
    model = build_model(CONFIG_B)
    model.load_state_dict(state)
    model.eval()
    task = CONFIG_B.task
    x_count, _ = task.test_set(args.count_size, seed=2)
    acts = count_activations(model[0], x_count)
    scores = torch.cat([r.flatten() for r in acts.rates()])
    if args.params > int((scores > 0).sum()):
        ap.error(f"--params {args.params} is more than the {int((scores > 0).sum())} entries "
                 "ever selected")
    threshold = float(torch.topk(scores, args.params).values[-1])
    pruned = prune(model[0], acts, threshold)
    x, y = task.test_set(args.test_size, seed=1)
    float_acc = accuracy(nn.Sequential(pruned, model[1]), x, y)
    grid = InputGrid(bits=8, clip=4.0)
    net = lower(pruned, model[1], grid=grid, weight_bits=args.weight_bits)
    int_acc = float((net(grid.codes(x)).argmax(dim=1) == y).double().mean())
    export_onnx(net, args.out)
    print(f"kept {pruned.n_params:,} SAM entries (activation rate >= {threshold:.2e}), "
          f"{int(pruned.empty.sum())} empty terms; test accuracy on {args.test_size:,} signals: "
          f"float {float_acc:.4f}, integer {int_acc:.4f}; wrote {args.out} "
          f"({os.path.getsize(args.out):,} bytes, {time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
