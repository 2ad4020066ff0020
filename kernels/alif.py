"""Adaptive LIF (ALIF) network with current synapses, trained by surrogate-gradient BPTT.

The LIF network of :mod:`snnbatch.kernels.lif` with one more state variable
per hidden neuron, an adaptation trace ``A`` that raises the threshold after
each spike (Bellec et al. 2018, "Long short-term memory and learning-to-learn
in networks of spiking neurons"; seed 001)::

    S[n]   = Θ(U[n] − ϑ − β_a A[n])                effective threshold ϑ + β_a A[n]   (U[0] = I[0] = A[0] = 0)
    I[n+1] = α I[n] + W_in·x[n] (+ W_rec·S[n])     α = exp(−dt/τ_syn)
    U[n+1] = β U[n] + I[n+1] − ϑ S[n]              β = exp(−dt/τ_mem), reset by subtracting ϑ (as in lif.py)
    A[n+1] = ρ A[n] + S[n]                         ρ = exp(−dt/τ_adapt); each spike raises the threshold by β_a
    Io[n+1] = α Io[n] + W_out·S[n]                 leaky, non-spiking readout (as in lif.py)
    Uo[n+1] = β Uo[n] + Io[n+1]
    loss    = cross-entropy(softmax_k(max_n Uo_k[n]), label)     (mean over the batch)

With ``adapt_jump = 0`` this is exactly the LIF network of lif.py.

Gradients are BPTT written by hand. Besides the adjoints of lif.py
(``dL/dU``, ``dL/dI``) the backward pass carries ``dL/dA``; a spike reaches
the loss through the readout, the recurrent weights, the reset (unless
``detach_reset``) and the adaptation trace, and the threshold passes
gradient back to ``A``::

    dL/dS[n] = W_out·dL/dIo[n+1] (+ W_rec·dL/dI[n+1]) (− ϑ dL/dU[n+1]) + dL/dA[n+1]
    dL/dU[n] = β dL/dU[n+1] + σ'(z[n]) dL/dS[n]              z[n] = U[n] − ϑ − β_a A[n]
    dL/dA[n] = ρ dL/dA[n+1] − β_a σ'(z[n]) dL/dS[n]

The gradient through the adaptation trace is never detached. ``smooth=True``
makes the forward pass differentiable (``Θ`` replaced by the function whose
derivative the surrogate is), so with ``detach_reset=False`` the backward
pass is the exact gradient, which the tests check against finite differences.

Layout, events and the fixed reduction blocks are those of lif.py. The small
compiled helpers are repeated here rather than imported from lif.py: Numba's
on-disk cache is invalidated only by changes to the file of the cached
function, not of the functions it calls in other files.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from ._jit import njit
from . import lif
from .events import SpikeEvents


class ALIFConfig(NamedTuple):
    n_inputs: int = 100
    n_hidden: int = 128
    n_outputs: int = 2
    dt: float = 1e-3
    tau_syn: float = 5e-3
    tau_mem: float = 10e-3
    tau_adapt: float = 100e-3
    adapt_jump: float = 0.2  # β_a: threshold increase per spike
    threshold: float = 1.0
    recurrent: bool = False
    surrogate_scale: float = 100.0
    detach_reset: bool = True
    smooth: bool = False
    weight_scale: float = 7.0  # init std = weight_scale * (1 − β) / sqrt(fan_in), as lif.py
    n_blocks: int = 16
    dtype: str = "float32"

    @property
    def alpha(self) -> float:
        return math.exp(-self.dt / self.tau_syn)

    @property
    def beta(self) -> float:
        return math.exp(-self.dt / self.tau_mem)

    @property
    def rho(self) -> float:
        return math.exp(-self.dt / self.tau_adapt)


class Trace(NamedTuple):
    spikes: np.ndarray  # (batch, T, n_hidden): S[n]
    voltages: np.ndarray  # (batch, T, n_hidden): U[n]
    adaptation: np.ndarray  # (batch, T, n_hidden): A[n]
    readout: np.ndarray  # (batch, T, n_outputs): Uo[n + 1]


def param_names(cfg: ALIFConfig) -> tuple[str, ...]:
    return lif.param_names(cfg)


def init_params(cfg: ALIFConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The initialisation of lif.py (the same draws for the same ``rng``)."""
    return lif.init_params(cfg, rng)


# --------------------------------------------------------------------------- one sample


def _spike_fn(x, scale, one, smooth):
    if smooth:
        return x / (scale * abs(x) + one)
    return one if x > 0 else one - one


def _surrogate(x, scale, one):
    d = scale * abs(x) + one
    return one / (d * d)


def _sample_forward_py(
    w_in, w_rec, w_out, ptr, units, s, alpha, beta, rho, theta, jump, scale, one, recurrent, smooth, U, A, S, Uo,
):
    """Run sample ``s``; fill U[n], A[n], S[n] (T, H) and Uo[n+1] (T, O)."""
    T, H = U.shape
    O = Uo.shape[1]
    dtype = U.dtype
    i_syn = np.zeros(H, dtype)
    u = np.zeros(H, dtype)
    a = np.zeros(H, dtype)
    io = np.zeros(O, dtype)
    uo = np.zeros(O, dtype)
    for n in range(T):
        for k in range(H):
            U[n, k] = u[k]
            A[n, k] = a[k]
            S[n, k] = _spike_fn(u[k] - theta - jump * a[k], scale, one, smooth)
        for k in range(H):
            i_syn[k] *= alpha
        for e in range(ptr[s, n], ptr[s, n + 1]):
            row = w_in[units[e]]
            for k in range(H):
                i_syn[k] += row[k]
        for o in range(O):
            io[o] *= alpha
        for j in range(H):
            sj = S[n, j]
            if sj != 0.0:
                if recurrent:
                    row = w_rec[j]
                    for k in range(H):
                        i_syn[k] += sj * row[k]
                for o in range(O):
                    io[o] += sj * w_out[j, o]
        for k in range(H):
            u[k] = beta * u[k] + i_syn[k] - theta * S[n, k]
            a[k] = rho * a[k] + S[n, k]
        for o in range(O):
            uo[o] = beta * uo[o] + io[o]
            Uo[n, o] = uo[o]


def _sample_backward_py(
    w_in, w_rec, w_out, ptr, units, s, alpha, beta, rho, theta, jump, scale, one, recurrent, detach_reset,
    U, A, S, g_max, t_max, gw_in, gw_rec, gw_out,
):
    """Accumulate this sample's weight gradients given dL/d(max readout) ``g_max`` at steps ``t_max``."""
    T, H = U.shape
    O = g_max.shape[0]
    dtype = U.dtype
    g_u = np.zeros(H, dtype)  # dL/dU[n+1]
    g_a = np.zeros(H, dtype)  # dL/dA[n+1]
    g_i = np.zeros(H, dtype)  # dL/dI[n+2], then dL/dI[n+1]
    g_uo = np.zeros(O, dtype)
    g_io = np.zeros(O, dtype)
    g_s = np.zeros(H, dtype)
    for n in range(T - 1, -1, -1):
        for o in range(O):
            direct = g_max[o] if t_max[o] == n else one - one
            g_uo[o] = direct + beta * g_uo[o]
            g_io[o] = g_uo[o] + alpha * g_io[o]
        for k in range(H):
            g_i[k] = g_u[k] + alpha * g_i[k]
        for e in range(ptr[s, n], ptr[s, n + 1]):
            row = gw_in[units[e]]
            for k in range(H):
                row[k] += g_i[k]
        for j in range(H):
            sj = S[n, j]
            if sj != 0.0:
                for o in range(O):
                    gw_out[j, o] += sj * g_io[o]
                if recurrent:
                    row = gw_rec[j]
                    for k in range(H):
                        row[k] += sj * g_i[k]
        # dL/dS[n]: readout, recurrent input, reset, adaptation
        for j in range(H):
            acc = one - one  # in the weights' dtype, as in lif.py
            for o in range(O):
                acc += w_out[j, o] * g_io[o]
            if recurrent:
                row = w_rec[j]
                for k in range(H):
                    acc += row[k] * g_i[k]
            if not detach_reset:
                acc -= theta * g_u[j]
            g_s[j] = acc + g_a[j]
        for k in range(H):
            g_z = g_s[k] * _surrogate(U[n, k] - theta - jump * A[n, k], scale, one)
            g_u[k] = beta * g_u[k] + g_z
            g_a[k] = rho * g_a[k] - jump * g_z


def _softmax_xent(m, label, g_out):
    """Cross-entropy of softmax(m) at ``label``; writes dL/dm to ``g_out``; returns (loss, correct)."""
    O = m.shape[0]
    mx = m[0]
    arg = 0
    for o in range(1, O):
        if m[o] > mx:
            mx = m[o]
            arg = o
    z = 0.0
    for o in range(O):
        z += math.exp(m[o] - mx)
    for o in range(O):
        g_out[o] = math.exp(m[o] - mx) / z
    g_out[label] -= 1.0
    loss = -(m[label] - mx - math.log(z))
    return loss, 1 if arg == label else 0


def _batch_py(
    w_in, w_rec, w_out, ptr, units, index, labels, T, alpha, beta, rho, theta, jump, scale, one,
    recurrent, detach_reset, smooth, n_blocks, gw_in, gw_rec, gw_out, with_grad,
):
    """Per-block loss sums and correct counts, and (optionally) block-summed gradients.

    Block b handles samples b, b+n_blocks, ...; the caller adds the blocks in a
    fixed order (a ``.sum()`` here would be a parallel reduction, its order
    depending on the number of threads).
    """
    B = index.shape[0]
    H = w_in.shape[1]
    O = w_out.shape[1]
    dtype = w_in.dtype
    losses = np.zeros(n_blocks)
    correct = np.zeros(n_blocks, np.int64)
    for b in numba.prange(n_blocks):
        U = np.empty((T, H), dtype)
        A = np.empty((T, H), dtype)
        S = np.empty((T, H), dtype)
        Uo = np.empty((T, O), dtype)
        m = np.empty(O, dtype)
        g_max = np.empty(O, dtype)
        t_max = np.empty(O, np.int64)
        for i in range(b, B, n_blocks):
            s = index[i]
            _sample_forward(
                w_in, w_rec, w_out, ptr, units, s, alpha, beta, rho, theta, jump, scale, one, recurrent, smooth,
                U, A, S, Uo,
            )
            for o in range(O):
                best = Uo[0, o]
                tb = 0
                for n in range(1, T):
                    if Uo[n, o] > best:
                        best = Uo[n, o]
                        tb = n
                m[o] = best
                t_max[o] = tb
            loss, ok = _softmax_xent(m, labels[i], g_max)
            losses[b] += loss
            correct[b] += ok
            if with_grad:
                for o in range(O):
                    g_max[o] /= B
                _sample_backward(
                    w_in, w_rec, w_out, ptr, units, s, alpha, beta, rho, theta, jump, scale, one, recurrent,
                    detach_reset, U, A, S, g_max, t_max, gw_in[b], gw_rec[b], gw_out[b],
                )
    return losses, correct


def _trace_py(
    w_in, w_rec, w_out, ptr, units, index, T, alpha, beta, rho, theta, jump, scale, one, recurrent, smooth, S, U, A, Uo,
):
    for i in numba.prange(index.shape[0]):
        _sample_forward(
            w_in, w_rec, w_out, ptr, units, index[i], alpha, beta, rho, theta, jump, scale, one, recurrent, smooth,
            U[i], A[i], S[i], Uo[i],
        )


_jit = njit(nogil=True, fastmath=False)
_jit_par = njit(nogil=True, parallel=True, fastmath=False)

_spike_fn = _jit(_spike_fn)
_surrogate = _jit(_surrogate)
_sample_forward = _jit(_sample_forward_py)
_sample_backward = _jit(_sample_backward_py)
_softmax_xent = _jit(_softmax_xent)
_batch = _jit_par(_batch_py)
_trace = _jit_par(_trace_py)


# --------------------------------------------------------------------------- public API


def _constants(cfg, dtype):
    """α, β, ρ, ϑ, the adaptation jump, the surrogate's scale and 1 in the weights' dtype (as in lif.py)."""
    t = np.dtype(dtype).type
    return tuple(t(v) for v in (cfg.alpha, cfg.beta, cfg.rho, cfg.threshold, cfg.adapt_jump, cfg.surrogate_scale, 1.0))


def _weights(params, cfg):
    w_in = params["w_in"]
    w_rec = params["w_rec"] if cfg.recurrent else np.zeros((1, 1), w_in.dtype)
    return w_in, w_rec, params["w_out"]


def forward(params: dict[str, np.ndarray], inputs: SpikeEvents, cfg: ALIFConfig, index=None) -> Trace:
    """Hidden spikes, voltages and adaptation and readout voltages for the samples ``index`` (default: all)."""
    index = np.arange(inputs.n_samples) if index is None else np.asarray(index, np.int64)
    w_in, w_rec, w_out = _weights(params, cfg)
    B, T, H, O = len(index), inputs.n_steps, cfg.n_hidden, cfg.n_outputs
    S = np.empty((B, T, H), w_in.dtype)
    U = np.empty((B, T, H), w_in.dtype)
    A = np.empty((B, T, H), w_in.dtype)
    Uo = np.empty((B, T, O), w_in.dtype)
    _trace(w_in, w_rec, w_out, inputs.ptr, inputs.units, index, T, *_constants(cfg, w_in.dtype), cfg.recurrent,
           cfg.smooth, S, U, A, Uo)
    return Trace(S, U, A, Uo)


def _run(params, inputs, labels, cfg, index, with_grad):
    index = np.arange(inputs.n_samples) if index is None else np.asarray(index, np.int64)
    labels = np.asarray(labels, np.int64)
    if labels.shape[0] != index.shape[0]:
        labels = labels[index]
    w_in, w_rec, w_out = _weights(params, cfg)
    nb = max(1, min(cfg.n_blocks, len(index)))
    shape = (nb,) if with_grad else (1,)
    gw_in = np.zeros(shape + w_in.shape, w_in.dtype)
    gw_rec = np.zeros(shape + w_rec.shape, w_in.dtype)
    gw_out = np.zeros(shape + w_out.shape, w_in.dtype)
    losses, correct = _batch(
        w_in, w_rec, w_out, inputs.ptr, inputs.units, index, labels, inputs.n_steps, *_constants(cfg, w_in.dtype),
        cfg.recurrent, cfg.detach_reset, cfg.smooth, nb, gw_in, gw_rec, gw_out, with_grad,
    )
    loss = _ordered_sum(losses) / len(index)
    grads = None
    if with_grad:
        # block sums added in a fixed order: the same bits for any thread count
        grads = {"w_in": _ordered_sum(gw_in), "w_out": _ordered_sum(gw_out)}
        if cfg.recurrent:
            grads["w_rec"] = _ordered_sum(gw_rec)
    return float(loss), int(correct.sum()) / len(index), grads


def _ordered_sum(blocks: np.ndarray) -> np.ndarray:
    out = blocks[0].copy()
    for b in range(1, blocks.shape[0]):
        out += blocks[b]
    return out


def loss_and_grad(params, inputs: SpikeEvents, labels, cfg: ALIFConfig, index=None):
    """``(loss, grads)`` with ``grads`` keyed like ``params``; ``index`` selects samples of ``inputs``."""
    loss, _, grads = _run(params, inputs, labels, cfg, index, True)
    return loss, grads


def loss_acc_grad(params, inputs: SpikeEvents, labels, cfg: ALIFConfig, index=None):
    """``(loss, accuracy, grads)``: what a training step needs, in one pass."""
    return _run(params, inputs, labels, cfg, index, True)


def evaluate(params, inputs: SpikeEvents, labels, cfg: ALIFConfig, index=None) -> dict[str, float]:
    """Loss and accuracy without gradients."""
    loss, acc, _ = _run(params, inputs, labels, cfg, index, False)
    return {"loss": loss, "accuracy": acc}
