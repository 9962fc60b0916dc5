"""benchmarks/mbbn_accuracy.py: its distillation objective, and ``main()`` end to end, tiny."""

import copy

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from benchmark_script import load_benchmark, restore_threads  # noqa: F401 (fixture)
from hwgen.sw.families.train import train

bench = load_benchmark("mbbn_accuracy")


def _float_mlp(seed=0):
    torch.manual_seed(seed)
    return bench.FloatMLP(8, (12,), 3, in_max=15.0)


def _batch(seed=1, n=32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 16, (n, 8), generator=g).float(),
            torch.randint(0, 3, (n,), generator=g))


def test_a_student_equal_to_its_teacher_has_zero_loss_on_mixed_inputs():
    # the teacher and the student must read the same mixture: any other input makes KL > 0
    teacher = _float_mlp().eval()
    student = copy.deepcopy(teacher).eval()
    objective = bench.teacher_objective(teacher, lam=1.0, mixup=1.0)
    x, y = _batch()
    torch.manual_seed(5)
    assert float(objective(student, x, y, None).detach()) == pytest.approx(0.0, abs=1e-6)
    other = _float_mlp(seed=3).eval()
    torch.manual_seed(5)
    assert float(objective(other, x, y, None).detach()) > 1e-3


def test_unmixed_objective_is_hintons_loss_on_the_batch():
    teacher, student = _float_mlp().eval(), _float_mlp(seed=2).eval()
    x, y = _batch()
    lam, T = 0.7, bench.DISTILL_T
    got = bench.teacher_objective(teacher, lam=lam, mixup=0.0)(student, x, y, None)
    s, t = student(x), teacher(x)
    kl = (F.softmax(t / T, 1) * (F.log_softmax(t / T, 1) - F.log_softmax(s / T, 1))).sum(1)
    expected = lam * T * T * kl.mean() + (1 - lam) * F.cross_entropy(s, y)
    assert float(got.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_mixed_inputs_lie_between_the_rows_they_mix():
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append(x.clone())
            return torch.zeros(len(x), 3)

    x = torch.cat([torch.zeros(16, 8), torch.full((16, 8), 10.0)])
    torch.manual_seed(0)
    bench.teacher_objective(Probe(), lam=1.0, mixup=1.0)(Probe(), x, torch.zeros(32).long(), None)
    teacher_in, student_in = seen
    assert torch.equal(teacher_in, student_in)
    assert teacher_in.min() >= 0 and teacher_in.max() <= 10
    # each row is one value repeated (a mixture of two constant rows), and not all are 0 or 10
    assert torch.equal(teacher_in, teacher_in[:, :1].expand(-1, 8))
    assert ((teacher_in[:, 0] > 0) & (teacher_in[:, 0] < 10)).any()


def test_train_objective_hook_replaces_cross_entropy(restore_threads):
    x = np.random.default_rng(0).integers(0, 16, (64, 8))
    y = np.random.default_rng(1).integers(0, 3, 64)
    plain = train(_float_mlp(), x, y, epochs=2, progress=False)
    hooked = train(_float_mlp(), x, y, epochs=2, progress=False,
                   objective=lambda net, xb, yb, idx: F.cross_entropy(net(xb), yb))
    for a, b in zip(plain.state_dict().values(), hooked.state_dict().values()):
        assert torch.equal(a, b)
    rows = []
    train(_float_mlp(), x, y, epochs=1, batch_size=16, progress=False,
          objective=lambda net, xb, yb, idx: (rows.append(idx), net(xb).sum() * 0)[1])
    assert sorted(torch.cat(rows).tolist()) == list(range(64))


def test_main_prints_the_table_and_verdicts(capsys, restore_threads):
    rc = bench.main(["--seeds", "1", "--datasets", "digits", "--bits", "3,2", "--epochs", "1",
                     "--fp-epochs", "2", "--low-epochs", "3", "--hidden", "16", "--jobs", "1",
                     "--arch", "mlp"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "MBBN(M=K=2)" in out and "Full-Precision" in out
    # epochs seen: full precision 2; M=K=3 after it 2 + 1; M=K=2 (a low stage) 2 + 1 + 3
    assert "2-bit budget        6" in out
    # full precision by the quantized stages' recipe: the teacher's 2 epochs and the 3 of M=K=2
    assert "same recipe         5" in out
    assert out.count("verdict digits") == 4 and out.count("cost    digits") == 2


def test_main_cnn_decomposes_by_packed_branches(capsys, restore_threads):
    rc = bench.main(["--seeds", "1", "--datasets", "digits", "--bits", "2", "--epochs", "1",
                     "--fp-epochs", "1", "--low-epochs", "1", "--channels", "4", "--jobs", "1",
                     "--arch", "cnn", "--routes", "alg2,alg1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "CNN" in out and "MLP" not in out
    # one Alg. 2 row at M=K=2 whose eq. 8 evaluation agrees with QuantCNN on every test signal
    assert "decomposed != QuantCNN: 0" in out
    assert out.count("[0 diff]") == 1
    assert out.count("verdict digits   cnn") == 4
    assert "4 channels per convolution" in out


def test_cnn_layouts_fit_both_data_sets():
    for name, n_in in (("digits", 64), ("mnist1d", 40)):
        shape, convs = bench.conv_layout(name, n_in, 8)
        net = bench.FloatCNN(shape, convs, 10, in_max=255)
        assert net(torch.zeros(3, n_in)).shape == (3, 10)
        assert len(net.hidden_relus(torch.zeros(3, n_in))) == 3


def test_bad_mixup_is_refused():
    with pytest.raises(SystemExit):
        bench.parse_args(["--mixup", "-1"])


@pytest.mark.parametrize("flags", [["--arch", "rnn"], ["--arch", ""], ["--channels", "0"]])
def test_bad_architecture_flags_are_refused(flags):
    with pytest.raises(SystemExit):
        bench.parse_args(flags)
