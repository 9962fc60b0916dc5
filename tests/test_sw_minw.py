"""MINW-Net training pieces (seed 004): step/epoch hooks, the alpha schedule, the histograms."""

import numpy as np
import torch

from hwgen.sw.families.shift.aqe import (AQE, MINWMLP, AlphaSchedule, QuantConv2d,
                                         output_function, set_alpha)
from hwgen.sw.families.data import digits
from hwgen.sw.families.shift.histograms import HistogramRecorder, save_histograms
from hwgen.sw.families.train import train


def _small(estimator, bits=2):
    torch.manual_seed(0)
    return MINWMLP(64, (16, 12), 10, in_max=16, act_bits=bits, weight_bits=bits,
                   estimator=estimator)


def test_hooks_see_every_step_and_epoch_and_the_schedule_ends_at_alpha_one():
    d = digits(seed=0)
    x, y = d.x_train[:200], d.y_train[:200]
    est = AQE(0.5)
    model = _small(est)
    steps, epochs, alphas = [], [], []
    schedule = AlphaSchedule(steps=10)

    def on_step(t):
        steps.append(t)
        set_alpha(model, schedule(t))
        alphas.append(est.alpha)

    train(model, x, y, epochs=3, batch_size=50, progress=False, on_step=on_step,
          on_epoch=epochs.append)
    assert steps == list(range(12)) and epochs == [1, 2, 3]
    assert alphas[0] == 0.5 and alphas[5] == 0.75 and alphas[10:] == [1.0, 1.0]
    assert est.alpha == 1.0


def test_histograms_gather_on_the_levels_without_moving_batch_norm(tmp_path):
    d = digits(seed=0)
    x, y = d.x_train[:300], d.y_train[:300]
    est = AQE(0.5)
    model = _small(est, bits=2)
    rec = HistogramRecorder(model, model.layers[1], model.acts[1], x[:64], epochs=[1, 4])
    schedule = AlphaSchedule(steps=8)
    stats = {}

    def on_epoch(epoch):
        bn = model.bns[0]
        before = (bn.running_mean.clone(), bn.running_var.clone())
        rec(epoch)
        stats[epoch] = all(torch.equal(a, b) for a, b in zip(before, (bn.running_mean,
                                                                       bn.running_var)))

    train(model, x, y, epochs=4, batch_size=50, progress=False,
          on_step=lambda t: set_alpha(model, schedule(t)), on_epoch=on_epoch)
    assert sorted(rec.weights) == sorted(rec.activations) == [1, 4] and all(stats.values())
    levels = np.array(output_function(2).levels)
    on_level = lambda v: np.isin(v, levels).mean()          # noqa: E731
    # epoch 1 trains a mixture (alpha < 1): most values off the levels; at the end alpha = 1
    assert on_level(rec.activations[1]) < 0.5 and on_level(rec.weights[1]) < 0.5
    assert on_level(rec.activations[4]) == 1.0 and on_level(rec.weights[4]) == 1.0
    assert rec.activations[4].size == 64 * 12
    paths = save_histograms(rec, tmp_path / "h", title="test")
    assert [p.name for p in paths] == ["h_weights.png", "h_activations.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in paths)


def test_quant_conv_uses_quantized_weights_in_eval():
    torch.manual_seed(0)
    conv = QuantConv2d(2, 3, 3, padding=1, weight_h=output_function(3), estimator=AQE(0.5)).eval()
    x = torch.randn(4, 2, 8, 8)
    wq = conv.quantized_weight()
    assert set(wq.unique().tolist()) <= set(output_function(3).levels)
    assert torch.equal(conv(x), torch.nn.functional.conv2d(x, wq, padding=1))
