"""FORCE / recursive-least-squares training of a recurrent LIF network (seed 002).

The model is that of TrainSpikingNet.jl (Kim & Chow 2018, 2021; Arthur et al.,
JuliaCon 2022): N leaky integrate-and-fire neurons with current-based
synapses. Each neuron ``i`` receives

* ``n_static`` (K) static inputs: K/2 excitatory and K/2 inhibitory
  presynaptic partners drawn at random, with weights ``~ τ_mem / sqrt(K/2)``
  and a drive ``~ sqrt(K/2)`` (a balanced network; with the defaults the
  mean input stays below threshold and the neurons fire irregularly, driven
  by fluctuations), filtered with ``tau_syn``;
* ``n_plastic`` (L) plastic inputs from L presynaptic partners drawn at
  random (any neuron but itself), filtered with ``tau_plastic``;
* a constant external drive ``mu[i]``.

Time is in ms, one step is ``dt``. With α = exp(−dt/τ) and spikes ``s[n]`` of
step n (0/1)::

    r[n]      = α_p r[n−1]   + s[n−1] / τ_p                  filtered spike trains (length N)
    Is_i[n]   = α_s Is_i[n−1] + Σ_k ws_ik s_pre(i,k)[n−1] / τ_s     static current
    Ip_i[n]   = α_p Ip_i[n−1] + Σ_l wp_il s_pre(i,l)[n−1] / τ_p     plastic current
    I_i[n]    = Is_i[n] + Ip_i[n]                             synaptic current (what is trained)
    v_i[n]    = β v_i[n−1] + (1 − β)(mu_i + I_i[n]);  spike if v_i[n] > threshold, then v_i ← reset

A spike therefore contributes a current whose integral is its weight. With
constant weights ``Ip_i[n] = wp_i · r_i[n]`` exactly, where
``r_i = r[pre_plastic[i]]`` (length L): each neuron's plastic current is a
linear read-out of its presynaptic filtered spike trains.

RLS. Every ``learn_every`` steps of the target interval (steps n with
``(n + 1) % learn_every == 0``), each neuron independently updates its own
plastic weights and its own inverse covariance ``P_i`` (L×L, ``P_i = I/lam``
at initialisation)::

    k = P_i r_i;   c = 1 / (1 + r_iᵀ k)
    e = wp_i · r_i + Is_i[n] − target_i[n]      a-priori error of the predicted synaptic current
    wp_i ← wp_i − c e k
    P_i  ← P_i − c k kᵀ

Since ``c k`` is the new ``P_i r_i``, after updates with trace vectors
``r_1 .. r_T`` and residual targets ``y_t = target_t − Is_t`` this is
exactly (up to round-off) the regularised least-squares solution::

    P_i  = (lam I + Σ_t r_t r_tᵀ)⁻¹
    wp_i = P_i (lam wp_i⁰ + Σ_t r_t y_t)

i.e. ``wp_i`` minimises ``Σ_t (wp·r_t − y_t)² + lam ‖wp − wp_i⁰‖²`` over all
learning steps so far (of every iteration: ``P`` carries over). After a
weight change the plastic current is moved by ``Δwp_i · r_i`` (cheap: it is
``−c e rᵀk``), so ``Ip_i = wp_i · r_i`` holds during learning too and the
synaptic current is exactly the trained read-out.

Storage. ``packed=True`` keeps each ``P_i`` as the upper triangle packed by
columns (BLAS ``'U'`` / SymmetricFormats.jl ``SymmetricPacked``), L(L+1)/2
numbers: element (a, b), a ≤ b, is at ``b(b+1)/2 + a``; the products are the
packed kernels ``_spmv`` and ``_spr`` below (``_spmv``'s column dot products
are compiled with reassociation allowed, so that they vectorise).
``packed=False`` keeps the full L×L matrix. The rank-one update is written
as ``P −= u uᵀ`` with ``u = sqrt(c) k``, so the full matrix stays exactly
symmetric. ``dtype`` (float32 or float64) is the precision of every state
array; scalar reductions accumulate in float64.

Parallelism and determinism. The RLS updates run in parallel over fixed
blocks of ``_BLOCK`` neurons (``prange``), and so does each step's neuron
update when there are at least ``_PARALLEL_MIN_NEURONS`` neurons (below that
a parallel region per time step costs more than it saves). Each neuron
touches only its own state, P_i and weights, so there are no cross-thread
reductions; spikes are propagated serially, in neuron order. The results are
the same bits for any number of threads.

Runs. Every call of :func:`run` (hence every training iteration and every
evaluation) starts from the same reset state: membrane potentials
``state["v0"]``, all currents and traces zero. A ``warmup`` (ms) follows in
which each membrane is driven by ``mu_i + target_i[0]`` instead of its
synaptic current (the currents and traces evolve, nothing is learned or
scored): a teacher-forced start that puts every run at the same point of the
target trajectory, as the stimulus before training does in TrainSpikingNet.
Then the target interval of ``duration`` ms (``n_steps`` steps). Nothing
carries over between runs but the trained arrays, so the dict returned by
:func:`init_state` is all a checkpoint needs.

Targets (:func:`make_targets`): the benchmark of seed 002, sinusoids with one
frequency and random phases, ``offset_i + target_amp · sin(2π f t + φ_i)``.
Use the neurons' mean currents in the untrained network as offsets
(:func:`innate_current`, as TrainSpikingNet does); a common offset forces
excitatory and inhibitory neurons to the same mean current and trains less
well. The quality figure ``correlation`` is the mean over neurons of the
Pearson correlation between target and synaptic current over the target
interval, both low-pass filtered with ``corr_tau`` (the unfiltered current
carries the fast fluctuations of the static synapses; TrainSpikingNet
smooths over 50 ms); ``correlation_raw`` is the unfiltered figure.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from ._jit import njit


class ForceConfig(NamedTuple):
    n_neurons: int = 200
    exc_fraction: float = 0.5  # neurons [0, n_exc) are excitatory, the rest inhibitory
    n_static: int = 80  # K: static presynaptic partners per neuron, K//2 excitatory, the rest inhibitory
    n_plastic: int = 40  # L: plastic presynaptic partners per neuron, any neuron but itself
    dt: float = 0.1  # ms
    duration: float = 1000.0  # ms: the target interval
    warmup: float = 100.0  # ms: teacher-forced start, see the module docstring
    tau_mem: float = 10.0  # ms
    tau_syn: float = 3.0  # ms: static synapses
    tau_plastic: float = 150.0  # ms: plastic synapses and the RLS traces r
    threshold: float = 1.0
    reset: float = 0.0
    # static weights in units of tau_mem / sqrt(K//2): TrainSpikingNet's 0.15 je, je, -0.75 ji, -ji
    # with je = ji = 2 g tau_mem / sqrt(K) at g = 0.5
    j_ee: float = 0.15
    j_ie: float = 1.0
    j_ei: float = -0.75
    j_ii: float = -1.0
    # external drive in units of sqrt(K//2): mean input below threshold, spikes from fluctuations
    mu_exc: float = 0.2
    mu_inh: float = 0.15
    w_plastic_init: float = 0.0  # initial plastic weights ~ N(0, (w_plastic_init tau_mem / sqrt(L))^2)
    lam: float = 0.1  # RLS regularisation: P_i = I / lam at initialisation
    learn_every: int = 100  # time steps between RLS updates (10 ms at dt = 0.1 ms, as TrainSpikingNet)
    packed: bool = True  # P_i packed symmetric (L(L+1)/2) instead of full (L, L)
    dtype: str = "float32"  # of every state array: float32 or float64
    target_freq: float = 1.0  # Hz
    target_amp: float = 0.5
    target_offset: float = -0.4  # default offset of make_targets: about the mean current of the default network
    corr_tau: float = 20.0  # ms: low-pass filter of current and target before "correlation" (0: none)

    @property
    def n_steps(self) -> int:
        return int(round(self.duration / self.dt))

    @property
    def n_warmup(self) -> int:
        return int(round(self.warmup / self.dt))

    @property
    def n_exc(self) -> int:
        return int(round(self.exc_fraction * self.n_neurons))


class Traces(NamedTuple):
    currents: np.ndarray  # (n_neurons, n_steps) dtype: synaptic current I over the target interval
    plastic: np.ndarray  # (n_neurons, n_steps) dtype: its plastic part Ip
    spikes: np.ndarray  # (n_neurons, n_steps) bool
    metrics: dict[str, float]  # as returned by train_iteration / evaluate


def packed_size(n: int) -> int:
    """Length of a packed symmetric n×n matrix."""
    return n * (n + 1) // 2


def pack(a: np.ndarray) -> np.ndarray:
    """Upper triangle of the symmetric ``a`` (..., n, n), packed by columns."""
    n = a.shape[-1]
    rows, cols = np.triu_indices(n)
    order = np.lexsort((rows, cols))  # column-major: b, then a
    return np.ascontiguousarray(a[..., rows[order], cols[order]])


def unpack(ap: np.ndarray, n: int) -> np.ndarray:
    """The full symmetric (..., n, n) matrices of packed ``ap`` (..., n(n+1)/2)."""
    rows, cols = np.triu_indices(n)
    order = np.lexsort((rows, cols))
    out = np.zeros(ap.shape[:-1] + (n, n), ap.dtype)
    out[..., rows[order], cols[order]] = ap
    out[..., cols[order], rows[order]] = ap
    return out


# --------------------------------------------------------------------------- packed BLAS


def _spmv_py(ap, x, y):
    """y = A x for symmetric A stored packed (upper, by columns) in ``ap``."""
    n = x.shape[0]
    for a in range(n):
        y[a] = 0.0
    for b in range(n):
        base = b * (b + 1) // 2
        xb = x[b]
        acc = 0.0
        for a in range(b):
            p = ap[base + a]
            y[a] += p * xb
            acc += p * x[a]
        y[b] += acc + ap[base + b] * xb


def _spr_py(ap, u):
    """A ← A − u uᵀ for symmetric A stored packed (upper, by columns) in ``ap``."""
    n = u.shape[0]
    for b in range(n):
        base = b * (b + 1) // 2
        ub = u[b]
        for a in range(b + 1):
            ap[base + a] -= u[a] * ub


def _symv_py(p, x, y):
    """y = A x for symmetric A stored in full, flattened row-major in ``p`` (n*n)."""
    n = x.shape[0]
    for a in range(n):
        y[a] = 0.0
    for b in range(n):  # y += A[:, b] x_b = A[b, :] x_b (symmetric): contiguous
        xb = x[b]
        row = b * n
        for a in range(n):
            y[a] += p[row + a] * xb


def _syr_py(p, u):
    """A ← A − u uᵀ for A stored in full, flattened row-major in ``p`` (n*n)."""
    n = u.shape[0]
    for a in range(n):
        ua = u[a]
        row = a * n
        for b in range(n):
            p[row + b] -= ua * u[b]


def _rls_step_py(p, w, r, k, u, y, packed):
    """One RLS update of one neuron's packed or full ``p`` and weights ``w``.

    ``r`` is its presynaptic trace vector, ``y`` the residual target of the
    read-out ``w·r`` (target current minus static current); ``k`` and ``u``
    are scratch vectors of length L. Returns ``(e, Δ(w·r))``: the a-priori
    error ``w·r − y`` and the change of the read-out caused by the update.
    """
    L = r.shape[0]
    if packed:
        _spmv(p, r, k)
    else:
        _symv(p, r, k)
    q = 0.0
    wr = 0.0
    for a in range(L):
        q += r[a] * k[a]
        wr += w[a] * r[a]
    if q < 0.0:  # P lost positive definiteness to round-off
        q = 0.0
    c = 1.0 / (1.0 + q)
    e = wr - y
    ce = c * e
    sc = math.sqrt(c)
    for a in range(L):
        w[a] -= ce * k[a]
        u[a] = sc * k[a]
    if packed:
        _spr(p, u)
    else:
        _syr(p, u)
    return e, -ce * q


# --------------------------------------------------------------------------- network


def _accumulate_py(acc, i, at, x, y):
    acc[i, at] += x
    acc[i, at + 1] += y
    acc[i, at + 2] += x * x
    acc[i, at + 3] += y * y
    acc[i, at + 4] += x * y


_BLOCK = 32  # neurons per parallel work item
_PARALLEL_MIN_NEURONS = 4096  # below this the per-step neuron update runs serially (RLS updates always in parallel)


def _update_block_py(
    b, t, clamp, mu, target, a_syn, a_pl, inv_tau_syn, inv_tau_pl, beta, threshold, reset, a_corr,
    v, i_s, i_p, r, in_s, in_p, spk, fired_list, xf, yf, acc, record, rec_i, rec_p, rec_s,
):
    """One time step of the neurons of block ``b``; returns how many spiked (listed in ``fired_list``)."""
    N = v.shape[0]
    cnt = 0
    for i in range(b * _BLOCK, min(N, (b + 1) * _BLOCK)):
        r[i] = a_pl * r[i] + (inv_tau_pl if spk[i] else 0.0)
        i_s[i] = a_syn * i_s[i] + inv_tau_syn * in_s[i]
        i_p[i] = a_pl * i_p[i] + inv_tau_pl * in_p[i]
        in_s[i] = 0.0
        in_p[i] = 0.0
        cur = i_s[i] + i_p[i]
        drive = target[0, i] if (t < 0 and clamp) else cur
        vi = beta * v[i] + (1.0 - beta) * (mu[i] + drive)
        fired = vi > threshold
        if fired:
            vi = reset
            fired_list[b * _BLOCK + cnt] = i
            cnt += 1
        v[i] = vi
        spk[i] = fired
        if t >= 0:
            x = float(cur)
            y = float(target[t, i])
            if t == 0:
                xf[i] = x
                yf[i] = y
            else:
                xf[i] = a_corr * xf[i] + (1.0 - a_corr) * x
                yf[i] = a_corr * yf[i] + (1.0 - a_corr) * y
            _accumulate(acc, i, 0, x, y)
            _accumulate(acc, i, 5, xf[i], yf[i])
            if fired:
                acc[i, 10] += 1.0
            if record:
                rec_i[t, i] = cur
                rec_p[t, i] = i_p[i]
                rec_s[t, i] = fired
    return cnt


def _rls_block_py(b, t, w_plastic, p_flat, pre_plastic, r, i_s, i_p, target, packed, err):
    """RLS updates of the neurons of block ``b`` at target step ``t``."""
    N, L = pre_plastic.shape
    dtype = w_plastic.dtype
    rr = np.empty(L, dtype)
    k = np.empty(L, dtype)
    u = np.empty(L, dtype)
    for i in range(b * _BLOCK, min(N, (b + 1) * _BLOCK)):
        for a in range(L):
            rr[a] = r[pre_plastic[i, a]]
        e, dwr = _rls_step(p_flat[i], w_plastic[i], rr, k, u, float(target[t, i]) - float(i_s[i]), packed)
        i_p[i] += dwr  # keep Ip = wp · r
        err[i, 0] += e * e
        err[i, 1] += 1.0


def _update_all_py(
    fired_count, t, clamp, mu, target, a_syn, a_pl, inv_tau_syn, inv_tau_pl, beta, threshold, reset, a_corr,
    v, i_s, i_p, r, in_s, in_p, spk, fired_list, xf, yf, acc, record, rec_i, rec_p, rec_s,
):
    """One time step of all neurons, blocks in parallel."""
    for b in numba.prange(fired_count.shape[0]):
        fired_count[b] = _update_block(
            b, t, clamp, mu, target, a_syn, a_pl, inv_tau_syn, inv_tau_pl, beta, threshold, reset, a_corr,
            v, i_s, i_p, r, in_s, in_p, spk, fired_list, xf, yf, acc, record, rec_i, rec_p, rec_s,
        )


def _rls_all_py(n_blocks, t, w_plastic, p_flat, pre_plastic, r, i_s, i_p, target, packed, err):
    """RLS updates of all neurons at target step ``t``, blocks in parallel."""
    for b in numba.prange(n_blocks):
        _rls_block(b, t, w_plastic, p_flat, pre_plastic, r, i_s, i_p, target, packed, err)


def _simulate_py(
    w_plastic, p_flat, pre_plastic, mu, v0,
    s_ptr, s_post, s_w, p_ptr, p_post, p_index,
    target, n_warm, clamp, learn, learn_every, packed,
    a_syn, a_pl, inv_tau_syn, inv_tau_pl, beta, threshold, reset, a_corr,
    record, rec_i, rec_p, rec_s, acc, err, parallel_step,
):
    """Run the warm-up and the target interval from the reset state; learn if ``learn``.

    ``target`` is (n_steps, N), time-major. During the warm-up the membrane
    is driven by ``target[0]`` instead of the synaptic current if ``clamp``.
    ``acc[i]`` accumulates over the target interval Σx, Σy, Σx², Σy², Σxy of
    x = current, y = target, then the same of both low-pass filtered
    (factor ``a_corr``), then the spike count; ``err[i]`` Σe² of the RLS
    a-priori errors and their count. ``rec_*`` are (n_steps, N) if ``record``.
    The neuron update of a step runs in parallel if ``parallel_step``, the
    RLS updates always; either way each neuron's arithmetic is the same.
    """
    N, L = pre_plastic.shape
    n_steps = target.shape[0]
    dtype = w_plastic.dtype
    n_blocks = (N + _BLOCK - 1) // _BLOCK
    w_flat = w_plastic.reshape(N * L)  # a view: sees the RLS updates
    v = v0.copy()
    i_s = np.zeros(N, dtype)  # static current
    i_p = np.zeros(N, dtype)  # plastic current
    r = np.zeros(N, dtype)  # filtered spike trains
    in_s = np.zeros(N, dtype)  # weighted spikes of this step, arriving at the next one
    in_p = np.zeros(N, dtype)
    spk = np.zeros(N, np.bool_)
    fired_list = np.empty(N, np.int64)  # block b lists its spiking neurons from b*_BLOCK on
    fired_count = np.zeros(n_blocks, np.int64)
    xf = np.zeros(N)  # low-pass filtered current and target, for the correlation
    yf = np.zeros(N)
    for n in range(n_warm + n_steps):
        t = n - n_warm
        if parallel_step:
            _update_all(
                fired_count, t, clamp, mu, target, a_syn, a_pl, inv_tau_syn, inv_tau_pl, beta, threshold, reset, a_corr,
                v, i_s, i_p, r, in_s, in_p, spk, fired_list, xf, yf, acc, record, rec_i, rec_p, rec_s,
            )
        else:
            for b in range(n_blocks):
                fired_count[b] = _update_block(
                    b, t, clamp, mu, target, a_syn, a_pl, inv_tau_syn, inv_tau_pl, beta, threshold, reset, a_corr,
                    v, i_s, i_p, r, in_s, in_p, spk, fired_list, xf, yf, acc, record, rec_i, rec_p, rec_s,
                )
        if learn and t >= 0 and (t + 1) % learn_every == 0:
            _rls_all(n_blocks, t, w_plastic, p_flat, pre_plastic, r, i_s, i_p, target, packed, err)
        # propagate this step's spikes, serially and in neuron order
        for b in range(n_blocks):
            for c in range(fired_count[b]):
                j = fired_list[b * _BLOCK + c]
                for q in range(s_ptr[j], s_ptr[j + 1]):
                    in_s[s_post[q]] += s_w[q]
                for q in range(p_ptr[j], p_ptr[j + 1]):
                    in_p[p_post[q]] += w_flat[p_index[q]]


_jit = njit(nogil=True)
# The packed product's column dot product is a floating-point reduction: allowing its reassociation lets
# LLVM vectorise it (about 3-4x faster from L = 80 on). The summation order is fixed by the compiled code,
# so the bits are the same for any thread count; they may differ between CPU types at round-off level.
_spmv = njit(nogil=True, fastmath={"reassoc"})(_spmv_py)
_spr = _jit(_spr_py)
_symv = _jit(_symv_py)
_syr = _jit(_syr_py)
_rls_step = _jit(_rls_step_py)
_accumulate = _jit(_accumulate_py)
_update_block = _jit(_update_block_py)
_rls_block = _jit(_rls_block_py)
_jit_par = njit(parallel=True)
_update_all = _jit_par(_update_all_py)
_rls_all = _jit_par(_rls_all_py)
_simulate = _jit(_simulate_py)


# --------------------------------------------------------------------------- public API


def _choose(rng: np.random.Generator, pool: np.ndarray, n: int, count: int) -> np.ndarray:
    """(n, count) sorted partners per row, drawn from ``pool`` without replacement, never the row itself."""
    out = np.empty((n, count), np.int32)
    for i in range(n):
        out[i] = np.sort(rng.choice(pool[pool != i], size=count, replace=False))
    return out


def init_state(config: ForceConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Connectivity, static weights, drive, initial potentials, plastic weights and ``P``.

    Keys (N neurons, K static and L plastic inputs per neuron):

    * ``pre_static`` (N, K) int32: presynaptic partners, K//2 excitatory then the rest inhibitory;
    * ``w_static`` (N, K): their weights, ``j_xy · tau_mem / sqrt(K//2)``;
    * ``pre_plastic`` (N, L) int32: plastic presynaptic partners (any neuron but i);
    * ``w_plastic`` (N, L): plastic weights (trained);
    * ``P`` (N, L(L+1)/2) if ``packed`` else (N, L, L): inverse covariances, ``I/lam`` (trained);
    * ``mu`` (N,): external drive; ``v0`` (N,): membrane potentials every run starts from.

    Floating-point arrays have ``config.dtype``. Only ``w_plastic`` and ``P``
    change in training; the dict is all a checkpoint needs.
    """
    cfg = config
    _check_config(cfg)
    dtype = np.dtype(cfg.dtype)
    N, K, L, Ne = cfg.n_neurons, cfg.n_static, cfg.n_plastic, cfg.n_exc
    Ke = K // 2
    pre_static = np.concatenate(
        [_choose(rng, np.arange(Ne), N, Ke), _choose(rng, np.arange(Ne, N), N, K - Ke)], axis=1
    )
    is_exc = (np.arange(N) < Ne)[:, None]
    j_from_exc = np.where(is_exc, cfg.j_ee, cfg.j_ie)
    j_from_inh = np.where(is_exc, cfg.j_ei, cfg.j_ii)
    scale = cfg.tau_mem / math.sqrt(max(Ke, 1))
    w_static = np.concatenate([np.broadcast_to(j_from_exc, (N, Ke)), np.broadcast_to(j_from_inh, (N, K - Ke))], axis=1)
    w_static = w_static * scale
    mu = np.where(np.arange(N) < Ne, cfg.mu_exc, cfg.mu_inh) * math.sqrt(max(Ke, 1))
    pre_plastic = _choose(rng, np.arange(N), N, L)
    w_plastic = rng.normal(0.0, cfg.w_plastic_init * cfg.tau_mem / math.sqrt(L), (N, L))
    v0 = rng.uniform(cfg.reset, cfg.threshold, N)
    if cfg.packed:
        P = np.zeros((N, packed_size(L)), dtype)
        diag = np.arange(L) * (np.arange(L) + 3) // 2  # b(b+1)/2 + b
        P[:, diag] = 1.0 / cfg.lam
    else:
        P = np.zeros((N, L, L), dtype)
        P[:, np.arange(L), np.arange(L)] = 1.0 / cfg.lam
    return {
        "pre_static": pre_static,
        "w_static": np.ascontiguousarray(w_static, dtype),
        "pre_plastic": pre_plastic,
        "w_plastic": w_plastic.astype(dtype),
        "P": P,
        "mu": mu.astype(dtype),
        "v0": v0.astype(dtype),
    }


def make_targets(config: ForceConfig, rng: np.random.Generator, offset=None) -> np.ndarray:
    """Target synaptic currents (n_neurons, n_steps) of ``config.dtype``: seed 002's sinusoids.

    ``target_i(t) = offset_i + target_amp · sin(2π f t + φ_i)`` with one
    frequency f = ``target_freq`` (Hz), t = (n + 1)·dt (ms), phases φ_i
    uniform in [0, 2π). ``offset`` is a scalar or an (n_neurons,) array,
    default ``config.target_offset``; ``innate_current(state, config)`` gives
    each neuron's mean current in the untrained network (what TrainSpikingNet
    uses, and what trains best).
    """
    cfg = config
    off = cfg.target_offset if offset is None else np.asarray(offset, np.float64)
    off = np.broadcast_to(off, (cfg.n_neurons,))
    phase = rng.uniform(0.0, 2.0 * math.pi, cfg.n_neurons)
    t = (np.arange(cfg.n_steps) + 1) * (cfg.dt * 1e-3)
    x = off[:, None] + cfg.target_amp * np.sin((2.0 * math.pi * cfg.target_freq) * t[None, :] + phase[:, None])
    return x.astype(cfg.dtype)


def innate_current(state: dict[str, np.ndarray], config: ForceConfig) -> np.ndarray:
    """Mean synaptic current (n_neurons,) float64 over the target interval of a free run.

    The network runs with its current weights, without learning and without
    the warm-up clamp (no targets are needed). Used as per-neuron target
    offsets, it keeps each neuron at its operating point.
    """
    cfg = config
    dummy = np.zeros((cfg.n_neurons, cfg.n_steps), cfg.dtype)
    acc, _ = _run(state, dummy, cfg, learn=False, record=False, clamp=False)
    return acc[:, 0] / cfg.n_steps


def _check_config(cfg: ForceConfig) -> None:
    N, K, L, Ne = cfg.n_neurons, cfg.n_static, cfg.n_plastic, cfg.n_exc
    if not (0 < Ne < N and K // 2 <= Ne - 1 and K - K // 2 <= N - Ne - 1 and 0 < L <= N - 1):
        raise ValueError(f"in-degrees K={K}, L={L} impossible with {Ne} excitatory of {N} neurons")
    if cfg.learn_every < 1 or cfg.n_steps < 1 or cfg.lam <= 0.0:
        raise ValueError("need learn_every >= 1, duration >= dt and lam > 0")
    if np.dtype(cfg.dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, not {cfg.dtype}")


def _check(state, targets, cfg):
    _check_config(cfg)
    dtype = np.dtype(cfg.dtype)
    N, L, K = cfg.n_neurons, cfg.n_plastic, cfg.n_static
    shapes = {
        "P": (N, packed_size(L)) if cfg.packed else (N, L, L),
        "w_plastic": (N, L), "pre_plastic": (N, L), "w_static": (N, K), "pre_static": (N, K),
        "mu": (N,), "v0": (N,),
    }
    for key, shape in shapes.items():
        a = state[key]
        if a.shape != shape:
            raise ValueError(f"state[{key!r}] has shape {a.shape}, config wants {shape} (packed={cfg.packed})")
        if not a.flags.c_contiguous:
            raise ValueError(f"state[{key!r}] must be C-contiguous")
        want = np.int32 if key.startswith("pre_") else dtype
        if a.dtype != want:
            raise ValueError(f"state[{key!r}] is {a.dtype}, config wants {np.dtype(want)}")
    if targets.shape != (N, cfg.n_steps):
        raise ValueError(f"targets have shape {targets.shape}, config wants {(N, cfg.n_steps)}")


def _out_csr(pre: np.ndarray, n: int):
    """Outgoing edges of each presynaptic neuron: (ptr, post, flat index into ``pre``'s (N, K) layout)."""
    flat_pre = pre.ravel()
    order = np.argsort(flat_pre, kind="stable")  # posts in increasing order within each presynaptic neuron
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(flat_pre, minlength=n), out=ptr[1:])
    return ptr, (order // pre.shape[1]).astype(np.int32), order.astype(np.int64)


def _run(state, targets, cfg, learn, record, clamp=True):
    """Compile-level driver: returns (acc, err) and, if ``record``, the (n_steps, N) recordings."""
    _check(state, targets, cfg)
    dtype = np.dtype(cfg.dtype)
    N, T = cfg.n_neurons, cfg.n_steps
    s_ptr, s_post, s_idx = _out_csr(state["pre_static"], N)
    s_w = state["w_static"].ravel()[s_idx]
    p_ptr, p_post, p_idx = _out_csr(state["pre_plastic"], N)
    target = np.ascontiguousarray(targets.T, dtype=dtype)
    shape = (T, N) if record else (1, 1)
    rec = (np.zeros(shape, dtype), np.zeros(shape, dtype), np.zeros(shape, np.bool_))
    acc = np.zeros((N, 11))
    err = np.zeros((N, 2))
    a_corr = math.exp(-cfg.dt / cfg.corr_tau) if cfg.corr_tau > 0 else 0.0
    _simulate(
        state["w_plastic"], state["P"].reshape(N, -1), state["pre_plastic"], state["mu"], state["v0"],
        s_ptr, s_post, s_w, p_ptr, p_post, p_idx,
        target, cfg.n_warmup, bool(clamp), bool(learn), int(cfg.learn_every), bool(cfg.packed),
        math.exp(-cfg.dt / cfg.tau_syn), math.exp(-cfg.dt / cfg.tau_plastic),
        1.0 / cfg.tau_syn, 1.0 / cfg.tau_plastic, math.exp(-cfg.dt / cfg.tau_mem),
        float(cfg.threshold), float(cfg.reset), a_corr,
        bool(record), rec[0], rec[1], rec[2], acc, err, N >= _PARALLEL_MIN_NEURONS,
    )
    if record:
        return acc, err, rec
    return acc, err


def _correlation(sx, sy, sxx, syy, sxy, T):
    """Mean over neurons of the Pearson correlation from running sums (0 for a constant signal)."""
    vx = sxx / T - (sx / T) ** 2
    vy = syy / T - (sy / T) ** 2
    cov = sxy / T - (sx / T) * (sy / T)
    den = np.sqrt(np.maximum(vx, 0.0) * np.maximum(vy, 0.0))
    ok = den > 0.0
    return float(np.where(ok, cov / np.where(ok, den, 1.0), 0.0).mean())


def _metrics(acc, err, cfg, learn) -> dict[str, float]:
    T = cfg.n_steps
    sxx, sxy, syy = acc[:, 2], acc[:, 4], acc[:, 3]
    out = {
        "correlation": _correlation(*acc[:, 5:10].T, T),
        "correlation_raw": _correlation(*acc[:, 0:5].T, T),
        "mse": float(((sxx - 2.0 * sxy + syy) / T).mean()),
        "rate_hz": float(acc[:, 10].mean() / (cfg.duration * 1e-3)),
    }
    if learn:
        out["rls_mse"] = float(err[:, 0].sum() / max(err[:, 1].sum(), 1.0))
    return out


def run(state: dict[str, np.ndarray], targets: np.ndarray, config: ForceConfig, learn: bool) -> Traces:
    """Run warm-up and target interval from the reset state and record the target interval.

    Returns :class:`Traces`: synaptic currents ``I``, their plastic part
    ``Ip`` and the spikes, each (n_neurons, n_steps), and the metrics of
    :func:`train_iteration` (``learn=True``, which trains ``state`` in place
    exactly like it) or :func:`evaluate`. Recorded currents are those the
    membrane saw, i.e. before that step's RLS update.
    """
    acc, err, (rec_i, rec_p, rec_s) = _run(state, targets, config, bool(learn), True)
    return Traces(
        np.ascontiguousarray(rec_i.T), np.ascontiguousarray(rec_p.T), np.ascontiguousarray(rec_s.T),
        _metrics(acc, err, config, bool(learn)),
    )


def train_iteration(state: dict[str, np.ndarray], targets: np.ndarray, config: ForceConfig) -> dict[str, float]:
    """One training iteration: a pass over the target interval with RLS, in place on ``state``.

    Metrics, over the target interval and for the currents as they were while
    learning: ``correlation`` (mean over neurons of the Pearson correlation of
    current and target, both low-pass filtered with ``corr_tau``),
    ``correlation_raw`` (unfiltered), ``mse`` (mean squared current − target),
    ``rate_hz`` (mean firing rate) and ``rls_mse`` (mean squared a-priori RLS
    error ``e``).
    """
    acc, err = _run(state, targets, config, True, False)
    return _metrics(acc, err, config, True)


def evaluate(state: dict[str, np.ndarray], targets: np.ndarray, config: ForceConfig) -> dict[str, float]:
    """Run without learning: ``correlation`` (the quality figure), ``correlation_raw``, ``mse``, ``rate_hz``."""
    acc, err = _run(state, targets, config, False, False)
    return _metrics(acc, err, config, False)
