"""The bottom of hwgen: the integer layer IR, its golden model, the ONNX op domains and the
exact level arithmetic of the quantizers. No PyTorch here, and nothing from the packages above."""
