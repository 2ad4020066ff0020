"""Online learning by eligibility propagation (e-prop, diagonal RTRL) for the LIF and ALIF networks.

The networks are those of :mod:`snnbatch.kernels.lif` and
:mod:`snnbatch.kernels.alif` (pass either config; LIF is ALIF with
``adapt_jump = 0``). The gradient is computed forward in time, alongside the
network, from per-synapse eligibility traces (Bellec et al. 2020; Zenke &
Neftci 2021; seeds 003 and 004): nothing of the time history is stored, so
memory is O(n_in·H + H²) whatever the number of steps T, and compute is
O((n_in·H + H²)·T).

**The online loss.** The max-over-time readout loss of lif.py is not causal
(the maximum and the softmax over maxima are known only at the end of a
sample), so e-prop trains the same network on a per-time-step loss::

    loss = mean over the batch of (1/T) Σ_n cross-entropy(softmax_k(Uo_k[n+1]), label)

whose gradient with respect to the readout ``g_o[n] = (softmax(Uo[n+1])_o − [o = label]) / (T·B)``
is known at step n. A sample is classified by ``argmax_o Σ_n log softmax(Uo[n+1])_o``
(the class that minimises that sample's loss). :func:`bptt_loss_and_grad`
computes the BPTT gradient of the same loss, for comparison.

**The traces** of synapse j → k (input unit j or, for ``w_rec``, hidden neuron j),
in the order they are updated at step n (``x_j[n]`` the presynaptic spike count)::

    d_jk      = σ'(z_k[n]) (εU_jk − β_a εA_jk)        eligibility = ∂S_k[n]/∂W_jk,  z = U − ϑ − β_a A
    εI_j      ← α εI_j + x_j[n]                       ∂I_k[n+1]/∂W_jk (presynaptic only)
    εU_jk     ← β εU_jk + εI_j (− ϑ d_jk)             ∂U_k[n+1]/∂W_jk; the reset term unless detach_reset
    εA_jk     ← ρ εA_jk + d_jk                        ∂A_k[n+1]/∂W_jk (ALIF only)
    ēI_jk     ← α ēI_jk + d_jk                        the eligibility filtered like the readout:
    ēU_jk     ← β ēU_jk + ēI_jk                       ∂Uo_o[n+1]/∂W_jk = W_out[k,o] ēU_jk
    L_k[n]    = Σ_o W_out[k,o] g_o[n]                 learning signal (symmetric feedback)
    ∇W_jk    += L_k[n] ēU_jk

For LIF with ``detach_reset`` εU does not depend on k and is kept per
presynaptic unit. For ``w_rec`` the presynaptic spikes are the hidden spikes
S_j[n], and, as seed 004 describes, the explicit recurrence is ignored: the
dependence of S_j on the weights and the path from S_k to the loss through
other neurons are dropped (the traces stay diagonal: neuron k only). The
readout weights get their exact gradient from the doubly filtered hidden
spikes (``fI ← α fI + S``, ``fU ← β fU + fI``, ``∇W_out[k,o] += fU_k g_o``).

**Exactness.** Without recurrent weights each hidden neuron's state depends
only on its own incoming weights, and filtering the eligibility with the
readout's filters makes the learning signal causal, so the e-prop gradient
*is* the gradient of the per-step loss: it equals :func:`bptt_loss_and_grad`
to rounding (float64, ``smooth=True``, either ``detach_reset``) — the tests
check this to 1e-10.

Memory is what the Python wrappers allocate with NumPy (the compiled code
allocates only per-block loss counters and a 1×1 placeholder), so
:mod:`tracemalloc` measures it: per block,
``4·(n_in + H)·H`` trace values for e-prop, ``(3H + O)·T`` history values for
:func:`bptt_loss_and_grad`. As in lif.py a batch is cut into a fixed number of
blocks whose gradients are summed in a fixed order: results do not depend on
the number of threads. Compiled helpers are repeated, not imported from the
other kernels, because Numba's disk cache does not see changes in other files.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from ._jit import njit
from . import lif
from .events import SpikeEvents


def _neuron(cfg) -> tuple[float, float, float, float]:
    """(α, β, ρ, β_a) of a LIFConfig (no adaptation) or an ALIFConfig."""
    jump = float(getattr(cfg, "adapt_jump", 0.0))
    rho = float(cfg.rho) if jump != 0.0 else 0.0
    return cfg.alpha, cfg.beta, rho, jump


def init_params(cfg, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The initialisation of lif.py / alif.py."""
    return lif.init_params(cfg, rng)


# --------------------------------------------------------------------------- one sample


def _spike_fn(x, scale, smooth):
    if smooth:
        return x / (scale * abs(x) + 1.0)
    return 1.0 if x > 0.0 else 0.0


def _surrogate(x, scale):
    d = scale * abs(x) + 1.0
    return 1.0 / (d * d)


def _log_softmax(v, out):
    """``out[o] = log softmax(v)_o``."""
    O = v.shape[0]
    mx = v[0]
    for o in range(1, O):
        if v[o] > mx:
            mx = v[o]
    z = 0.0
    for o in range(O):
        z += math.exp(v[o] - mx)
    lz = math.log(z) + mx
    for o in range(O):
        out[o] = v[o] - lz


def _rows(eI, eUpre, eU, eA, bI, bU, sig, L, g, alpha, beta, rho, theta, jump, detach_reset, factored):
    """Advance one presynaptic row of traces by a step and accumulate its gradient; returns the new εU_j.

    ``eI`` is εI_j already advanced to I[n+1]; ``eUpre`` is εU_j at U[n] when
    ``factored`` (LIF, detach_reset), in which case ``eU`` and ``eA`` are unused.
    """
    H = sig.shape[0]
    if factored:
        for k in range(H):
            d = sig[k] * eUpre
            bI[k] = alpha * bI[k] + d
            bU[k] = beta * bU[k] + bI[k]
            g[k] += L[k] * bU[k]
        return beta * eUpre + eI
    adaptive = jump != 0.0
    for k in range(H):
        d = sig[k] * (eU[k] - jump * eA[k]) if adaptive else sig[k] * eU[k]
        eu = beta * eU[k] + eI
        if not detach_reset:
            eu -= theta * d
        eU[k] = eu
        if adaptive:
            eA[k] = rho * eA[k] + d
        bI[k] = alpha * bI[k] + d
        bU[k] = beta * bU[k] + bI[k]
        g[k] += L[k] * bU[k]
    return 0.0


# rows of the per-block work vectors
_I, _U, _A, _S, _SIG, _L, _FI, _FU, _EIR, _EUR, _ACTR = range(11)  # vh: (11, H)
_EI, _EU, _ACT = range(3)  # vi: (3, n_in)
_IO, _UO, _G, _LP, _SCORE = range(5)  # vo: (5, O)
N_VH, N_VI, N_VO = 11, 3, 5


def _sample_online_py(
    w_in, w_rec, w_out, ptr, units, s, label, alpha, beta, rho, theta, jump, scale, recurrent, detach_reset,
    smooth, with_grad, g_norm, vh, vi, vo, tin, trec, gw_in, gw_rec, gw_out, record, U, A, S, Uo,
):
    """Run sample ``s`` forward with the per-step loss; with ``with_grad`` accumulate its e-prop gradient.

    Returns (loss of the sample, 1 if classified correctly else 0). With
    ``record`` the states U[n], A[n], S[n] and Uo[n+1] are written to the
    (T, ·) arrays ``U, A, S, Uo`` (used by the BPTT reference only).
    """
    T = ptr.shape[1] - 1
    H = vh.shape[1]
    O = vo.shape[1]
    n_in = vi.shape[1]
    vh[:] = 0.0
    vi[:] = 0.0
    vo[:] = 0.0
    if with_grad:
        tin[:] = 0.0
        if recurrent:
            trec[:] = 0.0
    factored = jump == 0.0 and detach_reset
    i_syn, u, a, sv, sig, L = vh[_I], vh[_U], vh[_A], vh[_S], vh[_SIG], vh[_L]
    io, uo, g, lp, score = vo[_IO], vo[_UO], vo[_G], vo[_LP], vo[_SCORE]
    loss = 0.0
    for n in range(T):
        # spikes of step n, from U[n] and A[n]
        for k in range(H):
            z = u[k] - theta - jump * a[k]
            sv[k] = _spike_fn(z, scale, smooth)
            sig[k] = _surrogate(z, scale)
            if record:
                U[n, k] = u[k]
                A[n, k] = a[k]
                S[n, k] = sv[k]
        # the network (same order of operations as lif.py / alif.py)
        for k in range(H):
            i_syn[k] *= alpha
        for e in range(ptr[s, n], ptr[s, n + 1]):
            row = w_in[units[e]]
            for k in range(H):
                i_syn[k] += row[k]
        for o in range(O):
            io[o] *= alpha
        for j in range(H):
            sj = sv[j]
            if sj != 0.0:
                if recurrent:
                    row = w_rec[j]
                    for k in range(H):
                        i_syn[k] += sj * row[k]
                for o in range(O):
                    io[o] += sj * w_out[j, o]
        for k in range(H):
            u[k] = beta * u[k] + i_syn[k] - theta * sv[k]
            a[k] = rho * a[k] + sv[k]
        for o in range(O):
            uo[o] = beta * uo[o] + io[o]
            if record:
                Uo[n, o] = uo[o]
        # the per-step loss and its gradient with respect to Uo[n+1]
        _log_softmax(uo, lp)
        loss -= lp[label]
        for o in range(O):
            score[o] += lp[o]
            g[o] = math.exp(lp[o]) * g_norm
        g[label] -= g_norm
        if not with_grad:
            continue
        for k in range(H):
            acc = 0.0
            for o in range(O):
                acc += w_out[k, o] * g[o]
            L[k] = acc
        # readout weights: exact, from the doubly filtered hidden spikes
        for k in range(H):
            vh[_FI, k] = alpha * vh[_FI, k] + sv[k]
            vh[_FU, k] = beta * vh[_FU, k] + vh[_FI, k]
            fu = vh[_FU, k]
            for o in range(O):
                gw_out[k, o] += fu * g[o]
        # input synapses: a row is all zeros until its unit first spikes
        for j in range(n_in):
            vi[_EI, j] *= alpha
        for e in range(ptr[s, n], ptr[s, n + 1]):
            j = units[e]
            vi[_EI, j] += 1.0
            vi[_ACT, j] = 1.0
        for j in range(n_in):
            if vi[_ACT, j] != 0.0:
                vi[_EU, j] = _rows(
                    vi[_EI, j], vi[_EU, j], tin[0, j], tin[1, j], tin[2, j], tin[3, j], sig, L, gw_in[j],
                    alpha, beta, rho, theta, jump, detach_reset, factored,
                )
        # recurrent synapses: presynaptic spikes S_j[n], explicit recurrence ignored
        if recurrent:
            for j in range(H):
                vh[_EIR, j] = alpha * vh[_EIR, j] + sv[j]
                if sv[j] != 0.0:
                    vh[_ACTR, j] = 1.0
            for j in range(H):
                if vh[_ACTR, j] != 0.0:
                    vh[_EUR, j] = _rows(
                        vh[_EIR, j], vh[_EUR, j], trec[0, j], trec[1, j], trec[2, j], trec[3, j], sig, L, gw_rec[j],
                        alpha, beta, rho, theta, jump, detach_reset, factored,
                    )
    best = 0
    for o in range(1, O):
        if score[o] > score[best]:
            best = o
    return loss / T, 1 if best == label else 0


def _sample_backward_steps_py(
    w_in, w_rec, w_out, ptr, units, s, label, alpha, beta, rho, theta, jump, scale, recurrent, detach_reset,
    g_norm, U, A, S, Uo, lp, gw_in, gw_rec, gw_out,
):
    """BPTT of the per-step loss for sample ``s`` from its recorded history (alif.py's backward pass,
    with the readout gradient entering at every step)."""
    T, H = U.shape
    O = Uo.shape[1]
    dtype = U.dtype
    g_u = np.zeros(H, dtype)  # dL/dU[n+1]
    g_a = np.zeros(H, dtype)  # dL/dA[n+1]
    g_i = np.zeros(H, dtype)  # dL/dI[n+2], then dL/dI[n+1]
    g_uo = np.zeros(O, dtype)
    g_io = np.zeros(O, dtype)
    g_s = np.zeros(H, dtype)
    for n in range(T - 1, -1, -1):
        _log_softmax(Uo[n], lp)
        for o in range(O):
            direct = math.exp(lp[o]) * g_norm - (g_norm if o == label else 0.0)
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
        for j in range(H):
            acc = 0.0  # a float64 accumulator, as in lif.py
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
            g_z = g_s[k] * _surrogate(U[n, k] - theta - jump * A[n, k], scale)
            g_u[k] = beta * g_u[k] + g_z
            g_a[k] = rho * g_a[k] - jump * g_z


def _online_batch_py(
    w_in, w_rec, w_out, ptr, units, index, labels, alpha, beta, rho, theta, jump, scale, recurrent, detach_reset,
    smooth, with_grad, vh, vi, vo, tin, trec, gw_in, gw_rec, gw_out,
):
    """E-prop over a batch; block b handles samples b, b+n_blocks, ... with its own traces and gradients."""
    B = index.shape[0]
    n_blocks = vh.shape[0]
    g_norm = 1.0 / ((ptr.shape[1] - 1) * B)
    losses = np.zeros(n_blocks)
    correct = np.zeros(n_blocks, np.int64)
    dummy = np.zeros((1, 1), w_in.dtype)
    for b in numba.prange(n_blocks):
        for i in range(b, B, n_blocks):
            loss, ok = _sample_online(
                w_in, w_rec, w_out, ptr, units, index[i], labels[i], alpha, beta, rho, theta, jump, scale,
                recurrent, detach_reset, smooth, with_grad, g_norm, vh[b], vi[b], vo[b], tin[b], trec[b],
                gw_in[b], gw_rec[b], gw_out[b], False, dummy, dummy, dummy, dummy,
            )
            losses[b] += loss
            correct[b] += ok
    return losses, correct  # summed by the caller in a fixed order, not by a parallel reduction


def _bptt_batch_py(
    w_in, w_rec, w_out, ptr, units, index, labels, alpha, beta, rho, theta, jump, scale, recurrent, detach_reset,
    smooth, vh, vi, vo, U, A, S, Uo, gw_in, gw_rec, gw_out,
):
    """BPTT of the per-step loss over a batch, with the history buffers ``U, A, S, Uo`` of each block."""
    B = index.shape[0]
    n_blocks = vh.shape[0]
    g_norm = 1.0 / ((ptr.shape[1] - 1) * B)
    losses = np.zeros(n_blocks)
    correct = np.zeros(n_blocks, np.int64)
    dummy3 = np.zeros((1, 1, 1), w_in.dtype)
    for b in numba.prange(n_blocks):
        for i in range(b, B, n_blocks):
            loss, ok = _sample_online(
                w_in, w_rec, w_out, ptr, units, index[i], labels[i], alpha, beta, rho, theta, jump, scale,
                recurrent, detach_reset, smooth, False, g_norm, vh[b], vi[b], vo[b], dummy3, dummy3,
                gw_in[b], gw_rec[b], gw_out[b], True, U[b], A[b], S[b], Uo[b],
            )
            losses[b] += loss
            correct[b] += ok
            _sample_backward_steps(
                w_in, w_rec, w_out, ptr, units, index[i], labels[i], alpha, beta, rho, theta, jump, scale,
                recurrent, detach_reset, g_norm, U[b], A[b], S[b], Uo[b], vo[b, _LP], gw_in[b], gw_rec[b], gw_out[b],
            )
    return losses, correct  # summed by the caller in a fixed order, not by a parallel reduction


_jit = njit(nogil=True, fastmath=False)
_jit_par = njit(nogil=True, parallel=True, fastmath=False)

_spike_fn = _jit(_spike_fn)
_surrogate = _jit(_surrogate)
_log_softmax = _jit(_log_softmax)
_rows = _jit(_rows)
_sample_online = _jit(_sample_online_py)
_sample_backward_steps = _jit(_sample_backward_steps_py)
_online_batch = _jit_par(_online_batch_py)
_bptt_batch = _jit_par(_bptt_batch_py)


# --------------------------------------------------------------------------- public API


def _prepare(params, inputs, labels, cfg, index):
    index = np.arange(inputs.n_samples) if index is None else np.asarray(index, np.int64)
    labels = np.asarray(labels, np.int64)
    if labels.shape[0] != index.shape[0]:
        labels = labels[index]
    w_in = params["w_in"]
    w_rec = params["w_rec"] if cfg.recurrent else np.zeros((1, 1), w_in.dtype)
    nb = max(1, min(cfg.n_blocks, len(index)))
    return index, labels, w_in, w_rec, params["w_out"], nb


def workspace(cfg, n_blocks: int, with_grad: bool = True) -> dict[str, np.ndarray]:
    """The arrays e-prop works in: per block, state vectors and (with gradients) the traces and gradients.

    None of them depends on the number of time steps.
    """
    dtype = np.dtype(cfg.dtype)
    H, n_in, O = cfg.n_hidden, cfg.n_inputs, cfg.n_outputs
    nb = n_blocks if with_grad else 1
    hr = H if cfg.recurrent else 1
    return {
        "vh": np.zeros((n_blocks, N_VH, H), dtype),
        "vi": np.zeros((n_blocks, N_VI, n_in), dtype),
        "vo": np.zeros((n_blocks, N_VO, O), dtype),
        "tin": np.zeros((n_blocks, 4, n_in, H) if with_grad else (n_blocks, 1, 1, 1), dtype),
        "trec": np.zeros((n_blocks, 4, hr, hr) if with_grad else (n_blocks, 1, 1, 1), dtype),
        "gw_in": np.zeros((nb, n_in, H), dtype),
        "gw_rec": np.zeros((nb, hr, hr), dtype),
        "gw_out": np.zeros((nb, H, O), dtype),
    }


def _grads(ws, cfg):
    grads = {"w_in": _ordered_sum(ws["gw_in"]), "w_out": _ordered_sum(ws["gw_out"])}
    if cfg.recurrent:
        grads["w_rec"] = _ordered_sum(ws["gw_rec"])
    return grads


def _ordered_sum(blocks: np.ndarray) -> np.ndarray:
    out = blocks[0].copy()
    for b in range(1, blocks.shape[0]):
        out += blocks[b]
    return out


def _run(params, inputs, labels, cfg, index, with_grad):
    index, labels, w_in, w_rec, w_out, nb = _prepare(params, inputs, labels, cfg, index)
    alpha, beta, rho, jump = _neuron(cfg)
    ws = workspace(cfg, nb, with_grad)
    losses, correct = _online_batch(
        w_in, w_rec, w_out, inputs.ptr, inputs.units, index, labels, alpha, beta, rho, cfg.threshold, jump,
        cfg.surrogate_scale, cfg.recurrent, cfg.detach_reset, cfg.smooth, with_grad,
        ws["vh"], ws["vi"], ws["vo"], ws["tin"], ws["trec"], ws["gw_in"], ws["gw_rec"], ws["gw_out"],
    )
    grads = _grads(ws, cfg) if with_grad else None
    return float(_ordered_sum(losses) / len(index)), int(correct.sum()) / len(index), grads


def loss_and_grad(params, inputs: SpikeEvents, labels, cfg, index=None):
    """Per-step loss and its e-prop gradient ``(loss, grads)``; ``cfg`` a LIFConfig or an ALIFConfig."""
    loss, _, grads = _run(params, inputs, labels, cfg, index, True)
    return loss, grads


def loss_acc_grad(params, inputs: SpikeEvents, labels, cfg, index=None):
    """``(loss, accuracy, grads)`` of one e-prop pass over the samples ``index``."""
    return _run(params, inputs, labels, cfg, index, True)


def evaluate(params, inputs: SpikeEvents, labels, cfg, index=None) -> dict[str, float]:
    """Per-step loss and accuracy (``argmax_o Σ_n log softmax(Uo[n+1])_o``) without gradients."""
    loss, acc, _ = _run(params, inputs, labels, cfg, index, False)
    return {"loss": loss, "accuracy": acc}


def history(cfg, n_blocks: int, n_steps: int) -> dict[str, np.ndarray]:
    """The per-block history BPTT keeps: U, A, S (T, H) and Uo (T, O), growing with T."""
    dtype = np.dtype(cfg.dtype)
    H, O = cfg.n_hidden, cfg.n_outputs
    return {
        "U": np.zeros((n_blocks, n_steps, H), dtype),
        "A": np.zeros((n_blocks, n_steps, H), dtype),
        "S": np.zeros((n_blocks, n_steps, H), dtype),
        "Uo": np.zeros((n_blocks, n_steps, O), dtype),
    }


def bptt_loss_and_grad(params, inputs: SpikeEvents, labels, cfg, index=None):
    """The per-step loss and its BPTT gradient ``(loss, grads)``: the reference e-prop is checked against."""
    index, labels, w_in, w_rec, w_out, nb = _prepare(params, inputs, labels, cfg, index)
    alpha, beta, rho, jump = _neuron(cfg)
    ws = workspace(cfg, nb, with_grad=False)
    ws.update(gw_in=np.zeros((nb,) + w_in.shape, w_in.dtype), gw_rec=np.zeros((nb,) + w_rec.shape, w_in.dtype),
              gw_out=np.zeros((nb,) + w_out.shape, w_in.dtype))
    hist = history(cfg, nb, inputs.n_steps)
    losses, _ = _bptt_batch(
        w_in, w_rec, w_out, inputs.ptr, inputs.units, index, labels, alpha, beta, rho, cfg.threshold, jump,
        cfg.surrogate_scale, cfg.recurrent, cfg.detach_reset, cfg.smooth,
        ws["vh"], ws["vi"], ws["vo"], hist["U"], hist["A"], hist["S"], hist["Uo"],
        ws["gw_in"], ws["gw_rec"], ws["gw_out"],
    )
    return float(_ordered_sum(losses) / len(index)), _grads(ws, cfg)


def readout(params, inputs: SpikeEvents, cfg, index=None) -> np.ndarray:
    """Readout voltages Uo[n+1] (batch, T, O) as the e-prop forward pass computes them."""
    index, _, w_in, w_rec, w_out, _ = _prepare(params, inputs, np.zeros(inputs.n_samples, np.int64), cfg, index)
    alpha, beta, rho, jump = _neuron(cfg)
    out = np.empty((len(index), inputs.n_steps, cfg.n_outputs), w_in.dtype)
    ws = workspace(cfg, 1, with_grad=False)
    hist = history(cfg, 1, inputs.n_steps)
    for i, s in enumerate(index):
        _sample_online(
            w_in, w_rec, w_out, inputs.ptr, inputs.units, s, 0, alpha, beta, rho, cfg.threshold, jump,
            cfg.surrogate_scale, cfg.recurrent, cfg.detach_reset, cfg.smooth, False, 1.0,
            ws["vh"][0], ws["vi"][0], ws["vo"][0], ws["tin"][0], ws["trec"][0],
            ws["gw_in"][0], ws["gw_rec"][0], ws["gw_out"][0], True, hist["U"][0], hist["A"][0], hist["S"][0], hist["Uo"][0],
        )
        out[i] = hist["Uo"][0]
    return out
