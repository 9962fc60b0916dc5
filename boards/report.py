"""What a synthesis / place-and-route run used and how fast it runs.

Numbers come from the tools' structured outputs: nextpnr's ``--report`` JSON (utilisation by
cell type, achieved Fmax per clock) and yosys ``stat -json`` (flip-flops, LUTs, and, for a
netlist that was never placed, the hard blocks).
"""

import dataclasses
import json
import re
from dataclasses import dataclass

from .targets import Target

__all__ = ["SynthReport", "parse_nextpnr_log_utilisation", "yosys_cell_counts"]

RATE_BASES = ("clock", "fmax")


@dataclass
class SynthReport:
    """Resource use and speed of one design on one target.

    A board build fills every field. An out-of-context netlist (no bitstream, possibly not
    placed) leaves ``bitstream``, ``bitstream_bytes`` and ``clock_mhz`` as ``None``, and
    ``lcs`` and ``fmax_mhz`` too if nextpnr did not run; its throughput is then given at
    ``fmax`` (``rate_basis="fmax"``).

    Members
    -------
    target, device : str
        Registry name and device ("ice40", "iCE40UP5K-SG48").
    lcs, lcs_total : int
        Logic cells (a LUT4 plus a flip-flop each, on iCE40) placed, and on the device.
    luts, ffs : int
        LUT4 and flip-flop cells in the synthesized netlist.
    ebr, ebr_total, spram, spram_total, dsps, dsps_total : int
        Block RAMs (EBR), single-port RAMs and DSP blocks used, and on the device.
    fmax_mhz : float or None
        Fmax nextpnr achieved for the core clock after routing.
    clock_mhz : float or None
        Frequency the design is constrained to and runs at on the board.
    cycles_per_inference : int
        Core clock cycles per input vector at full throughput.
    rate_basis : "clock" or "fmax"
        Which frequency ``inferences_per_s`` uses.
    bitstream : str or None
        Path of the bitstream.
    bitstream_bytes : int or None
        Its size.
    build_s : float or None
        Wall-clock seconds the flow took.
    """

    target: str
    device: str
    lcs: int | None
    lcs_total: int
    luts: int
    ffs: int
    ebr: int
    ebr_total: int
    spram: int
    spram_total: int
    dsps: int
    dsps_total: int
    fmax_mhz: float | None
    clock_mhz: float | None
    cycles_per_inference: int
    rate_basis: str
    bitstream: str | None = None
    bitstream_bytes: int | None = None
    build_s: float | None = None

    def __post_init__(self):
        if self.rate_basis not in RATE_BASES:
            raise ValueError(f"rate_basis must be one of {RATE_BASES}, not {self.rate_basis!r}")
        if self.rate_basis == "clock" and self.clock_mhz is None:
            raise ValueError("rate_basis 'clock' needs clock_mhz")
        if self.cycles_per_inference < 1:
            raise ValueError(f"cycles_per_inference must be at least 1, "
                             f"not {self.cycles_per_inference!r}")

    @classmethod
    def from_tool_outputs(cls, *, target: Target, yosys_stat: dict, nextpnr_report: dict | None,
                          cycles_per_inference: int, clock_mhz: float | None = None,
                          bitstream: str | None = None, bitstream_bytes: int | None = None,
                          build_s: float | None = None) -> "SynthReport":
        """Build a report from parsed yosys ``stat -json`` and nextpnr ``--report`` JSON.

        ``nextpnr_report`` may be ``None`` for a netlist that was only synthesized; hard
        blocks are then counted from the netlist and ``lcs`` and ``fmax_mhz`` stay ``None``.
        Throughput is given at ``clock_mhz`` when that is given, else at Fmax.
        """
        cells = yosys_cell_counts(yosys_stat)
        used = {}
        for key, resource in target.resources.items():
            if nextpnr_report is not None:
                used[key] = nextpnr_report["utilization"][resource.nextpnr_type]["used"]
            elif resource.yosys_type is not None:
                used[key] = cells.get(resource.yosys_type, 0)
            else:
                used[key] = None
        fmax = None
        if nextpnr_report is not None and nextpnr_report["fmax"]:
            # One clock domain: the core and the UART share the board clock.
            fmax = min(clock["achieved"] for clock in nextpnr_report["fmax"].values())
        return cls(
            target=target.name,
            device=target.device,
            lcs=used["lcs"], lcs_total=target.resources["lcs"].total,
            luts=cells.get(target.lut_cell, 0),
            ffs=sum(n for cell, n in cells.items() if cell.startswith(target.ff_cell_prefix)),
            ebr=used["ebr"], ebr_total=target.resources["ebr"].total,
            spram=used["spram"], spram_total=target.resources["spram"].total,
            dsps=used["dsps"], dsps_total=target.resources["dsps"].total,
            fmax_mhz=fmax,
            clock_mhz=clock_mhz,
            cycles_per_inference=cycles_per_inference,
            rate_basis="fmax" if clock_mhz is None else "clock",
            bitstream=bitstream,
            bitstream_bytes=bitstream_bytes,
            build_s=build_s,
        )

    @property
    def timing_met(self) -> bool | None:
        """Whether Fmax reaches the clock; ``None`` if either is unknown."""
        if self.fmax_mhz is None or self.clock_mhz is None:
            return None
        return self.fmax_mhz >= self.clock_mhz

    @property
    def inferences_per_s(self) -> float | None:
        """Input vectors per second at the ``rate_basis`` frequency, ignoring the UART."""
        mhz = self.clock_mhz if self.rate_basis == "clock" else self.fmax_mhz
        if mhz is None:
            return None
        return mhz * 1e6 / self.cycles_per_inference

    def to_json(self) -> str:
        """All fields plus ``inferences_per_s`` and ``timing_met``, as a JSON object."""
        fields = dataclasses.asdict(self)
        fields["inferences_per_s"] = self.inferences_per_s
        fields["timing_met"] = self.timing_met
        return json.dumps(fields, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "SynthReport":
        fields = json.loads(text)
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in fields.items() if key in names})

    def summary(self) -> str:
        """A short table for people."""
        def used(n, total):
            if n is None:
                return "-"
            return f"{n:>6} / {total:<6} {100 * n / total:5.1f} %"

        rows = [
            ("logic cells", used(self.lcs, self.lcs_total)),
            ("LUT4 / FFs", f"{self.luts:>6} / {self.ffs}"),
            ("RAM (EBR)", used(self.ebr, self.ebr_total)),
            ("SPRAM", used(self.spram, self.spram_total)),
            ("DSP", used(self.dsps, self.dsps_total)),
        ]
        if self.fmax_mhz is not None:
            timing = ""
            if self.timing_met is not None:
                verdict = "met" if self.timing_met else "FAILED"
                timing = f" (timing at {self.clock_mhz:g} MHz {verdict})"
            rows.append(("Fmax", f"{self.fmax_mhz:6.1f} MHz{timing}"))
        rate = self.inferences_per_s
        if rate is not None:
            basis = (f"at the {self.clock_mhz:g} MHz clock" if self.rate_basis == "clock"
                     else "at Fmax")
            rows.append(("throughput", f"{rate:,.0f} inferences/s {basis} "
                                       f"({self.cycles_per_inference} cycles per inference)"))
        if self.bitstream is not None:
            rows.append(("bitstream", f"{self.bitstream} ({self.bitstream_bytes:,} bytes)"))
        if self.build_s is not None:
            rows.append(("build time", f"{self.build_s:.1f} s"))
        width = max(len(label) for label, _ in rows)
        lines = [f"{self.target} ({self.device})"]
        lines += [f"  {label:<{width}}  {value}" for label, value in rows]
        return "\n".join(lines)


def yosys_cell_counts(stat: dict) -> dict[str, int]:
    """Cell counts by type for the whole design, from yosys ``stat -json``."""
    return dict(stat["design"]["num_cells_by_type"])


# nextpnr prints "Info: \t         ICESTORM_LC:  6120/  5280   115%" before placing.
_UTILISATION_LINE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.MULTILINE)


def parse_nextpnr_log_utilisation(log: str) -> dict[str, tuple[int, int]]:
    """``{cell type: (used, available)}`` from a nextpnr log, the last report if several.

    The log has it even when placement then fails, unlike the ``--report`` JSON.
    """
    return {cell: (int(used), int(available))
            for cell, used, available in _UTILISATION_LINE.findall(log)}
