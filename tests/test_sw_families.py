"""The front ends' plumbing: the exporter registry, the demo's family modules, and the
quantizers' levels taken from the torch-free core."""

import subprocess
import sys

import pytest
import torch

from hwgen import demo
from hwgen.sw.core.levels import Staircase, power_of_two_levels, sign_levels, ternary_levels
from hwgen.sw.families import DEMO_FAMILIES
from hwgen.sw.families.binary.layers import BinaryMLP
from hwgen.sw.families.export import OnnxGraph, export_onnx, exporter, exporter_for
from hwgen.sw.families.shift.aqe import OutputFunction, power_of_two, sign, ternary


def test_a_subclass_exports_as_its_nearest_registered_base(tmp_path):
    class Wider(BinaryMLP):
        pass

    torch.manual_seed(0)
    base = BinaryMLP(6, (4,), 3, in_bits=3).eval()
    torch.manual_seed(0)
    sub = Wider(6, (4,), 3, in_bits=3).eval()
    assert exporter_for(Wider) is exporter_for(BinaryMLP)
    export_onnx(base, tmp_path / "base.onnx")
    export_onnx(sub, tmp_path / "sub.onnx")
    assert (tmp_path / "base.onnx").read_bytes() == (tmp_path / "sub.onnx").read_bytes()


def test_an_unregistered_model_is_refused_naming_the_registered_classes(tmp_path):
    with pytest.raises(TypeError, match=r"cannot export a Linear; .*BinaryMLP"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_a_class_takes_one_exporter():
    class Model:
        pass

    @exporter(Model)
    def first(model):
        return OnnxGraph("first", 1, 1)

    assert exporter_for(Model) is first
    with pytest.raises(ValueError, match="already exports by"):
        @exporter(Model)
        def second(model):
            return OnnxGraph("second", 1, 1)
    with pytest.raises(TypeError):
        exporter()


@pytest.mark.parametrize("module, model", [
    ("hwgen.sw.families.sam.lower", "IntegerSAMNet"),
    ("hwgen.sw.families.constellation.lower", "IntegerQAMNet"),
    ("hwgen.sw.families.compression.lower", "IntegerMinMaxMLP"),
    ("hwgen.sw.families.mbbn.layers", "QuantMLP"),
    ("hwgen.sw.families.shift.aqe", "MINWMLP"),
])
def test_importing_any_module_of_a_family_registers_its_exporter(module, model):
    code = (f"import {module} as m\nfrom hwgen.sw.families.export import exporter_for\n"
            f"print(exporter_for(m.{model}).__module__)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == module.rsplit(".", 1)[0] + ".export"


def test_the_families_package_loads_no_torch():
    r = subprocess.run([sys.executable, "-c", "import sys, hwgen.sw.families\n"
                        "print('torch' in sys.modules)"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_the_demo_families_are_the_folders_with_a_demo_module():
    assert DEMO_FAMILIES == ("binary", "mbbn", "sam", "shift")
    for family in DEMO_FAMILIES:
        module = demo.family_module(family)
        assert module.__name__ == f"hwgen.sw.families.{family}.demo"
        assert isinstance(module.DESCRIPTION, str) and isinstance(module.DEFAULT_BITS, int)
        assert callable(module.run)
    assert demo.family_module("sam").DEFAULT_BITS == 8
    with pytest.raises(ValueError, match="unknown family 'qam'; choose one of binary, mbbn"):
        demo.family_module("qam")


@pytest.mark.parametrize("family, bits, message", [
    ("mbbn", 9, "--bits must lie in 1..8, not 9"),
    ("shift", 16, "--bits must lie in 1..15, not 16"),
    ("sam", 1, "--bits (the output layer's weight bits) must be at least 2, not 1"),
])
def test_a_family_refuses_bad_bits_before_training(digits_split, family, bits, message):
    with pytest.raises(ValueError) as e:
        demo.family_module(family).run(digits_split, hidden=(8,), bits=bits, epochs=1, seed=0,
                                       log=print)
    assert str(e.value) == message


@pytest.mark.parametrize("made, levels", [
    (sign(), sign_levels()),
    (ternary(), ternary_levels()),
    (ternary(0.25), ternary_levels(0.25)),
    (power_of_two(2), power_of_two_levels(2)),
    (power_of_two(4), power_of_two_levels(4)),
])
def test_output_functions_are_the_cores_staircases(made, levels):
    assert isinstance(made, OutputFunction) and isinstance(made, Staircase)
    assert (made.magnitudes, made.thresholds, made.bits, made.levels) == \
        (levels.magnitudes, levels.thresholds, levels.bits, levels.levels)
    # every level maps to itself, and a value on a threshold to the lower magnitude (eq. 21-22)
    values = torch.tensor(levels.levels, dtype=torch.float64)
    assert made(values).tolist() == list(levels.levels)
    for t, lower in zip(levels.thresholds, levels.magnitudes):
        assert made(torch.tensor([t, -t], dtype=torch.float64)).tolist() == [lower, -lower]


def test_output_function_validates_as_the_core_does():
    with pytest.raises(ValueError, match="one magnitude more than thresholds"):
        OutputFunction((0.0, 1.0), (), bits=2)
    with pytest.raises(ValueError, match="must be positive"):
        ternary(0.0)
    with pytest.raises(ValueError, match="n_bits >= 2"):
        power_of_two(1)


@pytest.mark.parametrize("family", DEMO_FAMILIES)
def test_a_demo_network_is_the_same_to_the_bit_for_the_same_seed(tmp_path, family):
    runs = []
    for i in range(2):
        torch.manual_seed(1234 + i)          # whatever ran before must not matter
        net, pred, _, _ = demo.train_family(family, hidden=(8,), epochs=1, seed=3,
                                            log=lambda *a: None)
        export_onnx(net, tmp_path / f"{i}.onnx")
        runs.append(((tmp_path / f"{i}.onnx").read_bytes(), pred.tolist()))
    assert runs[0] == runs[1]
