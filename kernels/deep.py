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

Parameters: ``w_in`` (n_inputs, H_0) and ``w_rec`` (H_0, H_0) for layer 0,
``w_in{k}`` (H_{k−1}, H_k) and ``w_rec{k}`` (H_k, H_k) for layer k ≥ 1 (``w_rec*``
only for recurrent layers), ``w_out`` (H_{L−1}, n_outputs).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


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
    surrogate_cutoff: float = 0.0  # the sparse backward is for one hidden layer: 0 only

    @property
    def alpha(self) -> float:
        return math.exp(-self.dt / self.tau_syn)

    @property
    def beta(self) -> float:
        return math.exp(-self.dt / self.tau_mem)


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
    surrogate_cutoff: float = 0.0

    @property
    def alpha(self) -> float:
        return math.exp(-self.dt / self.tau_syn)

    @property
    def beta(self) -> float:
        return math.exp(-self.dt / self.tau_mem)

    @property
    def rho(self) -> float:
        return math.exp(-self.dt / self.tau_adapt)


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

