"""training.validate_every: validation metrics in the history (NaN between validations), the state of the
best validation kept beside the newest, the test metrics computed once, on that state; bit for bit after kills."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import tree
from snnbatch import open_run
from snnbatch.jobs.config import EarlyStopping
from snnbatch.jobs.datasets import RandmanData, build_randman
from snnbatch.jobs.early_stopping import Tracker
from snnbatch.jobs.errors import SpecError
from snnbatch.jobs.registry import Algorithm, Metric, RegistryError, register
from snnbatch.jobs.runner import run_task
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore
from snnbatch.testing import check_trainer

SPEC = """\
name: valid
dataset: {n_train: 64, n_test: 32, n_valid: 32, n_inputs: 16, n_steps: 20}
model: {n_hidden: 8}
training: {iterations: 23, batch_size: 32, lr: 0.05, validate_every: 5}
checkpoint: {every_iterations: 5}
"""


def _store(path, text=SPEC):
    spec = spec_mod.parse(text)
    (task,) = planner.plan(spec)
    store, _ = RunStore.create_or_update(path, spec, text, [task])
    return store, task


def _done(path, text=SPEC):
    store, task = _store(path, text)
    assert run_task(store.path, task.id).state == "done"
    return open_run(store.path).task(task.id), task


def test_randman_validation_samples_leave_the_training_and_test_samples_as_they_were():
    plain = build_randman(RandmanData(n_train=60, n_test=30, n_inputs=16, n_steps=20, n_classes=3))
    valid = build_randman(RandmanData(n_train=60, n_test=30, n_inputs=16, n_steps=20, n_classes=3, n_valid=31))
    assert plain.valid_events is None and plain.valid_labels is None
    for part in ("train_events", "test_events"):
        for x, y in zip(getattr(plain, part), getattr(valid, part)):
            assert x.tobytes() == y.tobytes(), part
    assert plain.train_labels.tobytes() == valid.train_labels.tobytes()
    assert plain.test_labels.tobytes() == valid.test_labels.tobytes()
    assert np.bincount(valid.valid_labels).tolist() == [10, 10, 10]  # n_valid // n_classes per class
    ev = valid.valid_events
    assert ev.n_samples == 30 and ev.n_steps == 20
    assert (np.diff(ev.ptr[:, [0, -1]], axis=1) == 16).all()  # one spike per input unit, within the steps
    # fresh points on the same manifolds: the nearest training sample is of their class, as for the test samples
    def times(events):
        t = np.zeros((events.n_samples, 16))
        for n in range(events.n_samples):
            for step in range(events.n_steps):
                t[n, events.units[events.ptr[n, step]:events.ptr[n, step + 1]]] = step
        return t
    train_t, valid_t = times(valid.train_events), times(ev)
    nearest = np.argmin(((valid_t[:, None] - train_t[None]) ** 2).sum(-1), axis=1)
    assert (valid.train_labels[nearest] == valid.valid_labels).mean() > 0.9  # chance: 1/3


def test_the_history_is_nan_between_validations_and_the_status_says_which_state_it_ends_with(tmp_path):
    got, _ = _done(tmp_path / "s")
    acc = got.metrics["valid_accuracy"]
    assert len(acc) == len(got.metrics["loss"]) == 23
    measured = [i + 1 for i in np.flatnonzero(~np.isnan(acc))]
    assert measured == [5, 10, 15, 20, 23]  # every 5 iterations, and once at the end
    assert measured == [i + 1 for i in np.flatnonzero(~np.isnan(got.metrics["valid_loss"]))]
    values = acc[~np.isnan(acc)]
    best = measured[int(np.argmax(values))]  # the first of equal values
    status = got.status
    assert status["best_iteration"] == best and status["selected_on"] == "valid_accuracy"
    assert status["valid_accuracy"] == acc[best - 1] and status["valid_loss"] == got.metrics["valid_loss"][best - 1]
    assert not any(k.startswith("_best/") for k in got.checkpoint)
    records = RunStore.open(tmp_path / "s").metrics()  # what readers without the registry know
    assert records["valid_accuracy"]["validation"] is True and records["test_accuracy"]["validation"] is False


def test_the_task_ends_with_the_best_validation_state_and_its_test_metrics(tmp_path):
    got, _ = _done(tmp_path / "s", SPEC.replace("validate_every: 5", "validate_every: 2"))
    best = got.status["best_iteration"]
    assert 0 < best < 23  # else this test shows nothing: choose another spec
    # the same training, stopped at the best iteration, without validation: the same state and test metrics
    plain = SPEC.replace(", validate_every: 5", "").replace("iterations: 23", f"iterations: {best}")
    ref, _ = _done(tmp_path / "ref", plain)
    params = [k for k in ref.checkpoint if k.startswith("params/")]
    assert params
    for k in params:
        assert np.asarray(got.checkpoint[k]).tobytes() == np.asarray(ref.checkpoint[k]).tobytes(), k
    for k in ("test_loss", "test_accuracy"):
        assert got.status[k] == ref.status[k]


def test_a_validating_task_resumes_bit_for_bit_after_kills():
    import yaml

    check = check_trainer(yaml.safe_load(SPEC), kills=2, checkpoint_every=3)
    assert check.attempts >= 3


def test_early_stopping_on_a_validation_metric_decides_at_validations_and_resumes_bit_for_bit(tmp_path):
    text = SPEC.replace("iterations: 23", "iterations: 400").replace(
        "validate_every: 5", "validate_every: 2,\n           early_stopping: {metric: valid_loss, patience: 3}")
    got, task = _done(tmp_path / "ref", text)
    status = got.status
    stop = status["stopped_early"]
    assert stop is not None and stop % 2 == 0 and stop < 400
    loss = got.metrics["valid_loss"]
    measured = [i + 1 for i in np.flatnonzero(~np.isnan(loss))]
    assert measured[-1] == stop and measured == list(range(2, stop + 1, 2))
    # stopped after three validations without a lower valid_loss; the state is selected on valid_accuracy
    assert int(np.nanargmin(loss)) + 1 == stop - 3 * 2
    acc = got.metrics["valid_accuracy"]
    assert status["selected_on"] == "valid_accuracy" and status["best_iteration"] == int(np.nanargmax(acc)) + 1
    assert status["valid_accuracy"] == np.nanmax(acc)
    run, _ = _store(tmp_path / "run", text)
    cli = [sys.executable, "-m", "snnbatch.orchestrator.cli", "run-task", str(run.path), task.id]
    for k in (3, stop - 1):
        assert subprocess.run(cli, env={**os.environ, "SNNBATCH_KILL_AT_ITERATION": str(k)},
                              timeout=300).returncode == -9
    assert subprocess.run(cli, timeout=300).returncode == 0
    again = open_run(run.path).task(task.id)
    assert again.status["stopped_early"] == stop and again.status["best_iteration"] == status["best_iteration"]
    for name, value in got.checkpoint.items():
        assert np.asarray(again.checkpoint[name]).tobytes() == np.asarray(value).tobytes(), name
    for name, value in got.metrics.items():
        assert again.metrics[name].tobytes() == value.tobytes(), name


def test_select_on_chooses_the_metric_and_its_direction(tmp_path):
    got, _ = _done(tmp_path / "s", SPEC.replace("validate_every: 5", "validate_every: 2, select_on: valid_loss"))
    loss = got.metrics["valid_loss"]
    assert got.status["selected_on"] == "valid_loss"
    assert got.status["best_iteration"] == int(np.nanargmin(loss)) + 1


def test_the_tracker_leaves_nan_entries_out():
    t = Tracker(EarlyStopping(metric="valid_loss", patience=2, every=1), "lower")
    nan = math.nan
    history = [nan, 3.0, nan, 2.0, nan, 2.5, nan, 2.5]
    assert [t.evaluate(history, i) for i in range(1, 9)] == [None, True, None, True, None, False, None, False]
    assert t.stop and t.best_iteration == 4
    means = Tracker(EarlyStopping(metric="valid_loss", patience=2, every=4), "lower")
    assert means.evaluate(history, 4) is True and means.best_value == 2.5


def test_the_keys_stay_out_of_the_task_id_until_set():
    plain = SPEC.replace(", validate_every: 5", "").replace(", n_valid: 32", "")
    nulls = plain.replace("lr: 0.05", "lr: 0.05, validate_every: null, select_on: null").replace(
        "n_steps: 20}", "n_steps: 20, n_valid: 0}")
    ids = [planner.plan(spec_mod.parse(t))[0].id for t in (plain, nulls, SPEC)]
    assert ids[0] == ids[1] != ids[2]


@pytest.mark.parametrize("change, expected", [
    ((", n_valid: 32", ""), "training.validate_every: dataset 'randman' has no validation split: set dataset.n_valid"),
    (("validate_every: 5", "validate_every: 5, select_on: test_accuracy"),
     "training.select_on: unknown validation metric 'test_accuracy' for model 'lif' (choose from: valid_loss, "
     "valid_accuracy)"),
    ((", validate_every: 5", ", select_on: valid_loss"),
     "training.select_on: selects on a validation metric: set training.validate_every"),
    ((", validate_every: 5", ", early_stopping: {metric: valid_accuracy, patience: 2}"),
     "training.early_stopping.metric: 'valid_accuracy' is measured only when validating: set "
     "training.validate_every"),
    (("validate_every: 5", "validate_every: 0"), "training.validate_every: expected a positive integer, got 0"),
    (("dataset: {n_train: 64, n_test: 32, n_valid: 32, n_inputs: 16, n_steps: 20}\nmodel: {n_hidden: 8}",
      "model: {type: izhikevich}"),
     "training.validate_every: model 'izhikevich' reports no validation metric: it cannot validate"),
])
def test_bad_validation_keys_exit_2_naming_the_key(cli, write_spec, tmp_path, change, expected):
    text = SPEC.replace(*change)
    assert text != SPEC
    with pytest.raises(SpecError, match=expected.split(": ", 1)[0]):
        spec_mod.parse(text)
    path = write_spec(text)
    before = tree(tmp_path)
    result = cli("submit", path, "--backend", "inline", "--no-progress")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert any(line.strip().startswith(expected) for line in result.stderr.splitlines()), result.stderr
    assert tree(tmp_path) == before


def test_a_validation_metric_cannot_be_final():
    from typing import Literal

    from snnbatch.jobs.lif_bptt import ALGORITHM
    from snnbatch.jobs.registry import Section

    class Model(Section):
        type: Literal["final_validation"] = "final_validation"

    bad = Algorithm(model=Model, rules=ALGORITHM.rules, datasets=ALGORITHM.datasets,
                    metrics=(Metric("valid_x", "x", validation=True, final=True),))
    with pytest.raises(RegistryError, match="'valid_x': a validation metric .* cannot be final"):
        register(bad)
    from snnbatch.jobs.registry import algorithms

    assert "final_validation" not in algorithms()
    assert Metric("valid_x", "x", validation=True).as_record()["validation"] is True


def test_delayed_match_validation_samples_leave_the_training_and_test_samples_as_they_were():
    from snnbatch.jobs.memory_data import DelayedMatchData, build_delayed_match

    plain = build_delayed_match(DelayedMatchData(n_train=40, n_test=20, delay_steps=5))
    valid = build_delayed_match(DelayedMatchData(n_train=40, n_test=20, delay_steps=5, n_valid=16))
    assert plain.valid_events is None
    for part in ("train_events", "test_events"):
        for x, y in zip(getattr(plain, part), getattr(valid, part)):
            assert x.tobytes() == y.tobytes(), part
    assert valid.valid_events.n_samples == 16 and np.bincount(valid.valid_labels).tolist() == [8, 8]


@pytest.mark.parametrize("model, rule", [("alif", "bptt"), ("lif", "eprop"), ("alif", "eprop")])
def test_the_other_spiking_classifiers_validate_and_resume_bit_for_bit(model, rule, tmp_path):
    import yaml

    data = yaml.safe_load(SPEC)
    data["model"] = {"type": model, "n_hidden": 8, "recurrent": True}
    data["learning"] = {"rule": rule}
    data["training"]["iterations"] = 12
    check = check_trainer(data, kills=1, checkpoint_every=4, sigterm=False, workdir=tmp_path)
    assert check.attempts >= 2
    got = open_run(tmp_path / "reference").task(check.task_id)
    assert [i + 1 for i in np.flatnonzero(~np.isnan(got.metrics["valid_accuracy"]))] == [5, 10, 12]
    assert got.status["selected_on"] == "valid_accuracy" and 0 < got.status["best_iteration"] <= 12


DENDRITIC = {"name": "dendritic", "model": {"type": "dendritic", "n_neurons": 6, "n_inputs": 4, "duration": 40.0},
             "dataset": {"type": "teacher", "n_valid": 2},
             "training": {"iterations": 12, "lr": 3.0e-5, "validate_every": 4}}


def test_the_dendritic_student_validates_on_held_out_inputs_and_resumes_bit_for_bit(tmp_path):
    from snnbatch.jobs.dendritic_adjoint import DendriticAdjointTrainer
    from snnbatch.jobs.config import TaskConfig

    config = {k: v for k, v in DENDRITIC.items() if k != "name"}
    with_valid = DendriticAdjointTrainer(TaskConfig.model_validate(config))
    plain = dict(config, dataset={"type": "teacher"}, training={"iterations": 12, "lr": 3.0e-5})
    without = DendriticAdjointTrainer(TaskConfig.model_validate(plain))
    assert with_valid.task.keys() == without.task.keys()
    assert all(with_valid.task[k].tobytes() == without.task[k].tobytes() for k in without.task)  # task unchanged
    assert len(with_valid.valid) == 2
    assert not np.array_equal(with_valid.valid[0]["inputs"], with_valid.task["inputs"])
    state = with_valid.init_state()
    teacher = {k[8:]: v for k, v in with_valid.task.items() if k.startswith("teacher/")}
    for k, v in teacher.items():  # the teacher's weights reproduce the held-out traces exactly
        state.arrays[f"params/{k}"] = v.copy()
    assert with_valid.validate(state)["valid_loss"] == 0.0
    check = check_trainer(DENDRITIC, kills=1, checkpoint_every=3, sigterm=False,
                          workdir=tmp_path)
    got = open_run(tmp_path / "reference").task(check.task_id)
    measured = [i + 1 for i in np.flatnonzero(~np.isnan(got.metrics["valid_correlation"]))]
    assert measured == [4, 8, 12] and got.status["selected_on"] == "valid_correlation"
    corr = got.metrics["valid_correlation"]
    assert got.status["best_iteration"] == int(np.nanargmax(corr)) + 1


def test_force_has_no_validation_split():
    with pytest.raises(SpecError, match="training.validate_every: model 'force' reports no validation metric"):
        spec_mod.parse("name: f\nmodel: {type: force}\ntraining: {iterations: 2, validate_every: 1}\n")
    with pytest.raises(SpecError, match="training.validate_every: dataset 'teacher' has no validation split: set "
                                        "dataset.n_valid"):
        spec_mod.parse("name: d\nmodel: {type: dendritic}\ntraining: {iterations: 2, validate_every: 1}\n")


def test_status_shows_validation_and_test_apart(tmp_path):
    import io
    import re

    import yaml
    from rich.console import Console

    from snnbatch.orchestrator.cli import status as st

    def table(path, width=200):
        store = RunStore.open(path)
        out = io.StringIO()
        Console(file=out, width=width, color_system=None).print(st.render(store, st.task_rows(store), width))
        lines = out.getvalue().splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith("task "))
        return re.split(r"\s{2,}", lines[at].strip()), lines[at + 2].split()

    got, _ = _done(tmp_path / "s")
    header, row = table(tmp_path / "s")
    assert header[header.index("valid accuracy"):] == ["valid accuracy", "test accuracy", "best at", "time"]
    assert row[header.index("best at")] == str(got.status["best_iteration"])
    header, _ = table(tmp_path / "s", width=70)  # too narrow for all: the validation stays beside the test
    assert "accuracy" not in header and {"loss", "valid accuracy", "test accuracy"} <= set(header)
    _done(tmp_path / "d", yaml.safe_dump(DENDRITIC))
    header, _ = table(tmp_path / "d")
    assert header[-4:] == ["valid correlation", "test correlation", "best at", "time"]
    plain, _ = _done(tmp_path / "p", SPEC.replace(", validate_every: 5", ""))
    header, _ = table(tmp_path / "p")
    assert "best at" not in header and not any(h.startswith("valid") for h in header)


@pytest.mark.dask
def test_a_validating_sweep_gives_the_same_bits_on_the_local_dask_backend(tmp_path):
    text = SPEC + "sweep:\n  grid: {lr: [0.02, 0.05]}\n"
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    runs = {}
    for backend in ("inline", "local"):
        r = subprocess.run([sys.executable, "-m", "snnbatch.orchestrator.cli", "submit", str(spec), "--store",
                            str(tmp_path / backend), "--backend", backend, "--max-parallel", "2", "--no-progress"],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        runs[backend] = open_run(tmp_path / backend)
    assert [t.id for t in runs["local"]] == [t.id for t in runs["inline"]] and len(runs["inline"]) == 2
    for ref in runs["inline"]:
        got = runs["local"].task(ref.id)
        assert set(got.checkpoint) == set(ref.checkpoint)
        for k, v in ref.checkpoint.items():
            assert np.asarray(got.checkpoint[k]).tobytes() == np.asarray(v).tobytes(), k
        for k, v in ref.metrics.items():
            assert got.metrics[k].tobytes() == v.tobytes(), k
        for k in ("best_iteration", "selected_on", "valid_accuracy", "valid_loss", "test_accuracy", "test_loss"):
            assert got.status[k] == ref.status[k], k
