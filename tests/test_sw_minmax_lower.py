"""Min/max-quantized, pruned MLPs (seed 001 §5-§6) deployed as integer MACs: the zero-point
identity, the deployed parameters against the seed's formula, and the ladder torch (float64 on
the dequantized weights) == split form (int64) == golden (dense_mac on E = 2^j q + Z) through
ONNX and the compiler."""

import numpy as np
import pytest
import torch
from torch import nn

from hwgen.sw.core import golden, ir
from hwgen.sw.compiler import compile_onnx
from hwgen.sw.families.compression.compress import minmax_dequantize
from hwgen.sw.families.compression.lower import lower, round_significant
from hwgen.sw.families.export import exact_f32, export_onnx

S8 = ir.TensorType("signed", 8)


def pruned_mlp(seed, sizes=(8, 32, 16), keep=0.5):
    torch.manual_seed(seed)
    linears = [nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])]
    rng = np.random.default_rng(seed)
    masks = [rng.random((b, a)) < keep for a, b in zip(sizes, sizes[1:])]
    return linears, masks


def compiled(net, tmp_path):
    export_onnx(net, tmp_path / "m.onnx")
    return compile_onnx(tmp_path / "m.onnx")


@pytest.mark.parametrize("k", [4, 8])
def test_ladder_split_form_equals_golden(tmp_path, k):
    linears, masks = pruned_mlp(k)
    net = lower(linears, k=k, masks=masks, in_type=S8, in_step=2 ** -5)
    model = compiled(net, tmp_path)
    assert [layer.kind for layer in model.layers] == ["dense_mac", "dense_mac", "argmax"]
    x = np.random.default_rng(k).integers(-128, 128, (10_000, 8))
    outs = golden.run_layers(model, x)
    hidden = net.layer_outputs(x)[0]
    np.testing.assert_array_equal(outs[0], hidden)
    assert len(np.unique(hidden)) > 20                 # the activations really vary
    pred = net.predict(x)
    np.testing.assert_array_equal(outs[-1][:, 0], pred)
    np.testing.assert_array_equal(net.torch_predict(x), pred)
    assert len(np.unique(pred)) >= 8
    # the hardware's weights: E = 2^j q + Z where kept, absent (0) where pruned
    for layer, lowered in zip(model.layers[:2], net.layers):
        e = (lowered.q << lowered.j) + lowered.zero
        np.testing.assert_array_equal(layer.weights, np.where(lowered.keep, e, 0))


@pytest.mark.parametrize("k", [2, 4, 8])
def test_deployed_weights_follow_the_seed_formula(k):
    """s' = 2^j sigma within 2^-8 of the seed's step, m' = Z sigma within sigma / 2 of its
    minimum; so every kept weight is within a step of its float value."""
    linears, masks = pruned_mlp(10 + k)
    net = lower(linears, k=k, masks=masks, in_type=S8, in_step=2 ** -5)
    for linear, keep, layer in zip(linears, masks, net.layers):
        w = linear.weight.detach().double().numpy()[keep]
        lo, hi = w.min(), w.max()
        s = (hi - lo) / 2 ** k
        s_dep, m_dep = 2 ** layer.j * layer.sigma, layer.zero * layer.sigma
        assert abs(s_dep - s) <= 2 ** -8 * s
        assert abs(m_dep - lo) <= layer.sigma / 2
        seed_values = minmax_dequantize(torch.from_numpy(layer.q[keep]), lo, hi, k).numpy()
        deployed = s_dep * layer.q[keep] + m_dep
        assert np.abs(deployed - seed_values).max() <= 2 ** -8 * s * (2 ** k) + layer.sigma
        assert np.abs(seed_values - w).max() <= s + 1e-12   # the seed's own error bound
        assert layer.weights.min() >= -(1 << 15) and layer.weights.max() < 1 << 15


def test_round_significant_and_refusals():
    assert round_significant(0.1, 8) == 205 / 2048      # 0.1 * 2048 = 204.8
    assert round_significant(3.0, 1) == 4.0             # 3 = 1.5 * 2: half to even -> 2 * 2
    linears, _ = pruned_mlp(0)
    with pytest.raises(ValueError, match="power of two"):
        lower(linears, k=8, in_type=S8, in_step=0.1)


@pytest.mark.parametrize("value", [0.5, -0.3, 0.0])
def test_a_layer_whose_kept_weights_are_all_equal_lowers_exactly(tmp_path, value):
    """Level 0 everywhere; the zero point alone carries the one value (within sigma / 2)."""
    torch.manual_seed(0)
    flat, head = nn.Linear(4, 6), nn.Linear(6, 3)
    with torch.no_grad():
        flat.weight.fill_(value)
    net = lower([flat, head], k=4, in_type=S8, in_step=2 ** -5)
    layer = net.layers[0]
    assert (layer.q == 0).all() and abs(layer.zero * layer.sigma - value) <= layer.sigma / 2
    x = np.random.default_rng(1).integers(-128, 128, (2_000, 4))
    pred = net.predict(x)
    np.testing.assert_array_equal(golden.run(compiled(net, tmp_path), x)[:, 0], pred)
    np.testing.assert_array_equal(net.torch_predict(x), pred)


def test_a_bias_past_float32s_exact_integers_is_refused_saying_so():
    assert exact_f32(np.array([3, -5]), 0.25, "a weight").tolist() == [0.75, -1.25]
    with pytest.raises(ValueError, match="a code of 16777217 is past float32's 2\\^24"):
        exact_f32(np.array([(1 << 24) + 1]), 1.0, "a bias")
    with pytest.raises(ValueError, match="use a power-of-two step"):
        exact_f32(np.array([1, 3]), 0.1, "a weight")
