"""cocotb benches and the runner that proves the generated RTL equal to the golden model."""
