"""The sparse SAM engine's RTL in Verilator: a serial-input pipeline (sparse SAM -> deserializer
-> add-subtract layer -> argmax) equals the golden model on 10,000 vectors, ties and fully
pruned outputs included; with the entries in block RAM, and loaded from the input stream."""

import json
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import rtlil

from hwgen.hw.sam import SparseSAMEngine
from hwgen.hw.resources import LOADED, SPARSE, Folding
from hwgen.sw.core import ir
from rtl_check import check_rtl
from test_cli import _hwgen

pytestmark = pytest.mark.rtl


@pytest.mark.parametrize("storage", [SPARSE, LOADED])
def test_sparse_sam_pipeline_rtl_equals_golden(tmp_path, storage):
    rng = np.random.default_rng(21)
    n, m, classes = 12, 10, 4
    s3 = ir.TensorType("signed", 3)
    terms = []
    for k, reduce in enumerate(("max", "min")):
        keep = rng.random((m, n)) < 0.25
        keep[2 + k] = False                         # one term of outputs 2 and 3 is empty
        keep[7] = False                             # output 7: both terms empty, a constant
        terms.append(ir.SAMTerm(reduce, 1, rng.integers(-3, 3, (m, n)), keep,
                                rng.integers(-4, 5, m)))
    sam = ir.SAMLayer("sam", n=n, terms=terms)
    fc = ir.DenseIntBinW("fc", weights=rng.integers(0, 2, (classes, m)))
    model = ir.Model(s3, n, [sam, fc, ir.ArgMax("argmax", n=classes)]).check()
    folding = {"sam": Folding(1, 1, storage), "fc": Folding(1, 5), "argmax": Folding(1, 1)}
    x = rng.integers(s3.lo, s3.hi + 1, (10_000, n))
    x[0], x[1] = s3.lo, s3.hi
    # small inputs and weights: most max and min terms tie between several entries
    sums = x[:, None, :] + np.where(terms[0].keep, terms[0].weights, -99)[None]
    assert ((sums == sums.max(axis=2, keepdims=True)).sum(axis=2) > 1).mean() > 0.2
    # loaded: the preamble is the entries' only source (the RAM starts empty)
    check_rtl(model, folding, x, tmp_path, seed=3)


@pytest.mark.synth
def test_hwgen_build_of_the_pruned_paper_network_fits_the_up5k(tmp_path):
    """examples/sam_paper_b.onnx (seed 002's configuration B, trained at paper scale and pruned
    to 6,041 entries, examples/sam_paper_onnx.py) builds for the UP5K: its entries go to SPRAM,
    loaded by the preamble, and the SAM layer has no multiplier."""
    onnx_path = Path(__file__).resolve().parents[1] / "examples" / "sam_paper_b.onnx"
    r = _hwgen("build", onnx_path, "--target", "ice40", "--out", "build", "--random-vectors",
               "100", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "build"
    assert "100/100 vectors matched" in (out / "verify.log").read_text()
    report = json.loads((out / "report.json").read_text())
    assert report["spram"] > 0 and report["timing_met"]
    for k in ("lcs", "ebr", "spram", "dsps"):
        assert report[k] <= report[f"{k}_total"], k
    model = ir.Model.load(out / "ir.json")
    sam = model.layers[0]
    assert sam.kind == "sam" and sum(int(t.keep.sum()) for t in sam.terms) == 6041
    engine = SparseSAMEngine(sam, in_type=model.in_type, storage="loaded")
    assert (out / "preamble.bin").stat().st_size == engine.n_entries * engine.chunks
    assert "$mul" not in rtlil.convert(engine, name="top", emit_src=False)
