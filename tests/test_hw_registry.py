"""One registration per layer kind: every IR kind has its hardware, found by its class; an
unknown class and a second registration are refused; the registry's answers are the kind's."""

from dataclasses import dataclass

import numpy as np
import pytest

from hwgen.hw import registry
from hwgen.hw.resources import Folding
from hwgen.sw.core import ir


def test_every_ir_kind_has_its_hardware():
    hw = registry.registered()
    assert set(hw) == set(ir.LAYER_KINDS.values())
    # one instance per kind, each its own class
    assert len({type(h) for h in hw.values()}) == len(hw)


def test_an_unknown_layer_class_is_named():
    @dataclass
    class Unknown(ir.Layer):
        kind = "unknown"

    with pytest.raises(KeyError, match="no hardware is registered for Unknown layers"):
        registry.hardware(Unknown(name="u"))


def test_a_kind_is_registered_once():
    with pytest.raises(ValueError, match="DenseBinary already has hardware"):
        registry.register(ir.DenseBinary)(registry.LayerHardware)
    assert type(registry.registered()[ir.DenseBinary]) is not registry.LayerHardware


def test_a_subclass_takes_its_kinds_hardware():
    @dataclass
    class Renamed(ir.DenseBinary):
        pass

    layer = Renamed(name="r", weights=np.ones((2, 4), np.uint8))
    assert registry.hardware(layer) is registry.registered()[ir.DenseBinary]


@pytest.mark.parametrize("layer", [
    ir.DenseBinary(name="b", weights=np.ones((4, 6), np.uint8)),
    ir.MultiThresholdLayer(name="m", threshold=ir.MultiThreshold(
        np.zeros((6, 1), np.int64), np.zeros(6, bool), ir.TensorType("bipolar", 1))),
    ir.ArgMax(name="a", n=6),
])
def test_every_candidate_passes_its_own_check(layer):
    """What the optimizer is offered, the kind accepts, and counts its steps."""
    found = registry.candidates(layer)
    assert found
    for f in found:
        assert registry.check_folding(layer, f) is f
        assert registry.fold_steps(layer, f) >= 1
    # and a folding it does not offer is refused, naming the layer
    with pytest.raises(ValueError, match=f"layer {layer.name}: pe must divide"):
        registry.check_folding(layer, Folding(pe=5))
