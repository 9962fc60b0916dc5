"""The split network of seed 000's experiments (sw/families/constellation/oac_net.py) and its
two benchmark scripts."""

import json
import math

import pytest
import torch

from hwgen.sw.families.constellation.complex_nn import ComplexLinear
from hwgen.sw.families.constellation.oac import DriftingChannel, OACLinear, random_channel
from hwgen.sw.families.constellation.oac_net import OACNet, comm_cost, train_eval
from benchmark_script import load_benchmark


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One thread, as the benchmarks use (much faster on a shared 2-core CPU); the scripts'
    main() sets one thread too, so the previous count is restored for the other test files."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _channel(seed=0, n=16, paths=8):
    return random_channel(n, n, paths, torch.Generator().manual_seed(seed))


def _pixels(batch, seed=0):
    return torch.randint(0, 17, (batch, 64), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("activation", ["qam16", "crelu"])
@pytest.mark.parametrize("link", ["oac", "central"])
def test_forward_shapes_and_gradients(activation, link):
    torch.manual_seed(0)
    net = OACNet(activation, link, _channel() if link == "oac" else None, rank=8, snr_db=10.0)
    assert isinstance(net.link, OACLinear if link == "oac" else ComplexLinear)
    out = net(_pixels(7))
    assert out.shape == (7, 10) and out.dtype == torch.float32 and not out.is_complex()
    out.square().sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(torch.view_as_real(p.grad)
                                                     if p.is_complex() else p.grad).all(), name
    net.eval()
    assert net(_pixels(3, seed=1)).shape == (3, 10)


def test_network_validates():
    with pytest.raises(ValueError, match="channel"):
        OACNet("crelu", "oac", None)
    with pytest.raises(ValueError, match="link"):
        OACNet("crelu", "wire", _channel())
    with pytest.raises(ValueError, match="activation"):
        OACNet("relu", "central")


@pytest.mark.parametrize("activation", ["qam16", "crelu"])
def test_noiseless_oac_network_is_the_network_with_its_effective_weight(activation):
    torch.manual_seed(1)
    H = _channel(seed=3)
    net = OACNet(activation, "oac", H, rank=8, snr_db=None)
    twin = OACNet(activation, "central")
    twin.tx.load_state_dict(net.tx.state_dict())
    twin.rx.load_state_dict(net.rx.state_dict())
    with torch.no_grad():
        twin.link.weight.copy_(net.link.effective_weight())
    x = _pixels(64, seed=2)
    # training mode (batch statistics), then eval mode after the running statistics moved
    torch.testing.assert_close(net(x), twin(x), rtol=1e-4, atol=1e-4)
    net.eval()
    twin.eval()
    x = _pixels(32, seed=4)
    torch.testing.assert_close(net(x), twin(x), rtol=1e-4, atol=1e-4)
    # and the link alone: the OAC layer's output is the effective weight times its input
    z = torch.randn(5, 32, dtype=torch.cfloat)
    torch.testing.assert_close(net.link(z), z @ twin.link.weight.T, rtol=1e-4, atol=1e-4)


class _Recorder:
    """A DriftingChannel that counts step() calls and notes when H changed and which H was read."""

    def __init__(self, inner):
        self.inner, self.steps, self.changed_at, self.read = inner, 0, [], []

    @property
    def H(self):
        self.read.append(self.inner.H)
        return self.inner.H

    def step(self):
        before = self.inner.H.clone()
        moved = self.inner.step()
        self.steps += 1
        if not torch.equal(before, self.inner.H):
            self.changed_at.append(self.steps)
        return moved


def test_drifting_channel_moves_every_50_training_batches(digits_split):
    rec = _Recorder(DriftingChannel(16, 16, rho=0.3, every=50, paths=8, seed=5))
    rec.read.clear()
    result = train_eval("crelu", "oac", snr_db=20.0, channel=rec, epochs=5, seed=0,
                        data=digits_split)
    batches = 5 * math.ceil(len(digits_split.x_train) / 64)      # 5 x 23 = 115
    assert result.batches == batches == rec.steps
    assert rec.changed_at == [50, 100]
    assert result.channel_updates == 2
    # the link read every H the channel went through: the first and the two moved ones
    distinct = []
    for H in rec.read:
        if not any(H is d for d in distinct):
            distinct.append(H)
    assert len(distinct) == 3


def test_stable_channel_never_moves(digits_split):
    rec = _Recorder(DriftingChannel(16, 16, rho=0.0, every=50, paths=8, seed=5))
    result = train_eval("crelu", "oac", snr_db=20.0, channel=rec, epochs=3, seed=0,
                        data=digits_split, train_subset=1280)
    assert rec.steps == result.batches == 60
    assert rec.changed_at == []


def test_tiny_training_beats_chance_and_is_deterministic(digits_split):
    runs = [train_eval("crelu", "oac", snr_db=20.0, epochs=2, seed=0, data=digits_split,
                       train_subset=640) for _ in range(2)]
    assert len(runs[0].accuracy) == 2 and len(runs[0].loss) == 2
    assert runs[0].best > 0.5                      # chance is 0.1
    assert runs[0].accuracy == runs[1].accuracy and runs[0].loss == runs[1].loss
    central = train_eval("crelu", "central", epochs=2, seed=0, data=digits_split,
                         train_subset=640)
    assert central.best > 0.5 and central.channel_updates == 0


def test_comm_cost_numbers():
    c = comm_cost(h=32, h2=32, rank=8)
    # 32 complex float32 = 2048 bits; 8 streams x 4 bits = 32 bits per channel use -> 64 uses
    assert (c["sl_bits"], c["sl_uses"], c["oac_uses"], c["oac_streams"]) == (2048, 64, 4, 32)
    assert (c["sl_qam_bits"], c["sl_qam_uses"]) == (128, 4)
    assert c["ratio_uses"] == 16
    c = comm_cost(h=30, h2=20, rank=8)
    assert (c["sl_bits"], c["sl_uses"], c["oac_uses"]) == (1920, 60, 3)


def test_oac_snr_script_end_to_end(tmp_path):
    out = tmp_path / "snr"
    assert load_benchmark("oac_snr").main(["--epochs", "1", "--seeds", "1", "--snrs", "10",
                                    "--out", str(out), "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert (out / "oac_snr.png").stat().st_size > 0
    assert res["snrs"] == [10.0]
    # 2 centralized runs + 2 activations at one SNR, one epoch each
    assert sorted((r["activation"], r["link"]) for r in res["runs"]) == [
        ("crelu", "central"), ("crelu", "oac"), ("qam16", "central"), ("qam16", "oac")]
    assert all(len(r["accuracy"]) == 1 and 0.0 <= r["final"] <= 1.0 for r in res["runs"])
    assert res["comm_cost"]["sl_uses"] == 64 and res["comm_cost"]["oac_uses"] == 4


def test_oac_drift_script_end_to_end(tmp_path):
    out = tmp_path / "drift"
    assert load_benchmark("oac_drift").main(["--epochs", "1", "--seeds", "1", "--rhos", "0", "1",
                                      "--every", "10", "--out", str(out),
                                      "--no-progress"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert (out / "oac_drift.png").stat().st_size > 0
    assert res["rhos"] == [0.0, 1.0]
    assert res["channel_moves"] == 2                # 23 batches, a move every 10
    assert len(res["runs"]) == 4
    assert set(res["best"]) == {"qam16", "crelu"} and set(res["best"]["crelu"]) == {"0.0", "1.0"}
    assert res["drop_from_rho0"]["crelu"]["0.0"] == 0.0
