"""Multiply-accumulate (dense_mac) designs as Verilog in a cocotb/Verilator simulation against the
golden model, and synthesized for iCE40: one SB_MAC16 per product with the DSP multiplier, none
with the LUT multiplier.

The RTL designs are the first user's shape scaled down (integer inputs -> dense_mac with 8-bit
weights and a bias -> argmax) with both multipliers, and a two-layer quantized network (a
dense_mac with a multi-threshold to 2-bit codes, then dense_mac, then argmax).
"""

import numpy as np
import pytest

from hwgen.boards.flow import build
from hwgen.boards.ooc import synth_ooc
from hwgen.hw import registry
from hwgen.hw.dense_mac import DenseMACEngine, dsp_blocks, estimate_dense_mac
from hwgen.hw.pipeline import Pipeline
from hwgen.hw.registry import estimate
from hwgen.hw.resources import Folding
from hwgen.sw.core import golden, ir
from rtl_check import check_rtl
from test_hw_mac import mac_weights, quantile_threshold
from test_rtl_shift import vectors

U8, S8, U10 = (ir.TensorType("unsigned", 8), ir.TensorType("signed", 8),
               ir.TensorType("unsigned", 10))


def mac_layer(rng, name, in_type, n_in, n_out, *, out=None, probe=None, bias=2000):
    layer = ir.DenseMAC(name, weights=mac_weights(rng, n_out, n_in),
                        bias=rng.integers(-bias, bias + 1, n_out))
    if out is not None:
        layer.threshold = quantile_threshold(rng, golden.run_layer(layer, probe, in_type), out)
    return layer


def multipliers(model, folding):
    types = model.types()
    return [getattr(registry.engine(layer, t, folding[layer.name]), "multiplier", None)
            for layer, t in zip(model.layers, types)]


@pytest.mark.rtl
@pytest.mark.parametrize("in_type,fc_folding,expect", [
    (U10, Folding(2, 4, "logic"), "dsp"),      # 8 products: SB_MAC16s
    (S8, Folding(2, 8, "bram"), "lut"),        # 16 products: shift-and-add in LUTs
], ids=["u10-dsp", "s8-lut"])
def test_rtl_mac_then_argmax(tmp_path, in_type, fc_folding, expect):
    """The output layer after a SAM layer, scaled down: 32 integer inputs -> 10 sums with
    8-bit weights and a bias -> argmax."""
    rng = np.random.default_rng([51, in_type.bits])
    fc = mac_layer(rng, "fc", in_type, 32, 10)
    model = ir.Model(in_type, 32, [fc, ir.ArgMax("argmax", n=10)]).check()
    folding = {"fc": fc_folding, "argmax": Folding(1, 2)}
    assert multipliers(model, folding) == [expect, None]
    expected = check_rtl(model, folding, vectors(rng, in_type, fc), tmp_path, seed=51)
    assert len(np.unique(expected)) >= 5


@pytest.mark.rtl
def test_rtl_quantized_two_layer_mac(tmp_path):
    """s8 inputs -> dense_mac with a multi-threshold to u2 codes (DSP) -> dense_mac (constant
    weights, LUTs) -> argmax."""
    rng = np.random.default_rng(52)
    probe = rng.integers(S8.lo, S8.hi + 1, (256, 24))
    fc0 = mac_layer(rng, "fc0", S8, 24, 12, out=ir.TensorType("unsigned", 2), probe=probe)
    fc1 = mac_layer(rng, "fc1", ir.TensorType("unsigned", 2), 12, 4, bias=100)
    model = ir.Model(S8, 24, [fc0, fc1, ir.ArgMax("argmax", n=4)]).check()
    folding = {"fc0": Folding(2, 4, "bram"), "fc1": Folding(4, 12), "argmax": Folding(1, 4)}
    assert multipliers(model, folding) == ["dsp", "lut", None]
    x = vectors(rng, S8, fc0)
    expected = check_rtl(model, folding, x, tmp_path, seed=52)
    assert len(np.unique(expected)) == 4
    assert len(np.unique(golden.run_layers(model, x)[0])) == 4      # every code occurs


# --- synthesis ---------------------------------------------------------------------------------

@pytest.mark.synth
def test_synthesized_mac_engines_use_dsps_as_chosen(tmp_path):
    """yosys synth_ice40 -dsp and nextpnr's packer: the DSP multiplier takes exactly one SB_MAC16
    per product, folded (weights from a ROM) and fully parallel (weights in a register); the
    LUT multiplier takes none, with ``-dsp`` too; estimates near the packed cells."""
    rng = np.random.default_rng(53)
    folded = mac_layer(rng, "fc", U8, 32, 10)
    full = mac_layer(rng, "fc", S8, 4, 2)
    cases = {
        "dsp_folded": (folded, U8, Folding(2, 4), "dsp"),
        "dsp_full": (full, S8, Folding(2, 4), "dsp"),
        "lut_folded": (folded, U8, Folding(2, 4), "lut"),
    }
    for name, (layer, in_type, folding, multiplier) in cases.items():
        engine = DenseMACEngine(layer, in_type=in_type, pe=folding.pe, simd=folding.simd,
                                weights=folding.weights, multiplier=multiplier)
        ooc = synth_ooc(engine, top="engine", build_dir=tmp_path / name, dsp=True)
        est = estimate_dense_mac(layer, in_type, folding, multiplier=multiplier)
        print(f"{name}: {ooc.lcs} LCs, {ooc.dsp} DSP packed; estimated {est.lcs} LCs")
        if multiplier == "dsp":
            assert ooc.dsp == folding.pe * folding.simd == 8
            assert ooc.cells.get("SB_MAC16") == 8
        else:
            assert ooc.dsp == 0 and "SB_MAC16" not in ooc.cells
        if name != "dsp_full":      # the factory never gives constant weights to DSPs
            assert 0.8 < est.lcs / ooc.lcs < 1.25
    # the factory's engine for the folded layer is the DSP one, and so is its estimate
    assert dsp_blocks(folded, U8, Folding(2, 4)) == 8
    assert estimate(folded, U8, Folding(2, 4)) == estimate_dense_mac(folded, U8, Folding(2, 4),
                                                                     multiplier="dsp")


@pytest.mark.synth
def test_board_build_of_a_mac_pipeline_uses_dsps(tmp_path):
    """The board flow (synth_ice40 -dsp, place and route, bitstream) on 4 u8 inputs ->
    dense_mac at (2, 4) -> argmax: the 8 products in the UP5K's 8 SB_MAC16s. Without the
    flow's prelude (:data:`hwgen.boards.ooc.DSP_PRELUDE`) yosys 0.69 stops on an assertion for
    this design."""
    rng = np.random.default_rng(54)
    fc = mac_layer(rng, "fc", U8, 4, 4, bias=100)
    model = ir.Model(U8, 4, [fc, ir.ArgMax("argmax", n=4)]).check()
    core = Pipeline(model, {"fc": Folding(2, 4), "argmax": Folding(1, 1)})
    report = build(core, target="ice40", build_dir=tmp_path, n_in=4, in_bits=8,
                   out_bits=model.types()[-1].bits, cycles_per_inference=core.interval,
                   progress=lambda step: None)
    assert report.dsps == 8 and report.bitstream is not None
