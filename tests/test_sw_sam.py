"""Sum-and-Max layers, activation-rate pruning and the correlated-signal task of seed 002."""

import pytest
import torch

from hwgen.sw.families.sam import layers as sam
from hwgen.sw.families.sam.correlated import (CONFIG_A, CONFIG_B, CorrelatedConfig,
                                              CorrelatedTask, accuracy, build_model, confusion,
                                              train_correlated)
from hwgen.sw.families.sam.layers import (FORMS, ActivationCounts, SAMLinear, count_activations,
                                          prune, sum_max, sum_min)


def _reference(x, w, reduce):
    """Plain autograd eq. 3 (or its min): the whole broadcast at once."""
    sums = x[:, None, :] + w[None, :, :]
    return sums.max(dim=2).values if reduce == "max" else sums.min(dim=2).values


def _layer(in_features, out_features, form, seed):
    torch.manual_seed(seed)
    return SAMLinear(in_features, out_features, form=form).double()


# --- §II: forward and the selection gradient -------------------------------------------------

def test_sum_max_gradient_goes_to_the_selected_pair_and_ties_to_the_lowest_index():
    x = torch.tensor([[1.0, 3.0, 2.0]], requires_grad=True)
    w = torch.tensor([[0.0, -1.0, 0.0],     # sums 1, 2, 2: tie between i = 1 and i = 2 -> 1
                      [5.0, 0.0, 0.0]], requires_grad=True)  # sums 6, 3, 2 -> i = 0
    out = sum_max(x, w)
    assert out.tolist() == [[2.0, 6.0]]
    out.backward(torch.tensor([[10.0, 100.0]]))
    assert x.grad.tolist() == [[100.0, 10.0, 0.0]]
    assert w.grad.tolist() == [[0.0, 10.0, 0.0], [100.0, 0.0, 0.0]]


def test_sum_min_gradient_and_ties():
    x = torch.tensor([[2.0, 2.0, 0.0], [4.0, 4.0, 4.0]], requires_grad=True)
    w = torch.tensor([[0.0, 0.0, 5.0]], requires_grad=True)
    # sample 0: sums 2, 2, 5 -> tie, i = 0; sample 1: sums 4, 4, 9 -> tie, i = 0
    out = sum_min(x, w)
    assert out.tolist() == [[2.0], [4.0]]
    out.backward(torch.tensor([[1.0], [3.0]]))
    assert x.grad.tolist() == [[1.0, 0.0, 0.0], [3.0, 0.0, 0.0]]
    assert w.grad.tolist() == [[4.0, 0.0, 0.0]]     # both samples selected W_00


def test_eq5_gradients_of_both_terms_add_up():
    layer = SAMLinear(3, 1)
    with torch.no_grad():
        layer.weight_pos.copy_(torch.tensor([[0.0, 0.0, 0.0]]))
        layer.weight_neg.copy_(torch.tensor([[9.0, 9.0, 0.0]]))
    x = torch.tensor([[0.0, 1.0, 2.0]], requires_grad=True)
    out = layer(x)      # max(0, 1, 2) + min(9, 10, 2) = 2 + 2
    assert out.tolist() == [[4.0]]
    out.backward()
    assert x.grad.tolist() == [[0.0, 0.0, 2.0]]
    assert layer.weight_pos.grad.tolist() == [[0.0, 0.0, 1.0]]
    assert layer.weight_neg.grad.tolist() == [[0.0, 0.0, 1.0]]


@pytest.mark.parametrize("function", [sum_max, sum_min])
def test_custom_function_passes_gradcheck(function):
    torch.manual_seed(0)
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(function, (x, w), eps=1e-6)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_chunked_layer_matches_plain_autograd(form, monkeypatch):
    monkeypatch.setattr(sam, "CHUNK_ELEMENTS", 7 * 9)     # 3 outputs per chunk, the last short
    layer = _layer(7, 8, form, seed=1)
    x = torch.randn(9, 7, dtype=torch.float64, requires_grad=True)
    g = torch.randn(9, 8, dtype=torch.float64)
    grads = torch.autograd.grad((layer(x) * g).sum(), [x, *layer.term_weights()])

    out = 0
    for (reduce, sign), w in zip(FORMS[form], layer.term_weights()):
        out = out + sign * _reference(x, w, reduce)
    expected = torch.autograd.grad((out * g).sum(), [x, *layer.term_weights()])
    assert torch.equal(layer(x), out)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_bad_shapes_and_forms_are_rejected():
    with pytest.raises(ValueError, match="form must be one of"):
        SAMLinear(3, 2, form="min")
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        sum_max(torch.zeros(2, 4), torch.zeros(3, 5))


# --- §III-D: activation rates and pruning ----------------------------------------------------

def test_counts_hand_made():
    layer = SAMLinear(3, 2, form="max")
    with torch.no_grad():
        layer.weight_pos.copy_(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 10.0]]))
    x = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0], [1.0, 1.0, 1.0]])
    acts = count_activations(layer, x, batch_size=3)
    # output 0: i = 0, 1, 2, then a three-way tie -> 0; output 1 always picks i = 2
    assert acts.counts[0].tolist() == [[2, 1, 1], [0, 0, 4]]
    assert acts.n_samples == 4
    assert acts.means[0].tolist() == [(5 + 5 + 5 + 1) / 4, (10 + 10 + 15 + 11) / 4]


def _hand_pruned():
    layer = SAMLinear(4, 2)
    with torch.no_grad():
        layer.weight_pos.copy_(torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]))
        layer.weight_neg.copy_(-layer.weight_pos)
    counts = [torch.tensor([[4, 1, 3, 0], [2, 2, 2, 2]]),     # rates /8: .5 .125 .375 0 | .25 x4
              torch.tensor([[0, 8, 0, 0], [3, 1, 1, 3]])]
    acts = ActivationCounts(counts, [torch.tensor([7.0, 8.0]), torch.tensor([-1.0, -2.0])], 8)
    return layer, prune(layer, acts, threshold=0.3)


def test_prune_removes_exactly_the_entries_below_the_rate_threshold():
    _, pruned = _hand_pruned()
    w_plus, w_minus = pruned.terms
    assert w_plus.pairs(0) == [(0, pytest.approx(0.1)), (2, pytest.approx(0.3))]
    assert w_plus.pairs(1) == []                          # every rate .25 < .3
    assert w_minus.pairs(0) == [(1, pytest.approx(-0.2))]
    assert w_minus.pairs(1) == [(0, pytest.approx(-0.5)), (3, pytest.approx(-0.8))]
    assert pruned.n_params == 5
    assert pruned.empty.tolist() == [[False, True], [False, False]]


def test_fully_pruned_term_outputs_its_mean():
    layer, pruned = _hand_pruned()
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    # output 0: max(1.1, 3.3) + min(1.8) ; output 1: fill 8 + min(0.5, 3.2)
    torch.testing.assert_close(pruned(x), torch.tensor([[3.3 + 1.8, 8.0 + 0.5]]))
    with pytest.raises(ValueError, match="threshold"):
        prune(layer, count_activations(layer, x), threshold=1.5)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_pruned_layer_is_the_layer_with_infinite_removed_weights(form, monkeypatch):
    monkeypatch.setattr(sam, "CHUNK_ELEMENTS", 1000)    # several chunks of samples
    layer = _layer(16, 12, form, seed=2)
    x = torch.randn(300, 16, dtype=torch.float64)
    acts = count_activations(layer, x)
    pruned = prune(layer, acts, threshold=0.02)
    expected = 0
    for (reduce, sign), w, rate in zip(FORMS[form], layer.term_weights(), acts.rates()):
        removed = torch.tensor(-torch.inf if reduce == "max" else torch.inf, dtype=w.dtype)
        expected = expected + sign * _reference(x, torch.where(rate >= 0.02, w, removed), reduce)
    assert 0 < pruned.n_params < sum(w.numel() for w in layer.term_weights())
    assert not pruned.empty.any()
    assert torch.equal(pruned(x), expected.detach())


@pytest.mark.parametrize("form", sorted(FORMS))
def test_pruning_never_selected_entries_keeps_the_forward(form):
    layer = _layer(32, 20, form, seed=3)
    x = torch.randn(200, 32, dtype=torch.float64)
    acts = count_activations(layer, x, batch_size=64)
    assert all(int(c.sum()) == 200 * 20 for c in acts.counts)
    pruned = prune(layer, acts, threshold=1 / 200)     # removes exactly the zero counts
    assert pruned.n_params == sum(int((c > 0).sum()) for c in acts.counts)
    assert torch.equal(pruned(x), layer(x).detach())


# --- §III-A: the task and the configurations -------------------------------------------------

def test_signals_have_covariance_r_to_the_lag():
    task = CorrelatedTask(n=64, n_classes=4, r_max=0.9)
    y = torch.arange(4).repeat_interleave(5000)
    x = task.signals(y, torch.Generator().manual_seed(0)).double()
    for k, r in enumerate(task.rs.tolist()):
        s = x[y == k]
        assert s.var(dim=0).mean() == pytest.approx(1.0, abs=0.03)
        for lag in (1, 2):
            cov = (s[:, lag:] * s[:, :-lag]).mean()
            assert cov == pytest.approx(r ** lag, abs=0.02), (r, lag)


def test_test_set_is_fixed_and_balanced():
    task = CorrelatedTask(n=16)
    x, y = task.test_set(1000, seed=5)
    assert torch.equal(x, task.test_set(1000, seed=5)[0])
    assert not torch.equal(x, task.test_set(1000, seed=6)[0])
    assert torch.bincount(y).tolist() == [100] * 10
    assert task.rs.tolist() == pytest.approx([-0.9 + 0.2 * k for k in range(10)])


def test_configurations_follow_the_paper():
    for config, hidden in ((CONFIG_A, 307), (CONFIG_B, 1024)):
        # §III-C: both feed 64,000 signals per epoch
        assert config.batch_size * config.steps_per_epoch == 64_000
        model = build_model(config)
        assert model[0].out_features == hidden and model[-1].out_features == 10
    assert (CONFIG_A.hidden, CONFIG_A.lr) == ("mac", 1e-3)
    assert (CONFIG_B.hidden, CONFIG_B.lr) == ("sam", 8e-3)
    assert sum(w.numel() for w in build_model(CONFIG_B)[0].term_weights()) == 1_048_576
    with pytest.raises(ValueError, match="hidden"):
        CorrelatedConfig(hidden="xnor", width=4, batch_size=4, lr=1e-3, steps_per_epoch=1)


def test_sam_network_learns_a_small_task_well_above_chance():
    task = CorrelatedTask(n=32, n_classes=3)
    config = CorrelatedConfig(hidden="sam", width=64, batch_size=64, lr=3e-2,
                              steps_per_epoch=100, epochs=1, task=task)
    threads = torch.get_num_threads()
    model = train_correlated(config, seed=0, progress=False)
    assert torch.get_num_threads() == threads
    x, y = task.test_set(3000, seed=1)
    assert accuracy(model, x, y) > 0.7          # chance is 1/3
    assert int(confusion(model, x, y, 3).sum()) == 3000
