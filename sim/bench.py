"""The cocotb bench: stream vectors through a design under random stalls and check every output.

Run by :func:`hwgen.sim.runner.verify`, which writes the vectors, the expected outputs and a JSON
configuration, and names the configuration in the ``HWGEN_BENCH_CONFIG`` environment variable.
The design's ports follow the hardware interface contract of ``docs/architecture.md``:
``clk``, ``rst`` (synchronous, active high) and the ``i_stream__*`` / ``o_stream__*`` stream.

Each cycle has two phases: right after the rising edge the bench drives ``i_stream`` and
``o_stream__ready``; in the read-only phase it samples the settled handshakes, so a transfer is
seen exactly when the next rising edge takes it, even through combinational ready paths.
While nothing can happen, that is while the design offers no output (and none is held back
by a stall) or does not take the input on offer, the bench sleeps until ``o_stream__valid``
or ``i_stream__ready`` rises (or the next deadline: the idle timeout, the end of the drain)
instead of waking every cycle; the clock toggles in the simulator, not in Python, and the
cycle count comes from the simulation time. A long-folded design thus costs Python time per
transfer, not per cycle.
The bench writes its findings to the result file before it passes or fails.
"""

from __future__ import annotations

import json
import logging
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_steps

from .packing import pack, unpack

CONFIG_ENV = "HWGEN_BENCH_CONFIG"
PORTS = ("clk", "rst", "i_stream__payload", "i_stream__valid", "i_stream__ready",
         "o_stream__payload", "o_stream__valid", "o_stream__ready")
CLOCK_NS = 10
RESET_CYCLES = 4
# after the last expected output, o_stream stays ready this long to catch surplus outputs
DRAIN_CYCLES = 64
MAX_REPORTED = 10
# the bench writes how many outputs it took to the progress file (config "progress") this often
PROGRESS_EVERY = 200
# the resolvable levels, and the weak ones to their bits, X/Z/U/W/- to 0, for recording an
# unresolvable payload
RESOLVABLE = frozenset("01LH")
UNRESOLVED_AS_BITS = str.maketrans("LHXZUW-", "0100000")

log = logging.getLogger("hwgen.sim.bench")


class StreamBench:
    """Drives ``i_stream`` with every vector and collects ``o_stream``, both with random stalls.

    Members
    -------
    words : list of int
        Output payloads in arrival order.
    sent : int
        Inputs the design has accepted (vectors; elements when the input is serial).
    cycles : int
        Clock cycles the sink ran, after reset (from the simulation time).
    violations : list of str
        The first few stream-rule violations of ``o_stream``; ``n_violations`` counts all.
    error : str or None
        Why the run could not finish: the design is off the interface contract, or it stopped
        producing outputs.
    """

    def __init__(self, dut, config: dict):
        self.dut = dut
        self.config = config
        vectors = np.load(config["vectors"])
        self.serial = config.get("in_serial", False)
        # a serial input takes each vector as its elements, one transfer each
        self.inputs = pack(vectors.reshape(-1, 1) if self.serial else vectors, config["in_bits"],
                           config["in_signed"])
        if config.get("preamble"):
            # elements the design loads as weights after reset, sent before the first vector
            preamble = np.load(config["preamble"]).reshape(-1, 1)
            self.inputs = list(pack(preamble, config["in_bits"], config["in_signed"])) + \
                list(self.inputs)
        self.expected = np.load(config["expected"])
        self.stall = config["stall"]
        self.drive_rng = random.Random(f"{config['seed']}:drive")
        self.sink_rng = random.Random(f"{config['seed']}:sink")
        self.words: list[int] = []
        self.sent = 0
        self.cycles = 0
        self.violations: list[str] = []
        self.n_violations = 0
        self.error: str | None = None

    def check_ports(self) -> str | None:
        """What keeps the design from meeting the interface contract, or None."""
        missing = [port for port in PORTS if not hasattr(self.dut, port)]
        if missing:
            return (f"the design has no port {', '.join(missing)}; the contract's top has "
                    f"{', '.join(PORTS)}")
        n_in = 1 if self.serial else self.config["n_in"]
        for side, n, bits in (("i", n_in, self.config["in_bits"]),
                              ("o", self.config["n_out"], self.config["out_bits"])):
            width = len(getattr(self.dut, f"{side}_stream__payload"))
            if width != n * bits:
                return (f"{side}_stream__payload is {width} bits wide, not {n} elements of "
                        f"{bits} bits = {n * bits}")
        return None

    def violation(self, message: str) -> None:
        self.n_violations += 1
        if len(self.violations) < MAX_REPORTED:
            self.violations.append(message)
            log.error("stream rule violation: %s", message)

    async def reset(self) -> None:
        dut = self.dut
        dut.rst.value = 1
        dut.i_stream__valid.value = 0
        dut.o_stream__ready.value = 0
        for _ in range(RESET_CYCLES):
            await RisingEdge(dut.clk)
        dut.rst.value = 0

    async def drive(self) -> None:
        """Present each vector in turn; idle with probability ``stall`` before each one."""
        clk, valid = self.dut.clk, self.dut.i_stream__valid
        payload, ready = self.dut.i_stream__payload, self.dut.i_stream__ready
        for word in self.inputs:
            while self.drive_rng.random() < self.stall:
                valid.value = 0
                await RisingEdge(clk)
            payload.value = word
            valid.value = 1
            await ReadOnly()
            # ready rises in a later time step, if ever: sleep until it does
            while ready.value != 1:
                await ready.rising_edge
                await ReadOnly()
            await RisingEdge(clk)
            self.sent += 1
        valid.value = 0

    async def sink(self, max_idle_cycles: int) -> None:
        """Take every output, holding ready low with probability ``stall``, checking the rules.

        Called right after reset, in the time step of cycle 1's rising edge. It goes cycle by
        cycle while an output is offered, and sleeps through the cycles where none is (a
        random stall is drawn on the cycles it wakes in: ready keeps its level while it
        sleeps, and no transfer can happen then).
        """
        clk, valid = self.dut.clk, self.dut.o_stream__valid
        payload, ready = self.dut.o_stream__payload, self.dut.o_stream__ready
        period = get_sim_steps(CLOCK_NS, "ns")
        origin = get_sim_time() - period  # so that the current cycle is cycle 1
        n = len(self.expected)
        held = None  # the payload offered but not taken last cycle
        last_taken = 0  # the cycle of the latest transfer
        while True:
            waiting = len(self.words) < n
            take = not waiting or self.sink_rng.random() >= self.stall
            ready.value = int(take)
            await ReadOnly()
            self.cycles = cycle = (get_sim_time() - origin) // period
            offered = valid.value == 1
            if offered:
                # the payload's bits as text: also for a 1-bit payload, whose value is a Logic,
                # and much faster on a wide one than LogicArray.is_resolvable, bit by bit
                bits = str(payload.value)
                if not RESOLVABLE.issuperset(bits):
                    self.violation(f"output {len(self.words)}: payload {bits} is not resolvable "
                                   f"while valid")
                word = int(bits.translate(UNRESOLVED_AS_BITS), 2)
                if held is not None and word != held:
                    self.violation(f"output {len(self.words)}: payload changed from {held:#x} to "
                                   f"{word:#x} while valid and not ready")
                if not waiting:
                    self.violation(f"surplus output (payload {word:#x}) after all {n} expected "
                                   f"outputs")
                elif take:
                    self.words.append(word)
                    last_taken = cycle
                    if len(self.words) % PROGRESS_EVERY == 0:
                        self.write_progress()
                held = None if take else word
            elif held is not None:
                self.violation(f"output {len(self.words)}: valid fell before the transfer")
                held = None
            if not waiting:
                if cycle >= last_taken + DRAIN_CYCLES:
                    return
            elif cycle - last_taken > max_idle_cycles:
                self.error = (f"the design stopped producing outputs: none for {max_idle_cycles} "
                              f"cycles after {len(self.words)}/{n} outputs, "
                              f"{self.sent}/{len(self.inputs)} inputs accepted")
                return
            if offered:
                await RisingEdge(clk)
                continue
            # nothing happens at o_stream before valid rises, which it does right after a
            # rising edge: sleep until then or until the deadline's rising edge (a timer to
            # the falling edge before it, then the edge), whichever comes first
            deadline = last_taken + (max_idle_cycles + 1 if waiting else DRAIN_CYCLES)
            timer = Timer((deadline - cycle - 1) * period + period // 2, "step")
            if await First(valid.rising_edge, timer) is timer:
                await RisingEdge(clk)

    def write_progress(self) -> None:
        """The count of outputs taken, to the progress file if the configuration names one
        (replaced whole, so that a reader never sees half a number)."""
        path = self.config.get("progress")
        if path:
            Path(path + ".tmp").write_text(str(len(self.words)))
            os.replace(path + ".tmp", path)

    def report(self) -> dict:
        """Compare the outputs with the expected vectors in order; the result file's contents."""
        got = unpack(self.words, self.config["n_out"], self.config["out_bits"], self.config["out_signed"])
        expected = self.expected[:len(got)]
        equal = np.all(got == expected, axis=1)
        bad = np.flatnonzero(~equal)
        return {
            "n_vectors": len(self.expected),
            "n_received": len(got),
            "n_matched": int(equal.sum()),
            "mismatches": [[int(i), expected[i].tolist(), got[i].tolist()]
                           for i in bad[:MAX_REPORTED]],
            "n_violations": self.n_violations,
            "violations": self.violations,
            "error": self.error,
            "cycles": self.cycles,
        }


@cocotb.test()
async def stream_matches_expected(dut):
    """Every vector in, every output out and equal to the expected one, the stream rules kept."""
    config = json.loads(Path(os.environ[CONFIG_ENV]).read_text())
    bench = StreamBench(dut, config)
    bench.error = bench.check_ports()
    if bench.error is None:
        # the clock in the simulator (GPI), not a Python task woken twice a cycle: the bench only
        # writes right after rising edges, so it needs no inertial writes to be safe
        Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
        await bench.reset()
        driver = cocotb.start_soon(bench.drive())
        await bench.sink(config["max_idle_cycles"])
        driver.cancel()
    result = bench.report()
    Path(config["result"]).write_text(json.dumps(result))
    log.info("%d/%d vectors matched in %d cycles, %d stream rule violations",
             result["n_matched"], result["n_vectors"], result["cycles"], result["n_violations"])
    assert bench.error is None, bench.error
    assert result["n_matched"] == result["n_vectors"] and not result["n_violations"], (
        f"{result['n_matched']}/{result['n_vectors']} vectors matched, "
        f"{result['n_violations']} stream rule violations")
