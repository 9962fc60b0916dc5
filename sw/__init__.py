"""The software side of hwgen: :mod:`~hwgen.sw.core` (the integer layer IR, its golden model and
the quantizers' level arithmetic), :mod:`~hwgen.sw.compiler` (ONNX -> IR) and
:mod:`~hwgen.sw.families` (the PyTorch front ends, one sub-package per network family)."""
