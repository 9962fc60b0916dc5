"""The RTL rung of the rtl-tier tests: a model's pipeline in Verilator == the golden model."""

import re

import numpy as np

from hwgen.hw.pipeline import Pipeline, to_verilog
from hwgen.sim.runner import verify
from hwgen.sw import golden

# Verilator (5.048) splits the symbol table constructor of a design with more than about 4,000
# public signals into functions that g++ -O1 compiled for many minutes; hwgen.sim.runner now
# builds that run-once code at -O0 (a 4,027-signal design in 14 s). The rtl tier still keeps
# its designs below this size, so that the tier stays quick and catches a regression there
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
                 build_dir=build_dir, seed=seed, stall=0.3, in_serial=pipeline.serial_in)
    print(f"{res.summary()}; build {res.build_seconds:.1f} s, {res.seconds:.1f} s in all, "
          f"{res.cycles} cycles; folding {folding}")
    assert res.n_vectors == len(x)
    assert res.n_matched == res.n_vectors, res.summary()
    assert res.n_violations == 0 and res.error is None
    return expected
