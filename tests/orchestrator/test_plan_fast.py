"""The planner validates each distinct section once and hashes ids from the sections' parts: its tasks are
those of validating every config whole and hashing it (the planner as it was), for large sweeps of every
kind, and a combination that is not valid fails as it did."""
import json

import pytest
from pydantic import ValidationError

from snnbatch.jobs.config import TaskConfig, task_id
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.cli.plan import plan_json
from snnbatch.orchestrator.expand import expand_configs

from conftest import TINY


def slow_plan(spec):
    """The planner as it was: every config validated whole, its id hashed from its dump."""
    tasks = {}
    for config, values in expand_configs(spec):
        cfg = TaskConfig.model_validate(config)
        tid = task_id(cfg)
        if tid not in tasks:
            tasks[tid] = (tid, len(tasks), cfg, values)
    out = list(tasks.values())
    if spec._parts:
        keys = list(dict.fromkeys(k for t in out for k in t[3] if k != "seed")) + ["seed"]
        out = [(tid, i, cfg, {k: params.get(k, _value_at(cfg, k)) for k in keys}) for tid, i, cfg, params in out]
    return out


def _value_at(config, key):
    data = config.model_dump(mode="json")
    if "." in key:
        node = data
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node
    try:
        path = spec_mod.resolve_key(key, data)
    except KeyError:
        return None
    return data[path[0]][path[1]]


def assert_same_as_slow(text: str, at_least: int):
    spec = spec_mod.parse(text)
    fast, slow = planner.plan(spec), slow_plan(spec)
    assert len(fast) == len(slow) >= at_least
    for task, (tid, index, cfg, params) in zip(fast, slow):
        assert (task.id, task.index) == (tid, index)
        assert task.params == params and list(task.params) == list(params)
        dumped = cfg.model_dump(mode="json")
        assert task.config_dict() == dumped and list(task.config_dict()) == list(dumped)
        assert task.config.model_dump(mode="json") == dumped and task.config == cfg
        assert task.config_json() == json.dumps(dumped, separators=(",", ":"))
        assert task_id(task.config) == tid
    summary = planner.summarize(spec, fast)
    assert plan_json(spec.name, summary, fast) == json.dumps({
        "name": spec.name, "summary": summary.__dict__,
        "tasks": [{"id": t, "index": i, "params": p, "config": c.model_dump(mode="json")} for t, i, c, p in slow],
    }, indent=2)
    return fast


def test_a_large_grid_with_mappings_and_numbers_of_either_kind_gives_the_tasks_it_gave():
    # 0 and 0.0 and 1 and 1.0 validate alike (the same task once); a schedule mapping, and a constant one
    # that is no schedule (None, the id of no schedule)
    text = TINY + """sweep:
  grid:
    lr: [1.0e-3, 2.0e-3, 3.0e-3, 5.0e-3, 1.0e-2]
    weight_decay: [0, 0.0, 1.0e-4]
    lr_schedule: [null, {type: cosine, to: 0.1}, {type: constant}, {type: step, every: 1}]
    n_hidden: [4, 8, 16.0]
  seeds: 5
"""
    tasks = assert_same_as_slow(text, 5 * 2 * 3 * 3 * 5)
    assert len({t.id for t in tasks}) == len(tasks)


def test_a_large_random_sweep_gives_the_tasks_it_gave():
    text = TINY + """sweep:
  random:
    samples: 400
    seed: 3
    params:
      lr: {loguniform: [1.0e-4, 1.0e-1]}
      tau_mem: {uniform: [0.005, 0.05]}
      batch_size: {randint: [8, 64]}
      optimizer: {choice: [adam, sgd]}
      surrogate_scale: {choice: [10, 50.0, 100]}
  seeds: [0, 7, 3]
"""
    assert_same_as_slow(text, 1200)


def test_a_zipped_sweep_over_several_sections_gives_the_tasks_it_gave():
    text = TINY + """sweep:
  grid: {n_hidden: [4, 8, 12]}
  zip:
    tau_mem: [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1]
    tau_syn: [0.002, 0.004, 0.006, 0.008, 0.01, 0.012, 0.014, 0.016, 0.018, 0.02]
    dataset.seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
  seeds: 40
"""
    assert_same_as_slow(text, 1200)


def test_a_conditional_sweep_gives_the_tasks_it_gave():
    text = TINY + """sweep:
  - grid: {lr: [1.0e-3, 2.0e-3, 4.0e-3]}
    seeds: 100
  - set: {model.type: alif, training.iterations: 3}
    grid: {lr: [1.0e-3, 2.0e-3], tau_adapt: [0.1, 0.5, 1.0]}
    seeds: 50
  - grid: {lr: [1.0e-3]}
    seeds: 100
  - set: {training.validate_every: 1, dataset.n_valid: 16}
    grid: {lr: [1.0e-3, 8.0e-3]}
    seeds: 200
"""
    tasks = assert_same_as_slow(text, 300 + 300 + 400)
    assert {t.config.model.type for t in tasks} == {"lif", "alif"}


def test_a_combination_past_the_spec_check_that_is_not_valid_fails_as_validating_it_whole_does():
    # the spec checks each value against the base config and the first 1,000 combinations; the last
    # one (lr 0.5 with weight decay 2.5: the parameters would be multiplied by a negative number) is not valid
    lrs = [round(1e-5 * (i + 1), 8) for i in range(1200)] + [0.5]
    text = TINY + f"sweep:\n  grid:\n    lr: {json.dumps(lrs)}\n    weight_decay: [0.0, 2.5]\n"
    spec = spec_mod.parse(text)
    with pytest.raises(ValidationError) as fast:
        planner.plan(spec)
    with pytest.raises(ValidationError) as slow:
        slow_plan(spec)
    assert fast.value.errors(include_context=False) == slow.value.errors(include_context=False)
    assert str(fast.value) == str(slow.value)
    assert "weight_decay × lr must be below 1" in str(fast.value)
