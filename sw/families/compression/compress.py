"""Model compression of seed 001: distillation (ch. 4), quantization (ch. 5), pruning (ch. 6).

The three methods, their regularizers and the accounting of ch. 7, for any PyTorch model. The
*compressible layers* are the ``nn.Linear``, ``nn.Conv1d`` and ``nn.Conv2d`` modules; every
``layers`` argument takes their names as :meth:`nn.Module.named_modules` spells them (``"0"``,
``"encoder.fc1"``; ``""`` is the model itself), and ``None`` means all of them. Only their
``weight`` is compressed or penalized; **biases stay float32** and are never touched.

**Quantization (§5).** Per weight tensor, with ``lo = min(w)``, ``hi = max(w)`` and
``step = (hi - lo) / 2^k``, a k-bit level ``0 .. 2^k - 1`` stands for (§5, the seed's formula
with 256 = 2^8 generalized to 2^k)::

    true val = lo + level / 2^k * (hi - lo)

so the top level ``2^k - 1`` stands for ``hi - step``: **the maximum itself is never
representable** and quantizes with an error of a whole ``step``. The inverse is
``level = clamp(round((w - lo) / step), 0, 2^k - 1)`` with round half to even
(``torch.round``), which makes ``dequantize(quantize(w))`` the *nearest* representable value:
within ``step / 2`` on ``[lo, hi - step]`` (a tie goes to the even level, both being nearest)
and ``hi - step`` above it. A floor would be off by up to a whole step. Levels are computed in
float64. ``lo`` and ``hi`` are elements of the weight tensor, so storing them as float32 (ch. 7
accounting) is exact. A constant tensor (``hi == lo``) has ``step = 0``: all levels are 0.

**Pruning (§6).** "Group all the weights of the network, sort them according to magnitude, set
the bottom x percentile to zero": :func:`global_magnitude_prune` zeroes exactly
``round(fraction * N)`` weights (Python's ``round``, half to even: 50 % of 1,001 is 500) of the
N weights of the selected layers together, so a layer of large weights may keep them all. Ties
in |w| go by a stable sort of the concatenated flattened weights (layers in ``named_modules``
order, each row-major): the earlier flat index is pruned first. A mask is True where a weight is
kept. The seed sometimes spares the last layer of a classifier (§6): leave it out of ``layers``.
Retraining (§6.1, Table 6.1) calls :func:`apply_masks` after every optimizer step, because the
gradient (and the optimizer's momentum) regrows pruned weights.

**Regularization.** :func:`l1_penalty` is ``sum |w|`` (§6.2, before pruning, Fig. 6.3-6.5);
:func:`l2_penalty` is ``sum w^2``, neither halved nor square-rooted (§5.4 before quantization,
Table 5.2; the seed writes ``loss = CE + alpha (weights)^2``). The caller multiplies by alpha.

**Distillation (ch. 4, Hinton et al. 2015).** With ``p_t = softmax(teacher / T)`` and
``p_s = softmax(student / T)``::

    loss = alpha * T^2 * KL(p_t || p_s) + (1 - alpha) * CE(student, targets)

batch means of both terms, ``KL(p || q) = sum_c p_c (log p_c - log q_c)``; the CE uses the
student's logits at temperature 1. The T^2 keeps the soft term's gradients at the scale of the
hard term's as T changes (Hinton et al. §2). No gradient flows into the teacher.

**Memory (ch. 7.3).** Every parameter of the model (``model.parameters()``, biases and
non-compressible layers included; buffers such as batch-norm statistics not) costs 32 bits. A
k-bit quantized weight tensor costs ``k`` bits per stored weight plus 2 x 32 bits for its
``lo`` and ``hi``. A pruned weight tensor (one with a mask) is stored sparsely as its kept
weights (``mask.sum()`` of them, at 32 or k bits) plus a bitmask of one bit per position, N
bits: ``kept * b + N (+ 64 if quantized)``. The rule applies whenever a mask is given, even
where dense storage would be smaller (little pruning at few bits).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "COMPRESSIBLE", "FLOAT_BITS", "minmax_levels", "minmax_dequantize", "quantize_model",
    "global_magnitude_prune", "apply_masks", "sparsity", "l1_penalty", "l2_penalty",
    "distillation_loss", "memory_bits", "cpu_inference_time",
]

#: Layer types whose ``weight`` is quantized, pruned and penalized.
COMPRESSIBLE = (nn.Linear, nn.Conv1d, nn.Conv2d)

#: Bits of one float32 parameter (and of a stored lo or hi).
FLOAT_BITS = 32

_MAX_BITS = 16


def _check_bits(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= _MAX_BITS:
        raise ValueError(f"k must be an integer from 1 to {_MAX_BITS}, not {k!r}")


def _compressible(model: nn.Module, layers: Iterable[str] | None = None
                  ) -> list[tuple[str, nn.Module]]:
    """(name, module) of the selected compressible layers, in ``named_modules`` order."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, COMPRESSIBLE)]
    if layers is None:
        return found
    wanted = set(layers) if not isinstance(layers, str) else {layers}
    known = {name for name, _ in found}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(f"not compressible layers of the model (Linear, Conv1d, Conv2d): "
                         f"{unknown}; known: {sorted(known)}")
    return [(name, m) for name, m in found if name in wanted]


# ---------------------------------------------------------------------------------------------
# §5 min/max quantization
# ---------------------------------------------------------------------------------------------

def minmax_levels(w: torch.Tensor, k: int) -> tuple[torch.Tensor, float, float]:
    """k-bit min/max levels of a tensor (§5), the inverse of the seed's formula.

    ``level = clamp(round((w - lo) / step), 0, 2^k - 1)`` with ``step = (hi - lo) / 2^k``,
    round half to even, in float64; :func:`minmax_dequantize` of the result is the nearest of
    the 2^k representable values ``lo + level * step`` to each ``w``. The maximum ``hi`` itself
    is not representable (the top level stands for ``hi - step``), so weights above
    ``hi - step`` clamp to the top level.

    Parameters
    ----------
    w : torch.Tensor
        Any shape, at least one element, finite.
    k : int
        Bits per level, 1 to 16.

    Returns
    -------
    levels : torch.Tensor
        int64, shape of ``w``, values in ``0 .. 2^k - 1``. All 0 when ``w`` is constant.
    lo, hi : float
        ``min(w)`` and ``max(w)`` (exact: elements of ``w``).
    """
    _check_bits(k)
    if w.numel() == 0:
        raise ValueError("cannot quantize an empty tensor")
    x = w.detach().to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(x).all():
        raise ValueError("cannot quantize a tensor with inf or nan")
    lo, hi = float(x.min()), float(x.max())
    if hi == lo:
        return torch.zeros(x.shape, dtype=torch.int64), lo, hi
    step = (hi - lo) / 2 ** k
    # torch.round rounds half to even; the clamp sends (hi - step, hi] to the top level 2^k - 1
    levels = torch.round((x - lo) / step).clamp_(0, 2 ** k - 1)
    return levels.to(torch.int64), lo, hi


def minmax_dequantize(levels: torch.Tensor, lo: float, hi: float, k: int) -> torch.Tensor:
    """The seed's ``true val = min + level / 2^k * (max - min)`` (§5, with 2^8 = 256), float64.

    Parameters
    ----------
    levels : torch.Tensor
        Integers in ``0 .. 2^k - 1``, any shape.
    lo, hi : float
        The tensor's minimum and maximum, as :func:`minmax_levels` returns them.
    k : int
        Bits per level, 1 to 16.

    Returns
    -------
    torch.Tensor
        float64, shape of ``levels``. The top level ``2^k - 1`` gives ``hi - (hi - lo) / 2^k``,
        never ``hi``.
    """
    _check_bits(k)
    lv = torch.as_tensor(levels)
    if lv.is_floating_point() or lv.is_complex():
        raise ValueError("levels must be integers")
    if lv.numel() and (int(lv.min()) < 0 or int(lv.max()) > 2 ** k - 1):
        raise ValueError(f"levels must lie in 0 .. {2 ** k - 1} for k = {k}")
    return lo + lv.to(torch.float64) / 2 ** k * (hi - lo)


def quantize_model(model: nn.Module, k: int, layers: Iterable[str] | None = None
                   ) -> dict[str, tuple[torch.Tensor, float, float]]:
    """Replace each selected layer's weight by its k-bit min/max value (§5), in place.

    Layer-wise as in §5: one (lo, hi) per weight tensor. The dequantized float64 values are
    written back in the weight's dtype (float32 rounding of ``lo + level * step``). Biases stay
    float and unchanged.

    Parameters
    ----------
    model : nn.Module
        Changed in place.
    k : int
        Bits per weight, 1 to 16 (the seed uses 8, 6, 4, ...).
    layers : iterable of str, optional
        Names of the compressible layers to quantize; all of them by default.

    Returns
    -------
    dict
        ``name -> (levels, lo, hi)`` per quantized layer, ``levels`` int64 of the weight's
        shape: what a deployment stores (k bits per level, lo and hi as float32).
    """
    _check_bits(k)
    out = {}
    with torch.no_grad():
        for name, m in _compressible(model, layers):
            levels, lo, hi = minmax_levels(m.weight, k)
            m.weight.copy_(minmax_dequantize(levels, lo, hi, k).to(m.weight))
            out[name] = (levels, lo, hi)
    return out


# ---------------------------------------------------------------------------------------------
# §6 pruning
# ---------------------------------------------------------------------------------------------

def global_magnitude_prune(model: nn.Module, fraction: float,
                           layers: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """Zero the ``round(fraction * N)`` smallest-magnitude weights of all selected layers (§6).

    One ranking over the N weights of all the selected layers together (global, not per
    layer). Ties in |w| prune the earlier position first (stable sort on the concatenated
    flattened weights, layers in ``named_modules`` order). Weights that already were zero rank
    first and count among the pruned. Biases are untouched.

    Parameters
    ----------
    model : nn.Module
        Changed in place.
    fraction : float
        In [0, 1]: the seed's "bottom x percentile" with x = 100 * fraction.
    layers : iterable of str, optional
        Names of the compressible layers to prune; all of them by default.

    Returns
    -------
    dict
        ``name -> mask``: bool tensor of the weight's shape, True where the weight is kept.
        Exactly ``round(fraction * N)`` entries are False over all masks.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], not {fraction}")
    selected = _compressible(model, layers)
    if not selected:
        return {}
    magnitudes = torch.cat([m.weight.detach().abs().reshape(-1).cpu() for _, m in selected])
    n_prune = round(fraction * magnitudes.numel())
    order = torch.sort(magnitudes, stable=True).indices
    keep = torch.ones(magnitudes.numel(), dtype=torch.bool)
    keep[order[:n_prune]] = False
    masks, start = {}, 0
    for name, m in selected:
        n = m.weight.numel()
        masks[name] = keep[start:start + n].reshape(m.weight.shape).to(m.weight.device)
        start += n
    apply_masks(model, masks)
    return masks


def apply_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> None:
    """Zero every weight whose mask entry is False, in place (re-prune after a retraining step).

    Parameters
    ----------
    model : nn.Module
        The pruned model.
    masks : mapping
        ``name -> bool mask`` as :func:`global_magnitude_prune` returns.
    """
    modules = dict(model.named_modules())
    with torch.no_grad():
        for name, mask in masks.items():
            w = modules[name].weight
            if mask.shape != w.shape:
                raise ValueError(f"mask of {name!r} has shape {tuple(mask.shape)}, "
                                 f"the weight {tuple(w.shape)}")
            w.mul_(mask.to(device=w.device, dtype=w.dtype))


def sparsity(model: nn.Module, layers: Iterable[str] | None = None) -> float:
    """Fraction of exactly-zero weights over the selected compressible layers (biases excluded).

    Returns
    -------
    float
        Zero weights / all weights; 0.0 for a model with no compressible layer.
    """
    selected = _compressible(model, layers)
    total = sum(m.weight.numel() for _, m in selected)
    if total == 0:
        return 0.0
    zeros = sum(int((m.weight.detach() == 0).sum()) for _, m in selected)
    return zeros / total


# ---------------------------------------------------------------------------------------------
# regularizers: l1 before pruning (§6.2), l2 before quantization (§5.4)
# ---------------------------------------------------------------------------------------------

def _weights(model: nn.Module, layers: Iterable[str] | None) -> list[torch.Tensor]:
    return [m.weight for _, m in _compressible(model, layers)]


def l1_penalty(model: nn.Module, layers: Iterable[str] | None = None) -> torch.Tensor:
    """``sum |w|`` over the selected layers' weights (§6.2: ``loss = CE + alpha |weights|``).

    Returns
    -------
    torch.Tensor
        Scalar with gradient ``sign(w)``; biases do not enter. Multiply by alpha.
    """
    ws = _weights(model, layers)
    if not ws:
        return torch.zeros(())
    return sum(w.abs().sum() for w in ws)


def l2_penalty(model: nn.Module, layers: Iterable[str] | None = None) -> torch.Tensor:
    """``sum w^2`` over the selected layers' weights (§5.4, §6.2: ``loss = CE + alpha w^2``).

    Returns
    -------
    torch.Tensor
        Scalar with gradient ``2 w`` (not halved); biases do not enter. Multiply by alpha.
    """
    ws = _weights(model, layers)
    if not ws:
        return torch.zeros(())
    return sum(w.pow(2).sum() for w in ws)


# ---------------------------------------------------------------------------------------------
# ch. 4 knowledge distillation
# ---------------------------------------------------------------------------------------------

def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      targets: torch.Tensor | None, T: float, alpha: float) -> torch.Tensor:
    """Hinton et al.'s loss (ch. 4): soft teacher targets at temperature T plus hard labels.

    ``alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student,
    targets)``, each a mean over the batch; the KL sums over classes. The teacher's logits are
    detached.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor
        Shape ``(batch, classes)``.
    targets : torch.Tensor or None
        Class indices, shape ``(batch,)``. May be None only when ``alpha == 1``: distillation
        then needs unlabelled data only (§7.1).
    T : float
        Temperature, > 0.
    alpha : float
        Weight of the soft term, in [0, 1].

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    if student_logits.ndim != 2 or student_logits.shape != teacher_logits.shape:
        raise ValueError(f"expected logits of one shape (batch, classes), not "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")
    if not T > 0:
        raise ValueError(f"T must be positive, not {T}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], not {alpha}")
    log_p_s = F.log_softmax(student_logits / T, dim=1)
    log_p_t = F.log_softmax(teacher_logits.detach() / T, dim=1)
    # KL(p_t || p_s) = sum_c p_t (log p_t - log p_s); "batchmean" sums classes, averages batch
    soft = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    loss = alpha * T * T * soft
    if alpha < 1:
        if targets is None:
            raise ValueError("targets are needed when alpha < 1")
        loss = loss + (1 - alpha) * F.cross_entropy(student_logits, targets)
    return loss


# ---------------------------------------------------------------------------------------------
# ch. 7 accounting
# ---------------------------------------------------------------------------------------------

def memory_bits(model: nn.Module, *, quantized_bits: int | Mapping[str, int] | None = None,
                masks: Mapping[str, torch.Tensor] | None = None) -> int:
    """Storage of the model's parameters in bits, by the rule of the module docstring (§7.3).

    Parameters
    ----------
    model : nn.Module
        Every parameter counts; the quantized and pruned weights by their own rule, all the
        rest at 32 bits.
    quantized_bits : int or mapping, optional
        k for every compressible layer's weight (as ``quantize_model(model, k)``), or
        ``name -> k`` for some of them. None: no quantization.
    masks : mapping, optional
        ``name -> bool mask`` of the pruned layers (:func:`global_magnitude_prune`), stored as
        kept weights plus an N-bit bitmask.

    Returns
    -------
    int
        Bits. Float32 dense: ``32 * n_params``.
    """
    layers = dict(_compressible(model))
    if quantized_bits is None:
        bits: dict[str, int] = {}
    elif isinstance(quantized_bits, Mapping):
        bits = dict(quantized_bits)
    else:
        bits = {name: quantized_bits for name in layers}
    masks = dict(masks or {})
    for name in set(bits) | set(masks):
        if name not in layers:
            raise ValueError(f"{name!r} is not a compressible layer of the model")
    for k in bits.values():
        _check_bits(k)

    special = {}
    for name in set(bits) | set(masks):
        w = layers[name].weight
        n = w.numel()
        per_weight = bits.get(name, FLOAT_BITS)
        if name in masks:
            if masks[name].shape != w.shape:
                raise ValueError(f"mask of {name!r} does not have the weight's shape")
            total = int(masks[name].sum()) * per_weight + n      # kept weights + bitmask
        else:
            total = n * per_weight
        if name in bits:
            total += 2 * FLOAT_BITS                              # lo and hi of the tensor
        special[id(w)] = total

    # parameters() deduplicates shared tensors, so a tied weight counts once
    return sum(special.get(id(p), FLOAT_BITS * p.numel()) for p in model.parameters())


def cpu_inference_time(model: nn.Module, x: torch.Tensor, repeats: int = 100, *,
                       warmup: int = 10) -> float:
    """Median wall-clock seconds of one ``model(x)`` on one CPU thread (ch. 4 Table 4.5, §7.2).

    The seed timed 110 calls and discarded the first 10 (caching); here ``warmup`` untimed
    calls precede ``repeats`` timed ones. Runs under ``torch.no_grad`` in eval mode; the
    model's training mode and torch's thread count are restored afterwards.

    Parameters
    ----------
    model : nn.Module
        On the CPU.
    x : torch.Tensor
        One input batch (a single data point for the seed's per-point latency).
    repeats : int
        Timed calls, >= 1.
    warmup : int
        Untimed calls before them, >= 0.

    Returns
    -------
    float
        Median seconds per call.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError("need repeats >= 1 and warmup >= 0")
    threads, was_training = torch.get_num_threads(), model.training
    torch.set_num_threads(1)
    model.eval()
    try:
        with torch.no_grad():
            for _ in range(warmup):
                model(x)
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
        model.train(was_training)
    return statistics.median(times)
