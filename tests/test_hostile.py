"""Hostile files and arguments (``tests/hostile_cases.py``): each ends with exit code 2 and one
line on stderr, no traceback, nothing written in or beside ``--out``, in a process whose address
space is capped so that allocating anything of the declared sizes would fail. Ctrl-C during a
build and a second build into the same ``--out`` leave nothing behind either."""

import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostile_cases import CASES

ROOT = Path(__file__).resolve().parent.parent
#: the hwgen process's address space: imports take about 0.8 GB of it, the largest array a
#: hostile case declares (10^9 float64, 8 GB) could never fit
MEMORY_LIMIT = 1536 << 20


def _cap_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _env():
    """The checkout first on the path, so that the subprocess runs this checkout's hwgen."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def hwgen(args, cwd, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "hwgen.cli", *map(str, args)], cwd=cwd,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kwargs)


def run_capped(args, cwd) -> subprocess.CompletedProcess:
    p = hwgen(args, cwd, preexec_fn=_cap_memory)
    out, err = p.communicate(timeout=300)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def tree(folder: Path) -> set:
    """Every path under ``folder`` with its size (None for a folder)."""
    return {(str(p.relative_to(folder)), None if p.is_dir() else p.stat().st_size)
            for p in folder.rglob("*")}


def assert_one_line_error(r, needles=()):
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("hwgen") and ": error: " in lines[0], lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert r.stdout == ""


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_one_line_exit_2_and_leaves_nothing(case, tmp_path):
    args = case.make(tmp_path)
    before = tree(tmp_path)
    with case.hold(tmp_path) if case.hold else contextlib.nullcontext():
        r = run_capped(args, tmp_path)
        held = (tmp_path / ".out.lock").exists()
    assert_one_line_error(r, case.needles)
    if case.hold:
        assert held, "the second build removed the running build's lock"
    after = tree(tmp_path)
    # nothing new (no --out, scratch folder or lock), nothing changed; a stale lock is gone
    assert after <= before
    assert {name for name, _ in before - after} <= {".out.lock"}
    assert not (tmp_path / case.out).exists() or case.out == "out"


def test_the_memory_cap_catches_a_large_allocation(tmp_path):
    """The cap of the hostile runs is low enough: a process that allocates 2 GB fails under it."""
    p = subprocess.run([sys.executable, "-c", "import numpy; numpy.ones(1 << 28)"],
                       preexec_fn=_cap_memory, capture_output=True, text=True)
    assert p.returncode != 0 and "MemoryError" in p.stderr


def _wait_for(predicate, seconds: float, proc) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _verifying(folder: Path) -> bool:
    """A build into ``folder/out`` has started verification: its scratch folder holds sim/."""
    return any((p / "sim").is_dir() for p in folder.glob(".out.*.tmp"))


@pytest.mark.rtl
@pytest.mark.parametrize("signum, code, line", [
    (signal.SIGINT, 130, "hwgen: interrupted"),            # Ctrl-C
    (signal.SIGTERM, 143, "hwgen: terminated (SIGTERM)"),  # kill, timeout
])
def test_a_signal_during_verification_is_one_line_and_leaves_nothing(signum, code, line, tmp_path,
                                                                     small_onnx):
    before = tree(tmp_path)
    p = hwgen(["build", small_onnx, "--no-synth", "--random-vectors", "20000", "--out", "out"],
              tmp_path)
    _wait_for(lambda: _verifying(tmp_path), 120, p)
    time.sleep(1.0)                       # into the Verilator build
    p.send_signal(signum)
    out, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert err == line + "\n"
    assert tree(tmp_path) == before       # no out, no scratch folder, no lock


@pytest.mark.rtl
def test_a_second_build_into_the_same_out_fails_fast(tmp_path, small_onnx):
    first = hwgen(["build", small_onnx, "--no-synth", "--random-vectors", "3000", "--out", "out"],
                  tmp_path)
    _wait_for(lambda: _verifying(tmp_path), 120, first)
    r = run_capped(["build", small_onnx, "--no-synth", "--out", "out"], tmp_path)
    assert_one_line_error(r, ("out", "another hwgen build"))
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-3000:]
    assert "3000/3000 vectors matched" in (tmp_path / "out" / "verify.log").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
