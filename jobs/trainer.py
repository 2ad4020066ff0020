"""The trainer interface every algorithm implements, and the registry.

A trainer turns a :class:`~snnbatch.jobs.config.TaskConfig` into training
iterations. All of a run's evolving state lives in a :class:`TrainState`
(arrays, one numpy ``Generator``, the iteration and the metric history), so
that checkpointing is the same for every algorithm and resuming from a
checkpoint gives the same bits as never stopping.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

from .config import TaskConfig


@dataclass
class TrainState:
    iteration: int
    arrays: dict[str, np.ndarray]  # parameters, optimizer state, data order, ...
    rng: np.random.Generator
    metrics: dict[str, list[float]] = field(default_factory=dict)

    def record(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.metrics.setdefault(k, []).append(float(v))


class Trainer:
    """Base class: subclasses set ``total_iterations`` and implement the three methods."""

    total_iterations: int

    def __init__(self, config: TaskConfig):
        self.config = config

    def init_state(self) -> TrainState:  # pragma: no cover - interface
        raise NotImplementedError

    def step(self, state: TrainState) -> dict[str, float]:  # pragma: no cover - interface
        """One training iteration, in place; returns its metrics (recorded by the caller)."""
        raise NotImplementedError

    def evaluate(self, state: TrainState) -> dict[str, float]:  # pragma: no cover - interface
        """Final, held-out metrics (e.g. ``test_accuracy``)."""
        raise NotImplementedError


class GradientTrainer(Trainer):
    """A trainer whose state is parameters (``params/<name>``) and optimizer state (``opt/<name>``).

    Subclasses build their kernel in ``__init__``, start from :meth:`new_state` and call
    :meth:`apply_gradients` in ``step``.
    """

    def __init__(self, config: TaskConfig):
        super().__init__(config)
        from ..kernels import optim

        self.opt_init, self.opt_step = optim.OPTIMIZERS[config.training.optimizer]

    def seeds(self) -> list[np.random.SeedSequence]:
        """Two independent streams from the task seed: parameter init, then everything else."""
        return np.random.SeedSequence(self.config.seed).spawn(2)

    def new_state(self, params: dict[str, np.ndarray]) -> TrainState:
        arrays = {f"params/{k}": v for k, v in params.items()}
        arrays.update({f"opt/{k}": v for k, v in self.opt_init(params).items()})
        return TrainState(0, arrays, np.random.default_rng(self.seeds()[1]))

    @staticmethod
    def split(state: TrainState) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Views of the parameter and optimizer arrays, keyed without their prefixes."""
        params = {k[7:]: v for k, v in state.arrays.items() if k.startswith("params/")}
        opt = {k[4:]: v for k, v in state.arrays.items() if k.startswith("opt/")}
        return params, opt

    def apply_gradients(self, state: TrainState, grads: dict[str, np.ndarray]) -> None:
        """One optimizer step, in place on the state's arrays, and count the iteration."""
        params, opt = self.split(state)
        t = self.config.training
        if t.optimizer == "adam":
            self.opt_step(params, grads, opt, t.lr, t.beta1, t.beta2)
        else:
            self.opt_step(params, grads, opt, t.lr)
        state.iteration += 1


# (model type, learning rule) -> "module:Class", imported only when used so that
# thread settings are in place before Numba loads.
TRAINERS: dict[tuple[str, str], str] = {
    ("lif", "bptt"): "snnbatch.jobs.lif_bptt:LIFBPTTTrainer",
    ("alif", "bptt"): "snnbatch.jobs.alif_bptt:ALIFBPTTTrainer",
    ("lif", "eprop"): "snnbatch.jobs.eprop:EpropTrainer",
    ("alif", "eprop"): "snnbatch.jobs.eprop:EpropTrainer",
    ("dendritic", "adjoint"): "snnbatch.jobs.dendritic_adjoint:DendriticAdjointTrainer",
    ("force", "rls"): "snnbatch.jobs.force_rls:ForceRLSTrainer",
}


def trainer_class(model_type: str, rule: str) -> type[Trainer]:
    module, name = TRAINERS[(model_type, rule)].split(":")
    return getattr(importlib.import_module(module), name)


def build_trainer(config: TaskConfig) -> Trainer:
    return trainer_class(config.model.type, config.learning.rule)(config)


def epoch_order(state: TrainState, n_samples: int, batch_size: int) -> np.ndarray:
    """Indices of this iteration's batch; a new permutation from ``state.rng`` at each epoch start.

    The current permutation is part of the state (``arrays["data_order"]``), so a
    resumed run draws exactly the batches the uninterrupted one would.
    """
    per_epoch = max(1, n_samples // batch_size)
    pos = state.iteration % per_epoch
    if pos == 0 or "data_order" not in state.arrays:
        state.arrays["data_order"] = state.rng.permutation(n_samples).astype(np.int64)
    return state.arrays["data_order"][pos * batch_size : (pos + 1) * batch_size]


def iterations_per_epoch(n_samples: int, batch_size: int) -> int:
    return max(1, n_samples // batch_size)
