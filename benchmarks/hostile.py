"""How long each hostile case of ``hwgen build`` takes to fail and how much memory it uses, next
to baselines from the same run.

Each case of ``tests/hostile_cases.py`` (a malformed model, NaN weights, a declared input of
10^9 elements, an ``--out`` under /proc, a locked ``--out``, a vectors file whose header
declares 10^9 rows, ...) runs in a fresh folder and a fresh interpreter, ``--repeat`` times; the
median wall time and the largest peak RSS of the hwgen process (``ru_maxrss`` of
``getrusage(RUSAGE_CHILDREN)`` in a small launcher whose one child it is) are printed with its exit code and whether it met the bar: exit code 2, one line
on stderr, under 2 s and 500 MB. The baselines are an empty interpreter, ``hwgen --help`` and
importing what ``hwgen build`` loads.

    python benchmarks/hostile.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hostile_cases import CASES  # noqa: E402

MAX_SECONDS, MAX_MB = 2.0, 500
BASELINES = {
    "python -c pass (baseline)": ["-c", "pass"],
    "hwgen --help": ["-m", "hwgen.cli", "--help"],
    "import hwgen.build (what hwgen build loads)": ["-c", "import hwgen.build"],
}


# measures one command from a fresh, small interpreter: a child forked from this process would
# start with this process's pages (numpy, onnx) counted in its peak RSS
LAUNCHER = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
wall = time.perf_counter() - start
print(wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, code)
"""


def run(args: list[str], cwd) -> tuple[float, float, int, str]:
    """(wall s, peak RSS MB, exit code, stderr) of ``python args`` in ``cwd``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    r = subprocess.run([sys.executable, "-c", LAUNCHER, sys.executable, *args], cwd=cwd, env=env,
                       capture_output=True, text=True)
    wall, peak, code = r.stdout.split()
    return float(wall), float(peak), int(code), r.stderr


def measure(make_args, repeat: int, hold=None):
    walls, peaks = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            args = make_args(d)
            with hold(d) if hold else contextlib.nullcontext():
                wall, peak, code, err = run(args, d)
            walls.append(wall)
            peaks.append(peak)
    return statistics.median(walls), max(peaks), code, err


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3, help="runs per case (default 3)")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error(f"--repeat must be at least 1, not {args.repeat}")
    print(f"{'case':<46} {'wall s':>7} {'peak MB':>8} {'exit':>5}  verdict")
    for name, cmd in BASELINES.items():
        wall, peak, code, _ = measure(lambda d, cmd=cmd: cmd, args.repeat)
        print(f"{name:<46} {wall:7.2f} {peak:8.0f} {code:>5}")
    failed = 0
    for case in CASES:
        wall, peak, code, err = measure(
            lambda d, case=case: ["-m", "hwgen.cli", *case.make(d)], args.repeat, case.hold)
        lines = err.splitlines()
        ok = code == 2 and len(lines) == 1 and wall < MAX_SECONDS and peak < MAX_MB
        failed += not ok
        print(f"{case.name:<46} {wall:7.2f} {peak:8.0f} {code:>5}  "
              f"{'ok' if ok else 'FAILED: ' + (lines[-1] if lines else 'no error line')}")
    print(f"{len(CASES) - failed} of {len(CASES)} cases within exit 2, one line, "
          f"{MAX_SECONDS:g} s and {MAX_MB} MB")


if __name__ == "__main__":
    main()
