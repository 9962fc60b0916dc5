"""hwgen: multiplier-free neural networks from PyTorch to verified open-toolchain FPGA designs."""

__version__ = "0.1.0"
