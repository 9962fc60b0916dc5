"""A trained Sum-and-Max network (seed 002) as integers: the IR, and the same arithmetic in torch.

The network is a SAM hidden layer (:class:`hwgen.sw.families.sam.layers.SAMLinear`, or the
:class:`hwgen.sw.families.sam.layers.PrunedSAM` that pruning made of it) followed by an
``nn.Linear`` with one logit per class, as configuration B of seed 002 (Fig. 2); the class is
the argmax. :func:`lower` makes the integer network of the two.

**One grid for inputs and weights.** A SAM output adds a weight to an input (eq. 5), so both
must be integers in the same unit for the sum to be an integer add. With the input step
``s = clip / 2^(bits-1)``:

* input codes ``x_q = clamp(round(x / s), -2^(bits-1), 2^(bits-1) - 1)``, the only saturation;
* weights ``W_q = round(W / s)`` and fills ``f_q = round(f / s)``, unbounded (the hardware sizes
  its adders from the actual weights);
* then ``o_q = max_i(x_q,i + W+_q,ji) + min_i(x_q,i + W-_q,ji)`` is exactly the SAM of the
  rounded values, in units of ``s``.

**Output layer.** ``logits = V o + c`` becomes ``V_q o_q + c_q`` with the symmetric
``weight_bits`` quantization ``V_q = round(V / t)`` and ``c_q = round(c / (s t))``: the logits
scaled by ``1 / (s t)``, so the argmax is the float network's up to rounding. The step ``t`` is
the power of two at or above ``max|V| / (2^(weight_bits-1) - 1)`` (so the largest ``|V_q|`` lies
in ``2^(weight_bits-2) .. 2^(weight_bits-1) - 1``): with ``s`` a power of two too, every
scaled integer the ONNX export writes is exact in float32. It lowers to a ``dense_mac`` layer.

Every ``round`` is half to even (``torch.round``). :class:`IntegerSAMNet` computes the integer
network in torch (``scatter_reduce`` over the kept entries and an int64 matmul), independently
of the golden model's ``reduceat``; the two must agree bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hwgen.sw.core import ir
from hwgen.sw.core.levels import power_of_two_step

from .layers import FORMS, PrunedSAM, SAMLinear

__all__ = ["InputGrid", "IntegerSAMNet", "lower", "to_ir", "dense_mac_layer"]


@dataclass(frozen=True)
class InputGrid:
    """Signed ``bits``-bit input codes of step ``clip / 2^(bits-1)``.

    Members
    -------
    bits : int
        Width of an input code, 2 to 16.
    clip : float
        Inputs beyond ``+-clip`` saturate (the signals of seed 002 have unit variance).
    """

    bits: int = 8
    clip: float = 4.0

    def __post_init__(self):
        if not 2 <= self.bits <= 16 or not self.clip > 0:
            raise ValueError(f"input grid needs 2..16 bits and a positive clip, not "
                             f"{self.bits!r}, {self.clip!r}")

    @property
    def step(self) -> float:
        return self.clip / (1 << (self.bits - 1))

    @property
    def type(self) -> ir.TensorType:
        return ir.TensorType("signed", self.bits)

    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """int64 codes of float inputs: round half to even, then saturate."""
        t = self.type
        return torch.round(x.double() / self.step).clamp(t.lo, t.hi).to(torch.int64)

    def on_grid(self, v: torch.Tensor) -> torch.Tensor:
        """int64 ``round(v / step)`` (weights and fills), unbounded."""
        return torch.round(v.double() / self.step).to(torch.int64)


@dataclass
class _IntTerm:
    reduce: str
    sign: int
    rows: torch.Tensor       # int64 (nnz,): output of each kept entry
    cols: torch.Tensor       # int64 (nnz,): input of each kept entry
    weights: torch.Tensor    # int64 (nnz,)
    fill: torch.Tensor       # int64 (n_out,): the value of a row with no kept entry


class IntegerSAMNet(nn.Module):
    """The integer network in torch: input codes -> int64 logits (see the module docs).

    Members
    -------
    terms : list
        Per SAM term its kept entries and fills, on the input grid.
    weight, bias : torch.Tensor
        int64 ``V_q`` (classes, hidden) and ``c_q`` (classes,).
    grid : InputGrid
        The input codes' grid, the unit of the SAM weights and outputs.
    weight_step : float
        ``t``, the step of ``V_q``.
    weight_bits : int
        Width of ``V_q`` (symmetric: ``|V_q| <= 2^(weight_bits-1) - 1``).
    """

    def __init__(self, n_in: int, n_hidden: int, terms: list[_IntTerm], weight: torch.Tensor,
                 bias: torch.Tensor, grid: InputGrid, weight_step: float, weight_bits: int):
        super().__init__()
        self.n_in, self.n_hidden = n_in, n_hidden
        self.terms, self.weight, self.bias = terms, weight, bias
        self.grid, self.weight_step, self.weight_bits = grid, weight_step, weight_bits

    @property
    def n_classes(self) -> int:
        return len(self.bias)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """int64 (B, hidden) SAM outputs ``o_q`` of int64 input codes (B, n_in)."""
        out = torch.zeros(len(x), self.n_hidden, dtype=torch.int64)
        for t in self.terms:
            value = t.fill.expand(len(x), -1).clone()
            sums = x[:, t.cols] + t.weights
            # include_self=False: a row with entries takes their max (min) only; others keep fill
            value.scatter_reduce_(1, t.rows.expand(len(x), -1), sums, reduce="a" + t.reduce,
                                  include_self=False)
            out += t.sign * value
        return out

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(x) @ self.weight.T + self.bias


def _terms(hidden: SAMLinear | PrunedSAM, grid: InputGrid) -> list[_IntTerm]:
    if isinstance(hidden, SAMLinear):
        m, n = hidden.out_features, hidden.in_features
        rows = torch.arange(m).repeat_interleave(n)
        cols = torch.arange(n).repeat(m)
        return [_IntTerm(reduce, sign, rows, cols, grid.on_grid(w.detach().reshape(-1)),
                         torch.zeros(m, dtype=torch.int64))
                for (reduce, sign), w in zip(FORMS[hidden.form], hidden.term_weights())]
    if isinstance(hidden, PrunedSAM):
        terms = []
        for t in hidden.terms:
            rows = torch.repeat_interleave(torch.arange(t.n_out), t.indptr.diff())
            fill = torch.where(t.empty, grid.on_grid(t.fill), 0)
            terms.append(_IntTerm(t.reduce, t.sign, rows, t.indices.clone(),
                                  grid.on_grid(t.values), fill))
        return terms
    raise TypeError(f"the hidden layer must be a SAMLinear or a PrunedSAM, not "
                    f"{type(hidden).__name__}")


def dense_mac_layer(linear: nn.Linear, grid: InputGrid, *, weight_bits: int = 8,
                    name: str = "fc") -> ir.DenseMAC:
    """``linear`` on ``grid``'s input codes as a ``dense_mac`` layer: weights ``round(W / t)``
    (``t`` = :func:`hwgen.sw.core.levels.power_of_two_step`), bias ``round(b / (s t))``; its
    accumulator is the output in units of ``s t``. A pruned (zero) weight stays 0, so the
    sparse engine skips it."""
    w = linear.weight.detach().double()
    t = power_of_two_step(w.abs().max().item(), weight_bits)
    b = linear.bias.detach().double() if linear.bias is not None else torch.zeros(len(w))
    return ir.DenseMAC(name, weights=torch.round(w / t).to(torch.int64).numpy(),
                       bias=torch.round(b / (grid.step * t)).to(torch.int64).numpy())


def lower(hidden: SAMLinear | PrunedSAM, output: nn.Linear, *, grid: InputGrid = InputGrid(),
          weight_bits: int = 8) -> IntegerSAMNet:
    """Quantize a SAM hidden layer and its output layer as the module docs say."""
    if not 2 <= weight_bits <= 16:
        raise ValueError(f"weight_bits must lie in 2..16, not {weight_bits!r}")
    terms = _terms(hidden, grid)
    n_hidden = len(terms[0].fill)
    if output.in_features != n_hidden:
        raise ValueError(f"the output layer takes {output.in_features} inputs, the SAM layer "
                         f"gives {n_hidden}")
    v = output.weight.detach().double()
    if v.abs().max().item() == 0:
        raise ValueError("the output layer's weights are all zero")
    scale = power_of_two_step(v.abs().max().item(), weight_bits)
    bias = output.bias.detach().double() if output.bias is not None else torch.zeros(len(v))
    return IntegerSAMNet(hidden.in_features, n_hidden, terms,
                         torch.round(v / scale).to(torch.int64),
                         torch.round(bias / (grid.step * scale)).to(torch.int64), grid, scale,
                         weight_bits)


def to_ir(net: IntegerSAMNet, *, name: str = "sam") -> ir.Model:
    """The IR of ``net``: ``sam`` -> ``dense_mac`` -> ``argmax`` on its grid's input codes."""
    terms = []
    for t in net.terms:
        w = np.zeros((net.n_hidden, net.n_in), np.int64)
        keep = np.zeros((net.n_hidden, net.n_in), bool)
        w[t.rows.numpy(), t.cols.numpy()] = t.weights.numpy()
        keep[t.rows.numpy(), t.cols.numpy()] = True
        terms.append(ir.SAMTerm(t.reduce, t.sign, w, keep, t.fill.numpy()))
    layers = [ir.SAMLayer(f"{name}_hidden", n=net.n_in, terms=terms),
              ir.DenseMAC(f"{name}_output", weights=net.weight.numpy(), bias=net.bias.numpy()),
              ir.ArgMax(f"{name}_argmax", n=len(net.bias))]
    return ir.Model(net.grid.type, net.n_in, layers,
                    meta={"input_step": net.grid.step,
                          "source": "hwgen.sw.families.sam.lower"}).check()
