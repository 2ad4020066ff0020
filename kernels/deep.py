"""LIF and ALIF networks of several hidden layers, each optionally recurrent, trained by surrogate-gradient BPTT.

Layer k (k = 0 .. L-1, H_k neurons) is the hidden layer of :mod:`snnbatch.kernels.lif`
(:mod:`snnbatch.kernels.alif` with adaptation); its input current takes the spikes of
layer k−1 at the same step n (layer 0: the input events) and, if the layer is recurrent,
its own spikes of step n::

    S_k[n]   = Θ(U_k[n] − ϑ (− β_a A_k[n]))
    I_k[n+1] = α I_k[n] + W_in^k·S_{k−1}[n] (+ W_rec^k·S_k[n])      S_{−1}[n] = x[n]
    U_k[n+1] = β U_k[n] + I_k[n+1] − ϑ S_k[n]
    A_k[n+1] = ρ A_k[n] + S_k[n]                                     (ALIF)

Since S_k[n] is a function of U_k[n], which depends on steps before n only, the
spikes of every layer at step n are known before any current of step n+1 is
formed. The leaky readout of lif.py reads the last layer, and every readout of
:mod:`snnbatch.kernels.readout` (max, mean, last, per_step, count, mse) gives the loss.

The training loss can add the activity penalty of _network.py (``activity_*``) on the spike
counts of every hidden layer, the same bounds for all of them.

The opt-in sparse backward (``surrogate_cutoff`` > 0, Perez-Nieves & Goodman 2021; not the exact
gradient) is that of _network.py in every layer: surrogate derivatives below the cut-off count as
zero, and dL/dS_k[n]_j is computed only for the neurons j whose derivative is kept, as dot products
with row j of the weights that carry it (W_out for the last layer, W_in^{k+1} for the layers below,
W_rec^k for a recurrent layer); the other neurons' dL/dU (and dL/dA) only decay. With cut-off 0 the
backward pass is the exact one, bit for bit.

Parameters: ``w_in`` (n_inputs, H_0) and ``w_rec`` (H_0, H_0) for layer 0,
``w_in{k}`` (H_{k−1}, H_k) and ``w_rec{k}`` (H_k, H_k) for layer k ≥ 1 (``w_rec*``
only for recurrent layers), ``w_out`` (H_{L−1}, n_outputs).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from . import _network, readout
from ._jit import njit
from ._decay import decays
from .events import SpikeEvents

jit = njit(nogil=True, fastmath=False, error_model="numpy")
jit_parallel = njit(nogil=True, parallel=True, fastmath=False, error_model="numpy")


@decays
class DeepLIFConfig(NamedTuple):
    """The fields of :class:`snnbatch.kernels.lif.LIFConfig`, with one size and one recurrent flag per layer."""

    n_inputs: int = 100
    n_hidden: tuple = (128,)
    n_outputs: int = 2
    dt: float = 1e-3
    tau_syn: float = 5e-3
    tau_mem: float = 10e-3
    threshold: float = 1.0
    recurrent: tuple = (False,)
    surrogate_scale: float = 100.0
    detach_reset: bool = True
    smooth: bool = False
    weight_scale: float = 7.0
    n_blocks: int = 16
    dtype: str = "float32"
    recurrent_weight_scale: float | None = None
    readout: str = "max"
    surrogate_cutoff: float = 0.0  # surrogate derivatives below this count as zero (sparse backward); 0: exact
    activity_upper: float = 10.0  # the activity penalty, on every hidden layer (lif.py)
    activity_upper_strength: float = 0.0
    activity_lower: float = 1.0
    activity_lower_strength: float = 0.0


@decays
class DeepALIFConfig(NamedTuple):
    """The fields of :class:`snnbatch.kernels.alif.ALIFConfig`, with one size and one recurrent flag per layer."""

    n_inputs: int = 100
    n_hidden: tuple = (128,)
    n_outputs: int = 2
    dt: float = 1e-3
    tau_syn: float = 5e-3
    tau_mem: float = 10e-3
    tau_adapt: float = 100e-3
    adapt_jump: float = 0.2
    threshold: float = 1.0
    recurrent: tuple = (False,)
    surrogate_scale: float = 100.0
    detach_reset: bool = True
    smooth: bool = False
    weight_scale: float = 7.0
    n_blocks: int = 16
    dtype: str = "float32"
    recurrent_weight_scale: float | None = None
    readout: str = "max"
    surrogate_cutoff: float = 0.0  # surrogate derivatives below this count as zero (sparse backward); 0: exact
    activity_upper: float = 10.0  # the activity penalty, on every hidden layer (alif.py)
    activity_upper_strength: float = 0.0
    activity_lower: float = 1.0
    activity_lower_strength: float = 0.0


def in_name(k: int) -> str:
    """The feed-forward weights into layer ``k``: ``w_in``, ``w_in1``, ..."""
    return "w_in" if k == 0 else f"w_in{k}"


def rec_name(k: int) -> str:
    """The recurrent weights of layer ``k``: ``w_rec``, ``w_rec1``, ..."""
    return "w_rec" if k == 0 else f"w_rec{k}"


def param_names(cfg) -> tuple[str, ...]:
    """In the order of :func:`init_params`: per layer its input weights, then its recurrent ones; last w_out."""
    names = []
    for k, rec in enumerate(cfg.recurrent):
        names.append(in_name(k))
        if rec:
            names.append(rec_name(k))
    return tuple(names) + ("w_out",)


def init_params(cfg, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Gaussian weights as lif.py's, drawn layer by layer: w_in{k}, then w_rec{k} if recurrent; last w_out.

    Feed-forward std = weight_scale·(1 − β)/√fan-in, recurrent std =
    recurrent_weight_scale·(1 − β)/√H_k (None: weight_scale). One layer draws exactly what
    lif.py draws.
    """
    scale = cfg.weight_scale * (1.0 - cfg.beta)
    rec = scale if cfg.recurrent_weight_scale is None else cfg.recurrent_weight_scale * (1.0 - cfg.beta)
    dtype = np.dtype(cfg.dtype)
    params = {}
    fan_in = cfg.n_inputs
    for k, (H, recurrent) in enumerate(zip(cfg.n_hidden, cfg.recurrent)):
        params[in_name(k)] = rng.normal(0.0, scale / math.sqrt(fan_in), (fan_in, H))
        if recurrent:
            params[rec_name(k)] = rng.normal(0.0, rec / math.sqrt(H), (H, H))
        fan_in = H
    params["w_out"] = rng.normal(0.0, scale / math.sqrt(fan_in), (fan_in, cfg.n_outputs))
    return {k: v.astype(dtype) for k, v in params.items()}


# --------------------------------------------------------------------------- compiled
#
# The layers' states are packed side by side: neuron h of layer l is column off[l] + h of ``U``,
# ``A``, ``s_row``, ``i_syn``, ``g_u``, ``g_a``, ``g_i``, ``acc``. The weights are tuples with one
# matrix per layer (a 1×1 placeholder for a layer without recurrence); ``rec`` (L,) uint8 the flags.
# ``consts``: (α, β, ρ, ϑ, β_a, scale, 1) in the weights' dtype (_network.constants).
#
# Every operation of one layer is that of _network.py's one-layer network, in the same order, so a
# network of one layer gives its bits (test_deep): the currents add input rows in event order, then
# presynaptic spikes in neuron order; dL/dS adds the next layer's (or the readout's) terms first, then
# the recurrent ones, each in postsynaptic order, then the reset and the adaptation trace, then (when it
# is on) the activity penalty's term.


def _forward_py(w_in, w_rec, w_out, ptr, units, s, consts, rec, off, adaptive, smooth, T,
                U, A, s_row, i_syn, io, uo, spk_idx, spk_val, spk_ptr, Uo):
    """Steps 0 .. T-1 of sample ``s``: U[n], A[n] (rows n), the spike lists of every layer, Uo[n+1] (row n)."""
    alpha, beta, rho, theta, jump, scale, one = consts
    L = off.shape[0] - 1
    Ht = off[L]
    O = Uo.shape[1]
    for h in range(Ht):
        U[0, h] = 0.0
        i_syn[h] = 0.0
        if adaptive:
            A[0, h] = 0.0
            s_row[h] = _spike_fn(U[0, h] - theta - jump * A[0, h], scale, one, smooth)
        else:
            s_row[h] = _spike_fn(U[0, h] - theta, scale, one, smooth)
    for o in range(O):
        io[o] = 0.0
        uo[o] = 0.0
    for l in range(L):
        spk_ptr[l, 0] = 0
    for n in range(T):
        na = n if adaptive else 0
        # S_l[n] of every layer as lists (neuron index in its layer, value)
        for l in range(L):
            c = spk_ptr[l, n]
            for h in range(off[l + 1] - off[l]):
                v = s_row[off[l] + h]
                if v != 0.0:
                    spk_idx[l, c] = h
                    spk_val[l, c] = v
                    c += 1
            spk_ptr[l, n + 1] = c
        for l in range(L):
            h0 = off[l]
            H = off[l + 1] - h0
            isyn = i_syn[h0:h0 + H]  # views of the layer: indices from 0, so the loops vectorise
            srow = s_row[h0:h0 + H]
            # I_l[n+1] = αI_l[n] + W_in·S_{l-1}[n] (+ W_rec·S_l[n]); I was decayed at the end of step n-1
            if l == 0:
                win = w_in[0]
                for e in range(ptr[s, n], ptr[s, n + 1]):
                    row = win[units[e]]
                    for k in range(H):
                        isyn[k] += row[k]
            else:
                win = w_in[l]
                for q in range(spk_ptr[l - 1, n], spk_ptr[l - 1, n + 1]):
                    sj = spk_val[l - 1, q]
                    row = win[spk_idx[l - 1, q]]
                    for k in range(H):
                        isyn[k] += sj * row[k]
            if rec[l]:
                wr = w_rec[l]
                for q in range(spk_ptr[l, n], spk_ptr[l, n + 1]):
                    sj = spk_val[l, q]
                    row = wr[spk_idx[l, q]]
                    for k in range(H):
                        isyn[k] += sj * row[k]
            if n + 1 < T:
                u0 = U[n, h0:h0 + H]
                u1 = U[n + 1, h0:h0 + H]
                if adaptive:
                    a0 = A[na, h0:h0 + H]
                    a1 = A[n + 1, h0:h0 + H]
                    for k in range(H):
                        u1[k] = beta * u0[k] + isyn[k] - theta * srow[k]
                        a1[k] = rho * a0[k] + srow[k]
                        srow[k] = _spike_fn(u1[k] - theta - jump * a1[k], scale, one, smooth)
                        isyn[k] *= alpha
                elif smooth:
                    for k in range(H):
                        u1[k] = beta * u0[k] + isyn[k] - theta * srow[k]
                        srow[k] = _spike_fn(u1[k] - theta, scale, one, smooth)
                        isyn[k] *= alpha
                else:
                    for k in range(H):
                        u1[k] = beta * u0[k] + isyn[k] - theta * srow[k]
                        srow[k] = one if u1[k] - theta > 0 else one - one
                        isyn[k] *= alpha
        # the readout of the last layer's spikes S_{L-1}[n]
        last = L - 1
        for o in range(O):
            io[o] *= alpha
        for q in range(spk_ptr[last, n], spk_ptr[last, n + 1]):
            j = spk_idx[last, q]
            sj = spk_val[last, q]
            for o in range(O):
                io[o] += sj * w_out[j, o]
        for o in range(O):
            uo[o] = beta * uo[o] + io[o]
            Uo[n, o] = uo[o]


def _first_active_py(ptr, s, spk_ptr, T):
    """The first step with an input event or a spike of any layer (T if none)."""
    L = spk_ptr.shape[0]
    for n in range(T):
        if ptr[s, n + 1] > ptr[s, n]:
            return n
        for l in range(L):
            if spk_ptr[l, n + 1] > spk_ptr[l, n]:
                return n
    return T


def _sparse_layers_py(w_in, w_rec, w_out, consts, rec, off, adaptive, detach_reset, cutoff, u, a_n,
                      g_u, g_a, g_i, g_io, sur, regularise, g_reg):
    """Step n of the backward pass with the surrogate cut-off (_network._sparse_step_py in every layer):
    σ' < ``cutoff`` counts as zero.

    dL/dS_l[n]_j is only needed where σ'_j ≠ 0, so it is computed only for those neurons, as dot products
    with row j of W_out (the last layer: w_out[j]·g_io) or of W_in^{l+1} (the layers below:
    w_in^{l+1}[j]·g_i^{l+1}), then of W_rec^l (w_rec^l[j]·g_i^l) for a recurrent layer; the others' dL/dU
    (and dL/dA) only decay. ``u`` is U[n], ``a_n`` A[n] (all layers' neurons), ``g_i`` dL/dI[n+1] of every
    layer, ``sur`` (all layers' neurons) scratch; with ``regularise``, ``g_reg`` is the activity penalty's
    dL/dS, added last. Every layer's dL/dS reads g_i of step n only, so the layers' order does not matter.
    """
    alpha, beta, rho, theta, jump, scale, one = consts
    L = off.shape[0] - 1
    O = g_io.shape[0]
    for l in range(L):
        h0 = off[l]
        H = off[l + 1] - h0
        sr = sur[h0:h0 + H]
        gu = g_u[h0:h0 + H]
        ga = g_a[h0:h0 + H]
        gi = g_i[h0:h0 + H]
        ul = u[h0:h0 + H]
        for k in range(H):
            if adaptive:
                x = _surrogate(ul[k] - theta - jump * a_n[h0 + k], scale, one)
            else:
                x = _surrogate(ul[k] - theta, scale, one)
            sr[k] = x if x >= cutoff else x - x
        top = l == L - 1
        nxt = min(l + 1, L - 1)  # the layer above (the last layer reads w_out instead)
        wn = w_in[nxt]
        gn = g_i[off[nxt]:off[nxt + 1]]
        wr = w_rec[l]
        for j in range(H):
            if sr[j] != 0.0:
                if top:
                    v = g_io[0] - g_io[0]
                    for o in range(O):
                        v += w_out[j, o] * g_io[o]
                else:
                    v = _dot(wn[j], gn)
                if rec[l]:
                    v += _dot(wr[j], gi)
                if not detach_reset:
                    v -= theta * gu[j]
                if adaptive:
                    v = v + ga[j]
                if regularise:
                    v = v + g_reg[h0 + j]
                g_z = v * sr[j]
            else:
                g_z = sr[j]
            gu[j] = beta * gu[j] + g_z
            if adaptive:
                ga[j] = rho * ga[j] - jump * g_z


def _backward_py(w_in, w_rec, w_out, w_inT, w_recT, w_outT, ptr, units, s, consts, rec, off, adaptive, detach_reset,
                 cutoff, U, A, spk_idx, spk_val, spk_ptr, g_step, last, b, gw_in, gw_rec, gw_out,
                 g_u, g_a, g_i, acc, g_uo, g_io, regularise, g_reg):
    """BPTT of sample ``s`` from step ``last`` down, adding its weight gradients to block ``b``'s sums
    ``gw_in[l][b]``, ``gw_rec[l][b]``, ``gw_out[b]``.

    ``g_step[n]``: the loss's dL/dUo[n+1] (zero after ``last``); ``w_inT[l][m, j] = w_in^l[j, m]``,
    ``w_recT[l]``, ``w_outT`` likewise transposed (the exact path's; ``w_in, w_rec, w_out`` as stored, the
    sparse path's); ``g_u, g_a, g_i, acc`` (all layers' neurons) and ``g_uo, g_io`` (O,) are scratch. With
    ``regularise``, ``g_reg`` (all layers' neurons) is the activity penalty's dL/dS at every step, added last
    (as _network.py's; ``last`` must then be T − 1). ``cutoff`` > 0: surrogate derivatives below it count as
    zero (:func:`_sparse_layers_py`; not the exact gradient); 0: the exact gradient.
    """
    alpha, beta, rho, theta, jump, scale, one = consts
    L = off.shape[0] - 1
    Ht = off[L]
    O = g_uo.shape[0]
    first = _first_active(ptr, s, spk_ptr, g_step.shape[0])
    for h in range(Ht):
        g_u[h] = 0.0  # dL/dU[n+1]
        g_a[h] = 0.0  # dL/dA[n+1]
        g_i[h] = 0.0  # dL/dI[n+2], then dL/dI[n+1]
    for o in range(O):
        g_uo[o] = 0.0
        g_io[o] = 0.0
    for n in range(last, first - 1, -1):
        na = n if adaptive else 0
        for o in range(O):
            g_uo[o] = g_step[n, o] + beta * g_uo[o]
            g_io[o] = g_uo[o] + alpha * g_io[o]
        for h in range(Ht):
            g_i[h] = g_u[h] + alpha * g_i[h]
        # weight gradients at step n: presynaptic events and spikes of every layer
        for l in range(L):
            h0 = off[l]
            H = off[l + 1] - h0
            gi = g_i[h0:h0 + H]
            if l == 0:
                gw = gw_in[0][b]
                for e in range(ptr[s, n], ptr[s, n + 1]):
                    row = gw[units[e]]
                    for k in range(H):
                        row[k] += gi[k]
            else:
                gw = gw_in[l][b]
                for q in range(spk_ptr[l - 1, n], spk_ptr[l - 1, n + 1]):
                    sj = spk_val[l - 1, q]
                    row = gw[spk_idx[l - 1, q]]
                    for k in range(H):
                        row[k] += sj * gi[k]
            if rec[l]:
                gw = gw_rec[l][b]
                for q in range(spk_ptr[l, n], spk_ptr[l, n + 1]):
                    sj = spk_val[l, q]
                    row = gw[spk_idx[l, q]]
                    for k in range(H):
                        row[k] += sj * gi[k]
        gwo = gw_out[b]
        for q in range(spk_ptr[L - 1, n], spk_ptr[L - 1, n + 1]):
            j = spk_idx[L - 1, q]
            sj = spk_val[L - 1, q]
            for o in range(O):
                gwo[j, o] += sj * g_io[o]
        if cutoff > 0:
            _sparse_layers(w_in, w_rec, w_out, consts, rec, off, adaptive, detach_reset, cutoff, U[n], A[na],
                           g_u, g_a, g_i, g_io, acc, regularise, g_reg)
            continue
        # dL/dS_l[n] per layer: the next layer's (or the readout's) terms, then the recurrent ones
        for l in range(L):
            h0 = off[l]
            H = off[l + 1] - h0
            a = acc[h0:h0 + H]
            gu = g_u[h0:h0 + H]
            for j in range(H):
                a[j] = 0.0
            if l == L - 1:
                for o in range(O):
                    col = w_outT[o]
                    go = g_io[o]
                    for j in range(H):
                        a[j] += col[j] * go
            else:
                wT = w_inT[l + 1]
                m0 = off[l + 1]
                gin = g_i[m0:off[l + 2]]
                for m in range(off[l + 2] - m0):
                    col = wT[m]
                    gm = gin[m]
                    for j in range(H):
                        a[j] += col[j] * gm
            if rec[l]:
                wT = w_recT[l]
                gi = g_i[h0:h0 + H]
                for k in range(H):
                    col = wT[k]
                    gk = gi[k]
                    for j in range(H):
                        a[j] += col[j] * gk
            u = U[n, h0:h0 + H]
            if regularise:
                # the activity penalty's dL/dS, the same at every step, after the other terms
                gr = g_reg[h0:h0 + H]
                ga = g_a[h0:h0 + H]
                an = A[na, h0:h0 + H]
                for k in range(H):
                    v = a[k]
                    if not detach_reset:
                        v -= theta * gu[k]
                    if adaptive:
                        v = v + ga[k]
                        g_z = (v + gr[k]) * _surrogate(u[k] - theta - jump * an[k], scale, one)
                        ga[k] = rho * ga[k] - jump * g_z
                    else:
                        g_z = (v + gr[k]) * _surrogate(u[k] - theta, scale, one)
                    gu[k] = beta * gu[k] + g_z
            elif adaptive:
                ga = g_a[h0:h0 + H]
                an = A[na, h0:h0 + H]
                for k in range(H):
                    v = a[k]
                    if not detach_reset:
                        v -= theta * gu[k]
                    g_z = (v + ga[k]) * _surrogate(u[k] - theta - jump * an[k], scale, one)
                    gu[k] = beta * gu[k] + g_z
                    ga[k] = rho * ga[k] - jump * g_z
            else:
                for k in range(H):
                    v = a[k]
                    if not detach_reset:
                        v -= theta * gu[k]
                    gu[k] = beta * gu[k] + v * _surrogate(u[k] - theta, scale, one)


def _batch_py(w_in, w_rec, w_out, w_inT, w_recT, w_outT, ptr, units, index, labels, targets, T, consts, rec, off,
              adaptive, detach_reset, smooth, n_blocks, readout_kind, with_grad, gw_in, gw_rec, gw_out,
              losses, correct, regularise, reg, cutoff):
    """Per-block losses, correct counts and (``with_grad``) gradient sums; block b takes samples b, b+n_blocks, ...

    ``cutoff``: the sparse backward's cut-off (:func:`_backward_py`; 0: the exact gradient).

    ``regularise`` (with ``with_grad`` only): each sample's loss adds the activity penalty of ``reg`` of every
    hidden layer (_network._activity_py, layer after layer) and its gradient enters the backward pass.
    """
    B = index.shape[0]
    L = off.shape[0] - 1
    Ht = off[L]
    Hmax = 0
    for l in range(L):
        Hmax = max(Hmax, off[l + 1] - off[l])
    O = w_out.shape[1]
    dtype = w_out.dtype
    for b in numba.prange(n_blocks):
        U = np.empty((T + 1, Ht), dtype)
        A = np.empty((T + 1 if adaptive else 1, Ht), dtype)
        s_row = np.empty(Ht, dtype)
        i_syn = np.empty(Ht, dtype)
        spk_idx = np.empty((L, (T + 1) * Hmax), np.int32)
        spk_val = np.empty((L, (T + 1) * Hmax), dtype)
        spk_ptr = np.empty((L, T + 1), np.int64)
        Uo = np.empty((T, O), dtype)
        io = np.empty(O, dtype)
        uo = np.empty(O, dtype)
        m = np.empty(O, dtype)
        g_max = np.empty(O, dtype)
        t_max = np.empty(O, np.int64)
        g_step = np.zeros((T, O), dtype)
        g_u = np.empty(Ht, dtype)
        g_a = np.empty(Ht, dtype)
        g_i = np.empty(Ht, dtype)
        acc = np.empty(Ht, dtype)
        g_uo = np.empty(O, dtype)
        g_io = np.empty(O, dtype)
        g_reg = np.empty(Ht if regularise else 1, dtype)
        count = np.empty(Ht if regularise else 1, dtype)
        loss_b = 0.0
        correct_b = 0
        for i in range(b, B, n_blocks):
            s = index[i]
            _forward(w_in, w_rec, w_out, ptr, units, s, consts, rec, off, adaptive, smooth, T,
                     U, A, s_row, i_syn, io, uo, spk_idx, spk_val, spk_ptr, Uo)
            loss, ok, lst = _sample_loss(readout_kind, Uo, labels[i], targets[min(i, targets.shape[0] - 1)],
                                         consts[0], consts[1], B, with_grad, m, g_max, t_max, g_step)
            loss_b += loss
            if regularise:
                for l in range(L):
                    h0 = off[l]
                    h1 = off[l + 1]
                    loss_b += _activity(spk_idx[l], spk_val[l], spk_ptr[l], reg, B, count[h0:h1], g_reg[h0:h1])
                lst = T - 1  # the penalty's gradient enters at every step
            correct_b += ok
            if with_grad:
                _backward(w_in, w_rec, w_out, w_inT, w_recT, w_outT, ptr, units, s, consts, rec, off, adaptive,
                          detach_reset, cutoff, U, A, spk_idx, spk_val, spk_ptr, g_step, lst, b, gw_in, gw_rec, gw_out,
                          g_u, g_a, g_i, acc, g_uo, g_io, regularise, g_reg)
                _clear_readout(readout_kind, t_max, g_step)
        losses[b] = loss_b
        correct[b] = correct_b


_spike_fn = _network._spike_fn
_surrogate = _network._surrogate
_dot = _network._dot
_forward = jit(_forward_py)
_first_active = jit(_first_active_py)
_sparse_layers = jit(_sparse_layers_py)
_backward = jit(_backward_py)
_activity = _network._activity
_sample_loss = readout.sample_loss
_clear_readout = readout.clear
_batch = jit_parallel(_batch_py)


# --------------------------------------------------------------------------- Python side


def _layout(params, cfg):
    """(w_in, w_rec, w_out) as tuples of one matrix per layer (1×1 zeros for a layer without recurrence),
    the recurrent flags (L,) uint8 and the column offsets of the layers (L + 1,) int64."""
    L = len(cfg.n_hidden)
    if len(cfg.recurrent) != L:
        raise ValueError(f"n_hidden has {L} layers, recurrent {len(cfg.recurrent)} flags")
    w_out = params["w_out"]
    placeholder = np.zeros((1, 1), w_out.dtype)
    w_in = tuple(np.ascontiguousarray(params[in_name(k)]) for k in range(L))
    w_rec = tuple(np.ascontiguousarray(params[rec_name(k)]) if r else placeholder for k, r in enumerate(cfg.recurrent))
    rec = np.array([bool(r) for r in cfg.recurrent], np.uint8)
    off = np.zeros(L + 1, np.int64)
    off[1:] = np.cumsum(cfg.n_hidden)
    return w_in, w_rec, np.ascontiguousarray(w_out), rec, off


def run(params, inputs: SpikeEvents, labels, cfg, index, with_grad: bool):
    """(loss, accuracy, grads or None) of the readout loss (``cfg.readout``, readout.py), by BPTT.

    With ``with_grad`` and an activity penalty (``cfg.activity_*_strength`` > 0), the loss and its gradient
    add the penalty of every hidden layer's spike counts, as _network.run; evaluation: the readout's alone.
    ``cfg.surrogate_cutoff`` > 0: the sparse backward (:func:`_sparse_layers_py`), not the exact gradient.
    """
    index = np.arange(inputs.n_samples) if index is None else np.asarray(index, np.int64)
    w_in, w_rec, w_out, rec, off = _layout(params, cfg)
    dtype = w_out.dtype
    labels, targets = readout.labels_and_targets(labels, index, cfg, dtype, inputs.n_steps)
    nb = _network.n_blocks(cfg, len(index))
    shape = (nb,) if with_grad else (1,)
    gw_in = tuple(np.zeros(shape + w.shape, dtype) for w in w_in)
    gw_rec = tuple(np.zeros(shape + w.shape, dtype) for w in w_rec)
    gw_out = np.zeros(shape + w_out.shape, dtype)
    cut = _network.cutoff(cfg, dtype)
    if cut > 0:  # the sparse backward reads the weights as stored: no transposed copies (same types)
        w_inT, w_recT, w_outT = w_in, w_rec, w_out
    else:
        w_inT = tuple(np.ascontiguousarray(w.T) for w in w_in)
        w_recT = tuple(np.ascontiguousarray(w.T) for w in w_rec)
        w_outT = np.ascontiguousarray(w_out.T)
    losses = np.zeros(nb)
    correct = np.zeros(nb, np.int64)
    adaptive = _network.is_adaptive(cfg)
    regularise, reg = _network.activity(cfg, dtype)
    with numba.parallel_chunksize(1):
        _batch(w_in, w_rec, w_out, w_inT, w_recT, w_outT, inputs.ptr, inputs.units, index,
               labels, targets, inputs.n_steps, _network.constants(cfg, dtype), rec, off, adaptive,
               cfg.detach_reset, cfg.smooth, nb, readout.code(cfg), with_grad, gw_in, gw_rec, gw_out, losses,
               correct, with_grad and regularise, reg, cut)
    loss = 0.0
    for b in range(nb):  # block sums in a fixed order: the same bits for any thread count
        loss += float(losses[b])
    grads = None
    if with_grad:
        grads = {}
        for k, r in enumerate(cfg.recurrent):
            grads[in_name(k)] = _network.ordered_sum(gw_in[k])
            if r:
                grads[rec_name(k)] = _network.ordered_sum(gw_rec[k])
        grads["w_out"] = _network.ordered_sum(gw_out)
    return loss / len(index), int(correct.sum()) / len(index), grads


def loss_and_grad(params, inputs: SpikeEvents, labels, cfg, index=None):
    """``(loss, grads)`` with ``grads`` keyed like ``params``; ``index`` selects samples of ``inputs``."""
    loss, _, grads = run(params, inputs, labels, cfg, index, True)
    return loss, grads


def loss_acc_grad(params, inputs: SpikeEvents, labels, cfg, index=None):
    """``(loss, accuracy, grads)``: what a training step needs, in one pass."""
    return run(params, inputs, labels, cfg, index, True)


def evaluate(params, inputs: SpikeEvents, labels, cfg, index=None) -> dict[str, float]:
    """Loss and accuracy without gradients."""
    loss, acc, _ = run(params, inputs, labels, cfg, index, False)
    return {"loss": loss, "accuracy": acc}
