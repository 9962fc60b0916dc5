"""The property-based fuzz tier (issue 21): random models through every family's front end and
export (tests/fuzz_models.py), each checked against the exact reference (tests/exact_reference.py).

Per model: it compiles, or the compiler refuses it with a one-line CompileError naming a
documented limit (``fuzz_models.DOCUMENTED_REFUSALS``); a front end may refuse to lower or
export it only with a one-line ValueError; the golden model equals the exact reference on every
vector (equal integers); PyTorch equals it on every vector except rows where the exact
reference shows a quantizer input exactly on a decision boundary (counted; a difference on a
row without such a tie fails). Hypothesis draws the specs, derandomized so that CI is
reproducible; ``benchmarks/fuzz.py`` runs the same checks on 1,000 models and more.

A failure prints the spec: ``fuzz_models.check(spec)`` reproduces it.
"""

from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from benchmark_script import load_benchmark, restore_threads  # noqa: F401 (a fixture)
from fuzz_models import FAMILIES, Draw, RandomDraw, check, draw_spec
from hwgen.hw.folding import choose_folding
from hwgen.sw.families.binary.layers import BinaryMLP
from hwgen.sw.families.export import exporter_for
from hwgen.sw.families.mbbn.layers import QuantMLP, decompose
from hwgen.sw.families.shift.aqe import MINWMLP
from rtl_check import check_rtl

#: Examples per family: about a minute for the whole tier on two cores.
EXAMPLES = {"binary": 80, "mbbn": 80, "quant": 80, "decomposed": 60, "minw": 100, "sam": 50,
            "qam": 50, "slicer": 50, "minmax": 60}
#: Random vectors per model (plus all-min, all-max, alternating and tie vectors).
N_RANDOM = 24


class HypothesisDraw(Draw):
    """A spec's choices drawn by Hypothesis (so that failures shrink to small choices)."""

    def __init__(self, draw):
        self.draw = draw

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def choice(self, options):
        return self.draw(st.sampled_from(options))


@st.composite
def specs(draw, family: str) -> dict:
    return draw_spec(HypothesisDraw(draw), family)


def assert_right(outcome) -> None:
    assert not outcome.failures, f"{'; '.join(outcome.failures)}\nreproducer: " \
                                 f"fuzz_models.check({outcome.spec!r})"


@pytest.mark.parametrize("family", FAMILIES)
def test_fuzz_family(family):
    seen = Counter()

    @settings(max_examples=EXAMPLES[family], deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(spec=specs(family))
    def one_model(spec):
        outcome = check(spec, N_RANDOM)
        seen[outcome.status] += 1
        seen["vectors"] += outcome.n_vectors
        seen["tie rows"] += outcome.ties
        seen["PyTorch != golden at exact ties"] += outcome.torch_diff_ties
        assert_right(outcome)

    one_model()
    print(f"{family}: {dict(seen)}")
    assert seen["compiled"] >= EXAMPLES[family] // 2, seen


# --- the defects issue 21 measured, one model each (they fail until the compiler is fixed)


def test_half_level_input_is_a_counted_tie():
    """Input maximum 100, x = 70, M = 4: the encoder's input is exactly on a FLOOR boundary;
    float64 PyTorch takes the lower state there, the golden model the exact one. PyTorch
    differs from golden only on such rows, each counted as an exact tie; golden == exact."""
    spec = {"family": "quant", "seed": 501740860, "n_in": 3, "hidden": [], "n_classes": 10,
            "log_scale": 0.0, "bits": [[4, 4]], "in_max": 100.0, "weights": ["no_unit"],
            "t": [0.5, 1.0], "bn": [], "bn_scale": 1000.0}
    outcome = check(spec, 64)
    assert 70 in outcome.case.tie_values
    assert_right(outcome)
    assert outcome.status == "compiled" and outcome.torch_diff_ties > 0
    assert outcome.torch_vs_exact == outcome.torch_diff_ties <= outcome.ties


@pytest.mark.parametrize("family, bits", [("mbbn", [[2, 3], [2, 3]]),
                                          ("quant", [[2, 3], [2, 3]]),
                                          ("decomposed", [[2, 3], [2, 3]])])
def test_odd_states_without_unit_compile(family, bits):
    """K = 3 weight states of only +-3, +-5, +-7: no +-1 to take the scale from."""
    spec = {"family": family, "seed": 5, "n_in": 6, "hidden": [5], "n_classes": 4,
            "log_scale": 0.0, "bits": bits, "in_max": 16.0, "weights": ["no_unit", "no_unit"],
            "t": [1.0, 1.0, 0.5, 2.0], "bn": ["random"], "bn_scale": 10.0}
    outcome = check(spec)
    assert outcome.status == "compiled", outcome.message
    assert_right(outcome)


@pytest.mark.parametrize("weight_bits", [2, 3])
def test_all_zero_weights_compile(weight_bits):
    """A MINW-Net layer whose weights are all 0 at two or more bits."""
    spec = {"family": "minw", "seed": 7, "n_in": 5, "hidden": [4], "n_classes": 3,
            "log_scale": 0.0, "act_bits": 2, "weight_bits": weight_bits,
            "quantize_input": False, "in_max": 16, "estimator": "STE",
            "weights": ["zeros", "random"], "bn": ["random"], "bn_scale": 1.0}
    outcome = check(spec)
    assert outcome.status == "compiled", outcome.message
    assert_right(outcome)


@pytest.mark.parametrize("family", ["binary", "mbbn", "minw", "sam", "minmax"])
def test_one_class_model_outputs_class_zero(family):
    spec = draw_spec(RandomDraw(np.random.default_rng(11)), family)
    spec.update(n_classes=1, n_in=min(spec["n_in"], 8))
    outcome = check(spec)
    assert outcome.status == "compiled", outcome.message
    assert_right(outcome)
    assert outcome.model.layers[-1].kind == "argmax"


# --- a front-end defect the fuzz found: the exported batch-norm eps was float32(1e-5), PyTorch's
# a float64 1e-5, so near a boundary (variance 0: eps alone under the root) they disagreed


def batch_norm_eps(model) -> list[float]:
    return [a.f for n in model.graph.node if n.op_type == "BatchNormalization"
            for a in n.attribute if a.name == "epsilon"]


def test_exported_batch_norm_eps_is_the_models_own():
    net = BinaryMLP(4, (3,), 2, in_bits=4)
    qnn = QuantMLP(4, (3,), 2, bits=[(2, 2), (2, 2)], in_max=16.0)
    for model in (net, MINWMLP(4, (3,), 2, in_max=16, act_bits=2, weight_bits=2), qnn,
                  decompose(qnn.eval())):
        bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
        assert batch_norm_eps(exporter_for(type(model))(model).model()) == \
            [m.eps for m in bns] and bns
    net.blocks[0]["bn"].eps = 1e-5                 # not exact in float32: refused, not rounded
    with pytest.raises(ValueError, match="not exact in float32"):
        exporter_for(BinaryMLP)(net)


def test_batch_norm_within_1e_8_of_its_boundary_pytorch_equals_golden():
    """Variance 0, the exact output 1e-10 (relative) from sign's boundary: no exact tie, so
    PyTorch must agree (it did not with the float32-rounded eps in the graph)."""
    spec = {"family": "binary", "seed": 1, "n_in": 8, "hidden": [16], "n_classes": 4,
            "log_scale": 0.0, "in_bits": 4, "weights": ["random", "random"], "bn": ["near_tie"],
            "bn_scale": 1.0}
    for seed in range(8):
        outcome = check({**spec, "seed": seed})
        assert_right(outcome)
        assert outcome.status == "compiled" and outcome.ties == 0


# --- a small sample through the RTL


def small_spec(seed: int, family: str) -> dict:
    spec = draw_spec(RandomDraw(np.random.default_rng(seed)), family)
    spec["n_in"] = min(spec["n_in"], 12)
    spec["hidden"] = [min(h, 12) for h in spec["hidden"][:2]]
    spec["weights"] = spec["weights"][:len(spec["hidden"]) + 1] \
        if isinstance(spec["weights"], list) else spec["weights"]
    for key in ("bits", "bn"):
        if key in spec:
            spec[key] = spec[key][:len(spec["hidden"]) + (key == "bits")]
    if "t" in spec:
        spec["t"] = spec["t"][:2 * len(spec["hidden"]) + 2]
    return spec


@pytest.mark.rtl
@pytest.mark.parametrize("seed, family", [(2, "mbbn"), (4, "minw")])
def test_fuzzed_model_rtl_equals_golden(seed, family, tmp_path):
    outcome = check(small_spec(seed, family), 200)
    assert outcome.status == "compiled", outcome.message
    assert_right(outcome)
    model, x = outcome.model, outcome.case.vectors
    folding = choose_folding(model, lc_budget=2000, ebr_budget=30)
    assert len(check_rtl(model, folding, x, tmp_path, seed=seed)) == len(x)   # RTL == golden


def test_benchmark_counts(restore_threads, capsys):
    """``benchmarks/fuzz.py`` end to end on a few models (no RTL): it prints the counts."""
    rc = load_benchmark("fuzz").main(["--models", "4", "--rtl-sample", "0", "--vectors", "8",
                                      "--families", "binary,minw", "--seed", "3"])
    out = capsys.readouterr().out
    assert rc == 0, out
    for line in ("models: 4", "compiled: 4", "golden != exact: 0 of",
                 "PyTorch != golden (the exact reference): ", "RTL == golden: 0 of 0"):
        assert line in out, out
