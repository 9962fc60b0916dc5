"""End-to-end smoke tests of benchmarks/comms_autoencoder.py and benchmarks/compression_table.py.

Each runs the script's ``main`` with tiny settings (a few training steps, a few thousand
blocks) and checks the structure and the sanity of results.json: rates in [0, 1], the theory
columns equal to :mod:`hwgen.sw.families.compression.comms`'s formulas, memory accounting consistent
with :func:`hwgen.sw.families.compression.compress.memory_bits`, pruning fractions as asked.
"""

from __future__ import annotations

import json
import math

import pytest

from hwgen.sw.families.compression import comms as C
from benchmark_script import load_benchmark, restore_threads  # noqa: F401 (fixture)


pytestmark = pytest.mark.usefixtures("restore_threads")


def _is_rate(x) -> bool:
    return isinstance(x, float) and 0.0 <= x <= 1.0


def test_comms_autoencoder_tiny(tmp_path):
    mod = load_benchmark("comms_autoencoder")
    out = tmp_path / "ca"
    fractions = [0.0, 0.5, 0.9]
    rc = mod.main(["--steps", "40", "--blocks", "3000", "--retrain-steps", "10",
                   "--curve-retrain-steps", "3", "--ebn0s", "0", "4", "8", "--bits", "1", "4",
                   "8", "--fractions", *map(str, fractions), "--out", str(out),
                   "--no-progress"])
    assert rc == 0
    assert (out / "comms_autoencoder.png").stat().st_size > 1000
    res = json.loads((out / "results.json").read_text())
    assert res["steps"] == 40 and res["blocks"] == 3000 and res["ebn0s"] == [0.0, 4.0, 8.0]

    a = res["a"]
    assert set(a["autoencoders"]) == {"ae 1-1 student", "ae 4-7 student", "ae 4-7 teacher",
                                      "ae 8-8 teacher"}
    for curve in a["autoencoders"].values():
        assert set(curve) == {"0.0", "4.0", "8.0"}
        assert all(_is_rate(v) for v in curve.values())
        # a rate over 3000 blocks is a multiple of 1/3000
        assert all(abs(v * 3000 - round(v * 3000)) < 1e-6 for v in curve.values())
    for e in ("0.0", "4.0", "8.0"):
        assert a["bpsk_theory"]["1"][e] == pytest.approx(C.bler_uncoded_bpsk(1, float(e)))
        assert a["hamming74_hard_theory"][e] == pytest.approx(C.bler_hamming74_hard(float(e)))
        assert _is_rate(a["hamming74_hard_sim"][e])
    # BPSK theory falls with Eb/N0, and k bits fail more often than one
    b1 = a["bpsk_theory"]["1"]
    assert b1["0.0"] > b1["4.0"] > b1["8.0"] > 0
    assert a["bpsk_theory"]["8"]["4.0"] > a["bpsk_theory"]["1"]["4.0"]
    # even 40 + 20 steps teach the 1-1 model an antipodal code near BPSK at 0 dB
    assert a["one_one_codebook"][0] * a["one_one_codebook"][1] < 0
    assert abs(a["autoencoders"]["ae 1-1 student"]["0.0"] - b1["0.0"]) < 0.05
    assert isinstance(a["one_one_matches_bpsk"], bool)

    b = res["b"]
    assert b["ebn0_db"] == 4.0
    assert set(b["models"]) == {"ae 4-7 student", "ae 4-7 teacher", "ae 4-7 teacher + L2"}
    for d in b["models"].values():
        assert set(d["by_bits"]) == {"1", "4", "8"}
        assert _is_rate(d["float"]) and all(_is_rate(v) for v in d["by_bits"].values())
        assert d["lossless_from_bits"] in (None, 1, 4, 8)
        mem = d["memory_bits_by_bits"]
        assert mem["1"] < mem["4"] < mem["8"] < d["memory_bits_float"]

    c = res["c"]
    assert _is_rate(c["float"]["bler"]) and _is_rate(c["int8"]["bler"])
    assert c["float"]["memory_bits"] == 32 * 135_944          # Table 4.1's parameter count
    assert c["int8"]["memory_bits"] < c["float"]["memory_bits"] / 3.5

    d = res["d"]
    assert d["fraction"] == 0.5 and d["retrain_steps"] == 10
    assert d["before"] == c["float"]["bler"]                  # same model, noise and messages
    assert all(_is_rate(d[k]) for k in ("before", "pruned", "retrained"))
    # the masks survived retraining: still (at least) half the weights zero
    assert 0.5 <= d["sparsity_after_retraining"] < 0.51
    assert d["memory_bits_pruned"] < d["memory_bits_dense"]

    e = res["e"]
    assert e["fractions"] == fractions and e["curve_retrain_steps"] == 3
    for key in ("plain", "l1"):
        assert len(e[key]["pruned"]) == len(fractions) == len(e[key]["retrained"])
        assert all(_is_rate(v) for v in e[key]["pruned"] + e[key]["retrained"])
        for f, s in zip(fractions, e[key]["sparsity"]):
            assert s >= f - 1e-3 and s - f < 0.01
    assert e["plain"]["pruned"][0] == c["float"]["bler"]      # 0 % pruning is the teacher


def test_comms_lossless_rule():
    mod = load_benchmark("comms_autoencoder")
    n = 10_000
    # float 0.05: s.e. of a difference ~ 0.0031, tolerance ~ 0.0062
    assert mod.lossless_from(0.05, {1: 0.4, 2: 0.1, 3: 0.052, 4: 0.049, 5: 0.05}, n) == 3
    assert mod.lossless_from(0.05, {1: 0.4, 2: 0.05, 3: 0.08, 4: 0.05}, n) == 4
    assert mod.lossless_from(0.05, {1: 0.4, 2: 0.3}, n) is None


def test_compression_table_tiny(tmp_path):
    mod = load_benchmark("compression_table")
    out = tmp_path / "ct"
    rc = mod.main(["--steps", "40", "--distill-steps", "20", "--retrain-steps", "5",
                   "--blocks", "2000", "--repeats", "5", "--batch", "32", "--out", str(out),
                   "--no-progress"])
    assert rc == 0
    assert (out / "compression_table.png").stat().st_size > 1000
    res = json.loads((out / "results.json").read_text())
    rows = {r["row"].strip(): r for r in res["rows"]}
    base = rows["teacher decoder (float)"]
    assert base["memory_bits"] == 32 * (8 * 256 + 256 + 256 * 256 + 256)
    assert base["memory_saved"] == 0 and base["speedup_1"] == 1 and base["bler_change"] == 0
    for r in res["rows"]:
        assert _is_rate(r["bler"]) and r["t1_s"] > 0 and r["tbatch_s"] > 0
        assert math.isclose(r["memory_saved"], 1 - r["memory_bits"] / base["memory_bits"])
        assert math.isclose(r["bler_change"], r["bler"] - base["bler"])

    stud = rows["distillation: student"]
    assert stud["memory_bits"] == 32 * (8 * 256 + 256)
    assert stud["memory_saved"] > 0.96
    q = rows["8-bit quantization (dense float)"]
    # 8 bits per weight + lo/hi per layer, biases float32
    assert q["memory_bits"] == 8 * (8 * 256 + 256 * 256) + 2 * 64 + 32 * 512
    assert 0.7 < q["memory_saved"] < 0.75
    p = rows["50% prune + retrain (dense float)"]
    assert res["prune_fraction"] == 0.5
    assert p["nonzero_weights"] == (8 * 256 + 256 * 256) // 2
    assert res["sparsity"]["pruned"] == pytest.approx(0.5, abs=1e-9)
    assert p["memory_saved"] > 0.4
    combo = rows["distill->prune->quantize (dense)"]
    assert combo["memory_bits"] < stud["memory_bits"] < q["memory_bits"]
    assert combo["nonzero_weights"] <= (8 * 256) // 2
    # the sparse kernel rows run the same weights: same BLER as their dense rows
    assert rows["50% pruned, sparse CSR kernel"]["bler"] == p["bler"]
    assert rows["combination, sparse CSR kernel"]["bler"] == combo["bler"]
    if res["int8_kernel_available"]:
        assert _is_rate(rows["8-bit, int8 kernel (fbgemm)"]["bler"])
