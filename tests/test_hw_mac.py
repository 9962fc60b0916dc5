"""Multiply-accumulate engines (dense_mac) in Amaranth simulation against the golden model, bit
for bit, with both multipliers; the factory's multiplier rule, cost estimates, and the
operators in their Verilog (no ``*`` in the LUT variant, one per product in the DSP one)."""

import dataclasses
import gc
import math
import re

import numpy as np
import pytest
from amaranth.back import rtlil, verilog

from hwgen.boards.flow import synth_overrides
from hwgen.boards.ooc import DSP_PRELUDE, SPRAM_PRELUDE
from hwgen.boards.targets import get_target
from hwgen.hw import registry
from hwgen.hw.folding import choose_folding
from hwgen.hw.dense_mac import (DenseMACEngine, csd_digits, dsp_blocks, estimate_dense_mac,
                                      mac_multiplier, operand_bits)
from hwgen.hw.pipeline import Pipeline
from hwgen.hw.registry import candidates, check_folding, estimate, fold_steps
from hwgen.hw.resources import DSP_BLOCKS, Folding, Resources
from hwgen.hw.testbench import simulate_stream
from hwgen.sw.core import golden, ir
from test_hw_shift import edge_inputs, quantile_threshold, random_codes, verilog_operators

U8, S8 = ir.TensorType("unsigned", 8), ir.TensorType("signed", 8)
U5, S5 = ir.TensorType("unsigned", 5), ir.TensorType("signed", 5)
IN_TYPES = [U8, S8, U5, S5]
MULTIPLIERS = ["dsp", "lut"]
N_IN, N_OUT = 12, 6
N_VECTORS = 150


def mac_weights(rng, n_out, n_in, bits=8, zeros=0.15):
    """Uniform ``bits``-bit signed weights, some zero; neuron 0 starts with both extremes."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    w = rng.integers(lo, hi + 1, (n_out, n_in))
    w[rng.random((n_out, n_in)) < zeros] = 0
    w[0, :2] = lo, hi
    return w


def mac_layer(rng, in_type, n_in, n_out, *, bits=8, out=None, probe=None, bias_scale=300):
    layer = ir.DenseMAC("fc", weights=mac_weights(rng, n_out, n_in, bits),
                        bias=rng.integers(-bias_scale, bias_scale + 1, n_out))
    if out is not None:
        layer.threshold = quantile_threshold(rng, golden.run_layer(layer, probe, in_type), out)
    return layer


def check_engine(layer, in_type, folding, multiplier, x, rng, *, valid_prob=0.8,
                 ready_prob=0.7):
    dut = DenseMACEngine(layer, in_type=in_type, pe=folding.pe, simd=folding.simd,
                         weights=folding.weights, multiplier=multiplier)
    run = simulate_stream(dut, x, rng=rng, valid_prob=valid_prob, ready_prob=ready_prob)
    expected = golden.run_layer(layer, x, in_type)
    np.testing.assert_array_equal(np.array(run.outputs), expected)
    return expected


# fully parallel (constant weights), folded both ways, weights in LUTs and in block RAM
FOLDINGS = [Folding(6, 12, "logic"), Folding(2, 3, "bram"), Folding(3, 4, "logic"),
            Folding(6, 2, "bram"), Folding(1, 12, "logic"), Folding(2, 12, "bram"),
            Folding(1, 1, "logic")]


def engine_cases():
    """Per multiplier, input type and output (codes or accumulator): fully parallel, and one
    of the folded foldings in turn, so that each multiplier meets every folding."""
    k = 0
    for multiplier in MULTIPLIERS:
        for in_type in IN_TYPES:
            for threshold in (False, True):
                yield multiplier, in_type, threshold, FOLDINGS[0]
                yield multiplier, in_type, threshold, FOLDINGS[1 + k % (len(FOLDINGS) - 1)]
                k += 1


def _id(v):
    if isinstance(v, ir.TensorType):
        return v.to_json()
    if isinstance(v, Folding):
        return f"pe{v.pe}-simd{v.simd}-{v.weights}"
    if isinstance(v, bool):
        return ["acc", "threshold"][v]
    return str(v)


@pytest.mark.parametrize("multiplier,in_type,threshold,folding", list(engine_cases()), ids=_id)
def test_mac_engine(multiplier, in_type, threshold, folding):
    rng = np.random.default_rng([MULTIPLIERS.index(multiplier), IN_TYPES.index(in_type),
                                 threshold, folding.pe, folding.simd])
    probe = random_codes(rng, in_type, N_IN, 256)
    out = ir.TensorType("unsigned", 2) if threshold else None
    layer = mac_layer(rng, in_type, N_IN, N_OUT, out=out, probe=probe)
    x = np.concatenate([edge_inputs(in_type, layer),
                        random_codes(rng, in_type, N_IN, N_VECTORS)])
    expected = check_engine(layer, in_type, folding, multiplier, x, rng)
    if threshold:
        assert len(np.unique(expected)) == 4          # every code occurs
    else:
        # neuron 0 reaches both ends of its range on the extreme inputs
        lo, hi = _neuron_range(layer, in_type, 0)
        assert list(expected[3:5, 0]) == [hi, lo]


def _neuron_range(layer, in_type, j):
    w = layer.weights[j]
    hi = np.maximum(w * in_type.lo, w * in_type.hi).sum() + layer.bias[j]
    lo = np.minimum(w * in_type.lo, w * in_type.hi).sum() + layer.bias[j]
    return lo, hi


@pytest.mark.parametrize("multiplier", MULTIPLIERS)
@pytest.mark.parametrize("bits", [1, 2, 3, 16])
def test_mac_engine_weight_widths(multiplier, bits):
    """Weight fields of 1 bit (weights -1 / 0: the field is the sign bit alone), 2, 3 and 16
    bits (-32768 and 32767), a large bias, folded and fully parallel."""
    rng = np.random.default_rng([bits, MULTIPLIERS.index(multiplier)])
    for in_type in (S8, U8):
        layer = mac_layer(rng, in_type, 8, 4, bits=bits, bias_scale=1 << 20)
        assert layer.weight_type.bits == bits
        x = np.concatenate([edge_inputs(in_type, layer), random_codes(rng, in_type, 8, 40)])
        for folding in (Folding(4, 8), Folding(2, 4, "bram"), Folding(1, 2)):
            check_engine(layer, in_type, folding, multiplier, x, rng)


@pytest.mark.parametrize("multiplier", MULTIPLIERS)
def test_mac_engine_degenerate_layers(multiplier):
    """All-zero weights (a constant layer, bias only), a neuron with zero bias and one
    positive weight, one-bit inputs, a layer with a single input and a single output, and a
    one-level threshold (the bipolar kind) with rows at and beyond the clamp limits."""
    rng = np.random.default_rng(11)
    zero = ir.DenseMAC("fc", weights=np.zeros((3, 4), np.int64), bias=[5, -7, 0])
    u1 = ir.TensorType("unsigned", 1)
    for in_type in (U8, S5, u1):
        x = random_codes(rng, in_type, 4, 20)
        for folding in (Folding(3, 4), Folding(1, 2)):
            check_engine(zero, in_type, folding, multiplier, x, rng)
    w = mac_weights(rng, 4, 6)
    w[1] = 0
    w[1, 3] = 100
    layer = ir.DenseMAC("fc", weights=w, bias=[0, 0, 9, -9])
    for in_type in (u1, S8):
        x = np.concatenate([edge_inputs(in_type, layer), random_codes(rng, in_type, 6, 30)])
        for folding in (Folding(4, 6), Folding(2, 3, "bram")):
            check_engine(layer, in_type, folding, multiplier, x, rng)
    single = ir.DenseMAC("fc", weights=[[-77]], bias=[3])
    check_engine(single, S8, Folding(1, 1), multiplier, np.arange(-128, 128)[:, None], rng)
    lo, hi = layer.acc_range(S8)
    t = np.array([lo - 1, hi + 1, lo - 50, 17])
    layer.threshold = ir.Threshold(t, np.array([False, True, False, True]))
    x = np.concatenate([edge_inputs(S8, layer), random_codes(rng, S8, 6, 40)])
    for folding in (Folding(4, 6), Folding(2, 2, "bram"), Folding(1, 3)):
        check_engine(layer, S8, folding, multiplier, x, rng)


@pytest.mark.parametrize("folding", [Folding(1, 1), Folding(3, 4, "bram"), Folding(6, 12)],
                         ids=str)
def test_mac_latency_and_interval(folding):
    rng = np.random.default_rng(5)
    layer = mac_layer(rng, U8, N_IN, N_OUT)
    for multiplier in MULTIPLIERS:
        dut = DenseMACEngine(layer, in_type=U8, pe=folding.pe, simd=folding.simd,
                             weights=folding.weights, multiplier=multiplier)
        assert dut.fold_steps == fold_steps(layer, folding)
        run = simulate_stream(dut, random_codes(rng, U8, N_IN, 4))
        assert run.valid_cycles[0] - run.in_cycles[0] == dut.latency == dut.fold_steps + 4
        assert set(np.diff(run.out_cycles)) == {dut.interval} == {dut.fold_steps + 3}


def test_mac_pipeline_thresholded_then_argmax():
    """u8 -> dense_mac with a multi-threshold to u2 codes -> dense_mac -> argmax, folded
    engines of both multipliers (the factory's rule picks them)."""
    rng = np.random.default_rng(21)
    probe = random_codes(rng, U8, 16, 256)
    fc0 = mac_layer(rng, U8, 16, 8, out=ir.TensorType("unsigned", 2), probe=probe)
    fc0.name = "fc0"
    fc1 = ir.DenseMAC("fc1", weights=mac_weights(rng, 4, 8), bias=rng.integers(-50, 50, 4))
    model = ir.Model(U8, 16, [fc0, fc1, ir.ArgMax("argmax", n=4)]).check()
    folding = {"fc0": Folding(2, 4), "fc1": Folding(4, 8), "argmax": Folding(1, 2)}
    dut = Pipeline(model, folding)
    assert [getattr(e, "multiplier", None) for e in dut.engines] == ["dsp", "lut", None]
    x = np.concatenate([[[0] * 16, [255] * 16], random_codes(rng, U8, 16, 60)])
    run = simulate_stream(dut, x, rng=rng, valid_prob=0.7, ready_prob=0.6)
    np.testing.assert_array_equal(np.array(run.outputs), golden.run(model, x))


# --- multiplier rule ---------------------------------------------------------------------------

def test_factory_multiplier_rule():
    rng = np.random.default_rng(2)
    layer = mac_layer(rng, U8, 64, 10)
    engine = registry.engine
    assert engine(layer, U8, Folding(2, 4)).multiplier == "dsp"        # 8 products
    assert engine(layer, U8, Folding(1, 8, "bram")).multiplier == "dsp"
    assert engine(layer, U8, Folding(5, 2)).multiplier == "lut"        # 10 > 8 products
    assert engine(layer, U8, Folding(10, 64)).multiplier == "lut"      # constant weights
    assert dsp_blocks(layer, U8, Folding(2, 4)) == 8
    assert dsp_blocks(layer, U8, Folding(5, 2)) == 0
    assert dsp_blocks(layer, U8, Folding(1, 1)) == 1
    # a 4 x 4 bit product is too narrow for yosys to map to an SB_MAC16
    u3 = ir.TensorType("unsigned", 3)
    narrow = ir.DenseMAC("fc", weights=rng.integers(-8, 8, (10, 64)))
    assert operand_bits(u3) == 4 and narrow.weight_type.bits == 4
    assert mac_multiplier(narrow, u3, Folding(2, 4)) == "lut"
    # a 16-bit unsigned input is a 17-bit signed operand: more than a 16 x 16 multiplier
    u16, s16 = ir.TensorType("unsigned", 16), ir.TensorType("signed", 16)
    assert mac_multiplier(layer, u16, Folding(2, 4)) == "lut"
    assert mac_multiplier(layer, s16, Folding(2, 4)) == "dsp"
    assert registry.engine(layer, u16, Folding(2, 4)).multiplier == "lut"
    with pytest.raises(ValueError, match="17-bit signed operand"):
        DenseMACEngine(layer, in_type=u16, pe=2, simd=4, multiplier="dsp")
    assert DSP_BLOCKS == 8
    gc.collect()        # engines built for their multiplier alone: warn inside the filter


def test_mac_validation():
    rng = np.random.default_rng(1)
    layer = mac_layer(rng, U8, N_IN, N_OUT)
    with pytest.raises(ValueError, match="multiplier must be one of"):
        DenseMACEngine(layer, in_type=U8, multiplier="booth")
    with pytest.raises(ValueError, match="integer inputs, not bipolar"):
        DenseMACEngine(layer, in_type=ir.TensorType("bipolar", 1))
    with pytest.raises(ValueError, match="fc: branch_folds must be 1 for a dense_mac"):
        registry.engine(layer, U8, Folding(1, 1, "logic", 2))
    with pytest.raises(ValueError, match="pe must .* output count 6, not 4"):
        DenseMACEngine(layer, in_type=U8, pe=4)
    with pytest.raises(ValueError, match="multiplier must be one of"):
        estimate_dense_mac(layer, U8, Folding(), multiplier="booth")


def test_csd_digits():
    """Every 16-bit signed value: the digits sum to it, no two nonzero digits are adjacent,
    at most ceil((bits + 1) / 2) are nonzero."""
    for c in range(-(1 << 15), 1 << 15):
        digits = csd_digits(c)
        assert sum(d << k for k, d in digits) == c
        ks = [k for k, _ in digits]
        assert all(b - a >= 2 for a, b in zip(ks, ks[1:]))
        assert len(digits) <= math.ceil((ir.signed_bits(min(c, 0), max(c, 0)) + 1) / 2)


# --- Verilog operators -------------------------------------------------------------------------

def _verilog(layer, in_type, folding, multiplier):
    dut = DenseMACEngine(layer, in_type=in_type, pe=folding.pe, simd=folding.simd,
                         weights=folding.weights, multiplier=multiplier)
    return dut, verilog_operators(verilog.convert(dut, name="engine", emit_src=False))


# the controller picks a folded input chunk by an index scaled by the chunk width, which the
# Verilog backend writes as ``s1_sf * <constant>``; any other ``*`` would be a product
CHUNK_INDEX = re.compile(r"\bs1_sf \* \d+'h[0-9a-f]+")


@pytest.mark.parametrize("in_type", [U8, S8, U5], ids=lambda t: t.to_json())
def test_lut_verilog_has_no_multiplier(in_type):
    rng = np.random.default_rng(8)
    probe = random_codes(rng, in_type, 16, 64)
    for out in (None, ir.TensorType("unsigned", 2)):
        layer = mac_layer(rng, in_type, 16, 8, out=out, probe=probe)
        for folding in (Folding(8, 16), Folding(2, 16, "bram"), Folding(2, 4), Folding(1, 1)):
            dut, text = _verilog(layer, in_type, folding, "lut")
            if folding.simd == layer.n_in:
                assert "*" not in text
                assert "$mul" not in rtlil.convert(dut, name="engine", emit_src=False)
            else:
                assert "*" not in CHUNK_INDEX.sub("", text), folding


@pytest.mark.parametrize("in_type", [U8, S8], ids=lambda t: t.to_json())
def test_dsp_verilog_has_one_product_per_pe_simd(in_type):
    """pe * simd products of two signals (none of a constant), weights from the ROM word or,
    with one fold step, from a register."""
    rng = np.random.default_rng(9)
    layer = mac_layer(rng, in_type, 16, 8)
    for folding in (Folding(2, 4), Folding(1, 8, "bram"), Folding(8, 16), Folding(8, 1)):
        dut, text = _verilog(layer, in_type, folding, "dsp")
        products = re.findall(r"\$signed\(([^;]*?)\) \* \$signed\(([^;]*?)\)", text)
        assert len(products) == folding.pe * folding.simd, folding
        assert all("'h" not in w for _, w in products)          # never a constant weight
        assert len(CHUNK_INDEX.sub("", text).split("*")) - 1 == len(products)
        if fold_steps(layer, folding) == 1:
            assert "weights_reg" in text


# --- cost estimates ----------------------------------------------------------------------------

def test_mac_estimator_registered_and_sane():
    rng = np.random.default_rng(3)
    probe = random_codes(rng, U8, 64, 64)
    layer = mac_layer(rng, U8, 64, 16, out=ir.TensorType("unsigned", 2), probe=probe)
    # the registry prices a vector folding by the kind's own estimate
    for f in (Folding(2, 4), Folding(4, 16, "bram"), Folding(16, 64)):
        assert estimate(layer, U8, f) == estimate_dense_mac(layer, U8, f)
    folds = candidates(layer)
    assert len(folds) == 5 * 7 * 2 and all(check_folding(layer, f) for f in folds)
    for mode in ("logic", "bram"):
        by_pe = [estimate_dense_mac(layer, U8, Folding(pe, 16, mode), multiplier="lut").lcs
                 for pe in (1, 2, 4, 8, 16)]
        by_simd = [estimate_dense_mac(layer, U8, Folding(4, s, mode), multiplier="lut").lcs
                   for s in (2, 8, 32, 64)]
        assert by_pe == sorted(by_pe) and by_simd == sorted(by_simd), (by_pe, by_simd)
    # a DSP-mapped product costs no logic cell: the DSP variant is much cheaper in cells
    for f in (Folding(2, 4), Folding(1, 8), Folding(8, 1, "bram")):
        assert mac_multiplier(layer, U8, f) == "dsp"
        dsp = estimate(layer, U8, f)
        lut = estimate_dense_mac(layer, U8, f, multiplier="lut")
        assert dsp == estimate_dense_mac(layer, U8, f, multiplier="dsp")
        assert dsp.lcs < lut.lcs - 60 * f.pe * f.simd, (f, dsp, lut)
    logic, bram = (estimate(layer, U8, Folding(4, 16, mode)) for mode in ("logic", "bram"))
    assert bram.ebr >= 1 and logic.ebr == 0 and bram.lcs < logic.lcs
    assert estimate(layer, U8, Folding(16, 64)) == estimate_dense_mac(
        layer, U8, Folding(16, 64), multiplier="lut")


def test_choose_folding_with_mac():
    """choose_folding prices dense_mac layers like any other kind; the result builds."""
    rng = np.random.default_rng(4)
    fc = mac_layer(rng, U8, 32, 10)
    model = ir.Model(U8, 32, [fc, ir.ArgMax("argmax", n=10)]).check()
    chosen = choose_folding(model, lc_budget=1500, ebr_budget=4)
    total = sum((estimate(layer, t, chosen[layer.name])
                 for layer, t in zip(model.layers, model.types())), Resources())
    assert total.fits(lc_budget=1500, ebr_budget=4)
    assert "$mul" in rtlil.convert(Pipeline(model, chosen), name="top", emit_src=False) or \
        chosen["fc"].pe * chosen["fc"].simd > 8


def test_board_flow_maps_products_to_dsps_on_the_up5k_only():
    """The board build runs synth_ice40 -dsp (after the prelude that avoids a yosys crash) on
    the iCE40 UP5K, and nothing extra on a target without DSP blocks."""
    up5k = get_target("ice40")
    assert up5k.device.startswith("iCE40UP5K") and up5k.resources["dsps"].total == DSP_BLOCKS
    assert synth_overrides(up5k) == {"synth_opts": "-dsp",
                                     "script_after_read": f"{DSP_PRELUDE}; {SPRAM_PRELUDE}"}
    no_dsp = dataclasses.replace(up5k, resources={k: v for k, v in up5k.resources.items()
                                                  if k != "dsps"})
    assert synth_overrides(no_dsp) == {"script_after_read": SPRAM_PRELUDE}
    neither = dataclasses.replace(up5k, resources={k: v for k, v in up5k.resources.items()
                                                   if k not in ("dsps", "spram")})
    assert synth_overrides(neither) == {}
