"""The pipeline top against the golden model; its timing, Verilog ports and folding choice."""

import re

import numpy as np
import pytest
from amaranth.lib import wiring

from hwgen.hw.folding import DoesNotFitError, choose_folding
from hwgen.hw.pipeline import Pipeline, to_verilog
from hwgen.hw.registry import candidates, estimate, fold_steps
from hwgen.hw.resources import Folding, Resources
from hwgen.hw.testbench import simulate_stream
from hwgen.sw.core import golden, ir

UP5K_LCS, UP5K_EBR = 5280, 30


def random_model(rng, in_type, sizes, *, probe_count=6):
    """Dense layers of ``sizes`` (thresholded but the last), then argmax; thresholds sit at
    accumulators of random probe inputs so that outputs vary. Returns the model and probes."""
    probe = rng.integers(in_type.lo, in_type.hi + 1, (probe_count, sizes[0]))
    layers, x, t = [], probe, in_type
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        cls = ir.DenseIntBinW if t.kind != "bipolar" else ir.DenseBinary
        layer = cls(name=f"fc{i}", weights=rng.integers(0, 2, (n_out, n_in)))
        acc = golden.run(ir.Model(t, n_in, [layer]), x)
        if i < len(sizes) - 2:
            thr = acc[rng.integers(0, len(x), n_out), np.arange(n_out)]
            layer.threshold = ir.Threshold(thr, rng.integers(0, 2, n_out).astype(bool))
        layers.append(layer)
        x, t = golden.run_layer(layer, x), layer.out_type(t)
    layers.append(ir.ArgMax(name="argmax", n=sizes[-1]))
    return ir.Model(in_type, sizes[0], layers).check(), probe


def digits_model(rng, hidden):
    model, _ = random_model(rng, ir.TensorType("unsigned", 5), [64, hidden, hidden, 10])
    return model


def random_folding(rng, model):
    return {layer.name: candidates(layer)[rng.integers(len(candidates(layer)))]
            for layer in model.layers}


@pytest.mark.parametrize("seed", range(6))
def test_pipeline_matches_golden(seed):
    rng = np.random.default_rng(seed)
    in_type = [ir.TensorType("unsigned", 3), ir.TensorType("signed", 4)][seed % 2]
    model, probe = random_model(rng, in_type, [16, 12, 8, 6])
    folding = random_folding(rng, model)
    n = model.n_in
    x = np.concatenate([probe, [[in_type.hi] * n, [in_type.lo] * n, [0] * n],
                        rng.integers(in_type.lo, in_type.hi + 1, (3, n))])
    run = simulate_stream(Pipeline(model, folding), x, rng=rng, valid_prob=0.5, ready_prob=0.4)
    np.testing.assert_array_equal(np.array(run.outputs), golden.run(model, x))


def test_pipeline_without_argmax_emits_accumulators():
    rng = np.random.default_rng(20)
    model, probe = random_model(rng, ir.TensorType("signed", 3), [8, 6, 4])
    model = ir.Model(model.in_type, model.n_in, model.layers[:-1]).check()
    folding = {"fc0": Folding(3, 2, "bram"), "fc1": Folding(2, 3, "logic")}
    run = simulate_stream(Pipeline(model, folding), probe, rng=rng, valid_prob=0.7,
                          ready_prob=0.3)
    np.testing.assert_array_equal(np.array(run.outputs), golden.run(model, probe))


@pytest.mark.parametrize("seed", range(3))
def test_latency_and_interval_match_simulation(seed):
    rng = np.random.default_rng(100 + seed)
    model, probe = random_model(rng, ir.TensorType("unsigned", 2), [8, 8, 6, 4])
    pipeline = Pipeline(model, random_folding(rng, model))
    run = simulate_stream(pipeline, np.concatenate([probe, probe]))
    assert run.valid_cycles[0] - run.in_cycles[0] == pipeline.latency
    assert set(np.diff(run.out_cycles)[len(model.layers):]) == {pipeline.interval}
    assert min(np.diff(run.out_cycles)) >= pipeline.interval


def test_verilog_ports():
    rng = np.random.default_rng(3)
    model, _ = random_model(rng, ir.TensorType("unsigned", 3), [8, 6, 4])
    text = to_verilog(Pipeline(model, random_folding(rng, model)), name="top")
    ports = set(re.search(r"module top\((.*?)\);", text, re.S).group(1).replace(" ", "")
                .replace("\n", "").split(","))
    assert ports == {"clk", "rst", "i_stream__payload", "i_stream__valid", "i_stream__ready",
                     "o_stream__payload", "o_stream__valid", "o_stream__ready"}
    assert "input [23:0] i_stream__payload" in text     # 8 elements of 3 bits
    assert "output [1:0] o_stream__payload" in text     # argmax of 4


def test_pipeline_signature_follows_model_types():
    rng = np.random.default_rng(4)
    model, _ = random_model(rng, ir.TensorType("signed", 6), [10, 4, 3])
    pipeline = Pipeline(model, random_folding(rng, model))
    assert len(pipeline.i_stream.payload.as_value()) == 60
    assert isinstance(pipeline.signature, wiring.Signature)
    with pytest.raises(ValueError, match="fc1"):
        Pipeline(model, {"fc0": Folding(), "argmax": Folding()})


@pytest.mark.parametrize("hidden", [64, 128])
def test_digits_models_fit_up5k(hidden):
    model = digits_model(np.random.default_rng(hidden), hidden)
    folding = choose_folding(model, lc_budget=UP5K_LCS * 2 // 3, ebr_budget=UP5K_EBR)
    total = sum((estimate(layer, t, folding[layer.name])
                 for layer, t in zip(model.layers, model.types())), Resources())
    assert total.fits(lc_budget=UP5K_LCS * 2 // 3, ebr_budget=UP5K_EBR)
    steps = max(fold_steps(layer, folding[layer.name]) for layer in model.layers)
    # the choice is the fastest that fits: every faster step count exceeds the budget
    faster = choose_folding(model, lc_budget=10**9, ebr_budget=10**9)
    assert max(fold_steps(layer, faster[layer.name]) for layer in model.layers) <= steps
    assert steps <= 256


def test_more_budget_is_never_slower():
    model = digits_model(np.random.default_rng(9), 64)
    def slowest(lc_budget):
        f = choose_folding(model, lc_budget=lc_budget, ebr_budget=UP5K_EBR)
        return max(fold_steps(layer, f[layer.name]) for layer in model.layers)
    budgets = [1500, 2500, 3500, 5000, 8000]
    steps = [slowest(b) for b in budgets]
    assert steps == sorted(steps, reverse=True) and steps[0] > steps[-1]


def test_does_not_fit_names_a_layer():
    model = digits_model(np.random.default_rng(1), 128)
    with pytest.raises(DoesNotFitError, match=r"layer fc\d") as info:
        choose_folding(model, lc_budget=300, ebr_budget=0)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_chosen_folding_simulates():
    """A digits-scale model under the folding chosen for a UP5K, one inference end to end."""
    rng = np.random.default_rng(12)
    model = digits_model(rng, 64)
    folding = choose_folding(model, lc_budget=UP5K_LCS * 2 // 3, ebr_budget=UP5K_EBR)
    x = rng.integers(0, 32, (2, 64))
    run = simulate_stream(Pipeline(model, folding), x, rng=rng, ready_prob=0.5)
    np.testing.assert_array_equal(np.array(run.outputs), golden.run(model, x))
