"""Validation: metrics on a held-out split during training, and the state they select.

With ``training.validate_every: N`` the runner calls the trainer's
``validate(state) -> {valid_<x>: float}`` every N iterations and once more at
the end of training (unless the last iteration was one already). Every metric
history has one entry per iteration, so a validation metric's history is NaN
at the iterations without a validation: its non-NaN entries are the
validations, and an entry's index + 1 is its iteration.

The selection metric is ``training.select_on`` or else the first validation
metric the algorithm declares for ``status`` (``valid_accuracy``). The state
with its best value so far, in the metric's declared direction (the first of
equal ones), is kept in the state itself as the arrays under
:data:`snnbatch.jobs.early_stopping.BEST`, as early stopping keeps its best:
every checkpoint carries it, and the best is found again from the history
alone, so a resumed task selects what one never stopped would. The task ends
with that state: its final checkpoint and its test metrics (from
``evaluate``, computed once) are the selected state's; its status records
``best_iteration`` and ``selected_on``.
"""
from __future__ import annotations

import math

from . import early_stopping


def declared(alg) -> list:
    """The validation metrics an algorithm declares (``Metric(validation=True)``), in declaration order."""
    return [m for m in alg.metrics if getattr(m, "validation", False)]


def selection_metric(alg, training):
    """The Metric that selects the kept state: ``training.select_on``, else the first declared validation
    metric shown by status, else the first declared validation metric."""
    metrics = declared(alg)
    if training.select_on is not None:
        return next(m for m in metrics if m.name == training.select_on)
    return next((m for m in metrics if m.status), metrics[0])


def split_problem(section) -> str | None:
    """Why a ``dataset`` section has no validation split (None: it has one, or it is not ours to tell).

    The built-in datasets say so by their keys: ``n_valid`` (generated data), ``valid_fraction`` or
    ``valid_path`` (files). A plugin dataset with none of these keys is trusted; its trainer's
    ``validate`` says what is missing.
    """
    fields = type(section).model_fields
    keys = [k for k in ("n_valid", "valid_fraction", "valid_path") if k in fields]
    if not keys or any(getattr(section, k) for k in keys):
        return None
    return f"dataset '{section.type}' has no validation split: set " + " or ".join(f"dataset.{k}" for k in keys)


def config_problems(config, alg) -> list[tuple[str, str]]:
    """(key path, message) for validation keys the task cannot use."""
    t = config.training
    metrics = [m.name for m in declared(alg)]
    problems = []
    if t.validate_every is not None:
        if not metrics:
            problems.append(("training.validate_every",
                             f"model '{config.model.type}' reports no validation metric: it cannot validate"))
        else:
            why = split_problem(config.dataset)
            if why:
                problems.append(("training.validate_every", why))
    if t.select_on is not None:
        if t.validate_every is None:
            problems.append(("training.select_on", "selects on a validation metric: set training.validate_every"))
        elif metrics and t.select_on not in metrics:
            problems.append(("training.select_on", f"unknown validation metric {t.select_on!r} for model "
                                                   f"'{config.model.type}' (choose from: {', '.join(metrics)})"))
    stop = t.early_stopping
    if stop is not None and stop.metric in metrics and t.validate_every is None:
        problems.append(("training.early_stopping.metric",
                         f"{stop.metric!r} is measured only when validating: set training.validate_every"))
    return problems


class Validator:
    """The runner's validation of one task: when to validate, how to record it, which state to keep."""

    def __init__(self, trainer, every: int, metric, state, names=()):
        if not callable(getattr(trainer, "validate", None)):
            raise TypeError(f"{type(trainer).__name__} has no validate(state): it cannot validate "
                            "(training.validate_every)")
        self.trainer, self.every = trainer, every
        self.name, self.higher = metric.name, metric.better == "higher"
        known = {*names, self.name}  # the declared validation metrics: their histories are continued
        self.names = [k for k in state.metrics if k in known]
        self.best_value, self.best_iteration = math.nan, 0
        for i, v in enumerate(state.metrics.get(self.name, [])):  # a resumed state: find its best again
            self._improves(v, i + 1)

    def _improves(self, value: float, iteration: int) -> bool:
        if math.isnan(value):
            return False
        if math.isnan(self.best_value) or (value > self.best_value if self.higher else value < self.best_value):
            self.best_value, self.best_iteration = value, iteration
            return True
        return False

    def after_step(self, state) -> None:
        """After iteration ``state.iteration`` was recorded: validate when it is due, else NaN entries."""
        if state.iteration % self.every == 0:
            self.validate(state)
        else:
            self._pad(state, state.iteration)

    def validate(self, state) -> None:
        """Validate now; record the values at this iteration; keep the state when it is the best."""
        values = {k: float(v) for k, v in self.trainer.validate(state).items()}
        for k, v in values.items():
            if not math.isfinite(v):
                raise FloatingPointError(f"{k} is not finite at iteration {state.iteration} ({v}): "
                                         "the training diverged")
        if self.name not in values:
            raise KeyError(f"{type(self.trainer).__name__}.validate reported no {self.name!r} "
                           f"(it reported: {', '.join(values) or 'nothing'})")
        self.names += [k for k in values if k not in self.names]
        self._pad(state, state.iteration - 1)
        for k in self.names:
            state.metrics.setdefault(k, []).append(values.get(k, math.nan))
        if self._improves(values[self.name], state.iteration):
            early_stopping.keep_best(state.arrays)

    def _pad(self, state, length: int) -> None:
        for k in self.names:
            hist = state.metrics.setdefault(k, [])
            hist.extend([math.nan] * (length - len(hist)))

    def validated_at(self, state, iteration: int) -> bool:
        hist = state.metrics.get(self.name, [])
        return len(hist) >= iteration > 0 and not math.isnan(hist[iteration - 1])

    def best_values(self, state) -> dict[str, float]:
        """The validation metrics of the kept state (none before the first validation)."""
        if not self.best_iteration:
            return {}
        i = self.best_iteration - 1
        return {k: state.metrics[k][i] for k in self.names
                if len(state.metrics.get(k, [])) > i and not math.isnan(state.metrics[k][i])}

    def finish(self, state) -> dict:
        """The end of training: validate unless just done, make the kept state the state; the status fields."""
        if not self.validated_at(state, state.iteration):
            # the last iteration's entries are NaN: validation replaces them
            for k in self.names:
                hist = state.metrics.get(k, [])
                if len(hist) == state.iteration:
                    hist.pop()
            self.validate(state)
        early_stopping.restore_best(state.arrays)
        return {"best_iteration": self.best_iteration, "selected_on": self.name}


def build(cfg, trainer, state) -> Validator | None:
    """The task's validator (None without ``training.validate_every``), caught up with a resumed state."""
    every = cfg.training.validate_every
    if every is None:
        return None
    from .registry import algorithm

    alg = algorithm(cfg.model.type)
    return Validator(trainer, every, selection_metric(alg, cfg.training), state, [m.name for m in declared(alg)])

