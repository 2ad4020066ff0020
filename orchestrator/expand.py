"""Expand a validated spec's sweep into task configs: pure, no I/O, and no import of the spec module.

Order of expansion: grid (cartesian, in the spec's key order) × zip (index by
index) × random samples × replicate seeds. Random samples are drawn from
``sweep.random.seed`` alone, so the same spec always gives the same tasks:
each parameter from its own stream, keyed by the seed and the parameter's
full path, so that the order of the parameters in the file does not matter,
adding a parameter leaves the draws of the others as they were, and more
``samples`` only add draws after the existing ones.

Both the spec (to check a sample of the configs) and the planner (to make
tasks of them) use it; the swept keys' paths come from the spec itself
(:meth:`Spec.axes`).
"""
from __future__ import annotations

import hashlib
import itertools
import math
from typing import Any, Iterator, Protocol

import numpy as np


class SweepSpec(Protocol):
    """What expansion reads of a validated spec (:class:`snnbatch.orchestrator.spec.Spec` has it): its
    ``sweep`` section, base ``seed``, the sub-sweeps of a list of sweeps (``_parts``, each with the values
    it sets, ``_set``), the swept keys' paths and the config every combination starts from."""

    sweep: Any
    seed: int
    _parts: list
    _set: dict

    def axes(self) -> dict[str, tuple[str, ...]]: ...

    def base_config(self) -> dict: ...


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


def _random_draws(spec: SweepSpec) -> list[dict[str, Any]]:
    rs = spec.sweep.random
    if rs is None:
        return [{}]
    paths = spec.axes()
    columns = {}
    for key, dist in rs.params.items():
        rng = _stream(rs.seed, paths[key])
        columns[key] = [_draw(dist, rng) for _ in range(rs.samples)]
    return [{key: columns[key][i] for key in rs.params} for i in range(rs.samples)]


def replicate_seeds(spec: SweepSpec) -> list[int]:
    seeds = spec.sweep.seeds
    return list(seeds) if isinstance(seeds, list) else [spec.seed + i for i in range(seeds)]


def expand_configs(spec: SweepSpec) -> Iterator[tuple[dict, dict[str, Any]]]:
    """(config as plain data, swept values) for every combination, in plan order.

    A list of sub-sweeps expands each in turn; a sub-sweep's ``set`` values are among its swept values.
    """
    if spec._parts:
        for part in spec._parts:
            for config, values in expand_configs(part):
                yield config, {**part._set, **values}
        return
    base, paths = spec.base_config(), spec.axes()
    for values in expand_values(spec):
        yield config_of(base, paths, values), values


def expand_values(spec: SweepSpec) -> Iterator[dict[str, Any]]:
    """The swept values (by axis key, and ``seed``) of every combination of a single sweep (not a list),
    in plan order; :func:`config_of` makes each one's config."""
    sweep = spec.sweep
    grid_keys = list(sweep.grid)
    zip_keys = list(sweep.zip)
    n_zip = len(next(iter(sweep.zip.values()))) if zip_keys else 1
    draws = _random_draws(spec)
    seeds = replicate_seeds(spec)
    for combo in itertools.product(*(sweep.grid[k] for k in grid_keys)):
        for z in range(n_zip):
            for draw in draws:
                for seed in seeds:
                    values = dict(zip(grid_keys, combo))
                    values.update({k: sweep.zip[k][z] for k in zip_keys})
                    values.update(draw)
                    values["seed"] = seed
                    yield values


def config_of(base: dict, paths: dict[str, tuple[str, ...]], values: dict[str, Any]) -> dict:
    """The config of one combination: ``base`` (:meth:`Spec.base_config`) with the swept ``values`` set
    at their ``paths`` (:meth:`Spec.axes`)."""
    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in values.items():
        if key != "seed":
            section, name = paths[key]
            config[section][name] = value
    config["seed"] = values["seed"]
    return config
