"""This project's ops (domain :data:`hwgen.sw.core.onnx_ops.HWGEN_DOMAIN`) that become layers of
their own: ``SumAndMax`` (a ``sam`` layer, seed 002) and ``QAMSlicer`` (a ``qam_slicer``,
seed 000)."""

from __future__ import annotations

import numpy as np

from hwgen.sw.core import ir

from .dense import OpenDense
from .exact import exact, is_rational, sign
from .graph import CompileError, Graph, attr, node_name
from .quantized import Quantized, one_value

__all__ = ["integers", "sum_and_max", "qam_slicer"]


def integers(v: np.ndarray, step, what: str, node) -> np.ndarray:
    """``v / step`` as int64 (``step`` exact), or a CompileError when some value is not exactly
    on the grid."""
    values, where = np.unique(v, return_inverse=True)
    codes = [exact(u) / step for u in values]
    if not all(is_rational(c) and c.denominator == 1 for c in codes):
        raise CompileError(f"node {node_name(node)}: {what} is not a multiple of the input "
                           f"step {float(step):g}, so x + w is no integer add")
    return np.array([int(c) for c in codes], np.int64)[where.reshape(v.shape)]


def _one_step(x: Quantized, name: str):
    """The one positive scale of an integer tensor with no offset, or a CompileError."""
    step = x.one_scale()
    if step is None or sign(step) <= 0 or any(sign(v) != 0 for v in x.beta) or \
            not is_rational(step):
        raise CompileError(f"node {name}: its input needs one positive scale and no offset")
    return step


def sum_and_max(node, g: Graph, x: Quantized) -> ir.SAMLayer:
    """The ``sam`` layer of a ``SumAndMax`` node on integers of one scale (module docs)."""
    name = node_name(node)
    step = _one_step(x, name)
    w, fill = g.const(node, 1), g.const(node, 2)
    reduces = [r.decode() if isinstance(r, bytes) else r for r in attr(node, "reduces", [])]
    signs = list(attr(node, "signs", []))
    if w.ndim != 3 or w.shape[2] != x.n or fill.shape != w.shape[:2] or \
            len(reduces) != len(w) or len(signs) != len(w):
        raise CompileError(f"node {name}: needs weights (terms, m, {x.n}), fill (terms, m) and "
                           "one reduce and sign per term")
    terms = []
    for k, (reduce, sign) in enumerate(zip(reduces, signs)):
        if reduce not in ir.SAM_REDUCES or sign not in (1, -1):
            raise CompileError(f"node {name}: term {k} must reduce by max or min with sign "
                               f"+-1, not {reduce!r}, {sign!r}")
        keep = np.isfinite(w[k])
        never = np.inf if reduce == "max" else -np.inf
        if np.any(w[k] == never) or np.isnan(w[k]).any():
            raise CompileError(f"node {name}: term {k} holds {never} or NaN weights; a pruned "
                               f"entry of a {reduce} term is {-never}")
        codes = integers(np.where(keep, w[k], 0.0), step, f"a weight of term {k}", node)
        empty = ~keep.any(axis=1)
        fills = integers(np.where(empty, fill[k], 0.0), step, f"a fill of term {k}", node)
        terms.append(ir.SAMTerm(reduce, int(sign), codes, keep, fills))
    return ir.SAMLayer(name=name, n=x.n, terms=terms)


def qam_slicer(node, g: Graph, x: Quantized | None, open_dense: OpenDense | None,
                layers: list) -> tuple[ir.QAMSlicer, Quantized]:
    """The ``qam_slicer`` layer of a ``QAMSlicer`` node (module docs), and its output tensor;
    a ``dense_mac`` layer open in front of it is closed into ``layers`` first."""
    name = node_name(node)
    order, delta = int(attr(node, "order", 0)), float(attr(node, "delta", 1.0))
    if open_dense is not None:
        step = one_value(open_dense.a)
        if not open_dense.layer.has_bias or step is None or sign(step) <= 0 or \
                not is_rational(step):
            raise CompileError(f"node {name}: a QAMSlicer can follow a layer of Quant weights "
                               "with one positive scale, or an integer tensor")
        layers.append(open_dense.close_at_output())
        in_type = layers[-1].acc_type(open_dense.in_type)
        n = len(open_dense.a)
    elif x is not None and x.type.is_integer:
        n, step = x.n, _one_step(x, name)
        in_type = x.type
    else:
        raise CompileError(f"node {name}: QAMSlicer must follow an integer tensor or a layer "
                           "of Quant weights")
    if n % 2:
        raise CompileError(f"node {name}: a QAM slicer takes complex elements in block layout "
                           f"(real parts, then imaginary parts), so an even width, not {n}")
    try:
        layer = ir.QAMSlicer.for_grid(name, n // 2, order, delta, step, output="value")
    except ValueError as e:             # its message starts with the node's name
        raise CompileError(f"node {e}") from None
    return layer, Quantized(layer.out_type(in_type), n, exact(delta) / (layer.levels - 1))
