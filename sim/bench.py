"""The cocotb bench: stream vectors through a design under random stalls and check every output.

Run by :func:`hwgen.sim.runner.verify`, which writes the vectors, the expected outputs and a JSON
configuration, and names the configuration in the ``HWGEN_BENCH_CONFIG`` environment variable.
The design's ports follow the hardware interface contract of ``docs/architecture.md``:
``clk``, ``rst`` (synchronous, active high) and the ``i_stream__*`` / ``o_stream__*`` stream.

Each cycle has two phases: right after the rising edge the bench drives ``i_stream`` and
``o_stream__ready``; in the read-only phase it samples the settled handshakes, so a transfer is
seen exactly when the next rising edge takes it, even through combinational ready paths.
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
from cocotb.triggers import ReadOnly, RisingEdge

from .packing import pack, unpack

CONFIG_ENV = "HWGEN_BENCH_CONFIG"
PORTS = ("clk", "rst", "i_stream__payload", "i_stream__valid", "i_stream__ready",
         "o_stream__payload", "o_stream__valid", "o_stream__ready")
RESET_CYCLES = 4
# after the last expected output, o_stream stays ready this long to catch surplus outputs
DRAIN_CYCLES = 64
MAX_REPORTED = 10
# weak levels to their bits, X/Z/U/W/- to 0, for recording an unresolvable payload
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
        Clock cycles seen by the sink.
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
            while ready.value != 1:
                await RisingEdge(clk)
                await ReadOnly()
            await RisingEdge(clk)
            self.sent += 1
        valid.value = 0

    async def sink(self, max_idle_cycles: int) -> None:
        """Take every output, holding ready low with probability ``stall``, checking the rules."""
        clk, valid = self.dut.clk, self.dut.o_stream__valid
        payload, ready = self.dut.o_stream__payload, self.dut.o_stream__ready
        n = len(self.expected)
        held = None  # the payload offered but not taken last cycle
        idle = 0
        drain = DRAIN_CYCLES
        while drain:
            waiting = len(self.words) < n
            take = not waiting or self.sink_rng.random() >= self.stall
            ready.value = int(take)
            await ReadOnly()
            self.cycles += 1
            idle += 1
            if valid.value == 1:
                value = payload.value
                if not value.is_resolvable:
                    self.violation(f"output {len(self.words)}: payload {value} is not resolvable "
                                   f"while valid")
                # str() also serves a 1-bit payload, whose value is a Logic, not a LogicArray
                word = int(str(value).translate(UNRESOLVED_AS_BITS), 2)
                if held is not None and word != held:
                    self.violation(f"output {len(self.words)}: payload changed from {held:#x} to "
                                   f"{word:#x} while valid and not ready")
                if not waiting:
                    self.violation(f"surplus output (payload {word:#x}) after all {n} expected "
                                   f"outputs")
                elif take:
                    self.words.append(word)
                    idle = 0
                held = None if take else word
            elif held is not None:
                self.violation(f"output {len(self.words)}: valid fell before the transfer")
                held = None
            if not waiting:
                drain -= 1
            elif idle > max_idle_cycles:
                self.error = (f"the design stopped producing outputs: none for {max_idle_cycles} "
                              f"cycles after {len(self.words)}/{n} outputs, "
                              f"{self.sent}/{len(self.inputs)} inputs accepted")
                return
            await RisingEdge(clk)

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
        Clock(dut.clk, 10, unit="ns").start()
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
