"""Compression of seed 001: min/max quantization, global pruning, penalties, distillation, memory.

Expected values are worked out by hand from the seed's formulas (or, for random inputs, by an
independent NumPy computation), never by running the code under test.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from hwgen.sw.families.compression.compress import (apply_masks, cpu_inference_time,
                                                    distillation_loss, global_magnitude_prune,
                                                    l1_penalty, l2_penalty, memory_bits,
                                                    minmax_dequantize, minmax_levels,
                                                    quantize_model, sparsity)


def _t(values, dtype=torch.float32):
    return torch.tensor(values, dtype=dtype)


def _set(layer, weight, bias=None):
    with torch.no_grad():
        layer.weight.copy_(_t(weight))
        if bias is not None:
            layer.bias.copy_(_t(bias))
    return layer


# --------------------------------------------------------------------------------------------
# §5 quantization: true val = min + level / 2^k * (max - min)
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("w, k, levels, lo, hi, values", [
    # lo 0, hi 1, step 1/4: (w - lo)/step = 0, 1, 4 -> the max clamps to the top level 3
    ([0.0, 0.25, 1.0], 2, [0, 1, 3], 0.0, 1.0, [0.0, 0.25, 0.75]),
    # lo -1, hi 1, step 1/2: 0, 1.2, 2.2, 2.6, 4 -> 0, 1, 2, 3, 3 (clamped)
    ([-1.0, -0.4, 0.1, 0.3, 1.0], 2, [0, 1, 2, 3, 3], -1.0, 1.0, [-1.0, -0.5, 0.0, 0.5, 0.5]),
    # ties: 0.5 -> 0 and 1.5 -> 2 (half to even); a floor gives 0, 1 and half-up 1, 2
    ([0.0, 0.125, 0.375, 1.0], 2, [0, 0, 2, 3], 0.0, 1.0, [0.0, 0.0, 0.5, 0.75]),
    # k = 1, lo 2, hi 4, step 1: 0, 0.9, 1.1, 2 -> 0, 1, 1, 1
    ([2.0, 2.9, 3.1, 4.0], 1, [0, 1, 1, 1], 2.0, 4.0, [2.0, 3.0, 3.0, 3.0]),
    # k = 3, lo -2, hi 6, step 1: 0, 2, 5.5 (tie -> 6), 8 -> 7
    ([-2.0, 0.0, 3.5, 6.0], 3, [0, 2, 6, 7], -2.0, 6.0, [-2.0, 0.0, 4.0, 5.0]),
])
def test_minmax_levels_and_values_by_hand(w, k, levels, lo, hi, values):
    got, got_lo, got_hi = minmax_levels(_t(w), k)
    assert got.dtype == torch.int64
    assert got.tolist() == levels
    assert (got_lo, got_hi) == (lo, hi)
    deq = minmax_dequantize(got, got_lo, got_hi, k)
    assert deq.dtype == torch.float64
    assert deq.tolist() == pytest.approx(values, abs=1e-12)


def test_dequantize_is_the_seed_formula_and_never_reaches_max():
    # 8 bits, min 0, max 256: true val = level / 256 * 256 = level; top level 255 < 256
    deq = minmax_dequantize(torch.tensor([0, 1, 128, 255]), 0.0, 256.0, 8)
    assert deq.tolist() == [0.0, 1.0, 128.0, 255.0]
    # min -1, max 1, k = 2: -1 + level / 4 * 2
    assert minmax_dequantize(torch.tensor([0, 1, 2, 3]), -1.0, 1.0, 2).tolist() == \
        [-1.0, -0.5, 0.0, 0.5]
    # the max of a tensor quantizes to hi - step, a whole step below
    levels, lo, hi = minmax_levels(_t([-3.0, 5.0]), 3)
    assert levels.tolist() == [0, 7]
    assert minmax_dequantize(levels, lo, hi, 3).tolist() == [-3.0, 4.0]


@pytest.mark.parametrize("k", range(1, 9))
def test_inverse_is_the_nearest_level_with_error_bounds(k):
    rng = np.random.default_rng(k)
    w = rng.normal(size=999).astype(np.float32)
    levels, lo, hi = minmax_levels(torch.from_numpy(w), k)
    assert lo == float(w.min()) and hi == float(w.max())
    x = w.astype(np.float64)
    step = (hi - lo) / 2 ** k
    grid = lo + np.arange(2 ** k) / 2 ** k * (hi - lo)        # the seed's formula, independently
    deq = minmax_dequantize(levels, lo, hi, k).numpy()
    lv = levels.numpy()
    assert lv.min() >= 0 and lv.max() <= 2 ** k - 1
    np.testing.assert_allclose(deq, grid[lv], rtol=0, atol=1e-12)
    nearest = np.abs(x[:, None] - grid[None, :]).min(axis=1)
    assert np.all(np.abs(deq - x) <= nearest + 1e-12)
    inside = x <= hi - step
    assert np.all(np.abs(deq[inside] - x[inside]) <= step / 2 + 1e-12)
    # above hi - step: the top clamp, level 2^k - 1, value hi - step; the max is a step off
    assert np.all(lv[~inside] == 2 ** k - 1)
    np.testing.assert_allclose(deq[~inside], hi - step, rtol=0, atol=1e-12)
    top = int(np.argmax(x))
    assert abs(deq[top] - x[top]) == pytest.approx(step, rel=1e-9)


def test_sixteen_bits_constant_tensor_and_bad_arguments():
    w = torch.linspace(-1, 1, 101)
    levels, lo, hi = minmax_levels(w, 16)
    assert int(levels.min()) == 0 and int(levels.max()) == 2 ** 16 - 1
    # a constant tensor has step 0: every level 0, every value the constant
    levels, lo, hi = minmax_levels(torch.full((2, 3), 0.7), 4)
    assert levels.tolist() == [[0, 0, 0], [0, 0, 0]] and lo == hi
    assert torch.all(minmax_dequantize(levels, lo, hi, 4) == lo)
    for k in (0, 17, 2.0, True):
        with pytest.raises(ValueError):
            minmax_levels(w, k)
    with pytest.raises(ValueError):
        minmax_dequantize(torch.tensor([4]), 0.0, 1.0, 2)      # top level of k = 2 is 3
    with pytest.raises(ValueError):
        minmax_levels(torch.tensor([0.0, float("inf")]), 4)


def test_quantize_model_replaces_weights_keeps_biases():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Conv1d(2, 3, 2), nn.Conv2d(1, 2, 2),
                          nn.BatchNorm1d(3))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    k = 3
    out = quantize_model(model, k)
    assert sorted(out) == ["0", "1", "2"]
    for name in out:
        w = before[f"{name}.weight"].double().numpy()
        lo, hi = w.min(), w.max()
        step = (hi - lo) / 2 ** k
        lv = np.clip(np.round((w - lo) / step), 0, 2 ** k - 1)   # NumPy rounds half to even too
        levels, got_lo, got_hi = out[name]
        assert levels.dtype == torch.int64 and levels.shape == model[int(name)].weight.shape
        assert np.array_equal(levels.numpy(), lv)
        assert (got_lo, got_hi) == (lo, hi)
        np.testing.assert_allclose(model[int(name)].weight.detach().double().numpy(),
                                   lo + lv / 2 ** k * (hi - lo), rtol=0, atol=1e-6)
        assert len(torch.unique(model[int(name)].weight)) <= 2 ** k
    for name, p in model.named_parameters():
        if not name.endswith("weight") or name.startswith("3."):    # biases and batch norm
            assert torch.equal(p, before[name]), name


def test_quantize_model_by_hand_and_layer_subset():
    model = nn.Sequential(_set(nn.Linear(3, 1), [[0.0, 0.25, 1.0]], [0.3]),
                          _set(nn.Linear(1, 1), [[0.123]], [0.0]))
    out = quantize_model(model, 2, layers=["0"])
    assert list(out) == ["0"]
    levels, lo, hi = out["0"]
    assert levels.tolist() == [[0, 1, 3]] and (lo, hi) == (0.0, 1.0)
    assert model[0].weight.tolist() == [[0.0, 0.25, 0.75]]
    assert model[0].bias.item() == pytest.approx(0.3)
    assert model[1].weight.item() == pytest.approx(0.123)                # not selected
    with pytest.raises(ValueError):
        quantize_model(model, 2, layers=["5"])


# --------------------------------------------------------------------------------------------
# §6 pruning
# --------------------------------------------------------------------------------------------

def _magnitude_ramp(n, seed=0):
    """Weights +-1, +-2, ..., +-n (alternating signs) in a random order."""
    mags = np.arange(1, n + 1, dtype=np.float32)
    signed = mags * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    return np.random.default_rng(seed).permutation(signed)


@pytest.mark.parametrize("n, fraction, pruned", [
    (1001, 0.5, 500),      # round(500.5) = 500, half to even
    (1003, 0.5, 502),      # round(501.5) = 502
    (1001, 0.3, 300),      # round(300.3)
    (1001, 0.0, 0),
    (1001, 1.0, 1001),
])
def test_prune_removes_exactly_the_smallest_magnitudes(n, fraction, pruned):
    w = _magnitude_ramp(n)
    layer = _set(nn.Linear(n, 1), [w.tolist()], [0.001])
    masks = global_magnitude_prune(layer, fraction)
    assert list(masks) == [""]
    mask = masks[""].numpy()[0]
    assert mask.dtype == bool and int((~mask).sum()) == pruned
    # the pruned ones are exactly |w| <= pruned (magnitudes 1..n, signs ignored)
    assert np.array_equal(~mask, np.abs(w) <= pruned)
    got = layer.weight.detach().numpy()[0]
    assert np.all(got[~mask] == 0) and np.array_equal(got[mask], w[mask])
    assert int((got == 0).sum()) == pruned
    assert layer.bias.item() == pytest.approx(0.001)                     # bias untouched


def test_prune_is_global_and_spares_a_layer_of_large_weights():
    model = nn.Sequential(
        _set(nn.Linear(3, 2), [[0.01, -0.02, 0.03], [-0.04, 0.05, -0.06]], [1e-4, 1e-4]),
        nn.ReLU(),
        _set(nn.Linear(2, 2), [[10.0, -20.0], [30.0, -40.0]], [0.0, 0.0]))
    masks = global_magnitude_prune(model, 0.5)      # 5 of 10: the five smallest, all in "0"
    assert sorted(masks) == ["0", "2"]
    assert masks["0"].tolist() == [[False, False, False], [False, False, True]]
    assert masks["2"].all()
    assert model[0].weight.tolist() == [[0.0, 0.0, 0.0], [0.0, 0.0, pytest.approx(-0.06)]]
    assert model[2].weight.tolist() == [[10.0, -20.0], [30.0, -40.0]]
    assert model[0].bias.tolist() == pytest.approx([1e-4, 1e-4])
    assert sparsity(model) == pytest.approx(5 / 10)


def test_prune_layer_subset_spares_the_others():
    model = nn.Sequential(_set(nn.Linear(3, 2), [[0.01, -0.02, 0.03], [-0.04, 0.05, -0.06]]),
                          _set(nn.Linear(2, 2), [[0.001, -0.002], [0.003, -0.004]]))
    masks = global_magnitude_prune(model, 0.5, layers=["0"])    # 3 of the 6 weights of "0"
    assert list(masks) == ["0"]
    assert masks["0"].tolist() == [[False, False, False], [True, True, True]]
    assert torch.equal(model[1].weight, _t([[0.001, -0.002], [0.003, -0.004]]))


def test_prune_ties_go_to_the_earlier_position():
    model = nn.Sequential(_set(nn.Linear(2, 1, bias=False), [[1.0, -1.0]]),
                          _set(nn.Linear(1, 3, bias=False), [[1.0], [-1.0], [1.0]]))
    masks = global_magnitude_prune(model, 0.6)       # 3 of 5, all |w| = 1
    assert masks["0"].tolist() == [[False, False]]
    assert masks["1"].tolist() == [[False], [True], [True]]


def test_prune_many_ties_follow_position():
    # 999 weights, |w_i| = 1 + i % 3, signs alternating; 50 % -> round(499.5) = 500 pruned:
    # all 333 of magnitude 1, then the first 167 of magnitude 2 (i = 1, 4, 7, ...)
    i = np.arange(999)
    w = (1 + i % 3) * np.where(i % 2 == 0, 1.0, -1.0)
    layer = _set(nn.Linear(999, 1, bias=False), [w.tolist()])
    mask = global_magnitude_prune(layer, 0.5)[""].numpy()[0]
    expected_pruned = (i % 3 == 0) | ((i % 3 == 1) & (i <= 1 + 3 * 166))
    assert int(expected_pruned.sum()) == 500
    assert np.array_equal(~mask, expected_pruned)


def test_masks_reapplied_after_optimizer_steps():
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    masks = global_magnitude_prune(model, 0.5)
    mask = masks[""]
    assert int((~mask).sum()) == 6
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = torch.randn(8, 4)
    for _ in range(3):
        before = model.weight.detach().clone()
        opt.zero_grad()
        (model(x) ** 2).sum().backward()
        opt.step()
        assert torch.all(model.weight[~mask] != 0)                 # the step regrew them
        stepped = model.weight.detach().clone()
        apply_masks(model, masks)
        assert torch.all(model.weight[~mask] == 0)
        assert torch.equal(model.weight[mask], stepped[mask])       # kept weights retrain
        assert not torch.equal(model.weight[mask], before[mask])
    assert sparsity(model) == pytest.approx(0.5)


def test_sparsity_counts_weights_not_biases():
    model = nn.Sequential(_set(nn.Linear(2, 2), [[0.0, 1.0], [2.0, 0.0]], [0.0, 0.0]),
                          _set(nn.Linear(2, 1), [[0.0, 0.0]], [0.0]))
    assert sparsity(model) == pytest.approx(4 / 6)
    assert sparsity(model, layers=["0"]) == pytest.approx(2 / 4)


# --------------------------------------------------------------------------------------------
# regularizers
# --------------------------------------------------------------------------------------------

def _penalty_model():
    return nn.Sequential(_set(nn.Linear(2, 2), [[1.0, -2.0], [3.0, -4.0]], [100.0, 100.0]),
                         nn.Tanh(),
                         _set(nn.Linear(2, 1), [[0.5, -0.5]], [-7.0]))


def test_l1_penalty_by_hand():
    model = _penalty_model()
    p = l1_penalty(model)
    assert p.item() == pytest.approx(1 + 2 + 3 + 4 + 0.5 + 0.5)
    p.backward()
    assert model[0].weight.grad.tolist() == [[1.0, -1.0], [1.0, -1.0]]
    assert model[0].bias.grad is None
    assert l1_penalty(model, layers=["0"]).item() == pytest.approx(10.0)


def test_l2_penalty_by_hand():
    model = _penalty_model()
    p = l2_penalty(model)
    assert p.item() == pytest.approx(1 + 4 + 9 + 16 + 0.25 + 0.25)
    p.backward()
    assert model[2].weight.grad.tolist() == [[1.0, -1.0]]            # 2 w
    assert model[2].bias.grad is None
    assert l2_penalty(model, layers=["2"]).item() == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------
# ch. 4 distillation
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("T", [1.0, 4.0])
def test_distillation_loss_by_hand(T, alpha):
    # teacher / T = [0, ln 3] -> p_t = [1/4, 3/4]; student [0, 0] -> p_s = [1/2, 1/2]
    student = _t([[0.0, 0.0]], torch.float64)
    teacher = _t([[0.0, T * math.log(3.0)]], torch.float64)
    kl = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    ce = math.log(2.0)                                               # -log(1/2), class 0
    expected = alpha * T * T * kl + (1 - alpha) * ce
    got = distillation_loss(student, teacher, torch.tensor([0]), T, alpha)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def _np_log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("T", [1.0, 4.0])
def test_distillation_loss_matches_numpy(T, alpha):
    rng = np.random.default_rng(3)
    s = rng.normal(scale=3.0, size=(5, 4))
    t = rng.normal(scale=3.0, size=(5, 4))
    y = np.array([0, 3, 1, 2, 3])
    log_ps, log_pt = _np_log_softmax(s / T), _np_log_softmax(t / T)
    kl = (np.exp(log_pt) * (log_pt - log_ps)).sum(axis=1).mean()
    ce = -_np_log_softmax(s)[np.arange(5), y].mean()                 # T = 1 for the hard term
    expected = alpha * T ** 2 * kl + (1 - alpha) * ce
    got = distillation_loss(torch.from_numpy(s), torch.from_numpy(t), torch.from_numpy(y),
                            T, alpha)
    assert got.item() == pytest.approx(expected, rel=1e-10)


def test_distillation_gradients_and_unlabelled_data():
    student = torch.tensor([[0.2, -1.0, 0.5]], requires_grad=True)
    teacher = torch.tensor([[1.0, 0.0, -1.0]], requires_grad=True)
    distillation_loss(student, teacher, torch.tensor([2]), 2.0, 0.5).backward()
    assert teacher.grad is None and student.grad is not None
    # alpha = 1 needs no labels (§7.1); alpha < 1 does
    soft = distillation_loss(student, teacher, None, 2.0, 1.0)
    assert soft.item() > 0
    with pytest.raises(ValueError):
        distillation_loss(student, teacher, None, 2.0, 0.5)
    with pytest.raises(ValueError):
        distillation_loss(student, teacher, torch.tensor([2]), 0.0, 0.5)


# --------------------------------------------------------------------------------------------
# ch. 7 accounting
# --------------------------------------------------------------------------------------------

def _tiny():
    """Linear(3, 2) + Linear(2, 1): weights 6 and 2, biases 2 and 1, 11 parameters."""
    return nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))


def test_memory_bits_by_hand():
    model = _tiny()
    assert memory_bits(model) == 11 * 32                                 # 352
    # k = 4: 6*4 + 64 = 88, 2*4 + 64 = 72, biases 3*32 = 96
    assert memory_bits(model, quantized_bits=4) == 88 + 72 + 96
    assert memory_bits(model, quantized_bits={"0": 8}) == (6 * 8 + 64) + 2 * 32 + 96
    mask = torch.tensor([[True, False, True], [False, True, False]])   # 3 of 6 kept
    # sparse float: 3*32 kept + 6-bit bitmask = 102; "2".weight 64; biases 96
    assert memory_bits(model, masks={"0": mask}) == 102 + 64 + 96
    # pruned and 4-bit: 3*4 + 6 + 64 = 82; "2" quantized 72; biases 96
    assert memory_bits(model, quantized_bits=4, masks={"0": mask}) == 82 + 72 + 96
    with pytest.raises(ValueError):
        memory_bits(model, masks={"1": mask})                           # ReLU has no weight


def test_memory_bits_counts_all_parameters_not_buffers():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2), nn.Linear(2, 1))
    assert memory_bits(model) == (6 + 2 + 2 + 2 + 2 + 1) * 32           # bn weight and bias


def test_memory_bits_eight_bit_layer_of_table_4_1():
    # Linear 256 -> 256: 65792 parameters (Table 4.1); 8 bits: "a factor of almost 4" (§5)
    layer = nn.Linear(256, 256)
    assert memory_bits(layer) == 65792 * 32 == 2105344
    assert memory_bits(layer, quantized_bits=8) == 65536 * 8 + 64 + 256 * 32 == 532544


def test_cpu_inference_time_restores_state():
    model = nn.Sequential(nn.Linear(8, 4), nn.Dropout(0.5))
    threads = torch.get_num_threads()
    t = cpu_inference_time(model, torch.randn(1, 8), repeats=5, warmup=2)
    assert isinstance(t, float) and 0 < t < 1
    assert model.training and torch.get_num_threads() == threads
