"""Random models through every family's front end and export, with their PyTorch answers, and
the checks of the fuzz tier (``tests/test_fuzz.py``, ``benchmarks/fuzz.py``).

A model is described by a *spec*, a small JSON-able dict of choices (family, widths, bits, the
mode of each layer's weights and batch norm, a seed for the random arrays); :func:`build` turns
a spec into a :class:`FuzzCase` deterministically, so a spec is a complete reproducer::

    from fuzz_models import build, check
    print(check(build({...})))

Specs are drawn by :func:`draw_spec` through a :class:`Draw`: Hypothesis's ``draw`` in the tests
(shrinking works on the choices), a seeded NumPy generator in the benchmark. Parameters are set
directly, no training: weights random and extreme (all +1, all -1, all 0, +-100, +-1e-8, odd
states without +-1, exact levels and midpoints), batch norm with negative or zero gamma,
running variance 0, 1e-7 or 1e8, or set so that its exact output lands on the next quantizer's
boundary for one of the vectors; input maxima like 100 with inputs at exact half levels; one
output class. Vectors: all-min, all-max, alternating, random, and inputs on the first
quantizer's exact boundaries.

:func:`check` compiles the model and compares, per vector, the golden model with the exact
reference (:mod:`exact_reference`) and PyTorch with both; a PyTorch difference counts as a
float tie only where the exact reference shows a quantizer input exactly on a boundary.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import onnx
import torch
from torch import nn

import exact_reference
from hwgen.sw.compiler import CompileError, compile_onnx
from hwgen.sw.core import golden, ir
from hwgen.sw.families.binary.layers import BinaryMLP
from hwgen.sw.families.compression.lower import lower as minmax_lower
from hwgen.sw.families.constellation.complex_nn import ComplexLinear
from hwgen.sw.families.constellation.lower import lower as qam_lower, slicer_only
from hwgen.sw.families.export import exporter_for
from hwgen.sw.families.mbbn.layers import MBBNMLP, QuantMLP, decompose, levels
from hwgen.sw.families.sam.layers import SAMLinear, count_activations, prune
from hwgen.sw.families.sam.lower import InputGrid, lower as sam_lower
from hwgen.sw.families.shift.aqe import AQE, MINWMLP, STE, power_of_two
from hwgen.sw.families.train import predict

__all__ = ["FAMILIES", "DOCUMENTED_REFUSALS", "Draw", "RandomDraw", "draw_spec", "build",
           "FuzzCase", "Outcome", "check", "input_range", "vectors"]

FAMILIES = ("binary", "mbbn", "quant", "decomposed", "minw", "sam", "qam", "slicer", "minmax")

#: One-line CompileError messages that name a documented limit, not a defect: (substring,
#: where it is documented). A refusal of a model our front ends made that matches none of
#: these is a failure.
DOCUMENTED_REFUSALS: tuple[tuple[str, str], ...] = (
    ("more than the 2^15 a shift layer takes",
     "sw/core/dense_shift.py (weights 0 or +-2^e, e in 0..15) and sw/compiler/dense.py: a "
     "MINW-Net of 6 or more weight bits whose weights use levels more than 2^15 apart"),
)

WEIGHT_MODES = ("random", "random", "ones", "minus_ones", "zeros", "big", "tiny", "mixed")
STATE_MODES = ("random", "random", "ones", "minus_ones", "max", "min", "no_unit", "extreme")
POW2_MODES = WEIGHT_MODES + ("levels", "no_unit")
BN_MODES = ("random", "random", "neg_gamma", "zero_gamma", "var0", "var_tiny", "var_huge", "tie",
            "near_tie")
#: Families where the first batch norm's input is exact in float64 on any vector, so that its
#: mean can be set to put the output exactly on the next quantizer's boundary ("tie"), or
#: within about 1e-10 of it but not on it ("near_tie").
BN_TIE_FAMILIES = ("binary", "mbbn", "minw")


class Draw:
    """Where the choices of a spec come from: ``int(lo, hi)`` (inclusive) and ``choice``."""

    def int(self, lo: int, hi: int) -> int:
        raise NotImplementedError

    def choice(self, options):
        return options[self.int(0, len(options) - 1)]

    def width(self) -> int:
        """1..40, small widths and 1 more often than uniform."""
        return self.choice((1, 2, 3, self.int(1, 8), self.int(1, 40), self.int(1, 40)))


class RandomDraw(Draw):
    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def int(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))


def draw_spec(d: Draw, family: str | None = None) -> dict:
    """A random spec (module docs) of ``family``, or of a random family."""
    family = family or d.choice(FAMILIES)
    n_layers = d.int(1, 4)
    spec = {"family": family, "seed": d.int(0, 2 ** 31 - 1), "n_in": d.width(),
            "hidden": [d.width() for _ in range(n_layers - 1)],
            "n_classes": d.choice((1, 2, 10, d.width())), "log_scale": d.choice((-2.0, 0.0, 1.5))}
    n = n_layers
    if family == "binary":
        spec.update(in_bits=d.int(1, 8), weights=[d.choice(WEIGHT_MODES) for _ in range(n)])
    elif family in ("mbbn", "quant", "decomposed"):
        spec.update(bits=[[d.choice((1, 2, 2, 3, 4, d.int(1, 8))), d.choice((1, 2, 3, 3, 4))]
                          for _ in range(n)],
                    in_max=d.choice((1.0, 15.0, 16.0, 100.0, 100.0, 255.0, 7.5, 100.5,
                                     float(d.int(1, 255)))),
                    weights=[d.choice(STATE_MODES) for _ in range(n)],
                    t=[d.choice((1.0, 0.5, 2.0, 0.3, 3.0, 1e-3)) for _ in range(2 * n)])
    elif family == "minw":
        spec.update(act_bits=d.choice((1, 2, 3, 4, d.int(1, 6))),
                    weight_bits=d.choice((1, 2, 3, 4, d.int(1, 6))),
                    quantize_input=d.choice((False, True)),
                    in_max=d.choice((1, 16, 100, 100, 255, d.int(1, 255))),
                    estimator=d.choice(("STE", "AQE")),
                    weights=[d.choice(POW2_MODES) for _ in range(n)])
    elif family == "sam":
        spec.update(form=d.choice(("max+min", "max-max", "max")),
                    grid_bits=d.int(2, 8), clip_log2=d.int(-2, 6), weight_bits=d.int(2, 8),
                    std=d.choice((0.5, 4.0, 100.0, 1e-8)), prune=d.choice((0.0, 0.0, 0.05, 0.3)),
                    weights=d.choice(("random", "random", "zeros", "tiny", "big")),
                    out_weights=d.choice(("random", "random", "big", "tiny", "ones")))
        spec["hidden"] = spec["hidden"][:1] or [d.width()]
    elif family in ("qam", "slicer"):
        order = d.choice((4, 16, 64, 256))
        m = math.isqrt(order)
        spec.update(order=order, delta=d.choice((1.0, float(m - 1), (m - 1) / 2, 0.75, 0.3, 3.0)),
                    signed=d.choice((True, False)), in_bits=d.int(2, 8),
                    step_log2=d.int(-4, 2), real_input=d.choice((True, False)),
                    weight_bits=d.int(2, 8), weights=d.choice(("random", "big", "tiny", "ones")),
                    bias=d.choice((True, False)))
        spec["n_in"] = spec["n_in"] if family == "qam" else d.int(1, 20)
        spec["n_classes"] = d.int(1, 20)       # complex outputs of the layer
    elif family == "minmax":
        spec.update(k=d.int(1, 8), signed=d.choice((True, False)), in_bits=d.int(2, 8),
                    step_log2=d.int(-4, 2), act_bits=d.int(2, 8), act_step_log2=d.int(-6, 1),
                    keep=d.choice((1.0, 1.0, 0.5, 0.1)),
                    weights=[d.choice(("random", "random", "big", "tiny", "mixed"))
                             for _ in range(n)])
    if family in ("binary", "mbbn", "quant", "decomposed", "minw"):
        spec["bn"] = [d.choice(BN_MODES) for _ in spec["hidden"]]
        spec["bn_scale"] = d.choice((1.0, 10.0, 100.0, 1000.0))
    return spec


# ---------------------------------------------------------------------------------------------
# parameters


def real_values(mode: str, shape, rng: np.random.Generator) -> np.ndarray:
    """Real weights of one mode: random in [-1, 1], all +1, -1, 0, +-100, +-1e-8, or a mix."""
    signs = rng.choice((-1.0, 1.0), shape)
    table = {"random": lambda: rng.uniform(-1, 1, shape), "ones": lambda: np.ones(shape),
             "minus_ones": lambda: -np.ones(shape), "zeros": lambda: np.zeros(shape),
             "big": lambda: 100 * signs, "tiny": lambda: 1e-8 * signs,
             "mixed": lambda: rng.choice((0.0, 1.0, -1.0, 100.0, -100.0, 1e-8, -1e-8, 0.3),
                                         shape)}
    return table[mode]()


def odd_states(mode: str, shape, bits: int, rng: np.random.Generator) -> np.ndarray:
    """K-bit odd states of one mode; ``no_unit``: none is +-1 (e.g. only +-3, +-5 at K = 3)."""
    top = levels(bits)
    if mode == "no_unit" and bits >= 2:
        return rng.choice(np.arange(3, top + 1, 2), shape) * rng.choice((-1, 1), shape)
    table = {"ones": 1, "minus_ones": -1, "max": top, "min": -top}
    if mode in table:
        return np.full(shape, table[mode])
    if mode == "extreme":
        return top * rng.choice((-1, 1), shape)
    return 2 * rng.integers(0, top + 1, shape) - top


def pow2_values(mode: str, shape, bits: int, rng: np.random.Generator) -> np.ndarray:
    """Real weights for MINW-Net: a real mode, or ``levels`` (eq. 22's levels and midpoints
    exactly) or ``no_unit`` (levels of magnitude below 1 only)."""
    if mode not in ("levels", "no_unit"):
        return real_values(mode, shape, rng)
    h = power_of_two(max(bits, 2))
    pool = [m for m in h.magnitudes if m > 0] + list(h.thresholds)
    if mode == "no_unit":
        pool = [m for m in h.magnitudes if 0 < m < 1] or [0.0]
    return rng.choice(pool, shape) * rng.choice((-1.0, 1.0), shape)


def set_bn(bn: nn.BatchNorm1d, mode: str, scale: float, rng: np.random.Generator,
           pre_bn: np.ndarray | None = None, target: float = 0.0) -> None:
    """Batch-norm statistics of one mode (module docs). ``tie`` (given ``pre_bn``, the exact
    input of this batch norm on one vector) makes its output exactly ``target`` on that vector:
    ``var + eps`` a square and every value dyadic."""
    n = bn.num_features
    gamma, beta = rng.uniform(-2, 2, n), rng.uniform(-1, 1, n)
    mean, var = rng.uniform(-1, 1, n) * scale, rng.uniform(0.05, 2, n) * scale ** 2
    if mode == "neg_gamma":
        gamma = -np.abs(gamma) - 0.01
    elif mode == "zero_gamma":
        gamma = np.where(rng.random(n) < 0.5, 0.0, gamma)
    elif mode == "var0":
        var = np.zeros(n)
    elif mode == "var_tiny":
        var = np.full(n, 1e-7)
    elif mode == "var_huge":
        var = np.full(n, 1e8)
    elif mode == "tie" and pre_bn is not None:
        bn.eps = 2.0 ** -16
        r = 2.0 ** rng.integers(-2, 3, n).astype(float)
        gamma = rng.choice((-1.0, 1.0), n) * 2.0 ** rng.integers(-2, 3, n)
        beta = rng.integers(-4, 5, n) / 4.0
        var = r * r - bn.eps
        # gamma (pre - mean) / r + beta = target
        mean = pre_bn - (target - beta) * r / gamma
    elif mode == "near_tie" and pre_bn is not None:
        # eps alone under the root too: a float64 eps against the graph's float32 one showed here
        var = (var, np.zeros(n), np.full(n, 1e-7))[int(rng.integers(3))]
        gamma = rng.choice((-1.0, 1.0), n) * 2.0 ** rng.integers(-2, 3, n)
        beta, mean = _near_tie(pre_bn, gamma, np.sqrt(var.astype(np.float32).astype(float)
                                                      + np.float32(bn.eps)), target, rng)
    with torch.no_grad():
        for p, v in ((bn.weight, gamma), (bn.bias, beta), (bn.running_mean, mean),
                     (bn.running_var, var)):
            p.copy_(torch.as_tensor(v, dtype=p.dtype))


def _near_tie(pre, gamma, root, target, rng, tries: int = 4096):
    """float32 ``beta`` and ``mean`` per channel with ``gamma (pre - mean) / root + beta`` as
    close to ``target`` as a search of ``tries`` betas finds, but (``root`` irrational) not on
    it: ``mean = pre - (target - beta) root / gamma`` rounded to float32, the best over betas
    whose distance is still 1e-12 (relative) or more, far above float64's rounding (so PyTorch
    must get it right) and far below the 1e-9 a float threshold would snap."""
    beta_out, mean_out = np.empty(len(pre)), np.empty(len(pre))
    for j in range(len(pre)):
        start = np.float32(rng.uniform(-1, 1))
        betas = start + np.arange(tries, dtype=np.float32) * np.spacing(np.float32(2.0))
        ideal = pre[j] - (target - betas.astype(float)) * root[j] / gamma[j]
        means = ideal.astype(np.float32)
        miss = np.abs(means.astype(float) - ideal)
        best = int(np.argmin(np.where(miss >= 1e-12 * (abs(pre[j]) + 1), miss, np.inf)))
        beta_out[j], mean_out[j] = betas[best], means[best]
    return beta_out, mean_out


def _first_bn_input(net: nn.Module, bn: nn.BatchNorm1d, x: np.ndarray) -> np.ndarray:
    """The float64 input of ``bn`` when ``net`` runs on the one vector ``x``."""
    seen = []
    handle = bn.register_forward_hook(lambda m, i, o: seen.append(i[0].detach().clone()))
    try:
        with torch.no_grad():
            net.double()(torch.as_tensor(x[None], dtype=torch.float64))
    finally:
        handle.remove()
        net.float()
    return seen[0][0].numpy()


def _set_bns(spec, net, bns, rng, tie_vector, target: float) -> None:
    for i, (bn, mode) in enumerate(zip(bns, spec["bn"])):
        pre = None
        if mode in ("tie", "near_tie") and i == 0 and spec["family"] in BN_TIE_FAMILIES:
            set_bn(bn, "random", spec["bn_scale"], rng)
            pre = _first_bn_input(net, bn, tie_vector)
        set_bn(bn, mode, spec["bn_scale"], rng, pre, target)


# ---------------------------------------------------------------------------------------------
# the models


@dataclass
class FuzzCase:
    """A built spec: its ONNX model, PyTorch's answer ``torch_outputs(codes) -> (B, n_out)``
    int64 (the class as one column, or the slicer's level indices), and its vectors."""

    spec: dict
    onnx: onnx.ModelProto
    torch_outputs: Callable[[np.ndarray], np.ndarray]
    vectors: np.ndarray
    tie_values: list[int] = field(default_factory=list)


def _classes(net: nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    net.eval()
    return lambda x: predict(net, x)[:, None]


def _encoded_mlp(spec: dict, rng, tie_vector) -> nn.Module:
    cls = MBBNMLP if spec["family"] == "mbbn" else QuantMLP
    net = cls(spec["n_in"], spec["hidden"], spec["n_classes"], bits=spec["bits"],
              in_max=spec["in_max"])
    with torch.no_grad():
        for i, (layer, mode) in enumerate(zip(net.layers, spec["weights"])):
            (m_bits, k_bits), shape = spec["bits"][i], (layer.out_features, layer.in_features)
            states = odd_states(mode, shape, k_bits, rng)
            if cls is MBBNMLP:
                u = (states + levels(k_bits)) // 2
                digits = np.stack([2.0 * ((u >> k) & 1) - 1 for k in range(k_bits)])
                layer.weight.copy_(torch.as_tensor(digits * rng.choice((1.0, 100.0, 1e-8))))
            else:
                layer.weight_quant.t.fill_(spec["t"][2 * i])
                if i > 0:
                    layer.act.t.fill_(spec["t"][2 * i + 1])
                t = float(layer.weight_quant.range())
                w = states * t / levels(k_bits) if mode != "random" else \
                    rng.uniform(-1.5, 1.5, shape) * t
                layer.weight.copy_(torch.as_tensor(w))
        net.log_scale.fill_(spec["log_scale"])
    net.eval()
    _set_bns(spec, net, net.bns, rng, tie_vector, 0.0)
    return decompose(net) if spec["family"] == "decomposed" else net


def _minw(spec: dict, rng, tie_vector) -> nn.Module:
    est = STE() if spec["estimator"] == "STE" else AQE(0.5)
    net = MINWMLP(spec["n_in"], tuple(spec["hidden"]), spec["n_classes"], in_max=spec["in_max"],
                  act_bits=spec["act_bits"], weight_bits=spec["weight_bits"], estimator=est,
                  quantize_input=spec["quantize_input"])
    with torch.no_grad():
        for layer, mode in zip((*net.layers, net.head), spec["weights"]):
            layer.weight.copy_(torch.as_tensor(pow2_values(mode, tuple(layer.weight.shape),
                                                           spec["weight_bits"], rng)))
        net.log_scale.fill_(spec["log_scale"])
    net.eval()
    h = power_of_two(max(2, spec["act_bits"]))
    target = 0.0 if spec["act_bits"] == 1 else float(rng.choice(h.thresholds))
    _set_bns(spec, net, net.bns, rng, tie_vector, target * float(rng.choice((-1, 1))))
    return net


def _binary(spec: dict, rng, tie_vector) -> nn.Module:
    net = BinaryMLP(spec["n_in"], tuple(spec["hidden"]), spec["n_classes"],
                    in_bits=spec["in_bits"])
    with torch.no_grad():
        for lin, mode in zip([b["linear"] for b in net.blocks] + [net.head], spec["weights"]):
            lin.weight.copy_(torch.as_tensor(real_values(mode, tuple(lin.weight.shape), rng)))
        net.log_scale.fill_(spec["log_scale"])
    net.eval()
    _set_bns(spec, net, [b["bn"] for b in net.blocks], rng, tie_vector, 0.0)
    return net


def _sam(spec: dict, rng):
    hidden = SAMLinear(spec["n_in"], spec["hidden"][0], form=spec["form"])
    out = nn.Linear(spec["hidden"][0], spec["n_classes"])
    grid = InputGrid(spec["grid_bits"], 2.0 ** spec["clip_log2"])
    with torch.no_grad():
        for w in hidden.term_weights():
            w.copy_(torch.as_tensor(real_values(spec["weights"], tuple(w.shape), rng)
                                    * spec["std"]))
        out.weight.copy_(torch.as_tensor(real_values(spec["out_weights"],
                                                     tuple(out.weight.shape), rng)))
        out.bias.copy_(torch.as_tensor(rng.uniform(-1, 1, spec["n_classes"])))
    if spec["prune"]:
        t = grid.type
        x = torch.as_tensor(rng.integers(t.lo, t.hi + 1, (64, spec["n_in"])) * grid.step,
                            dtype=torch.float32)
        hidden = prune(hidden, count_activations(hidden, x), spec["prune"])
    net = sam_lower(hidden, out, grid=grid, weight_bits=spec["weight_bits"])
    return net, lambda x: net(torch.as_tensor(x)).argmax(dim=1).numpy()[:, None]


def _in_type(spec: dict) -> ir.TensorType:
    return ir.TensorType("signed" if spec["signed"] else "unsigned", spec["in_bits"])


def _qam(spec: dict, rng):
    kw = dict(order=spec["order"], delta=spec["delta"], in_type=_in_type(spec),
              in_step=2.0 ** spec["step_log2"])
    if spec["family"] == "slicer":
        net = slicer_only(spec["n_in"], **kw)
    else:
        lin = ComplexLinear(spec["n_in"], spec["n_classes"], bias=spec["bias"])
        with torch.no_grad():
            shape = tuple(lin.weight.shape)
            lin.weight.copy_(torch.complex(
                torch.as_tensor(real_values(spec["weights"], shape, rng)),
                torch.as_tensor(real_values(spec["weights"], shape, rng))))
            if lin.bias is not None:
                lin.bias.copy_(torch.complex(*(torch.as_tensor(rng.uniform(-2, 2, len(lin.bias)))
                                               for _ in range(2))))
        net = qam_lower(lin, real_input=spec["real_input"], weight_bits=spec["weight_bits"],
                        **kw)
    return net, lambda x: net.codes(torch.as_tensor(x)).numpy().astype(np.int64)


def _minmax(spec: dict, rng):
    widths = (spec["n_in"], *spec["hidden"], spec["n_classes"])
    linears, masks = [], []
    for i, mode in enumerate(spec["weights"]):
        lin = nn.Linear(widths[i], widths[i + 1])
        w = real_values(mode, tuple(lin.weight.shape), rng)
        keep = rng.random(w.shape) < spec["keep"]
        two = rng.permutation(keep.size)[:2]
        keep.reshape(-1)[two] = True            # two kept weights, unequal where there are two
        if len(two) == 2 and w.reshape(-1)[two[0]] == w.reshape(-1)[two[1]]:
            w.reshape(-1)[two[1]] = -w.reshape(-1)[two[0]] or 1.0
        # a bias of the size of a sum of the layer's products (else its code overflows float32)
        step = 2.0 ** (spec["step_log2"] if i == 0 else spec["act_step_log2"])
        bits = spec["in_bits"] if i == 0 else spec["act_bits"]
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(w))
            lin.bias.copy_(torch.as_tensor(rng.uniform(-1, 1, widths[i + 1])
                                           * np.abs(w).max() * step * 2 ** bits))
        linears.append(lin)
        masks.append(keep)
    net = minmax_lower(linears, k=spec["k"], masks=masks, in_type=_in_type(spec),
                       in_step=2.0 ** spec["step_log2"], act_bits=spec["act_bits"],
                       act_step=2.0 ** spec["act_step_log2"])
    return net, lambda x: net.torch_predict(x).astype(np.int64)[:, None]


def input_range(model: onnx.ModelProto) -> tuple[int, int]:
    """The input codes' range, from the graph input's ``Quant`` (bits, signed, narrow)."""
    first = next(n for n in model.graph.node if model.graph.input[0].name in n.input)
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    bits = int(inits[first.input[3]])
    att = {a.name: onnx.helper.get_attribute_value(a) for a in first.attribute}
    if att.get("signed", 1):
        return -(1 << (bits - 1)) + att.get("narrow", 0), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - att.get("narrow", 0)


def first_quantizer_ties(spec: dict, lo: int, hi: int) -> list[int]:
    """Input codes that put the first element-wise quantizer exactly on a boundary: a
    multi-branch encoder's FLOOR at ``(2^M - 1)(2 x / in_max - 1) / 2`` an integer (x = 70 at
    in_max = 100, M = 4), a MINW-Net input quantizer's ``2 x / in_max - 1`` on a midpoint."""
    fam, out = spec["family"], []
    if fam in ("mbbn", "quant", "decomposed"):
        in_max, lm = exact_reference.exact(np.float32(spec["in_max"])), levels(spec["bits"][0][0])
        for x in range(lo, hi + 1):
            a = 2 * Fraction(x) / in_max - 1
            if -1 < a < 1 and (lm * a / 2).denominator == 1:
                out.append(x)
    elif fam == "minw" and spec["quantize_input"]:
        mids = [0] if spec["act_bits"] == 1 else power_of_two(spec["act_bits"]).thresholds
        for x in range(lo, hi + 1):
            a = abs(2 * Fraction(x, spec["in_max"]) - 1)
            if any(a == Fraction(m) for m in mids):
                out.append(x)
    elif fam == "slicer":
        m, step = math.isqrt(spec["order"]), Fraction(2) ** spec["step_log2"]
        delta = exact_reference.exact(np.float32(spec["delta"]))
        bounds = {delta * (2 * i + 2 - m) / (m - 1) for i in range(m - 1)}
        out = [x for x in range(lo, hi + 1) if x * step in bounds]
    return out


def vectors(n_in: int, lo: int, hi: int, rng: np.random.Generator, n_random: int,
            tie_values: list[int]) -> np.ndarray:
    """All-min, all-max, alternating both ways, ``n_random`` random vectors, and as many
    vectors of tie values (mixed with random values) when there are any."""
    alt = np.where(np.arange(n_in) % 2 == 0, lo, hi)
    rows = [np.full(n_in, lo), np.full(n_in, hi), alt, lo + hi - alt,
            rng.integers(lo, hi + 1, (n_random, n_in))]
    if tie_values:
        ties = rng.choice(tie_values, (n_random, n_in))
        mixed = np.where(rng.random((n_random, n_in)) < 0.5, ties,
                         rng.integers(lo, hi + 1, (n_random, n_in)))
        rows += [ties, mixed]
    return np.vstack([np.atleast_2d(r) for r in rows]).astype(np.int64)


def build(spec: dict, n_random: int = 32) -> FuzzCase:
    """The model, export and vectors of ``spec`` (deterministic); ValueError where a front end
    refuses (a lowering or an export that cannot be exact)."""
    rng = np.random.default_rng(spec["seed"])
    fam = spec["family"]
    if fam in ("binary", "mbbn", "quant", "decomposed", "minw"):
        in_bits = {"binary": lambda: spec.get("in_bits"),
                   "minw": lambda: max(1, int(spec["in_max"]).bit_length())}.get(
            fam, lambda: max(1, math.ceil(math.log2(spec["in_max"] + 1))))()
        tie_vector = rng.integers(0, (1 << in_bits), spec["n_in"])
        net = {"binary": _binary, "minw": _minw}.get(fam, _encoded_mlp)(spec, rng, tie_vector)
        torch_outputs, extra = _classes(net), [tie_vector[None]]
    else:
        net, torch_outputs = {"sam": _sam, "qam": _qam, "slicer": _qam,
                              "minmax": _minmax}[fam](spec, rng)
        extra = []
    model = exporter_for(type(net))(net).model()
    lo, hi = input_range(model)
    ties = first_quantizer_ties(spec, lo, hi)
    n_in = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    x = np.vstack([vectors(n_in, lo, hi, rng, n_random, ties), *extra])
    return FuzzCase(spec, model, torch_outputs, x, ties)


# ---------------------------------------------------------------------------------------------
# the checks


@dataclass
class Outcome:
    """What :func:`check` found for one model."""

    spec: dict
    status: str                  # compiled, refused, not-exported, crash, reference-error
    message: str = ""            # the refusal or the exception, first line
    n_vectors: int = 0
    golden_vs_exact: int = 0     # vectors where golden != exact reference
    torch_vs_exact: int = 0      # vectors where PyTorch != exact reference
    torch_diff_ties: int = 0     # of those, rows with an exact tie
    ties: int = 0                # rows with an exact tie
    model: ir.Model | None = None
    case: FuzzCase | None = None

    @property
    def documented(self) -> bool:
        """A refusal with a one-line message that names a documented limit."""
        return self.status == "refused" and "\n" not in self.message and \
            any(s in self.message for s, _ in DOCUMENTED_REFUSALS)

    @property
    def failures(self) -> list[str]:
        """What the fuzz tier asserts, as the list of what went wrong (empty: all right)."""
        out = []
        if self.status in ("crash", "reference-error"):
            out.append(f"{self.status}: {self.message}")
        if self.status == "not-exported" and "[more lines]" in self.message:
            out.append(f"a front end's refusal of more than one line: {self.message}")
        if self.status == "refused" and not self.documented:
            out.append(f"refused: {self.message}")
        if self.golden_vs_exact:
            out.append(f"golden != exact on {self.golden_vs_exact}/{self.n_vectors} vectors")
        if self.torch_vs_exact > self.torch_diff_ties:
            out.append(f"PyTorch != exact on {self.torch_vs_exact - self.torch_diff_ties} "
                       "vectors without an exact tie")
        return out


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}" + \
        (" [more lines]" if len(text.splitlines()) > 1 else "")


def check(spec: dict, n_random: int = 32) -> Outcome:
    """Build, export, compile and compare (module docs); never raises."""
    try:
        case = build(spec, n_random)
    except ValueError as e:
        return Outcome(spec, "not-exported", _first_line(e))
    except Exception as e:       # noqa: BLE001 - a front end's crash is a finding
        return Outcome(spec, "crash", "front end: " + _first_line(e))
    x = case.vectors
    res = Outcome(spec, "compiled", n_vectors=len(x), case=case)
    try:
        ref = exact_reference.evaluate(case.onnx, x)
    except Exception as e:       # noqa: BLE001
        res.status, res.message = "reference-error", _first_line(e)
        return res
    res.ties = int(ref.ties.sum())
    try:
        torch_out = np.asarray(case.torch_outputs(x)).reshape(ref.outputs.shape)
        diff = (torch_out != ref.outputs).any(axis=1)
        res.torch_vs_exact, res.torch_diff_ties = int(diff.sum()), int((diff & ref.ties).sum())
    except Exception as e:       # noqa: BLE001
        res.status, res.message = "crash", "PyTorch inference: " + _first_line(e)
        return res
    try:
        res.model = compile_onnx(case.onnx)
    except CompileError as e:
        res.status, res.message = "refused", str(e)
        return res
    except Exception as e:       # noqa: BLE001
        res.status, res.message = "crash", "compiler: " + _first_line(e)
        return res
    try:
        out = golden.run(res.model, x)
    except Exception as e:       # noqa: BLE001
        res.status, res.message = "crash", "golden: " + _first_line(e)
        return res
    if out.shape != ref.outputs.shape:
        res.golden_vs_exact = len(x)
        res.message = f"golden output shape {out.shape}, exact {ref.outputs.shape}"
    else:
        res.golden_vs_exact = int((out != ref.outputs).any(axis=1).sum())
    return res
