"""End to end run of benchmarks/modrec.py (seed 001, §4.1.2) on tiny settings."""

import json

import numpy as np
import pytest

from benchmark_script import load_benchmark, restore_threads  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("restore_threads")


def test_modrec_script_end_to_end(tmp_path):
    out = tmp_path / "modrec"
    snrs = [-10.0, 0.0, 10.0, 16.0]
    n_test = 3
    assert load_benchmark("modrec").main([
        "--n-train", "4", "--n-test", str(n_test), "--snrs", *map(str, snrs), "--epochs", "1",
        "--scale", "0.05", "--repeats", "5", "--time-batch", "8", "--no-paper-scale",
        "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert (out / "modrec_accuracy.png").stat().st_size > 0
    assert (out / "modrec_confusion.png").stat().st_size > 0
    k = len(res["classes"])
    assert k == 11 and res["snrs"] == snrs
    assert res["n_train_frames"] == 4 * k * len(snrs)
    assert res["n_test_frames"] == n_test * k * len(snrs)
    assert res["config"] == {"n_train": 4, "n_test": n_test, "epochs": 1, "scale": 0.05}

    models = ("teacher", "student", "distilled")
    step = 1.0 / (n_test * k)                       # accuracy at one SNR is a multiple of this
    for m in models:
        acc = res["accuracy"][m]
        assert sorted(float(s) for s in acc) == snrs
        for a in acc.values():
            assert 0.0 <= a <= 1.0
            assert abs(a / step - round(a / step)) < 1e-6
        assert abs(res["accuracy_all"][m] - np.mean(list(acc.values()))) < 1e-9
        assert abs(res["accuracy_high"][m] - np.mean([acc["10.0"], acc["16.0"]])) < 1e-9
        assert abs(res["accuracy_low"][m] - acc["-10.0"]) < 1e-9
        assert len(res["losses"][m]) == 1 and np.isfinite(res["losses"][m][0])
    gain = res["distillation_gain"]
    assert abs(gain["all"] - (res["accuracy_all"]["distilled"]
                              - res["accuracy_all"]["student"])) < 1e-9

    # confusion over SNR >= 10 dB: 2 SNRs x n_test frames in every true-class row, and its
    # trace gives the same accuracy as accuracy_by_snr
    assert res["confusion_min_snr"] == 10.0 and res["confusion_frames"] == 2 * n_test * k
    for m in models:
        c = np.array(res["confusion"][m])
        assert c.shape == (k, k) and (c >= 0).all()
        assert (c.sum(axis=1) == 2 * n_test).all()
        assert abs(np.trace(c) / c.sum() - res["accuracy_high"][m]) < 1e-9

    # the teacher is the bigger network (Tables 4.3/4.4: 3.27x at scale 1); wall-clock times
    # on a shared CPU only have to be positive and finite
    p = res["params"]
    assert p["student"] == p["distilled"] and p["teacher"] > 2 * p["student"]
    t = res["timing"]
    assert t["teacher"]["params"] == p["teacher"] and t["batch"] == 8
    assert abs(t["ratio"]["params"] - p["teacher"] / p["student"]) < 1e-9
    assert t["teacher"]["macs"] > 2 * t["student"]["macs"] > 0
    assert abs(t["ratio"]["macs"] - t["teacher"]["macs"] / t["student"]["macs"]) < 1e-9
    for m in ("teacher", "student"):
        for key in ("s_per_frame_b1", "s_per_frame_batch"):
            assert 0.0 < t[m][key] < 1.0
    assert res["timing_paper_scale"] is None
