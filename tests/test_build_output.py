"""What ``hwgen build`` leaves and shows: folders that honour the umask, reports that name the
model, the verification and paths inside the build folder, progress that stays off captured
output, a default ``--out`` that no packaging tool uses, ``--help`` with examples, and the
package importable from the checkout root without the editable install.

The fast tests run :func:`hwgen.build.build` with the simulator and the synthesis flow replaced
by stand-ins that call their progress callbacks and write what the real ones write; the RTL
tests run the real ones."""

import copy
import io
import json
import os
import site
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import hwgen.build as hb
from hostile_cases import write_model
from hwgen.boards.report import SynthReport
from hwgen.boards.targets import get_target
from hwgen.cli import default_out, main
from hwgen.progress import StageClock
from hwgen.sw.compiler import compile_onnx
from hwgen.sw.core import ir

ROOT = Path(__file__).resolve().parent.parent
STAGES = ("elaborate", "yosys", "nextpnr-ice40", "icepack", "report")


def fake_verify(verilog, *, vectors, build_dir, progress, **kwargs):
    """The runner's outputs for a design that matches on every vector."""
    build_dir.mkdir(parents=True)
    n = len(vectors)
    progress("build", 0, n)
    progress("simulate", n, n)
    (build_dir / "verify.log").write_text("hwgen RTL verification\n")
    return SimpleNamespace(passed=True, summary=lambda: f"{n}/{n} vectors matched (stand-in)",
                           log_path=build_dir / "verify.log")


def fake_board_build(pipeline, *, target, build_dir, progress, cycles_per_inference, **kwargs):
    """The flow's outputs: a bitstream, its report (the returned one names the bitstream's
    path), each stage announced as it starts."""
    build_dir.mkdir(parents=True)
    for stage in STAGES:
        progress(stage)
    (build_dir / "top.bin").write_bytes(bytes(100))
    total = {f"{k}_total": r.total for k, r in target.resources.items()}
    report = SynthReport(target=target.name, device=target.device, lcs=100, luts=90, ffs=50,
                         ebr=1, spram=0, dsps=0, fmax_mhz=20.0, clock_mhz=target.clock_mhz,
                         cycles_per_inference=cycles_per_inference, rate_basis="clock",
                         bitstream=str(build_dir / "top.bin"), bitstream_bytes=100, build_s=1.0,
                         **total)
    (build_dir / "report.json").write_text(report.to_json())
    return report


@pytest.fixture
def stand_ins(monkeypatch):
    monkeypatch.setattr(hb, "verify", fake_verify)
    monkeypatch.setattr(hb, "board_build", fake_board_build)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_build_folder_honours_the_umask_and_reports_name_model_and_verification(
        tmp_path, stand_ins, umask_022, capsys):
    lines = []
    result = hb.build(write_model(tmp_path / "m.onnx"), out=tmp_path / "a" / "out", n_random=50,
                      log=lines.append)
    out = tmp_path / "a" / "out"
    assert result.out == out
    for folder in (tmp_path / "a", out, out / "synth"):
        assert folder.stat().st_mode & 0o777 == 0o755, folder
    report_txt = (out / "report.txt").read_text()
    assert "model: m.onnx (graph 'hostile')" in report_txt
    assert "verification: 50/50 vectors matched (stand-in)" in report_txt
    assert "logic cells" in report_txt
    assert json.loads((out / "report.json").read_text())["bitstream"] == "top.bin"
    # the flow's copy beside the tool logs names the bitstream from its own folder
    synth = json.loads((out / "synth" / "report.json").read_text())["bitstream"]
    assert synth == "../top.bin" and (out / "synth" / synth).is_file()
    # a line per synthesis stage, with its time; nothing on stderr when the caller logs
    stage_lines = [line.split() for line in lines if line.startswith("  ")]
    assert [s[0] for s in stage_lines] == list(STAGES)
    assert all(s[2] == "s" and float(s[1]) >= 0 for s in stage_lines)
    assert capsys.readouterr().err == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "m.onnx"]


def test_report_txt_without_synthesis(tmp_path, stand_ins):
    hb.build(write_model(tmp_path / "m.onnx"), out=tmp_path / "out", n_random=20, synth=False,
             log=lambda line: None)
    text = (tmp_path / "out" / "report.txt").read_text()
    assert text.splitlines() == ["model: m.onnx (graph 'hostile')",
                                 "verification: 20/20 vectors matched (stand-in)"]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bars_only_on_a_terminal_and_only_without_a_log(tmp_path, stand_ins,
                                                                 monkeypatch, capsys):
    model = write_model(tmp_path / "m.onnx")
    hb.build(model, out=tmp_path / "o1", n_random=20)       # stderr is no terminal here
    assert capsys.readouterr().err == ""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    hb.build(model, out=tmp_path / "o2", n_random=20, log=lambda line: None)
    assert terminal.getvalue() == ""                         # an API caller's log: no bars
    hb.build(model, out=tmp_path / "o3", n_random=20)
    shown = terminal.getvalue()
    assert "verify" in shown and "20/20" in shown and "synthesis (yosys)" in shown


def test_an_interrupted_stage_is_not_reported_as_done():
    lines = []
    with pytest.raises(KeyboardInterrupt):
        with StageClock(lines.append, False) as clock:
            clock("yosys")
            clock("nextpnr-ice40")
            raise KeyboardInterrupt
    assert [line.split()[0] for line in lines] == ["yosys"]


def test_default_out_is_named_after_the_model_not_build():
    assert default_out(Path("nets/model.onnx")) == Path("model_hw")
    assert default_out(Path("build.onnx")) != Path("build")


@pytest.mark.parametrize("args", [["--help"], ["build", "--help"], ["demo", "--help"]])
def test_help_has_examples_and_no_markup(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "``" not in text
    if args[0] != "demo":
        assert "examples:" in text and "hwgen build model.onnx" in text
    if args[0] == "build":
        assert "model_hw" in text
        assert "(B, n_in)" in text and "input type's range" in text


def test_bad_input_is_refused_before_the_hardware_and_simulator_load(tmp_path):
    """``hwgen build`` checks the model, the vectors and --out before importing the engines,
    cocotb or the synthesis flow, so a refusal costs about the compiler's import."""
    (tmp_path / "junk.onnx").write_text("not a model")
    r = subprocess.run([sys.executable, "-c", "import sys\nfrom hwgen.cli import main\n"
                        "code = main(['build', 'junk.onnx'])\n"
                        "print(code, sorted(m for m in ('cocotb', 'hwgen.hw.pipeline', "
                        "'hwgen.sim.runner', 'hwgen.boards.flow', 'hwgen.build') "
                        "if m in sys.modules))"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.stdout.split(None, 1) == ["2", "[]\n"], r.stderr


def test_ir_model_refuses_duplicate_layer_names(tmp_path):
    model = compile_onnx(write_model(tmp_path / "m.onnx"))
    twin = copy.copy(model.layers[1])
    twin.name = model.layers[0].name
    with pytest.raises(ValueError, match=f"layer name {model.layers[0].name} is used by 2"):
        ir.Model(model.in_type, model.n_in, [model.layers[0], twin, *model.layers[2:]]).check()


def _bare_python(code: str, path: list[str], cwd) -> subprocess.CompletedProcess:
    """``code`` in an interpreter that reads no environment, runs no site hook (so no
    editable-install finder) and searches only ``path``."""
    return subprocess.run([sys.executable, "-I", "-S", "-c",
                           f"import sys\nsys.path[:0] = {path!r}\n{code}"],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_checkout_root_imports_every_sub_package_without_the_editable_install(tmp_path):
    """As after a non-editable ``pip install .``: the checkout root first on the path."""
    r = _bare_python("import hwgen.sw.core.ir, hwgen.hw, hwgen.boards, hwgen.sim, hwgen.build\n"
                     "print(hwgen.sw.core.ir.__file__, hwgen.build.__file__)\n"
                     "print([type(f).__module__ for f in sys.meta_path])",
                     [str(ROOT), *site.getsitepackages()], tmp_path)
    assert r.returncode == 0, r.stderr
    files, finders = r.stdout.splitlines()
    assert files.split() == [str(ROOT / "sw" / "core" / "ir.py"), str(ROOT / "hwgen" / "build.py")]
    assert "editable" not in finders


def test_an_installed_copy_keeps_its_own_path(tmp_path):
    """Outside a checkout (no pyproject.toml and sw/core beside it) nothing is added."""
    (tmp_path / "hwgen").mkdir()
    (tmp_path / "hwgen" / "__init__.py").write_text((ROOT / "hwgen" / "__init__.py").read_text())
    r = _bare_python("import hwgen\nprint(hwgen.__path__)", [str(tmp_path)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == repr([str(tmp_path / "hwgen")])


@pytest.mark.rtl
def test_verify_writes_progress_and_names_top_v(tmp_path, small_onnx):
    """The bench counts outputs into the progress file every PROGRESS_EVERY; the log names the
    Verilog file the build folder holds."""
    from hwgen.hw.folding import choose_folding
    from hwgen.hw.pipeline import Pipeline, to_verilog
    from hwgen.sim.bench import PROGRESS_EVERY
    from hwgen.sim.runner import verify
    from hwgen.sw.core import golden

    model = compile_onnx(small_onnx)
    pipeline = Pipeline(model, choose_folding(model, **hb.folding_budget(model, get_target("ice40"))))
    x = hb.random_vectors(model, 1000, 0)
    calls = []
    out_t = model.types()[-1]
    res = verify(to_verilog(pipeline, name="top"), top="top", vectors=x,
                 expected=golden.run(model, x), in_bits=model.in_type.bits, in_signed=False,
                 out_bits=out_t.bits, out_signed=False, n_out=model.n_out,
                 build_dir=tmp_path, in_serial=pipeline.serial_in,
                 progress=lambda *a: calls.append(a))
    assert res.passed
    assert (tmp_path / "top.v").is_file() and not (tmp_path / "design.v").exists()
    assert "design     top.v, top top" in res.log_path.read_text()
    assert (tmp_path / "progress").read_text() == str(1000 // PROGRESS_EVERY * PROGRESS_EVERY)
    assert calls[-1] == ("simulate", 1000, 1000)
    done = [d for stage, d, _ in calls if stage == "simulate"]
    assert done == sorted(done)


@pytest.mark.rtl
def test_default_out_beside_a_setuptools_build_folder(tmp_path, small_onnx):
    """``pip install .`` leaves build/ in the checkout; the default --out does not collide."""
    (tmp_path / "build" / "lib").mkdir(parents=True)
    model = tmp_path / "model.onnx"
    model.write_bytes(small_onnx.read_bytes())
    r = subprocess.run([sys.executable, "-m", "hwgen.cli", "build", "model.onnx", "--no-synth",
                        "--random-vectors", "200"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "build: model_hw" in r.stdout
    assert (tmp_path / "model_hw" / "top.v").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build", "model.onnx", "model_hw"]
