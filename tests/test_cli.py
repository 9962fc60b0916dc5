"""The ``hwgen`` command line: bad input gives one line, exit code 2 and no output folder."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwgen.sw.core.onnx_ops import QONNX_DOMAIN


def _hwgen(*args, cwd):
    return subprocess.run([sys.executable, "-m", "hwgen.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def _assert_one_line_error(r, *needles):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for needle in needles:
        assert needle in lines[0]


def _big_model(path, n):
    """A single n x n binary layer: more weight bits than any UP5K folding can hold."""
    w = np.where(np.random.default_rng(0).random((n, n)) < 0.5, -1.0, 1.0).astype(np.float32)
    nodes = [helper.make_node("Quant", ["x", "one", "zero", "bits"], ["xq"], name="quant_in",
                              domain=QONNX_DOMAIN, signed=0, narrow=0, rounding_mode="ROUND"),
             helper.make_node("MatMul", ["xq", "w"], ["logits"], name="huge_fc")]
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), k)
             for k, v in {"one": 1.0, "zero": 0.0, "bits": 4.0, "w": w}.items()]
    g = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         ["b", n])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", n])],
                          inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid(QONNX_DOMAIN, 1)])
    m.ir_version = 10
    path.write_bytes(m.SerializeToString())


def test_missing_model_file(tmp_path):
    r = _hwgen("build", "absent.onnx", "--out", "out", cwd=tmp_path)
    _assert_one_line_error(r, "absent.onnx", "no such file")
    assert not (tmp_path / "out").exists()


def test_malformed_model_file(tmp_path):
    (tmp_path / "junk.onnx").write_text("not a model")
    r = _hwgen("build", "junk.onnx", "--out", "out", cwd=tmp_path)
    _assert_one_line_error(r, "junk.onnx", "not a valid ONNX model")
    assert not (tmp_path / "out").exists()


def test_model_too_big_for_the_device(tmp_path):
    _big_model(tmp_path / "big.onnx", 1024)
    r = _hwgen("build", "big.onnx", "--out", "out", cwd=tmp_path)
    _assert_one_line_error(r, "logic cells", "EBR")
    assert re.search(r"layer (huge_fc|argmax) ", r.stderr)
    assert not (tmp_path / "out").exists()


def test_unknown_target_is_refused(tmp_path, trained_onnx):
    r = _hwgen("build", trained_onnx, "--target", "nosuchboard", cwd=tmp_path)
    _assert_one_line_error(r, "nosuchboard", "ice40")


def test_wrong_flag_is_one_line(tmp_path, trained_onnx):
    r = _hwgen("build", trained_onnx, "--frobnicate", cwd=tmp_path)
    _assert_one_line_error(r, "--frobnicate")


def test_bad_vectors_file_names_the_file(tmp_path, trained_onnx):
    np.save(tmp_path / "v.npy", np.full((3, 64), 99))
    r = _hwgen("build", trained_onnx, "--vectors", "v.npy", "--out", "out", cwd=tmp_path)
    _assert_one_line_error(r, "v.npy", "[0, 31]")
    assert not (tmp_path / "out").exists()


def test_refuses_to_overwrite_a_folder_it_did_not_write(tmp_path, trained_onnx):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    r = _hwgen("build", trained_onnx, "--out", "mine", cwd=tmp_path)
    _assert_one_line_error(r, "mine", "not an earlier hwgen build")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


@pytest.mark.rtl
@pytest.mark.synth
def test_build_writes_every_artifact(tmp_path, small_onnx):
    test_split = small_onnx.parent / "digits_test.npy"
    r = _hwgen("build", small_onnx, "--target", "ice40", "--out", "build",
               "--vectors", test_split, "--random-vectors", "2000", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "build"
    for name in ("ir.json", "top.v", "vectors.npz", "verify.log", "report.json", "report.txt",
                 "top.bin"):
        assert (out / name).is_file(), name
    verify_log = (out / "verify.log").read_text()
    assert "2360/2360 vectors matched" in verify_log
    assert "design     top.v, top top" in verify_log          # the file the folder holds
    assert (out / "top.bin").stat().st_size == 104_090   # an iCE40 UP5K bitstream
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".build.")]
    report = json.loads((out / "report.json").read_text())
    assert 0 < report["lcs"] <= report["lcs_total"] == 5280
    assert report["fmax_mhz"] > 0 and report["cycles_per_inference"] > 0
    # paths inside the build folder, the model and the verdict in report.txt, umask honoured
    assert report["bitstream"] == "top.bin"
    assert json.loads((out / "synth" / "report.json").read_text())["bitstream"] == "../top.bin"
    report_txt = (out / "report.txt").read_text()
    assert "model: model.onnx" in report_txt and "2360/2360 vectors matched" in report_txt
    assert "logic cells" in report_txt
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask
    # a line per synthesis stage, with its time
    assert re.search(r"^  yosys +\d+\.\d s$", r.stdout, re.MULTILINE), r.stdout
    assert re.search(r"^  nextpnr-ice40 +\d+\.\d s$", r.stdout, re.MULTILINE), r.stdout
    # a second build into the same folder replaces it
    r = _hwgen("build", small_onnx, "--out", "build", "--random-vectors", "100", "--no-synth",
               cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "100/100 vectors matched" in (out / "verify.log").read_text()
    assert not (out / "top.bin").exists()


@pytest.mark.rtl
def test_demo_shift_family_trains_and_verifies(tmp_path):
    r = _hwgen("demo", "--family", "shift", "--bits", "3", "--hidden", "16", "--epochs", "4",
               "--out", "d", "--no-synth", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "3-bit power-of-two MINW-Net MLP (AQE)" in r.stdout
    ir_kinds = [layer["kind"] for layer in
                json.loads((tmp_path / "d" / "build" / "ir.json").read_text())["layers"]]
    assert ir_kinds == ["dense_shift", "dense_shift", "argmax"]
    assert "10360/10360 vectors matched" in (tmp_path / "d" / "build" / "verify.log").read_text()


@pytest.mark.rtl
def test_demo_sam_family_prunes_quantizes_and_verifies(tmp_path):
    r = _hwgen("demo", "--family", "sam", "--hidden", "32", "--epochs", "8", "--out", "d",
               "--no-synth", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "SAM network (32 Sum-and-Max outputs, pruned, 8-bit output)" in r.stdout
    kept = int(re.search(r"pruned the SAM layer to (\d+) of 4096 entries", r.stdout).group(1))
    doc = json.loads((tmp_path / "d" / "build" / "ir.json").read_text())
    assert [layer["kind"] for layer in doc["layers"]] == ["sam", "dense_mac", "argmax"]
    assert sum(len(row) for t in doc["layers"][0]["terms"] for row in t["rows"]) == kept < 4096
    assert "10360/10360 vectors matched" in (tmp_path / "d" / "build" / "verify.log").read_text()
