"""learning.readout: mse: lif and alif regress their readout voltages on the target trajectories of an
array_files dataset (0/1 input rasters), learn, report loss only, resume bit for bit after SIGKILL;
the wrong pairings of readout and data are spec errors naming the key."""
import numpy as np
import pytest

from snnbatch.jobs.runner import run_task
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore
from snnbatch import open_run
from snnbatch.jobs.errors import SpecError
from snnbatch.testing import check_trainer

N, T, C, O = 96, 30, 12, 2


def _files(tmp_path, targets=True):
    """Poisson-like rasters; the targets are two input groups' activity through the readout's own filters."""
    rng = np.random.default_rng(0)
    x = (rng.random((N, T, C)) < rng.uniform(0.05, 0.3, (N, 1, C))).astype(np.float32)
    drive = np.stack([x[:, :, : C // 2].sum(axis=2), x[:, :, C // 2:].sum(axis=2)], axis=2)
    y = np.zeros_like(drive)
    io = uo = np.zeros((N, O))
    for n in range(T):
        io = 0.8 * io + 0.1 * drive[:, n]
        uo = 0.9 * uo + io
        y[:, n] = uo
    path = tmp_path / "data.npz"
    arrays = {"inputs": x, "targets": y.astype(np.float32)} if targets else {"inputs": x,
                                                                           "labels": (y[:, -1, 0] > y[:, -1, 1])}
    if not targets:
        arrays["labels"] = arrays["labels"].astype(np.int64)
    np.savez(path, **arrays)
    return path


def _spec(path, model="lif", **learning):
    return {"model": {"type": model, "n_hidden": 16},
            "dataset": {"type": "array_files", "train_path": str(path), "test_fraction": 0.25},
            "learning": {"rule": "bptt", "readout": "mse", **learning},
            "training": {"iterations": 40, "batch_size": 24, "lr": 1e-2}}


def _run(tmp_path, spec):
    import yaml

    text = yaml.safe_dump(spec, sort_keys=False)
    parsed = spec_mod.parse(text, "<test>")
    tasks = planner.plan(parsed)
    store, _ = RunStore.create_or_update(tmp_path / "store", parsed, text, tasks)
    out = run_task(store.path, tasks[0].id)
    assert out.state == "done", out.error
    return open_run(store.path).task(tasks[0].id)


@pytest.mark.parametrize("model", ["lif", "alif"])
def test_a_network_learns_target_trajectories(model, tmp_path):
    task = _run(tmp_path, _spec(_files(tmp_path), model))
    loss = task.metrics["loss"]
    assert set(task.metrics) == {"loss"}
    assert loss[-5:].mean() < 0.5 * loss[:5].mean()
    assert "test_loss" in task.status and "test_accuracy" not in task.status
    assert np.isfinite(task.status["test_loss"])


def test_regression_resumes_bit_identically_after_sigkill(tmp_path):
    spec = _spec(_files(tmp_path), "alif")
    spec["training"]["iterations"] = 12
    result = check_trainer(spec, kills=2, seed=2, workdir=tmp_path / "check")
    assert result.iterations == 12


def _problems(spec):
    import yaml

    with pytest.raises(SpecError) as exc:
        spec_mod.parse(yaml.safe_dump(spec), "<test>")
    return str(exc.value)


def test_wrong_pairings_are_spec_errors_naming_the_key(tmp_path):
    path = _files(tmp_path)
    on_randman = _spec(path)
    on_randman["dataset"] = {"type": "randman"}
    assert "learning.readout: mse regresses on target trajectories" in _problems(on_randman)
    targets_without = _spec(path)
    targets_without["learning"] = {"rule": "bptt"}
    targets_without["dataset"]["target"] = "targets"
    assert "dataset.target: target trajectories are learnt by regression" in _problems(targets_without)
    stop_on_accuracy = _spec(path)
    stop_on_accuracy["training"]["early_stopping"] = {"metric": "accuracy", "patience": 2}
    assert "training.early_stopping.metric: a regression (readout mse) reports no accuracy" in _problems(
        stop_on_accuracy)


def test_labels_files_train_a_classifier_and_refuse_mse(tmp_path):
    path = _files(tmp_path, targets=False)
    spec = _spec(path)
    spec["learning"] = {"rule": "bptt", "readout": "mean"}
    spec["training"]["iterations"] = 4
    task = _run(tmp_path, spec)
    assert set(task.metrics) == {"loss", "accuracy"} and 0.0 <= task.status["test_accuracy"] <= 1.0
    wrong = _spec(path)
    wrong["dataset"]["target"] = "labels"
    assert "learning.readout: mse regresses on target trajectories" in _problems(wrong)


def test_a_regression_validates_and_is_selected_on_valid_loss(tmp_path):
    spec = _spec(_files(tmp_path))
    spec["dataset"]["valid_fraction"] = 0.2
    spec["training"].update(validate_every=10)
    assert "training.select_on: a regression (readout mse) reports no accuracy" in _problems(spec)
    spec["training"]["select_on"] = "valid_loss"
    task = _run(tmp_path, spec)
    valid = task.metrics["valid_loss"]
    assert np.isfinite(valid).sum() == 4 and "valid_accuracy" not in task.metrics
    assert task.status["selected_on"] == "valid_loss" and np.isfinite(task.status["test_loss"])
