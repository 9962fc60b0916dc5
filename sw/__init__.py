"""Host software: PyTorch front end, ONNX compiler, layer IR, golden model and CLI."""
