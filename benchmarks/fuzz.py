"""The fuzz tier at scale (issue 21): random models through every family's front end and export,
compiled and checked against the exact rational reference, and a sample through the RTL.

Each model is a spec drawn by ``tests/fuzz_models.py`` (its module docs list the families and
the extremes); per model: compile (or the compiler's one-line refusal), the golden model
against the exact reference (``tests/exact_reference.py``) on every vector, and PyTorch's
float64 inference against both, a difference counting as a float tie only where the exact
reference shows a quantizer input exactly on a decision boundary. ``--rtl-sample K`` models
drawn from the compiled ones go through ``hwgen build`` (no synthesis): the RTL in Verilator
against the golden model on their fuzz vectors plus ``--rtl-vectors`` random ones. A drawn
model the UP5K cannot hold (``hwgen build`` refuses it in one line before making any RTL) is
counted and replaced by the next.

    python benchmarks/fuzz.py [--models 1000] [--rtl-sample 10] [--seed 0] [--vectors 400]

Prints the counts, each class of refusal or failure with the spec of its first model
(``fuzz_models.check(spec)`` reproduces it), and writes every failing spec to ``--failures``
when given.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz_models import FAMILIES, RandomDraw, check, draw_spec  # noqa: E402
from hwgen.boards.flow import DoesNotFitError as FlowDoesNotFit  # noqa: E402
from hwgen.build import build  # noqa: E402
from hwgen.hw.folding import DoesNotFitError as FoldingDoesNotFit  # noqa: E402


def error_class(message: str) -> str:
    """A message with its node names, numbers and value lists taken out: one class per cause."""
    msg = message.splitlines()[0] if message else ""
    msg = re.sub(r"\b(node|layer|weight|tensor|term) [\w.()-]+", r"\1 X", msg)
    msg = re.sub(r"\[[^\]]*\]|\([^)]*\)", "(..)", msg)
    msg = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "N", msg)
    return msg[:120]


def rtl_check(outcome, n_random: int, seed: int) -> str:
    """``hwgen build --no-synth`` of the model with its fuzz vectors: "match", or why not."""
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path, vectors = Path(tmp) / "model.onnx", Path(tmp) / "vectors.npy"
        onnx_path.write_bytes(outcome.case.onnx.SerializeToString())
        np.save(vectors, outcome.case.vectors)
        try:
            res = build(onnx_path, target="ice40", out=Path(tmp) / "out", vectors=vectors,
                        n_random=n_random, seed=seed, synth=False, log=lambda *a, **k: None)
        except (FoldingDoesNotFit, FlowDoesNotFit) as e:
            return f"no fit: {str(e).splitlines()[0]}"
        except Exception as e:       # noqa: BLE001 - reported, not raised
            return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return f"match: {res.verify_summary}"


def report_classes(title: str, outcomes: list) -> None:
    classes: dict[str, list] = {}
    for o in outcomes:
        classes.setdefault(error_class(o.message), []).append(o)
    print(f"{title}: {len(outcomes)}")
    for cls, members in sorted(classes.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(members):5d}  {cls}")
        print(f"         first: check({members[0].spec!r})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=int, default=1000, help="random models (default 1000)")
    p.add_argument("--rtl-sample", type=int, default=10,
                   help="compiled models to verify on the RTL (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the model draws (default 0)")
    p.add_argument("--vectors", type=int, default=400,
                   help="random vectors per model, besides all-min, all-max, alternating and "
                        "tie vectors (default 400)")
    p.add_argument("--rtl-vectors", type=int, default=2000,
                   help="random vectors per RTL model, besides its fuzz vectors (default 2000)")
    p.add_argument("--families", default=",".join(FAMILIES),
                   help=f"comma-separated families (default all: {','.join(FAMILIES)})")
    p.add_argument("--failures", type=Path, help="write each failing spec here (JSON lines)")
    args = p.parse_args(argv)
    families = tuple(args.families.split(","))
    if args.models < 1 or args.rtl_sample < 0 or not set(families) <= set(FAMILIES):
        p.error("--models must be positive, --rtl-sample non-negative, families among "
                f"{', '.join(FAMILIES)}")
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    outcomes = []
    for _ in tqdm(range(args.models), desc="models", unit="model"):
        spec = draw_spec(RandomDraw(rng), families[int(rng.integers(len(families)))])
        outcomes.append(check(spec, args.vectors))
    seconds = time.perf_counter() - start

    by_status = Counter(o.status for o in outcomes)
    compiled = [o for o in outcomes if o.status == "compiled"]
    print(f"\nmodels: {len(outcomes)} ({dict(Counter(o.spec['family'] for o in outcomes))}); "
          f"{seconds:.0f} s")
    print(f"compiled: {by_status['compiled']}")
    report_classes("refused by the compiler (CompileError)",
                   [o for o in outcomes if o.status == "refused"])
    undocumented = [o for o in outcomes if o.status == "refused" and not o.documented]
    print(f"  of which not a documented limit: {len(undocumented)}")
    report_classes("refused by a front end (lowering or export, ValueError)",
                   [o for o in outcomes if o.status == "not-exported"])
    report_classes("crashes (any other exception)",
                   [o for o in outcomes if o.status == "crash"])
    report_classes("exact reference errors", [o for o in outcomes if o.status == "reference-error"])
    vectors = sum(o.n_vectors for o in outcomes)
    bad = [o for o in compiled if o.golden_vs_exact]
    print(f"golden != exact: {sum(o.golden_vs_exact for o in compiled)} of "
          f"{sum(o.n_vectors for o in compiled)} vectors, in {len(bad)} models")
    for o in bad[:5]:
        print(f"         check({o.spec!r})")
    diffs = sum(o.torch_vs_exact for o in outcomes)
    ties = sum(o.torch_diff_ties for o in outcomes)
    untied = [o for o in outcomes if o.torch_vs_exact > o.torch_diff_ties]
    print(f"PyTorch != golden (the exact reference): {diffs} of {vectors} vectors, {ties} of them "
          f"exact ties, {diffs - ties} without a tie (in {len(untied)} models)")
    for o in untied[:5]:
        print(f"         check({o.spec!r})")
    print(f"rows with an exact tie: {sum(o.ties for o in outcomes)} of {vectors}")

    # a model the UP5K cannot hold is refused by hwgen build (one line, exit 2) before any RTL
    # exists: it is counted and the next compiled model is drawn in its place
    sample, results, no_fit = [], [], []
    with tqdm(total=args.rtl_sample, desc="RTL", unit="model") as bar:
        for i in rng.permutation(len(compiled)):
            if len(sample) == args.rtl_sample:
                break
            r = rtl_check(compiled[i], args.rtl_vectors, args.seed)
            if r.startswith("no fit"):
                no_fit.append(compiled[i])
                continue
            sample.append(compiled[i])
            results.append(r)
            bar.update()
    matched = sum(r.startswith("match") for r in results)
    print(f"RTL == golden: {matched} of {len(sample)} sampled models ({len(no_fit)} drawn models "
          "did not fit the UP5K and were replaced)")
    for o in no_fit:
        print(f"  {o.spec['family']:10s} does not fit: check({o.spec!r})")
    for o, r in zip(sample, results):
        print(f"  {o.spec['family']:10s} {r}")
        if not r.startswith("match"):
            print(f"         check({o.spec!r})")
    failing = [o for o in outcomes if o.failures] + \
        [o for o, r in zip(sample, results) if not r.startswith("match")]
    print(f"models failing a check: {len(failing)}")
    if args.failures:
        args.failures.write_text("".join(json.dumps({"spec": o.spec, "failures": o.failures})
                                         + "\n" for o in failing))
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
