"""``hwgen build``: ONNX -> IR -> folded pipeline -> verified RTL -> synthesized bitstream.

Everything is produced in a scratch folder beside ``out`` and moved into place only when every
step succeeded, so a failed or interrupted build leaves no half-written ``out``; a lock beside
``out`` makes a second build into the same folder fail at once (:mod:`hwgen.outdir`). When the
RTL disagrees with the golden model, or a synthesis tool fails, the scratch folder is kept as
``<out>.failed`` for inspection.

The user's input is checked before anything large is made: the model's declared shapes and
constants by the compiler, the vectors file from its header, the number of vectors against
:data:`MAX_VECTOR_ELEMENTS`. Such errors are :class:`UsageError` or
:class:`~hwgen.sw.compiler.CompileError`.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwgen.boards.flow import FlowError
from hwgen.boards.flow import build as board_build
from hwgen.boards.targets import get_target
from hwgen.hw.folding import choose_folding
from hwgen.hw.pipeline import Pipeline, to_verilog
from hwgen.sim.runner import verify
from hwgen.sw.compiler import compile_onnx
from hwgen.sw.core import golden
from hwgen.sw.core.ir import Model

from .outdir import OutFolder, UsageError
from .progress import StageClock, VectorBar

__all__ = ["BuildError", "BuildResult", "UsageError", "build", "folding_budget", "random_vectors",
           "MAX_VECTOR_ELEMENTS"]

#: The most vector elements (vectors times input elements) one build verifies: 128 MiB as
#: int64, e.g. 262,144 vectors of 64 elements, about 5 minutes of simulation.
MAX_VECTOR_ELEMENTS = 1 << 24


class BuildError(RuntimeError):
    """The build ran but its result is wrong (e.g. the RTL disagrees with the golden model)."""


@dataclass
class BuildResult:
    """What :func:`build` produced: the folder, the IR, the verification and the synthesis report."""

    out: Path
    model: Model
    n_given: int                          # vectors from --vectors
    n_random: int
    verify_summary: str
    report: object | None = None          # boards.report.SynthReport
    n_preamble: int = 0                   # input elements that load weights after reset

    def summary(self) -> str:
        lines = [f"build: {self.out}",
                 f"verification: {self.verify_summary}; {self.n_given} given + {self.n_random} "
                 "random vectors, random valid/ready stalls"]
        if self.n_preamble:
            lines.append(f"weights loaded after reset: send the {self.n_preamble:,} bytes of "
                         "preamble.bin once, before the first vector")
        if self.report is not None:
            lines.append(self.report.summary())
            # 10 bits per byte at 115200 baud: n_in bytes in, then n_out bytes back
            per_vector = self.model.n_in + self.model.n_out
            lines.append(f"over the UART at 115200 baud: about {11_520 / per_vector:,.0f}"
                         " inferences/s")
        return "\n".join(lines)


def random_vectors(model: Model, n: int, seed: int) -> np.ndarray:
    """``n`` uniform random input vectors over the model's whole input type, edges included."""
    rng = np.random.default_rng(seed)
    t = model.in_type
    x = rng.integers(t.lo, t.hi + 1, (n, model.n_in))
    if n >= 2:
        x[0], x[1] = t.lo, t.hi          # every element at its minimum, then its maximum
    return x


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


def folding_budget(model: Model, target) -> dict:
    """The share of ``target`` the pipeline may fill: 85 % of the logic cells (placement needs
    slack) less the UART wrapper, every EBR and DSP block. The wrapper's receive register holds one input
    vector unless the first engine takes its input serially; that register is charged to the
    first layer's vector foldings (``input_register_lcs`` of ``choose_folding``). Every SPRAM
    block may hold the first layer's loaded weights."""
    dsps, spram = target.resources.get("dsps"), target.resources.get("spram")
    return {"lc_budget": int(0.85 * target.resources["lcs"].total) - 120,
            "ebr_budget": target.resources["ebr"].total,
            "input_register_lcs": model.n_in * model.in_type.bits,
            "dsp_budget": dsps.total if dsps is not None else 0,
            "spram_budget": spram.total if spram is not None else 0}


def _vector_limit(n_vectors: int, n_in: int, what: str) -> None:
    if n_vectors * n_in > MAX_VECTOR_ELEMENTS:
        raise UsageError(f"{what}: {n_vectors:,} vectors of {n_in:,} elements are more than the "
                         f"{MAX_VECTOR_ELEMENTS:,} elements (MAX_VECTOR_ELEMENTS) one build "
                         "verifies")


def build(onnx_path, *, target: str = "ice40", out, vectors=None, n_random: int = 10_000,
          seed: int = 0, synth: bool = True, log=None) -> BuildResult:
    """Compile, generate, verify and synthesize ``onnx_path`` into the folder ``out`` (module
    docs). ``log`` takes the progress lines; None prints them and shows progress bars on a
    terminal (an API caller's own ``log`` turns the bars off)."""
    bars = log is None or log is print
    log = print if log is None else log
    if seed < 0:
        raise UsageError(f"--seed must be a non-negative integer, not {seed}")
    if n_random < 0 or (n_random == 0 and vectors is None):
        raise UsageError("nothing to verify: give --vectors or at least one --random-vectors")
    tgt = get_target(target)
    with OutFolder(out) as folder:
        work = folder.work
        model = compile_onnx(onnx_path)
        _vector_limit(n_random, model.n_in, "--random-vectors")
        extra = _load_vectors(Path(vectors), model, n_random) if vectors is not None else None
        folding = choose_folding(model, **folding_budget(model, tgt))

        model.meta["folding"] = {name: vars(f) for name, f in folding.items()}
        model.save(work / "ir.json")
        pipeline = Pipeline(model, folding)
        verilog = to_verilog(pipeline, name="top")
        (work / "top.v").write_text(verilog)

        x = random_vectors(model, n_random, seed)
        if extra is not None:
            x = np.concatenate([extra, x])
        expected = golden.run(model, x)
        np.savez_compressed(work / "vectors.npz", inputs=x, expected=expected)
        preamble = pipeline.preamble
        if len(preamble):
            # one byte per element, as the UART carries a serial input
            (work / "preamble.bin").write_bytes(
                (preamble & ((1 << model.in_type.bits) - 1)).astype(np.uint8).tobytes())
        out_t = model.types()[-1]
        log(f"verifying {len(x)} vectors on the RTL (cocotb + Verilator) ...")
        with VectorBar(len(x), bars) as bar:
            res = verify(verilog, top="top", vectors=x, expected=expected,
                         in_bits=model.in_type.bits, in_signed=model.in_type.kind == "signed",
                         out_bits=out_t.bits, out_signed=out_t.kind == "signed",
                         n_out=model.n_out, build_dir=work / "sim", seed=seed,
                         in_serial=pipeline.serial_in, preamble=preamble, progress=bar)
        shutil.copy(res.log_path, work / "verify.log")
        if not res.passed:
            failed = folder.keep(folder.out.name + ".failed")
            raise BuildError(f"RTL disagrees with the golden model: {res.summary()}; "
                             f"evidence kept in {failed}")
        shutil.rmtree(work / "sim")       # the compiled simulation: large, and top.v rebuilds it
        result = BuildResult(folder.shown, model, len(x) - n_random, n_random, res.summary(),
                             n_preamble=len(preamble))

        report_lines = [f"model: {Path(onnx_path).name} (graph {model.meta.get('source')!r})",
                        f"verification: {res.summary()}"]
        if synth:
            log(f"synthesizing for {tgt.description} ...")
            try:
                with StageClock(log, bars) as clock:
                    report = board_build(pipeline, target=tgt, build_dir=work / "synth",
                                         n_in=model.n_in, in_bits=model.in_type.bits,
                                         out_bits=out_t.bits, n_out=model.n_out,
                                         n_preamble=len(preamble),
                                         cycles_per_inference=max(pipeline.interval,
                                                                  model.n_out),
                                         progress=clock)
            except FlowError as e:
                # its log lies in the scratch folder: keep that, and name the log there
                failed = str(folder.keep(folder.out.name + ".failed"))
                e.log_path = Path(str(e.log_path).replace(str(work), failed))
                e.args = (str(e).replace(str(work), failed),)
                raise
            shutil.move(report.bitstream, work / "top.bin")
            report.bitstream = "top.bin"   # relative to the build folder
            (work / "report.json").write_text(report.to_json() + "\n")
            # the flow's copy, beside the tool logs, names the bitstream from there
            (work / "synth" / "report.json").write_text(
                dataclasses.replace(report, bitstream="../top.bin").to_json() + "\n")
            report_lines.append(report.summary())
            result.report = report
        (work / "report.txt").write_text("\n".join(report_lines) + "\n")
        folder.commit()
        return result
