"""How long a sweep will take: time a few iterations of one task per network shape, extrapolate.

Tasks that differ only in what does not change the cost of an iteration (learning rate, seeds,
optimizer constants) share a shape; each shape is timed once on this machine, with the thread
count the tasks will get, after one untimed iteration that compiles (or loads) its kernels.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

from ..jobs import threads
from .planner import Task

COST_FREE = {"training": ("lr", "beta1", "beta2", "iterations", "epochs")}  # no effect on one iteration's cost


@dataclass
class ShapeEstimate:
    tasks: list[Task]
    build_s: float  # building the trainer: data, kernels (a resumed task pays it again)
    iteration_s: float  # one training iteration
    evaluate_s: float
    trainer: object  # the timed trainer: it knows a task's length (iterations per epoch)
    validate_s: float = 0.0  # one validation (training.validate_every), 0 for tasks that do not validate

    def task_seconds(self, task: Task) -> float:
        n = self.iterations(task)
        every = task.config.training.validate_every
        validations = 0 if every is None else n // every + (1 if n % every else 0)  # and once at the end
        return self.build_s + self.evaluate_s + self.iteration_s * n + self.validate_s * validations

    def iterations(self, task: Task) -> int:
        from ..jobs.trainer import total_iterations

        return total_iterations(self.trainer, task.config.training)


def shape_key(task: Task) -> str:
    data = task.config.model_dump(mode="json", include={"model", "dataset", "learning", "training"})
    for section, keys in COST_FREE.items():
        for k in keys:
            data[section].pop(k, None)
    data["learning"] = {"rule": data["learning"].get("rule")}
    return json.dumps(data, sort_keys=True)


def estimate(tasks: list[Task], cpus: int, min_seconds: float = 1.0, max_iterations: int = 20) -> list[ShapeEstimate]:
    """Time each distinct shape (at least ``min_seconds`` or ``max_iterations`` iterations)."""
    from ..jobs.trainer import build_trainer, initial_state

    threads.apply(cpus)
    groups: dict[str, list[Task]] = {}
    for t in tasks:
        groups.setdefault(shape_key(t), []).append(t)
    out = []
    for members in groups.values():
        t0 = time.perf_counter()
        trainer = build_trainer(members[0].config)
        state = initial_state(trainer)
        build_s = time.perf_counter() - t0
        trainer.step(state)  # compiles or loads the kernels: not a cost of the iterations
        state.iteration += 1
        n, t1 = 0, time.perf_counter()
        while n < max_iterations and (n < 2 or time.perf_counter() - t1 < min_seconds):
            trainer.step(state)
            state.iteration += 1
            n += 1
        iteration_s = (time.perf_counter() - t1) / n
        t2 = time.perf_counter()
        trainer.evaluate(state)
        evaluate_s = time.perf_counter() - t2
        validate_s = 0.0
        if members[0].config.training.validate_every is not None:  # in the shape: every member validates
            t3 = time.perf_counter()
            trainer.validate(state)
            validate_s = time.perf_counter() - t3
        out.append(ShapeEstimate(members, build_s, iteration_s, evaluate_s, trainer, validate_s))
    return out
