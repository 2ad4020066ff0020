"""A hidden layer of Izhikevich neurons and a leaky readout, trained by surrogate-gradient BPTT.

NumPy only, vectorised over the batch; one sample's equations, time steps
n = 0 .. T-1, forward Euler with a step of ``dt`` ms::

    I[n+1]  = α I[n] + W_in·x[n]                       synaptic current, α = exp(−dt/τ_syn)
    ṽ       = v[n] + dt (0.04 v[n]² + 5 v[n] + 140 − u[n] + g I[n+1])
    ũ       = u[n] + dt a (b v[n] − u[n])
    S[n+1]  = Θ(ṽ − 30)                                 a spike where ṽ ≥ 30 mV
    v[n+1]  = c if S[n+1] else ṽ                        reset
    u[n+1]  = ũ + d S[n+1]
    o[n+1]  = β o[n] + W_out·S[n+1]                     leaky, non-spiking readout, β = exp(−dt/τ_out)
    loss    = cross-entropy(softmax_k(max_n o_k[n]), label)      (mean over the batch)

v starts at the resting potential (the stable fixed point of the v and u
equations), u at b·v, I and o at 0.

The backward pass replaces dΘ/dṽ by the fast-sigmoid surrogate
``1 / (scale·|ṽ − 30| + 1)²``. No gradient flows through the reset: the
spike that decides ``v ← c`` and ``u ← u + d`` is treated as a constant.

``smooth=True`` makes the spike the readout sees the function whose
derivative the surrogate is, ``f(x) = x / (scale·|x| + 1)`` with ``x = ṽ − 30``,
while the reset keeps the hard threshold. That reset is piecewise constant in
the weights, so the backward pass below is then the exact gradient of the
model (almost everywhere): the tests compare it with finite differences.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

THRESHOLD_MV = 30.0


class NetworkConfig(NamedTuple):
    n_inputs: int
    n_hidden: int
    n_outputs: int
    a: float = 0.02
    b: float = 0.2
    c: float = -65.0
    d: float = 8.0
    dt_ms: float = 1.0
    tau_syn_ms: float = 5.0
    tau_out_ms: float = 20.0
    input_gain: float = 10.0
    weight_scale: float = 1.0
    surrogate_scale: float = 0.5
    smooth: bool = False

    @property
    def alpha(self) -> float:
        return math.exp(-self.dt_ms / self.tau_syn_ms)

    @property
    def beta(self) -> float:
        return math.exp(-self.dt_ms / self.tau_out_ms)

    @property
    def v_rest(self) -> float:
        """The stable fixed point of v' = 0.04v² + 5v + 140 − bv (u = bv): the lower root."""
        p = 5.0 - self.b
        disc = p * p - 4 * 0.04 * 140.0
        if disc < 0:  # no fixed point (b > ~0.27): the neuron fires tonically; start at the reset
            return self.c
        return (-p - math.sqrt(disc)) / (2 * 0.04)


class Trace(NamedTuple):
    """What the backward pass needs from the forward pass (time-major)."""

    v: np.ndarray  # (T, B, H) v[n], before step n
    x: np.ndarray  # (T, B, H) ṽ − 30 of step n
    spikes: np.ndarray  # (T, B, H) bool, S[n+1]
    s_out: np.ndarray  # (T, B, H) what the readout sees: S[n+1], or f(ṽ − 30) when smooth
    readout: np.ndarray  # (T, B, O) o[n+1]


def init_params(cfg: NetworkConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "w_in": rng.normal(0.0, cfg.weight_scale / math.sqrt(cfg.n_inputs), (cfg.n_inputs, cfg.n_hidden)),
        "w_out": rng.normal(0.0, 1.0 / math.sqrt(cfg.n_hidden), (cfg.n_hidden, cfg.n_outputs)),
    }


def forward(params: dict[str, np.ndarray], inputs: np.ndarray, cfg: NetworkConfig) -> Trace:
    """Run a batch of dense inputs ``(B, T, n_inputs)`` (spike counts per step)."""
    B, T, _ = inputs.shape
    H, O = cfg.n_hidden, cfg.n_outputs
    dt, alpha, beta, gain = cfg.dt_ms, cfg.alpha, cfg.beta, cfg.input_gain
    time_major = np.ascontiguousarray(inputs.transpose(1, 0, 2)).reshape(T * B, -1)
    drive = (time_major @ params["w_in"]).reshape(T, B, H)  # W_in·x[n] for every step at once
    w_out = params["w_out"]
    v = np.full((B, H), cfg.v_rest)
    u = cfg.b * v
    i_syn = np.zeros((B, H))
    o = np.zeros((B, O))
    tr = Trace(np.empty((T, B, H)), np.empty((T, B, H)), np.empty((T, B, H), bool), np.empty((T, B, H)),
               np.empty((T, B, O)))
    for n in range(T):
        tr.v[n] = v
        i_syn *= alpha
        i_syn += drive[n]
        # ṽ = v + dt (0.04 v² + 5 v + 140 − u + g I), as (0.04 v + 5) v + 140 − u + g I
        x = tr.x[n]
        np.multiply(v, 0.04, out=x)
        x += 5.0
        x *= v
        x += 140.0
        x -= u
        x += gain * i_syn
        x *= dt
        x += v  # ṽ
        u += dt * cfg.a * (cfg.b * v - u)  # ũ
        x -= THRESHOLD_MV
        spk = tr.spikes[n]
        np.greater_equal(x, 0.0, out=spk)
        s = tr.s_out[n]
        if cfg.smooth:
            np.divide(x, cfg.surrogate_scale * np.abs(x) + 1.0, out=s)
        else:
            s[...] = spk
        v = np.where(spk, cfg.c, x + THRESHOLD_MV)
        u += cfg.d * spk
        o *= beta
        o += s @ w_out
        tr.readout[n] = o
    return tr


def _softmax_xent(m: np.ndarray, labels: np.ndarray):
    """Mean cross-entropy of softmax(m) at ``labels``, dL/dm, and the number of correct argmaxes."""
    z = m - m.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    B = m.shape[0]
    loss = -logp[np.arange(B), labels].mean()
    g = np.exp(logp)
    g[np.arange(B), labels] -= 1.0
    return float(loss), g / B, int((m.argmax(axis=1) == labels).sum())


def loss_and_grad(params, inputs: np.ndarray, labels: np.ndarray, cfg: NetworkConfig):
    """(loss, accuracy, firing rate in Hz, gradients) of a batch; BPTT by hand, in reverse time."""
    tr = forward(params, inputs, cfg)
    T, B, H = tr.v.shape
    dt, alpha, beta, gain, a, b = cfg.dt_ms, cfg.alpha, cfg.beta, cfg.input_gain, cfg.a, cfg.b
    t_max = tr.readout.argmax(axis=0)  # (B, O): the step of each readout's maximum
    m = np.take_along_axis(tr.readout, t_max[None], axis=0)[0]
    loss, g_m, correct = _softmax_xent(m, labels)
    w_out = params["w_out"]
    g_w_out = np.zeros_like(w_out)
    g_drive = np.empty((T, B, H))
    g_o = np.zeros_like(g_m)
    g_v = np.zeros((B, H))  # dL/dv[n+1]
    g_u = np.zeros((B, H))  # dL/du[n+1]
    g_i = np.zeros((B, H))  # dL/dI[n+2] times α: what I[n+1] passes on to the future
    steps = np.arange(T)
    for n in range(T - 1, -1, -1):
        g_o = beta * g_o + np.where(t_max == steps[n], g_m, 0.0)  # dL/do[n+1]
        g_w_out += tr.s_out[n].T @ g_o
        g_s = g_o @ w_out.T  # dL/dS[n+1]
        x = tr.x[n]
        d = cfg.surrogate_scale * np.abs(x) + 1.0
        g_vt = np.where(tr.spikes[n], 0.0, g_v) + g_s / (d * d)  # the reset passes no gradient
        g_ut = g_u
        g_in = g_i + dt * gain * g_vt  # dL/dI[n+1]
        g_drive[n] = g_in
        g_i = alpha * g_in
        v = tr.v[n]
        g_v = g_vt * (1.0 + dt * (0.08 * v + 5.0)) + g_ut * (dt * a * b)
        g_u = -dt * g_vt + g_ut * (1.0 - dt * a)
    n_in = inputs.shape[2]
    g_w_in = inputs.transpose(2, 1, 0).reshape(n_in, T * B) @ g_drive.reshape(T * B, H)
    rate = float(tr.spikes.mean()) * 1000.0 / dt
    return loss, correct / B, rate, {"w_in": g_w_in, "w_out": g_w_out}


def evaluate(params, inputs: np.ndarray, labels: np.ndarray, cfg: NetworkConfig, batch: int = 256) -> dict[str, float]:
    """Loss, accuracy and hidden firing rate over a whole set, in batches (forward only)."""
    total_loss, correct, spikes, n = 0.0, 0, 0.0, len(labels)
    for start in range(0, n, batch):
        x, y = inputs[start : start + batch], labels[start : start + batch]
        tr = forward(params, x, cfg)
        loss, _, ok = _softmax_xent(tr.readout.max(axis=0), y)
        total_loss += loss * len(y)
        correct += ok
        spikes += float(tr.spikes.sum())
    T = inputs.shape[1]
    return {"loss": total_loss / n, "accuracy": correct / n,
            "rate_hz": spikes / (n * T * cfg.n_hidden) * 1000.0 / cfg.dt_ms}


def dense(events, n_inputs: int) -> np.ndarray:
    """Spike events (``SpikeEvents``: CSR ``ptr`` (samples, steps + 1), ``units``) as (samples, steps, inputs) counts."""
    ptr = np.asarray(events.ptr)
    S, T = ptr.shape[0], ptr.shape[1] - 1
    starts, counts = ptr[:, :-1].ravel(), np.diff(ptr, axis=1).ravel()
    cell = np.repeat(np.arange(S * T), counts)  # (sample, step) of each event, flat
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    units = np.asarray(events.units)[np.repeat(starts, counts) + offset]
    out = np.zeros((S * T, n_inputs))
    np.add.at(out, (cell, units), 1.0)
    return out.reshape(S, T, n_inputs)
