"""Hostile files and arguments for ``hwgen build``: each case makes its files in a folder and
names the command line run there. Every case must end, before any RTL work, with exit code 2,
one line on stderr naming what is wrong, and nothing written. Used by ``tests/test_hostile.py``
(which asserts that) and ``benchmarks/hostile.py`` (which times each case).

The models are small ONNX graphs made with ``onnx.helper``: a 4-bit unsigned input ``Quant``,
a ``MatMul`` by +-1 weights, a batch norm and a ``BipolarQuant``, then a second ``MatMul``
giving the logits; each case spoils one thing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

QONNX_DOMAIN = "qonnx.custom_op.general"
N_IN, N_HIDDEN, N_OUT = 64, 16, 10


def model_parts(n_in: int = N_IN):
    """(nodes, initializers) of the valid chain (module docs)."""
    rng = np.random.default_rng(0)
    inits = {"one": 1.0, "zero": 0.0, "bits": 4.0,
             "w1": np.where(rng.random((n_in, N_HIDDEN)) < 0.5, -1.0, 1.0),
             "gamma": np.ones(N_HIDDEN), "beta": np.zeros(N_HIDDEN),
             "mean": rng.integers(-8, 8, N_HIDDEN) + 0.5, "var": np.ones(N_HIDDEN),
             "w2": np.where(rng.random((N_HIDDEN, N_OUT)) < 0.5, -1.0, 1.0)}
    nodes = [helper.make_node("Quant", ["x", "one", "zero", "bits"], ["xq"], name="quant_in",
                              domain=QONNX_DOMAIN, signed=0, narrow=0, rounding_mode="ROUND"),
             helper.make_node("MatMul", ["xq", "w1"], ["h"], name="fc1"),
             helper.make_node("BatchNormalization", ["h", "gamma", "beta", "mean", "var"],
                              ["hb"], name="bn1", epsilon=0.0),
             helper.make_node("BipolarQuant", ["hb", "one"], ["a1"], name="act1",
                              domain=QONNX_DOMAIN),
             helper.make_node("MatMul", ["a1", "w2"], ["logits"], name="fc2")]
    return nodes, inits


def write_model(path: Path, nodes=None, inits=None, input_dims=("b", N_IN), n_out=N_OUT) -> Path:
    if nodes is None:
        nodes, inits = model_parts()
    graph = helper.make_graph(
        nodes, "hostile", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_dims))],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, ["b", n_out])],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                helper.make_opsetid(QONNX_DOMAIN, 1)])
    m.ir_version = 10
    path.write_bytes(m.SerializeToString())
    return path


def spoiled(path: Path, **values) -> Path:
    """The valid model with some initializers replaced."""
    nodes, inits = model_parts()
    inits.update(values)
    return write_model(path, nodes, inits)


def renamed(path: Path, names: dict[str, str]) -> Path:
    """The valid model with some nodes renamed."""
    nodes, inits = model_parts()
    for n in nodes:
        n.name = names.get(n.name, n.name)
    return write_model(path, nodes, inits)


def _with_nan(name: str, shape) -> np.ndarray:
    nodes, inits = model_parts()
    v = np.array(inits[name], np.float64).reshape(shape)
    v.flat[v.size // 2] = np.nan
    return v


@dataclass
class Case:
    """One hostile command: ``make(folder)`` writes its files and returns the arguments after
    ``hwgen``; the single error line must hold every one of ``needles``. ``hold(folder)``, if
    given, is a context manager held while the command runs (e.g. another build's lock)."""

    name: str
    make: object
    needles: tuple = ()
    hold: object = None
    out: str = "out"


def _build(*args):
    return ["build", *map(str, args)]


def _valid(d: Path) -> Path:
    return write_model(d / "m.onnx")


def _flags(*args):
    """The valid model with these flags."""
    return lambda d: _build(_valid(d), *args)


def _missing(d):
    return _build("absent.onnx", "--out", "out")


def _junk(d, name="junk.onnx", data=b"not a model"):
    (d / name).write_bytes(data)
    return _build(name, "--out", "out")


def _folder_model(d):
    (d / "dir.onnx").mkdir()
    return _build("dir.onnx", "--out", "out")


def _declared(*dims):
    """The valid model whose graph input declares ``dims``."""
    def make(d):
        nodes, inits = model_parts()
        return _build(write_model(d / "m.onnx", nodes, inits, dims), "--out", "out")
    return make


def _relu(d, name="relu"):
    nodes, inits = model_parts()
    nodes.insert(4, helper.make_node("Relu", ["a1"], ["r"], name=name))
    nodes[-1].input[0] = "r"
    return _build(write_model(d / "m.onnx", nodes, inits), "--out", "out")


def _big_for_device(d):
    """A single 1024 x 1024 binary layer: more weight bits than any UP5K folding holds."""
    w = np.where(np.random.default_rng(0).random((1024, 1024)) < 0.5, -1.0, 1.0)
    nodes, inits = model_parts()
    nodes = [nodes[0], helper.make_node("MatMul", ["xq", "w"], ["logits"], name="huge_fc")]
    inits = {"one": 1.0, "zero": 0.0, "bits": 4.0, "w": w}
    return _build(write_model(d / "big.onnx", nodes, inits, ("b", 1024), 1024), "--out", "out")


def _spoiled(**values):
    return lambda d: _build(spoiled(d / "m.onnx", **values), "--out", "out")


def _renamed(**names):
    return lambda d: _build(renamed(d / "m.onnx", names), "--out", "out")


def _not_a_folder(d):
    (d / "file").write_text("a file, not a folder")
    return _build(_valid(d), "--out", "file/out")


def _precious(d):
    (d / "out").mkdir()
    (d / "out" / "thesis.tex").write_text("precious")
    return _build(_valid(d), "--out", "out")


def _symlink_out(d):
    (d / "earlier").mkdir()
    (d / "earlier" / ".hwgen-build").write_text("hwgen build output\n")
    (d / "out").symlink_to("earlier")
    return _build(_valid(d), "--out", "out")


@contextlib.contextmanager
def _held_lock(d: Path):
    """What a running build holds: an exclusive lock on ``.out.lock`` beside ``out``."""
    fd = os.open(d / ".out.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        os.close(fd)
        (d / ".out.lock").unlink(missing_ok=True)


def _stale_lock(d):
    """A lock file left by a killed build blocks nothing: the error is the model's."""
    (d / ".out.lock").write_text("")
    return _junk(d)


def _vectors(d, name="v.npy", array=None, **kwargs):
    """The valid model with ``--vectors name``; ``array`` saved there if given."""
    if array is not None:
        np.save(d / name, array, **kwargs)
    return _build(_valid(d), "--vectors", name, "--out", "out")


def _npz_vectors(d):
    np.savez(d / "v.npz", np.zeros((3, N_IN), np.int64))
    return _vectors(d, "v.npz")


def _header_only_vectors(*shape):
    """A .npy file whose header declares int64 ``shape`` and which holds no data."""
    def make(d):
        with open(d / "v.npy", "wb") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "<i8", "fortran_order": False, "shape": shape})
        return _vectors(d)
    return make


CASES = [
    # the model file
    Case("missing model file", _missing, ("absent.onnx", "no such file")),
    Case("corrupt model file", _junk, ("junk.onnx", "not a valid ONNX model")),
    Case("empty model file", lambda d: _junk(d, "e.onnx", b""), ("e.onnx", "not a valid ONNX")),
    Case("model is a folder", _folder_model, ("dir.onnx", "a folder")),
    Case("unsupported op", _relu, ("relu", "unsupported op Relu")),
    Case("node name with a line break", lambda d: _relu(d, "relu\nsecond line"),
         ("relu\\nsecond line", "Relu")),
    Case("too big for the device", _big_for_device, ("logic cells", "EBR")),
    # declared shapes (defect 4)
    Case("input declares 10^9 elements", _declared("b", 10**9),
         ("1,000,000,000 elements", "65,536", "MAX_INPUT_ELEMENTS")),
    Case("input declares 10^9 elements in three dims", _declared(1, 1000, 1000, 1000),
         ("1,000,000,000 elements", "MAX_INPUT_ELEMENTS")),
    Case("input wider than the first weight", _declared("b", 100),
         ("fc1", "w1 has 64 inputs", "declares 100")),
    # non-finite constants (defect 5)
    Case("NaN weight", _spoiled(w1=_with_nan("w1", (N_IN, N_HIDDEN))), ("initializer w1", "NaN")),
    Case("inf batch-norm variance", _spoiled(var=np.full(N_HIDDEN, np.inf)),
         ("initializer var", "infinite")),
    Case("NaN batch-norm mean", _spoiled(mean=_with_nan("mean", N_HIDDEN)),
         ("initializer mean", "NaN")),
    Case("inf scale", _spoiled(one=np.inf), ("initializer one", "infinite")),
    # node names (defect 6)
    Case("duplicate node names", _renamed(fc2="fc1"), ("node name fc1", "2 nodes")),
    # --out (defect 7)
    Case("--out under /proc", _flags("--out", "/proc/hwgen-test/out"),
         ("/proc/hwgen-test/out", "cannot create the output folder"), out="/proc/hwgen-test/out"),
    Case("--out under /sys", _flags("--out", "/sys/hwgen-test/out"),
         ("/sys/hwgen-test/out", "cannot create the output folder"), out="/sys/hwgen-test/out"),
    Case("--out under a regular file", _not_a_folder, ("file/out", "not a folder"),
         out="file/out"),
    Case("--out is somebody's folder", _precious, ("out", "not an earlier hwgen build")),
    Case("--out is a symbolic link", _symlink_out, ("out", "symbolic link")),
    # a second build into the same --out (defect 9)
    Case("--out locked by a running build", _flags("--out", "out"),
         ("out", "another hwgen build"), hold=_held_lock),
    Case("stale lock file", _stale_lock, ("junk.onnx", "not a valid ONNX model")),
    # --vectors
    Case("vectors out of range", lambda d: _vectors(d, array=np.full((3, N_IN), 99)),
         ("v.npy", "[0, 15]")),
    Case("vectors of the wrong width", lambda d: _vectors(d, array=np.zeros((3, 7), np.int64)),
         ("v.npy", f"(B, {N_IN})")),
    Case("float vectors", lambda d: _vectors(d, array=np.zeros((3, N_IN))), ("v.npy", "float64")),
    Case("pickled vectors", lambda d: _vectors(d, array=np.array([{"a": 1}] * 3, dtype=object),
                                               allow_pickle=True), ("v.npy", "object")),
    Case("vectors as .npz", _npz_vectors, ("v.npz", "not a .npy array")),
    Case("vectors header declares 10^9 rows", _header_only_vectors(10**9, N_IN),
         ("v.npy", "MAX_VECTOR_ELEMENTS")),
    Case("truncated vectors", _header_only_vectors(5, N_IN), ("v.npy", "truncated")),
    Case("missing vectors file", lambda d: _vectors(d, "absent.npy"),
         ("absent.npy", "no such file")),
    # flags
    Case("--random-vectors 10^9", _flags("--random-vectors", 10**9, "--out", "out"),
         ("--random-vectors", "MAX_VECTOR_ELEMENTS")),
    Case("nothing to verify", _flags("--random-vectors", 0, "--out", "out"),
         ("nothing to verify",)),
    Case("negative --seed", _flags("--seed", -1, "--out", "out"), ("--seed", "non-negative")),
    Case("negative --random-vectors", _flags("--random-vectors", -5),
         ("--random-vectors", "non-negative")),
    Case("unknown target", _flags("--target", "nosuchboard"), ("nosuchboard", "ice40")),
    Case("unknown flag", _flags("--frobnicate"), ("--frobnicate",)),
]
