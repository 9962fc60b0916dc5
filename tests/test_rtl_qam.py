"""The QAM slicer's Verilog in cocotb/Verilator against the golden model, exhaustively: every
(I, Q) pair of a 10-bit grid, 2^20 of them, boundaries included, for 4-, 16-, 64- and 256-QAM,
in both the shift-and-saturate form (levels 2^k codes apart) and the comparator form (uneven
boundaries). The golden model itself equals a nearest-point search on the same pairs
(tests/test_hw_qam.py)."""

import json

import numpy as np
import pytest

from hwgen.hw.qam_slicer import slicer_form
from hwgen.hw.resources import Folding
from hwgen.sw.core import ir
from rtl_check import check_rtl
from test_hw_qam import S10, SCALE, pow2_delta

N = 64                     # complex elements per vector: 2^20 pairs in 16,384 vectors


def every_iq_pair() -> np.ndarray:
    """Vectors in block layout whose (Re, Im) element pairs run over every 10-bit (I, Q)."""
    pairs = np.arange(1 << 20)
    i = (pairs >> 10) + S10.lo
    q = (pairs & 1023) + S10.lo
    return np.concatenate([i.reshape(-1, N), q.reshape(-1, N)], axis=1)


# every order in the shift form; the comparator form on 256-QAM's 15 uneven boundaries (and on
# every order and grid in amaranth.sim, tests/test_hw_qam.py)
CASES = [(order, "pow2") for order in ir.QAM_ORDERS] + [(256, "unit")]


@pytest.mark.rtl
@pytest.mark.parametrize("order,grid", CASES, ids=[f"{o}qam-{g}" for o, g in CASES])
def test_rtl_slicer_every_iq_code(tmp_path, order, grid):
    delta = pow2_delta(order) if grid == "pow2" else 1.0
    layer = ir.QAMSlicer.for_grid("slicer", N, order, delta, SCALE)
    expect_form = "shift" if grid == "pow2" else "compare"
    assert slicer_form(layer) == expect_form
    model = ir.Model(S10, 2 * N, [layer]).check()
    x = every_iq_pair()
    # the comparator form declares about 8,100 signals (15 comparators per element)
    expected = check_rtl(model, {"slicer": Folding(2 * N)}, x, tmp_path, seed=order,
                         max_declarations=9_000)
    assert sorted(np.unique(expected)) == list(range(layer.levels))


@pytest.mark.rtl
@pytest.mark.synth
def test_hwgen_build_of_a_16qam_slicer_fits_the_up5k(tmp_path):
    """``hwgen build`` of a receiver's 16-QAM decision device (8 complex samples of signed
    8-bit I/Q codes): it verifies, fits the UP5K, meets the 12 MHz clock, and the board sends
    the 16 level codes of a vector as 16 bytes."""
    from hwgen.sw.families.export import export_onnx
    from hwgen.sw.families.constellation.lower import slicer_only
    from test_cli import _hwgen

    s8 = ir.TensorType("signed", 8)
    export_onnx(slicer_only(8, order=16, delta=0.75, in_type=s8, in_step=2 ** -6),
                tmp_path / "slicer.onnx")
    r = _hwgen("build", "slicer.onnx", "--target", "ice40", "--out", "build",
               "--random-vectors", "3000", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "build"
    assert "3000/3000 vectors matched" in (out / "verify.log").read_text()
    report = json.loads((out / "report.json").read_text())
    assert 0 < report["lcs"] <= 1000 and report["dsps"] == 0
    assert report["fmax_mhz"] >= 12
    assert "about 360 inferences/s" in r.stdout          # 11,520 bytes/s over 16 + 16 bytes
    layers = json.loads((out / "ir.json").read_text())["layers"]
    assert [(layer["kind"], layer["order"], layer["boundaries"]) for layer in layers] == \
        [("qam_slicer", 16, [-32, 0, 32])]
