"""Library helpers of the seed-002 reproduction (benchmarks/sam_paper.py): magnitude pruning of
configuration A (§III-D) and the per-epoch training history (Fig. 3)."""

import pytest
import torch
from torch import nn

from hwgen.sw.correlated import CorrelatedConfig, CorrelatedTask, magnitude_prune, train_correlated


def _linear():
    layer = nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.1, 0.0, 2.0],
                                         [-0.3, 0.3, -0.7, 0.05],
                                         [1.0, -1.0, 0.29, -0.31]]))
        layer.bias.copy_(torch.tensor([0.01, -2.0, 3.0]))
    return layer


def test_magnitude_prune_removes_exactly_the_weights_below_the_threshold():
    layer = _linear()
    before = layer.weight.clone()
    pruned, kept = magnitude_prune(layer, 0.3)
    # |w| < 0.3: -0.1, 0.0, 0.05, 0.29 -> 4 of 12 removed; 0.3 and -0.3 stay (not below)
    assert kept == 8
    expected = torch.tensor([[0.5, 0.0, 0.0, 2.0],
                             [-0.3, 0.3, -0.7, 0.0],
                             [1.0, -1.0, 0.0, -0.31]])
    assert torch.equal(pruned.weight.detach(), expected)
    assert int((pruned.weight != 0).sum()) == kept
    assert torch.equal(pruned.bias, layer.bias)          # bias kept whole, not counted
    assert torch.equal(layer.weight, before)             # the original is untouched
    assert pruned is not layer


def test_magnitude_prune_extremes():
    layer = _linear()
    pruned, kept = magnitude_prune(layer, 0.0)
    assert kept == 12 and torch.equal(pruned.weight, layer.weight)
    x = torch.randn(5, 4)
    torch.testing.assert_close(pruned(x), layer(x))
    pruned, kept = magnitude_prune(layer, 2.5)
    assert kept == 0 and not pruned.weight.any()
    torch.testing.assert_close(pruned(x), layer.bias.expand(5, -1))
    with pytest.raises(ValueError, match="threshold"):
        magnitude_prune(layer, -1.0)


@pytest.mark.parametrize("hidden", ["mac", "sam"])
def test_on_epoch_reports_every_epoch_and_changes_nothing(hidden):
    config = CorrelatedConfig(hidden=hidden, width=8, batch_size=16, lr=1e-2, steps_per_epoch=4,
                              epochs=3, task=CorrelatedTask(n=16, n_classes=3))
    history = []
    with_cb = train_correlated(config, seed=3, progress=False,
                               on_epoch=lambda *row: history.append(row))
    without = train_correlated(config, seed=3, progress=False)
    assert [row[0] for row in history] == [1, 2, 3]
    assert all(loss > 0 and 0.0 <= acc <= 1.0 for _, loss, acc in history)
    # accuracy is counted over whole batches: a multiple of 1 / (steps x batch)
    assert all(abs(acc * 64 - round(acc * 64)) < 1e-9 for _, _, acc in history)
    for a, b in zip(with_cb.state_dict().values(), without.state_dict().values()):
        assert torch.equal(a, b)
