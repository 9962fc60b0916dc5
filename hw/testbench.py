"""Amaranth simulation of a stream component: vectors in with random gaps, out with random stalls.

Used by the engine and pipeline tests; checks the stream rules on the output as it goes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth.sim import Simulator

__all__ = ["StreamRun", "simulate_stream"]


@dataclass
class StreamRun:
    """What came out, and when (cycle numbers count clock edges from 0)."""

    outputs: list[list[int]] = field(default_factory=list)
    in_cycles: list[int] = field(default_factory=list)       # input transfers
    out_cycles: list[int] = field(default_factory=list)      # output transfers
    valid_cycles: list[int] = field(default_factory=list)    # first cycle each output was valid


def simulate_stream(dut, vectors, *, rng: np.random.Generator | None = None,
                    valid_prob: float = 1.0, ready_prob: float = 1.0,
                    max_cycles: int = 100_000, n_outputs: int | None = None) -> StreamRun:
    """Send ``vectors`` (lists of ints) through ``dut.i_stream``; collect ``dut.o_stream``
    until ``n_outputs`` transfers (default one per vector; a serial stream has one per element).

    Before each vector the source idles while a draw exceeds ``valid_prob``; each cycle the
    sink is ready with probability ``ready_prob``. Raises AssertionError if an output payload
    changes or its valid drops before the transfer, or after ``max_cycles`` cycles.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    vectors = [[int(v) for v in vec] for vec in vectors]
    i, o = dut.i_stream, dut.o_stream
    n_out = len(o.payload)
    run = StreamRun()

    async def source(ctx):
        cycle = 0
        for vec in vectors:
            while rng.random() >= valid_prob:
                await ctx.tick()
                cycle += 1
            ctx.set(i.payload, vec)
            ctx.set(i.valid, 1)
            while True:
                _, _, ready = await ctx.tick().sample(i.ready)
                cycle += 1
                if ready:
                    break
            run.in_cycles.append(cycle)
            ctx.set(i.valid, 0)

    async def sink(ctx):
        held = None     # payload shown while not ready: must still be there next cycle
        cycle = 0
        while len(run.outputs) < (len(vectors) if n_outputs is None else n_outputs):
            assert cycle < max_cycles, f"only {len(run.outputs)} outputs in {max_cycles} cycles"
            ctx.set(o.ready, rng.random() < ready_prob)
            _, _, valid, ready, payload = await ctx.tick().sample(o.valid, o.ready, o.payload)
            cycle += 1
            payload = [int(payload[k]) for k in range(n_out)]
            if held is not None:
                assert valid, f"o_stream.valid dropped before the transfer at cycle {cycle}"
                assert payload == held, f"o_stream.payload changed while stalled at cycle {cycle}"
            elif valid:
                run.valid_cycles.append(cycle)
            if valid and ready:
                run.outputs.append(payload)
                run.out_cycles.append(cycle)
                held = None
            else:
                held = payload if valid else None

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(source)
    sim.add_testbench(sink)
    sim.run()
    return run
