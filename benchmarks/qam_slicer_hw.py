"""The QAM slicer (seed 000) in hardware: logic cells and Fmax per QAM order and form.

For 4-, 16-, 64- and 256-QAM, a receiver's decision device alone (``n`` complex samples of
signed 8-bit I/Q codes over [-2, 2), sliced to the constellation) goes through the whole
``hwgen build`` flow for the iCE40 UP5K: compile, RTL verification against the golden model
(cocotb + Verilator), yosys + nextpnr, and the report's logic cells and Fmax. Two grids per
order: levels a power of two apart in codes (``delta = (M - 1) 2^(6 - log2 M) / 64``, the
shift-and-saturate form) and ``delta = 1`` (uneven integer boundaries, the comparator form;
4-QAM's one boundary 0 is a shift either way). Each engine alone is also synthesized out of
context in both forms on the power-of-two grid, against the estimate of
:func:`hwgen.hw.qam_slicer.estimate_qam_slicer`.
``--network`` adds the transmitter fragment of an over-the-air network: a complex layer (64
pixels -> 8 complex outputs, 8-bit weights, ``dense_mac``) ending in a 16-QAM slicer.

Measured (``python benchmarks/qam_slicer_hw.py --network``, n = 8, 2,000 verification vectors
per build, every one matched; 2-core CPU shared with other jobs; 147 s in all):

=========  ==================  ======================  ==========================
order      shift form (pow2)   comparator form (Δ=1)   engine alone, both forms
=========  ==================  ======================  ==========================
4-QAM      258 LC, 53.4 MHz    (same: one boundary 0)  66 LC (estimate 123)
16-QAM     355 LC, 54.0 MHz    797 LC, 59.3 MHz        114 LC (estimate 203)
64-QAM     448 LC, 53.7 MHz    1,355 LC, 53.7 MHz      162 LC (estimate 283)
256-QAM    544 LC, 54.0 MHz    2,456 LC, 55.0 MHz      210 LC (estimate 363)
=========  ==================  ======================  ==========================

Whole designs include the UART wrapper and the output serializer. On boundaries ``2^k`` apart
the comparators test only the bits above ``k``, and synthesis maps both forms to the same
cells; uneven boundaries need full-width comparators. The network (``--network``) verified and
fit in 3,751 LCs, 8 EBR and no DSP, but reached only 10.5 MHz against the 12 MHz clock: its
folding does 16 LUT products a cycle into one adder tree (the folding chooser has no timing
model); the slicer is not on its critical path.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from hwgen.boards.ooc import synth_ooc
from hwgen.hw.qam_slicer import QAMSlicerEngine, estimate_qam_slicer
from hwgen.hw.resources import Folding
from hwgen.sw.core import ir
from hwgen.build import build
from hwgen.sw.families.constellation.lower import lower, slicer_only
from hwgen.sw.families.export import export_onnx

S8 = ir.TensorType("signed", 8)
STEP = 2.0 ** -6


def pow2_delta(order: int) -> float:
    m = math.isqrt(order)
    return (m - 1) * (128 // m) * STEP


def build_one(path: Path, work: Path, n_random: int) -> dict:
    res = build(path, target="ice40", out=work / (path.stem + "_build"), n_random=n_random,
                log=lambda *_: None)
    r = res.report
    return {"lcs": r.lcs, "ebr": r.ebr, "dsp": r.dsps, "fmax_mhz": round(r.fmax_mhz, 1),
            "timing_met": r.timing_met, "verified": res.verify_summary,
            "layers": [layer.kind for layer in res.model.layers]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8, help="complex samples per vector (default 8)")
    ap.add_argument("--orders", type=int, nargs="+", default=list(ir.QAM_ORDERS))
    ap.add_argument("--random-vectors", type=int, default=2000)
    ap.add_argument("--network", action="store_true",
                    help="also build a complex layer ending in a 16-QAM slicer")
    ap.add_argument("--out", type=Path, default=Path("runs/qam_slicer_hw"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows, start = [], time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for order in args.orders:
            for grid, delta in (("pow2", pow2_delta(order)), ("unit", 1.0)):
                path = work / f"slicer{order}_{grid}.onnx"
                export_onnx(slicer_only(args.n, order=order, delta=delta, in_type=S8,
                                        in_step=STEP), path)
                row = {"model": f"slicer {order}-QAM", "grid": grid, **build_one(
                    path, work, args.random_vectors)}
                layer = ir.QAMSlicer.for_grid("s", args.n, order, delta, STEP)
                row["form"] = "shift" if layer.shift_form() is not None else "compare"
                rows.append(row)
                print(f"{row['model']:<16} {grid:<5} {row['form']:<8} {row['lcs']:>5} LC "
                      f"{row['fmax_mhz']:>6.1f} MHz  {row['verified']}", flush=True)
            layer = ir.QAMSlicer.for_grid("s", args.n, order, pow2_delta(order), STEP)
            for form in ("shift", "compare"):
                engine = QAMSlicerEngine(layer, in_type=S8, pe=2 * args.n, form=form)
                ooc = synth_ooc(engine, top="engine", build_dir=work / f"ooc{order}{form}")
                est = estimate_qam_slicer(layer, S8, Folding(2 * args.n))
                rows.append({"model": f"engine {order}-QAM", "grid": "pow2", "form": form,
                             "ooc_lcs": ooc.lcs, "estimate_lcs": est.lcs})
                print(f"engine {order:>3}-QAM  {form:<8} {ooc.lcs:>5} LC packed, "
                      f"{est.lcs:>5} estimated", flush=True)
        if args.network:
            import torch
            from hwgen.sw.families.constellation.complex_nn import ComplexLinear
            torch.manual_seed(0)
            net = lower(ComplexLinear(64, 8), order=16, delta=1.0,
                        in_type=ir.TensorType("unsigned", 5), in_step=2 ** -4)
            path = work / "qam16_net.onnx"
            export_onnx(net, path)
            row = {"model": "64 -> 8 complex + 16-QAM", "grid": "unit",
                   **build_one(path, work, args.random_vectors)}
            rows.append(row)
            print(f"{row['model']}: {row['lcs']} LC, {row['dsp']} DSP, {row['ebr']} EBR, "
                  f"{row['fmax_mhz']} MHz; {row['verified']}", flush=True)

    print(f"\n{'model':<28}{'grid':<6}{'form':<9}{'LCs':>6}{'Fmax MHz':>10}  "
          f"{'OOC LCs':>8}{'estimate':>9}")
    for r in rows:
        print(f"{r['model']:<28}{r['grid']:<6}{r.get('form', ''):<9}"
              f"{r.get('lcs', ''):>6}{r.get('fmax_mhz', ''):>10}  "
              f"{r.get('ooc_lcs', ''):>8}{r.get('estimate_lcs', ''):>9}")
    print(f"\n{time.monotonic() - start:.0f} s in all")
    (args.out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
