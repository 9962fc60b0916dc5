"""MIMO over-the-air computation (OAC) layer of seed 000: a complex linear layer made of a channel.

A fully connected layer ``y = W x`` (§2.2) is computed by sending ``x`` over a MIMO channel
``H`` (N_r x N_t, rank >= r) in ``K = ceil(n_out / r)`` transmissions of r streams each:

* eq. 1, precoding:   x_t,k = P W~_k x        P: (N_t, r) beamformer, W~_k: (r, n_in) weights
* eq. 2, channel:     y_r,k = H x_t,k + n_k
* eq. 3, combining:   y_k = C^H y_r,k         C: (N_r, r), the same for every k
* eq. 4, together:    y_k = C^H H P W~_k x (noiseless); y = [y_1; ...; y_K], cut to n_out rows.

**Shapes.** Inputs are batched rows, ``x`` of shape ``(B, n_in)``; the layer outputs ``(B,
n_out)``. Internally the K transmissions are a leading axis: ``x_t`` is ``(K, B, N_t)``.

**Backward (eq. 5-11).** The transmitter never knows ``H``. It obtains
``g_x_t,k = H^H C g_y_k`` (eq. 6) by a *backward transmission*: the receiver sends
``C^* conj(g_y_k)`` over the reciprocal channel ``H^T``, the transmitter receives
``H^T C^* conj(g_y_k) (+ noise)`` and conjugates it (eq. 10-11). In this module ``H`` appears
only inside :func:`_transmit` (forward, ``H x``) and :func:`_transmit_back` (backward, ``H^T s``):
everything else is what one of the two ends computes from its own signals and parameters.

**Gradient convention.** PyTorch's: for ``y = A x`` the gradient of ``x`` is ``A^H g_y`` and
that of ``A`` is ``g_y x^H``. Eq. 5 (``g_C = sum_k y_r,k g_y_k^H``; the paper's ``y_t,k`` is
``y_r,k``), eq. 6 and eq. 9 (``g_x = sum_k W~_k^H P^H g_x_t,k``) coincide with it. Eq. 7-8 as
printed are conjugate-transposed/garbled (``W~_k x g^H`` is r x N_t, not the N_t x r of P); we
use ``g_P = sum_k g_x_t,k (W~_k x)^H`` and, per transmission (no sum over k),
``g_W~_k = P^H g_x_t,k x^H``. All gradients also sum over the batch.

**Noise and SNR.** ``snr_db`` is the ratio of the mean received signal power *per antenna* to
the noise variance: for the forward, ``mean(|H x_t,k|^2)`` over the batch, the K transmissions
and the N_r antennas, measured afresh on every batch; ``n_k ~ CN(0, sigma^2 I)``. The backward
transmission gets noise by the same rule, relative to ``mean(|H^T s|^2)`` over its N_t antennas,
unless ``noisy_backward=False``. ``snr_db=None`` is noiseless in both directions. The layer does
not normalize the channel's gain; the paper leaves it to batch norm and Adam (§2.2).

**Self-adaptive beamforming (§3, eq. 15-16).** ``R_f = E(y_r y_r^H)`` is the covariance of the
*received* N_r-dim signals y_r,k of the last batch (the paper writes ``y_k``, but ``U_{r+1:}``
needs N_r rows), mean over transmissions and samples. With its SVD ``U S V^H`` the forward loss is
``||C^H U_{r+1:}||_F^2``: eq. 15's ``C U_{r+1:}`` does not compose and is a matrix, so we take the
squared Frobenius norm of ``C^H U_{r+1:}``, the energy of C in the N_r - r weakest directions.
The backward loss takes ``R_b = E(g_x_t g_x_t^H)`` of the backward-received gradients (N_t-dim)
and is ``||P^H U'_{r+1:}||_F^2`` (eq. 16's ``E_k(x_k^H V'_{r+1:})`` read the same way; R_b is
Hermitian, so U' and V' span the same subspaces). The covariances are detached constants.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "steering_vector", "random_channel", "DriftingChannel", "OACLinear",
    "forward_beam_loss", "backward_beam_loss",
]


def steering_vector(n: int, angle: torch.Tensor) -> torch.Tensor:
    """``(1, e^{j angle}, ..., e^{j (n-1) angle})`` for each angle: shape ``angle.shape + (n,)``."""
    return torch.polar(torch.ones_like(angle)[..., None],
                       angle[..., None] * torch.arange(n, dtype=angle.dtype))


def random_channel(n_r: int, n_t: int, paths: int = 8, generator: torch.Generator | None = None,
                   dtype: torch.dtype = torch.cfloat) -> torch.Tensor:
    """A multipath channel H (eq. 17), shape ``(n_r, n_t)``, rank ``<= min(paths, n_r, n_t)``.

    ``H = sum_n a_n u(theta_n) v(phi_n)^H`` with ``u = steering_vector(n_r, theta)``,
    ``v = steering_vector(n_t, phi)``, ``theta, phi ~ U(-pi, pi)``, ``|a_n| ~ U(0.5, 1.5)``,
    ``angle(a_n) ~ U(-pi, pi)``.

    Reading of the ^H in eq. 17: as printed, the N_r-vector carries the ^H (a conjugated column)
    and the N_t-vector is a plain row, i.e. ``conj(u(theta)) v(phi)^T = u(-theta) v(-phi)^H``.
    We use the usual array-response form ``u(theta) v(phi)^H``; the two differ only by the
    sign of the angles, whose distributions are symmetric, so they draw the same channels.

    Draws, in this order from ``generator`` (float64): theta (paths), phi (paths), |a| (paths),
    angle(a) (paths). The sum is formed in complex128 and cast to ``dtype``.
    """
    if min(n_r, n_t, paths) < 1:
        raise ValueError(f"n_r, n_t and paths must be positive, not {n_r}, {n_t}, {paths}")

    def uniform(lo, hi):
        return lo + (hi - lo) * torch.rand(paths, generator=generator, dtype=torch.float64)

    theta, phi = uniform(-math.pi, math.pi), uniform(-math.pi, math.pi)
    a = torch.polar(uniform(0.5, 1.5), uniform(-math.pi, math.pi))
    u, v = steering_vector(n_r, theta), steering_vector(n_t, phi)   # (paths, n_r), (paths, n_t)
    h = torch.einsum("p,pi,pj->ij", a, u, v.conj())                 # sum_n a_n u_n v_n^H
    return h.to(dtype)


class DriftingChannel:
    """A slowly moving channel (eq. 18): ``H <- (1 - rho) H + rho H^`` every ``every`` batches.

    ``H^`` is a fresh eq. 17 draw. ``rho = 0`` is a stable channel. Call :meth:`step` once per
    training batch. All draws (the initial H, then one H^ per update, drawn even when
    ``rho = 0``) come from ``generator``, by default ``torch.Generator().manual_seed(seed)``, so
    a second generator seeded alike reproduces every H^.

    Members
    -------
    H : torch.Tensor
        The current channel, ``(n_r, n_t)``.
    t : int
        Batches stepped so far.
    """

    def __init__(self, n_r: int, n_t: int, rho: float, every: int = 50, paths: int = 8,
                 seed: int = 0, *, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.cfloat):
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"rho must lie in [0, 1], not {rho!r}")
        if every < 1:
            raise ValueError(f"every must be positive, not {every!r}")
        self.n_r, self.n_t, self.rho, self.every, self.paths, self.dtype = (
            n_r, n_t, rho, every, paths, dtype)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(seed)
        self.H = random_channel(n_r, n_t, paths, self.generator, dtype)
        self.t = 0

    def step(self) -> bool:
        """Count one batch; every ``every``-th call moves H by eq. 18. Returns whether it did."""
        self.t += 1
        if self.t % self.every:
            return False
        h_hat = random_channel(self.n_r, self.n_t, self.paths, self.generator, self.dtype)
        # eq. 18 prints H_{t+1} = (1 - rho) H_t + rho H_t; the second H_t is a typo for H^_t,
        # the fresh eq. 17 draw the text defines right after
        self.H = (1 - self.rho) * self.H + self.rho * h_hat
        return True


def _transmit(H: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
    """The forward channel: row signals ``(..., N_t)`` -> ``H x`` as rows ``(..., N_r)``."""
    return x_t @ H.transpose(0, 1)


def _transmit_back(H: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """The reciprocal channel: row signals ``(..., N_r)`` -> ``H^T s`` as rows ``(..., N_t)``."""
    return s @ H


def _add_noise(signal: torch.Tensor, snr_db: float | None) -> torch.Tensor:
    """Add CN(0, sigma^2) with sigma^2 = mean(|signal|^2) / 10^(snr_db/10); None: no noise."""
    if snr_db is None:
        return signal
    variance = signal.abs().square().mean() / 10.0 ** (snr_db / 10.0)
    # complex randn has E|n|^2 = 1 (real and imaginary parts each of variance 1/2)
    return signal + variance.sqrt() * torch.randn_like(signal)


class _OACFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, P, W, C, H, n_out, snr_db, noisy_backward, probe):
        z = torch.einsum("krn,bn->kbr", W, x)                   # W~_k x, (K, B, r)
        x_t = z @ P.transpose(0, 1)                             # eq. 1, (K, B, N_t)
        y_r = _add_noise(_transmit(H, x_t), snr_db)             # eq. 2, (K, B, N_r)
        y = y_r @ C.conj()                                      # eq. 3: rows of C^H y_r
        probe.received = y_r.detach()
        ctx.save_for_backward(x, P, W, C, H, z, y_r)
        ctx.settings = (n_out, snr_db if noisy_backward else None, probe)
        K, B, r = y.shape
        return y.transpose(0, 1).reshape(B, K * r)[:, :n_out]  # concatenate the y_k, cut

    @staticmethod
    def backward(ctx, g_out):
        x, P, W, C, H, z, y_r = ctx.saved_tensors
        n_out, snr_db, probe = ctx.settings
        K, B, r = z.shape
        g_y = g_out.new_zeros(B, K * r)
        g_y[:, :n_out] = g_out                                  # cut outputs get no gradient
        g_y = g_y.reshape(B, K, r).transpose(0, 1)              # (K, B, r)

        # receiver: its own combiner gradient from what it received (eq. 5)
        g_C = torch.einsum("kbi,kbj->ij", y_r, g_y.conj())
        # backward transmission (eq. 10-11): send C^* conj(g_y) over H^T, conjugate on arrival
        s = g_y.conj() @ C.conj().transpose(0, 1)               # rows of C^* conj(g_y)
        g_x_t = _add_noise(_transmit_back(H, s), snr_db).conj()  # = H^H C g_y (+ noise), eq. 6
        probe.received_gradient = g_x_t.detach()

        # transmitter: everything from g_x_t, P, W~ and x (eq. 7-9)
        g_P = torch.einsum("kbt,kbr->tr", g_x_t, z.conj())      # sum_k g_x_t,k (W~_k x)^H
        g_z = g_x_t @ P.conj()                                  # rows of P^H g_x_t,k
        g_W = torch.einsum("kbr,bn->krn", g_z, x.conj())        # P^H g_x_t,k x^H
        g_x = torch.einsum("kbr,krn->bn", g_z, W.conj())        # sum_k W~_k^H P^H g_x_t,k
        return g_x, g_P, g_W, g_C, None, None, None, None, None


class OACLinear(nn.Module):
    """Complex ``y = W x`` computed over a MIMO channel (eq. 1-4), trained by reciprocity (5-11).

    Parameters
    ----------
    n_in, n_out : int
        N_i and N_o of the paper.
    channel : object with ``.H``, or torch.Tensor
        The physical channel (e.g. a :class:`DriftingChannel`), read on every forward; the
        backward of that batch uses the same H (reciprocity at one instant). Cast to ``dtype``.
    rank : int
        r, the streams per transmission; ``K = ceil(n_out / r)`` transmissions.
    snr_db : float or None
        Per-antenna received SNR (see the module docstring); None is noiseless.
    n_t, n_r : int or None
        Antenna counts; by default the channel's, and checked against it on every forward.
    noisy_backward : bool
        Whether the backward transmission is noisy too (when ``snr_db`` is set).
    dtype : torch.dtype
        Complex dtype of the parameters.

    Members
    -------
    P : nn.Parameter
        Precoder, ``(n_t, rank)``, initialized CN(0, 1/n_t).
    W : nn.Parameter
        The W~_k, ``(K, rank, n_in)``, initialized CN(0, 1/n_in).
    C : nn.Parameter
        Combiner, ``(n_r, rank)``, initialized CN(0, 1/n_r).
    received, received_gradient : torch.Tensor or None
        y_r,k of the last forward ``(K, B, n_r)`` and g_x_t,k of the last backward
        ``(K, B, n_t)`` as received (with their noise): the beam losses' data.
    """

    def __init__(self, n_in: int, n_out: int, channel, rank: int, snr_db: float | None = None,
                 n_t: int | None = None, n_r: int | None = None, *, noisy_backward: bool = True,
                 dtype: torch.dtype = torch.cfloat):
        super().__init__()
        self.channel = channel
        h_r, h_t = self._channel().shape
        self.n_r, self.n_t = n_r or h_r, n_t or h_t
        if (self.n_r, self.n_t) != (h_r, h_t):
            raise ValueError(f"n_r, n_t = {self.n_r}, {self.n_t} but H is {h_r} x {h_t}")
        if min(n_in, n_out) < 1 or not 1 <= rank <= min(self.n_r, self.n_t):
            raise ValueError(f"need n_in, n_out >= 1 and 1 <= rank <= min(n_r, n_t), not "
                             f"{n_in}, {n_out}, {rank}")
        self.n_in, self.n_out, self.rank = n_in, n_out, rank
        self.K = -(-n_out // rank)
        self.snr_db, self.noisy_backward = snr_db, noisy_backward
        self.P = nn.Parameter(torch.randn(self.n_t, rank, dtype=dtype) / math.sqrt(self.n_t))
        self.W = nn.Parameter(torch.randn(self.K, rank, n_in, dtype=dtype) / math.sqrt(n_in))
        self.C = nn.Parameter(torch.randn(self.n_r, rank, dtype=dtype) / math.sqrt(self.n_r))
        self.received = self.received_gradient = None

    def _channel(self) -> torch.Tensor:
        H = self.channel if isinstance(self.channel, torch.Tensor) else self.channel.H
        return H.detach()

    def _H(self) -> torch.Tensor:
        H = self._channel().to(self.P.dtype)
        if H.shape != (self.n_r, self.n_t):
            raise ValueError(f"H is {tuple(H.shape)}, the layer has n_r, n_t = {self.n_r}, "
                             f"{self.n_t}")
        return H

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"expected x of shape (batch, {self.n_in}), not {tuple(x.shape)}")
        return _OACFunction.apply(x.to(self.P.dtype), self.P, self.W, self.C, self._H(),
                                  self.n_out, self.snr_db, self.noisy_backward, self)

    def effective_weight(self) -> torch.Tensor:
        """``[C^H H P W~_1; ...; C^H H P W~_K]`` cut to ``(n_out, n_in)``: the noiseless layer."""
        A = self.C.conj().transpose(0, 1) @ self._H() @ self.P            # (r, r)
        return (A @ self.W).reshape(self.K * self.rank, self.n_in)[:self.n_out]

    def extra_repr(self) -> str:
        return (f"{self.n_in}, {self.n_out}, rank={self.rank}, K={self.K}, n_t={self.n_t}, "
                f"n_r={self.n_r}, snr_db={self.snr_db}")


def _weak_energy(M: torch.Tensor, samples: torch.Tensor, r: int) -> torch.Tensor:
    """``||M^H U_{r+1:}||_F^2``, U from the SVD of the (detached) covariance of ``samples``."""
    s = samples.detach().reshape(-1, samples.shape[-1])
    R = s.transpose(0, 1) @ s.conj() / len(s)                   # E(s s^H)
    U = torch.linalg.svd(R)[0].to(M.dtype)                      # singular values descending
    return (M.conj().transpose(0, 1) @ U[:, r:]).abs().square().sum()


def forward_beam_loss(layer: OACLinear) -> torch.Tensor:
    """Eq. 15: energy of C in the N_r - r weakest directions of the last batch's y_r,k.

    Real scalar, differentiable w.r.t. ``layer.C``; needs a forward first.
    """
    if layer.received is None:
        raise RuntimeError("forward_beam_loss needs the received signals of a forward pass")
    return _weak_energy(layer.C, layer.received, layer.rank)


def backward_beam_loss(layer: OACLinear) -> torch.Tensor:
    """Eq. 16: energy of P in the N_t - r weakest directions of the last backward's g_x_t,k.

    Real scalar, differentiable w.r.t. ``layer.P``; needs a backward first.
    """
    if layer.received_gradient is None:
        raise RuntimeError("backward_beam_loss needs the received gradients of a backward pass")
    return _weak_energy(layer.P, layer.received_gradient, layer.rank)
