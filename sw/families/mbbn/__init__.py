"""Multi-branch binary networks of seed 003: :mod:`.layers` (the {-1, +1} encoding, the MLPs
of Algorithms 1 and 2), :mod:`.conv` (their convolutional counterparts), :mod:`.export` (the
MLPs' ONNX graph) and :mod:`.demo` (the ``mbbn`` family of ``hwgen demo``)."""

from . import export  # noqa: F401  (registers the exporters)
