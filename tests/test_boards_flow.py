"""The real iCE40 flow: yosys, nextpnr and icepack on a tiny core, and on one that cannot fit."""

import dataclasses
import json

import pytest
from amaranth.hdl import Module, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.boards.flow import DoesNotFitError, FlowError, build
from hwgen.boards.report import SynthReport
from hwgen.boards.targets import TARGETS, get_target
from test_boards_uart import ArgMaxCore

ICE40_UP5K_BITSTREAM_BYTES = 104_090


class RamCore(wiring.Component):
    """Test core too big for the iCE40 UP5K's 30 EBR: a 16384 x 16 bit RAM (64 EBR).

    Each input vector writes its bits [14, 30) at address bits [0, 14) and reads the word at
    address bits [30, 44); the 16 data bits are XOR-folded into the 4-bit output so that
    synthesis keeps all of them. (A RAM rather than a ROM: yosys takes minutes to map 64
    initialised blocks.) Latency 2 cycles.
    """

    depth = 16384

    def __init__(self):
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(unsigned(5), 16))),
            "o_stream": Out(stream.Signature(unsigned(4))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.ram = ram = Memory(shape=unsigned(16), depth=self.depth, init=[])
        write = ram.write_port()
        read = ram.read_port()
        vector = Value.cast(self.i_stream.payload)
        transfer = self.i_stream.valid & self.i_stream.ready
        pending = Signal()

        m.d.comb += [
            self.i_stream.ready.eq(~pending & ~self.o_stream.valid),
            write.addr.eq(vector[0:14]),
            write.data.eq(vector[14:30]),
            write.en.eq(transfer),
            read.addr.eq(vector[30:44]),
            read.en.eq(transfer),
        ]
        with m.If(self.o_stream.ready):
            m.d.sync += self.o_stream.valid.eq(0)
        with m.If(transfer):
            m.d.sync += pending.eq(1)
        with m.If(pending):
            m.d.sync += [
                self.o_stream.payload.eq(read.data[0:4] ^ read.data[4:8] ^ read.data[8:12]
                                         ^ read.data[12:16]),
                self.o_stream.valid.eq(1),
                pending.eq(0),
            ]
        return m


def test_get_target_lists_valid_names():
    assert get_target("ice40") is TARGETS["ice40"]
    with pytest.raises(ValueError, match="valid targets: ice40"):
        get_target("ice41")


def test_report_without_bitstream_round_trips():
    target = get_target("ice40")
    stat = {"design": {"num_cells_by_type": {"SB_LUT4": 114, "SB_CARRY": 6, "SB_DFF": 7,
                                             "SB_DFFE": 3, "SB_RAM40_4K": 2}}}
    report = SynthReport.from_tool_outputs(target=target, yosys_stat=stat, nextpnr_report=None,
                                           cycles_per_inference=64)
    assert (report.lcs, report.luts, report.ffs, report.ebr) == (None, 114, 10, 2)
    assert report.bitstream is None and report.inferences_per_s is None
    assert SynthReport.from_json(report.to_json()) == report
    assert "LUT4 / FFs" in report.summary()


def test_tool_failure_keeps_earlier_results(tmp_path, monkeypatch):
    (tmp_path / "top.bin").write_bytes(b"earlier build")
    monkeypatch.setenv("YOSYS", "false")
    with pytest.raises(FlowError, match="yosys failed: exit status 1") as error:
        build(ArgMaxCore(n=4, shape=unsigned(2)), target="ice40", build_dir=tmp_path, n_in=4,
              in_bits=2, out_bits=2, cycles_per_inference=1, progress=lambda step: None)
    assert error.value.log_path == tmp_path / "top.failed" / "yosys.out"
    assert (tmp_path / "top.bin").read_bytes() == b"earlier build"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["top.bin", "top.failed"]


@pytest.mark.synth
def test_build_argmax_for_ice40(tmp_path):
    steps = []
    report = build(ArgMaxCore(n=16, shape=signed(5)), target="ice40", build_dir=tmp_path,
                   n_in=16, in_bits=5, out_bits=4, cycles_per_inference=1,
                   progress=steps.append)
    assert steps == ["elaborate", "yosys", "nextpnr-ice40", "icepack", "report"]

    bitstream = tmp_path / "top.bin"
    assert report.bitstream == str(bitstream)
    assert bitstream.stat().st_size == report.bitstream_bytes == ICE40_UP5K_BITSTREAM_BYTES
    for log in ("top.rpt", "top.tim", "top.nextpnr.json", "top.stat.json"):
        assert (tmp_path / log).is_file()
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".build-")]

    assert 0 < report.lcs < report.lcs_total == 5280
    assert 0 < report.ffs < report.lcs_total
    assert 0 < report.luts <= report.lcs
    assert report.ebr == report.spram == report.dsps == 0
    assert (report.ebr_total, report.spram_total, report.dsps_total) == (30, 4, 8)
    assert report.fmax_mhz > 0
    assert report.clock_mhz == 12.0 and report.rate_basis == "clock"
    assert report.inferences_per_s == 12e6
    # on disk the bitstream is named relative to the folder that holds report.json
    assert SynthReport.from_json((tmp_path / "report.json").read_text()) == \
        dataclasses.replace(report, bitstream="top.bin")
    assert json.loads(report.to_json())["timing_met"] == report.timing_met
    assert "logic cells" in report.summary()


@pytest.mark.synth
def test_build_ram_too_big_for_ebr(tmp_path):
    with pytest.raises(DoesNotFitError, match=r"design needs \d+ RAM blocks \(EBR\), "
                                              r"iCE40UP5K-SG48 has 30") as error:
        build(RamCore(), target="ice40", build_dir=tmp_path, n_in=16, in_bits=5, out_bits=4,
              cycles_per_inference=2, progress=lambda step: None)
    assert error.value.needed > 30
    assert error.value.log_path == tmp_path / "top.failed" / "top.tim"
    assert error.value.log_path.is_file()
    assert not (tmp_path / "top.bin").exists()
