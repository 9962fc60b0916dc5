"""Sum-and-Max networks of seed 002: :mod:`.layers` (the SAM layer, pruning),
:mod:`.correlated` (the paper's correlated-signal task), :mod:`.lower` (the integer network and
its IR), :mod:`.export` (its ONNX graph) and :mod:`.demo` (the ``sam`` family of
``hwgen demo``)."""

from . import export  # noqa: F401  (registers the exporters)
