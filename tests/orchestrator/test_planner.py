"""The planner: grid, zip, random samples and seeds; stable task ids; extending a sweep adds only new tasks."""
from __future__ import annotations

import json
import math
from itertools import product

import numpy as np
import yaml
from hypothesis import given, settings, strategies as st

from snnbatch.jobs.config import TaskConfig, task_id
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore

from conftest import TINY, tree


def plan(text: str) -> list[planner.Task]:
    return planner.plan(spec_mod.parse(text))


def with_sweep(sweep: dict, base: str = TINY) -> str:
    data = yaml.safe_load(base)
    data["sweep"] = sweep
    return yaml.safe_dump(data, sort_keys=False)


# ------------------------------------------------------------------ stable ids

# Task ids name the tasks in every existing run store: `snnbatch submit` of the same spec must find
# them again. If this constant changes, every existing store would see all its tasks as new and run
# them again. Change it only on purpose (a change of what a task computes), with a note in the
# changelog; adding a config field with a default must keep the ids of configs that do not set it.
GOLDEN_SPEC = """\
model: {type: lif, n_hidden: 64, tau_mem: 0.02}
dataset: {type: randman, n_classes: 10, n_train: 2000, dim: 2}
training: {epochs: 30, lr: 0.001}
seed: 3
"""
GOLDEN_ID = "cbe7cc28f021"


def test_the_golden_task_id_is_unchanged():
    (task,) = plan(GOLDEN_SPEC)
    assert task.id == GOLDEN_ID
    assert task_id(task.config) == GOLDEN_ID


def test_ids_are_twelve_hex_digits_and_follow_the_config():
    tasks = plan(with_sweep({"grid": {"lr": [0.1, 0.2]}, "seeds": 2}))
    assert len({t.id for t in tasks}) == 4
    for t in tasks:
        assert len(t.id) == 12 and set(t.id) <= set("0123456789abcdef")
        assert t.id == task_id(TaskConfig.model_validate(t.config_dict()))


def test_ids_do_not_depend_on_key_order_spelling_or_how_tasks_run():
    a = """\
seed: 3
model: {n_hidden: 64, type: lif, tau_mem: 0.02}
training: {lr: 0.001, epochs: 30}
dataset: {dim: 2, n_train: 2000, n_classes: 10}
resources: {cpus: 4, time: "12:00:00", memory: 8G}
checkpoint: {every_iterations: 7, keep: 5}
"""
    assert [t.id for t in plan(a)] == [GOLDEN_ID]
    # the same values given by the sweep, with full paths or short names, in another order
    b = "seed: 3\nsweep:\n  grid: {training.lr: [0.001], dim: [2]}\n  zip: {n_classes: [10], model.tau_mem: [0.02]}\n" \
        "model: {n_hidden: 64}\ntraining: {epochs: 30}\n"
    assert [t.id for t in plan(b)] == [GOLDEN_ID]
    # the order of the axes changes the order of the tasks, not their ids
    x = plan(with_sweep({"grid": {"lr": [0.1, 0.2], "n_hidden": [4, 8]}}))
    y = plan(with_sweep({"grid": {"n_hidden": [8, 4], "lr": [0.2, 0.1]}}))
    assert {t.id for t in x} == {t.id for t in y}
    # the order of the random parameters does not change the draws
    r1 = plan(with_sweep({"random": {"samples": 5, "seed": 4, "params": {
        "lr": {"loguniform": [1e-4, 1e-1]}, "n_hidden": {"randint": [4, 64]}}}}))
    r2 = plan(with_sweep({"random": {"samples": 5, "seed": 4, "params": {
        "model.n_hidden": {"randint": [4, 64]}, "training.lr": {"loguniform": [1e-4, 1e-1]}}}}))
    assert [t.id for t in r1] == [t.id for t in r2]


def test_one_more_axis_value_adds_only_the_new_tasks():
    before = plan(with_sweep({"grid": {"lr": [0.1, 0.2], "n_hidden": [4, 8]}, "seeds": 2}))
    after = plan(with_sweep({"grid": {"lr": [0.1, 0.2, 0.3], "n_hidden": [4, 8]}, "seeds": 3}))
    old, new = {t.id for t in before}, {t.id for t in after}
    assert old < new and len(new - old) == 3 * 2 * 3 - 2 * 2 * 2
    assert all(t.params["lr"] == 0.3 or t.params["seed"] == 2 for t in after if t.id not in old)
    # more random samples only add draws after the existing ones; another parameter keeps the others' draws
    r = {"samples": 3, "seed": 1, "params": {"lr": {"loguniform": [1e-4, 1e-1]}}}
    r3 = plan(with_sweep({"random": r}))
    r5 = plan(with_sweep({"random": {**r, "samples": 5}}))
    assert [t.id for t in r5[:3]] == [t.id for t in r3]
    wider = plan(with_sweep({"random": {**r, "params": {**r["params"], "alpha": {"uniform": [1, 3]}}}}))
    assert [t.params["lr"] for t in wider] == [t.params["lr"] for t in r3]


def test_the_store_takes_only_the_new_tasks(tmp_path):
    text2 = with_sweep({"grid": {"lr": [0.1, 0.2]}})
    text3 = with_sweep({"grid": {"lr": [0.1, 0.2, 0.3]}})
    spec2, spec3 = spec_mod.parse(text2), spec_mod.parse(text3)
    store, added = RunStore.create_or_update(tmp_path / "store", spec2, text2, planner.plan(spec2))
    assert len(added) == 2
    store, added = RunStore.create_or_update(tmp_path / "store", spec3, text3, planner.plan(spec3))
    (new,) = planner.plan(spec3)[2:]
    assert added == [new.id]
    rows = store.tasks()
    assert [r["params"]["lr"] for r in rows] == [0.1, 0.2, 0.3] and [r["index"] for r in rows] == [0, 1, 2]
    assert RunStore.create_or_update(tmp_path / "store", spec3, text3, planner.plan(spec3))[1] == []


def test_submit_of_an_extended_spec_runs_only_the_new_tasks(cli, write_spec, tmp_path):
    spec = write_spec(with_sweep({"grid": {"lr": [0.001, 0.002]}}))
    r = cli("submit", spec, "--store", "store", "--backend", "inline", "--no-progress")
    assert r.exit_code == 0, r.output
    first = {t["id"]: t for t in RunStore.open(tmp_path / "store").tasks()}
    assert len(first) == 2 and {t["state"] for t in first.values()} == {"done"}

    write_spec(with_sweep({"grid": {"lr": [0.001, 0.002, 0.004]}}))
    r = cli("submit", spec, "--store", "store", "--backend", "inline", "--no-progress")
    assert r.exit_code == 0, r.output
    assert "1 new task(s) added to the 2 it had" in r.output and "running 1 task on the inline backend" in r.output
    tasks = {t["id"]: t for t in RunStore.open(tmp_path / "store").tasks()}
    assert set(first) < set(tasks) and len(tasks) == 3
    for tid, t in first.items():  # the old tasks were not run again
        assert tasks[tid]["status"]["attempts"] == t["status"]["attempts"]
    assert {t["state"] for t in tasks.values()} == {"done"}


# ------------------------------------------------------------------ grid, zip, seeds


def test_grid_is_every_combination_in_the_spec_order_then_zip_then_seeds():
    tasks = plan(with_sweep({"grid": {"lr": [0.1, 0.2], "n_hidden": [4, 8, 16]},
                             "zip": {"tau_mem": [0.01, 0.02], "tau_syn": [0.001, 0.002]}, "seeds": 2}))
    got = [(t.params["lr"], t.params["n_hidden"], t.params["tau_mem"], t.params["tau_syn"], t.params["seed"])
           for t in tasks]
    want = [(lr, n, tm, ts, s) for lr, n in product([0.1, 0.2], [4, 8, 16])
            for tm, ts in [(0.01, 0.001), (0.02, 0.002)] for s in (0, 1)]
    assert got == want
    assert [t.index for t in tasks] == list(range(24))
    for t in tasks:
        c = t.config
        assert (c.training.lr, c.model.n_hidden, c.model.tau_mem, c.model.tau_syn, c.seed) == \
            (t.params["lr"], t.params["n_hidden"], t.params["tau_mem"], t.params["tau_syn"], t.params["seed"])


def test_seeds_as_a_count_replicate_from_the_base_seed_and_as_a_list_are_those_seeds():
    assert [t.config.seed for t in plan(TINY + "seed: 10\nsweep: {seeds: 3}\n")] == [10, 11, 12]
    assert [t.config.seed for t in plan(TINY + "seed: 10\nsweep: {seeds: [0, 7, 42]}\n")] == [0, 7, 42]
    assert [t.config.seed for t in plan(TINY + "seed: 5\n")] == [5]


def test_the_same_config_twice_is_one_task():
    tasks = plan(with_sweep({"grid": {"lr": [0.1, 0.1, 0.2]}}))
    assert [t.params["lr"] for t in tasks] == [0.1, 0.2]


@settings(max_examples=40, deadline=None)
@given(lrs=st.lists(st.floats(1e-5, 1.0), min_size=1, max_size=4, unique=True),
       hidden=st.lists(st.integers(1, 512), min_size=1, max_size=3, unique=True),
       tau=st.lists(st.floats(1e-3, 1.0), min_size=1, max_size=3, unique=True),
       seeds=st.one_of(st.integers(1, 3), st.lists(st.integers(0, 99), min_size=1, max_size=3, unique=True)))
def test_the_number_of_tasks_is_the_product_of_the_axes(lrs, hidden, tau, seeds):
    sweep = {"grid": {"lr": lrs, "n_hidden": hidden}, "zip": {"tau_mem": tau, "tau_syn": tau}, "seeds": seeds}
    tasks = plan(with_sweep(sweep))
    n_seeds = seeds if isinstance(seeds, int) else len(seeds)
    assert len(tasks) == len(lrs) * len(hidden) * len(tau) * n_seeds
    assert len({t.id for t in tasks}) == len(tasks)


# ------------------------------------------------------------------ random samples

RANDOM = {"samples": 200, "seed": 7, "params": {
    "lr": {"loguniform": [1e-5, 1e-1]},
    "alpha": {"uniform": [1.5, 3.0]},
    "n_hidden": {"randint": [4, 7]},
    "optimizer": {"choice": ["adam", "sgd"]},
}}


def test_random_draws_are_within_bounds_and_of_the_right_type():
    tasks = plan(with_sweep({"random": RANDOM}))
    lr = np.array([t.params["lr"] for t in tasks])
    alpha = np.array([t.params["alpha"] for t in tasks])
    hidden = [t.params["n_hidden"] for t in tasks]
    assert len(tasks) == 200
    assert ((1e-5 <= lr) & (lr <= 1e-1)).all() and ((1.5 <= alpha) & (alpha <= 3.0)).all()
    assert set(hidden) == {4, 5, 6, 7}  # both bounds included
    assert {t.params["optimizer"] for t in tasks} == {"adam", "sgd"}
    assert [t.config.model.n_hidden for t in tasks] == hidden and all(type(h) is int for h in hidden)
    assert [t.config.training.lr for t in tasks] == lr.tolist()


def test_loguniform_is_positive_and_spread_over_the_decades():
    lr = np.array([t.params["lr"] for t in plan(with_sweep({"random": RANDOM}))])
    assert (lr > 0).all()
    counts = np.histogram(np.log10(lr), bins=4, range=(-5, -1))[0]
    assert (counts >= 25).all(), counts  # about 50 per decade: uniform in log space, not crowded near 0.1
    assert abs(np.median(np.log10(lr)) + 3) < 0.5


def test_the_same_spec_gives_the_same_draws_and_another_seed_others():
    text = with_sweep({"random": RANDOM})
    a, b = plan(text), plan(text)
    assert [t.params for t in a] == [t.params for t in b] and [t.id for t in a] == [t.id for t in b]
    other = plan(with_sweep({"random": {**RANDOM, "seed": 8}}))
    assert [t.params["lr"] for t in other] != [t.params["lr"] for t in a]
    # the sweep's random seed is not the task seed: replicates share their draws
    reps = plan(with_sweep({"random": {**RANDOM, "samples": 2}, "seeds": 3}))
    assert [(round(t.params["lr"], 12), t.params["seed"]) for t in reps] == \
        [(round(a[i].params["lr"], 12), s) for i in range(2) for s in range(3)]


@settings(max_examples=30, deadline=None)
@given(lo=st.floats(1e-6, 10.0), ratio=st.floats(1.01, 1e6), seed=st.integers(0, 2**32))
def test_loguniform_draws_stay_within_any_bounds(lo, ratio, seed):
    hi = lo * ratio
    tasks = plan(with_sweep({"random": {"samples": 20, "seed": seed,
                                        "params": {"weight_scale": {"loguniform": [lo, hi]}}}}))
    ws = [t.params["weight_scale"] for t in tasks]
    assert all(lo * (1 - 1e-12) <= w <= hi * (1 + 1e-12) for w in ws)


# ------------------------------------------------------------------ summary and `snnbatch plan`


def test_summary_counts_core_hours_and_names_what_varies():
    spec = spec_mod.parse(with_sweep({"grid": {"lr": [0.1, 0.2]}, "seeds": 3}, TINY + "resources: {cpus: 2, time: '1:30:00'}\n"))
    s = planner.summarize(spec, planner.plan(spec))
    assert (s.n_tasks, s.cpus_per_task, s.time_limit_s) == (6, 2, 5400)
    assert math.isclose(s.core_hours, 6 * 2 * 1.5) and s.varying == ["lr", "seed"]


def test_plan_json_has_the_name_summary_and_every_task(cli, write_spec):
    spec = write_spec(with_sweep({"grid": {"lr": [0.1, 0.2]}, "seeds": 2}))
    r = cli("plan", spec, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert set(doc) == {"name", "summary", "tasks"} and doc["name"] == "tiny"
    assert doc["summary"] == {"n_tasks": 4, "cpus_per_task": 1, "time_limit_s": 3600, "core_hours": 4.0,
                              "varying": ["lr", "seed"]}
    expected = plan(with_sweep({"grid": {"lr": [0.1, 0.2]}, "seeds": 2}))
    assert [t["id"] for t in doc["tasks"]] == [t.id for t in expected]
    for task, want in zip(doc["tasks"], expected):
        assert set(task) == {"id", "index", "params", "config"}
        assert task["index"] == want.index and task["params"] == want.params
        assert task["config"] == want.config_dict()
        assert task_id(TaskConfig.model_validate(task["config"])) == task["id"]


def test_plan_prints_the_varying_params_and_the_core_hours_and_writes_nothing(cli, write_spec, tmp_path):
    spec = write_spec(with_sweep({"grid": {"lr": [0.1, 0.2], "n_hidden": [4]}, "seeds": 2}))
    before = tree(tmp_path)
    r = cli("plan", spec)
    assert r.exit_code == 0, r.output
    header = next(line for line in r.stdout.splitlines() if "task id" in line)
    assert "lr" in header and "seed" in header and "n_hidden" not in header  # n_hidden does not vary
    for t in plan(with_sweep({"grid": {"lr": [0.1, 0.2], "n_hidden": [4]}, "seeds": 2})):
        assert t.id in r.stdout
    assert "tiny: 4 tasks" in r.stdout
    assert "4 tasks × 1 cpu × 01:00:00 = 4.0 core-hours requested" in r.stdout
    assert tree(tmp_path) == before
