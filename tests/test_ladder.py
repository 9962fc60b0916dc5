"""The verification ladder on the demo network: PyTorch == golden(IR) == cocotb RTL, bit for bit."""

import numpy as np
import pytest

from hwgen.boards.targets import get_target
from hwgen.hw.folding import choose_folding
from hwgen.hw.pipeline import Pipeline, to_verilog
from hwgen.sim.runner import verify
from hwgen.sw.core import golden
from hwgen.build import folding_budget, random_vectors
from hwgen.sw.compiler import compile_onnx
from hwgen.sw.families.train import predict


def test_demo_network_reaches_ninety_percent_on_digits(trained_mlp, digits_split):
    acc = (predict(trained_mlp, digits_split.x_test) == digits_split.y_test).mean()
    assert acc >= 0.90


def test_torch_equals_golden_on_the_whole_test_split(trained_mlp, trained_onnx, digits_split):
    model = compile_onnx(trained_onnx)
    x = digits_split.x_test
    assert np.array_equal(golden.run(model, x)[:, 0], predict(trained_mlp, x))


@pytest.mark.rtl
def test_rtl_equals_golden_on_test_split_and_random_vectors(trained_mlp, trained_onnx,
                                                            digits_split, tmp_path):
    model = compile_onnx(trained_onnx)
    folding = choose_folding(model, **folding_budget(model, get_target("ice40")))
    verilog = to_verilog(Pipeline(model, folding), name="top")
    x = np.concatenate([digits_split.x_test, random_vectors(model, 10_000, seed=1)])
    expected = golden.run(model, x)
    # the test split's expected classes are PyTorch's own predictions, so the RTL is held to torch
    assert np.array_equal(expected[:len(digits_split.x_test), 0],
                          predict(trained_mlp, digits_split.x_test))
    res = verify(verilog, top="top", vectors=x, expected=expected, in_bits=model.in_type.bits,
                 in_signed=False, out_bits=model.types()[-1].bits, out_signed=False,
                 n_out=1, build_dir=tmp_path, seed=1, stall=0.3)
    assert res.n_vectors == len(x) == 10_360
    assert res.n_matched == res.n_vectors, res.summary()
    assert res.n_violations == 0
