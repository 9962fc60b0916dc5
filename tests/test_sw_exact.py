"""The compiler's exact arithmetic: rationals and batch-norm surds, thresholds decided exactly at
and next to ties, and weights the front ends make that a float reading got wrong."""

import math
from decimal import Decimal, getcontext
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper

from hwgen.build import build
from hwgen.sw.compiler import compile_onnx
from hwgen.sw.compiler.dense import scaled_states
from hwgen.sw.compiler.quantized import levels_to_thresholds
from hwgen.sw.compiler.exact import NotExact, Surd, exact, inv_sqrt, sign
from hwgen.sw.core import golden
from hwgen.sw.core.onnx_ops import QONNX_DOMAIN
from hwgen.sw.families.export import export_onnx
from hwgen.sw.families.mbbn.layers import QuantMLP
from hwgen.sw.families.shift.aqe import MINWMLP, STE
from test_sw_compiler import _model, _quant_in

getcontext().prec = 80
rationals = st.fractions(min_value=-1000, max_value=1000, max_denominator=10**6)
radicands = st.fractions(min_value=Fraction(1, 1000), max_value=1000, max_denominator=1000)


def _decimal(x) -> Decimal:
    if isinstance(x, Surd):
        return _decimal(x.p) + _decimal(x.q) * _decimal(x.d).sqrt()
    return Decimal(x.numerator) / Decimal(x.denominator)


def _surd(p, q, d):
    return p + q * inv_sqrt(d) * d          # p + q sqrt(d), or a Fraction when d is a square


@settings(max_examples=300, deadline=None, derandomize=True)
@given(rationals, rationals, rationals, rationals, radicands)
def test_surd_arithmetic_and_order_agree_with_80_digits(p1, q1, p2, q2, d):
    x, y = _surd(p1, q1, d), _surd(p2, q2, d)
    dx, dy = _decimal(x), _decimal(y)
    tol = Decimal(10) ** -60
    for got, want in ((x + y, dx + dy), (x - y, dx - dy), (x * y, dx * dy), (x * 3, dx * 3)):
        assert abs(_decimal(got) - want) <= tol * (1 + abs(want))
    if sign(y) != 0:
        want = dx / dy
        assert abs(_decimal(x / y) - want) <= tol * (1 + abs(want))
    assert sign(x - y) == (dx - dy > tol) - (dx - dy < -tol)
    assert math.floor(x) == math.floor(dx) and math.ceil(x) == math.ceil(dx)


def test_a_square_radicand_stays_rational_and_two_radicands_are_refused():
    assert inv_sqrt(Fraction(9, 4)) == Fraction(2, 3)
    a, b = inv_sqrt(2), inv_sqrt(3)
    assert isinstance(a, Surd) and a * a == Fraction(1, 2)
    with pytest.raises(NotExact):
        a + b
    with pytest.raises(NotExact):
        exact(float("nan"))


def _floor_chain(factors, bits=8):
    """Input codes -> Mul by each factor -> an unsigned ``bits``-bit FLOOR Quant of scale 1."""
    q, inits = _quant_in(bits)
    nodes, x = [q], "xq"
    for i, f in enumerate(factors):
        inits[f"f{i}"] = f
        nodes.append(helper.make_node("Mul", [x, f"f{i}"], [f"m{i}"], name=f"mul{i}"))
        x = f"m{i}"
    nodes.append(helper.make_node("Quant", [x, "one", "zero", "bits"], ["y"], name="floor",
                                  domain=QONNX_DOMAIN, signed=0, narrow=0,
                                  rounding_mode="FLOOR"))
    return _model(nodes, inits, 1, 1)


def test_a_threshold_1e_14_above_an_integer_is_not_snapped_onto_it():
    # (1 + 2^-23)(1 - 2^-23) = 1 - 2^-46: floor(x (1 - 2^-46)) = x - 1 for x >= 1, which a
    # float reading that snaps near-integers (within 1e-9) turns into x
    up, down = 1 + 2.0 ** -23, 1 - 2.0 ** -23
    model = compile_onnx(_floor_chain([up, down]))
    x = np.arange(256)[:, None]
    want = [math.floor(Fraction(int(v)) * Fraction(up) * Fraction(down)) for v in x[:, 0]]
    assert golden.run(model, x)[:, 0].tolist() == [max(w, 0) for w in want]


def _bn_sign(gamma, beta, mean, var, eps=1e-5):
    """Input codes 0..15 -> identity (a shift layer) -> BatchNormalization -> BipolarQuant."""
    q, inits = _quant_in(4)
    inits.update(w=np.eye(1), gamma=[gamma], beta=[beta], mean=[mean], var=[var])
    nodes = [q, helper.make_node("MatMul", ["xq", "w"], ["mm"], name="fc"),
             helper.make_node("BatchNormalization", ["mm", "gamma", "beta", "mean", "var"],
                              ["bn"], name="bn", epsilon=eps),
             helper.make_node("BipolarQuant", ["bn", "one"], ["y"], name="sign",
                              domain=QONNX_DOMAIN)]
    return _model(nodes, inits, 1, 1)


@pytest.mark.parametrize("gamma, beta, mean, var", [
    (1.0, 0.0, 7.0, 2.0),                  # exactly 0 at x = 7 with an irrational 1/sqrt(2)
    (-3.0, 0.0, 7.0, 2.0),                 # the same, flipped
    (1.0, -float(np.float32(5 / np.sqrt(2))), 0.0, 2.0),   # 5/sqrt(2) - fl32(5/sqrt(2))
    (1.0, -float(np.float32(9 / np.sqrt(3))), 0.0, 3.0),
])
def test_batch_norm_signs_are_exact_with_an_irrational_root(gamma, beta, mean, var):
    eps = float(np.float32(1e-5))
    model = compile_onnx(_bn_sign(gamma, beta, mean, var, eps))
    x = np.arange(16)[:, None]
    g, b, m = (Fraction(float(np.float32(v))) for v in (gamma, beta, mean))
    v = Fraction(float(np.float32(var))) + Fraction(eps)
    # sign((x - m) g / sqrt(v) + b) >= 0  <=>  (x - m) g >= -b sqrt(v), squared with signs
    want = []
    for xv in x[:, 0]:
        lhs, rhs = (xv - m) * g, -b
        want.append(int(lhs * abs(lhs) >= rhs * abs(rhs) * v))
    assert golden.run(model, x)[:, 0].tolist() == want


def test_odd_states_without_a_unit_state_read_at_their_greatest_common_scale():
    w = np.array([[3, -15, 9], [-9, 3, -3]], np.float64) * 0.375
    codes, scale = scaled_states(w)
    assert scale == Fraction(3 * 3, 8) and codes.tolist() == [[1, -5, 3], [-3, 1, -1]]
    codes, scale = scaled_states(np.array([[3.0, -5.0], [5.0, 3.0]]))    # no state is +-1
    assert scale == 1 and codes.tolist() == [[3, -5], [5, 3]]
    assert scaled_states(np.zeros((2, 3)))[0].tolist() == [[0, 0, 0]] * 2
    assert scaled_states(np.array([[0.5, -2.0, 0.0]]))[0].tolist() == [[1, -4, 0]]
    assert scaled_states(np.array([[1.0, 2.0, 3.0]]))[0] is None      # 2 is even, 3 is no 2^e
    assert scaled_states(np.array([[0.1, 0.3]]))[0] is None           # fl(0.3) != 3 fl(0.1)
    assert scaled_states(np.array([[1.0, 2.0 ** -15]]))[0].tolist() == [[1 << 15, 1]]
    with pytest.raises(ValueError, match="span 2\\^16, more than the 2\\^15"):
        scaled_states(np.array([[1.0, -(2.0 ** -16)]]))


def _torch_classes(net, x):
    with torch.no_grad():
        return net(torch.as_tensor(x, dtype=torch.float64)).argmax(1).numpy()


def test_a_k3_network_whose_states_skip_one_builds_and_matches_pytorch(tmp_path):
    torch.manual_seed(0)
    net = QuantMLP(6, (5,), 3, bits=((2, 3), (2, 3)), in_max=15).double().eval()
    rng = np.random.default_rng(0)
    for layer in net.layers:          # only the states +-3 and +-5 of 7 (t = 1)
        layer.weight.data = torch.as_tensor(
            rng.choice([-5, -3, 3, 5], layer.weight.shape) / 7.0)
    export_onnx(net, tmp_path / "m.onnx")
    model = compile_onnx(tmp_path / "m.onnx")
    x = rng.integers(0, 16, (400, 6))
    assert (golden.run(model, x)[:, 0] == _torch_classes(net, x)).all()


def test_an_all_zero_shift_layer_builds(tmp_path):
    torch.manual_seed(0)
    net = MINWMLP(6, (5,), 3, act_bits=2, weight_bits=2, in_max=15, estimator=STE()).eval()
    with torch.no_grad():
        net.layers[0].weight.zero_()
    export_onnx(net, tmp_path / "m.onnx")
    model = compile_onnx(tmp_path / "m.onnx")
    x = np.random.default_rng(1).integers(0, 16, (200, 6))
    assert (golden.run(model, x)[:, 0] == _torch_classes(net.double(), x)).all()


def test_a_one_class_model_outputs_class_zero():
    q, inits = _quant_in(3)
    inits["w"] = np.array([[1.0], [-1.0], [1.0]])
    model = compile_onnx(_model([q, helper.make_node("MatMul", ["xq", "w"], ["y"], name="fc")],
                                inits, 3, 1))
    assert model.layers[-1].kind == "argmax" and model.types()[-1].bits <= 8
    x = np.random.default_rng(0).integers(0, 8, (50, 3))
    assert golden.run(model, x).tolist() == [[0]] * 50


@pytest.mark.rtl
def test_a_one_class_model_outputs_class_zero_on_the_rtl(tmp_path):
    q, inits = _quant_in(3)
    inits["w"] = np.array([[1.0], [-1.0], [1.0]])
    m = _model([q, helper.make_node("MatMul", ["xq", "w"], ["y"], name="fc")], inits, 3, 1)
    (tmp_path / "m.onnx").write_bytes(m.SerializeToString())
    result = build(tmp_path / "m.onnx", out=tmp_path / "out", n_random=300, synth=False,
                   log=lambda *a: None)
    assert result.verify_summary.startswith("300/300 vectors matched")
    assert np.load(tmp_path / "out" / "vectors.npz")["expected"].tolist() == [[0]] * 300


def _channel(data, surd: bool):
    """(a, b, c): the map a acc + b against a rational bound c, built to land at, or within a
    hair of, an integer accumulator m (exact ties, and near-ties no float can resolve)."""
    d = data.draw(radicands) if surd else Fraction(1)
    a = data.draw(st.fractions(min_value=-50, max_value=50, max_denominator=1000)
                  .filter(lambda v: v != 0)) * (inv_sqrt(d) * d if surd else 1)
    m = data.draw(st.integers(-40, 40))
    c = data.draw(st.fractions(min_value=-100, max_value=100, max_denominator=64))
    hair = data.draw(st.sampled_from([0, Fraction(1, 2 ** 60), -Fraction(1, 2 ** 60),
                                      Fraction(1, 3), Fraction(7, 2)]))
    return a, c - a * m + hair, c


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.data(), st.booleans(), st.booleans())
def test_thresholds_are_exact_at_and_next_to_ties(data, surd, strict):
    chans = [_channel(data, surd) for _ in range(6)]
    a, b, c = (np.array([ch[i] for ch in chans], object) for i in range(3))
    t, flip = levels_to_thresholds(a, b, [(c, strict)], -30, 30)
    assert flip.tolist() == [sign(v) < 0 for v in a]
    for j, (aj, bj, cj) in enumerate(chans):
        for acc in range(-30, 31):          # every accumulator, decided exactly
            z = aj * acc + bj
            passes = z > cj if strict else z >= cj
            assert passes == (acc <= t[j, 0] if flip[j] else acc >= t[j, 0]), (j, acc)


def test_a_layer_named_argmax_keeps_its_name_and_the_appended_argmax_takes_another():
    q, inits = _quant_in(3)
    inits["w"] = np.array([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
    model = compile_onnx(_model([q, helper.make_node("MatMul", ["xq", "w"], ["y"],
                                                     name="argmax")], inits, 3, 2))
    assert [layer.name for layer in model.layers] == ["argmax", "argmax_1"]
