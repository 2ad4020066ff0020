"""The spiking network of lif.py, alif.py and eprop.py: one implementation, forward and backward.

The network is that of :mod:`snnbatch.kernels.alif`; without adaptation
(``adaptive=False``: no trace ``A``, the threshold is ϑ) it is the LIF network
of :mod:`snnbatch.kernels.lif`. :func:`_forward_py` runs it over a range of
time steps from a given state, keeping the history of those steps (all of
them for BPTT, a few at a time for e-prop's online pass, so every learning
rule trains the same network, bit for bit in either dtype);
:func:`_sample_backward_py` is BPTT over that history, given the loss's
gradient with respect to the readout at each step (lif.py, alif.py and
e-prop's BPTT reference). Also here: the constants,
the cutting of a batch into blocks and
the wrappers (:func:`run`, :func:`forward_arrays`) of lif.py and alif.py.

Precision: all state arithmetic is in the weights' dtype (α, β, ρ, ϑ, β_a,
the surrogate's scale and 1 are passed in that dtype, see :func:`constants`),
as in a float32 PyTorch model; float32 vectors are twice as wide as float64
ones. No fast-math: every operation is rounded as written (no fused
multiply-adds, no reassociation), so the bits do not depend on the CPU's
vector width and are the same on every node of a cluster. Every state
variable sees the operations of the model's equations written out loop by
loop, in that order, the dL/dS sums in the order (readouts, then presynaptic
k = 0 .. H-1, then the reset and the adaptation terms, then the activity
penalty's, when it is on: :func:`_activity_py`). What changes is only
how the work is laid out:

* few dense passes over the neurons per step, all vectorised: the forward
  pass fuses U[n+1] = βU[n] + I[n+1] − ϑS[n] (and A[n+1] = ρA[n] + S[n]) with
  the spikes of step n+1 and the decay of I; the backward pass makes two,
  plus one axpy per readout;
* hidden spikes are kept as index lists per step (values alongside, for
  ``smooth``), so readout, recurrent input and the w_out / w_rec gradients
  touch spiking neurons only;
* dL/dS = W_out·g_io + W_rec·g_i is computed as axpys over the postsynaptic
  axis with transposed weights: the sums of all neurons advance together
  (SIMD) while each still adds its terms in the original order;
* BPTT runs the backward passes of ``GROUP`` samples of a block together, step
  by step (:func:`_group_backward_py`): four samples share each load of a row
  of W_rec (matrix-matrix instead of matrix-vector work); each sample's
  dL/dS sums and weight-gradient additions keep the order of one sample's
  pass (:func:`_sample_backward_py`, e-prop's BPTT reference), so the bits are
  those of one sample at a time;
* opt-in sparse backward (``surrogate_cutoff`` > 0, not the exact gradient):
  surrogate derivatives below the cut-off count as zero and dL/dS is computed
  only for the neurons whose derivative is kept (:func:`_sparse_step_py`);
* with S = 0/1 (not ``smooth``) spikes are found eight neurons at a time
  from a byte mask and recurrent rows are added four at a time (I[k] is
  still summed in spike order; S·w = w exactly, so no product);
* ``error_model="numpy"``: no Python zero-division check, so the surrogate's
  division vectorises (its divisor is >= 1; nothing else changes);
* the backward pass runs only over steps [first input event or hidden
  spike, last step the loss sees] (for the max-over-time loss, the last
  readout maximum): after that every adjoint is exactly zero, before the
  first event or spike nothing is accumulated (exact for finite weights).

A batch is cut into a fixed number of blocks (``n_blocks``) that run in
parallel, block b taking samples b, b + n_blocks, ..., each summing its own
loss and gradient; the block sums are added in a fixed order, so results do
not depend on the number of threads.
"""
from __future__ import annotations

import numba
import numpy as np

from . import readout
from ._jit import njit
from .events import SpikeEvents

jit = njit(nogil=True, fastmath=False, error_model="numpy")
jit_parallel = njit(nogil=True, parallel=True, fastmath=False, error_model="numpy")


# --------------------------------------------------------------------------- the neuron


def _spike_fn(x, scale, one, smooth):
    if smooth:
        return x / (scale * abs(x) + one)
    return one if x > 0 else one - one


def _surrogate(x, scale, one):
    d = scale * abs(x) + one
    return one / (d * d)


def padded(n_hidden: int) -> int:
    """The length of the spike mask (and of the spike values it is read with): H rounded up to eight."""
    return 8 * ((n_hidden + 7) // 8)


# --------------------------------------------------------------------------- forward
#
# ``consts`` is the tuple (α, β, ρ, ϑ, β_a, scale, 1) of :func:`constants`, in the weights' dtype.
# ``s_row`` and ``flags`` have the padded length (zero past H): spikes are scanned eight at a time.


def _start_py(consts, adaptive, smooth, U, A, s_row, flags, i_syn, io, uo):
    """The state at n = 0: U[0] = I[0] = A[0] = 0 in row 0 of ``U`` (and ``A``), S[0], Io = Uo = 0."""
    alpha, beta, rho, theta, jump, scale, one = consts
    H = U.shape[1]
    for k in range(H):
        U[0, k] = 0.0
        i_syn[k] = 0.0
        if adaptive:
            A[0, k] = 0.0
            s_row[k] = _spike_fn(U[0, k] - theta - jump * A[0, k], scale, one, smooth)
        else:
            s_row[k] = _spike_fn(U[0, k] - theta, scale, one, smooth)
        flags[k] = s_row[k] != 0.0
    for o in range(io.shape[0]):
        io[o] = 0.0
        uo[o] = 0.0


def _forward_py(
    w_in, w_rec, w_out, ptr, units, s, consts, recurrent, adaptive, smooth, n0, n1,
    U, A, s_row, flags, i_syn, io, uo, spk_idx, spk_val, spk_ptr, Uo,
):
    """Steps n0 .. n1-1 of sample ``s``, from the state at step n0.

    On entry row 0 of ``U`` (and of ``A``, with adaptation) holds U[n0] (A[n0]),
    ``s_row``/``flags`` S[n0], ``i_syn`` αI[n0] and ``io``, ``uo`` Io[n0], Uo[n0]
    (:func:`_start_py` makes the state at n = 0). Writes U[n], A[n] to row n − n0
    (up to row n1 − n0 if n1 < T; ``A`` is a one-row placeholder without
    adaptation), S[n]'s non-zeros to ``spk_idx``/``spk_val`` from
    ``spk_ptr[n − n0]`` to ``spk_ptr[n − n0 + 1]`` (room for (n1 − n0 + 1)·H)
    and Uo[n+1] to row n − n0 of ``Uo``; leaves the state at step n1 as it found
    the state at n0. ``i_syn`` (H,), ``io``, ``uo`` (O,) dtype.
    """
    alpha, beta, rho, theta, jump, scale, one = consts
    T = ptr.shape[1] - 1
    H = U.shape[1]
    O = Uo.shape[1]
    words = flags.view(np.uint64)
    c = 0
    spk_ptr[0] = 0
    for n in range(n0, n1):
        r = n - n0
        ra = r if adaptive else 0
        ra_next = r + 1 if adaptive else 0
        # S[n] as a list, skipping eight silent neurons at a time
        for w in range(words.shape[0]):
            if words[w] != 0:
                for k in range(8 * w, 8 * w + 8):
                    spk_idx[c] = k
                    spk_val[c] = s_row[k]
                    c += flags[k]
        spk_ptr[r + 1] = c
        # I[n+1] = αI[n] + W_in·x[n] (+ W_rec·S[n]); I was decayed at the end of the previous step
        for e in range(ptr[s, n], ptr[s, n + 1]):
            row = w_in[units[e]]
            for k in range(H):
                i_syn[k] += row[k]
        if recurrent:
            q = spk_ptr[r]
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
        for q in range(spk_ptr[r], c):
            j = spk_idx[q]
            sj = spk_val[q]
            for o in range(O):
                io[o] += sj * w_out[j, o]
        for o in range(O):
            uo[o] = beta * uo[o] + io[o]
            Uo[r, o] = uo[o]
        if n + 1 < T:
            if adaptive:
                # one pass: U[n+1], A[n+1], the spikes of step n+1 at the threshold ϑ + β_a A[n+1], the decay of I
                for k in range(H):
                    U[r + 1, k] = beta * U[r, k] + i_syn[k] - theta * s_row[k]
                    A[ra_next, k] = rho * A[ra, k] + s_row[k]
                    s_row[k] = _spike_fn(U[r + 1, k] - theta - jump * A[ra_next, k], scale, one, smooth)
                    flags[k] = s_row[k] != 0.0
                    i_syn[k] *= alpha
            elif smooth:
                for k in range(H):
                    U[r + 1, k] = beta * U[r, k] + i_syn[k] - theta * s_row[k]
                    i_syn[k] *= alpha
                for k in range(H):
                    s_row[k] = _spike_fn(U[r + 1, k] - theta, scale, one, smooth)
                    flags[k] = s_row[k] != 0.0
            else:
                # one pass: U[n+1], the spikes of step n+1 and the decay of I for step n+1
                for k in range(H):
                    U[r + 1, k] = beta * U[r, k] + i_syn[k] - theta * s_row[k]
                    spike = U[r + 1, k] - theta > 0
                    s_row[k] = one if spike else one - one
                    flags[k] = spike
                    i_syn[k] *= alpha


# --------------------------------------------------------------------------- backward, one step


def _first_active_py(ptr, s, spk_ptr):
    """The first step with an input event or a hidden spike (T if none)."""
    T = spk_ptr.shape[0] - 1
    for n in range(T):
        if ptr[s, n + 1] > ptr[s, n] or spk_ptr[n + 1] > spk_ptr[n]:
            return n
    return T


def _sample_backward_py(
    w_recT, w_outT, ptr, units, s, consts, recurrent, adaptive, detach_reset,
    U, A, spk_idx, spk_val, spk_ptr, g_step, last, gw_in, gw_rec, gw_out,
    g_u, g_a, g_i, g_s, acc, g_uo, g_io,
):
    """Accumulate this sample's weight gradients given ``g_step[n]`` = the loss's own dL/dUo[n+1], n <= ``last``
    (zero after ``last``).

    ``U``, ``A`` and the spike lists are those of :func:`_forward_py` from n0 = 0; ``w_recT[k, j] = w_rec[j, k]``,
    ``w_outT[o, j] = w_out[j, o]``; ``g_u, g_a, g_i, g_s, acc`` (H,) and ``g_uo, g_io`` (O,) dtype are scratch.
    """
    alpha, beta, rho, theta, jump, scale, one = consts
    H = g_u.shape[0]
    O = g_uo.shape[0]
    first = _first_active(ptr, s, spk_ptr)
    for k in range(H):
        g_u[k] = 0.0  # dL/dU[n+1]
        g_a[k] = 0.0  # dL/dA[n+1]
        g_i[k] = 0.0  # dL/dI[n+2], then dL/dI[n+1]
    for o in range(O):
        g_uo[o] = 0.0
        g_io[o] = 0.0
    for n in range(last, first - 1, -1):
        ra = n if adaptive else 0
        for o in range(O):
            g_uo[o] = g_step[n, o] + beta * g_uo[o]
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
        if adaptive:
            # then the reset and the adaptation trace; the threshold ϑ + β_a A[n] passes gradient back to A
            for k in range(H):
                a = acc[k]
                if not detach_reset:
                    a -= theta * g_u[k]
                g_s[k] = a + g_a[k]
                g_z = g_s[k] * _surrogate(U[n, k] - theta - jump * A[ra, k], scale, one)
                g_u[k] = beta * g_u[k] + g_z
                g_a[k] = rho * g_a[k] - jump * g_z
        elif detach_reset:
            for k in range(H):
                g_s[k] = acc[k]
                g_u[k] = beta * g_u[k] + g_s[k] * _surrogate(U[n, k] - theta, scale, one)
        else:
            for k in range(H):
                g_s[k] = acc[k] - theta * g_u[k]
                g_u[k] = beta * g_u[k] + g_s[k] * _surrogate(U[n, k] - theta, scale, one)


# --------------------------------------------------------------------------- backward, a group of samples at once
#
# The adjoints of the samples of a group are independent; what they share is the dense
# dL/dS = W_out·g_io + W_rec·g_i, a matrix-vector product per sample and step. Done for the
# group at once, each row of W_rec, once loaded, serves four samples (matrix-matrix work instead
# of four matrix-vector products streaming W_rec from the cache). Each sample's sums still add
# their terms in the order of _sample_backward_py (readouts, then presynaptic k = 0 .. H-1), and
# each sample's weight gradients are still added step by step, sample after sample, in the order
# of _sample_backward_py: the same bits.

GROUP = 8  # samples of a block whose backward passes run together


def _group_arrays_py(G, T, H, O, dtype, adaptive=False):
    """What a block allocates for a group of ``G`` samples: forward history, spike lists, loss gradients, adjoints.

    (U, A, Uo, spk_idx, spk_val, spk_ptr, g_step, g_io_hist, g_u, g_a, g_i, acc, g_uo, g_io), ``A`` of
    ``T + 1`` rows with adaptation (else one) (benchmarks/bench_scaling.py counts them). After the backward sweep ``U[s, n]`` holds
    dL/dI[n+1] of sample s (its U[n] is not needed again) and ``g_io_hist[s, n]`` dL/dIo[n+1].
    """
    U = np.empty((G, T + 1, H), dtype)
    A = np.empty((G, T + 1 if adaptive else 1, H), dtype)
    Uo = np.empty((G, T, O), dtype)
    spk_idx = np.empty((G, T * H + H), np.int32)
    spk_val = np.empty((G, T * H + H), dtype)
    spk_ptr = np.empty((G, T + 1), np.int64)
    g_step = np.zeros((G, T, O), dtype)
    g_io_hist = np.empty((G, T, O), dtype)
    g_u = np.empty((G, H), dtype)
    g_a = np.empty((G, H), dtype)
    g_i = np.empty((G, H), dtype)
    acc = np.empty((G, H), dtype)
    g_uo = np.empty((G, O), dtype)
    g_io = np.empty((G, O), dtype)
    return U, A, Uo, spk_idx, spk_val, spk_ptr, g_step, g_io_hist, g_u, g_a, g_i, acc, g_uo, g_io


def _group_dlds_py(w_recT, w_outT, recurrent, act, m, g_i, g_io, acc):
    """``acc[s] = W_out·g_io[s] (+ W_rec·g_i[s])`` for the samples ``act[:m]``, each in the order of one sample's."""
    H = acc.shape[1]
    O = w_outT.shape[0]
    for q in range(m):
        a = acc[act[q]]
        go = g_io[act[q]]
        for j in range(H):
            a[j] = 0.0
        for o in range(O):
            col = w_outT[o]
            x = go[o]
            for j in range(H):
                a[j] += col[j] * x
    if not recurrent:
        return
    q = 0
    # four samples per pass over W_rec, four presynaptic rows at a time
    while q + 4 <= m:
        a0 = acc[act[q]]
        a1 = acc[act[q + 1]]
        a2 = acc[act[q + 2]]
        a3 = acc[act[q + 3]]
        x0 = g_i[act[q]]
        x1 = g_i[act[q + 1]]
        x2 = g_i[act[q + 2]]
        x3 = g_i[act[q + 3]]
        k = 0
        while k + 4 <= H:
            c0 = w_recT[k]
            c1 = w_recT[k + 1]
            c2 = w_recT[k + 2]
            c3 = w_recT[k + 3]
            p0, p1, p2, p3 = x0[k], x0[k + 1], x0[k + 2], x0[k + 3]
            r0, r1, r2, r3 = x1[k], x1[k + 1], x1[k + 2], x1[k + 3]
            t0, t1, t2, t3 = x2[k], x2[k + 1], x2[k + 2], x2[k + 3]
            z0, z1, z2, z3 = x3[k], x3[k + 1], x3[k + 2], x3[k + 3]
            for j in range(H):
                e0 = c0[j]
                e1 = c1[j]
                e2 = c2[j]
                e3 = c3[j]
                a0[j] = a0[j] + e0 * p0 + e1 * p1 + e2 * p2 + e3 * p3
                a1[j] = a1[j] + e0 * r0 + e1 * r1 + e2 * r2 + e3 * r3
                a2[j] = a2[j] + e0 * t0 + e1 * t1 + e2 * t2 + e3 * t3
                a3[j] = a3[j] + e0 * z0 + e1 * z1 + e2 * z2 + e3 * z3
            k += 4
        while k < H:
            c0 = w_recT[k]
            p0, p1, p2, p3 = x0[k], x1[k], x2[k], x3[k]
            for j in range(H):
                u = c0[j]
                a0[j] += u * p0
                a1[j] += u * p1
                a2[j] += u * p2
                a3[j] += u * p3
            k += 1
        q += 4
    while q < m:
        a = acc[act[q]]
        x = g_i[act[q]]
        k = 0
        while k + 4 <= H:
            c0 = w_recT[k]
            c1 = w_recT[k + 1]
            c2 = w_recT[k + 2]
            c3 = w_recT[k + 3]
            g0, g1, g2, g3 = x[k], x[k + 1], x[k + 2], x[k + 3]
            for j in range(H):
                v = a[j]
                v += c0[j] * g0
                v += c1[j] * g1
                v += c2[j] * g2
                v += c3[j] * g3
                a[j] = v
            k += 4
        while k < H:
            col = w_recT[k]
            gk = x[k]
            for j in range(H):
                a[j] += col[j] * gk
            k += 1
        q += 1


def _dot_py(row, x):
    """``row · x`` in eight interleaved partial sums (vectorised, in an order fixed by this code)."""
    H = x.shape[0]
    p0 = p1 = p2 = p3 = p4 = p5 = p6 = p7 = row[0] - row[0]
    k = 0
    while k + 8 <= H:
        p0 += row[k] * x[k]
        p1 += row[k + 1] * x[k + 1]
        p2 += row[k + 2] * x[k + 2]
        p3 += row[k + 3] * x[k + 3]
        p4 += row[k + 4] * x[k + 4]
        p5 += row[k + 5] * x[k + 5]
        p6 += row[k + 6] * x[k + 6]
        p7 += row[k + 7] * x[k + 7]
        k += 8
    t = ((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7))
    while k < H:
        t += row[k] * x[k]
        k += 1
    return t


def _sparse_step_py(w_rec, w_out, consts, recurrent, adaptive, detach_reset, cutoff, u, a_n, gu, ga, gi, gio, sur,
                    regularise, gr):
    """One sample's step of the backward pass with the surrogate cut-off: σ' < ``cutoff`` counts as zero.

    dL/dS[n]_j is only needed where σ'_j ≠ 0, so it is computed only for those neurons (the ones near
    threshold), as dot products with row j of W_out and W_rec; the others' dL/dU only decays. ``u`` is
    U[n] (then dL/dI[n+1], as in the exact path), ``a_n`` A[n] (with adaptation), ``sur`` (H,) scratch;
    with ``regularise``, ``gr`` (H,) is the activity penalty's dL/dS (the same at every step), added last.
    """
    alpha, beta, rho, theta, jump, scale, one = consts
    H = gu.shape[0]
    O = gio.shape[0]
    for k in range(H):
        if adaptive:
            x = _surrogate(u[k] - theta - jump * a_n[k], scale, one)
        else:
            x = _surrogate(u[k] - theta, scale, one)
        sur[k] = x if x >= cutoff else x - x
    for j in range(H):
        if sur[j] != 0.0:
            v = gio[0] - gio[0]
            for o in range(O):
                v += w_out[j, o] * gio[o]
            if recurrent:
                v += _dot(w_rec[j], gi)
            if not detach_reset:
                v -= theta * gu[j]
            if adaptive:
                v = v + ga[j]
            if regularise:
                v = v + gr[j]
            g_z = v * sur[j]
        else:
            g_z = sur[j]
        gu[j] = beta * gu[j] + g_z
        if adaptive:
            ga[j] = rho * ga[j] - jump * g_z
        u[j] = gi[j]


def _group_backward_py(
    w_rec, w_out, w_recT, w_outT, ptr, units, samples, G, consts, recurrent, adaptive, detach_reset, cutoff,
    U, A, spk_idx, spk_val, spk_ptr, g_step, g_io_hist, last, first, act, gw_in, gw_rec, gw_out,
    g_u, g_a, g_i, acc, g_uo, g_io, regularise, g_reg,
):
    """:func:`_sample_backward_py` for the ``G`` samples ``samples[:G]`` of a group at once, the same bits.

    Row s of ``U, A``, the spike lists, ``g_step`` and ``last`` are sample s's (as for one sample);
    ``first`` (G,) int64 and ``act`` (G,) int64 are scratch. The adjoint sweep runs over all samples
    step by step; then each sample's weight gradients are added, sample after sample, in the order of
    :func:`_sample_backward_py`. ``cutoff`` > 0: surrogate derivatives below it count as zero
    (:func:`_sparse_step_py`; not the exact gradient; 0: exact). With ``regularise``, ``g_reg[s]`` (H,) is
    the activity penalty's dL/dS of sample s at every step (:func:`_activity_py`), added to dL/dS after the
    readout, presynaptic, reset and adaptation terms (and ``last`` must then be T − 1).
    """
    alpha, beta, rho, theta, jump, scale, one = consts
    H = g_u.shape[1]
    O = g_uo.shape[1]
    n_hi = -1
    n_lo = ptr.shape[1]
    for s in range(G):
        first[s] = _first_active(ptr, samples[s], spk_ptr[s])
        n_hi = max(n_hi, last[s])
        n_lo = min(n_lo, first[s])
        for k in range(H):
            g_u[s, k] = 0.0
            g_a[s, k] = 0.0
            g_i[s, k] = 0.0
        for o in range(O):
            g_uo[s, o] = 0.0
            g_io[s, o] = 0.0
    for n in range(n_hi, n_lo - 1, -1):
        m = 0
        for s in range(G):
            if first[s] <= n <= last[s]:
                act[m] = s
                m += 1
        for q in range(m):
            s = act[q]
            for o in range(O):
                g_uo[s, o] = g_step[s, n, o] + beta * g_uo[s, o]
                g_io[s, o] = g_uo[s, o] + alpha * g_io[s, o]
                g_io_hist[s, n, o] = g_io[s, o]
            for k in range(H):
                g_i[s, k] = g_u[s, k] + alpha * g_i[s, k]
        if cutoff > 0:
            for q in range(m):
                s = act[q]
                Ag = A[s, n] if adaptive else A[s, 0]
                _sparse_step(w_rec, w_out, consts, recurrent, adaptive, detach_reset, cutoff, U[s, n], Ag,
                             g_u[s], g_a[s], g_i[s], g_io[s], acc[s], regularise, g_reg[s if regularise else 0])
            continue
        _group_dlds(w_recT, w_outT, recurrent, act, m, g_i, g_io, acc)
        for q in range(m):
            s = act[q]
            u = U[s, n]
            a = acc[s]
            gu = g_u[s]
            gi = g_i[s]
            if regularise:
                # the activity penalty's dL/dS, the same at every step, after the other terms
                gr = g_reg[s]
                ga = g_a[s]
                an = A[s, n] if adaptive else A[s, 0]
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
                    u[k] = gi[k]
            elif adaptive:
                ga = g_a[s]
                an = A[s, n]
                for k in range(H):
                    v = a[k]
                    if not detach_reset:
                        v -= theta * gu[k]
                    g_z = (v + ga[k]) * _surrogate(u[k] - theta - jump * an[k], scale, one)
                    gu[k] = beta * gu[k] + g_z
                    ga[k] = rho * ga[k] - jump * g_z
                    u[k] = gi[k]
            else:
                for k in range(H):
                    v = a[k]
                    if not detach_reset:
                        v -= theta * gu[k]
                    gu[k] = beta * gu[k] + v * _surrogate(u[k] - theta, scale, one)
                    u[k] = gi[k]
    # the weight gradients: sample after sample, step by step as one sample's backward pass adds them
    for s in range(G):
        smp = samples[s]
        for n in range(last[s], first[s] - 1, -1):
            gi = U[s, n]
            gio = g_io_hist[s, n]
            for e in range(ptr[smp, n], ptr[smp, n + 1]):
                row = gw_in[units[e]]
                for k in range(H):
                    row[k] += gi[k]
            for q in range(spk_ptr[s, n], spk_ptr[s, n + 1]):
                j = spk_idx[s, q]
                sj = spk_val[s, q]
                for o in range(O):
                    gw_out[j, o] += sj * gio[o]
                if recurrent:
                    row = gw_rec[j]
                    for k in range(H):
                        row[k] += sj * gi[k]


# --------------------------------------------------------------------------- the activity penalty


def _activity_py(spk_idx, spk_val, spk_ptr, reg, B, count, g_reg):
    """One sample's activity penalty ``Σ_i λ_u relu(c_i − θ_u)² + λ_l relu(θ_l − c_i)²`` (float64); writes
    its gradient with respect to every S_i[n], ``dP/dc_i / B``, to ``g_reg`` (H,).

    ``c_i = Σ_n S_i[n]`` is neuron i's spike count in the sample (summed in time order from the spike
    lists of :func:`_forward_py`; with ``smooth``, the sum of its smooth spike values); ``reg`` is
    (θ_u, λ_u, θ_l, λ_l) in the weights' dtype, a bound with λ = 0 is off. ``count`` (H,) is scratch.
    """
    upper, lam_u, lower, lam_l = reg
    H = g_reg.shape[0]
    T = spk_ptr.shape[0] - 1
    for k in range(H):
        count[k] = 0.0
    for q in range(spk_ptr[0], spk_ptr[T]):
        count[spk_idx[q]] += spk_val[q]
    penalty = 0.0
    for k in range(H):
        c = count[k]
        g = c - c
        if lam_u > 0 and c > upper:
            d = c - upper
            penalty += float(lam_u) * float(d) * float(d)
            g += (lam_u + lam_u) * d
        if lam_l > 0 and c < lower:
            d = lower - c
            penalty += float(lam_l) * float(d) * float(d)
            g -= (lam_l + lam_l) * d
        g_reg[k] = g / B
    return penalty


# --------------------------------------------------------------------------- batches (the readout loss: readout.py)


def _batch_py(
    w_in, w_rec, w_out, w_recT, w_outT, ptr, units, index, labels, T, consts, recurrent, adaptive,
    detach_reset, smooth, n_blocks, gw_in, gw_rec, gw_out, with_grad, losses, correct, readout_kind, cutoff,
    targets, regularise, reg,
):
    """Per-block losses and correct counts and (optionally) per-block gradient sums for a batch.

    ``gw_*`` have a leading block axis; block b handles samples b, b+n_blocks, ..., in groups of
    ``GROUP`` (forward passes one by one, then the group's backward passes together).
    ``readout_kind``: the readout and its loss (a number of :mod:`readout`); ``cutoff``: see
    :func:`_group_backward_py` (0: the exact gradient); ``targets``: the batch's target trajectories
    (B, T, O) of a regression readout, else a (1, 1, 1) placeholder. ``regularise`` (with ``with_grad``
    only): each sample's loss adds the activity penalty of ``reg`` (:func:`_activity_py`) and its
    gradient enters the backward pass at every step.
    """
    B = index.shape[0]
    H = w_in.shape[1]
    O = w_out.shape[1]
    dtype = w_in.dtype
    for b in numba.prange(n_blocks):
        n_mine = (B - b + n_blocks - 1) // n_blocks
        G = min(GROUP, n_mine)
        U, A, Uo, spk_idx, spk_val, spk_ptr, g_step, g_io_hist, g_u, g_a, g_i, acc, g_uo, g_io = _group_arrays(
            G, T, H, O, dtype, adaptive)
        s_row = np.zeros(_padded(H), dtype)
        flags = np.zeros(_padded(H), np.uint8)
        i_syn = np.empty(H, dtype)
        io = np.empty(O, dtype)
        uo = np.empty(O, dtype)
        m = np.empty(O, dtype)
        g_max = np.empty(O, dtype)
        t_max = np.empty((G, O), np.int64)
        samples = np.empty(G, np.int64)
        last = np.empty(G, np.int64)
        first = np.empty(G, np.int64)
        act = np.empty(G, np.int64)
        g_reg = np.empty((G if regularise else 1, H), dtype)
        count = np.empty(H if regularise else 1, dtype)
        loss_b = 0.0
        correct_b = 0
        for i0 in range(b, B, n_blocks * G):
            g = 0
            for i in range(i0, min(B, i0 + n_blocks * G), n_blocks):
                s = index[i]
                samples[g] = s
                Ag = A[g] if adaptive else A[0]
                _start(consts, adaptive, smooth, U[g], Ag, s_row, flags, i_syn, io, uo)
                _forward(w_in, w_rec, w_out, ptr, units, s, consts, recurrent, adaptive, smooth, np.int64(0), T,
                         U[g], Ag, s_row, flags, i_syn, io, uo, spk_idx[g], spk_val[g], spk_ptr[g], Uo[g])
                loss, ok, lst = _sample_loss(readout_kind, Uo[g], labels[i], targets[min(i, targets.shape[0] - 1)],
                                             consts[0], consts[1], B, with_grad, m, g_max, t_max[g], g_step[g])
                last[g] = lst
                loss_b += loss
                if regularise:
                    loss_b += _activity(spk_idx[g], spk_val[g], spk_ptr[g], reg, B, count, g_reg[g])
                    last[g] = T - 1  # the penalty's gradient enters at every step
                correct_b += ok
                g += 1
            if with_grad:
                _group_backward(
                    w_rec, w_out, w_recT, w_outT, ptr, units, samples, g, consts, recurrent, adaptive, detach_reset,
                    cutoff,
                    U, A, spk_idx, spk_val, spk_ptr, g_step, g_io_hist, last, first, act, gw_in[b], gw_rec[b],
                    gw_out[b], g_u, g_a, g_i, acc, g_uo, g_io, regularise, g_reg,
                )
                for q in range(g):
                    _clear_readout(readout_kind, t_max[q], g_step[q])
        losses[b] = loss_b
        correct[b] = correct_b


def _trace_py(w_in, w_rec, w_out, ptr, units, index, T, consts, recurrent, adaptive, smooth, S, U, A, Uo):
    """S[n], U[n] (and A[n] with adaptation) (B, T, H) and Uo[n+1] (B, T, O) of the samples ``index``."""
    H = w_in.shape[1]
    dtype = w_in.dtype
    O = w_out.shape[1]
    for i in numba.prange(index.shape[0]):
        Ui = np.empty((T + 1, H), dtype)
        Ai = np.empty((T + 1 if adaptive else 1, H), dtype)
        s_row = np.zeros(_padded(H), dtype)
        flags = np.zeros(_padded(H), np.uint8)
        i_syn = np.empty(H, dtype)
        io = np.empty(O, dtype)
        uo = np.empty(O, dtype)
        spk_idx = np.empty(T * H + H, np.int32)
        spk_val = np.empty(T * H + H, dtype)
        spk_ptr = np.empty(T + 1, np.int64)
        _start(consts, adaptive, smooth, Ui, Ai, s_row, flags, i_syn, io, uo)
        _forward(w_in, w_rec, w_out, ptr, units, index[i], consts, recurrent, adaptive, smooth, np.int64(0), T,
                 Ui, Ai, s_row, flags, i_syn, io, uo, spk_idx, spk_val, spk_ptr, Uo[i])
        for n in range(T):
            for k in range(H):
                U[i, n, k] = Ui[n, k]
                S[i, n, k] = 0.0
                if adaptive:
                    A[i, n, k] = Ai[n, k]
            for q in range(spk_ptr[n], spk_ptr[n + 1]):
                S[i, n, spk_idx[q]] = spk_val[q]


_padded = jit(padded)
_spike_fn = jit(_spike_fn)
_surrogate = jit(_surrogate)
_start = jit(_start_py)
_forward = jit(_forward_py)
_first_active = jit(_first_active_py)
_sample_backward = jit(_sample_backward_py)
_group_arrays = jit(_group_arrays_py)
_group_dlds = jit(_group_dlds_py)
_dot = jit(_dot_py)
_sparse_step = jit(_sparse_step_py)
_group_backward = jit(_group_backward_py)
_activity = jit(_activity_py)
_sample_loss = readout.sample_loss
_clear_readout = readout.clear
_batch = jit_parallel(_batch_py)
_trace = jit_parallel(_trace_py)


# --------------------------------------------------------------------------- Python side


def is_adaptive(cfg) -> bool:
    """Whether ``cfg`` describes an ALIF network (an ALIFConfig, with its adaptation trace)."""
    return hasattr(cfg, "adapt_jump")


def constants(cfg, dtype) -> tuple:
    """(α, β, ρ, ϑ, β_a, the surrogate's scale, 1) in ``dtype``: all state arithmetic is in that dtype.

    ρ = β_a = 0 for a network without adaptation.
    """
    t = np.dtype(dtype).type
    rho, jump = (cfg.rho, cfg.adapt_jump) if is_adaptive(cfg) else (0.0, 0.0)
    return tuple(t(v) for v in (cfg.alpha, cfg.beta, rho, cfg.threshold, jump, cfg.surrogate_scale, 1.0))


def cutoff(cfg, dtype):
    """``cfg.surrogate_cutoff`` in ``dtype`` (0: the exact gradient; configs without the field: 0)."""
    return np.dtype(dtype).type(getattr(cfg, "surrogate_cutoff", 0.0))


def activity(cfg, dtype):
    """(regularise, (θ_u, λ_u, θ_l, λ_l) in ``dtype``): the activity penalty of ``cfg``'s ``activity_*`` fields;
    ``regularise`` is False when both strengths are 0 (and for configs without the fields)."""
    t = np.dtype(dtype).type
    values = tuple(float(getattr(cfg, k, 0.0)) for k in
                   ("activity_upper", "activity_upper_strength", "activity_lower", "activity_lower_strength"))
    return values[1] > 0 or values[3] > 0, tuple(t(v) for v in values)


def weights(params, cfg):
    """(w_in, w_rec, w_out); w_rec a 1×1 zero placeholder for a feed-forward network."""
    w_in = params["w_in"]
    w_rec = params["w_rec"] if cfg.recurrent else np.zeros((1, 1), w_in.dtype)
    return w_in, w_rec, params["w_out"]


def select(inputs: SpikeEvents, labels, index):
    """``index`` (default: all samples) as int64 and the labels of those samples (given for all or for them)."""
    index = np.arange(inputs.n_samples) if index is None else np.asarray(index, np.int64)
    labels = np.asarray(labels, np.int64)
    if labels.shape[0] != index.shape[0]:
        labels = labels[index]
    return index, labels


def n_blocks(cfg, batch: int) -> int:
    """The number of blocks a batch is cut into: ``cfg.n_blocks``, at most one per sample."""
    return max(1, min(cfg.n_blocks, batch))


def ordered_sum(blocks: np.ndarray) -> np.ndarray:
    """``blocks[0] + blocks[1] + ...`` in that order (not a pairwise sum): the same bits for any thread count."""
    out = blocks[0].copy()
    for b in range(1, blocks.shape[0]):
        out += blocks[b]
    return out


def gradients(gw_in, gw_rec, gw_out, cfg) -> dict[str, np.ndarray]:
    """The per-block gradient sums added in block order, keyed like the params."""
    grads = {"w_in": ordered_sum(gw_in), "w_out": ordered_sum(gw_out)}
    if cfg.recurrent:
        grads["w_rec"] = ordered_sum(gw_rec)
    return grads


def forward_arrays(params, inputs: SpikeEvents, cfg, index=None):
    """(S, U, A, Uo) of the samples ``index`` (default: all); A is None without adaptation."""
    index = np.arange(inputs.n_samples) if index is None else np.asarray(index, np.int64)
    adaptive = is_adaptive(cfg)
    w_in, w_rec, w_out = weights(params, cfg)
    B, T, H, O = len(index), inputs.n_steps, cfg.n_hidden, cfg.n_outputs
    S = np.empty((B, T, H), w_in.dtype)
    U = np.empty((B, T, H), w_in.dtype)
    A = np.empty((B, T, H) if adaptive else (1, 1, 1), w_in.dtype)
    Uo = np.empty((B, T, O), w_in.dtype)
    _trace(w_in, w_rec, w_out, inputs.ptr, inputs.units, index, T, constants(cfg, w_in.dtype), cfg.recurrent,
           adaptive, cfg.smooth, S, U, A, Uo)
    return S, U, A if adaptive else None, Uo


def run(params, inputs: SpikeEvents, labels, cfg, index, with_grad: bool):
    """(loss, accuracy, grads or None) of the readout loss (``cfg.readout``, readout.py), by BPTT (lif.py, alif.py).

    With ``with_grad`` and an activity penalty (``cfg.activity_*_strength`` > 0, :func:`_activity_py`), the
    loss and its gradient are those of the readout loss plus the penalty's mean over the samples; without
    gradients (evaluation) the loss is the readout's alone.
    """
    index = np.arange(inputs.n_samples) if index is None else np.asarray(index, np.int64)
    w_in, w_rec, w_out = weights(params, cfg)
    labels, targets = readout.labels_and_targets(labels, index, cfg, w_in.dtype, inputs.n_steps)
    nb = n_blocks(cfg, len(index))
    shape = (nb,) if with_grad else (1,)
    gw_in = np.zeros(shape + w_in.shape, w_in.dtype)
    gw_rec = np.zeros(shape + w_rec.shape, w_in.dtype)
    gw_out = np.zeros(shape + w_out.shape, w_in.dtype)
    losses = np.zeros(nb)
    correct = np.zeros(nb, np.int64)
    regularise, reg = activity(cfg, w_in.dtype)
    # blocks handed out one at a time (dynamic scheduling): their costs differ, and a thread that
    # shares its core with another process does not hold up the others; the sums stay per block
    with numba.parallel_chunksize(1):
        _batch(
            w_in, w_rec, w_out, np.ascontiguousarray(w_rec.T), np.ascontiguousarray(w_out.T), inputs.ptr,
            inputs.units, index, labels, inputs.n_steps, constants(cfg, w_in.dtype), cfg.recurrent,
            is_adaptive(cfg), cfg.detach_reset, cfg.smooth, nb, gw_in, gw_rec, gw_out, with_grad, losses, correct,
            readout.code(cfg), cutoff(cfg, w_in.dtype), targets, with_grad and regularise, reg,
        )
    # block sums added in a fixed order: the same bits for any thread count
    loss = 0.0
    for b in range(nb):
        loss += float(losses[b])
    grads = gradients(gw_in, gw_rec, gw_out, cfg) if with_grad else None
    return loss / len(index), int(correct.sum()) / len(index), grads
