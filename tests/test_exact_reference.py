"""The exact reference (tests/exact_reference.py) on small hand-computed graphs: every rounding
mode's ties, sign(0) = +1, power-of-two and QAM midpoints, batch norm as an exact surd (an
output of exactly 0 included), Sum-and-Max with pruned entries, Gemm, argmax ties, and the
refusals of what it cannot represent."""

from fractions import Fraction

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from exact_reference import ExactError, Surd, cmp, evaluate, floor, pow2_quant, qam_index, \
    round_mode
from hwgen.sw.core.onnx_ops import HWGEN_DOMAIN, QONNX_DOMAIN


def graph(n_in: int, nodes: list, consts: dict, *, signed: bool = True, bits: int = 8,
          step: float = 1.0):
    """``x -> Quant(step, bits) -> nodes``, the last node's output the graph output; nodes
    are (op, inputs, attrs) with the previous output as ``"@"``."""
    inits = {"step": step, "zero": 0.0, "bits": float(bits), **consts}
    made = [helper.make_node("Quant", ["x", "step", "zero", "bits"], ["t0"], name="in",
                             domain=QONNX_DOMAIN, signed=int(signed), narrow=0,
                             rounding_mode="ROUND")]
    for i, (op, inputs, attrs) in enumerate(nodes, 1):
        domain = HWGEN_DOMAIN if op in ("PowerOfTwoQuant", "SumAndMax", "QAMSlicer") else \
            QONNX_DOMAIN if op in ("Quant", "BipolarQuant") else ""
        made.append(helper.make_node(op, [f"t{i - 1}" if a == "@" else a for a in inputs],
                                     [f"t{i}"], name=f"n{i}", domain=domain, **attrs))
    g = helper.make_graph(
        made, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", n_in])],
        [helper.make_tensor_value_info(f"t{len(nodes)}", TensorProto.FLOAT, ["b", None])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    return helper.make_model(g)


def quant(bits: int, mode: str, *, signed: bool = True, scale="one", zero="zero", narrow=0):
    return ("Quant", ["@", scale, zero, f"b{bits}"],
            dict(signed=int(signed), narrow=narrow, rounding_mode=mode))


def run_values(nodes, consts, codes, **kw):
    """The exact values at the output (``logits``) and the tie flags."""
    x = np.asarray(codes, np.int64).reshape(len(codes), -1)
    res = evaluate(graph(x.shape[1], nodes, consts, **kw), x)
    return [[float(v) for v in row] for row in res.logits], list(res.ties)


CONSTS = {"one": 1.0, "half": 0.5, "b4": 4.0, "b3": 3.0}


@pytest.mark.parametrize("mode, expect", [
    ("ROUND", [-2, -2, 0, 0, 2, 2, 4]), ("HALF_EVEN", [-2, -2, 0, 0, 2, 2, 4]),
    ("HALF_UP", [-3, -2, -1, 1, 2, 3, 4]), ("HALF_DOWN", [-2, -1, 0, 0, 1, 2, 3]),
    ("FLOOR", [-3, -2, -1, 0, 1, 2, 3]), ("CEIL", [-2, -1, 0, 1, 2, 3, 4])])
def test_quant_rounding_modes_at_ties(mode, expect):
    # x / 2 = -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, inside the 4-bit signed range [-8, 7]
    codes = [[-5], [-3], [-1], [1], [3], [5], [7]]
    values, ties = run_values([("Mul", ["@", "half"], {}), quant(4, mode)], CONSTS, codes)
    assert [v[0] for v in values] == expect
    # every input is a half-integer: a tie for the rounding modes, not for FLOOR and CEIL
    assert ties == [mode not in ("FLOOR", "CEIL")] * len(codes)


def test_round_mode_direct():
    half = Fraction(1, 2)
    assert round_mode(Fraction(5, 2), "ROUND") == (2, True)
    assert round_mode(Fraction(7, 2), "ROUND") == (4, True)
    assert round_mode(Fraction(-5, 2), "HALF_UP") == (-3, True)
    assert round_mode(Fraction(-5, 2), "HALF_DOWN") == (-2, True)
    assert round_mode(Fraction(5, 2), "HALF_DOWN") == (2, True)
    assert round_mode(Fraction(3), "FLOOR") == (3, True)        # on FLOOR's boundary
    assert round_mode(Fraction(3), "CEIL") == (3, True)
    assert round_mode(Fraction(3) + half / 3, "CEIL") == (4, False)
    assert round_mode(Fraction(-3) - half / 3, "FLOOR") == (-4, False)
    assert round_mode(Fraction(12, 5), "ROUND") == (2, False)
    with pytest.raises(ExactError):
        round_mode(Fraction(1), "STOCHASTIC")


def test_quant_floor_tie_at_the_issues_half_level():
    """Input maximum 100, x = 70, M = 4: (2 * 70 / 100 - 1) * 15 / 2 + 8 = 11 exactly, on the
    FLOOR boundary between codes 10 and 11 (float64 gives 10.999..., code 10)."""
    consts = {"two": 2.0, "in_max": 100.0, "m1": -1.0, "L": 15.0, "zp": 8.0, "b4": 4.0}
    nodes = [("Mul", ["@", "two"], {}), ("Div", ["@", "in_max"], {}), ("Add", ["@", "m1"], {}),
             ("Mul", ["@", "L"], {}), quant(4, "FLOOR", signed=False, scale="two", zero="zp")]
    values, ties = run_values(nodes, consts, [[70], [71]], signed=False)
    assert values == [[6.0], [6.0]] and ties == [True, False]   # (11 - 8) * 2; 71: 11.15


@pytest.mark.parametrize("mode, ties", [("FLOOR", [False, True, False]),
                                         ("CEIL", [True, False, False]),
                                         ("ROUND", [False, False, True])])
def test_quant_boundaries_at_the_ends_of_the_range(mode, ties):
    # 3-bit signed, codes -4..3: y = -4 (FLOOR's boundary to -5 lies outside, CEIL's to -3
    # inside), y = 3 (FLOOR's to 2 inside), y = 2.5 (the rounding modes' tie between 2 and 3)
    consts = {"one": 1.0, "half": 0.5, "b3": 3.0, "zero": 0.0}
    values, got = run_values([("Mul", ["@", "half"], {}), quant(3, mode)], consts,
                             [[-8], [6], [5]])
    assert got == ties and values[:2] == [[-4.0], [3.0]]


def test_quant_clamps_narrow_and_zero_point():
    consts = {"one": 1.0, "b3": 3.0, "zp": 2.0, "zero": 0.0}
    values, ties = run_values([quant(3, "ROUND", narrow=1)], consts, [[-9], [9], [-3]])
    assert values == [[-3.0], [3.0], [-3.0]] and ties == [False] * 3
    values, _ = run_values([quant(3, "ROUND", signed=False, zero="zp")], consts,
                           [[-9], [9], [1]])
    assert values == [[-2.0], [5.0], [1.0]]          # codes 0..7 minus the zero point 2


def test_bipolar_sign_of_zero_is_plus_one_and_a_tie():
    values, ties = run_values([("BipolarQuant", ["@", "one"], {})], CONSTS, [[-1], [0], [1]])
    assert values == [[-1.0], [1.0], [1.0]] and ties == [False, True, False]


def test_power_of_two_midpoints_go_to_the_smaller_magnitude():
    assert pow2_quant(Fraction(3, 4), 3) == (Fraction(1, 2), True)
    assert pow2_quant(Fraction(-3, 4), 3) == (Fraction(-1, 2), True)
    # 3 bits: magnitudes 0, 1/4, 1/2, 1; midpoints 1/8, 3/8, 3/4
    assert pow2_quant(Fraction(1, 8), 3) == (0, True)
    assert pow2_quant(Fraction(3, 8), 3) == (Fraction(1, 4), True)
    assert pow2_quant(Fraction(1, 4), 3) == (Fraction(1, 4), False)
    assert pow2_quant(Fraction(4, 5), 3) == (1, False)
    assert pow2_quant(Fraction(-7), 3) == (-1, False)
    assert pow2_quant(Fraction(1, 2), 2) == (0, True)             # ternary, Delta = 1/2
    assert pow2_quant(Fraction(0), 2) == (0, False)
    node = ("PowerOfTwoQuant", ["@", "one"], {"bits": 3})
    values, ties = run_values([("Mul", ["@", "q"], {}), node], {**CONSTS, "q": 0.125},
                              [[6], [-1], [2]])
    assert values == [[0.5], [0.0], [0.25]] and ties == [True, True, False]


def test_qam_midpoints_go_up():
    assert qam_index(Fraction(0), 4, Fraction(3)) == (2, True)
    assert qam_index(Fraction(-2), 4, Fraction(3)) == (1, True)
    assert qam_index(Fraction(5), 4, Fraction(3)) == (3, False)
    assert qam_index(Fraction(2, 3), 4, Fraction(1)) == (3, True)
    assert qam_index(Fraction(-1, 3), 4, Fraction(1)) == (1, False)
    model = graph(2, [("QAMSlicer", ["@"], {"order": 16, "delta": 3.0})], {})
    res = evaluate(model, np.array([[0, -2], [-3, 9]]))
    assert res.outputs.tolist() == [[2, 1], [0, 3]] and res.ties.tolist() == [True, False]


def test_surd_arithmetic_and_comparisons():
    s = Surd.make(1, Fraction(-1, 2), 3)             # 1 - sqrt(3)/2 = 0.1339...
    assert isinstance(s, Surd) and floor(s) == 0 and floor(-s) == -1
    assert cmp(s, Fraction(1, 10)) == 1 and cmp(s, Fraction(2, 10)) == -1
    assert Surd.make(1, 2, Fraction(9, 4)) == 4       # a square radicand is rational
    assert (s - s) == 0 and cmp(s * 2, s) == 1
    assert floor(Surd.make(0, 3, 2)) == 4 and floor(Surd.make(0, -3, 2)) == -5
    with pytest.raises(ExactError):
        s + Surd.make(0, 1, 2)                       # sqrt(3) and sqrt(2) in one value


def bn_consts(gamma, beta, mean, var):
    return {"g": [gamma], "be": [beta], "mu": [mean], "var": [var]}


BN = ("BatchNormalization", ["@", "g", "be", "mu", "var"], {"epsilon": 0.0})


def test_batch_norm_is_exact_and_its_exact_zero_is_a_tie():
    # (x - 3) / sqrt(2) - 1 at x = 4: 1/sqrt 2 - 1 < 0; at x = 5: sqrt 2 - 1 > 0; x = 3 with
    # beta 0: exactly 0, so sign(0) = +1 and a tie
    sign = ("BipolarQuant", ["@", "one"], {})
    values, ties = run_values([BN, sign], {**CONSTS, **bn_consts(1, -1, 3, 2)}, [[4], [5]])
    assert values == [[-1.0], [1.0]] and ties == [False, False]
    values, ties = run_values([BN, sign], {**CONSTS, **bn_consts(-1, 0, 3, 2)}, [[3], [4]])
    assert values == [[1.0], [-1.0]] and ties == [True, False]
    # 3 / sqrt 2 = 2.12 floors to 2, 5 / sqrt 2 = 3.54 rounds to 4, no tie
    values, ties = run_values([BN, quant(4, "FLOOR")], {**CONSTS, **bn_consts(1, 0, 0, 2)},
                              [[3], [5]])
    assert values == [[2.0], [3.0]] and ties == [False, False]
    values, _ = run_values([BN, quant(4, "ROUND")], {**CONSTS, **bn_consts(1, 0, 0, 2)}, [[5]])
    assert values == [[4.0]]
    # zero gamma: exactly beta; var + eps = 0 divides by zero
    values, _ = run_values([BN], {**CONSTS, **bn_consts(0, 0.25, 7, 1)}, [[100]])
    assert values == [[0.25]]
    with pytest.raises(ExactError):
        run_values([BN], {**CONSTS, **bn_consts(1, 0, 0, 0)}, [[1]])


def test_two_batch_norms_meeting_is_refused():
    with pytest.raises(ExactError):
        run_values([BN, BN], {**CONSTS, **bn_consts(1, 0, 0.5, 2)}, [[1]])
    with pytest.raises(ExactError):
        run_values([BN, ("MatMul", ["@", "w"], {})], {**bn_consts(1, 0, 0.5, 2), "w": [[1.0]]},
                   [[1]])


def test_matmul_gemm_argmax_and_the_one_class_model():
    w = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -0.5]], np.float32)
    model = graph(2, [("MatMul", ["@", "w"], {})], {"w": w})
    res = evaluate(model, np.array([[1, 1], [2, 0], [0, 0]]))
    assert [[float(v) for v in r] for r in res.logits] == [[4, -2, 0], [2, -4, 1], [0, 0, 0]]
    assert res.outputs.tolist() == [[0], [0], [0]]          # ties to the lowest index
    gemm = ("Gemm", ["@", "wt", "c"], {"transB": 1, "alpha": 2.0, "beta": 0.5})
    res = evaluate(graph(2, [gemm], {"wt": w.T, "c": [0.0, 20.0, 1.0]}), np.array([[1, 1]]))
    assert [float(v) for v in res.logits[0]] == [8, 6, 0.5] and res.outputs.tolist() == [[0]]
    res = evaluate(graph(2, [("MatMul", ["@", "w1"], {})], {"w1": [[1.0], [-1.0]]}),
                   np.array([[-5, 7], [3, 3]]))
    assert res.outputs.tolist() == [[0], [0]]               # one class: always class 0


def test_sum_and_max_pruned_entries_and_fill():
    w = np.array([[[1.0, -np.inf], [-np.inf, -np.inf]],
                  [[np.inf, 0.5], [-2.0, np.inf]]], np.float32)
    fill = np.array([[0.0, 3.0], [0.0, 0.0]], np.float32)
    node = ("SumAndMax", ["@", "w", "fill"], {"reduces": ["max", "min"], "signs": [1, -1]})
    res = evaluate(graph(2, [node], {"w": w, "fill": fill}, step=0.5), np.array([[2, -4]]))
    # x = (1, -2): row 0: max(1 + 1) - min(-2 + 0.5) = 2 + 1.5; row 1: fill 3 - (1 - 2) = 4
    assert [float(v) for v in res.logits[0]] == [3.5, 4.0]
    bad = np.array([[[np.inf, 0.0]]], np.float32)            # +inf in a max term always wins
    with pytest.raises(ExactError):
        evaluate(graph(2, [("SumAndMax", ["@", "w", "fill"],
                            {"reduces": ["max"], "signs": [1]})],
                       {"w": bad, "fill": np.zeros((1, 1), np.float32)}), np.array([[0, 0]]))


def test_non_finite_constants_and_unknown_ops_are_refused():
    with pytest.raises(ExactError):
        run_values([("Mul", ["@", "nan"], {})], {"nan": np.nan}, [[1]])
    with pytest.raises(ExactError):
        run_values([("Relu", ["@"], {})], {}, [[1]])
