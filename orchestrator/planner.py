"""Turn a validated spec into tasks: pure, no I/O.

The sweep is expanded into configs by :mod:`snnbatch.orchestrator.expand`
(order of expansion, random draws); each config is validated into a
:class:`~snnbatch.jobs.config.TaskConfig`, and a task's id is the hash of its
resolved config (``snnbatch.jobs.config.task_id``). :func:`plan_record` is the
successive-halving plan a store records for the tasks (:mod:`snnbatch.jobs.halving`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..jobs import halving
from ..jobs.config import TaskConfig, task_id
from .expand import expand_configs
from .spec import Spec, resolve_key


@dataclass(frozen=True)
class Task:
    id: str
    index: int
    config: TaskConfig
    params: dict[str, Any] = field(default_factory=dict)  # the swept values, by axis key, plus "seed"

    def config_dict(self) -> dict:
        return self.config.model_dump(mode="json")


def plan(spec: Spec) -> list[Task]:
    """The tasks of ``spec``; duplicates (the same resolved config twice) are kept once."""
    tasks: dict[str, Task] = {}
    for config, values in expand_configs(spec):
        cfg = TaskConfig.model_validate(config)
        tid = task_id(cfg)
        if tid not in tasks:
            tasks[tid] = Task(tid, len(tasks), cfg, values)
    out = list(tasks.values())
    if spec._parts:  # sub-sweeps vary different keys: every task names all of them (None where it has none)
        keys = list(dict.fromkeys(k for t in out for k in t.params if k != "seed")) + ["seed"]
        out = [Task(t.id, t.index, t.config, {k: t.params.get(k, _value_at(t.config, k)) for k in keys})
               for t in out]
    return out


def _value_at(config: TaskConfig, key: str):
    """The value of a swept key in a task's config, or None when the config has no such key."""
    data = config.model_dump(mode="json")
    if "." in key:
        node = data
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node
    try:
        path = resolve_key(key, data)
    except KeyError:
        return None
    return data[path[0]][path[1]]


@dataclass
class Summary:
    n_tasks: int
    cpus_per_task: int
    time_limit_s: int
    core_hours: float
    varying: list[str]


def summarize(spec: Spec, tasks: list[Task]) -> Summary:
    res = spec.resources
    varying = [k for k in (tasks[0].params if tasks else {}) if len({repr(t.params[k]) for t in tasks}) > 1]
    return Summary(
        n_tasks=len(tasks),
        cpus_per_task=res.cpus,
        time_limit_s=res.time_seconds,
        core_hours=len(tasks) * res.cpus * res.time_seconds / 3600.0,
        varying=varying,
    )


def plan_record(spec, tasks: list[Task]) -> dict | None:
    """The halving plan the store records for ``spec`` (None without ``sweep.halving``)."""
    rule = None if spec._parts else spec.sweep.halving
    if rule is None or not tasks:
        return None
    from ..jobs import registry

    length = min(t.config.training.iterations for t in tasks)
    first = tasks[0].config
    alg = registry.algorithm(first.model.type)
    name = rule.metric_for(alg, first.training.model_dump())
    metric = next(m for m in alg.metrics if m.name == name)
    validation = bool(getattr(metric, "validation", False))
    plan = halving.Plan(metric=name, better=metric.better, eta=rule.eta, rungs=tuple(rule.rungs(length)),
                        window=rule.window_iterations, validation=validation)
    return plan.record()
