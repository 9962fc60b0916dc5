"""Progress of ``hwgen build``'s long steps: a bar of vectors verified and a line per synthesis
stage with its elapsed time.

Bars go to stderr, only when it is a terminal and only when ``enabled`` (``hwgen build`` turns
them off when an API caller passes its own ``log``), so captured output and logs stay clean.
A bar is redrawn twice a second from a thread, so that its elapsed time moves even while a
stage reports nothing (the Verilator build, yosys).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from tqdm import tqdm

__all__ = ["VectorBar", "StageClock"]


class _Ticking:
    """A tqdm bar on stderr (off when ``enabled`` is false or stderr is no terminal) that a
    thread redraws every half second until :meth:`close`."""

    def __init__(self, enabled: bool, **kwargs):
        self.bar = tqdm(file=sys.stderr, disable=None if enabled else True, leave=False,
                        **kwargs)
        self._stop = threading.Event()
        self._thread = None
        if not self.bar.disable:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()

    def _tick(self) -> None:
        while not self._stop.wait(0.5):
            self.bar.refresh()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VectorBar(_Ticking):
    """The verification bar: ``bar(stage, done, total)`` is the ``progress`` callback of
    :func:`hwgen.sim.runner.verify`."""

    STAGES = {"build": "verify: building the simulation", "simulate": "verify"}

    def __init__(self, total: int, enabled: bool):
        super().__init__(enabled, total=total, unit="vec", desc=self.STAGES["build"])
        self.stage = "build"

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            # the rate and the time left count from the start of the simulation
            self.stage = stage
            self.bar.reset(total)
            self.bar.set_description(self.STAGES.get(stage, stage), refresh=False)
        self.bar.n = done
        self.bar.refresh()


class StageClock(_Ticking):
    """The synthesis stages: ``clock(name)`` is the ``progress`` callback of
    :func:`hwgen.boards.flow.build`, called as each stage starts; each stage that ends is
    told to ``log`` as a line with its elapsed time (``  yosys           61.2 s``), and
    :meth:`close` ends the last one."""

    def __init__(self, log: Callable[[str], None], enabled: bool):
        super().__init__(enabled, bar_format="{desc}{elapsed}")
        self.log = log if self.bar.disable else (lambda line: self.bar.write(line, sys.stdout))
        self.stage: str | None = None
        self.start = 0.0
        self.seconds: dict[str, float] = {}

    def _end_stage(self) -> None:
        if self.stage is not None:
            self.seconds[self.stage] = s = time.monotonic() - self.start
            self.log(f"  {self.stage:<15} {s:6.1f} s")
            self.stage = None

    def __call__(self, name: str) -> None:
        self._end_stage()
        self.stage, self.start = name, time.monotonic()
        self.bar.set_description(f"synthesis ({name})", refresh=False)
        self.bar.reset()

    def close(self) -> None:
        self._end_stage()
        super().close()

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:
            self.stage = None             # a stage that failed or was interrupted did not end
        self.close()
