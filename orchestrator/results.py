"""Reading a run's results from Python: ``snnbatch.open_run(path)``."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ..jobs.store import TaskStore
from .store import RunStore


@dataclass
class TaskResult:
    """One task: its config, swept parameters, state, status record and metric history."""

    run: "Run"
    id: str
    index: int
    params: dict[str, Any]
    config: dict[str, Any]
    state: str
    status: dict[str, Any]

    def _store(self) -> TaskStore:
        return TaskStore(self.run.path, self.id, mode="r")

    @cached_property
    def checkpoint(self) -> dict[str, np.ndarray]:
        """The newest good checkpoint's arrays (parameters, optimizer state, ...); empty if none."""
        state, _ = self._store().latest_checkpoint()
        return {} if state is None else dict(state.arrays) | {"iteration": np.asarray(state.iteration)}

    @cached_property
    def metrics(self) -> dict[str, np.ndarray]:
        """Per-iteration training metrics (``loss``, ``accuracy``) up to the newest checkpoint."""
        state, _ = self._store().latest_checkpoint()
        if state is None:
            return {}
        return {k: np.asarray(v) for k, v in state.metrics.items()}

    def __getitem__(self, key):
        return self.status.get(key)


class Run:
    """A run store opened for reading."""

    def __init__(self, path):
        self.store = RunStore.open(path)
        self.path = self.store.path

    @property
    def name(self) -> str:
        return self.store.name

    @property
    def spec(self) -> dict:
        return self.store.spec_dict()

    @cached_property
    def tasks(self) -> list[TaskResult]:
        return [TaskResult(self, t["id"], t["index"], t["params"], t["config"], t["state"], t["status"])
                for t in self.store.tasks()]

    def task(self, task_id: str) -> TaskResult:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self):
        return iter(self.tasks)

    def __repr__(self) -> str:
        states: dict[str, int] = {}
        for t in self.tasks:
            states[t.state] = states.get(t.state, 0) + 1
        return f"<Run {self.name!r} at {self.path}: {len(self)} tasks {states}>"
