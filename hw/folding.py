"""Choosing a folding: the fastest balanced folding of a whole model within a resource budget.

A :class:`~hwgen.hw.resources.Folding` sets an engine's ``pe`` (neurons in parallel), ``simd``
(inputs per cycle), ``branch_folds`` (cycles over which a multi-branch layer's M * K branches
are spread) and where its weights live. Each layer kind lists its legal foldings, counts their
fold steps and prices them (:mod:`hwgen.hw.registry`: :func:`~hwgen.hw.registry.candidates`,
:func:`~hwgen.hw.registry.fold_steps`, :func:`~hwgen.hw.registry.estimate`, the analytic iCE40
cost model of :mod:`hwgen.hw.resources` and each kind's module); :func:`choose_folding`
picks, for a whole model, the fastest balanced folding within budget.
"""

from __future__ import annotations

import itertools

from hwgen.hw.registry import candidates, estimate, fold_steps
from hwgen.hw.resources import LOADED, Folding, Resources, serial_sides
from hwgen.sw.core import ir

__all__ = ["DoesNotFitError", "choose_folding"]


class DoesNotFitError(ValueError):
    """No folding of the model fits the resource budget."""


def _priced(layer, in_type) -> list[tuple[Folding, int, Resources]]:
    """Every candidate folding of ``layer`` with its step count and estimate."""
    return [(f, fold_steps(layer, f), estimate(layer, in_type, f)) for f in candidates(layer)]


def _cheapest(priced, max_steps: int) -> list[tuple[Folding, Resources]]:
    """Per weight mode, the folding with the fewest cells within ``max_steps`` cycles."""
    best = {}
    for f, steps, r in priced:
        if steps <= max_steps:
            if f.weights not in best or (r.lcs, r.ebr) < (best[f.weights][1].lcs,
                                                         best[f.weights][1].ebr):
                best[f.weights] = (f, r)
    return list(best.values())


def _total(combo, layers, types) -> Resources:
    """A combination's cost: its layers, and a register of the vector wherever a serial side
    meets a vector side (a Serializer or Deserializer holds it)."""
    total = sum((r for _, r in combo), Resources())
    for k in range(1, len(combo)):
        if serial_sides(combo[k - 1][0])[1] != serial_sides(combo[k][0])[0]:
            total += Resources(layers[k].n_in * types[k].bits)
    return total


def choose_folding(model: ir.Model, *, lc_budget: int, ebr_budget: int,
                   input_register_lcs: int = 0, dsp_budget: int | None = None,
                   spram_budget: int = 0) -> dict[str, Folding]:
    """The fastest folding of ``model`` whose estimate fits both budgets.

    ``input_register_lcs`` is charged to every folding of the first layer that takes its input
    as a whole vector (the register that gathers it in front of the pipeline), and not to a
    sparse or serial one, which takes it one element at a time. ``dsp_budget`` (None: no
    limit) bounds the DSP blocks of the multiply-accumulate layers, ``spram_budget`` the SPRAM
    blocks of loaded entries (``weights="loaded"``), which only the first layer may use: its
    preamble comes in through the model's input.

    The pipeline runs at the pace of its slowest layer, so every layer gets the cheapest
    folding no slower than a common step count, the smallest one that fits. Between weights
    in logic and in block RAM, the combination with the fewest cells that fits is taken.
    Raises :class:`DoesNotFitError`, naming the costliest layer, when even the slowest
    folding does not fit.
    """
    model.check()
    layers, types = model.layers, model.types()
    # each candidate is priced once: multi-branch layers have many (branch folds)
    priced = [_priced(layer, t) for layer, t in zip(layers, types)]
    priced = [[p for p in ps if p[0].weights != LOADED or (k == 0 and spram_budget > 0)]
              for k, ps in enumerate(priced)]
    priced[0] = [(f, steps, r if serial_sides(f)[0] else r + Resources(input_register_lcs))
                 for f, steps, r in priced[0]]
    targets = sorted({steps for p in priced for _, steps, _ in p})
    for target in targets:
        options = [_cheapest(p, target) for p in priced]
        if any(not o for o in options):
            continue
        fitting = [combo for combo in itertools.product(*options)
                   if _total(combo, layers, types).fits(lc_budget=lc_budget,
                                                        ebr_budget=ebr_budget,
                                                        dsp_budget=dsp_budget,
                                                        spram_budget=spram_budget)]
        if fitting:
            combo = min(fitting, key=lambda c: _total(c, layers, types).lcs)
            return {layer.name: f for layer, (f, _) in zip(layers, combo)}
    slowest = [min((r for _, r in _cheapest(p, targets[-1])), key=lambda r: r.lcs)
               for p in priced]
    total = sum(slowest, Resources())
    # name the layer that takes most of the resource the model overruns most
    over = max((("logic cells", "lcs", lc_budget), ("EBRs", "ebr", ebr_budget),
                ("DSPs", "dsp", dsp_budget)),
               key=lambda o: -1 if o[2] is None else getattr(total, o[1]) / max(1, o[2]))
    worst = max(range(len(layers)), key=lambda i: getattr(slowest[i], over[1]))
    dsps = "" if dsp_budget is None else f" and {dsp_budget} DSPs"
    raise DoesNotFitError(
        f"layer {layers[worst].name} alone needs about {getattr(slowest[worst], over[1])} "
        f"{over[0]} at its slowest folding; the model needs about {total.lcs} logic cells, "
        f"{total.ebr} EBRs and {total.dsp} DSPs, the budget is {lc_budget} logic cells, "
        f"{ebr_budget} EBRs{dsps}")
