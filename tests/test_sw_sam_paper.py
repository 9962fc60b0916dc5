"""Library helpers of the seed-002 reproduction (benchmarks/sam_paper.py): magnitude pruning of
configuration A (§III-D) and the per-epoch training history (Fig. 3)."""

import pytest
import torch
from torch import nn

from benchmark_script import restore_threads  # noqa: F401 (fixture)
from hwgen.sw.families.sam.correlated import (CorrelatedConfig, CorrelatedTask, magnitude_prune,
                                              train_correlated)


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


def test_a_trainer_stopped_at_its_deadline_and_resumed_equals_one_run():
    """CorrelatedTrainer: a state_dict taken after epoch 1 of 3 and loaded into a fresh trainer
    goes on to the very weights and history of an uninterrupted run."""
    import time

    from hwgen.sw.families.sam.correlated import CorrelatedTrainer

    config = CorrelatedConfig(hidden="sam", width=6, batch_size=8, lr=1e-2, steps_per_epoch=3,
                              epochs=3, task=CorrelatedTask(n=12, n_classes=3))
    whole = CorrelatedTrainer(config, seed=5)
    assert whole.run(progress=False) and whole.epoch == 3
    first = CorrelatedTrainer(config, seed=5)
    assert not first.run(deadline=time.monotonic() - 1.0, progress=False)   # one epoch, stop
    assert first.epoch == 1 and not first.done
    second = CorrelatedTrainer(config, seed=99)          # other init: all of it is replaced
    second.load_state_dict(first.state_dict())
    assert second.run(progress=False)
    for a, b in zip(whole.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)
    assert [h[:2] for h in second.history] == [h[:2] for h in whole.history]


def test_the_product_form_of_the_signals_is_the_recursion():
    """CorrelatedTask.factors (the accelerator's sampler): e @ factors picks, per class, the
    signal the AR(1) recursion makes of the same innovations e."""
    task = CorrelatedTask(n=40, n_classes=5)
    y = torch.arange(5).repeat(3)
    x = task.signals(y, torch.Generator().manual_seed(4))
    e = torch.randn(len(y), task.n, generator=torch.Generator().manual_seed(4))
    every = (e @ task.factors("cpu")).view(len(y), task.n_classes, task.n)
    assert torch.allclose(every[torch.arange(len(y)), y], x, atol=1e-5)
    # and the covariance is eq. 6's r^|i-j| (a large sample of the most correlated class)
    e = torch.randn(20_000, task.n, generator=torch.Generator().manual_seed(1))
    s = (e @ task.factors("cpu")).view(-1, task.n_classes, task.n)[:, -1].double()
    cov = (s[:, 10:14].T @ s[:, 10:14]) / len(s)
    r = float(task.rs[-1])
    want = torch.tensor([[r ** abs(i - j) for j in range(4)] for i in range(4)],
                        dtype=torch.float64)
    assert (cov - want).abs().max() < 0.05


def test_sam_paper_stops_at_its_time_limit_and_goes_on(tmp_path, restore_threads):
    """benchmarks/sam_paper.py --time-limit: exit status 3 with checkpoints; the same command
    again finishes, with the models of an uninterrupted run."""
    from benchmark_script import load_benchmark

    args = ["--epochs-a", "2", "--steps-per-epoch-a", "3", "--epochs-b", "2",
            "--steps-per-epoch-b", "2", "--test-size", "300", "--count-size", "300",
            "--points", "3", "--refine", "0", "--no-progress"]
    bench = load_benchmark("sam_paper")
    cut, whole = tmp_path / "cut", tmp_path / "whole"
    assert bench.main(args + ["--out", str(cut), "--time-limit", "1e-9"]) == 3
    assert sorted(p.name for p in cut.iterdir()) == ["checkpoint_a.pt", "checkpoint_b.pt"]
    assert bench.main(args + ["--out", str(cut)]) == 0
    assert bench.main(args + ["--out", str(whole)]) == 0
    for name in ("config_a.pt", "config_b.pt"):
        a, b = torch.load(cut / name), torch.load(whole / name)
        assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(SystemExit, match="other settings"):
        bench.main(args + ["--out", str(cut), "--lr-b", "0.5"])
