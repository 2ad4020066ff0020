"""The trainer contract, and what the built-in trainers share.

A trainer is built from the task's typed config (``Trainer(config)``: its
``model``, ``dataset``, ``learning`` and ``training`` sections) and has three
methods::

    init_state()   -> TrainState, or (arrays, rng): the named arrays and one numpy Generator
    step(state)    -> {metric: float}     one training iteration, in place on state.arrays / state.rng
    evaluate(state)-> {metric: float}     the final, held-out metrics

and ``total_iterations`` (optional: without it the runner takes
``training.iterations``, or ``training.epochs`` × ``iterations_per_epoch``).

The runner owns everything else: it counts the iterations (``state.iteration``
is read-only for a trainer), records the metric history, decides when to
checkpoint, saves the arrays and the Generator's state, holds the lease and
answers signals. A trainer whose evolving state lives in the arrays and the
Generator it returns resumes bit for bit after any stop, without a line of
checkpoint code; :func:`snnbatch.testing.check_trainer` checks that it does.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import registry
from .state import TrainState

__all__ = ["Trainer", "GradientTrainer", "TrainState", "kernel_config", "build_trainer", "build_dataset",
           "epoch_order", "iterations_per_epoch", "initial_state", "total_iterations"]


class Trainer:
    """Base class of a trainer (subclassing it is optional: the contract is the three methods)."""

    def __init__(self, config):
        self.config = config

    def init_state(self) -> TrainState:  # pragma: no cover - interface
        raise NotImplementedError

    def step(self, state: TrainState) -> dict[str, float]:  # pragma: no cover - interface
        """One training iteration, in place; returns its metrics (recorded by the runner)."""
        raise NotImplementedError

    def evaluate(self, state: TrainState) -> dict[str, float]:  # pragma: no cover - interface
        """Final, held-out metrics (e.g. ``test_accuracy``)."""
        raise NotImplementedError

    def seeds(self) -> list[np.random.SeedSequence]:
        """Two independent streams from the task seed: parameter init, then everything else."""
        return np.random.SeedSequence(self.config.seed).spawn(2)


class GradientTrainer(Trainer):
    """A trainer whose state is parameters (``params/<name>``) and optimizer state (``opt/<name>``).

    Subclasses build their kernel in ``__init__``, start from :meth:`new_state` and call
    :meth:`apply_gradients` in ``step``.
    """

    lr_scale: dict[str, float] = {}
    """per parameter name, its learning rate relative to ``training.lr`` (1 for names not in it)"""

    def __init__(self, config):
        super().__init__(config)
        from ..kernels import optim

        self.opt_init, self.opt_step = optim.OPTIMIZERS[config.training.optimizer]

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

    def learning_rate(self, state: TrainState) -> float:
        """This iteration's learning rate: ``training.lr`` under ``training.lr_schedule``.

        A function of ``state.iteration`` and the training length alone, so a resumed task
        takes the same rates as an uninterrupted one.
        """
        t = self.config.training
        if t.lr_schedule is None:
            return t.lr
        return t.lr_schedule.lr(t.lr, state.iteration, total_iterations(self, t))

    def apply_gradients(self, state: TrainState, grads: dict[str, np.ndarray]) -> None:
        """One optimizer step, in place on the state's arrays (the runner counts the iteration).

        In this order: the gradients are clipped to ``training.clip_grad_norm`` (their global
        norm over all parameters), then the optimizer steps at :meth:`learning_rate` with
        ``training.weight_decay`` (decoupled: AdamW for Adam).
        """
        from ..kernels import optim

        params, opt = self.split(state)
        t = self.config.training
        if t.clip_grad_norm is not None:
            grads, _ = optim.clip_by_global_norm(grads, t.clip_grad_norm)
        lr = self.learning_rate(state)
        extra = {"weight_decay": t.weight_decay} if t.weight_decay else {}
        if self.lr_scale:
            extra["lr_scale"] = self.lr_scale
        if t.optimizer == "adam":
            self.opt_step(params, grads, opt, lr, t.beta1, t.beta2, **extra)
        else:
            self.opt_step(params, grads, opt, lr, **extra)


def kernel_config(cls, *sections, **given):
    """A kernel's NamedTuple config, each field taken from ``given`` or else from the first section
    that declares a field of that name: parameters are declared once, on the sections."""
    values: dict[str, Any] = {}
    for name in cls._fields:
        if name in given:
            values[name] = given.pop(name)
            continue
        for section in sections:
            if name in type(section).model_fields:
                values[name] = getattr(section, name)
                break
    if given:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(given))}")
    return cls(**values)


def build_trainer(config):
    """The trainer of the task's (model type, learning rule), as the registry declares it."""
    alg = registry.algorithm(config.model.type)
    rule = alg.rule(config.learning.rule)
    if rule is None:  # pragma: no cover - the config's validation rejects it first
        raise KeyError(f"model {config.model.type!r} has no learning rule {config.learning.rule!r}")
    return rule.trainer_class()(config)


def build_dataset(section):
    """The data of a ``dataset`` section, built by the function its declaration names."""
    return registry.dataset(section.type).builder()(section)


def initial_state(trainer) -> TrainState:
    """The trainer's initial state: a TrainState, or ``(arrays, rng)`` made into one at iteration 0."""
    state = trainer.init_state()
    if isinstance(state, TrainState):
        if state.iteration != 0 or state.metrics:
            raise RuntimeError(f"{type(trainer).__name__}.init_state must start at iteration 0 with no metrics")
        return state
    if not (isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict)
            and isinstance(state[1], np.random.Generator)):
        raise TypeError(f"{type(trainer).__name__}.init_state must return (arrays, rng): a dict of NumPy arrays "
                        "and one numpy.random.Generator (or a TrainState)")
    arrays, rng = state
    bad = [k for k, v in arrays.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
    if bad:
        raise TypeError(f"{type(trainer).__name__}.init_state: every state array must be a NumPy array "
                        f"under a string name ({', '.join(map(str, bad))})")
    return TrainState(0, dict(arrays), rng)


def total_iterations(trainer, training) -> int:
    """The trainer's ``total_iterations``, or the training section's length."""
    total = getattr(trainer, "total_iterations", None)
    if total is not None:
        return int(total)
    if training.iterations is not None:
        return int(training.iterations)
    return int(training.epochs or 1) * int(getattr(trainer, "iterations_per_epoch", 1))


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
