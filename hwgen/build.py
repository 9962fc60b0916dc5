"""``hwgen build``: ONNX -> IR -> folded pipeline -> verified RTL -> synthesized bitstream.

Everything is produced in a scratch folder beside ``out`` and moved into place only when every
step succeeded, so a failed build leaves no half-written ``out``. When the RTL disagrees with
the golden model the scratch folder is kept as ``<out>.failed`` for inspection.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwgen.boards.flow import build as board_build
from hwgen.boards.targets import get_target
from hwgen.hw.folding import choose_folding
from hwgen.hw.pipeline import Pipeline, to_verilog
from hwgen.sim.runner import verify
from hwgen.sw.compiler import compile_onnx
from hwgen.sw.core import golden
from hwgen.sw.core.ir import Model

__all__ = ["BuildError", "BuildResult", "UsageError", "build", "folding_budget", "random_vectors"]

_MARKER = ".hwgen-build"


class UsageError(ValueError):
    """Bad input from the user (a file, a flag): reported as one line, exit code 2."""


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


def _load_vectors(path: Path, model: Model) -> np.ndarray:
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as e:
        raise UsageError(f"{path}: not a .npy array ({e})") from None
    t = model.in_type
    if x.ndim != 2 or x.shape[1] != model.n_in or not np.issubdtype(x.dtype, np.integer):
        raise UsageError(f"{path}: vectors must be an integer array of shape (B, {model.n_in}), "
                         f"not {x.dtype} {x.shape}")
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


def _prepare_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / _MARKER).exists())):
        raise UsageError(f"{out}: exists and is not an earlier hwgen build; choose another --out")


def build(onnx_path, *, target: str = "ice40", out, vectors=None, n_random: int = 10_000,
          seed: int = 0, synth: bool = True, log=print) -> BuildResult:
    out = Path(out)
    _prepare_out(out)
    tgt = get_target(target)
    model = compile_onnx(onnx_path)
    extra = _load_vectors(Path(vectors), model) if vectors is not None else None
    folding = choose_folding(model, **folding_budget(model, tgt))

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
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
        res = verify(verilog, top="top", vectors=x, expected=expected, in_bits=model.in_type.bits,
                     in_signed=model.in_type.kind == "signed", out_bits=out_t.bits,
                     out_signed=out_t.kind == "signed", n_out=model.n_out,
                     build_dir=work / "sim", seed=seed, in_serial=pipeline.serial_in,
                     preamble=preamble)
        shutil.copy(res.log_path, work / "verify.log")
        if not res.passed:
            failed = out.with_name(out.name + ".failed")
            shutil.rmtree(failed, ignore_errors=True)
            work.rename(failed)
            raise BuildError(f"RTL disagrees with the golden model: {res.summary()}; "
                             f"evidence kept in {failed}")
        shutil.rmtree(work / "sim")       # the compiled simulation: large, and top.v rebuilds it
        result = BuildResult(out, model, len(x) - n_random, n_random, res.summary(),
                             n_preamble=len(preamble))

        if synth:
            log(f"synthesizing for {tgt.description} ...")
            report = board_build(pipeline, target=tgt, build_dir=work / "synth", n_in=model.n_in,
                                 in_bits=model.in_type.bits, out_bits=out_t.bits,
                                 n_out=model.n_out, n_preamble=len(preamble),
                                 cycles_per_inference=max(pipeline.interval, model.n_out))
            shutil.move(report.bitstream, work / "top.bin")
            report.bitstream = "top.bin"   # relative to the build folder
            (work / "report.json").write_text(report.to_json() + "\n")
            (work / "report.txt").write_text(report.summary() + "\n")
            result.report = report
        (work / _MARKER).write_text("hwgen build output\n")
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
        return result
    finally:
        if work.exists():
            shutil.rmtree(work)
