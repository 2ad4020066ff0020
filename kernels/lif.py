"""Discrete-time LIF network with current synapses, trained by surrogate-gradient BPTT.

The model of Zenke's "Functional circuit and network models" (seed 004),
written out for one sample and time steps n = 0 .. T-1::

    S[n]   = Θ(U[n] − ϑ)                          hidden spikes (U[0] = I[0] = 0)
    I[n+1] = α I[n] + W_in·x[n] (+ W_rec·S[n])     synaptic current, α = exp(−dt/τ_syn)
    U[n+1] = β U[n] + I[n+1] − ϑ S[n]              membrane, β = exp(−dt/τ_mem), reset by subtraction
    Io[n+1] = α Io[n] + W_out·S[n]                 leaky, non-spiking readout
    Uo[n+1] = β Uo[n] + Io[n+1]
    loss    = cross-entropy(softmax_k(max_n Uo_k[n]), label)     (mean over the batch)

With ϑ = 1 the reset is the seed's ``U ← βU + I − S``. The derivative of Θ is
replaced by the fast-sigmoid surrogate ``σ'(x) = 1 / (scale·|x| + 1)²``
(Zenke & Ganguli 2018) and, by default, no gradient flows through the reset
(``detach_reset``), as in the SpyTorch tutorial.

Gradients are BPTT written by hand. ``smooth=True`` replaces Θ in the forward
pass by the function whose derivative the surrogate is,
``f(x) = x / (scale·|x| + 1)``; with ``detach_reset=False`` the hand-written
backward pass is then the exact gradient of a differentiable model, which is
how the tests check it against finite differences.

Layout and speed: weights are stored presynaptic-major (``w_in[j]`` is the
row of input unit j), so an input or hidden spike adds one contiguous row
and its weight gradient is one contiguous row update. Input spikes arrive as
:class:`~snnbatch.kernels.events.SpikeEvents`. A batch is cut into a fixed
number of blocks (``n_blocks``) that run in parallel, each summing its own
gradient; the block sums are added in a fixed order, so results do not
depend on the number of threads.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from ._jit import njit
from .events import SpikeEvents


class LIFConfig(NamedTuple):
    n_inputs: int = 100
    n_hidden: int = 128
    n_outputs: int = 2
    dt: float = 1e-3
    tau_syn: float = 5e-3
    tau_mem: float = 10e-3
    threshold: float = 1.0
    recurrent: bool = False
    surrogate_scale: float = 100.0
    detach_reset: bool = True
    smooth: bool = False
    weight_scale: float = 7.0  # init std = weight_scale * (1 − β) / sqrt(fan_in)
    n_blocks: int = 16
    dtype: str = "float32"

    @property
    def alpha(self) -> float:
        return math.exp(-self.dt / self.tau_syn)

    @property
    def beta(self) -> float:
        return math.exp(-self.dt / self.tau_mem)


class Trace(NamedTuple):
    spikes: np.ndarray  # (batch, T, n_hidden): S[n]
    voltages: np.ndarray  # (batch, T, n_hidden): U[n]
    readout: np.ndarray  # (batch, T, n_outputs): Uo[n + 1]


PARAM_NAMES = ("w_in", "w_rec", "w_out")


def param_names(cfg: LIFConfig) -> tuple[str, ...]:
    return PARAM_NAMES if cfg.recurrent else ("w_in", "w_out")


def init_params(cfg: LIFConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Gaussian weights scaled as in the SpyTorch tutorial."""
    scale = cfg.weight_scale * (1.0 - cfg.beta)
    dtype = np.dtype(cfg.dtype)
    params = {"w_in": rng.normal(0.0, scale / math.sqrt(cfg.n_inputs), (cfg.n_inputs, cfg.n_hidden))}
    if cfg.recurrent:
        params["w_rec"] = rng.normal(0.0, scale / math.sqrt(cfg.n_hidden), (cfg.n_hidden, cfg.n_hidden))
    params["w_out"] = rng.normal(0.0, scale / math.sqrt(cfg.n_hidden), (cfg.n_hidden, cfg.n_outputs))
    return {k: v.astype(dtype) for k, v in params.items()}


# --------------------------------------------------------------------------- one sample
#
# Precision: all arithmetic is in the weights' dtype (α, β, ϑ, the surrogate's
# scale and 1 are passed in that dtype, see ``_constants``), as in a float32
# PyTorch model; float32 vectors are twice as wide as float64 ones. No
# fast-math: every operation is rounded as written (no fused multiply-adds,
# no reassociation), so the bits do not depend on the CPU's vector width and
# are the same on every node of a cluster. Every state variable sees the
# operations of the equations above written out loop by loop, in that order,
# the dL/dS sums in the order (readouts, then presynaptic k = 0 .. H-1). What
# changes is only how the work is laid out:
#
# * few dense passes over the neurons per step, all vectorised: the forward
#   pass fuses U[n+1] = βU[n] + I[n+1] − ϑS[n] with the spikes of step n+1
#   and the decay of I; the backward pass makes two, plus one axpy per
#   readout;
# * hidden spikes are kept as index lists per step (values alongside, for
#   ``smooth``), so readout, recurrent input and the w_out / w_rec gradients
#   touch spiking neurons only;
# * dL/dS = W_out·g_io + W_rec·g_i is computed as axpys over the postsynaptic
#   axis with transposed weights: the sums of all neurons advance together
#   (SIMD) while each still adds its terms in the original order;
# * with S = 0/1 (not ``smooth``) spikes are found eight neurons at a time
#   from a byte mask and recurrent rows are added four at a time (I[k] is
#   still summed in spike order; S·w = w exactly, so no product);
# * ``error_model="numpy"``: no Python zero-division check, so the surrogate's
#   division vectorises (its divisor is >= 1; nothing else changes);
# * the backward pass runs only over steps [first input event, last readout
#   maximum]: after the last maximum every adjoint is exactly zero, before
#   the first input event or hidden spike nothing is accumulated (exact for
#   finite weights).


def _spike_fn(x, scale, one, smooth):
    if smooth:
        return x / (scale * abs(x) + one)
    return one if x > 0 else one - one


def _surrogate(x, scale, one):
    d = scale * abs(x) + one
    return one / (d * d)


def _sample_forward_py(
    w_in, w_rec, w_out, ptr, units, s, alpha, beta, theta, scale, one, recurrent, smooth,
    U, s_row, flags, i_syn, io, uo, spk_idx, spk_val, spk_ptr, Uo,
):
    """Run sample ``s``: U[n] (T+1, H; row T unused), spike lists (``spk_ptr[n]:spk_ptr[n+1]`` of
    ``spk_idx``/``spk_val`` are S[n]'s non-zeros) and Uo[n+1] (T, O).

    Scratch: ``s_row``, ``i_syn`` (H,) dtype; ``io``, ``uo`` (O,) dtype; ``flags`` uint8 of a length
    divisible by 8, zero past H (S[n] != 0 per neuron, scanned eight at a time).
    """
    T = Uo.shape[0]
    H = U.shape[1]
    O = Uo.shape[1]
    words = flags.view(np.uint64)
    for k in range(H):
        U[0, k] = 0.0
        i_syn[k] = 0.0
        s_row[k] = _spike_fn(U[0, k] - theta, scale, one, smooth)
        flags[k] = s_row[k] != 0.0
    for o in range(O):
        io[o] = 0.0
        uo[o] = 0.0
    c = 0
    spk_ptr[0] = 0
    for n in range(T):
        # S[n] as a list, skipping eight silent neurons at a time
        for w in range(words.shape[0]):
            if words[w] != 0:
                for k in range(8 * w, 8 * w + 8):
                    spk_idx[c] = k
                    spk_val[c] = s_row[k]
                    c += flags[k]
        spk_ptr[n + 1] = c
        # I[n+1] = αI[n] + W_in·x[n] (+ W_rec·S[n]); I was decayed at the end of the previous step
        for e in range(ptr[s, n], ptr[s, n + 1]):
            row = w_in[units[e]]
            for k in range(H):
                i_syn[k] += row[k]
        if recurrent:
            q = spk_ptr[n]
            if not smooth:
                # S = 1: add the rows four at a time, each I[k] still summed in spike order
                while q + 4 <= c:
                    r0 = w_rec[spk_idx[q]]
                    r1 = w_rec[spk_idx[q + 1]]
                    r2 = w_rec[spk_idx[q + 2]]
                    r3 = w_rec[spk_idx[q + 3]]
                    for k in range(H):
                        i_syn[k] = i_syn[k] + r0[k] + r1[k] + r2[k] + r3[k]
                    q += 4
            while q < c:
                sj = spk_val[q]
                row = w_rec[spk_idx[q]]
                for k in range(H):
                    i_syn[k] += sj * row[k]
                q += 1
        for o in range(O):
            io[o] *= alpha
        for q in range(spk_ptr[n], c):
            j = spk_idx[q]
            sj = spk_val[q]
            for o in range(O):
                io[o] += sj * w_out[j, o]
        for o in range(O):
            uo[o] = beta * uo[o] + io[o]
            Uo[n, o] = uo[o]
        if n + 1 < T:
            if smooth:
                for k in range(H):
                    U[n + 1, k] = beta * U[n, k] + i_syn[k] - theta * s_row[k]
                    i_syn[k] *= alpha
                for k in range(H):
                    s_row[k] = _spike_fn(U[n + 1, k] - theta, scale, one, smooth)
                    flags[k] = s_row[k] != 0.0
            else:
                # one pass: U[n+1], the spikes of step n+1 and the decay of I for step n+1
                for k in range(H):
                    U[n + 1, k] = beta * U[n, k] + i_syn[k] - theta * s_row[k]
                    spike = U[n + 1, k] - theta > 0
                    s_row[k] = one if spike else one - one
                    flags[k] = spike
                    i_syn[k] *= alpha


def _sample_backward_py(
    w_recT, w_outT, ptr, units, s, alpha, beta, theta, scale, one, recurrent, detach_reset,
    U, spk_idx, spk_val, spk_ptr, g_max, t_max, gw_in, gw_rec, gw_out,
    g_u, g_i, g_s, acc, g_uo, g_io,
):
    """Accumulate this sample's weight gradients given dL/d(max readout) ``g_max`` at steps ``t_max``.

    ``w_recT[k, j] = w_rec[j, k]`` and ``w_outT[o, j] = w_out[j, o]``; ``g_u, g_i, g_s`` (H,) dtype,
    ``acc`` (H,), ``g_uo, g_io`` (O,) dtype are scratch.
    """
    T = spk_ptr.shape[0] - 1
    H = g_u.shape[0]
    O = g_max.shape[0]
    last = 0
    for o in range(O):
        last = max(last, t_max[o])
    first = T  # the first step with an input event or a hidden spike
    for n in range(T):
        if ptr[s, n + 1] > ptr[s, n] or spk_ptr[n + 1] > spk_ptr[n]:
            first = n
            break
    for k in range(H):
        g_u[k] = 0.0  # dL/dU[n+1]
        g_i[k] = 0.0  # dL/dI[n+2], then dL/dI[n+1]
    for o in range(O):
        g_uo[o] = 0.0
        g_io[o] = 0.0
    for n in range(last, first - 1, -1):
        for o in range(O):
            direct = g_max[o] if t_max[o] == n else one - one
            g_uo[o] = direct + beta * g_uo[o]
            g_io[o] = g_uo[o] + alpha * g_io[o]
        for k in range(H):
            g_i[k] = g_u[k] + alpha * g_i[k]
            acc[k] = 0.0
        # weight gradients at step n: input events and presynaptic hidden spikes
        for e in range(ptr[s, n], ptr[s, n + 1]):
            row = gw_in[units[e]]
            for k in range(H):
                row[k] += g_i[k]
        for q in range(spk_ptr[n], spk_ptr[n + 1]):
            j = spk_idx[q]
            sj = spk_val[q]
            for o in range(O):
                gw_out[j, o] += sj * g_io[o]
            if recurrent:
                row = gw_rec[j]
                for k in range(H):
                    row[k] += sj * g_i[k]
        # dL/dS[n]: readouts first, then presynaptic k = 0 .. H-1
        for o in range(O):
            col = w_outT[o]
            go = g_io[o]
            for j in range(H):
                acc[j] += col[j] * go
        if recurrent:
            # four presynaptic terms per pass over acc (fewer loads and stores, same order of addition)
            k = 0
            while k + 4 <= H:
                c0 = w_recT[k]
                c1 = w_recT[k + 1]
                c2 = w_recT[k + 2]
                c3 = w_recT[k + 3]
                g0 = g_i[k]
                g1 = g_i[k + 1]
                g2 = g_i[k + 2]
                g3 = g_i[k + 3]
                for j in range(H):
                    a = acc[j]
                    a += c0[j] * g0
                    a += c1[j] * g1
                    a += c2[j] * g2
                    a += c3[j] * g3
                    acc[j] = a
                k += 4
            while k < H:
                col = w_recT[k]
                gk = g_i[k]
                for j in range(H):
                    acc[j] += col[j] * gk
                k += 1
        if detach_reset:
            for k in range(H):
                g_s[k] = acc[k]
                g_u[k] = beta * g_u[k] + g_s[k] * _surrogate(U[n, k] - theta, scale, one)
        else:
            for k in range(H):
                g_s[k] = acc[k] - theta * g_u[k]
                g_u[k] = beta * g_u[k] + g_s[k] * _surrogate(U[n, k] - theta, scale, one)


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
    w_in, w_rec, w_out, w_recT, w_outT, ptr, units, index, labels, T, alpha, beta, theta, scale, one,
    recurrent, detach_reset, smooth, n_blocks, gw_in, gw_rec, gw_out, with_grad, losses, correct,
):
    """Per-block losses and correct counts and (optionally) per-block gradient sums for a batch.

    ``gw_*`` have a leading block axis; block b handles samples b, b+n_blocks, ...
    """
    B = index.shape[0]
    H = w_in.shape[1]
    O = w_out.shape[1]
    dtype = w_in.dtype
    for b in numba.prange(n_blocks):
        U = np.empty((T + 1, H), dtype)
        Uo = np.empty((T, O), dtype)
        s_row = np.empty(H, dtype)
        flags = np.zeros(8 * ((H + 7) // 8), np.uint8)
        i_syn = np.empty(H, dtype)
        io = np.empty(O, dtype)
        uo = np.empty(O, dtype)
        spk_idx = np.empty(T * H + H, np.int32)
        spk_val = np.empty(T * H + H, dtype)
        spk_ptr = np.empty(T + 1, np.int64)
        g_u = np.empty(H, dtype)
        g_i = np.empty(H, dtype)
        g_s = np.empty(H, dtype)
        acc = np.empty(H, dtype)
        g_uo = np.empty(O, dtype)
        g_io = np.empty(O, dtype)
        m = np.empty(O, dtype)
        g_max = np.empty(O, dtype)
        t_max = np.empty(O, np.int64)
        loss_b = 0.0
        correct_b = 0
        for i in range(b, B, n_blocks):
            s = index[i]
            _sample_forward(w_in, w_rec, w_out, ptr, units, s, alpha, beta, theta, scale, one, recurrent, smooth,
                            U, s_row, flags, i_syn, io, uo, spk_idx, spk_val, spk_ptr, Uo)
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
            loss_b += loss
            correct_b += ok
            if with_grad:
                for o in range(O):
                    g_max[o] /= B
                _sample_backward(
                    w_recT, w_outT, ptr, units, s, alpha, beta, theta, scale, one, recurrent, detach_reset,
                    U, spk_idx, spk_val, spk_ptr, g_max, t_max, gw_in[b], gw_rec[b], gw_out[b],
                    g_u, g_i, g_s, acc, g_uo, g_io,
                )
        losses[b] = loss_b
        correct[b] = correct_b


def _trace_py(w_in, w_rec, w_out, ptr, units, index, T, alpha, beta, theta, scale, one, recurrent, smooth, S, U, Uo):
    H = w_in.shape[1]
    dtype = w_in.dtype
    O = w_out.shape[1]
    for i in numba.prange(index.shape[0]):
        Ui = np.empty((T + 1, H), dtype)
        s_row = np.empty(H, dtype)
        flags = np.zeros(8 * ((H + 7) // 8), np.uint8)
        i_syn = np.empty(H, dtype)
        io = np.empty(O, dtype)
        uo = np.empty(O, dtype)
        spk_idx = np.empty(T * H + H, np.int32)
        spk_val = np.empty(T * H + H, dtype)
        spk_ptr = np.empty(T + 1, np.int64)
        _sample_forward(w_in, w_rec, w_out, ptr, units, index[i], alpha, beta, theta, scale, one, recurrent, smooth,
                        Ui, s_row, flags, i_syn, io, uo, spk_idx, spk_val, spk_ptr, Uo[i])
        for n in range(T):
            for k in range(H):
                U[i, n, k] = Ui[n, k]
                S[i, n, k] = 0.0
            for q in range(spk_ptr[n], spk_ptr[n + 1]):
                S[i, n, spk_idx[q]] = spk_val[q]


_jit = njit(nogil=True, fastmath=False, error_model="numpy")
_jit_par = njit(nogil=True, parallel=True, fastmath=False, error_model="numpy")

_spike_fn = _jit(_spike_fn)
_surrogate = _jit(_surrogate)
_sample_forward = _jit(_sample_forward_py)
_sample_backward = _jit(_sample_backward_py)
_softmax_xent = _jit(_softmax_xent)
_batch = _jit_par(_batch_py)
_trace = _jit_par(_trace_py)


# --------------------------------------------------------------------------- public API


def _constants(cfg, dtype):
    """α, β, ϑ, the surrogate's scale and 1 in the weights' dtype: all state arithmetic is in that dtype."""
    t = np.dtype(dtype).type
    return t(cfg.alpha), t(cfg.beta), t(cfg.threshold), t(cfg.surrogate_scale), t(1.0)


def _weights(params, cfg):
    w_in = params["w_in"]
    w_rec = params["w_rec"] if cfg.recurrent else np.zeros((1, 1), w_in.dtype)
    return w_in, w_rec, params["w_out"]


def forward(params: dict[str, np.ndarray], inputs: SpikeEvents, cfg: LIFConfig, index=None) -> Trace:
    """Hidden spikes and voltages and readout voltages for the samples ``index`` (default: all)."""
    index = np.arange(inputs.n_samples) if index is None else np.asarray(index, np.int64)
    w_in, w_rec, w_out = _weights(params, cfg)
    B, T, H, O = len(index), inputs.n_steps, cfg.n_hidden, cfg.n_outputs
    S = np.empty((B, T, H), w_in.dtype)
    U = np.empty((B, T, H), w_in.dtype)
    Uo = np.empty((B, T, O), w_in.dtype)
    _trace(w_in, w_rec, w_out, inputs.ptr, inputs.units, index, T, *_constants(cfg, w_in.dtype), cfg.recurrent,
           cfg.smooth, S, U, Uo)
    return Trace(S, U, Uo)


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
    losses = np.zeros(nb)
    correct = np.zeros(nb, np.int64)
    # blocks handed out one at a time (dynamic scheduling): their costs differ, and a thread that
    # shares its core with another process does not hold up the others; the sums stay per block
    with numba.parallel_chunksize(1):
        _batch(
            w_in, w_rec, w_out, np.ascontiguousarray(w_rec.T), np.ascontiguousarray(w_out.T), inputs.ptr,
            inputs.units, index, labels, inputs.n_steps, *_constants(cfg, w_in.dtype), cfg.recurrent,
            cfg.detach_reset, cfg.smooth, nb, gw_in, gw_rec, gw_out, with_grad, losses, correct,
        )
    # block sums added in a fixed order: the same bits for any thread count
    loss = 0.0
    for b in range(nb):
        loss += float(losses[b])
    grads = None
    if with_grad:
        grads = {"w_in": _ordered_sum(gw_in), "w_out": _ordered_sum(gw_out)}
        if cfg.recurrent:
            grads["w_rec"] = _ordered_sum(gw_rec)
    return loss / len(index), int(correct.sum()) / len(index), grads


def _ordered_sum(blocks: np.ndarray) -> np.ndarray:
    out = blocks[0].copy()
    for b in range(1, blocks.shape[0]):
        out += blocks[b]
    return out


def loss_and_grad(params, inputs: SpikeEvents, labels, cfg: LIFConfig, index=None):
    """``(loss, grads)`` with ``grads`` keyed like ``params``; ``index`` selects samples of ``inputs``."""
    loss, _, grads = _run(params, inputs, labels, cfg, index, True)
    return loss, grads


def loss_acc_grad(params, inputs: SpikeEvents, labels, cfg: LIFConfig, index=None):
    """``(loss, accuracy, grads)``: what a training step needs, in one pass."""
    return _run(params, inputs, labels, cfg, index, True)


def evaluate(params, inputs: SpikeEvents, labels, cfg: LIFConfig, index=None) -> dict[str, float]:
    """Loss and accuracy without gradients."""
    loss, acc, _ = _run(params, inputs, labels, cfg, index, False)
    return {"loss": loss, "accuracy": acc}
