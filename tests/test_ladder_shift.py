"""The verification ladder on trained MINW-Net shift networks (seed 004): PyTorch == golden == RTL.

For each configuration of Table I's kind (M-bit activations / N-bit weights: 1/1, 2/2, 3/3, and
3-bit weights on the first layer's unquantized integer input, "16/3"), a small MINWMLP is
trained on digits with AQE, exported, compiled, and built with the folding ``choose_folding``
picks for 1,600 to 2,640 logic cells (a third to a half of the UP5K: wider designs have too
many signals for a quick Verilator build, see tests/rtl_check.py); RTL (cocotb + Verilator) == golden == PyTorch on the
test split plus 10,000 random inputs, all-minimum and all-maximum included.
"""

import numpy as np
import pytest
import torch

from hwgen.hw.folding import choose_folding
from hwgen.sw.families.shift.aqe import AQE, MINWMLP, AlphaSchedule, set_alpha
from hwgen.build import random_vectors
from hwgen.sw.compiler import compile_onnx
from hwgen.sw.families.export import export_onnx
from hwgen.sw.families.train import predict, train
from rtl_check import check_rtl


@pytest.mark.rtl
@pytest.mark.parametrize("act_bits, weight_bits, quantize_input, first, lc_budget", [
    (1, 1, True, "dense_binary", 2640), (2, 2, True, "dense_shift", 1600),
    (3, 3, True, "dense_shift", 2200), (3, 3, False, "dense_shift", 1600)],
    ids=["1/1", "2/2", "3/3", "16/3"])
def test_trained_shift_ladder(act_bits, weight_bits, quantize_input, first, lc_budget,
                              digits_split, tmp_path):
    s = digits_split
    torch.manual_seed(0)
    net = MINWMLP(64, (32,), 10, in_max=16, act_bits=act_bits, weight_bits=weight_bits,
                  estimator=AQE(0.5), quantize_input=quantize_input)
    schedule = AlphaSchedule(steps=90)            # 4 epochs of 23 steps: alpha 1 at the end
    train(net, s.x_train, s.y_train, epochs=4, progress=False,
          on_step=lambda t: set_alpha(net, schedule(t)))
    model = compile_onnx(export_onnx(net, tmp_path / "m.onnx"))
    kinds = [layer.kind for layer in model.layers]
    assert kinds == ["multithreshold"] * quantize_input + [first, first, "argmax"]

    x = np.concatenate([s.x_test, random_vectors(model, 10_000, seed=act_bits)])
    expected = check_rtl(model, choose_folding(model, lc_budget=lc_budget, ebr_budget=30), x,
                         tmp_path / "rtl", seed=act_bits * 10 + weight_bits)
    assert np.array_equal(expected[:, 0], predict(net, x))          # PyTorch == golden
    assert len(x) == 10_360 and len(np.unique(expected)) == 10      # every class occurs
