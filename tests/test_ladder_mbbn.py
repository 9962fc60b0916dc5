"""The verification ladder on trained multi-branch networks: PyTorch == golden == RTL.

For each (M, K) a small quantized MLP (Algorithm 2 of seed 003) is trained on digits, exported,
compiled and built with the folding ``choose_folding`` picks for half of the UP5K's logic cells
(which keeps the Verilator model quick to compile; ``hwgen build`` uses the whole budget), and
4,000 at M = K = 4: at half the budget its branches take turns, 515 cycles an inference, and
the simulation took 458 s instead of 45 s; the RTL
(cocotb + Verilator) must then equal the golden model, and the golden model PyTorch, on the
test split plus 10,000 random inputs, all-minimum and all-maximum included.
"""

import numpy as np
import pytest
import torch

from hwgen.hw.folding import choose_folding
from hwgen.build import random_vectors
from hwgen.sw.compiler import compile_onnx
from hwgen.sw.families.export import export_onnx
from hwgen.sw.families.mbbn.layers import QuantMLP
from hwgen.sw.families.train import predict, train
from rtl_check import check_rtl


@pytest.mark.rtl
@pytest.mark.parametrize("m_bits,k_bits,lc_budget", [(1, 1, 2640), (2, 2, 2640), (3, 2, 2640),
                                                     (4, 4, 4000)])
def test_trained_mbbn_ladder(m_bits, k_bits, lc_budget, digits_split, tmp_path):
    torch.manual_seed(0)
    net = QuantMLP(64, (32,), 10, bits=[(m_bits, k_bits)] * 2, in_max=16)
    train(net, digits_split.x_train, digits_split.y_train, epochs=6, progress=False)
    model = compile_onnx(export_onnx(net, tmp_path / "m.onnx"))
    assert [layer.kind for layer in model.layers] == ["multithreshold"] + [
        "dense_binary" if (m_bits, k_bits) == (1, 1) else "dense_mbbn"] + [
        "dense_binary" if (m_bits, k_bits) == (1, 1) else "dense_mbbn", "argmax"]

    x = np.concatenate([digits_split.x_test, random_vectors(model, 10_000, seed=m_bits)])
    expected = check_rtl(model, choose_folding(model, lc_budget=lc_budget, ebr_budget=30), x,
                         tmp_path / "rtl", seed=m_bits * 10 + k_bits)
    assert np.array_equal(expected[:, 0], predict(net, x))          # PyTorch == golden
    assert len(x) == 10_360 and len(np.unique(expected)) == 10      # every class occurs
