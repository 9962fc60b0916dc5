"""MINW-Net of seed 004: :mod:`.aqe` (the power-of-two quantizers, STE and AQE, the MLP),
:mod:`.histograms` (weight and activation histograms during training), :mod:`.export` (the
MLP's ONNX graph) and :mod:`.demo` (the ``shift`` family of ``hwgen demo``)."""

from . import export  # noqa: F401  (registers the exporters)
