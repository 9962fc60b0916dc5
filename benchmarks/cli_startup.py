"""How long ``hwgen --help`` takes, next to what the interpreter and the heavy imports cost in
the same run.

Each command is started ``--repeat`` times in a fresh interpreter; the median wall time is
printed. The baseline is an empty interpreter; the others are the imports that ``hwgen
build`` and ``hwgen demo`` need and that ``--help`` must not wait for.

    python benchmarks/cli_startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python (empty interpreter, baseline)": [sys.executable, "-c", "pass"],
    "hwgen --help": [sys.executable, "-m", "hwgen.cli", "--help"],
    "import onnx": [sys.executable, "-c", "import onnx"],
    "import hwgen.sw.compiler": [sys.executable, "-c", "import hwgen.sw.compiler"],
    "import hwgen.build (what hwgen build loads)": [sys.executable, "-c", "import hwgen.build"],
    "import torch (what hwgen demo adds)": [sys.executable, "-c", "import torch"],
}


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7, help="runs per command (default 7)")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error(f"--repeat must be at least 1, not {args.repeat}")
    for cmd in COMMANDS.values():      # warm the file cache once
        wall(cmd)
    base = None
    print(f"{'command':<46} {'median s':>9} {'vs baseline':>12}")
    for name, cmd in COMMANDS.items():
        t = statistics.median(wall(cmd) for _ in range(args.repeat))
        base = t if base is None else base
        print(f"{name:<46} {t:9.3f} {t - base:+11.3f}")


if __name__ == "__main__":
    main()
