"""A task's evolving state: what a checkpoint holds."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class TrainState:
    """Everything that evolves while a task trains.

    ``arrays``: parameters, optimizer state, data order, ... (named NumPy arrays);
    ``rng``: the one Generator a trainer draws from; ``iteration``: counted by the
    runner; ``metrics``: the history the runner records from each step.
    """

    iteration: int
    arrays: dict[str, np.ndarray]
    rng: np.random.Generator
    metrics: dict[str, list[float]] = field(default_factory=dict)

    def record(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.metrics.setdefault(k, []).append(float(v))
