"""Compression of communication networks, seed 001: :mod:`.compress` (quantization, pruning,
distillation), :mod:`.comms` (the autoencoder), :mod:`.modrec` (modulation recognition),
:mod:`.lower` (min/max-quantized MLPs as integer MACs) and :mod:`.export` (their ONNX graph)."""

from . import export  # noqa: F401  (registers the exporters)
