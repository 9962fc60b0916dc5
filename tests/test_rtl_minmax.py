"""Min/max-quantized, pruned networks (seed 001) on the RTL: the compiled dense_mac pipeline in
cocotb/Verilator equals the golden model (and so the torch split form, tests/
test_sw_minmax_lower.py) on 10,000+ vectors for k = 4 and 8; and ``hwgen build`` of an 8-bit,
50 % pruned autoencoder decoder (4 bits in 7 channel uses) fits the iCE40 UP5K on its DSP
blocks and verifies."""

import json

import numpy as np
import pytest
import torch

from hwgen.boards.targets import get_target
from hwgen.hw.folding import choose_folding
from hwgen.sw.core import golden, ir
from hwgen.build import folding_budget
from hwgen.sw.families.compression.comms import channel
from hwgen.sw.families.compression.lower import lower
from hwgen.sw.families.export import export_onnx
from rtl_check import check_rtl
from test_sw_minmax_lower import S8, compiled, pruned_mlp


@pytest.mark.rtl
@pytest.mark.parametrize("k", [4, 8])
def test_rtl_minmax_mlp(tmp_path, k):
    linears, masks = pruned_mlp(20 + k, sizes=(8, 16, 8))
    # 4-bit hidden codes: a requantization is a multi-threshold, 2^bits - 1 levels a neuron
    net = lower(linears, k=k, masks=masks, in_type=S8, in_step=2 ** -5,
                act_bits=4, act_step=2 ** -2)
    model = compiled(net, tmp_path)
    folding = choose_folding(model, **folding_budget(model, get_target("ice40")))
    x = np.random.default_rng(k).integers(-128, 128, (10_000, 8))
    expected = check_rtl(model, folding, x, tmp_path / "sim", seed=k)
    np.testing.assert_array_equal(expected[:, 0], net.predict(x))
    np.testing.assert_array_equal(expected[:, 0], net.torch_predict(x))


def trained_pruned_decoder(seed=0):
    """The 4-bit-7-channel student (Table 4.2's form), trained briefly at 6 dB, its decoder
    (Linear(7, 16)) pruned by half and the whole autoencoder retrained with the mask (§6.1:
    the encoder adapts its codewords to the pruned decoder)."""
    from hwgen.sw.families.compression.comms import student, train_autoencoder
    from hwgen.sw.families.compression.compress import apply_masks, global_magnitude_prune

    ae = student(4, 7, seed=seed)
    train_autoencoder(ae, ebn0_db=6.0, steps=300, batch=256, lr=1e-2, seed=seed)
    masks = global_magnitude_prune(ae.decoder, 0.5)
    opt = torch.optim.Adam(ae.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(300):
        msgs = torch.randint(0, 16, (256,), generator=gen)
        loss = torch.nn.functional.cross_entropy(ae(msgs, 6.0, gen), msgs)
        opt.zero_grad()
        loss.backward()
        opt.step()
        apply_masks(ae.decoder, masks)
    (name, mask), = masks.items()
    return ae, dict(ae.decoder.named_modules())[name], mask.numpy()


@pytest.mark.rtl
@pytest.mark.synth
def test_hwgen_build_of_a_pruned_8bit_decoder_on_the_up5k_dsps(tmp_path):
    from test_cli import _hwgen

    ae, linear, keep = trained_pruned_decoder()
    assert keep.mean() == 0.5
    net = lower([linear], k=8, masks=[keep], in_type=S8, in_step=2 ** -5)
    export_onnx(net, tmp_path / "decoder.onnx")
    # received words of the trained encoder at 6 dB, quantized as the deployment does
    with torch.no_grad():
        gen = torch.Generator().manual_seed(1)
        msgs = torch.randint(0, 16, (2000,), generator=gen)
        y = channel(ae.encode(msgs), 6.0, rate=4 / 7, kind="awgn", generator=gen)
    codes = np.clip(np.round(y.double().numpy() / 2 ** -5), -128, 127).astype(np.int64)
    np.save(tmp_path / "received.npy", codes)
    accuracy = (net.predict(codes) == msgs.numpy()).mean()
    assert accuracy > 0.95, accuracy
    r = _hwgen("build", "decoder.onnx", "--target", "ice40", "--out", "build", "--vectors",
               "received.npy", "--random-vectors", "8000", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "build"
    assert "10000/10000 vectors matched" in (out / "verify.log").read_text()
    report = json.loads((out / "report.json").read_text())
    assert report["dsps"] > 0 and report["lcs"] <= report["lcs_total"]
    layer = json.loads((out / "ir.json").read_text())["layers"][0]
    assert layer["kind"] == "dense_mac"
    assert (np.array(layer["weights"]) == 0).mean() >= 0.5    # pruned weights are absent
    model = ir.Model.load(out / "ir.json")
    np.testing.assert_array_equal(golden.run(model, codes)[:, 0], net.predict(codes))
