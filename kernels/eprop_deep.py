"""Online e-prop for LIF and ALIF networks of several hidden layers, the learning signal broadcast to every layer.

The network is that of the deep BPTT kernel (:mod:`snnbatch.kernels.deep`): L hidden layers of
the neurons of lif.py / alif.py (ALIF when ``adapt_jump`` ≠ 0), layer k taking the spikes of
layer k−1 of the same step (layer 0 the input events) and, if ``recurrent[k]``, its own spikes
of the step before; the leaky readout reads the last layer::

    I^k[n+1] = α I^k[n] + W_in^k·S^{k−1}[n] (+ W_rec^k·S^k[n])     S^{−1} = the input events x[n]
    U^k[n+1] = β U^k[n] + I^k[n+1] − ϑ S^k[n],   S^k[n] = Θ(U^k[n] − ϑ − β_a A^k[n]),   A^k[n+1] = ρ A^k[n] + S^k[n]
    Io[n+1]  = α Io[n] + W_out·S^{L−1}[n],        Uo[n+1] = β Uo[n] + Io[n+1]

and the loss is e-prop's per-time-step loss (:mod:`snnbatch.kernels.eprop`): the mean over the
batch of (1/T) Σ_n cross-entropy(softmax(Uo[n+1]), label), whose readout gradient
``g_o[n] = (softmax(Uo[n+1])_o − [o = label]) / (T·B)`` is known at step n.

**The rule** (Bellec et al. 2020, "A solution to the learning dilemma for recurrent networks of
spiking neurons"). Every layer keeps the eligibility traces of eprop.py for its own synapses
(presynaptic: the layer below's spikes, or its own for ``w_rec``; the traces diagonal, neuron i
of that layer only, explicit recurrence ignored), filtered like the readout (ēI, ēU), and every
layer receives a learning signal broadcast from the output error of the same step::

    L^k_i[n] = Σ_o F^k[i, o] g_o[n]        ∇W^k_ji += L^k_i[n] ēU^k_ji[n]

with the feedback ``F^k`` (``feedback``):

* ``symmetric`` (the default): ``F^{L−1} = W_out`` for the last layer, so its update and w_out's
  are those of one-layer e-prop (eprop.py, bit for bit for one layer); for a layer below the last
  no symmetric path exists (its spikes reach the output through the layers above, whose
  dynamics e-prop does not carry back), so ``F^k`` is a fixed random matrix B^k;
* ``random``: the fixed random B^k for every layer, the last included (random e-prop).

The B^k are drawn from ``feedback_seed`` (the trainer derives it from the task seed), layer by
layer from the input side, B^k ~ N(0, (weight_scale·(1−β)/√H_k)²) of shape (H_k, O) — w_out's
initial scale for a readout of that layer — and never trained: the same seed gives the same
matrices, so a resumed task learns with the ones it started with. Read another way, layer k's
update is the exact per-step-loss gradient of its weights in a network where layer k read out
through B^k directly (and the layers above it were held fixed); w_out's gradient is always exact.

**Exactness.** Without recurrent weights the last layer's spikes depend only on its own weights
and the layer below, so with ``symmetric`` the last layer's and w_out's gradients *are* the
gradients of the per-step loss (as one-layer e-prop, the tests check them against finite
differences); the lower layers' updates are the broadcast rule above, not the gradient.

**Memory** is flat in T for every depth: per block of samples, layer k holds 4·n_pre·H_k trace
values for w_in^k (n_pre the layer below's size, n_inputs for layer 0), 4·H_k² for w_rec^k if
recurrent, its gradients and a few vectors; nothing has a time axis (:func:`workspace`, which
allocates them all with NumPy, so :mod:`tracemalloc` sees them). Compute is O(Σ_k (n_pre·H_k +
H_k²)) per step and sample.

**Arithmetic** as eprop.py: every operation in the weights' dtype (the loss sums in float64), no
fast-math, fixed order of summation; a batch is cut into a fixed number of blocks (block b takes
samples b, b + n_blocks, ...) whose sums are added in block order, so the bits do not depend on
the number of threads. A one-layer network runs exactly the operations of eprop.py and gives its
loss and gradients bit for bit (the same network as lif.py / alif.py).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import numba
import numpy as np

from . import _network, deep
from ._network import _spike_fn, _surrogate, jit, jit_parallel
from .eprop import _rows, _step_loss
from ._decay import decays
from .events import SpikeEvents

FEEDBACK = ("symmetric", "random")


@decays
class EpropDeepConfig(NamedTuple):
    n_inputs: int = 100
    n_hidden: tuple = (128, 128)  # hidden layer sizes, input side first
    n_outputs: int = 2
    dt: float = 1e-3
    tau_syn: float = 5e-3
    tau_mem: float = 10e-3
    threshold: float = 1.0
    recurrent: tuple = (False, False)  # per layer
    surrogate_scale: float = 100.0
    detach_reset: bool = True
    smooth: bool = False
    weight_scale: float = 7.0  # init std = weight_scale * (1 − β) / sqrt(fan_in), as lif.py
    n_blocks: int = 16
    dtype: str = "float32"
    recurrent_weight_scale: Optional[float] = None  # every w_rec's init std, as lif.py
    tau_adapt: float = 100e-3
    adapt_jump: float = 0.0  # β_a; 0: LIF neurons (alif.py's network with β_a = 0 has the same bits)
    feedback: str = "symmetric"  # symmetric or random: see the module docstring
    feedback_seed: int = 0  # the random broadcast matrices B^k are drawn from this


def layer_names(k: int) -> tuple[str, str]:
    """The names of layer k's input and recurrent weights: ``w_in``, ``w_rec`` for k = 0, else ``w_in{k}``, ``w_rec{k}``."""
    return deep.in_name(k), deep.rec_name(k)


def param_names(cfg: EpropDeepConfig) -> tuple[str, ...]:
    return deep.param_names(cfg)


def init_params(cfg: EpropDeepConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The initialisation of the deep BPTT kernel (deep.py): lif.py's Gaussian weights, layer by layer from the
    input side, w_in{k} then w_rec{k} if recurrent, w_out last; one layer draws exactly what lif.py draws."""
    _check(cfg)
    return deep.init_params(cfg, rng)


def feedback_matrices(cfg: EpropDeepConfig, w_out: np.ndarray) -> tuple[np.ndarray, ...]:
    """F^k of every layer (H_k, O): the fixed random B^k, or w_out for the last layer with ``symmetric``.

    The B^k are drawn for every layer whatever the feedback, so ``symmetric`` and ``random``
    share the matrices of the layers below the last.
    """
    _check(cfg)
    rng = np.random.default_rng(cfg.feedback_seed)
    scale = cfg.weight_scale * (1.0 - cfg.beta)
    dtype = np.dtype(cfg.dtype)
    fb = [rng.normal(0.0, scale / math.sqrt(H), (H, cfg.n_outputs)).astype(dtype) for H in cfg.n_hidden]
    if cfg.feedback == "symmetric":
        fb[-1] = w_out
    return tuple(np.ascontiguousarray(f, dtype) for f in fb)


def _check(cfg):
    if len(cfg.n_hidden) == 0 or len(cfg.recurrent) != len(cfg.n_hidden):
        raise ValueError(f"n_hidden {cfg.n_hidden!r} and recurrent {cfg.recurrent!r}: one entry per layer")
    if cfg.feedback not in FEEDBACK:
        raise ValueError(f"feedback {cfg.feedback!r}: one of {', '.join(FEEDBACK)}")


# --------------------------------------------------------------------------- one sample
#
# Per layer k and block, the vectors ``vh[k][b]`` (N_VH, H_k), the presynaptic vectors ``vi[k][b]`` (N_VI, n_pre)
# and, with gradients, the traces ``tin[k][b]`` (4, n_pre, H_k) and ``trec[k][b]`` (4, H_k, H_k) (the rows εU, εA,
# ēI, ēU of eprop._rows); per block the readout vectors ``vo[b]`` (N_VO, O). ``consts`` is _network.constants's
# (α, β, ρ, ϑ, β_a, scale, 1) in the weights' dtype. Per-layer arrays are tuples indexed by layer.

_I, _U, _A, _S, _SIG, _L, _FI, _FU, _EIR, _EUR, _ACTR = range(11)
_EI, _EU, _ACT = range(3)
_IO, _UO, _G, _LP, _SCORE = range(5)
N_VH, N_VI, N_VO = 11, 3, 5


def _sample_py(
    w_in, w_rec, fb, w_out, ptr, units, s, label, consts, recurrent, adaptive, detach_reset, smooth, with_grad,
    g_norm, b, vh, vi, vo, tin, trec, gw_in, gw_rec, gw_out,
):
    """Run sample ``s`` forward with the per-step loss in block ``b``'s workspace; with ``with_grad`` add its
    e-prop updates to the block's gradients. Returns (loss of the sample, 1 if classified correctly else 0)."""
    alpha, beta, rho, theta, jump, scale, one = consts
    zero = one - one
    T = ptr.shape[1] - 1
    n_layers = len(w_in)
    O = w_out.shape[1]
    factored = jump == 0.0 and detach_reset
    v_o = vo[b]
    v_o[:] = 0.0
    for k in range(n_layers):
        vh[k][b][:] = 0.0  # U[0] = I[0] = A[0] = 0
        vi[k][b][:] = 0.0
        if with_grad:
            tin[k][b][:] = 0.0
            if recurrent[k]:
                trec[k][b][:] = 0.0
    io, uo, g, lp, score = v_o[_IO], v_o[_UO], v_o[_G], v_o[_LP], v_o[_SCORE]
    top = vh[n_layers - 1][b]
    loss = 0.0
    for n in range(T):
        # S^k[n] and the surrogate derivative at z^k[n] = U^k[n] − ϑ (− β_a A^k[n]), every layer
        for k in range(n_layers):
            h = vh[k][b]
            for i in range(h.shape[1]):
                z = h[_U, i] - theta - jump * h[_A, i] if adaptive else h[_U, i] - theta
                h[_S, i] = _spike_fn(z, scale, one, smooth)
                h[_SIG, i] = _surrogate(z, scale, one)
        # the readout Uo[n+1] from the last layer's S[n], and the loss of the step
        for o in range(O):
            io[o] *= alpha
        for j in range(top.shape[1]):
            sj = top[_S, j]
            if sj != 0.0:
                for o in range(O):
                    io[o] += sj * w_out[j, o]
        for o in range(O):
            uo[o] = beta * uo[o] + io[o]
        loss += _step_loss(uo, label, g_norm, lp, score, g)
        if with_grad:
            # readout weights: exact, from the doubly filtered spikes of the last layer
            gwo = gw_out[b]
            for j in range(top.shape[1]):
                top[_FI, j] = alpha * top[_FI, j] + top[_S, j]
                top[_FU, j] = beta * top[_FU, j] + top[_FI, j]
                fu = top[_FU, j]
                for o in range(O):
                    gwo[j, o] += fu * g[o]
            for k in range(n_layers):
                h = vh[k][b]
                p = vi[k][b]
                f = fb[k]
                H = h.shape[1]
                sig, lsig = h[_SIG], h[_L]
                # the learning signal, broadcast from the output error of this step
                for i in range(H):
                    acc = zero
                    for o in range(O):
                        acc += f[i, o] * g[o]
                    lsig[i] = acc
                # input synapses: presynaptic input events (layer 0) or the spikes S^{k−1}[n] of the layer below
                if k == 0:
                    for j in range(p.shape[1]):
                        p[_EI, j] *= alpha
                    for e in range(ptr[s, n], ptr[s, n + 1]):
                        j = units[e]
                        p[_EI, j] += one
                        p[_ACT, j] = one
                else:
                    below = vh[k - 1][b]
                    for j in range(p.shape[1]):
                        sj = below[_S, j]
                        p[_EI, j] = alpha * p[_EI, j] + sj
                        if sj != 0.0:
                            p[_ACT, j] = one
                t = tin[k][b]
                gi = gw_in[k][b]
                for j in range(p.shape[1]):
                    if p[_ACT, j] != 0.0:  # a row is all zeros until its presynaptic unit first spikes
                        p[_EU, j] = _rows(
                            p[_EI, j], p[_EU, j], t[0, j], t[1, j], t[2, j], t[3, j], sig, lsig, gi[j],
                            alpha, beta, rho, theta, jump, detach_reset, factored,
                        )
                # recurrent synapses: presynaptic S^k_j[n], explicit recurrence ignored
                if recurrent[k]:
                    for j in range(H):
                        h[_EIR, j] = alpha * h[_EIR, j] + h[_S, j]
                        if h[_S, j] != 0.0:
                            h[_ACTR, j] = one
                    t = trec[k][b]
                    gr = gw_rec[k][b]
                    for j in range(H):
                        if h[_ACTR, j] != 0.0:
                            h[_EUR, j] = _rows(
                                h[_EIR, j], h[_EUR, j], t[0, j], t[1, j], t[2, j], t[3, j], sig, lsig, gr[j],
                                alpha, beta, rho, theta, jump, detach_reset, factored,
                            )
        if n + 1 == T:
            break
        # every layer to step n+1: I^k[n+1] = αI^k[n] + W_in^k·S^{k−1}[n] (+ W_rec^k·S^k[n]), then U, A
        for k in range(n_layers):
            h = vh[k][b]
            H = h.shape[1]
            i_syn = h[_I]  # holds αI^k[n]
            w = w_in[k]
            if k == 0:
                for e in range(ptr[s, n], ptr[s, n + 1]):
                    row = w[units[e]]
                    for i in range(H):
                        i_syn[i] += row[i]
            else:
                below = vh[k - 1][b]
                for j in range(below.shape[1]):
                    sj = below[_S, j]
                    if sj != 0.0:
                        row = w[j]
                        for i in range(H):
                            i_syn[i] += sj * row[i]
            if recurrent[k]:
                wr = w_rec[k]
                for j in range(H):
                    sj = h[_S, j]
                    if sj != 0.0:
                        row = wr[j]
                        for i in range(H):
                            i_syn[i] += sj * row[i]
            for i in range(H):
                h[_U, i] = beta * h[_U, i] + i_syn[i] - theta * h[_S, i]
                if adaptive:
                    h[_A, i] = rho * h[_A, i] + h[_S, i]
                i_syn[i] *= alpha
    best = 0
    for o in range(1, O):
        if score[o] > score[best]:
            best = o
    return loss / T, 1 if best == label else 0


def _batch_py(
    w_in, w_rec, fb, w_out, ptr, units, index, labels, consts, recurrent, adaptive, detach_reset, smooth, with_grad,
    vh, vi, vo, tin, trec, gw_in, gw_rec, gw_out,
):
    """E-prop over a batch; block b handles samples b, b+n_blocks, ... with its own workspace and gradients."""
    B = index.shape[0]
    n_blocks = vo.shape[0]
    g_norm = 1.0 / ((ptr.shape[1] - 1) * B)
    losses = np.zeros(n_blocks)
    correct = np.zeros(n_blocks, np.int64)
    for b in numba.prange(n_blocks):
        for i in range(b, B, n_blocks):
            loss, ok = _sample(
                w_in, w_rec, fb, w_out, ptr, units, index[i], labels[i], consts, recurrent, adaptive, detach_reset,
                smooth, with_grad, g_norm, b, vh, vi, vo, tin, trec, gw_in, gw_rec, gw_out,
            )
            losses[b] += loss
            correct[b] += ok
    return losses, correct  # summed by the caller in a fixed order, not by a parallel reduction


_sample = jit(_sample_py)
_batch = jit_parallel(_batch_py)


# --------------------------------------------------------------------------- public API


def _pre_sizes(cfg) -> tuple[int, ...]:
    return (cfg.n_inputs,) + tuple(cfg.n_hidden[:-1])


def workspace(cfg: EpropDeepConfig, n_blocks: int, with_grad: bool = True) -> dict[str, tuple | np.ndarray]:
    """Every array e-prop works in, per block: per layer its vectors, its traces and gradients (with
    ``with_grad``), a tuple over layers; the readout's vectors and w_out's gradient.

    None of them depends on the number of time steps.
    """
    _check(cfg)
    dtype = np.dtype(cfg.dtype)
    nb = n_blocks if with_grad else 1
    O = cfg.n_outputs
    layers = list(zip(_pre_sizes(cfg), cfg.n_hidden, cfg.recurrent))
    none = (n_blocks, 1, 1, 1)
    return {
        "vh": tuple(np.zeros((n_blocks, N_VH, H), dtype) for _, H, _ in layers),
        "vi": tuple(np.zeros((n_blocks, N_VI, P), dtype) for P, _, _ in layers),
        "vo": np.zeros((n_blocks, N_VO, O), dtype),
        "tin": tuple(np.zeros((n_blocks, 4, P, H) if with_grad else none, dtype) for P, H, _ in layers),
        "trec": tuple(np.zeros((n_blocks, 4, H, H) if with_grad and r else none, dtype) for _, H, r in layers),
        "gw_in": tuple(np.zeros((nb, P, H), dtype) for P, H, _ in layers),
        "gw_rec": tuple(np.zeros((nb, H, H) if r else (nb, 1, 1), dtype) for _, H, r in layers),
        "gw_out": np.zeros((nb, cfg.n_hidden[-1], O), dtype),
    }


def workspace_bytes(cfg: EpropDeepConfig, n_blocks: int, with_grad: bool = True) -> int:
    """The bytes of :func:`workspace`'s arrays."""
    total = 0
    for v in workspace(cfg, n_blocks, with_grad).values():
        total += sum(a.nbytes for a in v) if isinstance(v, tuple) else v.nbytes
    return total


def weights(params, cfg: EpropDeepConfig):
    """(w_in per layer, w_rec per layer (a 1×1 zero placeholder where not recurrent), w_out), C-contiguous."""
    w_out = np.ascontiguousarray(params["w_out"])
    dtype = w_out.dtype
    w_in, w_rec = [], []
    for k, rec in enumerate(cfg.recurrent):
        name_in, name_rec = layer_names(k)
        w_in.append(np.ascontiguousarray(params[name_in], dtype))
        w_rec.append(np.ascontiguousarray(params[name_rec], dtype) if rec else np.zeros((1, 1), dtype))
    return tuple(w_in), tuple(w_rec), w_out


def _run(params, inputs: SpikeEvents, labels, cfg: EpropDeepConfig, index, with_grad: bool):
    index, labels = _network.select(inputs, labels, index)
    w_in, w_rec, w_out = weights(params, cfg)
    consts = _network.constants(cfg, w_out.dtype)
    nb = _network.n_blocks(cfg, len(index))
    ws = workspace(cfg, nb, with_grad)
    losses, correct = _batch(
        w_in, w_rec, feedback_matrices(cfg, w_out), w_out, inputs.ptr, inputs.units, index, labels, consts,
        np.array(cfg.recurrent, np.bool_), cfg.adapt_jump != 0.0, cfg.detach_reset, cfg.smooth, with_grad,
        ws["vh"], ws["vi"], ws["vo"], ws["tin"], ws["trec"], ws["gw_in"], ws["gw_rec"], ws["gw_out"],
    )
    grads = None
    if with_grad:
        grads = {}
        for k, rec in enumerate(cfg.recurrent):
            name_in, name_rec = layer_names(k)
            grads[name_in] = _network.ordered_sum(ws["gw_in"][k])
            if rec:
                grads[name_rec] = _network.ordered_sum(ws["gw_rec"][k])
        grads["w_out"] = _network.ordered_sum(ws["gw_out"])
    return float(_network.ordered_sum(losses) / len(index)), int(correct.sum()) / len(index), grads


def loss_and_grad(params, inputs: SpikeEvents, labels, cfg: EpropDeepConfig, index=None):
    """Per-step loss and the e-prop updates ``(loss, grads)``, ``grads`` keyed like ``params``."""
    loss, _, grads = _run(params, inputs, labels, cfg, index, True)
    return loss, grads


def loss_acc_grad(params, inputs: SpikeEvents, labels, cfg: EpropDeepConfig, index=None):
    """``(loss, accuracy, grads)`` of one e-prop pass over the samples ``index``."""
    return _run(params, inputs, labels, cfg, index, True)


def evaluate(params, inputs: SpikeEvents, labels, cfg: EpropDeepConfig, index=None) -> dict[str, float]:
    """Per-step loss and accuracy (``argmax_o Σ_n log softmax(Uo[n+1])_o``) without gradients."""
    loss, acc, _ = _run(params, inputs, labels, cfg, index, False)
    return {"loss": loss, "accuracy": acc}
