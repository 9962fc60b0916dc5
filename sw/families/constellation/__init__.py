"""Constellation networks of seed 000: :mod:`.complex_nn` (complex layers), :mod:`.qam` (the QAM
activation), :mod:`.oac` and :mod:`.oac_net` (over-the-air computation), :mod:`.lower` (a complex
layer and its slicer as integers) and :mod:`.export` (their ONNX graph)."""

from . import export  # noqa: F401  (registers the exporters)
