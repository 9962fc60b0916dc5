"""Asymptotic-Quantized Estimator and the quantizers of MINW-Net (seed 004, §III).

A quantizer has two parts: an *output function* ``h`` that maps a real value to one of a few
levels (sign, eq. 4; ternary, eq. 21; powers of two, eq. 22), and an *estimator* that says what
the training graph computes around ``h``:

* :class:`STE` forwards ``h(a)`` and passes the gradient straight through where ``|a| <= 1``
  (eq. 5).
* :class:`AQE` forwards the mixture ``alpha*h(a) + (1 - alpha)*a`` (eq. 6, 18-19), optionally with
  ``h(a - z)``, ``z ~ U[-1, 1]`` (eq. 7), and passes back ``2*alpha`` times the gradient where
  ``|a| <= 1`` (eq. 13, 18-19). At ``alpha = 1/2`` that is exactly the STE's gradient
  (Theorem 1); :class:`AlphaSchedule` raises ``alpha`` to 1 over training, where the forward is
  ``h(a)`` itself (Theorem 3).

In inference (a module in eval mode) every quantizer outputs ``h(a)`` alone (eq. 20), whatever
the estimator, so what is evaluated is the network the hardware computes.

The levels are computed without PyTorch in :mod:`hwgen.sw.core.levels`, whose
:class:`~hwgen.sw.core.levels.Staircase` :class:`OutputFunction` extends with the torch
evaluation. Conventions fixed there:

* ``sign(0) = +1``, as in :mod:`hwgen.sw.core.ir`.
* A value exactly on a threshold goes to the level of smaller magnitude: eq. 21 and 22 both
  write ``|a| <= Delta``, so ternary gives 0 at ``|a| = Delta``.
* Eq. 22's thresholds (garbled in the seed) are the midpoints between adjacent levels, i.e.
  ``h`` rounds to the *nearest* level (dyadic thresholds, so the integer thresholds a hardware
  back end derives from them stay exact). For ``n = 2`` this is ternary with ``Delta = 1/2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from hwgen.sw.core.levels import Staircase, power_of_two_levels, sign_levels, ternary_levels

from ..export import BN_EPS
from ..ste import ClippedWeights

__all__ = [
    "OutputFunction", "sign", "ternary", "power_of_two", "STE", "AQE", "AlphaSchedule",
    "Quantizer", "QuantLinear", "QuantConv2d", "MINWMLP", "output_function", "set_alpha", "inference_op",
    "FLOAT_BITS",
]

FLOAT_BITS = 16
"""Bit widths from here up mean unquantized floating point (Table I's 16- and 32-bit rows)."""


class OutputFunction(Staircase):
    """A :class:`~hwgen.sw.core.levels.Staircase` ``h(a) = sign(a) * magnitudes[k]``
    (``k`` = thresholds below ``|a|``) evaluated on tensors; its parameters and ``levels`` are
    the staircase's (``bits`` also serves :func:`inference_op`).
    """

    @classmethod
    def of(cls, staircase: Staircase) -> OutputFunction:
        """The output function of the levels of ``staircase``."""
        return cls(staircase.magnitudes, staircase.thresholds, staircase.bits)

    def __call__(self, a: torch.Tensor) -> torch.Tensor:
        # right=False: thresholds[k-1] < |a| <= thresholds[k] gives k, so ties go to the lower level
        k = torch.bucketize(a.abs(), torch.tensor(self.thresholds, dtype=a.dtype, device=a.device))
        m = torch.tensor(self.magnitudes, dtype=a.dtype, device=a.device)[k]
        # sign(0) = +1 (hwgen.sw.core.ir); only matters for sign, whose smallest magnitude is not 0
        return torch.where(a >= 0, m, -m)


def sign() -> OutputFunction:
    """Eq. 4: ``{-1, +1}``, with ``sign(0) = +1`` (:func:`hwgen.sw.core.levels.sign_levels`)."""
    return OutputFunction.of(sign_levels())


def ternary(delta: float = 0.5) -> OutputFunction:
    """Eq. 21: 0 where ``|a| <= delta``, ``sign(a)`` elsewhere
    (:func:`hwgen.sw.core.levels.ternary_levels`).

    The default ``delta = 1/2`` is the midpoint of 0 and 1, the same rule as :func:`power_of_two`.
    """
    return OutputFunction.of(ternary_levels(delta))


def power_of_two(n_bits: int) -> OutputFunction:
    """Eq. 22: levels ``{0, +-2^-p}`` for ``p = q-1 .. 0``, ``q = 2^(n_bits-1) - 1``
    (:func:`hwgen.sw.core.levels.power_of_two_levels`).

    Thresholds are the midpoints of adjacent levels, so ``h`` rounds ``|a|`` to the nearest
    level, a tie going to the smaller one.
    """
    return OutputFunction.of(power_of_two_levels(n_bits))


class _ClippedEstimate(torch.autograd.Function):
    """Forward ``alpha*h(x - z) + (1 - alpha)*x``, backward ``grad_scale * g * 1{|x| <= 1}``.

    STE is (alpha, grad_scale) = (1, 1) (eq. 5); AQE is (alpha, 2*alpha) (eq. 18-19).
    """

    @staticmethod
    def forward(ctx, x, h, alpha, grad_scale, z):
        ctx.save_for_backward(x)
        ctx.grad_scale = grad_scale
        return alpha * h(x if z is None else x - z) + (1 - alpha) * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return ctx.grad_scale * grad * (x.abs() <= 1).to(grad.dtype), None, None, None, None


class STE:
    """Straight-through estimator (eq. 5): forward ``h(a)``, backward ``g * 1{|a| <= 1}``."""

    def __call__(self, x: torch.Tensor, h: OutputFunction) -> torch.Tensor:
        return _ClippedEstimate.apply(x, h, 1.0, 1.0, None)

    def __repr__(self):
        return "STE()"


class AQE:
    """Asymptotic-Quantized Estimator (eq. 6-7, 18-19).

    Forward ``alpha*h(a) + (1 - alpha)*a`` (eq. 18), or ``alpha*h(a - z) + (1 - alpha)*a`` with
    fresh ``z ~ U[-1, 1]`` per element and call when ``noise`` is set (eq. 7). Backward
    ``2*alpha * g * 1{|a| <= 1}``: the gradient's expectation over ``z`` (eq. 13), used with and
    without noise as eq. 18-19 do.

    Parameters
    ----------
    alpha : float
        Mixing weight in (0, 1]; 1/2 gives the STE's gradient (Theorem 1), 1 the forward ``h(a)``.
        Mutable: :func:`set_alpha` updates it during training.
    noise : bool
        Draw ``z`` (eq. 7) in the forward pass. Eq. 7 is written for sign; other ``h`` get the
        same ``h(a - z)``.
    generator : torch.Generator, optional
        Source of ``z``, for reproducible noise.
    """

    def __init__(self, alpha: float = 0.5, *, noise: bool = False,
                 generator: torch.Generator | None = None):
        self.alpha = alpha
        self.noise = noise
        self.generator = generator

    @property
    def alpha(self) -> float:
        return self._alpha

    @alpha.setter
    def alpha(self, value: float):
        if not 0 < value <= 1:
            raise ValueError(f"alpha must lie in (0, 1], not {value!r}")
        self._alpha = float(value)

    def noise_like(self, x: torch.Tensor) -> torch.Tensor:
        """``z ~ U[-1, 1]`` of ``x``'s shape (eq. 7)."""
        u = torch.rand(x.shape, generator=self.generator, dtype=x.dtype, device=x.device)
        return 2 * u - 1

    def __call__(self, x: torch.Tensor, h: OutputFunction) -> torch.Tensor:
        z = self.noise_like(x) if self.noise else None
        # eq. 18-19: the gradient is 2*alpha times the STE's
        return _ClippedEstimate.apply(x, h, self.alpha, 2 * self.alpha, z)

    def __repr__(self):
        return f"AQE(alpha={self.alpha}, noise={self.noise})"


@dataclass(frozen=True)
class AlphaSchedule:
    """AQE's ``alpha`` rising linearly from ``start`` to 1 over ``steps`` optimizer steps.

    Theorem 3 lets the mixture of eq. 6 approach the quantized value as training goes on; the
    schedule makes it reach ``h(a)`` exactly, so that the last steps train the network that
    inference runs (eq. 20). The default start, 1/2, is the STE's gradient (Theorem 1).

    Calling it with a step ``t`` gives ``start + (1 - start) * min(t, steps) / steps``: ``start``
    at 0, non-decreasing, 1 from ``steps`` on. Give it fewer steps than training has, so that the
    last ones run at ``alpha = 1`` and batch norm's running statistics are those of the
    quantized forward pass.
    """

    steps: int
    start: float = 0.5

    def __post_init__(self):
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise ValueError(f"steps must be a positive integer, not {self.steps!r}")
        if not 0 < self.start <= 1:
            raise ValueError(f"start must lie in (0, 1], not {self.start!r}")

    def __call__(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"step must be non-negative, not {step!r}")
        return self.start + (1 - self.start) * min(step, self.steps) / self.steps


class Quantizer(nn.Module):
    """Quantizes weights or activations: ``estimator(x, h)`` in training, ``h(x)`` in eval (eq. 20).

    Parameters
    ----------
    h : OutputFunction
        :func:`sign`, :func:`ternary` or :func:`power_of_two`.
    estimator : STE or AQE
        The training graph around ``h``.
    """

    def __init__(self, h: OutputFunction, estimator: STE | AQE):
        super().__init__()
        self.h = h
        self.estimator = estimator

    def forward(self, x):
        return self.estimator(x, self.h) if self.training else self.h(x)

    def extra_repr(self):
        return f"levels={self.h.levels}, estimator={self.estimator!r}"


class QuantLinear(ClippedWeights, nn.Linear):
    """Linear layer with quantized weights (eq. 19 in training, eq. 20 in eval); no bias.

    The real weights start uniform in [-1, 1] and are kept there by
    :func:`hwgen.sw.families.ste.clip_weights` after every optimizer step (Algorithm 1). Batch
    norm follows in place of a bias (§III-E).

    Members
    -------
    weight_quantizer : Quantizer
        ``Quantizer(weight_h, estimator)``, applied to ``weight`` on every forward pass.
    """

    def __init__(self, in_features: int, out_features: int, *, weight_h: OutputFunction,
                 estimator: STE | AQE):
        super().__init__(in_features, out_features, bias=False)
        nn.init.uniform_(self.weight, -1.0, 1.0)
        self.weight_quantizer = Quantizer(weight_h, estimator)

    def quantized_weight(self) -> torch.Tensor:
        return self.weight_quantizer(self.weight)

    def forward(self, x):
        return nn.functional.linear(x, self.quantized_weight())


class QuantConv2d(ClippedWeights, nn.Conv2d):
    """2-D convolution with quantized weights, like :class:`QuantLinear` (no bias)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 weight_h: OutputFunction, estimator: STE | AQE, padding: int = 0):
        super().__init__(in_channels, out_channels, kernel_size, padding=padding, bias=False)
        nn.init.uniform_(self.weight, -1.0, 1.0)
        self.weight_quantizer = Quantizer(weight_h, estimator)

    def quantized_weight(self) -> torch.Tensor:
        return self.weight_quantizer(self.weight)

    def forward(self, x):
        return self._conv_forward(x, self.quantized_weight(), None)


def output_function(bits: int) -> OutputFunction:
    """The ``h`` of an n-bit quantizer: sign (eq. 4) for 1 bit, power-of-two levels (eq. 22)
    from 2 bits (ternary with Delta = 1/2, eq. 21, at 2 bits)."""
    if not (isinstance(bits, int) and 1 <= bits < FLOAT_BITS):
        raise ValueError(f"a quantizer takes 1 to {FLOAT_BITS - 1} bits, not {bits!r}")
    return sign() if bits == 1 else power_of_two(bits)


class MINWMLP(nn.Module):
    """MINW-Net MLP (seed 004, §III-E): M-bit activations, N-bit weights.

    ``[QuantLinear (N bits), batch norm, activation quantizer (M bits)] x hidden -> QuantLinear
    (N bits) -> * exp(log_scale)``, no biases (batch norm follows, §III-E). Weights and
    activations share the quantizers: :func:`output_function` of their widths wrapped in
    ``estimator`` (one :class:`STE` or :class:`AQE` for the whole network, so that
    :func:`set_alpha` moves every quantizer at once). Widths of ``FLOAT_BITS`` or more keep that
    side unquantized (Table I's float rows; such a network has no multiplier-free hardware).

    The first layer reads the data's integer samples (0 .. ``in_max``) unquantized, as §III-E
    allows ("float input"), or, with ``quantize_input``, maps them onto [-1, 1] by
    ``2 x / in_max - 1`` and quantizes them to M bits like every other activation.

    Inference (eval mode) computes ``h`` exactly, with levels that are dyadic fractions, so the
    float network equals the integer one of ``dense_shift`` / ``dense_binary`` layers.
    """

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_classes: int, *, in_max: int,
                 act_bits: int, weight_bits: int, estimator: STE | AQE | None = None,
                 quantize_input: bool = False):
        super().__init__()
        if not (isinstance(in_max, int) and in_max >= 1):
            raise ValueError(f"in_max must be a positive integer, not {in_max!r}")
        self.n_in, self.hidden, self.n_classes = n_in, tuple(hidden), n_classes
        self.in_max, self.act_bits, self.weight_bits = in_max, act_bits, weight_bits
        self.quantize_input = quantize_input
        self.estimator = STE() if estimator is None else estimator

        def act():
            if act_bits >= FLOAT_BITS:
                return nn.Hardtanh()
            return Quantizer(output_function(act_bits), self.estimator)

        def linear(n_i, n_o):
            if weight_bits >= FLOAT_BITS:
                layer = nn.Linear(n_i, n_o, bias=False)
                nn.init.uniform_(layer.weight, -1.0, 1.0)
                return layer
            return QuantLinear(n_i, n_o, weight_h=output_function(weight_bits),
                               estimator=self.estimator)

        self.input_act = act() if quantize_input else None
        widths = (n_in, *self.hidden)
        self.layers = nn.ModuleList(linear(a, b) for a, b in zip(widths, widths[1:]))
        self.bns = nn.ModuleList(nn.BatchNorm1d(h, eps=BN_EPS) for h in self.hidden)
        self.acts = nn.ModuleList(act() for _ in self.hidden)
        self.head = linear(widths[-1], n_classes)
        self.log_scale = nn.Parameter(torch.tensor(-2.0))

    def forward(self, x):
        if self.input_act is not None:
            x = self.input_act(2 * x / self.in_max - 1)
        for layer, bn, act in zip(self.layers, self.bns, self.acts):
            x = act(bn(layer(x)))
        return self.head(x) * self.log_scale.exp()

    @torch.no_grad()
    def quantized_weights(self) -> list[torch.Tensor]:
        """Every layer's inference weights ``h(w)`` (eq. 20), the head's last."""
        return [m.quantized_weight() if isinstance(m, QuantLinear) else m.weight.clone()
                for m in (*self.layers, self.head)]


def set_alpha(model: nn.Module, alpha: float) -> None:
    """Set ``alpha`` of every :class:`AQE` estimator in ``model``'s quantizers."""
    for module in model.modules():
        if isinstance(module, Quantizer) and isinstance(module.estimator, AQE):
            module.estimator.alpha = alpha


@torch.no_grad()
def inference_op(m_bits: int, n_bits: int) -> str:
    """Table I: the operation an M-bit-input, N-bit-weight layer needs in inference.

    The smaller width decides: 1 or 2 bits (sign, ternary) give ``"XNOR"``; 3 up to
    ``FLOAT_BITS - 1`` give ``"SHIFT"`` (eq. 22's levels are powers of two, which Table I shows
    for 3 bits); when both are floating point (``>= FLOAT_BITS``) it is ``"MAC"``. Table I's
    "XNOR ADDER" and "SHIFT ADDER" rows, with one side floating point, are XNOR and SHIFT here.
    """
    for name, bits in (("m_bits", m_bits), ("n_bits", n_bits)):
        if not (isinstance(bits, int) and bits >= 1):
            raise ValueError(f"{name} must be a positive integer, not {bits!r}")
    smaller = min(m_bits, n_bits)
    if smaller <= 2:
        return "XNOR"
    if smaller < FLOAT_BITS:
        return "SHIFT"
    return "MAC"
