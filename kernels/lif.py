"""Discrete-time LIF network with current synapses, trained by surrogate-gradient BPTT.

The model of Zenke's "Functional circuit and network models" (seed 004),
written out for one sample and time steps n = 0 .. T-1::

    S[n]   = Θ(U[n] − ϑ)                          hidden spikes (U[0] = I[0] = 0)
    I[n+1] = α I[n] + W_in·x[n] (+ W_rec·S[n])     synaptic current, α = exp(−dt/τ_syn)
    U[n+1] = β U[n] + I[n+1] − ϑ S[n]              membrane, β = exp(−dt/τ_mem), reset by subtraction
    Io[n+1] = α Io[n] + W_out·S[n]                 leaky, non-spiking readout
    Uo[n+1] = β Uo[n] + Io[n+1]
    loss    = cross-entropy(softmax_k(max_n Uo_k[n]), label)     (mean over the batch)

(``readout: max``, the default; readout.py has the others: mean, last, per_step, count).

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
depend on the number of threads. The compiled network, its precision and its
layout are in ``_network.py``, shared with alif.py (this network with an
adaptive threshold) and eprop.py.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import _network
from ._decay import decays
from .events import SpikeEvents

# BPTT keeps the history of ``GROUP`` samples per block, whose backward passes run together
# (_network._group_backward_py); benchmarks/bench_scaling.py counts these arrays.
GROUP = _network.GROUP
_group_arrays = _network._group_arrays


@decays
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
    recurrent_weight_scale: float | None = None  # w_rec's init std = this * (1 − β) / sqrt(n_hidden); None: weight_scale
    readout: str = "max"  # the readout and its loss: max, mean, last, per_step, count; mse: labels are targets (readout.py)
    surrogate_cutoff: float = 0.0  # surrogate derivatives below this count as zero (sparse backward); 0: exact
    # the activity penalty of BPTT's training loss (_network._activity_py): per sample, Σ_i over hidden neurons of
    # strength·relu(c_i − upper)² + strength·relu(lower − c_i)², c_i the neuron's spike count; strength 0: off
    activity_upper: float = 10.0
    activity_upper_strength: float = 0.0
    activity_lower: float = 1.0
    activity_lower_strength: float = 0.0


class Trace(NamedTuple):
    spikes: np.ndarray  # (batch, T, n_hidden): S[n]
    voltages: np.ndarray  # (batch, T, n_hidden): U[n]
    readout: np.ndarray  # (batch, T, n_outputs): Uo[n + 1]


PARAM_NAMES = ("w_in", "w_rec", "w_out")


def param_names(cfg: LIFConfig) -> tuple[str, ...]:
    return PARAM_NAMES if cfg.recurrent else ("w_in", "w_out")


def init_params(cfg: LIFConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Gaussian weights scaled as in the SpyTorch tutorial: std = weight_scale·(1 − β)/√fan-in.

    The recurrent weights have their own scale, ``recurrent_weight_scale`` (std =
    recurrent_weight_scale·(1 − β)/√n_hidden); ``None`` takes ``weight_scale``, the
    initialisation of every run made before the key existed, bit for bit. The draws
    are the same whatever the scale (w_in, then w_rec, then w_out, each a standard
    normal times its std), so two scales differ only in w_rec.
    """
    scale = cfg.weight_scale * (1.0 - cfg.beta)
    dtype = np.dtype(cfg.dtype)
    params = {"w_in": rng.normal(0.0, scale / math.sqrt(cfg.n_inputs), (cfg.n_inputs, cfg.n_hidden))}
    if cfg.recurrent:
        rec = scale if cfg.recurrent_weight_scale is None else cfg.recurrent_weight_scale * (1.0 - cfg.beta)
        params["w_rec"] = rng.normal(0.0, rec / math.sqrt(cfg.n_hidden), (cfg.n_hidden, cfg.n_hidden))
    params["w_out"] = rng.normal(0.0, scale / math.sqrt(cfg.n_hidden), (cfg.n_hidden, cfg.n_outputs))
    return {k: v.astype(dtype) for k, v in params.items()}


def _constants(cfg, dtype):
    """α, β, ϑ, the surrogate's scale and 1 in the weights' dtype (benchmarks/bench_bound.py uses them)."""
    alpha, beta, _, theta, _, scale, one = _network.constants(cfg, dtype)
    return alpha, beta, theta, scale, one


# --------------------------------------------------------------------------- public API


def forward(params: dict[str, np.ndarray], inputs: SpikeEvents, cfg: LIFConfig, index=None) -> Trace:
    """Hidden spikes and voltages and readout voltages for the samples ``index`` (default: all)."""
    S, U, _, Uo = _network.forward_arrays(params, inputs, cfg, index)
    return Trace(S, U, Uo)


def loss_and_grad(params, inputs: SpikeEvents, labels, cfg: LIFConfig, index=None):
    """``(loss, grads)`` with ``grads`` keyed like ``params``; ``index`` selects samples of ``inputs``.

    ``labels``: one class per sample, or with ``readout="mse"`` the target trajectories (samples, steps,
    outputs) of the readout voltages (for all samples or for those of ``index``).
    """
    loss, _, grads = _network.run(params, inputs, labels, cfg, index, True)
    return loss, grads


def loss_acc_grad(params, inputs: SpikeEvents, labels, cfg: LIFConfig, index=None):
    """``(loss, accuracy, grads)``: what a training step needs, in one pass."""
    return _network.run(params, inputs, labels, cfg, index, True)


def evaluate(params, inputs: SpikeEvents, labels, cfg: LIFConfig, index=None) -> dict[str, float]:
    """Loss and accuracy without gradients."""
    loss, acc, _ = _network.run(params, inputs, labels, cfg, index, False)
    return {"loss": loss, "accuracy": acc}
