"""``hwgen build``: ONNX -> IR -> folded pipeline -> verified RTL -> synthesized bitstream.

Everything is produced in a scratch folder beside ``out`` and moved into place only when every
step succeeded, so a failed or interrupted build leaves no half-written ``out``; a lock beside
``out`` makes a second build into the same folder fail at once (:mod:`hwgen.outdir`). When the
RTL disagrees with the golden model, or a synthesis tool fails, the scratch folder is kept as
``<out>.failed`` for inspection.

The user's input is checked first, before anything large is made (:mod:`hwgen.checks`):
:func:`build` is :func:`hwgen.checks.checked` followed by :func:`build_checked`. Such errors are
:class:`UsageError` or :class:`~hwgen.sw.compiler.CompileError`.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwgen.boards.flow import FlowError
from hwgen.boards.flow import build as board_build
from hwgen.hw.folding import choose_folding
from hwgen.hw.pipeline import Pipeline, to_verilog
from hwgen.sim.runner import verify
from hwgen.sw.core import golden
from hwgen.sw.core.ir import Model

from .checks import Checked, checked
from .outdir import UsageError
from .progress import StageClock, VectorBar

__all__ = ["BuildError", "BuildResult", "UsageError", "build", "build_checked", "folding_budget",
           "random_vectors"]


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


def build(onnx_path, *, target: str = "ice40", out, vectors=None, n_random: int = 10_000,
          seed: int = 0, synth: bool = True, log=None) -> BuildResult:
    """Compile, generate, verify and synthesize ``onnx_path`` into the folder ``out`` (module
    docs). ``log`` takes the progress lines; None prints them and shows progress bars on a
    terminal (an API caller's own ``log`` turns the bars off)."""
    with checked(onnx_path, target=target, out=out, vectors=vectors, n_random=n_random,
                 seed=seed) as c:
        return build_checked(c, synth=synth, log=log)


def build_checked(c: Checked, *, synth: bool = True, log=None) -> BuildResult:
    """The build of input that :func:`hwgen.checks.checked` passed, in its folder."""
    bars = log is None or log is print
    log = print if log is None else log
    folder, model, tgt, n_random, seed = c.folder, c.model, c.target, c.n_random, c.seed
    work = folder.work
    folding = choose_folding(model, **folding_budget(model, tgt))

    model.meta["folding"] = {name: vars(f) for name, f in folding.items()}
    model.save(work / "ir.json")
    pipeline = Pipeline(model, folding)
    verilog = to_verilog(pipeline, name="top")
    (work / "top.v").write_text(verilog)

    x = random_vectors(model, n_random, seed)
    if c.extra is not None:
        x = np.concatenate([c.extra, x])
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

    report_lines = [f"model: {c.source.name} (graph {model.meta.get('source')!r})",
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
