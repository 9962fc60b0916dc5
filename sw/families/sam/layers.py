"""Sum-and-Max (SAM) layers of seed 002: additions and comparisons, no multiplications.

A SAM output adds a parameter to every input and keeps the largest (or smallest) sum:

* eq. 3, form ``"max"``:      o_j = max_i(x_i + W+_ij)
* eq. 4, form ``"max-max"``:  o_j = max_i(x_i + W+_ij) - max_i(x_i + W-_ij)
* eq. 5, form ``"max+min"``:  o_j = max_i(x_i + W+_ij) + min_i(x_i + W-_ij)   (the paper's layer)

Weights are stored as ``(out_features, in_features)`` like ``nn.Linear``: the paper's W_ij is
``weight[j, i]``.

**Gradient (§II).** Each max (min) term passes its output gradient, with weight 1, to the one
input x_i and the one parameter W_ij it selected, and 0 to all the others. **Ties** go to the
lowest input index i, as ``torch.max`` / ``torch.min`` along a dimension (and the IR's argmax)
do, so the selection, the gradient and the activation counts are deterministic.

**Memory.** The forward never builds the whole ``batch x out x in`` tensor of sums: it walks the
outputs in chunks of at most :data:`CHUNK_ELEMENTS` sums and keeps only the selected index per
(sample, output), which is all the backward needs (it scatters the gradient to those indices).

**Pruning (§III-D).** :func:`count_activations` counts, over a data set, how often each parameter
is the selected one (its *activation rate* is that count over the number of samples);
:func:`prune` removes every parameter whose rate is below a threshold and returns a
:class:`PrunedSAM`, which stores per output only the surviving (input, weight) pairs. A removed
W+ entry is -inf for a max and a removed W- entry +inf for a min: it simply is not there.
A term whose entries are *all* removed has no input left to select; its value is then the
constant ``fill``, the term's mean over the counting data set, so the next layer keeps seeing
the same average input (a constant costs no operation in hardware). ``PrunedSAM.empty`` lists
those outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = [
    "FORMS", "CHUNK_ELEMENTS", "DEVICE_CHUNK_ELEMENTS", "sum_max", "sum_min", "SAMLinear", "ActivationCounts",
    "count_activations", "SparseTerm", "PrunedSAM", "prune",
]

# form -> (reduction, sign) of each term; term 0 uses W+ and term 1 uses W-
FORMS: dict[str, tuple[tuple[str, int], ...]] = {
    "max": (("max", 1),),                    # eq. 3
    "max-max": (("max", 1), ("max", -1)),    # eq. 4
    "max+min": (("max", 1), ("min", 1)),     # eq. 5
}

#: Most sums x_i + W_ij held at once by the chunked forward (8 MiB of float32).
CHUNK_ELEMENTS = 1 << 21
#: The same bound on an accelerator (1 GiB of float32), where each chunk costs kernel launches
#: and memory is plentiful: a 256 x 1024 x 512 batch of the paper's layer is one chunk.
DEVICE_CHUNK_ELEMENTS = 1 << 28


def _chunk_elements(t: torch.Tensor) -> int:
    return CHUNK_ELEMENTS if t.device.type == "cpu" else max(CHUNK_ELEMENTS, DEVICE_CHUNK_ELEMENTS)


def _select(x: torch.Tensor, w: torch.Tensor, reduce: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Values and indices of max_i (or min_i) of x_i + w[j, i] for every output j: both (B, m)."""
    batch, n = x.shape
    chunk = max(1, _chunk_elements(x) // max(1, batch * n))
    values, indices = [], []
    for start in range(0, w.shape[0], chunk):
        sums = x[:, None, :] + w[None, start:start + chunk, :]
        # torch.max / torch.min along a dim return the first extremal index: ties -> lowest i
        v, i = sums.max(dim=2) if reduce == "max" else sums.min(dim=2)
        values.append(v)
        indices.append(i)
    return torch.cat(values, dim=1), torch.cat(indices, dim=1)


class _SumReduce(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, reduce):
        values, index = _select(x, w, reduce)
        ctx.save_for_backward(index)
        ctx.shapes = (x.shape, w.shape)
        return values

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        x_shape, (m, n) = ctx.shapes
        grad_x = grad_w = None
        # §II: gradient 1 to the selected input and parameter, 0 to every other
        if ctx.needs_input_grad[0]:
            grad_x = grad.new_zeros(x_shape).scatter_add_(1, index, grad)
        if ctx.needs_input_grad[1]:
            flat = index + torch.arange(m, device=index.device) * n
            grad_w = grad.new_zeros(m * n).scatter_add_(0, flat.reshape(-1), grad.reshape(-1))
            grad_w = grad_w.view(m, n)
        return grad_x, grad_w, None


def _check(x: torch.Tensor, w: torch.Tensor) -> None:
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise ValueError(f"expected x of shape (batch, n) and w of shape (m, n), "
                         f"not {tuple(x.shape)} and {tuple(w.shape)}")


def sum_max(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """o_j = max_i(x_i + w[j, i]) (eq. 3), with the selection gradient of §II.

    Parameters
    ----------
    x : torch.Tensor
        Inputs, shape ``(batch, n)``.
    w : torch.Tensor
        Parameters, shape ``(m, n)``.

    Returns
    -------
    torch.Tensor
        Shape ``(batch, m)``. Ties select the lowest input index.
    """
    _check(x, w)
    return _SumReduce.apply(x, w, "max")


def sum_min(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """o_j = min_i(x_i + w[j, i]) (second term of eq. 5); see :func:`sum_max`."""
    _check(x, w)
    return _SumReduce.apply(x, w, "min")


_REDUCERS = {"max": sum_max, "min": sum_min}


class SAMLinear(nn.Module):
    """Dense Sum-and-Max layer: eq. 5 by default, eq. 3 and eq. 4 for comparison.

    No bias and no activation: max and min are the non-linearity (§II).

    Parameters
    ----------
    in_features, out_features : int
        n and m of the paper.
    form : str
        ``"max+min"`` (eq. 5), ``"max-max"`` (eq. 4) or ``"max"`` (eq. 3).
    init_std : float
        Standard deviation of the normal initialization of the weights. The paper does not give
        one; weights comparable to the inputs' spread let each output prefer a few inputs.

    Members
    -------
    weight_pos : nn.Parameter
        W+, shape ``(out_features, in_features)``.
    weight_neg : nn.Parameter or None
        W-, same shape; None for eq. 3.
    """

    def __init__(self, in_features: int, out_features: int, *, form: str = "max+min",
                 init_std: float = 1.0):
        super().__init__()
        if form not in FORMS:
            raise ValueError(f"form must be one of {sorted(FORMS)}, not {form!r}")
        if in_features < 1 or out_features < 1:
            raise ValueError(f"features must be positive, not {in_features!r} -> {out_features!r}")
        self.in_features, self.out_features, self.form = in_features, out_features, form
        self.weight_pos = nn.Parameter(torch.randn(out_features, in_features) * init_std)
        self.weight_neg = (nn.Parameter(torch.randn(out_features, in_features) * init_std)
                           if len(FORMS[form]) == 2 else None)

    def term_weights(self) -> list[torch.Tensor]:
        """The weight of each term of :data:`FORMS` ``[form]``: [W+] or [W+, W-]."""
        return [self.weight_pos] if self.weight_neg is None else [self.weight_pos, self.weight_neg]

    def forward(self, x):
        return sum(sign * _REDUCERS[reduce](x, w)
                   for (reduce, sign), w in zip(FORMS[self.form], self.term_weights()))

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, form={self.form!r}"


@dataclass
class ActivationCounts:
    """How often each parameter of a :class:`SAMLinear` was the selected one (§III-D).

    Members
    -------
    counts : list of torch.Tensor
        Per term, int64 of shape ``(out_features, in_features)``. Every sample selects exactly
        one entry per output and term, so each row sums to ``n_samples``.
    means : list of torch.Tensor
        Per term, the mean of the term's value per output over the data set, shape
        ``(out_features,)``: the constant an emptied term is replaced by.
    n_samples : int
        Number of input vectors counted.
    """

    counts: list[torch.Tensor]
    means: list[torch.Tensor]
    n_samples: int

    def rates(self) -> list[torch.Tensor]:
        """Activation rate of each entry: its count over ``n_samples``."""
        return [c.double() / self.n_samples for c in self.counts]


@torch.no_grad()
def count_activations(layer: SAMLinear, x: torch.Tensor, *, batch_size: int = 1024
                      ) -> ActivationCounts:
    """Count, over the inputs ``x`` of shape ``(N, in_features)``, the selections of each entry.

    Runs on the layer's device (``x`` is moved there batch by batch); the counts come back on
    the CPU.
    """
    if x.ndim != 2 or x.shape[1] != layer.in_features or len(x) == 0:
        raise ValueError(f"expected a non-empty (N, {layer.in_features}) input, "
                         f"not {tuple(x.shape)}")
    m, n = layer.out_features, layer.in_features
    weights = layer.term_weights()
    device = weights[0].device
    counts = [torch.zeros(m * n, dtype=torch.int64, device=device) for _ in weights]
    sums = [torch.zeros(m, dtype=torch.float64, device=device) for _ in weights]
    offsets = torch.arange(m, device=device) * n
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size].to(device)
        for k, ((reduce, _), w) in enumerate(zip(FORMS[layer.form], weights)):
            values, index = _select(xb, w, reduce)
            counts[k] += torch.bincount((index + offsets).reshape(-1), minlength=m * n)
            sums[k] += values.double().sum(dim=0)
    return ActivationCounts([c.view(m, n).cpu() for c in counts],
                            [(s / len(x)).cpu() for s in sums], len(x))


@dataclass
class SparseTerm:
    """One pruned max or min term: per output j the surviving (input, weight) pairs, CSR-style.

    Output j keeps inputs ``indices[indptr[j]:indptr[j+1]]`` with weights ``values[...]`` (sorted
    by input index, so ties still go to the lowest one). An output with no pair left outputs
    ``fill[j]`` for this term.

    Members
    -------
    reduce : str
        ``"max"`` or ``"min"``.
    sign : int
        +1 or -1, how the term enters the output (eq. 4 subtracts its second max).
    indptr, indices : torch.Tensor
        int64, shapes ``(m + 1,)`` and ``(nnz,)``.
    values : torch.Tensor
        The surviving weights, shape ``(nnz,)``.
    fill : torch.Tensor
        Per output, the term's value when none of its pairs survived, shape ``(m,)``.
    """

    reduce: str
    sign: int
    indptr: torch.Tensor
    indices: torch.Tensor
    values: torch.Tensor
    fill: torch.Tensor

    @property
    def n_out(self) -> int:
        return len(self.indptr) - 1

    @property
    def empty(self) -> torch.Tensor:
        """Boolean per output: no pair survived."""
        return self.indptr[1:] == self.indptr[:-1]

    def pairs(self, j: int) -> list[tuple[int, float]]:
        """The surviving (input index, weight) pairs of output ``j``."""
        lo, hi = int(self.indptr[j]), int(self.indptr[j + 1])
        return list(zip(self.indices[lo:hi].tolist(), self.values[lo:hi].tolist()))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device
        rows = torch.repeat_interleave(torch.arange(self.n_out, device=device),
                                       self.indptr.to(device).diff())
        indices, values = self.indices.to(device), self.values.to(device)
        out = self.fill.to(device, x.dtype).expand(len(x), -1).clone()
        # like the dense forward, hold at most CHUNK_ELEMENTS sums: walk the samples in chunks
        chunk = max(1, _chunk_elements(x) // max(1, len(self.indices)))
        for start in range(0, len(x), chunk):
            sums = x[start:start + chunk, indices] + values
            # include_self=False: outputs with pairs take the max (min) of their sums only
            out[start:start + chunk].scatter_reduce_(
                1, rows.expand(len(sums), -1), sums, reduce="a" + self.reduce, include_self=False)
        return self.sign * out


class PrunedSAM(nn.Module):
    """Inference-only SAM layer holding only the parameters that survived :func:`prune`.

    Members
    -------
    form : str
        The :data:`FORMS` key of the layer it came from.
    terms : list of SparseTerm
        One per term of the form.
    """

    def __init__(self, in_features: int, form: str, terms: list[SparseTerm]):
        super().__init__()
        self.in_features, self.form, self.terms = in_features, form, terms

    @property
    def n_params(self) -> int:
        """Parameters kept: the surviving W+ and W- entries (the fills are not counted)."""
        return sum(len(t.values) for t in self.terms)

    @property
    def empty(self) -> torch.Tensor:
        """Boolean ``(n_terms, out_features)``: where a term lost every entry and outputs its fill."""
        return torch.stack([t.empty for t in self.terms])

    @torch.no_grad()
    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"expected x of shape (batch, {self.in_features}), "
                             f"not {tuple(x.shape)}")
        return sum(term(x) for term in self.terms)


@torch.no_grad()
def prune(layer: SAMLinear, activations: ActivationCounts, threshold: float) -> PrunedSAM:
    """Remove every parameter whose activation rate is below ``threshold`` (§III-D).

    Parameters
    ----------
    layer : SAMLinear
        The trained layer.
    activations : ActivationCounts
        Its counts from :func:`count_activations`.
    threshold : float
        Entries with rate < threshold are removed. 0 keeps everything; any threshold in
        ``(0, 1/n_samples]`` removes exactly the never-selected entries.

    Returns
    -------
    PrunedSAM
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold is an activation rate in [0, 1], not {threshold!r}")
    terms = []
    for (reduce, sign), w, rate, mean in zip(FORMS[layer.form], layer.term_weights(),
                                             activations.rates(), activations.means):
        keep = rate >= threshold
        rows, cols = keep.nonzero(as_tuple=True)    # row-major: sorted by output, then input
        indptr = torch.zeros(layer.out_features + 1, dtype=torch.int64)
        indptr[1:] = keep.sum(dim=1).cumsum(0)
        terms.append(SparseTerm(reduce, sign, indptr, cols, w.detach().cpu()[rows, cols].clone(),
                                mean.to(w.dtype)))
    return PrunedSAM(layer.in_features, layer.form, terms)
