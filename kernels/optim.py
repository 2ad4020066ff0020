"""Optimizers over parameter dicts, in place and deterministic.

State is a flat ``dict[str, np.ndarray]`` so that it checkpoints like the
parameters: ``"m/<name>"``, ``"v/<name>"`` and the step count ``"t"``.

Besides the two optimizers: the learning rate of a schedule at an iteration
(:func:`scheduled_lr`, a function of the iteration count alone, so it needs no
state of its own), gradient clipping by the global norm (:func:`clip_by_global_norm`)
and decoupled weight decay (the ``weight_decay`` argument of both steps: Adam with
it is AdamW, Loshchilov & Hutter 2019).
"""
from __future__ import annotations

import math

import numpy as np

SCHEDULES = ("constant", "step", "cosine")


def scheduled_lr(lr: float, iteration: int, total: int, kind: str = "constant", warmup: int = 0,
                 every: int | None = None, factor: float = 0.1, to: float = 0.0) -> float:
    """The learning rate of iteration ``iteration`` (0-based) of ``total``.

    * warm-up: for ``i < warmup``, ``lr·(i+1)/warmup`` (linear, reaching ``lr`` at ``i = warmup−1``);
    * after it, with ``j = i − warmup`` the iterations since the warm-up ended:
      ``constant``: ``lr``; ``step``: ``lr·factor^⌊j/every⌋``;
      ``cosine``: ``lr·(to + (1−to)·(1 + cos(π·j/(total−warmup)))/2)``, from ``lr`` down
      towards ``to·lr``, which it would reach one iteration after the last.

    ``constant`` without warm-up returns ``lr`` itself.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {kind!r} (choose from: {', '.join(SCHEDULES)})")
    if iteration < warmup:
        return lr * (iteration + 1) / warmup
    j = iteration - warmup
    if kind == "step":
        if every is None:
            raise ValueError("a step schedule needs 'every'")
        return lr * factor ** (j // every)
    if kind == "cosine":
        span = max(1, total - warmup)
        progress = min(1.0, j / span)
        return lr * (to + (1.0 - to) * 0.5 * (1.0 + math.cos(math.pi * progress)))
    return lr


def global_norm(grads: dict[str, np.ndarray]) -> float:
    """√(Σ over every array of Σ g²), summed in float64 in the dict's order (deterministic)."""
    total = 0.0
    for g in grads.values():
        total += float(np.sum(np.square(g, dtype=np.float64)))
    return math.sqrt(total)


def clip_by_global_norm(grads: dict[str, np.ndarray], max_norm: float) -> tuple[dict[str, np.ndarray], float]:
    """``(grads, norm)``: the gradients scaled by ``max_norm/norm`` when their global norm exceeds
    ``max_norm`` (new arrays, in each gradient's dtype), else the same arrays; ``norm`` before clipping."""
    norm = global_norm(grads)
    if not norm > max_norm:
        return grads, norm
    coef = max_norm / norm
    return {k: g * g.dtype.type(coef) for k, g in grads.items()}, norm


def decay(params: dict[str, np.ndarray], lr: float, weight_decay: float,
          lr_scale: dict[str, float] | None = None) -> None:
    """Decoupled weight decay, in place: ``p ← p·(1 − lr·weight_decay)`` for every parameter
    (``lr`` times its factor in ``lr_scale``, if it has one)."""
    if weight_decay == 0:
        return
    for name, p in params.items():
        rate = lr * lr_scale[name] if lr_scale and name in lr_scale else lr
        p *= p.dtype.type(1.0 - rate * weight_decay)


def adam_init(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    state = {"t": np.zeros((), dtype=np.int64)}
    for name, p in params.items():
        state[f"m/{name}"] = np.zeros_like(p)
        state[f"v/{name}"] = np.zeros_like(p)
    return state


def adam_step(
    params: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    state: dict[str, np.ndarray],
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    lr_scale: dict[str, float] | None = None,
) -> None:
    """One Adam step (Kingma & Ba 2015), updating ``params`` and ``state`` in place.

    With ``weight_decay`` > 0 it is AdamW: each parameter first shrinks by ``lr·weight_decay``
    of itself (as PyTorch's ``AdamW`` does), then takes the Adam step; 0 is Adam exactly.
    ``lr_scale``: per parameter name, a factor on ``lr`` (names not in it take ``lr`` itself),
    in the decay and in the step.
    """
    decay(params, lr, weight_decay, lr_scale)
    state["t"][...] = state["t"] + 1
    t = int(state["t"])
    c1 = 1.0 - beta1**t
    c2 = 1.0 - beta2**t
    for name, p in params.items():
        g = grads[name]
        m, v = state[f"m/{name}"], state[f"v/{name}"]
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        rate = lr * lr_scale[name] if lr_scale and name in lr_scale else lr
        p -= (rate / c1) * m / (np.sqrt(v / c2) + eps)


def sgd_step(params, grads, state, lr: float, weight_decay: float = 0.0,
             lr_scale: dict[str, float] | None = None) -> None:
    """Plain gradient descent; ``state`` only counts steps. ``weight_decay``, ``lr_scale``: as in :func:`adam_step`."""
    decay(params, lr, weight_decay, lr_scale)
    state["t"][...] = state["t"] + 1
    for name, p in params.items():
        p -= (lr * lr_scale[name] if lr_scale and name in lr_scale else lr) * grads[name]


def sgd_init(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"t": np.zeros((), dtype=np.int64)}


OPTIMIZERS = {"adam": (adam_init, adam_step), "sgd": (sgd_init, sgd_step)}
