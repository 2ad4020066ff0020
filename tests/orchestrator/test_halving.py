"""sweep.halving: tasks train to their rung's budget and park; each rung's decision is written once in the
store by whoever comes first, and the same spec gives the same promotions and the same bits on every
backend, after kills, and with two deciders at once."""
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from snnbatch import open_run
from snnbatch.jobs import halving
from snnbatch.jobs.runner import run_task
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore

from conftest import tree

CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]
# 9 tasks, rungs at 2 and 6 iterations, the end at 18: 9 -> 3 -> 1
SPEC = """\
name: hv
dataset: {n_train: 64, n_test: 32, n_inputs: 16, n_steps: 20}
model: {n_hidden: 8}
training: {iterations: 18, batch_size: 32}
checkpoint: {every_iterations: 5}
sweep:
  grid: {lr: [0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 1.0]}
  halving: {metric: accuracy, min_iterations: 2, eta: 3}
"""


def decisions(path) -> list[tuple]:
    """What each rung decided: (rung, promoted, pruned, values)."""
    plan = halving.plan_of(path)
    return [(k, d["promoted"], d["pruned"], d["values"]) for k, d in sorted(halving.decisions(path, plan).items())]


def submit(spec_file, store, *args, env=None):
    return subprocess.run(CLI + ["submit", str(spec_file), "--store", str(store), "--no-progress", *args],
                          capture_output=True, text=True, timeout=900, env={**os.environ, **(env or {})})


def final_bits(path, tid) -> dict[str, bytes]:
    t = open_run(path).task(tid)
    return {k: np.asarray(v).tobytes() for k, v in t.checkpoint.items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The spec run inline, uninterrupted."""
    root = tmp_path_factory.mktemp("halving")
    spec_file = root / "hv.yaml"
    spec_file.write_text(SPEC)
    r = submit(spec_file, root / "ref", "--backend", "inline")
    assert r.returncode == 0, r.stdout + r.stderr
    return root, spec_file, root / "ref"


def test_the_best_third_of_each_rung_goes_on_and_the_winner_ends_as_a_plain_run_would(reference, tmp_path):
    root, spec_file, ref = reference
    made = decisions(ref)
    assert [(k, len(p), len(q)) for k, p, q, _ in made] == [(0, 3, 6), (1, 1, 2)]
    for k, promoted, pruned, values in made:  # the best by accuracy (higher is better), ties by task id
        order = sorted(values, key=lambda t: (-values[t], t))
        assert promoted + pruned == order
    run = open_run(ref)
    states = {t.id: t.state for t in run}
    (winner,) = made[1][1]
    assert states[winner] == "done" and run.task(winner).status["iteration"] == 18
    assert sorted(t for t, s in states.items() if s == "pruned") == sorted(made[0][2] + made[1][2])
    for tid in made[0][2]:  # pruned at the first rung: trained 2 iterations and no more
        assert run.task(tid).status["iteration"] == 2
    # the same task trained alone without halving: the same final bits
    plain = spec_mod.parse(SPEC.replace("  halving: {metric: accuracy, min_iterations: 2, eta: 3}\n", ""))
    tasks = planner.plan(plain)
    assert winner in {t.id for t in tasks}  # halving is not part of a task's id
    store, _ = RunStore.create_or_update(tmp_path / "plain", plain, SPEC, tasks)
    assert run_task(store.path, winner).state == "done"
    assert final_bits(store.path, winner) == final_bits(ref, winner)
    assert open_run(store.path).task(winner).status["test_accuracy"] == run.task(winner).status["test_accuracy"]


def test_status_shows_each_tasks_rung_and_word(reference, cli):
    _, _, ref = reference
    made = decisions(ref)
    rows = {r["id"]: r for r in json.loads(cli("status", ref, "--json").stdout)["tasks"]}
    (winner,) = made[1][1]
    assert rows[winner]["rung"] == 2 and rows[winner]["halving"] == "promoted"
    for tid in made[0][2]:
        assert rows[tid]["rung"] == 0 and rows[tid]["halving"] == "pruned" and rows[tid]["state"] == "pruned"
    for tid in made[1][2]:
        assert rows[tid]["rung"] == 1 and rows[tid]["halving"] == "pruned"
    table = cli("status", ref).output
    assert "rung" in table and "2 promoted" in table and "0 pruned" in table


@pytest.mark.dask
def test_local_dask_with_two_workers_makes_the_same_promotions(reference, tmp_path):
    _, spec_file, ref = reference
    r = submit(spec_file, tmp_path / "local", "--backend", "local", "--max-parallel", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert [d[:3] for d in decisions(tmp_path / "local")] == [d[:3] for d in decisions(ref)]
    (winner,) = decisions(ref)[1][1]
    assert final_bits(tmp_path / "local", winner) == final_bits(ref, winner)


def test_a_kill_during_a_rung_loses_nothing(reference, tmp_path):
    _, spec_file, ref = reference
    made = decisions(ref)
    (winner,) = made[1][1]
    store = tmp_path / "killed"
    # killed in the middle of the second rung, then just before parking at the third: resumed each time
    for at in ("4", "6"):
        r = submit(spec_file, store, "--backend", "inline", env={"SNNBATCH_KILL_AT_ITERATION": f"{winner}:{at}"})
        assert r.returncode == -9, r.stdout + r.stderr
    r = subprocess.run(CLI + ["resume", str(store), "--backend", "inline", "--no-progress"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert decisions(store) == decisions(ref)
    assert final_bits(store, winner) == final_bits(ref, winner)


def _decide(path, barrier, out):
    barrier.wait()  # every process decides at the same instant
    out.put(len(halving.try_decide(path, by=f"racer {os.getpid()}")))


def test_two_deciders_at_once_make_one_decision_and_status_decides_a_rung_left_open(tmp_path, cli):
    spec = spec_mod.parse(SPEC)
    tasks = planner.plan(spec)
    store, _ = RunStore.create_or_update(tmp_path / "s", spec, SPEC, tasks)
    for t in tasks:
        assert run_task(store.path, t.id).state == "parked"
    first = decisions(store.path)
    assert [k for k, *_ in first] == [0]  # the last task to park decided the first rung
    decision = halving.decision_path(store.path, 0)
    for _ in range(3):  # the decider died before writing: every task parked, no decision
        decision.unlink()
        ctx = multiprocessing.get_context("spawn")
        barrier, out = ctx.Barrier(4), ctx.Queue()
        racers = [ctx.Process(target=_decide, args=(str(store.path), barrier, out)) for _ in range(4)]
        for p in racers:
            p.start()
        for p in racers:
            p.join(120)
        assert sorted(out.get(timeout=5) for _ in racers) == [0, 0, 0, 1]
        assert decisions(store.path) == first
        assert [p.name for p in decision.parent.iterdir()] == ["rung-0.json"]  # no temporary file left
    decision.unlink()
    assert cli("status", store.path).exit_code == 0  # status decides it too
    assert decisions(store.path) == first


BAD = [
    ("metric: accuracy", "metric: acuracy",
     "sweep.halving.metric: unknown metric 'acuracy' for model 'lif' (choose from the metrics of each "
     "iteration and the validation metrics: loss, accuracy, valid_loss, valid_accuracy)"),
    ("metric: accuracy", "metric: valid_accuracy", "sweep.halving.metric: 'valid_accuracy' is measured only when "
     "validating: set training.validate_every"),
    (("batch_size: 32}", "metric: accuracy", "n_steps: 20}"),
     ("batch_size: 32, validate_every: 4}", "metric: valid_accuracy", "n_steps: 20, n_valid: 32}"),
     "sweep.halving.min_iterations: 2 is not a multiple of training.validate_every (4)"),
    ("eta: 3", "eta: 1", "sweep.halving.eta: expected an integer >= 2, got 1"),
    ("min_iterations: 2", "min_iterations: 18", "sweep.halving.min_iterations: 18 is not below the training length"),
    ("eta: 3}", "eta: 3, max_iterations: 40}", "sweep.halving.max_iterations: 40 is beyond the training length"),
    ("iterations: 18,", "epochs: 3,", "sweep.halving: rung budgets are iterations"),
    ("batch_size: 32}", "batch_size: 32, early_stopping: {metric: loss, patience: 2}}",
     "training.early_stopping: could stop a task at iteration 3, before the last rung of sweep.halving (6)"),
    ("eta: 3}", "eta: 3, speed: 2}", "sweep.halving.speed: unknown key 'speed'"),
]


@pytest.mark.parametrize("old,new,message", BAD, ids=[f"{b[2].split(':')[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_names_the_key_exits_2_and_writes_nothing(tmp_path, cli, old, new, message):
    text = SPEC
    for o, n in zip(*((old, new) if isinstance(old, tuple) else ((old,), (new,)))):
        assert o in text
        text = text.replace(o, n)
    (tmp_path / "bad.yaml").write_text(text)
    before = tree(tmp_path)
    r = cli("submit", "bad.yaml", "--backend", "inline")
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output
    assert tree(tmp_path) == before


@pytest.mark.parametrize("override,message", [
    ("sweep.halving.eta=fast", "sweep.halving.eta: expected an integer >= 2, got 'fast' (from the override "
                               "'sweep.halving.eta=fast')"),
    ("sweep.halving.metric=[", "override 'sweep.halving.metric=[': the value is not valid YAML"),
    ("sweep.halving=3", "sweep.halving: expected a mapping of keys, got 3 (from the override 'sweep.halving=3')"),
])
def test_malformed_overrides_of_halving_name_the_override(tmp_path, cli, override, message):
    (tmp_path / "hv.yaml").write_text(SPEC)
    before = tree(tmp_path)
    r = cli("submit", "hv.yaml", override, "--backend", "inline")
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, r.output
    assert tree(tmp_path) == before


def test_rungs_and_ranking():
    rule = spec_mod.Halving(metric="loss", min_iterations=10, eta=3)
    assert rule.rungs(270) == [10, 30, 90] and rule.rungs(271) == [10, 30, 90, 270]
    assert spec_mod.Halving(metric="loss", min_iterations=10, eta=3, max_iterations=50).rungs(270) == [10, 30]
    plan = halving.Plan(metric="loss", better="lower", eta=3, rungs=(4,), window=2)
    assert plan.value([5, 4, 3, 1, 0], 4) == 2.0 and np.isnan(plan.value([5, 4], 4))
    valid = halving.Plan(metric="valid_accuracy", better="higher", eta=3, rungs=(4,), validation=True)
    assert valid.value([np.nan, 0.5, np.nan, np.nan, 0.9], 4) == 0.5
    promoted, pruned = halving.rank(plan, 0, {"b": 1.0, "a": 1.0, "c": 0.5, "d": float("nan")}, 4)
    assert promoted == ["c"] and pruned == ["a", "b", "d"]


def test_tasks_that_validate_are_ranked_by_their_validation_metric(tmp_path):
    text = (SPEC.replace("batch_size: 32}", "batch_size: 32, validate_every: 2}")
            .replace("n_steps: 20}", "n_steps: 20, n_valid: 32}")
            .replace("metric: accuracy, ", "").replace("0.001, 0.003, 0.01, 0.03, 0.1, 0.2, ", ""))
    spec = spec_mod.parse(text)
    tasks = planner.plan(spec)
    store, _ = RunStore.create_or_update(tmp_path / "v", spec, text, tasks)
    assert halving.plan_of(store.path).metric == "valid_accuracy"  # the default: the selection metric
    for t in tasks:
        assert run_task(store.path, t.id).state == "parked"
    ((_, promoted, pruned, values),) = decisions(store.path)
    run = open_run(store.path)
    for t in tasks:  # the value validated at the rung's budget
        assert values[t.id] == run.task(t.id).metrics["valid_accuracy"][1]
    assert len(promoted) == 1 and values[promoted[0]] == max(values.values())


def test_plan_says_the_rungs_and_the_iterations_at_most(tmp_path, cli):
    (tmp_path / "hv.yaml").write_text(SPEC)
    r = cli("plan", "hv.yaml")
    assert r.exit_code == 0, r.output
    # 9 -> 3 -> 1: 6 stop at 2, 2 at 6, 1 trains 18: 12 + 12 + 18 of 9 x 18
    assert ("halving on accuracy (higher is better), eta 3: rungs at 2, 6 iterations, 9 -> 3 -> 1 tasks; 1 trains "
            "to the end; at most 42 of the full grid's 162 iterations (26%)") in " ".join(r.output.split())


def test_the_report_draws_the_rungs(reference, tmp_path, cli):
    _, _, ref = reference
    r = cli("report", ref, "--out", tmp_path / "report")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "report" / "halving.png").stat().st_size > 1000
    assert "Successive halving" in (tmp_path / "report" / "report.html").read_text()


def test_a_halving_store_refuses_another_plan_or_tasks_after_its_first_rung(reference, tmp_path, cli):
    import shutil

    _, _, ref = reference
    store = tmp_path / "copy"
    shutil.copytree(ref, store)
    before = tree(store)
    (tmp_path / "eta.yaml").write_text(SPEC.replace("eta: 3", "eta: 4"))
    r = cli("submit", "eta.yaml", "--store", store, "--backend", "inline")
    assert r.exit_code == 2 and "holds a halving sweep planned as" in r.output, r.output
    (tmp_path / "more.yaml").write_text(SPEC.replace("1.0]}", "1.0, 2.0]}"))
    r = cli("submit", "more.yaml", "--store", store, "--backend", "inline")
    assert r.exit_code == 2 and "1 new task(s) could not be ranked" in r.output, r.output
    assert tree(store) == before
    (tmp_path / "same.yaml").write_text(SPEC)
    assert cli("submit", "same.yaml", "--store", store, "--backend", "inline").exit_code == 0
