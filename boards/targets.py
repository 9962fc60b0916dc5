"""FPGA targets: which board, which device, and how much of each resource the device has.

Adding a target is one entry in :data:`TARGETS`; the flow (:mod:`.flow`) and the report
(:mod:`.report`) read everything device specific from the :class:`Target`.
"""

from dataclasses import dataclass

from amaranth_boards.icebreaker import ICEBreakerPlatform

__all__ = ["DeviceResource", "Target", "TARGETS", "get_target"]


@dataclass(frozen=True)
class DeviceResource:
    """One countable resource of a device.

    Members
    -------
    label : str
        What it is called in messages ("logic cells").
    total : int
        How many the device has.
    nextpnr_type : str
        The cell type nextpnr counts it as in its utilisation report ("ICESTORM_LC").
    yosys_type : str or None
        The cell type in the synthesized netlist, for counting without placing; ``None``
        where synthesis has no such cell (logic cells are formed by nextpnr's packer).
    """

    label: str
    total: int
    nextpnr_type: str
    yosys_type: str | None


@dataclass(frozen=True)
class Target:
    """A board and the FPGA on it.

    Members
    -------
    name : str
        Registry key, as given to ``hwgen build --target``.
    description : str
        Device and board in words.
    platform : type
        The amaranth-boards platform class; ``platform()`` makes a fresh instance per build.
    device : str
        Device and package, as in reports ("iCE40UP5K-SG48").
    clock_hz : float
        Frequency of the board clock the design runs from.
    resources : dict of str to DeviceResource
        Keyed by the :class:`~.report.SynthReport` field names: ``lcs``, ``ebr``, ``spram``,
        ``dsps``.
    lut_cell : str
        The LUT cell type in the synthesized netlist (yosys ``stat``).
    ff_cell_prefix : str
        Prefix of the flip-flop cell types in the synthesized netlist.
    bitstream : str
        File name of the bitstream the platform build produces, ``{name}`` for the design name.
    """

    name: str
    description: str
    platform: type
    device: str
    clock_hz: float
    resources: dict
    lut_cell: str
    ff_cell_prefix: str
    bitstream: str

    @property
    def clock_mhz(self) -> float:
        return self.clock_hz / 1e6


TARGETS: dict[str, Target] = {
    "ice40": Target(
        name="ice40",
        description="Lattice iCE40 UP5K (SG48) on the 1BitSquared iCEBreaker",
        platform=ICEBreakerPlatform,
        device="iCE40UP5K-SG48",
        clock_hz=12e6,
        resources={
            "lcs":   DeviceResource("logic cells", 5280, "ICESTORM_LC", None),
            "ebr":   DeviceResource("RAM blocks (EBR)", 30, "ICESTORM_RAM", "SB_RAM40_4K"),
            "spram": DeviceResource("SPRAM blocks", 4, "ICESTORM_SPRAM", "SB_SPRAM256KA"),
            "dsps":  DeviceResource("DSP blocks", 8, "ICESTORM_DSP", "SB_MAC16"),
        },
        lut_cell="SB_LUT4",
        ff_cell_prefix="SB_DFF",
        bitstream="{name}.bin",
    ),
}


def get_target(name: str) -> Target:
    """The registered target called ``name``; ``ValueError`` lists the valid names otherwise."""
    if name not in TARGETS:
        raise ValueError(f"unknown target {name!r}; valid targets: {', '.join(sorted(TARGETS))}")
    return TARGETS[name]
