"""The cocotb bench and runner of hwgen.sim, checked on a small stream design against NumPy."""

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwgen.sim.packing import pack, unpack
from hwgen.sim.runner import simulator_available, verify

N, BITS, OUT_BITS = 24, 9, 14  # a 216-bit input payload; |sum| <= 24 * 256 fits in 14 bits
FAULTS = (None, "restless_payload", "hang")


class SumMax(wiring.Component):
    """Per input vector of ``n`` signed elements, the output vector ``[sum, max]``.

    A vector is taken into a one-entry buffer and its result offered after a pseudo-random wait
    of 0 to 3 cycles (an 8-bit LFSR), so outputs come irregularly and back-pressure matters.
    The input is ready while the buffer is empty or its result is leaving (a combinational
    ready-to-ready path). Latency 1 to 4 cycles; throughput one vector per 1 to 4 cycles.

    ``fault`` breaks the design on purpose: ``"restless_payload"`` bumps the max while its output
    waits for ready (a stream rule violation), ``"hang"`` stops taking input after 50 vectors.

    Members
    -------
    i_stream : In(stream.Signature(ArrayLayout(signed(bits), n)))
    o_stream : Out(stream.Signature(ArrayLayout(signed(out_bits), 2)))
    """

    def __init__(self, *, n, bits, out_bits, fault=None):
        if fault not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, not {fault!r}")
        self.n, self.fault = n, fault
        super().__init__({
            "i_stream": In(stream.Signature(data.ArrayLayout(signed(bits), n))),
            "o_stream": Out(stream.Signature(data.ArrayLayout(signed(out_bits), 2))),
        })

    def elaborate(self, platform):
        m = Module()
        x = [self.i_stream.payload[i] for i in range(self.n)]
        peak = x[0]
        for i, v in enumerate(x[1:]):
            # a signal per step: an expression using the running max twice doubles each step
            step = Signal.like(x[0], name=f"peak{i}")
            m.d.comb += step.eq(Mux(v > peak, v, peak))
            peak = step
        lfsr = Signal(8, init=1)
        wait = Signal(2)
        full = Signal()
        taken = Signal(range(51))
        result = Signal.like(self.o_stream.payload)
        leaving = self.o_stream.valid & self.o_stream.ready
        m.d.comb += [
            self.o_stream.valid.eq(full & (wait == 0)),
            self.o_stream.payload.eq(result),
            self.i_stream.ready.eq(~full | leaving),
        ]
        if self.fault == "hang":
            with m.If(taken == 50):
                m.d.comb += self.i_stream.ready.eq(0)
        if self.fault == "restless_payload":
            with m.If(self.o_stream.valid & ~self.o_stream.ready):
                m.d.sync += result[1].eq(result[1] + 1)
        with m.If(full & (wait != 0)):
            m.d.sync += wait.eq(wait - 1)
        with m.If(leaving):
            m.d.sync += full.eq(0)
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += [
                result[0].eq(sum(x)), result[1].eq(peak), full.eq(1), wait.eq(lfsr[:2]),
                lfsr.eq(Mux(lfsr[7], (lfsr << 1) ^ 0x1d, lfsr << 1)),
                taken.eq(taken + (taken < 50)),
            ]
        return m


def ref_sum_max(x):
    return np.stack([x.sum(axis=1), x.max(axis=1)], axis=1)


def random_vectors(count, seed):
    lo, hi = -(1 << (BITS - 1)), (1 << (BITS - 1)) - 1
    edges = np.array([
        np.full(N, lo), np.full(N, hi), np.zeros(N), np.where(np.arange(N) % 2, lo, hi),
        np.r_[hi, np.full(N - 1, lo)], np.r_[np.full(N - 1, lo), hi],
    ])
    rng = np.random.default_rng(seed)
    return np.concatenate([edges, rng.integers(lo, hi, size=(count - len(edges), N),
                                               endpoint=True)])


def sum_max_verilog(fault=None):
    return verilog.convert(SumMax(n=N, bits=BITS, out_bits=OUT_BITS, fault=fault), name="top")


def run(verilog_text, vectors, expected, build_dir, **kwargs):
    return verify(verilog_text, vectors=vectors, expected=expected, in_bits=BITS, in_signed=True,
                  out_bits=OUT_BITS, out_signed=True, n_out=2, build_dir=build_dir, **kwargs)


@pytest.fixture(scope="module")
def good_verilog():
    return sum_max_verilog()


@pytest.fixture(scope="module")
def verilator_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("sum_max_verilator")


SIMULATORS = [
    "verilator",
    pytest.param("icarus", marks=pytest.mark.skipif(not simulator_available("icarus"),
                                                    reason="Icarus Verilog is not installed")),
]


@pytest.mark.parametrize("bits, signed", [(1, False), (9, True), (14, True), (63, False),
                                          (64, True)])
def test_pack_round_trip(bits, signed):
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    rng = np.random.default_rng(bits)
    vectors = np.concatenate([np.array([[lo] * 5, [hi] * 5]),
                              rng.integers(lo, hi, size=(50, 5), endpoint=True)])
    words = pack(vectors, bits, signed)
    mask = (1 << bits) - 1
    assert words == [sum((int(v) & mask) << (i * bits) for i, v in enumerate(row))
                     for row in vectors]
    np.testing.assert_array_equal(unpack(words, 5, bits, signed), vectors)


def test_pack_names_the_element_that_does_not_fit():
    with pytest.raises(ValueError, match=r"element \[1, 2\] = 256 does not fit in 9 signed"):
        pack([[0, 0, 0], [0, 0, 256]], 9, True)


@pytest.mark.rtl
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_design_matches_numpy(simulator, good_verilog, verilator_dir, tmp_path):
    build_dir = verilator_dir if simulator == "verilator" else tmp_path
    vectors = random_vectors(2000, seed=1)
    result = run(good_verilog, vectors, ref_sum_max(vectors), build_dir, simulator=simulator)
    assert result.n_matched == result.n_vectors == 2000
    assert result.passed, result.summary()
    assert (f"2000/2000 vectors matched ({simulator}, 0 mismatches)"
            in result.log_path.read_text().splitlines())


@pytest.mark.rtl
def test_wrong_expected_is_reported_exactly(good_verilog, verilator_dir):
    vectors = random_vectors(500, seed=2)
    truth = ref_sum_max(vectors)
    expected = truth.copy()
    expected[123, 1] += 1
    result = run(good_verilog, vectors, expected, verilator_dir, seed=7)
    assert result.build_seconds == 0  # the Verilog is unchanged: the build is reused
    assert not result.passed
    assert result.n_matched == 499
    assert result.mismatches == [(123, expected[123].tolist(), truth[123].tolist())]
    assert "499/500 vectors matched (verilator, 1 mismatches)" in result.log_path.read_text()


@pytest.mark.rtl
def test_stream_rule_breach_is_caught(tmp_path):
    vectors = random_vectors(300, seed=3)
    result = run(sum_max_verilog("restless_payload"), vectors, ref_sum_max(vectors), tmp_path)
    assert not result.passed
    assert result.n_violations > 0
    assert "payload changed" in result.violations[0]


@pytest.mark.rtl
def test_design_that_stops_times_out(tmp_path):
    vectors = random_vectors(100, seed=4)
    result = run(sum_max_verilog("hang"), vectors, ref_sum_max(vectors), tmp_path,
                 max_idle_cycles=200)
    assert not result.passed
    assert result.n_received == result.n_matched == 50
    assert "stopped producing outputs" in result.error
    assert "50/100 inputs accepted" in result.error
