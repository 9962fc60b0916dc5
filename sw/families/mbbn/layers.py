"""Multi-branch binary networks: the {-1, +1} encoding decomposition of seed 003.

An M-bit state is an odd integer ``q`` in ``[-(2^M - 1), 2^M - 1]`` written with digits
``c_m`` in {-1, +1} as ``q = sum_m 2^(m-1) c_m`` (eq. 7). Its digits are plain binary: with the
offset code ``u = (q + 2^M - 1) / 2`` (an integer in ``0 .. 2^M - 1``), digit ``c_m`` is
``+1`` exactly when bit ``m - 1`` of ``u`` is set, because
``q = sum_m 2^(m-1) (2 b_m - 1) = 2 u - (2^M - 1)``. Digits are stored as IR bipolar bits
(bit 1 = +1, see :mod:`hwgen.sw.core.ir`), so the bit plane of digit m is bit m - 1 of ``u``.

A dot product of M-bit and K-bit states is then ``M * K`` bipolar dot products (eq. 8), each an
xnor-popcount; a real layer is that sum times ``r / ((2^M - 1)(2^K - 1))`` (eq. 9).

Two training routes, both ending in the same network of branches:

* **Algorithm 1** trains :class:`MBBNMLP` directly: K real weight matrices per layer, binarized
  by ``sign(HTanh(w))`` (eq. 14), activations split into M digits by the M-bit encoder (eq. 10)
  whose backward pass is the trigonometric derivative (eq. 13).
* **Algorithm 2** trains :class:`QuantMLP`, whose weights and activations go through
  ``Quantize_K`` with a learned range ``t`` (eq. 15) and a straight-through backward, then
  :func:`decompose` turns it into an :class:`MBBNMLP` with the same predictions: the branch
  weights are the digits of the quantized weights, and the scale of eq. 9 (here
  ``t_a t_w / ((2^M - 1)(2^K - 1))``) is absorbed into the batch norm that follows.

Every layer carries its own (M, K), so precision can differ per layer (Table IV).

Two choices differ from the seed's text, both forced by eq. 7:

* ``Quantize_K`` rounds onto the odd grid ``t q / (2^K - 1)`` of eq. 7 and eq. 21
  (Table II's levels -1, -1/3, 1/3, 1 for K = 2). Eq. 15 as printed rounds onto
  ``t n / (2^(K-1) - 1)``: 2^K - 1 levels including 0, which no K-digit {-1, +1} code can
  represent, and a division by zero for K = 1.
* Rounding ties (``(2^M - 1) x`` even) go to the upper state, the IR's sign(0) = +1. Eq. 10
  evaluates the sign of a sine that is zero there (or float noise), and at ``x = 0`` it gives
  digits of no neighbouring state (eq. 11 gives {+1, +1}, the state 3, under sign(0) = +1).
  Away from the 2^M - 1 bin edges the two agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hwgen.sw.core.bits import disagreements, pack_bits

from ..export import BN_EPS
from ..ste import ClippedWeights, binarize

__all__ = [
    "hard_tanh", "hard_relu", "levels", "odd_round", "recombine", "mbit_encode", "quantize",
    "Quantize", "code_digits", "pack_digits", "mbbn_matmul", "mbbn_matmul_packed", "eq9_scale",
    "eq16_speedup", "MBBNLinear", "QuantLinear", "MBBNMLP", "QuantMLP", "decompose",
]


def hard_tanh(x: torch.Tensor) -> torch.Tensor:
    """HTanh of Table I: ``x`` clamped to [-1, 1]; gradient 1 on the closed interval."""
    return torch.clamp(x, -1.0, 1.0)


def hard_relu(x: torch.Tensor) -> torch.Tensor:
    """HReLU of Table I: ``x`` clamped to [0, 1]; gradient 1 on the closed interval."""
    return torch.clamp(x, 0.0, 1.0)


def levels(bits: int) -> int:
    """``2^M - 1`` for ``M = bits`` digits (1 to 16, else ValueError): the largest eq. 7 state."""
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must lie in 1..16, not {bits!r}")
    return (1 << bits) - 1


def odd_round(y: torch.Tensor) -> torch.Tensor:
    """The odd integer state nearest ``y``, ties up: ``2 floor(y / 2) + 1``.

    For ``|y| <= 2^M - 1`` the result is an eq. 7 state of M digits; each state q owns
    ``[q - 1, q + 1)``, so the extreme states own half a bin inside the range.
    """
    return 2 * torch.floor(y / 2) + 1


def _states(x: torch.Tensor, bits: int) -> torch.Tensor:
    """The eq. 7 states of HTanh(x) at ``bits`` digits: ``odd_round((2^M - 1) HTanh(x))``."""
    return odd_round(levels(bits) * hard_tanh(x))


def recombine(digits: torch.Tensor) -> torch.Tensor:
    """Eq. 7: ``sum_m 2^(m-1) digits[m-1]`` over the leading axis."""
    place = 2.0 ** torch.arange(digits.shape[0], dtype=digits.dtype)
    return (place.view(-1, *([1] * (digits.dim() - 1))) * digits).sum(dim=0)


def _state_digits(q: torch.Tensor, m_bits: int) -> torch.Tensor:
    """Digits (M, ...) in {-1, +1} of odd states ``q``: digit m is bit m - 1 of (q + 2^M - 1)/2."""
    u = ((q + levels(m_bits)) / 2).to(torch.int64)
    shifts = torch.arange(m_bits).view(-1, *([1] * q.dim()))
    return (2 * ((u.unsqueeze(0) >> shifts) & 1) - 1).to(q.dtype)


class _MBitEncode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, m_bits):
        ctx.save_for_backward(x)
        ctx.m_bits = m_bits
        return _state_digits(_states(x, m_bits), m_bits)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        m_bits = ctx.m_bits
        shape = (m_bits,) + (1,) * x.dim()
        m = torch.arange(1, m_bits + 1, dtype=x.dtype).view(shape)
        omega = levels(m_bits) * math.pi / 2.0 ** m
        # eq. 10: the top digit is sin, every lower digit -sin
        sign = torch.where(m == m_bits, 1.0, -1.0).to(x.dtype)
        # eq. 13 for any M: d phi_m / dx = s_m omega_m cos(omega_m x) on [-1, 1], 0 outside
        deriv = sign * omega * torch.cos(omega * x) * (x.abs() <= 1).to(x.dtype)
        return (grad * deriv).sum(dim=0), None


def mbit_encode(x: torch.Tensor, m_bits: int) -> torch.Tensor:
    """The M-bit encoder of eq. 10: digits of HTanh(x) as a (M, ...) tensor in {-1, +1}.

    Digit index m - 1 holds phi_M^m (index M - 1 is the top digit), so
    ``sum_m 2^(m-1) digits[m-1] = odd_round((2^M - 1) HTanh(x))``. Forward as in the module
    docs (eq. 10 away from bin edges); backward the trigonometric derivative of eq. 13.
    """
    return _MBitEncode.apply(x, m_bits)


class _OddRoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y):
        return odd_round(y)

    @staticmethod
    def backward(ctx, grad):
        return grad


def quantize(x: torch.Tensor, t: torch.Tensor, bits: int) -> torch.Tensor:
    """``Quantize_K`` (eq. 15) on the odd grid: ``d * odd_round((2^K - 1) HTanh(x / t))``.

    ``d = t / (2^K - 1)``; the levels are ``d q`` for the eq. 7 states q, so the range is
    [-t, t] and there are 2^K of them. Backward: rounding is the identity (STE), clamp and
    scales differentiate as written, so ``dx = 1{|x| <= t}`` and
    ``dt = q / (2^K - 1) - (x / t) 1{|x| <= t}`` (the rounding error inside, the level outside).
    """
    n = levels(bits)
    return t / n * _OddRoundSTE.apply(n * hard_tanh(x / t))


class Quantize(nn.Module):
    """``Quantize_K`` (eq. 15) with a range ``t``, learned unless ``learn_t`` is false.

    Members
    -------
    bits : int
        K, the number of {-1, +1} digits of a state.
    t : torch.Tensor
        The range; values are clamped to [-t, t]. Kept at least 1e-3 in the forward pass.
    """

    def __init__(self, bits: int, *, t: float = 1.0, learn_t: bool = True):
        super().__init__()
        levels(bits)
        if t <= 0:
            raise ValueError(f"the range t must be positive, not {t!r}")
        self.bits = bits
        self.t = nn.Parameter(torch.tensor(float(t)), requires_grad=learn_t)

    def range(self) -> torch.Tensor:
        return self.t.clamp_min(1e-3)

    def step(self) -> float:
        """``d = t / (2^K - 1)``: the value of state 1."""
        return float(self.range().detach()) / levels(self.bits)

    def forward(self, x):
        return quantize(x, self.range(), self.bits)

    def states(self, x) -> tuple[torch.Tensor, torch.Tensor]:
        """``(q, d)`` with ``forward(x) == d * q``: the odd states (STE) and the step ``t / L``.

        A product of states is an exact integer in float arithmetic, so layers multiply
        states and scale once: ties between outputs stay ties, as in the integer hardware.
        """
        t, n = self.range(), levels(self.bits)
        return _OddRoundSTE.apply(n * hard_tanh(x / t)), t / n

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> np.ndarray:
        """The odd integer states of ``x`` (int64); ``forward(x) == step() * codes(x)``."""
        return _states(x / self.range(), self.bits).to(torch.int64).numpy()


def code_digits(codes: np.ndarray, bits: int) -> np.ndarray:
    """The digits of odd states as bit planes: plane m - 1 is bit m - 1 of (q + 2^M - 1) / 2.

    Parameters
    ----------
    codes : numpy.ndarray
        Integer states, odd, in ``[-(2^bits - 1), 2^bits - 1]``; any shape.
    bits : int
        M, the number of digits.

    Returns
    -------
    numpy.ndarray
        uint8 of shape ``(bits,) + codes.shape``. Bit 1 is the digit +1 (the IR's bipolar
        encoding), so eq. 7 reads ``q = sum_m 2^(m-1) (2 plane[m-1] - 1)``.

    Raises
    ------
    ValueError
        For a state that is even or out of range, naming it.
    """
    codes = np.asarray(codes)
    n = levels(bits)
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"states must be integers, not {codes.dtype}")
    bad = codes[(codes % 2 == 0) | (np.abs(codes) > n)]
    if bad.size:
        raise ValueError(f"{bits}-bit states are odd integers in [-{n}, {n}], not {bad[0]!r}")
    u = (codes.astype(np.int64) + n) // 2
    return np.stack([(u >> m) & 1 for m in range(bits)]).astype(np.uint8)


def pack_digits(codes: np.ndarray, bits: int) -> np.ndarray:
    """(rows, N) odd states -> (bits, rows, ceil(N/64)) uint64 packed digit planes."""
    return pack_bits(code_digits(codes, bits))


def mbbn_matmul_packed(x_planes: np.ndarray, w_planes: np.ndarray, n: int) -> np.ndarray:
    """Eq. 8 on packed digit planes (M, B, words) and (K, J, words) of N-element rows.

    Returns ``sum_{m,k} 2^(m+k-2) (2 P_mk - N)`` as (B, J) int64, with
    ``P_mk = popcount(xnor(c_m, d_k))``; the zero padding of the last word agrees in every
    pair of planes, so it never counts as a disagreement.
    """
    acc = np.zeros((x_planes.shape[1], w_planes.shape[1]), np.int64)
    for m, xp in enumerate(x_planes):
        for k, wp in enumerate(w_planes):
            # 2 P - N = N - 2 D, D the disagreements
            acc += (n - 2 * disagreements(xp, wp)) << (m + k)
    return acc


def mbbn_matmul(x_codes: np.ndarray, w_codes: np.ndarray, m_bits: int, k_bits: int) -> np.ndarray:
    """``x_codes @ w_codes.T`` by eq. 8: the golden arithmetic of a multi-branch layer.

    M * K packed xnor-popcounts (``numpy.bitwise_count`` on 64-bit words), no multiplication.

    Parameters
    ----------
    x_codes : numpy.ndarray
        (B, N) M-bit states (odd integers, ``|q| <= 2^M - 1``), e.g. encoded activations.
    w_codes : numpy.ndarray
        (J, N) K-bit states, e.g. quantized weights, one row per neuron.
    m_bits, k_bits : int
        M and K.

    Returns
    -------
    numpy.ndarray
        (B, J) int64, exactly the integer matmul.
    """
    x_codes, w_codes = np.asarray(x_codes), np.asarray(w_codes)
    if x_codes.ndim != 2 or w_codes.ndim != 2 or x_codes.shape[1] != w_codes.shape[1]:
        raise ValueError(f"states must be (B, N) and (J, N), not {x_codes.shape} and "
                         f"{w_codes.shape}")
    return mbbn_matmul_packed(pack_digits(x_codes, m_bits), pack_digits(w_codes, k_bits),
                              x_codes.shape[1])


def eq9_scale(m_bits: int, k_bits: int, r: float = 1.0) -> float:
    """The scale of eq. 9, ``r / ((2^M - 1)(2^K - 1))``: integer sum -> layer output."""
    return r / (levels(m_bits) * levels(k_bits))


def eq16_speedup(n: int, m_bits: int, k_bits: int, *, gamma: float = 1.91,
                 beta: float | None = None, register: int = 64) -> float:
    """Predicted speedup of eq. 16 over a float dot product of length N.

    ``N gamma / (M K (gamma + 2 ceil(N / L)) + (M K - 1) beta)``, with the seed's
    ``gamma = 1.91`` (MAC vs bitwise), ``beta = gamma / 2`` (add vs bitwise) and ``L = 64``.
    """
    beta = gamma / 2 if beta is None else beta
    mk = m_bits * k_bits
    return n * gamma / (mk * (gamma + 2 * math.ceil(n / register)) + (mk - 1) * beta)


class MBBNLinear(ClippedWeights, nn.Module):
    """A multi-branch binary dense layer trained by Algorithm 1; no bias (batch norm follows).

    The input is encoded into M digit vectors (eq. 10); the K real weight matrices are each
    binarized by ``sign(HTanh(w))`` (eq. 14), which is :func:`hwgen.sw.families.ste.binarize`:
    sign(HTanh(w)) = sign(w), and its STE gradient through HTanh is ``1{|w| <= 1}``.
    The output is ``sum_{m,k} 2^(m+k-2) a_m W_k^T`` (Algorithm 1, line 5), times the eq. 9
    scale when ``scaled`` (line 6). The M * K branch products are evaluated as one product of
    the recombined states, ``(sum_m 2^(m-1) a_m)(sum_k 2^(k-1) W_k)^T``: the same bilinear form,
    so forward values and autograd's gradients are those of lines 12-18.

    Members
    -------
    m_bits, k_bits : int
        Digits of the input states (M) and of the weight states (K).
    weight : torch.nn.Parameter
        (K, out, in) real branch weights, initialized uniformly in [-1, 1].
    scaled : bool
        Multiply by ``eq9_scale(M, K)``; off when batch norm follows, which absorbs it.
    """

    def __init__(self, in_features: int, out_features: int, *, m_bits: int, k_bits: int,
                 scaled: bool = False):
        super().__init__()
        for bits in (m_bits, k_bits):
            levels(bits)
        self.in_features, self.out_features = in_features, out_features
        self.m_bits, self.k_bits, self.scaled = m_bits, k_bits, scaled
        self.weight = nn.Parameter(torch.empty(k_bits, out_features, in_features).uniform_(-1, 1))

    def branch_weights(self) -> torch.Tensor:
        """(K, out, in) binary branch weights in {-1, +1} (eq. 14); index k - 1 is W^k."""
        return binarize(self.weight)

    def forward(self, a):
        acc = F.linear(recombine(mbit_encode(a, self.m_bits)), recombine(self.branch_weights()))
        return acc * eq9_scale(self.m_bits, self.k_bits) if self.scaled else acc

    @torch.no_grad()
    def weight_codes(self) -> np.ndarray:
        """(out, in) int64 K-bit weight states ``sum_k 2^(k-1) W^k_b`` (eq. 7)."""
        return recombine(self.branch_weights()).to(torch.int64).numpy()

    @torch.no_grad()
    def input_codes(self, a: torch.Tensor) -> np.ndarray:
        """The M-bit states this layer's encoder makes of ``a`` (int64)."""
        return _states(a, self.m_bits).to(torch.int64).numpy()


class QuantLinear(nn.Module):
    """A quantized dense layer trained by Algorithm 2; no bias (batch norm follows).

    ``F.linear(Quantize_M(a), Quantize_K(w))`` with a learned range for each (eq. 15). The
    first layer of a network gets its inputs already on [-1, 1] and keeps ``t = 1`` for them.

    Members
    -------
    m_bits, k_bits : int
        Bits of the input activations (M) and of the weights (K).
    weight : torch.nn.Parameter
        (out, in) real weights, initialized uniformly in [-1, 1].
    act, weight_quant : Quantize
        The quantizers of the input (M bits) and of the weight (K bits).
    """

    def __init__(self, in_features: int, out_features: int, *, m_bits: int, k_bits: int,
                 learn_input_range: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.m_bits, self.k_bits = m_bits, k_bits
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-1, 1))
        self.act = Quantize(m_bits, learn_t=learn_input_range)
        self.weight_quant = Quantize(k_bits)

    def forward(self, a):
        # F.linear(Quantize_M(a), Quantize_K(w)) with the steps taken out of the sum (exact)
        qa, da = self.act.states(a)
        qw, dw = self.weight_quant.states(self.weight)
        return F.linear(qa, qw) * (da * dw)


class _EncodedMLP(nn.Module):
    """Inputs in [0, in_max] mapped onto [-1, 1] -> [layer, batch norm] x len(hidden) -> layer.

    ``bits`` holds one (M, K) per layer (Table IV's mixed precision). The logits are the head's
    output times one positive learned scale (a softmax temperature; the argmax ignores it).
    """

    def __init__(self, n_in: int, hidden: Sequence[int], n_classes: int, *,
                 bits: Sequence[tuple[int, int]], in_max: float):
        super().__init__()
        hidden, bits = tuple(hidden), tuple(tuple(b) for b in bits)
        if len(bits) != len(hidden) + 1:
            raise ValueError(f"bits needs one (M, K) per layer ({len(hidden) + 1}), not {bits!r}")
        if in_max <= 0:
            raise ValueError(f"in_max must be positive, not {in_max!r}")
        self.n_in, self.hidden, self.n_classes = n_in, hidden, n_classes
        self.bits, self.in_max = bits, float(in_max)
        widths = (n_in, *hidden, n_classes)
        self.layers = nn.ModuleList(self._layer(i, widths[i], widths[i + 1], m, k, i == len(hidden))
                                    for i, (m, k) in enumerate(bits))
        self.bns = nn.ModuleList(nn.BatchNorm1d(h, eps=BN_EPS) for h in hidden)
        self.log_scale = nn.Parameter(torch.tensor(0.0))

    def _layer(self, index, n_in, n_out, m_bits, k_bits, head):
        raise NotImplementedError

    def forward(self, x):
        a = 2 * x / self.in_max - 1
        for layer, bn in zip(self.layers, self.bns):
            a = bn(layer(a))
        return self.layers[-1](a) * self.log_scale.exp()


class MBBNMLP(_EncodedMLP):
    """Multi-branch binary MLP (Algorithm 1) of :class:`MBBNLinear` layers.

    Hidden layers skip the eq. 9 scale (their batch norm absorbs it); the head applies it.
    """

    def _layer(self, index, n_in, n_out, m_bits, k_bits, head):
        return MBBNLinear(n_in, n_out, m_bits=m_bits, k_bits=k_bits, scaled=head)


class QuantMLP(_EncodedMLP):
    """Quantized MLP (Algorithm 2) of :class:`QuantLinear` layers; :func:`decompose` it."""

    def _layer(self, index, n_in, n_out, m_bits, k_bits, head):
        return QuantLinear(n_in, n_out, m_bits=m_bits, k_bits=k_bits,
                           learn_input_range=index > 0)


@torch.no_grad()
def decompose(qnn: QuantMLP) -> MBBNMLP:
    """Algorithm 2's decomposition: the :class:`MBBNMLP` that predicts what ``qnn`` predicts.

    Layer i computes ``s_i acc_i`` with ``acc_i = x_codes @ w_codes^T`` (an eq. 8 sum of
    branches) and ``s_i = d_a d_w`` the product of its quantizers' steps, eq. 9 with
    ``r = t_a t_w``. The branch weights are the digits of the weight states. The scale and the
    next layer's input range ``t`` fold into batch norm: ``BN(s acc) / t`` is a batch norm of
    ``acc`` with mean/s, variance/s^2, eps/s^2, weight/t and bias/t, whose output the next
    encoder reads on [-1, 1]. The head's scale moves into the logit temperature. The result
    is in inference mode, in ``qnn``'s dtype (float64 keeps the folding exact to rounding).
    """
    mbbn = MBBNMLP(qnn.n_in, qnn.hidden, qnn.n_classes, bits=qnn.bits, in_max=qnn.in_max)
    mbbn.to(qnn.log_scale.dtype)
    for i, (q_layer, b_layer) in enumerate(zip(qnn.layers, mbbn.layers)):
        planes = code_digits(q_layer.weight_quant.codes(q_layer.weight), q_layer.k_bits)
        b_layer.weight.copy_(torch.as_tensor(2.0 * planes - 1.0))
        s = q_layer.act.step() * q_layer.weight_quant.step()
        if i < len(qnn.bns):
            src, dst = qnn.bns[i], mbbn.bns[i]
            t = float(qnn.layers[i + 1].act.range())
            dst.running_mean.copy_(src.running_mean / s)
            dst.running_var.copy_(src.running_var / s ** 2)
            # rounded to float32 as its export writes it (hwgen.sw.families.export.BN_EPS)
            dst.eps = float(np.float32(src.eps / s ** 2))
            dst.weight.copy_(src.weight / t)
            dst.bias.copy_(src.bias / t)
        else:
            mbbn.log_scale.copy_(qnn.log_scale + math.log(s / eq9_scale(b_layer.m_bits,
                                                                        b_layer.k_bits)))
    return mbbn.eval()
