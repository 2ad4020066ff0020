"""training.early_stopping: a task whose metric stops improving ends early with its best state, as
deterministically as any other stop (the same bits after a kill and resume)."""
import numpy as np
import pytest

from snnbatch import open_run
from snnbatch.jobs.early_stopping import Tracker
from snnbatch.jobs.config import EarlyStopping
from snnbatch.jobs.errors import SpecError
from snnbatch.jobs.runner import run_task
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore

SPEC = """\
name: es
dataset: {n_train: 64, n_test: 32, n_inputs: 16, n_steps: 20}
model: {n_hidden: 8}
training: {iterations: 200, batch_size: 32, lr: 0.05,
           early_stopping: {metric: accuracy, patience: 3, every: 4}}
checkpoint: {every_iterations: 5}
"""


def test_the_tracker_counts_evaluations_without_improvement():
    t = Tracker(EarlyStopping(metric="loss", patience=2, min_delta=0.1, every=2), "lower")
    history = [5, 5, 4, 4, 3.95, 3.95, 3.9, 3.9, 1, 1]
    got = [t.evaluate(history, it) for it in range(1, 11)]
    assert got == [None, True, None, True, None, False, None, False, None, True]
    assert t.best_iteration == 10 and t.since_best == 0 and not t.stop
    replay = Tracker(t.rule, "lower")
    replay.replay(history[:8], 8)
    assert replay.stop and replay.best_iteration == 4


def test_unknown_metric_lists_the_metrics_of_each_iteration():
    with pytest.raises(SpecError, match=r"training.early_stopping.metric: unknown metric 'test_accuracy' for "
                                        r"model 'lif' \(choose from the metrics of each iteration: loss, accuracy; "
                                        r"with training.validate_every: valid_loss, valid_accuracy\)"):
        spec_mod.parse(SPEC.replace("metric: accuracy", "metric: test_accuracy"))


def test_a_key_added_later_keeps_every_existing_task_id():
    plain = SPEC.replace(",\n           early_stopping: {metric: accuracy, patience: 3, every: 4}", "")
    explicit_none = plain.replace("lr: 0.05", "lr: 0.05, early_stopping: null")
    assert [t.id for t in planner.plan(spec_mod.parse(plain))] == [t.id for t in planner.plan(spec_mod.parse(explicit_none))]
    assert planner.plan(spec_mod.parse(plain))[0].id != planner.plan(spec_mod.parse(SPEC))[0].id


def _run(path, kill_at=None, monkeypatch=None):
    spec = spec_mod.parse(SPEC)
    (task,) = planner.plan(spec)
    store, _ = RunStore.create_or_update(path, spec, SPEC, [task])
    return store, task


def test_a_task_stops_early_keeps_its_best_state_and_resumes_bit_for_bit(tmp_path):
    import subprocess
    import sys

    ref, task = _run(tmp_path / "ref")
    assert run_task(ref.path, task.id).state == "done"
    got = open_run(ref.path).task(task.id)
    status = got.status
    assert status["state"] == "done" and status["stopped_early"] < 200
    assert status["best_iteration"] <= status["stopped_early"] - 3 * 4
    assert got.status["attempts"][-1]["reason"] == "stopped early"
    assert not any(k.startswith("_best/") for k in got.checkpoint)
    acc = got.metrics["accuracy"]
    means = [acc[i - 4:i].mean() for i in range(4, len(acc) + 1, 4)]
    assert means.index(max(means)) * 4 + 4 == status["best_iteration"]
    # killed twice, resumed: the same decision and the same bits
    run, _ = _run(tmp_path / "run")
    cli = [sys.executable, "-m", "snnbatch.orchestrator.cli", "run-task", str(run.path), task.id]
    for k in (7, status["stopped_early"] - 2):
        r = subprocess.run(cli, env={**__import__("os").environ, "SNNBATCH_KILL_AT_ITERATION": str(k)}, timeout=300)
        assert r.returncode == -9
    assert subprocess.run(cli, timeout=300).returncode == 0
    again = open_run(run.path).task(task.id)
    assert again.status["stopped_early"] == status["stopped_early"]
    for name, value in got.checkpoint.items():
        assert np.asarray(again.checkpoint[name]).tobytes() == np.asarray(value).tobytes(), name
    for name, value in got.metrics.items():
        assert again.metrics[name].tobytes() == value.tobytes(), name
    assert again.status["test_accuracy"] == status["test_accuracy"]


def test_status_says_where_a_task_stopped_early(tmp_path, cli):
    import json

    store, task = _run(tmp_path / "st")
    assert run_task(store.path, task.id).state == "done"
    stopped = open_run(store.path).task(task.id).status["stopped_early"]
    table = cli("status", store.path)
    assert table.exit_code == 0 and f"done (stopped early at iteration {stopped})" in table.output
    (row,) = json.loads(cli("status", store.path, "--json").stdout)["tasks"]
    assert row["state"] == "done" and row["stopped_early"] == stopped and row["best_iteration"] < stopped
