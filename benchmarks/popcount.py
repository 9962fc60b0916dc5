"""iCE40 logic cells per synapse of a fully parallel binary neuron.

A neuron with constant weights w computes ``y <= popcount(xnor(x, w))`` over N inputs, output
registered. Every design is synthesized for an iCE40 UP5K in the same run and measured the same
way (``hwgen.boards.ooc.synth_ooc``: synth_ice40, then nextpnr-ice40 --pack-only, counting every
resource the packer uses: logic cells, block RAMs, DSPs, SPRAM):

* ``reference``: the obvious behavioural sum, written in Verilog, mapped by yosys/ABC;
* ``carry chains``: ``hwgen.hw.popcount.popcount(..., impl="ice40")``, the carry-chain
  compressor tree, output registered (latency 1);
* ``EBR tables``: ``hwgen.hw.popcount.popcount_ebr``, block-RAM popcount tables of at most 10
  inputs (one SB_RAM40_4K each, 1024x4) read synchronously, their outputs summed by the
  carry-chain compressor tree, output registered (latency 2: table read, then sum);
* ``EBR + tree adder``: the same tables summed by a behavioural adder tree instead, to show
  which adder is the cheaper.

``saving`` is 1 - LC / reference LC. The ``LC/FA`` column is LC divided by the count of one full
adder per logic cell (N - bits of the result), the bound of a logic-only popcount. ``EBR`` is
shown as used / on the device, since a table neuron trades block RAM for logic cells.
Usage: ``python benchmarks/popcount.py [N ...]``. Exits non-zero if a tool run fails.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
from amaranth.hdl import Elaboratable, Module, Signal

from hwgen.boards.ooc import synth_ooc
from hwgen.hw.popcount import popcount, popcount_ebr


def reference_verilog(n: int, weights) -> str:
    width = n.bit_length()
    terms = " + ".join(f"{{{width - 1}'b0, {'' if w else '~'}x[{i}]}}"
                       for i, w in enumerate(weights))
    return (f"module ref_neuron(input clk, input [{n - 1}:0] x, output reg [{width - 1}:0] y);\n"
            f"  always @(posedge clk) y <= {terms};\n"
            "endmodule\n")


class Neuron(Elaboratable):
    """``y <= popcount(xnor(x, weights))`` with one of the popcounts of hw.popcount.

    ``impl`` is ``"ice40"`` (carry chains), ``"ebr"`` (tables + carry-chain adder) or
    ``"ebr-tree"`` (tables + behavioural adder tree).
    """

    latency = {"ice40": 1, "ebr": 2, "ebr-tree": 2}

    def __init__(self, n: int, weights, impl: str):
        self.n = n
        self.impl = impl
        self.invert = sum(int(not w) << i for i, w in enumerate(weights))
        self.x = Signal(n)
        self.y = Signal(n.bit_length())

    def elaborate(self, platform):
        m = Module()
        if self.impl == "ice40":
            count = popcount(m, self.x, impl="ice40", invert=self.invert, primitives=True)
        else:
            count = popcount_ebr(m, self.x, invert=self.invert, primitives=True,
                                 adder="tree" if self.impl == "ebr-tree" else "ice40")
        m.d.sync += self.y.eq(count)
        return m


DESIGNS = [("carry chains", "ice40"), ("EBR tables", "ebr"), ("EBR + tree adder", "ebr-tree")]


def measure(n: int, build: Path, seed: int = 1):
    """Synthesize the reference and every design of ``DESIGNS`` for one random weight vector.

    Returns a list of (name, latency, OOCResult), the reference first.
    """
    weights = np.random.default_rng(seed).integers(0, 2, n)
    rows = [("reference", 1, synth_ooc(reference_verilog(n, weights), top="ref_neuron",
                                       build_dir=build / f"ref{n}"))]
    for name, impl in DESIGNS:
        dut = Neuron(n, weights, impl)
        rows.append((name, Neuron.latency[impl],
                     synth_ooc(dut, top="neuron", build_dir=build / f"{impl}{n}",
                               ports=[dut.x, dut.y])))
    return rows


def main(argv):
    sizes = [int(a) for a in argv] or [64, 256]
    print("iCE40 UP5K, out of context (synth_ice40 + nextpnr --pack-only); LC = ICESTORM_LC")
    header = (f"{'N':>4} {'design':<16} | {'LC':>4} {'LUT':>4} {'CARRY':>5} {'DFF':>4} | "
              f"{'EBR':>5} {'EBR/syn':>7} {'DSP':>3} | {'LC/syn':>6} {'saving':>6} | "
              f"{'LC/FA':>5} {'lat':>3}")
    print(header)
    print("-" * len(header))
    verdicts = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            try:
                rows = measure(n, Path(tmp))
            except RuntimeError as err:
                print(err, file=sys.stderr)
                return 1
            ref = rows[0][2]
            bound = n - n.bit_length()
            for name, latency, r in rows:
                ebr = f"{r.ebr}/{r.available.get('ICESTORM_RAM', 0)}"
                print(f"{n:>4} {name:<16} | {r.lcs:>4} {r.luts:>4} {r.carries:>5} {r.ffs:>4} | "
                      f"{ebr:>5} {r.ebr / n:>7.3f} {r.dsp:>3} | {r.lcs / n:>6.3f} "
                      f"{100 * (1 - r.lcs / ref.lcs):>5.1f}% | {r.lcs / bound:>5.2f} "
                      f"{latency:>3}")
                if r.spram:
                    print(f"     ({name} also uses {r.spram} SPRAM)")
            print()
            verdicts.append(_verdict(n, rows))
    print("LC/FA: LC / (N - bits(N)), logic cells per full adder of a logic-only popcount.")
    print("\n".join(verdicts))
    return 0


def _verdict(n: int, rows) -> str:
    """Where the designs stand against the 25 % target and the 1.0 LC-per-full-adder bound."""
    ref = rows[0][2].lcs
    bound = n - n.bit_length()
    # a chain consumes at most 3 weight-1 bits and costs one boundary cell (see hw/popcount.py)
    chain_floor = bound + n // 2
    parts = []
    for name, _, r in rows[1:]:
        saving = 100 * (1 - r.lcs / ref)
        verdict = "meets" if saving >= 25 else "misses"
        parts.append(f"{name} {saving:.1f}% ({verdict} 25%, {r.lcs / bound:.2f} x bound, "
                     f"{r.ebr} EBR)")
    return (f"N={n}: " + "; ".join(parts)
            + f". Logic-only carry chains cannot go below about {chain_floor} LC "
              f"({chain_floor / bound:.2f} x bound): only block RAM tables beat 1.0.")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
