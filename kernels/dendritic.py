"""Two-compartment (soma + dendrite) neuron network trained by adjoint sensitivity analysis.

The model of Toloza's "Training spiking neural networks via adjoint sensitivity
analysis" (seed 000). Each of N neurons has a soma (s) and a dendrite (d);
for compartment i with the other compartment o, time in ms, voltages
dimensionless::

    dv_i/dt      = (a_i (v_i − b_i)² + c_i)(v_i − 1) − j_i u_i (v_i − l_i) − k_i w_i (v_i − m_i)
                   + σ_i (v_o − μ_o) + J_i
    τ_u_i du_i/dt = d_i (v_i − e_i)⁴ + f_i − u_i
    τ_w_i dw_i/dt = g_i (v_i − h_i)² + i_i − w_i

(``σ_i`` is the talk's σ_oi, the coupling *into* compartment i.) The synaptic
input is a weighted sum of the smooth synaptic activation
``s(v) = 1 / (1 + exp(−(v − syn_threshold) / syn_width))`` of presynaptic
somata, with weight matrices stored post-major (row i = inputs of neuron i)::

    J_soma = W_soma · s(v_soma) + bias_soma
    J_dend = W_in · x(t) + W_dend · s(v_soma) + bias_dend        (W_soma, W_dend: recurrent only)

``x(t)`` is the external input pattern (n_inputs channels). With
``recurrent=False`` the network neurons are not connected (benchmark setting):
the params hold only ``w_in`` and s(v) is never evaluated.

Parameters (the defaults of :class:`DendriticConfig`, pairs are (soma, dendrite))::

    a = (−3, −1)  b = (0.1, 0.25)  c = (0.03, 0.0625)    cubic −A v (v − r)(v − 1): rest 0, threshold r, peak 1
    d = (1, 1)    e = (0, 0)       f = (0, 0)   τ_u = (10, 20) ms    fast recovery u∞ = v⁴
    g = (1, 1)    h = (0, 0)       i = (0, 0)   τ_w = (100, 100) ms  slow adaptation w∞ = v²
    j = (20, 5)   l = (−0.2, −0.2)                                    u current, reversal below rest
    k = (0.5, 0.5) m = (−0.2, −0.2)                                   w current
    σ = (0.3, 0.05)  μ = (0, 0)   bias = (0, 0)   initial v = (0, 0) (u, w at their steady state)

Why the soma spikes: with a = −A, b = r/2, c = A r²/4 the first term is the
FitzHugh–Nagumo cubic −A v (v − r)(v − 1), stable at rest v = 0 and at v = 1,
unstable at the threshold r = 0.2 (soma; 0.5 in the dendrite). With
e = f = h = i = 0 and μ = 0, all-zero is the resting state. A depolarising
input above the rheobase (J ≈ 0.03 for the soma) carries v past r and v runs
up towards 1; there the recovery variable u, relaxing with τ_u = 10 ms to
u∞ = v⁴ ≈ 1, switches on the strong current −j u (v − l) (j = 20) that pulls
v back below rest (l = −0.2); u then decays over ~τ_u (refractoriness) and
the cycle repeats while the input lasts: a relaxation oscillation with peaks
v ≈ 0.7–0.9 (spikes are counted as upward crossings of ``spike_threshold`` =
0.5). The slow w current (τ_w = 100 ms) adds spike-frequency adaptation.
Measured over 1 s, a lone soma (σ = 0) with a constant current J fires 7, 23,
40, 65, 93 Hz at J = 0.03, 0.05, 0.1, 0.2, 0.3 and goes into depolarisation
block from J ≈ 0.4. The dendrite is slower (A = 1), has threshold 0.5 and a
weaker recovery (j = 5): it integrates its input, fires broad dendritic
spikes for drive ≈ 0.1–0.3, saturates above, and drives the soma through
σ_soma = 0.3; a constant dendritic drive J_d = 0.05, 0.1, 0.3, 1.0 gives 22,
32, 51, 65 somatic spikes/s (no block along this path).

Time grid and Euler. ``T = round(duration / dt)`` steps, t_n = n dt, state
x_n (6 numbers per neuron: v, u, w of soma and dendrite), x_0 the initial
state, ``x_{n+1} = x_n + dt F(x_n, x(t_n))`` for n = 0..T−1. Inputs have shape
(T, n_inputs), row n is x(t_n); targets and all traces have shape (T, N),
row n belongs to t_{n+1} (the state after step n).

Task (:func:`make_task`): teacher–student reproduction. The input pattern is
n_inputs smooth non-negative signals ``(1 + sin(2π f t + φ))/2`` with random
frequencies in [``input_freq_min``, ``input_freq_max``] Hz; a teacher network
with its own random weights (drawn like :func:`init_params`) is run on it and
its somatic voltage is the target. The loss is the time integral of the
squared somatic error, evaluated with the Euler sum and normalised to a mean
squared error::

    C = 1/(N·duration) Σ_{n=1..T} dt Σ_i (v_soma_i(t_n) − target_i(t_n))²

Gradients: discrete adjoint. With ``ℓ_n`` the explicit derivative of the n-th
loss term with respect to x_n (``2 (v_soma − target)/(N·T)`` in the v_soma
entries, zero elsewhere), the adjoint ``p_n = dC/dx_n`` (total derivative
through the rest of the solve) obeys the reverse recursion, run backwards over
the stored forward states::

    p_T = ℓ_T
    p_n = p_{n+1} + dt (∂F/∂x (x_n))ᵀ p_{n+1} + ℓ_n        n = T−1 .. 1
    ∂C/∂θ = Σ_{n=0..T−1} dt (∂F/∂θ (x_n))ᵀ p_{n+1}

(a) This is the chain rule applied to the forward-Euler map, so it is the
*exact* gradient of the discrete forward solve, identical up to round-off,
not merely to O(dt) (finite differences of :func:`loss` agree to ≲1e-7
relative, which is their own truncation/cancellation error). (b) It is also a consistent, first-order discretisation
of the continuous adjoint of the talk: with H = p·F + L, ``ṗ = −∂H/∂x =
−(∂F/∂x)ᵀ p − ∂L/∂x``, p(t_end) = 0, and ∂C/∂θ = ∫ ∂H/∂θ dt. The recursion
is an Euler step of that ODE backwards in time (Jacobian at the stored
forward state x_n, adjoint at p_{n+1}, hence O(dt) local consistency), the
end condition p_T = ℓ_T = O(dt) approximates p = 0, and the gradient sum is
the Euler (left-point in x) quadrature of ∫ ∂H/∂θ dt. As dt → 0 both the
discrete gradient and this recursion converge to the continuous adjoint
gradient with error O(dt). Because the forward states are stored (memory
6·(T+1)·N numbers), no interpolation or re-integration is needed backwards.

Trainable parameters: ``w_in`` (N, n_inputs), and with ``recurrent`` also
``w_soma`` and ``w_dend`` (N, N); with ``train_sigma`` also ``sigma``
(2, N), per neuron (soma row, dendrite row) couplings. Everything else is a
constant of the config. The dtype (float32 or float64) is that of the params;
task arrays are cast to it. The forward and adjoint loops are serial (no prange), so results are the
same bits for any thread count; :func:`simulate` without recurrence runs in parallel over
independent chunks of neurons, also the same bits for any thread count. The loss is accumulated
in float64.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from ._jit import njit


class DendriticConfig(NamedTuple):
    n_neurons: int = 20
    n_inputs: int = 10
    dt: float = 0.1  # ms
    duration: float = 200.0  # ms
    recurrent: bool = True
    train_sigma: bool = False
    dtype: str = "float64"  # of init_params / make_task arrays
    # model constants, pairs are (soma, dendrite); see the module docstring
    a: tuple[float, float] = (-3.0, -1.0)
    b: tuple[float, float] = (0.1, 0.25)
    c: tuple[float, float] = (0.03, 0.0625)
    d: tuple[float, float] = (1.0, 1.0)
    e: tuple[float, float] = (0.0, 0.0)
    f: tuple[float, float] = (0.0, 0.0)
    g: tuple[float, float] = (1.0, 1.0)
    h: tuple[float, float] = (0.0, 0.0)
    i: tuple[float, float] = (0.0, 0.0)
    j: tuple[float, float] = (20.0, 5.0)
    k: tuple[float, float] = (0.5, 0.5)
    l: tuple[float, float] = (-0.2, -0.2)  # noqa: E741 (the talk's name)
    m: tuple[float, float] = (-0.2, -0.2)
    tau_u: tuple[float, float] = (10.0, 20.0)  # ms
    tau_w: tuple[float, float] = (100.0, 100.0)  # ms
    sigma: tuple[float, float] = (0.3, 0.05)  # coupling into (soma, dendrite) from the other compartment
    mu: tuple[float, float] = (0.0, 0.0)
    bias: tuple[float, float] = (0.0, 0.0)  # constant input current
    v_init: tuple[float, float] = (0.0, 0.0)
    # synapses
    syn_threshold: float = 0.5
    syn_width: float = 0.1
    spike_threshold: float = 0.5  # for counting spikes (evaluate), not part of the dynamics
    # initialisation and task
    w_in_mean: float = 0.1  # w_in ~ N(w_in_mean, w_in_std²) / n_inputs
    w_in_std: float = 0.3
    w_rec_std: float = 0.05  # w_soma, w_dend ~ N(0, w_rec_std²), zero diagonal
    input_freq_min: float = 2.0  # Hz
    input_freq_max: float = 10.0  # Hz

    @property
    def n_steps(self) -> int:
        return int(round(self.duration / self.dt))


class Traces(NamedTuple):
    """State after each Euler step, each (T, N); row n is t_{n+1} = (n + 1) dt."""

    v_soma: np.ndarray
    u_soma: np.ndarray
    w_soma: np.ndarray
    v_dend: np.ndarray
    u_dend: np.ndarray
    w_dend: np.ndarray


# column order of the per-compartment constant table (2, _NK)
_CONST_NAMES = ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "tau_u", "tau_w", "mu", "bias")
_NK = len(_CONST_NAMES)


def param_names(config: DendriticConfig) -> tuple[str, ...]:
    names = ("w_in", "w_soma", "w_dend") if config.recurrent else ("w_in",)
    return names + (("sigma",) if config.train_sigma else ())


def init_params(config: DendriticConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random weights in ``config.dtype``.

    ``w_in ~ N(w_in_mean, w_in_std²)`` (N, n_inputs) divided by n_inputs, so
    the dendritic drive ``w_in · x`` (x in [0, 1], mean 1/2) has mean
    ``w_in_mean / 2`` per neuron; recurrent ``w_soma``, ``w_dend`` (N, N)
    ``~ N(0, w_rec_std²)`` with a zero diagonal; ``sigma`` (2, N) starts at
    the config's coupling.
    """
    cfg = config
    N = cfg.n_neurons
    dtype = np.dtype(cfg.dtype)
    params = {"w_in": rng.normal(cfg.w_in_mean, cfg.w_in_std, (N, cfg.n_inputs)) / cfg.n_inputs}
    if cfg.recurrent:
        for name in ("w_soma", "w_dend"):
            w = rng.normal(0.0, cfg.w_rec_std, (N, N))
            np.fill_diagonal(w, 0.0)
            params[name] = w
    if cfg.train_sigma:
        params["sigma"] = np.repeat(np.asarray(cfg.sigma, float)[:, None], N, axis=1)
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in params.items()}


def make_inputs(config: DendriticConfig, rng: np.random.Generator) -> np.ndarray:
    """Input pattern (T, n_inputs): ``(1 + sin(2π f t_n + φ)) / 2``, f uniform in the config's range (Hz)."""
    cfg = config
    freq = rng.uniform(cfg.input_freq_min, cfg.input_freq_max, cfg.n_inputs)
    phase = rng.uniform(0.0, 2.0 * math.pi, cfg.n_inputs)
    t = np.arange(cfg.n_steps) * (cfg.dt * 1e-3)  # seconds
    x = 0.5 * (1.0 + np.sin(2.0 * math.pi * freq[None, :] * t[:, None] + phase[None, :]))
    return np.ascontiguousarray(x, dtype=np.dtype(cfg.dtype))


def make_task(config: DendriticConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Teacher–student reproduction task.

    Returns ``inputs`` (T, n_inputs), ``targets`` (T, N): the somatic voltage
    of a teacher network with its own random weights (drawn as in
    :func:`init_params`) driven by ``inputs``, and the teacher's weights as
    ``teacher/<name>`` (the loss of those params is exactly 0).
    """
    inputs = make_inputs(config, rng)
    teacher = init_params(config, rng)
    traces = forward(teacher, {"inputs": inputs}, config)
    task = {"inputs": inputs, "targets": np.ascontiguousarray(traces.v_soma)}
    task.update({f"teacher/{k}": v for k, v in teacher.items()})
    return task


# --------------------------------------------------------------------------- compiled kernels


def _sigmoid(v, theta, width):
    return 1.0 / (1.0 + math.exp(-(v - theta) / width))


def _constants_py(K):
    """The model constants K (2, 17) as a tuple of scalars (soma, then dendrite), 1/τ_u and 1/τ_w last."""
    return (K[0, 0], K[0, 1], K[0, 2], K[0, 3], K[0, 4], K[0, 5], K[0, 6], K[0, 7], K[0, 8], K[0, 9], K[0, 10],
            K[0, 11], K[0, 12], K[0, 15], K[1, 0], K[1, 1], K[1, 2], K[1, 3], K[1, 4], K[1, 5], K[1, 6], K[1, 7],
            K[1, 8], K[1, 9], K[1, 10], K[1, 11], K[1, 12], K[1, 15],
            1.0 / K[0, 13], 1.0 / K[0, 14], 1.0 / K[1, 13], 1.0 / K[1, 14])


def _euler_py(vs, us, ws, vd, ud, wd, sig_s, sig_d, js, jd, C, dt):
    """One forward-Euler step of one neuron's six state variables (the ODEs of the module docstring);
    ``js``, ``jd``: the input currents of soma and dendrite, ``C``: :func:`_constants`."""
    (a0, b0, c0, d0, e0, f0, g0, h0, i0, j0, k0, l0, m0, mu0,
     a1, b1, c1, d1, e1, f1, g1, h1, i1, j1, k1, l1, m1, mu1, ru0, rw0, ru1, rw1) = C
    ys = vs - b0
    yd = vd - b1
    dvs = ((a0 * ys * ys + c0) * (vs - 1.0) - j0 * us * (vs - l0) - k0 * ws * (vs - m0)
           + sig_s * (vd - mu1) + js)
    dvd = ((a1 * yd * yd + c1) * (vd - 1.0) - j1 * ud * (vd - l1) - k1 * wd * (vd - m1)
           + sig_d * (vs - mu0) + jd)
    es = vs - e0
    ed = vd - e1
    es2 = es * es
    ed2 = ed * ed
    hs = vs - h0
    hd = vd - h1
    return (vs + dt * dvs, us + dt * ((d0 * es2 * es2 + f0 - us) * ru0), ws + dt * ((g0 * hs * hs + i0 - ws) * rw0),
            vd + dt * dvd, ud + dt * ((d1 * ed2 * ed2 + f1 - ud) * ru1), wd + dt * ((g1 * hd * hd + i1 - wd) * rw1))


def _forward_py(x0, inputs, w_in_t, w_soma_t, w_dend_t, sigma, K, syn_theta, syn_width, dt, recurrent, X, state):
    """Forward Euler; fills X[0] = x0 and X[n + 1] = X[n] + dt F(X[n]) for n < T. X is (T+1, 6, N).

    Weights come transposed (presynaptic-major: ``w_in_t`` (n_inputs, N), ``w_soma_t``, ``w_dend_t``
    (N, N)), so every sum is a contiguous update over the postsynaptic neurons. ``state`` is an (9, N)
    work buffer: the six state variables, the two input currents and s(v_soma).
    """
    T = inputs.shape[0]
    n_in = inputs.shape[1]
    N = x0.shape[1]
    # constants as local scalars (no loads in the loop)
    consts = _constants(K)  # the model's constants as scalars, for _euler
    bias0 = K[0, 16]
    bias1 = K[1, 16]
    vs_a = state[0]
    us_a = state[1]
    ws_a = state[2]
    vd_a = state[3]
    ud_a = state[4]
    wd_a = state[5]
    js_a = state[6]
    jd_a = state[7]
    s = state[8]
    sig_s = sigma[0]
    sig_d = sigma[1]
    for q in range(6):
        for nn in range(N):
            state[q, nn] = x0[q, nn]
            X[0, q, nn] = x0[q, nn]
    for n in range(T):
        for nn in range(N):
            js_a[nn] = bias0
            jd_a[nn] = bias1
        xin = inputs[n]
        for q in range(n_in):
            xq = xin[q]
            row = w_in_t[q]
            for nn in range(N):
                jd_a[nn] += row[nn] * xq
        if recurrent:
            for nn in range(N):
                s[nn] = _sigmoid(vs_a[nn], syn_theta, syn_width)
            for q in range(N):
                sq = s[q]
                rs = w_soma_t[q]
                rd = w_dend_t[q]
                for nn in range(N):
                    js_a[nn] += rs[nn] * sq
                    jd_a[nn] += rd[nn] * sq
        xp = X[n + 1]
        for nn in range(N):
            vs = vs_a[nn]
            us = us_a[nn]
            ws = ws_a[nn]
            vd = vd_a[nn]
            ud = ud_a[nn]
            wd = wd_a[nn]
            vs, us, ws, vd, ud, wd = _euler(vs, us, ws, vd, ud, wd, sig_s[nn], sig_d[nn], js_a[nn], jd_a[nn],
                                            consts, dt)
            vs_a[nn] = vs
            us_a[nn] = us
            ws_a[nn] = ws
            vd_a[nn] = vd
            ud_a[nn] = ud
            wd_a[nn] = wd
        for q in range(6):
            src = state[q]
            dst = xp[q]
            for nn in range(N):
                dst[nn] = src[nn]


_CHUNK = 128  # neurons per chunk of the feed-forward solve without traces


def _forward_ff_py(x0, inputs, w_in_t, sigma, K, dt, spike_threshold, final, spikes):
    """Forward Euler without recurrence and without traces: the state after T steps and the spike counts.

    With ``recurrent=False`` every neuron's solve is independent, so the neurons go in chunks of
    ``_CHUNK`` (in parallel), each stepping through all T steps with its state, couplings and input
    weights in a local (10, _CHUNK) / (n_inputs, _CHUNK) buffer (in L1, fixed-length inner loops that
    vectorise). Each neuron sees the same operations in the same order as in :func:`_forward_py`,
    so ``final`` (6, N) is the same bits as its X[T], for any thread count. ``spikes`` (N,) gets the
    upward crossings of ``spike_threshold`` by v_soma over t_1..t_T, as :func:`count_spikes` of
    the trace.
    """
    T = inputs.shape[0]
    n_in = inputs.shape[1]
    N = x0.shape[1]
    consts = _constants(K)  # the model's constants as scalars, for _euler
    bias0 = K[0, 16]
    bias1 = K[1, 16]
    C = _CHUNK
    n_chunks = (N + C - 1) // C
    for c in numba.prange(n_chunks):
        lo = c * C
        m = min(N, lo + C) - lo
        S = np.zeros((10, C), final.dtype)  # v, u, w (soma), v, u, w (dendrite), σ_s, σ_d, J_d, spike count
        W = np.zeros((n_in, C), final.dtype)
        for k in range(m):
            for q in range(6):
                S[q, k] = x0[q, lo + k]
            S[6, k] = sigma[0, lo + k]
            S[7, k] = sigma[1, lo + k]
            for q in range(n_in):
                W[q, k] = w_in_t[q, lo + k]
        for n in range(T):
            xin = inputs[n]
            for k in range(C):
                S[8, k] = bias1
            for q in range(n_in):
                xq = xin[q]
                for k in range(C):
                    S[8, k] += W[q, k] * xq
            gate = 1.0 if n > 0 else 0.0
            for k in range(C):
                vs = S[0, k]
                us = S[1, k]
                ws = S[2, k]
                vd = S[3, k]
                ud = S[4, k]
                wd = S[5, k]
                was_above = vs > spike_threshold
                vs, us, ws, vd, ud, wd = _euler(vs, us, ws, vd, ud, wd, S[6, k], S[7, k], bias0, S[8, k], consts, dt)
                S[0, k] = vs
                S[1, k] = us
                S[2, k] = ws
                S[3, k] = vd
                S[4, k] = ud
                S[5, k] = wd
                S[9, k] += gate if (vs > spike_threshold and not was_above) else 0.0
        for k in range(m):
            for q in range(6):
                final[q, lo + k] = S[q, k]
            spikes[lo + k] = int(S[9, k])


def _loss_py(X, targets, scale):
    """``scale · Σ_n Σ_i (X[n+1, 0, i] − targets[n, i])²``, accumulated in float64 in a fixed order."""
    T, N = targets.shape
    acc = 0.0
    for n in range(T):
        for nn in range(N):
            err = np.float64(X[n + 1, 0, nn]) - np.float64(targets[n, nn])
            acc += err * err
    return acc * scale


def _backward_py(X, inputs, targets, w_in, w_soma, w_dend, sigma, K, syn_theta, syn_width, dt, recurrent, scale,
                 g_in, g_soma, g_dend, g_sigma, p, pn, r, s, sp):
    """Discrete adjoint of :func:`_forward_py` for the loss of :func:`_loss_py`; accumulates into the g_ arrays.

    ``p`` holds p_{n+1} (6, N); ``pn``, ``r``, ``s``, ``sp`` are work buffers.
    """
    T = inputs.shape[0]
    n_in = inputs.shape[1]
    N = X.shape[2]
    a0, b0, c0, d0, e0, g0, h0 = K[0, 0], K[0, 1], K[0, 2], K[0, 3], K[0, 4], K[0, 6], K[0, 7]
    j0, k0, l0, m0, tu0, tw0, mu0 = K[0, 9], K[0, 10], K[0, 11], K[0, 12], K[0, 13], K[0, 14], K[0, 15]
    a1, b1, c1, d1, e1, g1, h1 = K[1, 0], K[1, 1], K[1, 2], K[1, 3], K[1, 4], K[1, 6], K[1, 7]
    j1, k1, l1, m1, tu1, tw1, mu1 = K[1, 9], K[1, 10], K[1, 11], K[1, 12], K[1, 13], K[1, 14], K[1, 15]
    ru0 = 1.0 / tu0
    rw0 = 1.0 / tw0
    ru1 = 1.0 / tu1
    rw1 = 1.0 / tw1
    two_scale = 2.0 * scale
    for q in range(6):
        for nn in range(N):
            p[q, nn] = 0.0
    for nn in range(N):  # p_T = ℓ_T
        p[0, nn] = two_scale * (X[T, 0, nn] - targets[T - 1, nn])
    for n in range(T - 1, -1, -1):
        xn = X[n]
        # parameter gradients: dt (∂F/∂θ (x_n))ᵀ p_{n+1}
        xin = inputs[n]
        for nn in range(N):
            gd = dt * p[3, nn]
            row = g_in[nn]
            for q in range(n_in):
                row[q] += gd * xin[q]
            g_sigma[0, nn] += dt * p[0, nn] * (xn[3, nn] - mu1)
            g_sigma[1, nn] += dt * p[3, nn] * (xn[0, nn] - mu0)
        if recurrent:
            for q in range(N):
                sq = _sigmoid(xn[0, q], syn_theta, syn_width)
                s[q] = sq
                sp[q] = sq * (1.0 - sq) / syn_width
                r[q] = 0.0
            for nn in range(N):
                gs = dt * p[0, nn]
                gd = dt * p[3, nn]
                rs = g_soma[nn]
                rd = g_dend[nn]
                ws_row = w_soma[nn]
                wd_row = w_dend[nn]
                ps = p[0, nn]
                pd = p[3, nn]
                for q in range(N):
                    rs[q] += gs * s[q]
                    rd[q] += gd * s[q]
                    r[q] += ws_row[q] * ps + wd_row[q] * pd
        if n == 0:
            break
        # p_n = p_{n+1} + dt (∂F/∂x (x_n))ᵀ p_{n+1} + ℓ_n
        for nn in range(N):
            vs = xn[0, nn]
            us = xn[1, nn]
            ws = xn[2, nn]
            vd = xn[3, nn]
            ud = xn[4, nn]
            wd = xn[5, nn]
            pvs = p[0, nn]
            pus = p[1, nn]
            pws = p[2, nn]
            pvd = p[3, nn]
            pud = p[4, nn]
            pwd = p[5, nn]
            ys = vs - b0
            yd = vd - b1
            # ∂(dv/dt)/∂v of each compartment
            fvs = 2.0 * a0 * ys * (vs - 1.0) + a0 * ys * ys + c0 - j0 * us - k0 * ws
            fvd = 2.0 * a1 * yd * (vd - 1.0) + a1 * yd * yd + c1 - j1 * ud - k1 * wd
            es = vs - e0
            ed = vd - e1
            dus = 4.0 * d0 * es * es * es * ru0  # ∂(du/dt)/∂v
            dud = 4.0 * d1 * ed * ed * ed * ru1
            dws = 2.0 * g0 * (vs - h0) * rw0  # ∂(dw/dt)/∂v
            dwd = 2.0 * g1 * (vd - h1) * rw1
            syn = sp[nn] * r[nn] if recurrent else 0.0
            pn[0, nn] = (pvs + dt * (fvs * pvs + dus * pus + dws * pws + sigma[1, nn] * pvd + syn)
                         + two_scale * (vs - targets[n - 1, nn]))
            pn[1, nn] = pus + dt * (-j0 * (vs - l0) * pvs - ru0 * pus)
            pn[2, nn] = pws + dt * (-k0 * (vs - m0) * pvs - rw0 * pws)
            pn[3, nn] = pvd + dt * (fvd * pvd + dud * pud + dwd * pwd + sigma[0, nn] * pvs)
            pn[4, nn] = pud + dt * (-j1 * (vd - l1) * pvd - ru1 * pud)
            pn[5, nn] = pwd + dt * (-k1 * (vd - m1) * pvd - rw1 * pwd)
        for q in range(6):
            for nn in range(N):
                p[q, nn] = pn[q, nn]


_jit = njit(nogil=True, fastmath=False)
_sigmoid = _jit(_sigmoid)
_constants = _jit(_constants_py)
_euler = _jit(_euler_py)
_forward = _jit(_forward_py)
_forward_ff = njit(nogil=True, fastmath=False, parallel=True)(_forward_ff_py)
_loss = _jit(_loss_py)
_backward = _jit(_backward_py)


# --------------------------------------------------------------------------- public API


def _consts(cfg: DendriticConfig, dtype) -> np.ndarray:
    return np.array([[getattr(cfg, name)[c] for name in _CONST_NAMES] for c in range(2)], dtype=dtype)


def _initial_state(cfg: DendriticConfig, N: int, dtype) -> np.ndarray:
    x0 = np.zeros((6, N), dtype)
    for c in range(2):
        v = cfg.v_init[c]
        x0[3 * c] = v
        x0[3 * c + 1] = cfg.d[c] * (v - cfg.e[c]) ** 4 + cfg.f[c]
        x0[3 * c + 2] = cfg.g[c] * (v - cfg.h[c]) ** 2 + cfg.i[c]
    return x0


def _arrays(params, task, cfg):
    w_in = params["w_in"]
    dtype = w_in.dtype
    N = w_in.shape[0]
    if cfg.recurrent:
        w_soma = np.ascontiguousarray(params["w_soma"], dtype)
        w_dend = np.ascontiguousarray(params["w_dend"], dtype)
    else:
        w_soma = w_dend = np.zeros((1, 1), dtype)
    if "sigma" in params:
        sigma = np.ascontiguousarray(params["sigma"], dtype)
    else:
        sigma = np.repeat(np.asarray(cfg.sigma, dtype)[:, None], N, axis=1)
    inputs = np.ascontiguousarray(task["inputs"], dtype)
    return np.ascontiguousarray(w_in), w_soma, w_dend, sigma, inputs


def _simulate(params, task, cfg):
    w_in, w_soma, w_dend, sigma, inputs = _arrays(params, task, cfg)
    dtype = w_in.dtype
    N = w_in.shape[0]
    T = inputs.shape[0]
    X = np.empty((T + 1, 6, N), dtype)
    K = _consts(cfg, dtype)
    _forward(_initial_state(cfg, N, dtype), inputs, np.ascontiguousarray(w_in.T), np.ascontiguousarray(w_soma.T),
             np.ascontiguousarray(w_dend.T), sigma, K, cfg.syn_threshold, cfg.syn_width, cfg.dt, bool(cfg.recurrent),
             X, np.empty((9, N), dtype))
    return X, (w_in, w_soma, w_dend, sigma, inputs, K)


def _scale(cfg, T, N):
    return 1.0 / (T * N)  # dt / (N · duration) with duration = T dt


def forward(params: dict[str, np.ndarray], task: dict[str, np.ndarray], config: DendriticConfig) -> Traces:
    """Simulate the network on ``task["inputs"]`` (T, n_inputs); returns :class:`Traces`, each (T, N).

    The traces are views into one (T + 1, 6, N) state array (row 0, the
    initial state, is not included).
    """
    X, _ = _simulate(params, task, config)
    return Traces(*(X[1:, q, :] for q in range(6)))


def simulate(params: dict[str, np.ndarray], task: dict[str, np.ndarray], config: DendriticConfig):
    """Run the network on ``task["inputs"]`` without keeping the traces.

    Returns ``(final, spikes)``: the state after the last step (6, N), rows v, u, w of the soma then
    of the dendrite (the same bits as the last row of :func:`forward`'s traces), and the somatic spike
    counts (N,), equal to :func:`count_spikes` of ``forward(...).v_soma`` at ``spike_threshold``.
    Without recurrence it needs O(N) memory instead of O(T N) and runs in parallel over neurons.
    """
    cfg = config
    if cfg.recurrent:
        X, _ = _simulate(params, task, cfg)
        return np.ascontiguousarray(X[-1]), count_spikes(X[1:, 0, :], cfg.spike_threshold).astype(np.int64)
    w_in, _, _, sigma, inputs = _arrays(params, task, cfg)
    dtype = w_in.dtype
    N = w_in.shape[0]
    final = np.empty((6, N), dtype)
    spikes = np.empty(N, np.int64)
    _forward_ff(_initial_state(cfg, N, dtype), inputs, np.ascontiguousarray(w_in.T), sigma, _consts(cfg, dtype),
                cfg.dt, cfg.spike_threshold, final, spikes)
    return final, spikes


def loss(params: dict[str, np.ndarray], task: dict[str, np.ndarray], config: DendriticConfig) -> float:
    """Mean squared somatic-voltage error against ``task["targets"]`` (the normalised Euler-sum integral)."""
    X, _ = _simulate(params, task, config)
    targets = np.ascontiguousarray(task["targets"], X.dtype)
    return float(_loss(X, targets, _scale(config, *targets.shape)))


def loss_and_grad(params: dict[str, np.ndarray], task: dict[str, np.ndarray], config: DendriticConfig):
    """``(loss, grads)`` with grads keyed like ``params``, by the discrete adjoint (module docstring)."""
    cfg = config
    X, (w_in, w_soma, w_dend, sigma, inputs, K) = _simulate(params, task, cfg)
    dtype = X.dtype
    targets = np.ascontiguousarray(task["targets"], dtype)
    T, N = targets.shape
    scale = _scale(cfg, T, N)
    value = float(_loss(X, targets, scale))
    g_in = np.zeros_like(w_in)
    g_soma = np.zeros_like(w_soma)
    g_dend = np.zeros_like(w_dend)
    g_sigma = np.zeros_like(sigma)
    _backward(X, inputs, targets, w_in, w_soma, w_dend, sigma, K, cfg.syn_threshold, cfg.syn_width, cfg.dt,
              bool(cfg.recurrent), scale, g_in, g_soma, g_dend, g_sigma,
              np.zeros((6, N), dtype), np.zeros((6, N), dtype), np.zeros(N, dtype), np.zeros(N, dtype),
              np.zeros(N, dtype))
    all_grads = {"w_in": g_in, "w_soma": g_soma, "w_dend": g_dend, "sigma": g_sigma}
    return value, {name: all_grads[name] for name in params}


def count_spikes(v_soma: np.ndarray, threshold: float) -> np.ndarray:
    """Upward crossings of ``threshold`` per neuron in a (T, N) voltage trace."""
    above = v_soma > threshold
    return np.count_nonzero(above[1:] & ~above[:-1], axis=0)


def evaluate(params: dict[str, np.ndarray], task: dict[str, np.ndarray], config: DendriticConfig) -> dict[str, float]:
    """``loss``, ``correlation`` (mean over neurons of the Pearson correlation of produced and target
    somatic voltage; neurons with a constant trace count 0) and ``rate_hz`` (mean somatic spike rate)."""
    X, _ = _simulate(params, task, config)
    targets = np.ascontiguousarray(task["targets"], X.dtype)
    T, N = targets.shape
    value = float(_loss(X, targets, _scale(config, T, N)))
    v = X[1:, 0, :].astype(np.float64)
    y = targets.astype(np.float64)
    dv = v - v.mean(axis=0)
    dy = y - y.mean(axis=0)
    den = np.sqrt((dv * dv).sum(axis=0) * (dy * dy).sum(axis=0))
    corr = np.where(den > 0.0, (dv * dy).sum(axis=0) / np.where(den > 0.0, den, 1.0), 0.0)
    rate = count_spikes(v, config.spike_threshold).mean() / (T * config.dt * 1e-3)
    return {"loss": value, "correlation": float(corr.mean()), "rate_hz": float(rate)}
