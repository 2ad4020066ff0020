"""Optimizers over parameter dicts, in place and deterministic.

State is a flat ``dict[str, np.ndarray]`` so that it checkpoints like the
parameters: ``"m/<name>"``, ``"v/<name>"`` and the step count ``"t"``.
"""
from __future__ import annotations

import numpy as np


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
) -> None:
    """One Adam step (Kingma & Ba 2015), updating ``params`` and ``state`` in place."""
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
        p -= (lr / c1) * m / (np.sqrt(v / c2) + eps)


def sgd_step(params, grads, state, lr: float) -> None:
    """Plain gradient descent; ``state`` only counts steps."""
    state["t"][...] = state["t"] + 1
    for name, p in params.items():
        p -= lr * grads[name]


def sgd_init(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {"t": np.zeros((), dtype=np.int64)}


OPTIMIZERS = {"adam": (adam_init, adam_step), "sgd": (sgd_init, sgd_step)}
