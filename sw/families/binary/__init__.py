"""Binary (sign) networks of seed 004: :mod:`.layers` (the binary MLP), :mod:`.export` (its ONNX
graph) and :mod:`.demo` (the ``binary`` family of ``hwgen demo``)."""

from . import export  # noqa: F401  (registers the exporters)
