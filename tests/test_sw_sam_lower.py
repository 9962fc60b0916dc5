"""A SAM network as integers (seed 002): torch's integer arithmetic == the golden model, and
the quantization to one grid for inputs and weights."""

import numpy as np
import pytest
import torch
from torch import nn

from hwgen.sw.core import golden, ir
from hwgen.sw.compiler import CompileError, compile_onnx
from hwgen.sw.families.export import export_onnx
from hwgen.sw.families.sam.layers import (FORMS, ActivationCounts, SAMLinear, count_activations,
                                          prune)
from hwgen.sw.families.sam.lower import InputGrid, dense_mac_layer, lower, to_ir


def _network(form, n_in=16, hidden=12, classes=4, seed=0):
    torch.manual_seed(seed)
    return SAMLinear(n_in, hidden, form=form).double(), nn.Linear(hidden, classes).double()


def test_input_codes_round_half_to_even_and_saturate():
    grid = InputGrid(bits=4, clip=2.0)       # step 0.25, codes -8..7
    x = torch.tensor([[0.125, 0.375, -0.125, 1.74, 1.76, 2.5, -2.0, -9.0]])
    assert grid.step == 0.25 and grid.type == ir.TensorType("signed", 4)
    assert grid.codes(x).tolist() == [[0, 2, 0, 7, 7, 7, -8, -8]]
    with pytest.raises(ValueError, match="bits"):
        InputGrid(bits=1)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_torch_integer_network_equals_golden_bit_for_bit(form):
    sam, out = _network(form)
    x = torch.randn(12_000, 16, dtype=torch.float64) * 1.5
    acts = count_activations(sam, x[:2000])
    pruned = prune(sam, acts, threshold=0.2)      # some rows keep nothing
    assert pruned.empty.any() and pruned.n_params < 2 * 16 * 12
    grid = InputGrid(bits=5, clip=2.0)        # coarse: ties in the max and min are frequent
    net = lower(pruned, out, grid=grid, weight_bits=8)
    model = to_ir(net)
    codes = grid.codes(x)
    hidden, logits, cls = golden.run_layers(model, codes.numpy())
    assert np.array_equal(net.hidden(codes).numpy(), hidden)
    assert np.array_equal(net(codes).numpy(), logits)
    assert np.array_equal(net(codes).argmax(dim=1).numpy(), cls[:, 0])
    # the IR file says the same
    again = ir.Model.from_json(model.to_json())
    assert np.array_equal(golden.run(again, codes.numpy()), cls)
    assert model.layers[0].n_kept == pruned.n_params


def test_weights_on_the_grid_give_the_float_layer_exactly():
    """With inputs and weights already multiples of the step, o_q * step is the float SAM."""
    grid = InputGrid(bits=6, clip=2.0)        # step 1/16, exact in binary
    sam, out = _network("max+min", seed=3)
    with torch.no_grad():
        for w in sam.term_weights():
            w.copy_(torch.round(w * 16) / 16)
    x = torch.round(torch.randn(500, 16, dtype=torch.float64) * 8).clamp(-32, 31) / 16
    net = lower(sam, out, grid=grid)
    assert torch.equal(net.hidden(grid.codes(x)).double() * grid.step, sam(x).detach())


def test_empty_rows_output_their_rounded_fill():
    sam, out = _network("max+min", n_in=4, hidden=2)
    counts = [torch.tensor([[4, 0, 0, 0], [0, 0, 0, 0]]), torch.tensor([[0, 0, 0, 0], [0, 4, 0, 0]])]
    # rows 1 of the max and 0 of the min were never selected: their fills are the means
    acts = ActivationCounts(counts, [torch.tensor([0.3, 1.26]), torch.tensor([-0.74, 0.0])], 4)
    pruned = prune(sam, acts, threshold=0.5)
    grid = InputGrid(bits=6, clip=2.0)
    net = lower(pruned, out, grid=grid)
    x = torch.zeros(1, 4, dtype=torch.int64)
    w_plus = round(sam.weight_pos[0, 0].item() * 16)
    w_minus = round(sam.weight_neg[1, 1].item() * 16)
    # output 0: max over entry 0 + fill round(-0.74 * 16) = -12; output 1: fill 20 + min entry 1
    assert net.hidden(x).tolist() == [[w_plus - 12, 20 + w_minus]]
    layer = to_ir(net).layers[0]
    assert [t.empty.tolist() for t in layer.terms] == [[False, True], [True, False]]
    assert golden.run_layer(layer, x.numpy(), grid.type).tolist() == [[w_plus - 12, 20 + w_minus]]


def test_output_layer_quantization_is_symmetric_and_scaled_to_the_grid():
    sam, out = _network("max", hidden=3, classes=2)
    with torch.no_grad():
        out.weight.copy_(torch.tensor([[1.0, -0.5, 0.25], [-2.0, 0.0, 1.0]]))
        out.bias.copy_(torch.tensor([0.1, -0.3]))
    grid = InputGrid(bits=8, clip=4.0)       # step 1/32
    net = lower(sam, out, grid=grid, weight_bits=4)
    # max|V| / 7 = 0.286 -> t = 0.5; 0.25 / 0.5 = 0.5 rounds (half to even) to 0
    assert net.weight_step == 0.5
    assert net.weight.tolist() == [[2, -1, 0], [-4, 0, 2]]
    assert net.bias.tolist() == [round(0.1 * 64), round(-0.3 * 64)]       # c / (s t)


def test_bad_networks_are_refused():
    sam, _ = _network("max+min")
    with pytest.raises(ValueError, match="takes 5 inputs"):
        lower(sam, nn.Linear(5, 2))
    with pytest.raises(TypeError, match="SAMLinear or a PrunedSAM"):
        lower(nn.Linear(16, 12), nn.Linear(12, 2))


def _exported(tmp_path, form="max+min", weight_bits=8):
    sam, out = _network(form, seed=4)
    x = torch.randn(3000, 16, dtype=torch.float64) * 1.5
    pruned = prune(sam, count_activations(sam, x[:1000]), threshold=0.2)
    grid = InputGrid(bits=6, clip=2.0)
    net = lower(pruned, out, grid=grid, weight_bits=weight_bits)
    path = tmp_path / "sam.onnx"
    export_onnx(net, path)
    return net, path, grid.codes(x)


@pytest.mark.parametrize("form", sorted(FORMS))
def test_exported_onnx_compiles_to_the_same_ir(tmp_path, form):
    net, path, codes = _exported(tmp_path, form)
    model = compile_onnx(path)
    direct = to_ir(net)
    assert [layer.kind for layer in model.layers] == ["sam", "dense_mac", "argmax"]
    assert model.in_type == direct.in_type == ir.TensorType("signed", 6)
    for a, b in zip(model.layers[0].terms, direct.layers[0].terms):
        assert np.array_equal(a.keep, b.keep) and np.array_equal(a.weights, b.weights)
        assert np.array_equal(a.fill, b.fill) and (a.reduce, a.sign) == (b.reduce, b.sign)
    assert np.array_equal(model.layers[1].weights, direct.layers[1].weights)
    assert np.array_equal(model.layers[1].bias, direct.layers[1].bias)
    assert np.array_equal(golden.run(model, codes.numpy())[:, 0], net(codes).argmax(1).numpy())


def test_sam_onnx_refusals(tmp_path):
    import onnx
    from onnx import numpy_helper

    _, path, _ = _exported(tmp_path)
    proto = onnx.load(str(path))
    inits = {t.name: t for t in proto.graph.initializer}
    w = numpy_helper.to_array(inits["sam_w"]).copy()
    w[0, 0, 0] = np.inf                      # +inf in a max term would always be selected
    inits["sam_w"].CopyFrom(numpy_helper.from_array(w, "sam_w"))
    with pytest.raises(CompileError, match="a pruned entry of a max term is -inf"):
        compile_onnx(proto)
    w[0, 0, 0] = 0.01                        # off the input grid (step 1/16)
    inits["sam_w"].CopyFrom(numpy_helper.from_array(w, "sam_w"))
    with pytest.raises(CompileError, match="not a multiple of the input step"):
        compile_onnx(proto)


def test_dense_mac_layer_keeps_pruned_weights_at_zero_and_scales_the_bias():
    lin = nn.Linear(3, 2).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.0, 1.0, -0.26], [0.5, 0.0, 0.0]]))
        lin.bias.copy_(torch.tensor([0.25, -1.0]))
    grid = InputGrid(bits=8, clip=4.0)              # s = 1/32
    layer = dense_mac_layer(lin, grid, weight_bits=4)  # t = 2^ceil(log2(1/7)) = 1/4
    assert layer.weights.tolist() == [[0, 4, -1], [2, 0, 0]]
    assert layer.bias.tolist() == [32, -128]        # b / (s t) = b * 128
    x = torch.tensor([[3, -5, 7]])
    acc = golden.run_layer(layer, x.numpy(), grid.type)
    # exact where the weights are on the grid: W x s + b = acc * s * t
    assert acc[0, 1] * grid.step / 4 == pytest.approx(0.5 * 3 / 32 - 1.0)
