"""A benchmark script loaded as a module, for the tests that run its ``main()`` end to end."""

import importlib.util
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str):
    """``benchmarks/<name>.py`` as a fresh module (not run as ``__main__``)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def restore_threads():
    """A script's ``main()`` sets torch to one thread; put the count back afterwards."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)
