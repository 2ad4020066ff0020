"""The Heidelberg Spiking Digits reader: published HDF5 layout, binning, splits, and clear errors for missing files.

The tests write small files in the layout of the published ``shd_train.h5`` /
``shd_test.h5`` (variable-length ``spikes/times`` in seconds and
``spikes/units`` per sample, and ``labels``).
"""
import h5py
import numpy as np
import pytest

from snnbatch.jobs.trainer import build_dataset
from snnbatch.jobs.config import TaskConfig
from snnbatch.jobs.datasets import SHDData
from snnbatch.jobs.errors import SpecError
from snnbatch.jobs.runner import run_task
from snnbatch.jobs.store import TaskStore
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore


def write_shd(path, times, units, labels):
    n = len(labels)
    with h5py.File(path, "w") as f:
        spikes = f.create_group("spikes")
        t = spikes.create_dataset("times", (n,), dtype=h5py.vlen_dtype(np.dtype("float32")))
        u = spikes.create_dataset("units", (n,), dtype=h5py.vlen_dtype(np.dtype("uint16")))
        for i in range(n):
            t[i] = np.asarray(times[i], np.float32)
            u[i] = np.asarray(units[i], np.uint16)
        f.create_dataset("labels", data=np.asarray(labels, np.uint16))
    return path


def synthetic_shd(path, n, n_classes=4, n_units=40, seed=0):
    """Class c: units of block c fire early, the others fire at random times (about 0.2 s of 'speech')."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    block = n_units // n_classes
    times, units = [], []
    for c in labels:
        u_sig = np.arange(c * block, (c + 1) * block)
        t_sig = rng.uniform(0.0, 0.08, block)
        u_noise = rng.integers(0, n_units, 20)
        t_noise = rng.uniform(0.0, 0.2, 20)
        order = np.argsort(np.concatenate([t_sig, t_noise]))
        times.append(np.concatenate([t_sig, t_noise])[order])
        units.append(np.concatenate([u_sig, u_noise])[order])
    return write_shd(path, times, units, labels), labels


def test_binning_in_the_published_layout(tmp_path):
    times = [[0.0, 0.0009, 0.001, 0.003, 0.0031, 0.0099, 0.010, 0.5], [0.002]]
    units = [[0, 1, 2, 3, 3, 4, 5, 6], [2]]
    path = write_shd(tmp_path / "a.h5", times, units, [1, 0])
    cfg = SHDData(train_path=str(path), test_path=str(path), n_steps=10, dt=1e-3, n_inputs=8, n_classes=2)
    data = build_dataset(cfg)
    assert (data.n_inputs, data.n_classes, data.n_steps) == (8, 2, 10)
    assert data.train_labels.tolist() == [1, 0] and data.train_labels.dtype == np.int64
    dense = data.train_events.to_dense(8)
    expected = np.zeros((2, 10, 8))
    expected[0, 0, 0] = expected[0, 0, 1] = 1  # 0 and 0.9 ms: step 0
    expected[0, 1, 2] = 1  # 1 ms, on the edge: step 1
    expected[0, 3, 3] = 2  # two spikes of unit 3 in one step: counted twice
    expected[0, 9, 4] = 1  # 9.9 ms: the last step; 10 ms and 0.5 s are past n_steps·dt: dropped
    expected[1, 2, 2] = 1
    assert np.array_equal(dense, expected)


def test_max_samples_and_the_split_are_seeded_and_disjoint(tmp_path):
    path, labels = synthetic_shd(tmp_path / "train.h5", 50)
    cfg = SHDData(train_path=str(path), test_fraction=0.2, max_samples=40, n_steps=20, dt=0.01, n_inputs=40,
                  n_classes=4, seed=3)
    a, b = build_dataset(cfg), build_dataset(cfg)
    assert len(a.train_labels) == 32 and len(a.test_labels) == 8
    for x, y in ((a.train_events, b.train_events), (a.test_events, b.test_events)):
        assert np.array_equal(x.ptr, y.ptr) and np.array_equal(x.units, y.units)
    # the samples are the file's own, none in both parts: identify them by their binned spikes
    full = build_dataset(SHDData(train_path=str(path), test_path=str(path), n_steps=20, dt=0.01, n_inputs=40,
                                  n_classes=4))
    rows = {full.train_events.take([i]).to_dense(40).tobytes(): i for i in range(50)}
    train_ids = [rows[a.train_events.take([i]).to_dense(40).tobytes()] for i in range(32)]
    test_ids = [rows[a.test_events.take([i]).to_dense(40).tobytes()] for i in range(8)]
    assert not set(train_ids) & set(test_ids) and len(set(train_ids) | set(test_ids)) == 40
    assert np.array_equal(a.train_labels, labels[train_ids]) and np.array_equal(a.test_labels, labels[test_ids])
    other = build_dataset(cfg.model_copy(update={"seed": 4}))
    assert not np.array_equal(other.test_labels, a.test_labels) or not np.array_equal(
        other.test_events.ptr, a.test_events.ptr)


def test_missing_file_is_a_spec_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere" / "shd_train.h5"
    with pytest.raises(SpecError) as err:
        spec_mod.parse(f"dataset: {{type: shd, train_path: {missing}}}\n")
    (problem,) = err.value.problems
    assert problem.startswith(f"dataset.train_path: file not found: {missing} (looked for {missing}). ")
    # where the data comes from, and how to point at it
    assert "snnbatch downloads nothing" in problem and "shd_train.h5.gz" in problem
    assert "set dataset.train_path / dataset.test_path" in problem
    present = write_shd(tmp_path / "t.h5", [[0.0]], [[0]], [0])
    with pytest.raises(SpecError) as err:
        spec_mod.parse(f"dataset: {{type: shd, train_path: {present}, test_path: {missing}}}\n")
    (problem,) = err.value.problems
    assert problem.startswith(f"dataset.test_path: file not found: {missing} ")


def test_relative_path_is_checked_in_the_working_directory_and_stored_absolute(tmp_path, monkeypatch):
    write_shd(tmp_path / "t.h5", [[0.0]], [[0]], [0])
    monkeypatch.chdir(tmp_path)
    spec = spec_mod.parse("dataset: {type: shd, train_path: t.h5}\n")
    assert spec.dataset.train_path == str(tmp_path / "t.h5")
    # a stored task config is read back without touching the file system
    assert TaskConfig.model_validate({"dataset": {"type": "shd", "train_path": "/no/such.h5"}}).dataset.train_path == "/no/such.h5"


def test_bad_files_give_errors_naming_the_file(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("labels", data=np.zeros(3, np.uint16))
    with pytest.raises(ValueError, match=r"dataset.train_path: .*x.h5: not in the SHD layout: missing spikes/times, spikes/units"):
        build_dataset(SHDData(train_path=str(path)))
    write_shd(path, [[0.0, 0.1]], [[0, 800]], [0])
    with pytest.raises(ValueError, match=r"x.h5: sample 0 has units outside \[0, 700\)"):
        build_dataset(SHDData(train_path=str(path), test_path=str(path)))
    write_shd(path, [[0.0]], [[0]], [25])
    with pytest.raises(ValueError, match=r"labels outside \[0, 20\)"):
        build_dataset(SHDData(train_path=str(path), test_path=str(path)))
    write_shd(path, [[0.0]], [[0]], [1])
    with pytest.raises(FileNotFoundError, match="dataset.test_path: file not found: /no/such.h5"):
        build_dataset(SHDData(train_path=str(path), test_path="/no/such.h5"))


def _shd_task(tmp_path, name, train, test):
    text = (
        f"name: {name}\nmodel: {{type: lif, n_hidden: 32}}\n"
        f"dataset: {{type: shd, train_path: {train}, test_path: {test}, n_steps: 25, dt: 0.008, n_inputs: 40, n_classes: 4}}\n"
        "training: {iterations: 30, batch_size: 40, lr: 1.0e-2}\ncheckpoint: {every_iterations: 10}\n"
    )
    spec = spec_mod.parse(text)
    tasks = planner.plan(spec)
    store, _ = RunStore.create_or_update(tmp_path / name, spec, text, tasks)
    return store.path, tasks[0].id


def test_a_task_trains_on_shd_files(tmp_path):
    train, _ = synthetic_shd(tmp_path / "train.h5", 160, seed=0)
    test, _ = synthetic_shd(tmp_path / "test.h5", 80, seed=1)
    path, tid = _shd_task(tmp_path, "shd", train, test)
    out = run_task(path, tid)
    assert out.state == "done", out.error
    status = TaskStore(path, tid, mode="r").status()
    assert status["test_accuracy"] > 0.6  # 4 classes: chance is 0.25


def test_missing_file_when_the_task_runs_fails_the_task_naming_it(tmp_path):
    train, _ = synthetic_shd(tmp_path / "train.h5", 20, seed=0)
    test, _ = synthetic_shd(tmp_path / "test.h5", 8, seed=1)
    path, tid = _shd_task(tmp_path, "gone", train, test)
    test.unlink()  # e.g. not copied to the compute node
    out = run_task(path, tid)
    assert out.state == "failed"
    status = TaskStore(path, tid, mode="r").status()
    assert status["state"] == "failed"
    assert status["error_line"] == f"FileNotFoundError: dataset.test_path: file not found: {test}"
