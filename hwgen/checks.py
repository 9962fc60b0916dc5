"""The checks of ``hwgen build`` on the user's input, made before anything large is allocated
and before the hardware generators, the simulator and the synthesis flow are imported (so that
``hwgen build`` refuses bad input in about the time that importing the compiler takes).

:func:`checked` takes the output folder (:class:`~hwgen.outdir.OutFolder`: created, locked,
scratch folder beside it), compiles the model (the compiler checks its declared shapes and
constants first), checks the vectors file from its header and the number of vectors against
:data:`MAX_VECTOR_ELEMENTS`, and yields a :class:`Checked` that
:func:`hwgen.build.build_checked` builds. Every refusal is a :class:`~hwgen.outdir.UsageError`
or a :class:`~hwgen.sw.compiler.CompileError`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwgen.boards.targets import Target, get_target
from hwgen.sw.compiler import compile_onnx
from hwgen.sw.core.ir import Model

from .outdir import OutFolder, UsageError

__all__ = ["Checked", "checked", "MAX_VECTOR_ELEMENTS"]

#: The most vector elements (vectors times input elements) one build verifies: 128 MiB as
#: int64, e.g. 262,144 vectors of 64 elements, about 5 minutes of simulation.
MAX_VECTOR_ELEMENTS = 1 << 24


@dataclass
class Checked:
    """A build whose input passed every check: its output folder (entered), the compiled
    model, the given vectors (or None), the target and the random vectors asked for."""

    source: Path
    folder: OutFolder
    model: Model
    extra: np.ndarray | None
    target: Target
    n_random: int
    seed: int


@contextlib.contextmanager
def checked(onnx_path, *, target: str = "ice40", out, vectors=None, n_random: int = 10_000,
            seed: int = 0):
    """The checked build (module docs), its output folder held until the block ends."""
    if seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, not {seed}")
    if n_random < 0 or (n_random == 0 and vectors is None):
        raise UsageError("nothing to verify: give --vectors or at least one --random-vectors")
    tgt = get_target(target)
    with OutFolder(out) as folder:
        model = compile_onnx(onnx_path)
        _vector_limit(n_random, model.n_in, "--random-vectors")
        extra = _load_vectors(Path(vectors), model, n_random) if vectors is not None else None
        yield Checked(Path(onnx_path), folder, model, extra, tgt, n_random, seed)


def _vector_limit(n_vectors: int, n_in: int, what: str) -> None:
    if n_vectors * n_in > MAX_VECTOR_ELEMENTS:
        raise UsageError(f"{what}: {n_vectors:,} vectors of {n_in:,} elements are more than the "
                         f"{MAX_VECTOR_ELEMENTS:,} elements (MAX_VECTOR_ELEMENTS) one build "
                         "verifies")



def _read_npy_header(path: Path) -> tuple[tuple, np.dtype, int]:
    """The shape and dtype a .npy file declares, and how many bytes of data it holds."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"format version {version} holds no plain integer array")
            return shape, dtype, path.stat().st_size - f.tell()
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: not a .npy array ({_first_line(e)})") from None


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _load_vectors(path: Path, model: Model, n_random: int) -> np.ndarray:
    """The vectors of a .npy file, checked against ``model`` from the file's header before its
    data is read: a header can declare any shape."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    shape, dtype, data_bytes = _read_npy_header(path)
    if len(shape) != 2 or shape[1] != model.n_in or not np.issubdtype(dtype, np.integer):
        raise UsageError(f"{path}: vectors must be an integer array of shape (B, {model.n_in}), "
                         f"not {dtype} {shape}")
    _vector_limit(shape[0] + n_random, model.n_in, f"{path} and --random-vectors")
    if shape[0] * shape[1] * dtype.itemsize > data_bytes:
        raise UsageError(f"{path}: truncated: its header declares {dtype} {shape}, its data is "
                         f"{data_bytes:,} bytes")
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UsageError(f"{path}: not a .npy array ({_first_line(e)})") from None
    t = model.in_type
    if x.size and (x.min() < t.lo or x.max() > t.hi):
        raise UsageError(f"{path}: vector elements must lie in [{t.lo}, {t.hi}] "
                         f"(input type {t.to_json()})")
    return x.astype(np.int64)
