"""The hardware of each layer kind, registered once per IR class.

Every IR layer class of :mod:`hwgen.sw.core.ir` that has hardware has one
:class:`LayerHardware` registered for it, in its kind's module ``hw/<kind>.py``
(``@register(ir.DenseMAC)``). It declares, in one place, what the rest of ``hw`` asks of the
kind:

* :meth:`~LayerHardware.check_folding`: whether a :class:`~hwgen.hw.resources.Folding` suits a
  layer (the divisors, the weight modes it takes, its branch folds);
* :meth:`~LayerHardware.fold_steps`: compute cycles per vector under a folding;
* :meth:`~LayerHardware.candidates`: every legal folding, for the optimizer
  (:func:`hwgen.hw.folding.choose_folding`);
* :meth:`~LayerHardware.estimate`: the analytic iCE40 cost
  (:class:`~hwgen.hw.resources.Resources`) of the engine a folding selects;
* :meth:`~LayerHardware.engine`: that engine, an Amaranth stream component.

The defaults are those of a dense layer: ``pe`` divides ``n_out``, ``simd`` divides ``n_in``,
weights in ``"logic"`` or ``"bram"``, one branch fold, ``(n_out / pe) * (n_in / simd)`` fold
steps, and candidates the product of the divisors and the weight modes.
:class:`ElementwiseHardware` is the variant of a layer that takes each element on its own
(``simd`` 1, ``n / pe`` steps). A kind overrides what differs.

The module-level :func:`check_folding`, :func:`fold_steps`, :func:`candidates`,
:func:`estimate` and :func:`engine` find a layer's hardware by its class (:func:`hardware`) and
ask it. Importing :mod:`hwgen.hw` imports every kind, so every kind is registered wherever
``hw`` is used.
"""

from __future__ import annotations

import itertools
from typing import Callable, TypeVar

from hwgen.hw.kit import single_branch
from hwgen.hw.resources import LOADED, SERIAL, SPARSE, WEIGHT_MODES, Folding, Resources
from hwgen.sw.core import ir

__all__ = ["LayerHardware", "ElementwiseHardware", "register", "hardware", "registered",
           "divisors", "reject", "check_folding", "fold_steps", "candidates", "estimate", "engine"]

_REGISTRY: dict[type, "LayerHardware"] = {}

# why a special weight mode does not suit a layer: one message per mode, for every kind
_MODE_ERRORS: dict[str, Callable[[ir.Layer, Folding], str]] = {
    SPARSE: lambda layer, folding: (
        f"sparse weights are for sam layers and dense_mac layers without a threshold, with "
        f"pe = simd = 1, not {layer.kind} with pe {folding.pe}, simd {folding.simd}"),
    LOADED: lambda layer, folding: (
        f"loaded weights are for sam layers with pe = simd = 1, not {layer.kind} with pe "
        f"{folding.pe}, simd {folding.simd}"),
    SERIAL: lambda layer, folding: (
        f"serial weights are for dense_mac layers without a threshold and with simd = 1, "
        f"not {layer.kind} with simd {folding.simd}"),
}


def divisors(n: int) -> list[int]:
    """The positive divisors of ``n``, in increasing order."""
    return [d for d in range(1, n + 1) if n % d == 0]


def reject(layer: ir.Layer, what: str):
    """Raise the ValueError of a folding that does not suit ``layer``: ``what``, after the
    layer's name."""
    raise ValueError(f"layer {layer.name}: {what}")


class LayerHardware:
    """The hardware of one layer kind: its folding rules, cost model and engines.

    Subclasses are registered with :func:`register`; the defaults describe a dense layer
    (module docs). Methods take the layer, so one instance serves every layer of its class.

    Attributes
    ----------
    weight_modes : tuple of str
        The vector weight modes its candidates try (``("logic",)`` for a kind without
        weights).
    cost : callable or None
        ``cost(layer, in_type, folding) -> Resources``, what :meth:`estimate` returns (set it as
        a ``staticmethod``), unless the kind overrides :meth:`estimate`.
    engine_class : type or None
        The engine :meth:`engine` builds for a kind without branches,
        ``engine_class(layer, in_type=, pe=, simd=, weights=)``, unless the kind overrides it.
    """

    weight_modes: tuple[str, ...] = WEIGHT_MODES
    cost = None
    engine_class = None

    # --- folding rules ---------------------------------------------------------------------

    def check_folding(self, layer: ir.Layer, folding: Folding) -> Folding:
        """Raise ValueError, naming the layer, if ``folding`` does not suit ``layer``; return
        ``folding``. Checks ``pe``, then ``simd`` (:meth:`check_simd`), then the weight mode
        (:meth:`weights_suit`), then the branch folds (:meth:`check_branches`)."""
        if layer.n_out % folding.pe:
            reject(layer, f"pe must divide the output count {layer.n_out}, not {folding.pe!r}")
        self.check_simd(layer, folding)
        if not self.weights_suit(layer, folding):
            reject(layer, _MODE_ERRORS[folding.weights](layer, folding))
        self.check_branches(layer, folding)
        return folding

    def check_simd(self, layer: ir.Layer, folding: Folding) -> None:
        """``simd`` must divide the input count."""
        if layer.n_in % folding.simd:
            reject(layer, f"simd must divide the input count {layer.n_in}, not {folding.simd!r}")

    def weights_suit(self, layer: ir.Layer, folding: Folding) -> bool:
        """Whether ``folding.weights`` suits ``layer``: a vector mode (``"logic"``,
        ``"bram"``) always does; a kind that has sparse, loaded or serial engines accepts
        those modes where they apply."""
        return folding.weights in WEIGHT_MODES

    def check_branches(self, layer: ir.Layer, folding: Folding) -> None:
        """One branch fold: only a multi-branch kind has branches."""
        if folding.branch_folds != 1:
            reject(layer, f"branch_folds must be 1 for a {layer.kind} layer (only dense_mbbn has "
                   f"branches), not {folding.branch_folds!r}")

    def fold_steps(self, layer: ir.Layer, folding: Folding) -> int:
        """Compute cycles per vector of ``layer`` under ``folding``, which is checked first
        (:meth:`check_folding`), then counted by :meth:`steps`."""
        self.check_folding(layer, folding)
        return self.steps(layer, folding)

    def steps(self, layer: ir.Layer, folding: Folding) -> int:
        """Fold steps of a checked folding: ``(n_out / pe) * (n_in / simd) * branch_folds``."""
        return (layer.n_out // folding.pe) * (layer.n_in // folding.simd) * folding.branch_folds

    def branch_candidates(self, layer: ir.Layer) -> list[int]:
        """The branch folds the candidates try."""
        return [1]

    def special_candidates(self, layer: ir.Layer) -> list[Folding]:
        """Candidates besides the vector ones: the sparse, loaded or serial engines."""
        return []

    def candidates(self, layer: ir.Layer) -> list[Folding]:
        """Every legal folding of ``layer``: each ``pe`` dividing ``n_out``, ``simd`` dividing
        ``n_in``, weight mode and branch fold, then :meth:`special_candidates`."""
        return [Folding(pe, simd, mode, bf) for pe, simd, mode, bf in
                itertools.product(divisors(layer.n_out), divisors(layer.n_in),
                                  self.weight_modes, self.branch_candidates(layer))] + \
            self.special_candidates(layer)

    # --- cost and engine -------------------------------------------------------------------

    def estimate(self, layer: ir.Layer, in_type: ir.TensorType, folding: Folding) -> Resources:
        """Analytic iCE40 cost of the engine that ``folding`` selects for ``layer`` on inputs
        of ``in_type``: the kind's :attr:`cost`."""
        if self.cost is None:
            raise NotImplementedError(f"{type(self).__name__} has no cost model")
        return self.cost(layer, in_type, folding)

    def engine(self, layer: ir.Layer, in_type: ir.TensorType, folding: Folding):
        """The engine of ``layer`` on inputs of ``in_type`` under ``folding``: a stream
        component with ``i_stream``, ``o_stream``, ``latency`` and ``interval``; by default the
        kind's :attr:`engine_class`, after checking that the folding has one branch fold."""
        if self.engine_class is None:
            raise NotImplementedError(f"{type(self).__name__} has no engine")
        single_branch(layer, folding)
        return self.engine_class(layer, in_type=in_type, pe=folding.pe, simd=folding.simd,
                                 weights=folding.weights)


class ElementwiseHardware(LayerHardware):
    """A kind that takes each element on its own: ``pe`` elements per cycle, no synapse fold
    (``simd`` must be 1), ``n / pe`` fold steps."""

    def check_simd(self, layer: ir.Layer, folding: Folding) -> None:
        if folding.simd != 1:
            reject(layer, f"a {layer.kind} layer takes each element on its own, so simd must be "
                   f"1, not {folding.simd!r}")

    def steps(self, layer: ir.Layer, folding: Folding) -> int:
        return layer.n_out // folding.pe

    def candidates(self, layer: ir.Layer) -> list[Folding]:
        return [Folding(pe, 1, mode) for pe, mode in
                itertools.product(divisors(layer.n_out), self.weight_modes)] + \
            self.special_candidates(layer)


_H = TypeVar("_H", bound=type[LayerHardware])


def register(layer_class: type) -> Callable[[_H], _H]:
    """Class decorator: register an instance of the decorated :class:`LayerHardware`
    subclass as the hardware of IR class ``layer_class``; a class is registered once."""
    def decorate(cls: _H) -> _H:
        if layer_class in _REGISTRY:
            raise ValueError(f"{layer_class.__name__} already has hardware: "
                             f"{type(_REGISTRY[layer_class]).__name__}")
        _REGISTRY[layer_class] = cls()
        return cls
    return decorate


def hardware(layer: ir.Layer) -> LayerHardware:
    """The registered hardware of ``layer``'s class (or of its nearest registered base class);
    KeyError naming the class when it has none."""
    for cls in type(layer).__mro__:
        if cls in _REGISTRY:
            return _REGISTRY[cls]
    raise KeyError(f"no hardware is registered for {type(layer).__name__} layers "
                   f"(kind {getattr(layer, 'kind', None)!r}); registered: "
                   f"{', '.join(sorted(c.__name__ for c in _REGISTRY))}")


def registered() -> dict[type, LayerHardware]:
    """Every IR class with hardware, and its hardware."""
    return dict(_REGISTRY)


def check_folding(layer: ir.Layer, folding: Folding) -> Folding:
    """Raise ValueError, naming the layer, if ``folding`` does not suit ``layer``."""
    return hardware(layer).check_folding(layer, folding)


def fold_steps(layer: ir.Layer, folding: Folding) -> int:
    """Compute cycles per vector of ``layer`` under ``folding``:
    ``(n_out / pe) * (n_in / simd) * branch_folds``, or ``n / pe`` for an element-wise layer
    (``multithreshold``, ``qam_slicer``); a sparse or serial engine counts its own."""
    return hardware(layer).fold_steps(layer, folding)


def candidates(layer: ir.Layer) -> list[Folding]:
    """Every legal folding of ``layer``."""
    return hardware(layer).candidates(layer)


def estimate(layer: ir.Layer, in_type: ir.TensorType, folding: Folding) -> Resources:
    """Analytic iCE40 cost of ``layer`` on inputs of ``in_type`` under ``folding``."""
    return hardware(layer).estimate(layer, in_type, folding)


def engine(layer: ir.Layer, in_type: ir.TensorType, folding: Folding):
    """The engine of ``layer`` on inputs of ``in_type`` under ``folding``."""
    return hardware(layer).engine(layer, in_type, folding)
