"""The shape of the code (docs/architecture.md): imports run one way with no circle, no module
imports another's private name, nothing is deferred into a function but the CLI's commands, no
source file is over 600 lines, and the compiler and ``hwgen build`` import no PyTorch."""

import ast
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Package name -> folder, as pyproject.toml's package-dir maps them.
PACKAGES = {"hwgen": "hwgen", "hwgen.sw": "sw", "hwgen.hw": "hw", "hwgen.sim": "sim",
            "hwgen.boards": "boards"}
MAX_LINES = 600
#: Modules that may import hwgen modules inside a function: the command line, so that
#: ``hwgen --help`` and a wrong flag answer without loading onnx, Amaranth or PyTorch.
DEFERRED_OK = {"hwgen.cli"}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    package = {folder: name for name, folder in PACKAGES.items()}[rel.parts[0]]
    rest = list(rel.with_suffix("").parts[1:])
    if rest and rest[-1] == "__init__":
        rest.pop()
    return ".".join([package, *rest])


def source_files() -> list[Path]:
    return sorted(p for folder in PACKAGES.values() for p in (ROOT / folder).rglob("*.py"))


MODULES = {module_name(p): p for p in source_files()}


def resolve(name: str) -> str | None:
    """The module (of this checkout) that an imported dotted name is or lives in."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(path: Path):
    """(imported module, names, line, inside a function) for each import of a hwgen module."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    functions = [n for n in ast.walk(tree)
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    deferred = {id(n) for f in functions for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("hwgen"):
                    yield alias.name, [], node.lineno, id(node) in deferred
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            if base.startswith("hwgen"):
                names = [a.name for a in node.names]
                yield base, names, node.lineno, id(node) in deferred


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of this checkout it imports (a ``from package import module``
    counts as importing that module, not the package)."""
    edges = defaultdict(set)
    for name, path in MODULES.items():
        for base, names, _, _ in imports(path):
            targets = [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES]
            if len(targets) < len(names) or not names:
                targets.append(base)
            for t in targets:
                target = resolve(t)
                if target is not None and target != name:
                    edges[name].add(target)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return out


def test_the_walk_sees_the_code():
    """The checks below look at every package, and see real imports."""
    assert {"hwgen.sw.core.ir", "hwgen.sw.compiler", "hwgen.hw.pipeline", "hwgen.sim.runner",
            "hwgen.boards.flow", "hwgen.build", "hwgen.cli"} <= set(MODULES)
    edges = import_graph()
    assert "hwgen.sw.core.ir" in edges["hwgen.hw.pipeline"]
    assert "hwgen.hw.pipeline" in edges["hwgen.build"]


def test_no_import_circle():
    edges = import_graph()
    assert cycles(edges) == []
    # nor between the folders: sw, hw, sim, boards and the application import one way
    folder = {name: name.split(".")[1] if name.count(".") else "app" for name in MODULES}
    folder = {n: ("app" if f in ("build", "cli", "demo") else f) for n, f in folder.items()}
    folders = defaultdict(set)
    for a, bs in edges.items():
        folders[folder[a]] |= {folder[b] for b in bs if folder[b] != folder[a]}
    assert cycles(folders) == []


def test_a_circle_is_found():
    """The cycle finder itself: a circle of three behind a chain is found, a chain is not."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"d"}, "d": {"b"}}) == [["b", "c", "d"]]
    assert cycles({"a": {"b"}, "b": {"c"}}) == []


def test_no_private_name_imported_across_modules():
    private = [f"{path.relative_to(ROOT)}:{line}: {n}"
               for path in source_files() for _, names, line, _ in imports(path)
               for n in names if n.startswith("_") and not n.startswith("__")]
    assert private == []


def test_nothing_deferred_into_a_function():
    deferred = [f"{path.relative_to(ROOT)}:{line}: {base}"
                for path in source_files() if module_name(path) not in DEFERRED_OK
                for base, _, line, inside in imports(path) if inside]
    assert deferred == []


@pytest.mark.parametrize("package, allowed", [
    # the bottom: the IR, the golden model, level arithmetic
    ("hwgen.sw.core", ("hwgen.sw.core",)),
    ("hwgen.sw.compiler", ("hwgen.sw.core", "hwgen.sw.compiler")),
    # hardware imports only the IR of the software side
    ("hwgen.hw", ("hwgen.hw", "hwgen.sw.core.ir")),
    ("hwgen.sim", ("hwgen.sim",)),
    ("hwgen.boards", ("hwgen.boards", "hwgen.hw")),
    ("hwgen.sw.families", ("hwgen.sw.core", "hwgen.sw.families")),
])
def test_imports_run_one_way(package, allowed):
    wrong = [f"{path.relative_to(ROOT)}:{line}: {base}"
             for name, path in MODULES.items() if name == package or name.startswith(package + ".")
             for base, names, line, _ in imports(path)
             for target in ([f"{base}.{n}" for n in names] or [base])
             if not any(target == a or target.startswith(a + ".") for a in allowed)]
    assert wrong == []


def test_pyproject_lists_every_package():
    """A package missing from pyproject's list would be left out of ``pip install .``."""
    text = (ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(hwgen(?:\.\w+)*)"', text.split("packages = [", 1)[1].split("]")[0]))
    found = {module_name(p) for p in source_files() if p.name == "__init__.py"}
    assert listed == found


def test_no_source_file_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in source_files()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


BLOCK_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, NoTorch())
"""


def run_python(code: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_the_torch_block_works():
    r = run_python(BLOCK_TORCH + "import torch")
    assert r.returncode != 0 and "torch is blocked in this test" in r.stderr


def test_compiler_hardware_and_build_import_no_torch():
    r = run_python(BLOCK_TORCH + "import hwgen.sw.compiler, hwgen.sw.core.golden, "
                   "hwgen.hw.folding, hwgen.hw.pipeline, hwgen.sim.runner, hwgen.boards.flow, "
                   "hwgen.build\nprint(sorted(m for m in sys.modules if m.startswith('torch')))")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_help_loads_no_heavy_package():
    """``hwgen --help`` answers from the parser alone: no onnx, PyTorch, cocotb or engines."""
    r = run_python("import sys\nfrom hwgen.cli import main\ntry:\n    main(['--help'])\n"
                   "except SystemExit as e:\n    assert e.code == 0\n"
                   "print(sorted(m for m in ('onnx', 'torch', 'cocotb', 'hwgen.hw.pipeline', "
                   "'hwgen.sw.compiler') if m in sys.modules))")
    assert r.returncode == 0, r.stderr
    assert "usage: hwgen" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.rtl
def test_build_without_torch(small_onnx, tmp_path):
    """``hwgen build --no-synth`` compiles, generates and verifies a model in a process in
    which importing torch raises."""
    out = tmp_path / "build"
    r = run_python(BLOCK_TORCH + "from hwgen.cli import main\n"
                   f"sys.exit(main(['build', {str(small_onnx)!r}, '--no-synth', "
                   f"'--random-vectors', '300', '--out', {str(out)!r}]))")
    assert r.returncode == 0, r.stderr
    assert "300/300 vectors matched" in r.stdout
    assert (out / "ir.json").is_file() and (out / "top.v").is_file()
