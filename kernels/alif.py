"""Adaptive LIF (ALIF) network with current synapses, trained by surrogate-gradient BPTT.

The LIF network of :mod:`snnbatch.kernels.lif` with one more state variable
per hidden neuron, an adaptation trace ``A`` that raises the threshold after
each spike (Bellec et al. 2018, "Long short-term memory and learning-to-learn
in networks of spiking neurons"; seed 001)::

    S[n]   = Θ(U[n] − ϑ − β_a A[n])                effective threshold ϑ + β_a A[n]   (U[0] = I[0] = A[0] = 0)
    I[n+1] = α I[n] + W_in·x[n] (+ W_rec·S[n])     α = exp(−dt/τ_syn)
    U[n+1] = β U[n] + I[n+1] − ϑ S[n]              β = exp(−dt/τ_mem), reset by subtracting ϑ (as in lif.py)
    A[n+1] = ρ A[n] + S[n]                         ρ = exp(−dt/τ_adapt); each spike raises the threshold by β_a
    Io[n+1] = α Io[n] + W_out·S[n]                 leaky, non-spiking readout (as in lif.py)
    Uo[n+1] = β Uo[n] + Io[n+1]
    loss    = cross-entropy(softmax_k(max_n Uo_k[n]), label)     (mean over the batch)

With ``adapt_jump = 0`` this is exactly the LIF network of lif.py.

Gradients are BPTT written by hand. Besides the adjoints of lif.py
(``dL/dU``, ``dL/dI``) the backward pass carries ``dL/dA``; a spike reaches
the loss through the readout, the recurrent weights, the reset (unless
``detach_reset``) and the adaptation trace, and the threshold passes
gradient back to ``A``::

    dL/dS[n] = W_out·dL/dIo[n+1] (+ W_rec·dL/dI[n+1]) (− ϑ dL/dU[n+1]) + dL/dA[n+1]
    dL/dU[n] = β dL/dU[n+1] + σ'(z[n]) dL/dS[n]              z[n] = U[n] − ϑ − β_a A[n]
    dL/dA[n] = ρ dL/dA[n+1] − β_a σ'(z[n]) dL/dS[n]

The gradient through the adaptation trace is never detached. ``smooth=True``
makes the forward pass differentiable (``Θ`` replaced by the function whose
derivative the surrogate is), so with ``detach_reset=False`` the backward
pass is the exact gradient, which the tests check against finite differences.

The compiled network is that of lif.py (_network.py, with the adaptation
switched on): the same layout, input events, precision and fixed reduction
blocks.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _network, lif
from ._decay import decays
from .events import SpikeEvents


@decays
class ALIFConfig(NamedTuple):
    n_inputs: int = 100
    n_hidden: int = 128
    n_outputs: int = 2
    dt: float = 1e-3
    tau_syn: float = 5e-3
    tau_mem: float = 10e-3
    tau_adapt: float = 100e-3
    adapt_jump: float = 0.2  # β_a: threshold increase per spike
    threshold: float = 1.0
    recurrent: bool = False
    surrogate_scale: float = 100.0
    detach_reset: bool = True
    smooth: bool = False
    weight_scale: float = 7.0  # init std = weight_scale * (1 − β) / sqrt(fan_in), as lif.py
    n_blocks: int = 16
    dtype: str = "float32"
    recurrent_weight_scale: float | None = None  # w_rec's init std, as lif.py
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
    adaptation: np.ndarray  # (batch, T, n_hidden): A[n]
    readout: np.ndarray  # (batch, T, n_outputs): Uo[n + 1]


def param_names(cfg: ALIFConfig) -> tuple[str, ...]:
    return lif.param_names(cfg)


def init_params(cfg: ALIFConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The initialisation of lif.py (the same draws for the same ``rng``)."""
    return lif.init_params(cfg, rng)


# --------------------------------------------------------------------------- public API


def forward(params: dict[str, np.ndarray], inputs: SpikeEvents, cfg: ALIFConfig, index=None) -> Trace:
    """Hidden spikes, voltages and adaptation and readout voltages for the samples ``index`` (default: all)."""
    S, U, A, Uo = _network.forward_arrays(params, inputs, cfg, index)
    return Trace(S, U, A, Uo)


def loss_and_grad(params, inputs: SpikeEvents, labels, cfg: ALIFConfig, index=None):
    """``(loss, grads)`` with ``grads`` keyed like ``params``; ``index`` selects samples of ``inputs``.

    ``labels``: one class per sample, or with ``readout="mse"`` the target trajectories (samples, steps,
    outputs) of the readout voltages (for all samples or for those of ``index``).
    """
    loss, _, grads = _network.run(params, inputs, labels, cfg, index, True)
    return loss, grads


def loss_acc_grad(params, inputs: SpikeEvents, labels, cfg: ALIFConfig, index=None):
    """``(loss, accuracy, grads)``: what a training step needs, in one pass."""
    return _network.run(params, inputs, labels, cfg, index, True)


def evaluate(params, inputs: SpikeEvents, labels, cfg: ALIFConfig, index=None) -> dict[str, float]:
    """Loss and accuracy without gradients."""
    loss, acc, _ = _network.run(params, inputs, labels, cfg, index, False)
    return {"loss": loss, "accuracy": acc}
