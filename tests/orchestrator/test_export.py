"""snnbatch export and Run.best: the best task's parameters, config and histories, judged on validation
metrics where the tasks have them; every task's histories as TensorBoard files, read back with
TensorBoard's own reader."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import snnbatch
from snnbatch.orchestrator.cli import main

from conftest import TINY

VALIDATING = TINY.replace("n_train: 64,", "n_train: 64, n_valid: 32,").replace(
    "iterations: 2,", "iterations: 6, validate_every: 2,") + "sweep: {grid: {lr: [0.01, 0.05, 0.2]}}\n"
PLAIN = TINY + "sweep: {grid: {lr: [0.01, 0.2]}}\n"


def _run(tmp_path_factory, text, name):
    root = tmp_path_factory.mktemp(name)
    (root / "spec.yaml").write_text(text)
    r = CliRunner().invoke(main, ["submit", str(root / "spec.yaml"), "--store", str(root / "store"),
                                  "--backend", "inline", "--no-progress"])
    assert r.exit_code == 0, r.output
    return root / "store"


@pytest.fixture(scope="module")
def validating(tmp_path_factory):
    return _run(tmp_path_factory, VALIDATING, "validating")


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return _run(tmp_path_factory, PLAIN, "plain")


def export(*args):
    return CliRunner().invoke(main, ["export", *map(str, args)])


def test_best_accuracy_is_judged_on_validation_and_exports_the_selected_state(validating, tmp_path):
    run = snnbatch.open_run(validating)
    table = run.to_pandas()
    want = table.loc[table["valid_accuracy"].idxmax(), "id"]
    assert run.best_metric("accuracy") == "valid_accuracy" and run.best("accuracy").id == want
    assert run.best("loss").id == table.loc[table["valid_loss"].idxmin(), "id"]  # lower is better

    r = export(validating, "--best", "accuracy", "--out", tmp_path / "best")
    assert r.exit_code == 0, r.output
    assert f"judged on valid_accuracy (higher is better): task {want}" in r.output
    assert f"the final one of task {want}: the state of its best validation (valid_accuracy) at iteration" in r.output
    task = run.task(want)
    params = np.load(tmp_path / "best" / "params.npz")
    arrays = {k: v for k, v in task.checkpoint.items() if k != "iteration"}
    assert sorted(params.files) == sorted(arrays) and arrays
    for k in arrays:
        np.testing.assert_array_equal(params[k], arrays[k])
    assert yaml.safe_load((tmp_path / "best" / "config.yaml").read_text()) == task.config
    csv = pd.read_csv(tmp_path / "best" / "metrics.csv")
    assert list(csv["iteration"]) == [1, 2, 3, 4, 5, 6]
    for name, history in task.metrics.items():
        np.testing.assert_array_equal(csv[name].to_numpy(), np.asarray(history))
    assert csv["valid_accuracy"].isna().tolist() == [True, False] * 3  # validated every 2 iterations
    about = yaml.safe_load((tmp_path / "best" / "export.yaml").read_text())
    assert about["task"] == want and about["selected_on"] == "valid_accuracy" and about["final_checkpoint"]
    assert about["chosen"] == {"by": "valid_accuracy", "value": task.final["valid_accuracy"], "asked": "accuracy",
                               "better": "higher"}


def test_without_validation_best_is_judged_on_the_test_metric(plain, tmp_path):
    run = snnbatch.open_run(plain)
    table = run.to_pandas()
    assert run.best_metric("accuracy") == "test_accuracy"
    assert run.best("accuracy").id == table.loc[table["test_accuracy"].idxmax(), "id"]
    assert run.best_metric("final_loss") == "final_loss"
    other = table["id"][table["id"] != run.best("accuracy").id].iloc[0]
    r = export(plain, "--task", other[:6], "--out", tmp_path / "one")
    assert r.exit_code == 0, r.output
    assert f"the final one of task {other}, after iteration 2" in r.output
    assert yaml.safe_load((tmp_path / "one" / "export.yaml").read_text())["task"] == other


@pytest.mark.parametrize("args, message", [
    (["--best", "correlation", "--out", "x"], "no done task has a metric 'correlation' (nor valid_correlation"),
    (["--best", "accuracy"], "--best and --task write into --out DIR"),
    ([], "give --best METRIC or --task ID"),
    (["--task", "zz", "--out", "x"], "'zz' is not a task id"),
])
def test_bad_export_arguments_exit_2(plain, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    r = export(plain, *args)
    assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.output, r.output
    assert list(tmp_path.iterdir()) == []


def test_tensorboard_files_hold_each_tasks_histories_and_hparams(validating, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    r = export(validating, "--tensorboard", tmp_path / "tb")
    assert r.exit_code == 0 and "tensorboard --logdir" in r.output, r.output
    run = snnbatch.open_run(validating)
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == sorted(t.id for t in run)
    for task in run:
        acc = EventAccumulator(str(tmp_path / "tb" / task.id), size_guidance={"scalars": 0})
        acc.Reload()
        for name, history in task.metrics.items():
            got = [(e.step, e.value) for e in acc.Scalars(name)]
            want = [(i + 1, v) for i, v in enumerate(history) if not math.isnan(v)]
            assert [s for s, _ in got] == [s for s, _ in want], name
            np.testing.assert_allclose([v for _, v in got], [v for _, v in want], rtol=1e-6)
        assert [e.step for e in acc.Scalars("valid_accuracy")] == [2, 4, 6]
        final = acc.Scalars("result/test_accuracy")
        assert len(final) == 1 and final[0].value == pytest.approx(task.final["test_accuracy"], rel=1e-6)
        content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
        hp = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
        assert hp["lr"].number_value == pytest.approx(task.params["lr"]) and hp["seed"].number_value == task.params["seed"]
        assert hp["state"].string_value == "done"
