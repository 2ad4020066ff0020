"""Online learning by eligibility propagation (e-prop, diagonal RTRL) for the LIF and ALIF networks.

The networks are those of :mod:`snnbatch.kernels.lif` and
:mod:`snnbatch.kernels.alif` (pass either config; LIF is ALIF with
``adapt_jump = 0``). The gradient is computed forward in time, alongside the
network, from per-synapse eligibility traces (Bellec et al. 2020; Zenke &
Neftci 2021; seeds 003 and 004): of the time history only a fixed number of
steps is kept, so memory is O(n_in·H + H²) whatever the number of steps T,
and compute is O((n_in·H + H²)·T).

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

**The network** is lif.py's and alif.py's, bit for bit in either dtype: the
online pass runs the compiled steps of ``_network.py`` CHUNK steps at a time
and then advances the traces over those steps (:func:`forward` returns what
it ran). All arithmetic of the network and the traces is in the weights'
dtype, as in lif.py.

Memory is what the Python wrappers allocate with NumPy (the compiled code
allocates only per-block loss counters and a 1×1 placeholder), so
:mod:`tracemalloc` measures it: per block, ``4·(n_in + H)·H`` trace values and
CHUNK steps of network history for e-prop; for :func:`bptt_loss_and_grad`
the network's whole history (U, A, the spike values and their int32 indices:
3H values and H indices, one offset, and Uo with its gradient: 2·O values,
per step). As in lif.py a batch is cut into a fixed number of blocks whose
gradients are summed in a fixed order: results do not depend on the number
of threads.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from . import _network, alif, lif
from ._network import _forward, _sample_backward, _start, _surrogate, jit, jit_parallel
from .events import SpikeEvents


def init_params(cfg, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The initialisation of lif.py / alif.py."""
    return lif.init_params(cfg, rng)


# --------------------------------------------------------------------------- one sample
#
# The network is _network.py's, run CHUNK steps at a time (its history of those steps in the block's
# workspace); after each chunk the traces advance step by step over it. ``consts`` is the tuple
# (α, β, ρ, ϑ, β_a, scale, 1) of _network.constants, in the weights' dtype: all the network's and the
# traces' arithmetic is in that dtype (the loss and the per-block loss sums are float64, as in lif.py).

CHUNK = 16  # time steps of network history kept per block


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
_I, _S, _SIG, _L, _FI, _FU, _EIR, _EUR, _ACTR = range(9)  # vh: (9, H)
_EI, _EU, _ACT = range(3)  # vi: (3, n_in)
_IO, _UO, _G, _LP, _SCORE = range(5)  # vo: (5, O)
N_VH, N_VI, N_VO = 9, 3, 5


def _step_loss(uo, label, g_norm, lp, score, g):
    """The per-step loss at Uo[n+1] = ``uo``; adds log softmax to ``score``, writes dL/dUo[n+1] to ``g``."""
    _log_softmax(uo, lp)
    for o in range(uo.shape[0]):
        score[o] += lp[o]
        g[o] = math.exp(lp[o]) * g_norm
    g[label] -= g_norm
    return -lp[label]


def _sample_online_py(
    w_in, w_rec, w_out, ptr, units, s, label, consts, recurrent, adaptive, detach_reset, smooth, with_grad,
    g_norm, vh, vi, vo, s_row, flags, U, A, Uo, spk_idx, spk_val, spk_ptr, tin, trec, gw_in, gw_rec, gw_out,
    record, rU, rA, rS, rUo,
):
    """Run sample ``s`` forward with the per-step loss; with ``with_grad`` accumulate its e-prop gradient.

    ``s_row``, ``flags`` and the chunk ``U, A, Uo, spk_*`` are the network's (_network._forward_py, CHUNK
    steps). Returns (loss of the sample, 1 if classified correctly else 0). With ``record`` the states
    U[n], A[n] (with adaptation), S[n] and Uo[n+1] are written to the (T, ·) arrays ``rU, rA, rS, rUo``.
    """
    alpha, beta, rho, theta, jump, scale, one = consts
    zero = one - one
    T = ptr.shape[1] - 1
    K = Uo.shape[0]
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
    i_syn, sv, sig, L = vh[_I], vh[_S], vh[_SIG], vh[_L]
    io, uo, g, lp, score = vo[_IO], vo[_UO], vo[_G], vo[_LP], vo[_SCORE]
    _start(consts, adaptive, smooth, U, A, s_row, flags, i_syn, io, uo)
    loss = 0.0
    for n0 in range(0, T, K):
        n1 = min(n0 + K, T)
        if n0 > 0:  # the state at n0, the last row of the previous chunk
            for k in range(H):
                U[0, k] = U[K, k]
                if adaptive:
                    A[0, k] = A[K, k]
        # the network: the same compiled steps as lif.py / alif.py
        _forward(w_in, w_rec, w_out, ptr, units, s, consts, recurrent, adaptive, smooth, n0, n1,
                 U, A, s_row, flags, i_syn, io, uo, spk_idx, spk_val, spk_ptr, Uo)
        for n in range(n0, n1):
            r = n - n0
            ra = r if adaptive else 0
            # S[n] and the surrogate derivative at z[n] = U[n] − ϑ (− β_a A[n])
            for k in range(H):
                z = U[r, k] - theta - jump * A[ra, k] if adaptive else U[r, k] - theta
                sig[k] = _surrogate(z, scale, one)
                sv[k] = zero
            for q in range(spk_ptr[r], spk_ptr[r + 1]):
                sv[spk_idx[q]] = spk_val[q]
            if record:
                for k in range(H):
                    rU[n, k] = U[r, k]
                    rS[n, k] = sv[k]
                    if adaptive:
                        rA[n, k] = A[ra, k]
                for o in range(O):
                    rUo[n, o] = Uo[r, o]
            loss += _step_loss(Uo[r], label, g_norm, lp, score, g)
            if not with_grad:
                continue
            for k in range(H):
                acc = zero
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
                vi[_EI, j] += one
                vi[_ACT, j] = one
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
                        vh[_ACTR, j] = one
                for j in range(H):
                    if vh[_ACTR, j] != 0.0:
                        vh[_EUR, j] = _rows(
                            vh[_EIR, j], vh[_EUR, j], trec[0, j], trec[1, j], trec[2, j], trec[3, j], sig, L,
                            gw_rec[j], alpha, beta, rho, theta, jump, detach_reset, factored,
                        )
    best = 0
    for o in range(1, O):
        if score[o] > score[best]:
            best = o
    return loss / T, 1 if best == label else 0


def _online_batch_py(
    w_in, w_rec, w_out, ptr, units, index, labels, consts, recurrent, adaptive, detach_reset, smooth, with_grad,
    vh, vi, vo, s_row, flags, U, A, Uo, spk_idx, spk_val, spk_ptr, tin, trec, gw_in, gw_rec, gw_out,
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
                w_in, w_rec, w_out, ptr, units, index[i], labels[i], consts, recurrent, adaptive, detach_reset,
                smooth, with_grad, g_norm, vh[b], vi[b], vo[b], s_row[b], flags[b], U[b], A[b], Uo[b],
                spk_idx[b], spk_val[b], spk_ptr[b], tin[b], trec[b], gw_in[b], gw_rec[b], gw_out[b],
                False, dummy, dummy, dummy, dummy,
            )
            losses[b] += loss
            correct[b] += ok
    return losses, correct  # summed by the caller in a fixed order, not by a parallel reduction


def _bptt_batch_py(
    w_in, w_rec, w_out, w_recT, w_outT, ptr, units, index, labels, consts, recurrent, adaptive, detach_reset,
    smooth, vo, s_row, flags, i_syn, U, A, Uo, spk_idx, spk_val, spk_ptr, g_step, adj_h, adj_o,
    gw_in, gw_rec, gw_out,
):
    """BPTT of the per-step loss over a batch: the network's whole history per sample, then
    _network's backward pass with the readout gradient entering at every step."""
    B = index.shape[0]
    n_blocks = vo.shape[0]
    T = ptr.shape[1] - 1
    O = vo.shape[2]
    g_norm = 1.0 / (T * B)
    losses = np.zeros(n_blocks)
    for b in numba.prange(n_blocks):
        io, uo, g, lp, score = vo[b, _IO], vo[b, _UO], vo[b, _G], vo[b, _LP], vo[b, _SCORE]
        for i in range(b, B, n_blocks):
            s = index[i]
            _start(consts, adaptive, smooth, U[b], A[b], s_row[b], flags[b], i_syn[b], io, uo)
            _forward(w_in, w_rec, w_out, ptr, units, s, consts, recurrent, adaptive, smooth, np.int64(0), T,
                     U[b], A[b], s_row[b], flags[b], i_syn[b], io, uo, spk_idx[b], spk_val[b], spk_ptr[b], Uo[b])
            score[:] = 0.0
            loss = 0.0
            for n in range(T):
                loss += _step_loss(Uo[b, n], labels[i], g_norm, lp, score, g)
                for o in range(O):
                    g_step[b, n, o] = g[o]
            losses[b] += loss / T
            h = adj_h[b]
            _sample_backward(
                w_recT, w_outT, ptr, units, s, consts, recurrent, adaptive, detach_reset, U[b], A[b],
                spk_idx[b], spk_val[b], spk_ptr[b], g_step[b], T - 1, gw_in[b], gw_rec[b], gw_out[b],
                h[0], h[1], h[2], h[3], h[4], adj_o[b, 0], adj_o[b, 1],
            )
    return losses  # summed by the caller in a fixed order, not by a parallel reduction


_log_softmax = jit(_log_softmax)
_rows = jit(_rows)
_step_loss = jit(_step_loss)
_sample_online = jit(_sample_online_py)
_online_batch = jit_parallel(_online_batch_py)
_bptt_batch = jit_parallel(_bptt_batch_py)


# --------------------------------------------------------------------------- public API


def workspace(cfg, n_blocks: int, with_grad: bool = True) -> dict[str, np.ndarray]:
    """The arrays e-prop works in: per block, state vectors, CHUNK steps of network history and (with
    gradients) the traces and gradients.

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
        **_network_arrays(cfg, n_blocks, CHUNK),
        "tin": np.zeros((n_blocks, 4, n_in, H) if with_grad else (n_blocks, 1, 1, 1), dtype),
        "trec": np.zeros((n_blocks, 4, hr, hr) if with_grad else (n_blocks, 1, 1, 1), dtype),
        "gw_in": np.zeros((nb, n_in, H), dtype),
        "gw_rec": np.zeros((nb, hr, hr), dtype),
        "gw_out": np.zeros((nb, H, O), dtype),
    }


def _network_arrays(cfg, n_blocks: int, n_steps: int) -> dict[str, np.ndarray]:
    """Per block, what _network._forward_py works in for ``n_steps`` steps: the spike mask and the
    state of a step, U and A (n_steps + 1 rows), Uo (n_steps rows) and the spike lists."""
    dtype = np.dtype(cfg.dtype)
    H, O, Hp = cfg.n_hidden, cfg.n_outputs, _network.padded(cfg.n_hidden)
    return {
        "s_row": np.zeros((n_blocks, Hp), dtype),
        "flags": np.zeros((n_blocks, Hp), np.uint8),
        "U": np.zeros((n_blocks, n_steps + 1, H), dtype),
        "A": np.zeros((n_blocks, n_steps + 1 if _network.is_adaptive(cfg) else 1, H), dtype),
        "Uo": np.zeros((n_blocks, n_steps, O), dtype),
        "spk_idx": np.zeros((n_blocks, n_steps * H + H), np.int32),
        "spk_val": np.zeros((n_blocks, n_steps * H + H), dtype),
        "spk_ptr": np.zeros((n_blocks, n_steps + 1), np.int64),
    }


def _setup(params, inputs, labels, cfg, index):
    index, labels = _network.select(inputs, labels, index)
    w_in, w_rec, w_out = _network.weights(params, cfg)
    consts = _network.constants(cfg, w_in.dtype)
    return index, labels, w_in, w_rec, w_out, _network.n_blocks(cfg, len(index)), consts


def _run(params, inputs, labels, cfg, index, with_grad):
    index, labels, w_in, w_rec, w_out, nb, consts = _setup(params, inputs, labels, cfg, index)
    ws = workspace(cfg, nb, with_grad)
    losses, correct = _online_batch(
        w_in, w_rec, w_out, inputs.ptr, inputs.units, index, labels, consts, cfg.recurrent,
        _network.is_adaptive(cfg), cfg.detach_reset, cfg.smooth, with_grad, ws["vh"], ws["vi"], ws["vo"],
        ws["s_row"], ws["flags"], ws["U"], ws["A"], ws["Uo"], ws["spk_idx"], ws["spk_val"], ws["spk_ptr"],
        ws["tin"], ws["trec"], ws["gw_in"], ws["gw_rec"], ws["gw_out"],
    )
    grads = _network.gradients(ws["gw_in"], ws["gw_rec"], ws["gw_out"], cfg) if with_grad else None
    return float(_network.ordered_sum(losses) / len(index)), int(correct.sum()) / len(index), grads


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
    """What BPTT keeps per block, growing with T: the network's history (U, A with adaptation, the spike
    lists, Uo) and the readout gradient of every step; and the adjoints of one step."""
    dtype = np.dtype(cfg.dtype)
    H, O = cfg.n_hidden, cfg.n_outputs
    return {
        **_network_arrays(cfg, n_blocks, n_steps),
        "i_syn": np.zeros((n_blocks, H), dtype),
        "g_step": np.zeros((n_blocks, n_steps, O), dtype),
        "adj_h": np.zeros((n_blocks, 5, H), dtype),  # dL/dU, dL/dA, dL/dI, dL/dS, the dL/dS sums
        "adj_o": np.zeros((n_blocks, 2, O), dtype),  # dL/dUo, dL/dIo
    }


def bptt_loss_and_grad(params, inputs: SpikeEvents, labels, cfg, index=None):
    """The per-step loss and its BPTT gradient ``(loss, grads)``: the reference e-prop is checked against."""
    index, labels, w_in, w_rec, w_out, nb, consts = _setup(params, inputs, labels, cfg, index)
    vo = np.zeros((nb, N_VO, cfg.n_outputs), w_in.dtype)
    hist = history(cfg, nb, inputs.n_steps)
    gw_in = np.zeros((nb,) + w_in.shape, w_in.dtype)
    gw_rec = np.zeros((nb,) + w_rec.shape, w_in.dtype)
    gw_out = np.zeros((nb,) + w_out.shape, w_in.dtype)
    losses = _bptt_batch(
        w_in, w_rec, w_out, np.ascontiguousarray(w_rec.T), np.ascontiguousarray(w_out.T), inputs.ptr,
        inputs.units, index, labels, consts, cfg.recurrent, _network.is_adaptive(cfg), cfg.detach_reset,
        cfg.smooth, vo, hist["s_row"], hist["flags"], hist["i_syn"], hist["U"], hist["A"], hist["Uo"],
        hist["spk_idx"], hist["spk_val"], hist["spk_ptr"], hist["g_step"], hist["adj_h"], hist["adj_o"],
        gw_in, gw_rec, gw_out,
    )
    return float(_network.ordered_sum(losses) / len(index)), _network.gradients(gw_in, gw_rec, gw_out, cfg)


def forward(params, inputs: SpikeEvents, cfg, index=None):
    """The network as e-prop's online pass runs it, for the samples ``index`` (default: all): a
    :class:`lif.Trace` for a LIFConfig, an :class:`alif.Trace` for an ALIFConfig (what ``lif.forward`` /
    ``alif.forward`` return)."""
    index, _, w_in, w_rec, w_out, _, consts = _setup(params, inputs, np.zeros(inputs.n_samples, np.int64), cfg,
                                                     index)
    adaptive = _network.is_adaptive(cfg)
    B, T, H, O = len(index), inputs.n_steps, cfg.n_hidden, cfg.n_outputs
    S, U, Uo = np.empty((B, T, H), w_in.dtype), np.empty((B, T, H), w_in.dtype), np.empty((B, T, O), w_in.dtype)
    A = np.empty((B, T, H) if adaptive else (1, 1, 1), w_in.dtype)
    ws = {k: v[0] for k, v in workspace(cfg, 1, with_grad=False).items()}
    for i, s in enumerate(index):
        _sample_online(
            w_in, w_rec, w_out, inputs.ptr, inputs.units, s, 0, consts, cfg.recurrent, adaptive, cfg.detach_reset,
            cfg.smooth, False, 1.0, ws["vh"], ws["vi"], ws["vo"], ws["s_row"], ws["flags"], ws["U"], ws["A"],
            ws["Uo"], ws["spk_idx"], ws["spk_val"], ws["spk_ptr"], ws["tin"], ws["trec"], ws["gw_in"],
            ws["gw_rec"], ws["gw_out"], True, U[i], A[i if adaptive else 0], S[i], Uo[i],
        )
    if adaptive:
        return alif.Trace(S, U, A, Uo)
    return lif.Trace(S, U, Uo)


def readout(params, inputs: SpikeEvents, cfg, index=None) -> np.ndarray:
    """Readout voltages Uo[n+1] (batch, T, O) as the e-prop forward pass computes them."""
    return forward(params, inputs, cfg, index).readout
