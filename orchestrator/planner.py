"""Expand a validated spec into tasks: pure, no I/O.

Order of expansion: grid (cartesian, in the spec's key order) × zip (index by
index) × random samples × replicate seeds. Random samples are drawn from
``sweep.random.seed`` alone, so the same spec always gives the same tasks:
each parameter from its own stream, keyed by the seed and the parameter's
full path, so that the order of the parameters in the file does not matter,
adding a parameter leaves the draws of the others as they were, and more
``samples`` only add draws after the existing ones. A task's id is the hash
of its resolved config (``snnbatch.jobs.config.task_id``).
"""
from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from ..jobs.config import TaskConfig, task_id
from .spec import Spec, resolve_key


@dataclass(frozen=True)
class Task:
    id: str
    index: int
    config: TaskConfig
    params: dict[str, Any] = field(default_factory=dict)  # the swept values, by axis key, plus "seed"

    def config_dict(self) -> dict:
        return self.config.model_dump(mode="json")


def _stream(seed: int, path: tuple[str, ...]) -> np.random.Generator:
    """The random stream of one swept parameter: the sweep's seed and the parameter's full path."""
    key = int.from_bytes(hashlib.sha256(".".join(path).encode()).digest()[:8], "little")
    return np.random.default_rng(np.random.SeedSequence([seed, key]))


def _draw(dist, rng: np.random.Generator):
    if dist.uniform is not None:
        return float(rng.uniform(*dist.uniform))
    if dist.loguniform is not None:
        lo, hi = dist.loguniform
        return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    if dist.randint is not None:
        return int(rng.integers(dist.randint[0], dist.randint[1] + 1))  # both bounds included
    return dist.choice[int(rng.integers(len(dist.choice)))]


def _random_draws(spec: Spec) -> list[dict[str, Any]]:
    rs = spec.sweep.random
    if rs is None:
        return [{}]
    base = spec.base_config()
    columns = {}
    for key, dist in rs.params.items():
        rng = _stream(rs.seed, resolve_key(key, base))
        columns[key] = [_draw(dist, rng) for _ in range(rs.samples)]
    return [{key: columns[key][i] for key in rs.params} for i in range(rs.samples)]


def replicate_seeds(spec: Spec) -> list[int]:
    seeds = spec.sweep.seeds
    return list(seeds) if isinstance(seeds, list) else [spec.seed + i for i in range(seeds)]


def expand_configs(spec: Spec) -> Iterator[tuple[dict, dict[str, Any]]]:
    """(config as plain data, swept values) for every combination, in plan order.

    A list of sub-sweeps expands each in turn; a sub-sweep's ``set`` values are among its swept values.
    """
    if spec._parts:
        for part in spec._parts:
            for config, values in expand_configs(part):
                yield config, {**part._set, **values}
        return
    base = spec.base_config()
    sweep = spec.sweep
    grid_keys = list(sweep.grid)
    zip_keys = list(sweep.zip)
    n_zip = len(next(iter(sweep.zip.values()))) if zip_keys else 1
    paths = {k: resolve_key(k, base) for k in grid_keys + zip_keys}
    if sweep.random:
        paths.update({k: resolve_key(k, base) for k in sweep.random.params})
    draws = _random_draws(spec)
    for combo in itertools.product(*(sweep.grid[k] for k in grid_keys)):
        for z in range(n_zip):
            for draw in draws:
                for seed in replicate_seeds(spec):
                    values = dict(zip(grid_keys, combo))
                    values.update({k: sweep.zip[k][z] for k in zip_keys})
                    values.update(draw)
                    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
                    for key, value in values.items():
                        section, name = paths[key]
                        config[section][name] = value
                    config["seed"] = seed
                    values["seed"] = seed
                    yield config, values


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
