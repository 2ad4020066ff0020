"""Early stopping, decided from the metric history alone, so a resumed task decides as one never stopped.

Every ``every`` iterations the mean of the metric over those iterations is one
evaluation; NaN entries (a validation metric at the iterations without a
validation, see :mod:`snnbatch.jobs.validation`) are left out of the mean, and
a window of NaN entries only is no evaluation. An evaluation improves when it beats the best so far by more than
``min_delta`` in the metric's declared direction; after ``patience``
evaluations without one, the task stops. The state at the best evaluation is
kept in the state itself, as arrays under :data:`BEST` (so every checkpoint
carries it and a kill loses nothing), and is what the task ends with: its final
checkpoint and its held-out metrics are those of the best state. A validating
task (``training.validate_every``) keeps the state of its best validation
instead (:mod:`snnbatch.jobs.validation`): early stopping then only decides when
the task stops.
"""
from __future__ import annotations

import math

import numpy as np

BEST = "_best/"  # array names the runner keeps for itself: the state at the best evaluation


class Tracker:
    def __init__(self, rule, better: str):
        self.rule, self.higher = rule, better == "higher"
        self.best_value = math.nan
        self.best_iteration = 0
        self.since_best = 0
        self.evaluations = 0

    def replay(self, history: list[float], iteration: int) -> None:
        """Catch up with the history of a resumed state (evaluations up to ``iteration``)."""
        for it in range(self.rule.every, iteration + 1, self.rule.every):
            self.evaluate(history, it)

    def evaluate(self, history: list[float], iteration: int) -> bool | None:
        """The evaluation at ``iteration`` (None when it is not one): True when it is a new best."""
        every = self.rule.every
        if iteration % every or len(history) < iteration:
            return None
        window = np.asarray(history[iteration - every:iteration], dtype=np.float64)
        measured = ~np.isnan(window)
        if not measured.any():
            return None
        value = float(np.mean(window if measured.all() else window[measured]))
        self.evaluations += 1
        d = self.rule.min_delta
        if math.isnan(self.best_value) or (value > self.best_value + d if self.higher else value < self.best_value - d):
            self.best_value, self.best_iteration, self.since_best = value, iteration, 0
            return True
        self.since_best += 1
        return False

    @property
    def stop(self) -> bool:
        return self.since_best >= self.rule.patience


def keep_best(arrays: dict[str, np.ndarray]) -> None:
    """Copy the current state into the best-state arrays."""
    for k in [k for k in arrays if k.startswith(BEST)]:
        del arrays[k]
    for k, v in list(arrays.items()):
        arrays[BEST + k] = np.array(v, copy=True)


def restore_best(arrays: dict[str, np.ndarray]) -> None:
    """Make the best state the state (and drop the copies)."""
    best = {k[len(BEST):]: v for k, v in arrays.items() if k.startswith(BEST)}
    for k in [k for k in arrays if k.startswith(BEST)]:
        del arrays[k]
    arrays.update(best)
