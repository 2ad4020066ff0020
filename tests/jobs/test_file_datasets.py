"""Datasets from your own files: ``spike_files`` (NPZ, .npy directories, HDF5; flat and ragged layouts)
and ``array_files`` (dense inputs with labels or target trajectories).

The spike files are checked against a binning written out here (floor(t / dt) per spike), the
SHD layout against the ``shd`` dataset, the memory maps against NumPy's and h5py's own reads.
Bad files are refused by ``snnbatch submit`` run as a subprocess: exit 2, the file and the key
named, nothing written. The dense data are read by a trainer of a small algorithm registered in a
subprocess, so that the registry of this test process keeps only snnbatch's own algorithms.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from snnbatch import open_run
from snnbatch.jobs import file_datasets, named_arrays
from snnbatch.jobs.config import TaskConfig
from snnbatch.jobs.datasets import SHDData
from snnbatch.jobs.errors import SpecError
from snnbatch.jobs.file_datasets import ArrayFiles, SpikeFiles
from snnbatch.jobs.runner import run_task
from snnbatch.jobs.store import TaskStore
from snnbatch.jobs.trainer import build_dataset
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore

CHECK = {"check_files": True}
N, N_INPUTS, N_CLASSES, N_STEPS, DT = 60, 30, 3, 20, 1e-3


# ------------------------------------------------------------------ writing files


def make_spikes(n=N, n_inputs=N_INPUTS, n_classes=N_CLASSES, seed=0):
    """Class c: the units of block c fire in the first third of the window, plus spikes at random
    (some after n_steps·dt, to be dropped). Returns per-sample times (s, float32), units and labels."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % n_classes)
    block = n_inputs // n_classes
    times, units = [], []
    for c in labels:
        k = int(rng.integers(0, 12))  # samples have different numbers of spikes
        t = np.concatenate([rng.uniform(0, N_STEPS * DT / 3, block), rng.uniform(0, 1.2 * N_STEPS * DT, k)])
        u = np.concatenate([np.arange(c * block, (c + 1) * block), rng.integers(0, n_inputs, k)])
        order = np.argsort(t)
        times.append(t[order].astype(np.float32))
        units.append(u[order].astype(np.uint16))
    return times, units, labels


def flat(times, units, labels):
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in times])]).astype(np.int64)
    return {"times": np.concatenate(times), "units": np.concatenate(units), "offsets": offsets,
            "labels": np.asarray(labels, np.int64)}


def ragged(arrays):
    out = np.empty(len(arrays), dtype=object)
    for i, a in enumerate(arrays):
        out[i] = a
    return out


def write_flat_npz(path, times, units, labels, compressed=False):
    (np.savez_compressed if compressed else np.savez)(path, **flat(times, units, labels))
    return path


def write_object_npz(path, times, units, labels):
    np.savez(path, times=ragged(times), units=ragged(units), labels=np.asarray(labels))
    return path


def write_npy_dir(path, arrays):
    path.mkdir()
    for name, value in arrays.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        np.save(path / f"{name}.npy", value)
    return path


def write_shd(path, times, units, labels):
    """The layout of the published shd_train.h5: variable-length spikes/times and spikes/units, labels."""
    n = len(labels)
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.dtype("float32")))
        u = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.dtype("uint16")))
        for i in range(n):
            t[i], u[i] = times[i], units[i]
        f.create_dataset("labels", data=np.asarray(labels, np.uint16))
    return path


def write_flat_h5(path, times, units, labels):
    with h5py.File(path, "w") as f:
        for name, value in flat(times, units, labels).items():
            f.create_dataset(name if name == "labels" else f"spikes/{name}", data=value)
    return path


def reference_events(times, units, n_inputs=N_INPUTS):
    """Spike counts per (sample, step, unit), binned here independently: step floor(t / dt)."""
    out = np.zeros((len(times), N_STEPS, n_inputs))
    for s, (t, u) in enumerate(zip(times, units)):
        steps = np.floor(t.astype(np.float64) / DT).astype(int)
        for k, unit in zip(steps, u):
            if k < N_STEPS:
                out[s, k, unit] += 1
    return out


def spike_section(path, **keys):
    values = dict(train_path=str(path), test_path=str(path), n_inputs=N_INPUTS, n_classes=N_CLASSES,
                  n_steps=N_STEPS, dt=DT)
    return SpikeFiles.model_validate({**values, **keys}, context=CHECK)


# ------------------------------------------------------------------ spike files


LAYOUTS = {
    "flat npz": (lambda p, s: write_flat_npz(p / "s.npz", *s), {}),
    "flat npz, compressed": (lambda p, s: write_flat_npz(p / "s.npz", *s, compressed=True), {}),
    "object npz": (lambda p, s: write_object_npz(p / "s.npz", *s), {"allow_pickle": True}),
    "npy directory": (lambda p, s: write_npy_dir(p / "s", flat(*s)), {}),
    "SHD-layout HDF5": (lambda p, s: write_shd(p / "s.h5", *s), {}),
    "flat HDF5": (lambda p, s: write_flat_h5(p / "s.hdf5", *s), {}),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_gives_the_events_binned_here(tmp_path, layout):
    write, keys = LAYOUTS[layout]
    times, units, labels = make_spikes()
    section = spike_section(write(tmp_path, (times, units, labels)), **keys)
    data = build_dataset(section)
    assert (data.n_inputs, data.n_classes, data.n_steps) == (N_INPUTS, N_CLASSES, N_STEPS)
    assert data.valid_events is None and data.valid_labels is None
    for events, got in ((data.train_events, data.train_labels), (data.test_events, data.test_labels)):
        assert np.array_equal(events.to_dense(N_INPUTS), reference_events(times, units))
        assert got.dtype == np.int64 and np.array_equal(got, labels)


def test_the_names_of_the_arrays_can_be_chosen(tmp_path):
    times, units, labels = make_spikes()
    arrays = flat(times, units, labels)
    np.savez(tmp_path / "s.npz", t=arrays["times"], ch=arrays["units"], idx=arrays["offsets"], y=arrays["labels"])
    section = spike_section(tmp_path / "s.npz", times_key="t", units_key="ch", offsets_key="idx", labels_key="y")
    assert np.array_equal(build_dataset(section).train_events.to_dense(N_INPUTS), reference_events(times, units))


@pytest.mark.parametrize("split", [{"test_path": "same"}, {"test_fraction": 0.25, "max_samples": 40, "seed": 5},
                                   {"test_fraction": 0.25, "valid_fraction": 0.1, "seed": 5},
                                   {"test_path": "same", "valid_fraction": 0.2, "max_samples": 40}])
def test_an_shd_file_gives_the_events_of_the_shd_dataset(tmp_path, split):
    times, units, labels = make_spikes(n=50, n_inputs=40, n_classes=4, seed=2)
    path = str(write_shd(tmp_path / "shd_train.h5", times, units, labels))
    keys = dict(train_path=path, n_steps=N_STEPS, dt=DT, n_inputs=40, n_classes=4,
                **{k: (path if v == "same" else v) for k, v in split.items()})
    ours = build_dataset(SpikeFiles.model_validate(keys, context=CHECK))
    shd = build_dataset(SHDData.model_validate(keys, context=CHECK))
    for a, b in ((ours.train_events, shd.train_events), (ours.test_events, shd.test_events)):
        assert np.array_equal(a.ptr, b.ptr) and np.array_equal(a.units, b.units)
    assert np.array_equal(ours.train_labels, shd.train_labels) and np.array_equal(ours.test_labels, shd.test_labels)
    if "valid_fraction" in split:  # the validation split too
        assert ours.valid_events.n_samples == shd.valid_events.n_samples > 0
        assert np.array_equal(ours.valid_events.ptr, shd.valid_events.ptr)
        assert np.array_equal(ours.valid_events.units, shd.valid_events.units)
        assert np.array_equal(ours.valid_labels, shd.valid_labels)
    else:
        assert ours.valid_events is None and shd.valid_events is None
    assert (ours.n_inputs, ours.n_classes, ours.n_steps) == (shd.n_inputs, shd.n_classes, shd.n_steps)


def sample_ids(events, full):
    """Which samples of ``full`` (all samples of the file, in order) the samples of ``events`` are."""
    rows = {full.take([i]).to_dense(N_INPUTS).tobytes(): i for i in range(full.n_samples)}
    assert len(rows) == full.n_samples  # every sample is told apart by its spikes
    return [rows[events.take([i]).to_dense(N_INPUTS).tobytes()] for i in range(events.n_samples)]


def test_train_validation_and_test_parts_are_seeded_disjoint_and_cover_the_file(tmp_path):
    times, units, labels = make_spikes()
    path = write_flat_npz(tmp_path / "s.npz", times, units, labels)
    full = build_dataset(spike_section(path)).train_events
    section = spike_section(path, test_path=None, test_fraction=0.2, valid_fraction=0.1, seed=3)
    a, b = build_dataset(section), build_dataset(section)
    assert (len(a.train_labels), len(a.valid_labels), len(a.test_labels)) == (42, 6, 12)
    for x, y in ((a.train_events, b.train_events), (a.valid_events, b.valid_events), (a.test_events, b.test_events)):
        assert np.array_equal(x.ptr, y.ptr) and np.array_equal(x.units, y.units)
    parts = [sample_ids(e, full) for e in (a.train_events, a.valid_events, a.test_events)]
    assert sorted(sum(parts, [])) == list(range(N))
    for ids, got in zip(parts, (a.train_labels, a.valid_labels, a.test_labels)):
        assert ids == sorted(ids) and np.array_equal(got, labels[ids])  # file order, their own labels
    other = build_dataset(section.model_copy(update={"seed": 4}))
    assert sample_ids(other.test_events, full) != parts[2]


def test_a_validation_file_is_read_whole(tmp_path):
    times, units, labels = make_spikes()
    train = write_flat_npz(tmp_path / "train.npz", times, units, labels)
    v_times, v_units, v_labels = make_spikes(n=9, seed=1)
    valid = write_shd(tmp_path / "valid.h5", v_times, v_units, v_labels)
    data = build_dataset(spike_section(train, valid_path=str(valid), format="auto"))
    assert np.array_equal(data.valid_events.to_dense(N_INPUTS), reference_events(v_times, v_units))
    assert np.array_equal(data.valid_labels, v_labels) and len(data.train_labels) == N


def test_max_samples_takes_a_seeded_subset_of_each_file(tmp_path):
    times, units, labels = make_spikes()
    path = write_flat_npz(tmp_path / "s.npz", times, units, labels)
    full = build_dataset(spike_section(path)).train_events
    data = build_dataset(spike_section(path, max_samples=25, seed=1))
    ids = sample_ids(data.train_events, full)
    assert len(ids) == 25 and ids == sorted(set(ids)) and np.array_equal(data.train_labels, labels[ids])


# ------------------------------------------------------------------ memory maps


def test_what_the_storage_allows_is_memory_mapped(tmp_path):
    rng = np.random.default_rng(0)
    c_order = rng.normal(size=(6, 5, 4)).astype(np.float32)
    f_order = np.asfortranarray(rng.normal(size=(3, 7)))
    labels = np.arange(6)
    np.savez(tmp_path / "stored.npz", x=c_order, f=f_order, labels=labels)
    np.savez_compressed(tmp_path / "deflated.npz", x=c_order)
    write_npy_dir(tmp_path / "dir", {"x": c_order, "nested/f": f_order})
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("x", data=c_order)
        f.create_dataset("group/chunked", data=c_order, chunks=(2, 5, 4), compression="gzip")
    cases = [("stored.npz", "x", True), ("stored.npz", "f", True), ("stored.npz", "labels", True),
             ("deflated.npz", "x", False), ("dir", "x", True), ("dir", "nested/f", True),
             ("a.h5", "x", True), ("a.h5", "group/chunked", False)]
    for name, array, mapped in cases:
        with named_arrays.reading(tmp_path / name, "auto", name) as arrays:
            got = arrays.read(array)
            assert isinstance(got, np.memmap) == mapped, (name, array)
            assert np.array_equal(got, f_order if array.endswith("f") else labels if array == "labels" else c_order)


def test_dense_parts_read_whole_stay_mapped_and_drawn_parts_are_copies(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("train", 20), ("valid", 5), ("test", 8)):
        np.savez(tmp_path / f"{name}.npz", inputs=rng.normal(size=(n, 12, 4)).astype(np.float32),
                 labels=rng.integers(0, 3, n))
    paths = {f"{k}_path": str(tmp_path / f"{k}.npz") for k in ("train", "valid", "test")}
    data = build_dataset(ArrayFiles.model_validate(paths, context=CHECK))
    for part, n in ((data.train, 20), (data.valid, 5), (data.test, 8)):
        assert isinstance(part.inputs, np.memmap) and part.inputs.dtype == np.float32 and len(part) == n
        assert part.labels.dtype == np.int64 and part.targets is None
    assert (data.n_inputs, data.n_steps, data.n_classes, data.n_outputs) == (4, 12, 3, None)
    drawn = build_dataset(ArrayFiles.model_validate({"train_path": paths["train_path"], "valid_fraction": 0.25},
                                                    context=CHECK))
    assert (len(drawn.train), len(drawn.valid), len(drawn.test)) == (11, 5, 4)
    assert not isinstance(drawn.train.inputs, np.memmap)
    everything = np.load(tmp_path / "train.npz")["inputs"]
    together = np.concatenate([drawn.train.inputs, drawn.valid.inputs, drawn.test.inputs])
    assert np.allclose(np.sort(together.sum(axis=(1, 2))), np.sort(everything.sum(axis=(1, 2))))


def test_test_and_validation_files_pair_their_inputs_as_the_training_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 6, 2))
    np.savez(tmp_path / "train.npz", inputs=x, targets=x[:, :, :1])
    np.savez(tmp_path / "test.npz", inputs=x, labels=np.zeros(10, int), targets=2 * x[:, :, :1])  # both
    keys = {"train_path": str(tmp_path / "train.npz"), "test_path": str(tmp_path / "test.npz")}
    data = build_dataset(ArrayFiles.model_validate(keys, context=CHECK))
    assert data.test.labels is None and np.array_equal(data.test.targets, 2 * x[:, :, :1])
    assert (data.n_classes, data.n_outputs) == (None, 1)


# ------------------------------------------------------------------ a dense algorithm, in its own process

PROBE = textwrap.dedent('''
    """A test-local algorithm that takes dense data: least squares on time-averaged inputs."""
    import json
    import sys
    from typing import Literal

    import numpy as np

    from snnbatch.jobs import registry
    from snnbatch.jobs.registry import Algorithm, Metric, Rule, Section
    from snnbatch.jobs.runner import run_task
    from snnbatch.jobs.store import TaskStore
    from snnbatch.jobs.trainer import build_dataset
    from snnbatch.orchestrator import planner, spec as spec_mod
    from snnbatch.orchestrator.store import RunStore


    class ProbeModel(Section):
        type: Literal["dense_probe"] = "dense_probe"


    class ProbeFit(Section):
        rule: Literal["dense_probe_fit"] = "dense_probe_fit"


    class ProbeTrainer:
        def __init__(self, config):
            d = self.data = build_dataset(config.dataset)
            self.x = np.asarray(d.train.inputs, np.float64).mean(axis=1)
            self.y = (np.eye(d.n_classes)[d.train.labels] if d.train.labels is not None
                      else np.asarray(d.train.targets, np.float64).mean(axis=1))

        def init_state(self):
            return {"w": np.zeros((self.x.shape[1], self.y.shape[1]))}, np.random.default_rng(0)

        def step(self, state):
            w = state.arrays["w"]
            err = self.x @ w - self.y
            w -= 0.5 * self.x.T @ err / len(self.x)
            return {"loss": float((err ** 2).mean())}

        def evaluate(self, state):
            d = self.data
            out = {"mapped": float(all(isinstance(p.inputs, np.memmap) for p in (d.train, d.test, d.valid) if p))}
            for name, p in (("train", d.train), ("test", d.test), ("valid", d.valid)):
                out[f"n_{name}"] = float(len(p)) if p is not None else 0.0
                out[f"x_{name}"] = float(np.asarray(p.inputs, np.float64).sum()) if p is not None else 0.0
                y = None if p is None else p.labels if p.labels is not None else p.targets
                out[f"y_{name}"] = float(np.asarray(y, np.float64).sum()) if y is not None else 0.0
            out.update(n_inputs=float(d.n_inputs), n_steps=float(d.n_steps),
                       n_out=float(d.n_classes if d.n_classes is not None else d.n_outputs))
            return out


    NAMES = ["loss", "mapped", "n_inputs", "n_steps", "n_out"] + [
        f"{a}_{b}" for a in "nxy" for b in ("train", "test", "valid")]
    if "dense_probe" not in registry.algorithms():
        registry.register(Algorithm(model=ProbeModel, rules=(Rule(ProbeFit, ProbeTrainer),), datasets=(),
                                    data_kinds=("dense",), metrics=tuple(Metric(n, n) for n in NAMES)))

    spec = spec_mod.load(sys.argv[1])
    tasks = planner.plan(spec)
    store, _ = RunStore.create_or_update(sys.argv[2], spec, open(sys.argv[1]).read(), tasks)
    for task in tasks:
        run_task(store.path, task.id)
    print(json.dumps([TaskStore(store.path, t.id, mode="r").status() for t in tasks]))
''')


def run_probe(tmp_path, dataset: str):
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "spec.yaml").write_text(f"name: probe\nmodel: {{type: dense_probe}}\ndataset: {dataset}\n"
                                        "training: {iterations: 20}\n")
    out = subprocess.run([sys.executable, "probe.py", "spec.yaml", "store"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    (status,) = json.loads(out.stdout.strip().splitlines()[-1])
    assert status["state"] == "done", status.get("error")
    return status


def test_a_dense_algorithm_trains_on_labelled_arrays_from_whole_files(tmp_path):
    rng = np.random.default_rng(1)
    files = {}
    for name, n in (("train", 30), ("valid", 6), ("test", 9)):
        files[name] = (rng.normal(size=(n, 12, 5)).astype(np.float32), rng.integers(0, 4, n))
        np.savez(tmp_path / f"{name}.npz", inputs=files[name][0], labels=files[name][1])
    status = run_probe(tmp_path, "{type: array_files, train_path: train.npz, valid_path: valid.npz, "
                                 "test_path: test.npz, n_classes: 5}")
    assert status["mapped"] == 1.0
    assert (status["n_inputs"], status["n_steps"], status["n_out"]) == (5, 12, 5)
    for name, (x, y) in files.items():
        assert status[f"n_{name}"] == len(y)
        assert status[f"x_{name}"] == pytest.approx(float(x.astype(np.float64).sum()))
        assert status[f"y_{name}"] == float(y.sum())


def test_a_dense_algorithm_trains_on_trajectories_from_a_directory_with_drawn_parts(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 10, 3))
    y = np.cumsum(x[:, :, :2], axis=1)  # two outputs: running sums of the first two channels
    write_npy_dir(tmp_path / "traj", {"inputs": x, "targets": y})
    status = run_probe(tmp_path, "{type: array_files, train_path: traj, valid_fraction: 0.25, test_fraction: 0.25}")
    assert (status["n_train"], status["n_valid"], status["n_test"]) == (20, 10, 10)
    assert status["mapped"] == 0.0  # parts drawn from one file are copies
    assert (status["n_inputs"], status["n_steps"], status["n_out"]) == (3, 10, 2)
    assert sum(status[f"x_{p}"] for p in ("train", "valid", "test")) == pytest.approx(x.sum())
    assert sum(status[f"y_{p}"] for p in ("train", "valid", "test")) == pytest.approx(y.sum())


# ------------------------------------------------------------------ bad files: spec errors, exit 2


def bad_files(data: Path) -> None:
    """Files for the cases below, in ``data/``."""
    data.mkdir()
    times, units, labels = make_spikes()
    good = flat(times, units, labels)
    np.savez(data / "spikes.npz", **good)
    np.savez(data / "no_labels.npz", **{k: v for k, v in good.items() if k != "labels"})
    np.savez(data / "no_offsets.npz", **{k: v for k, v in good.items() if k != "offsets"})
    np.savez(data / "short_offsets.npz", **{**good, "offsets": good["offsets"][:-1]})
    np.savez(data / "bad_offsets.npz", **{**good, "offsets": good["offsets"][::-1].copy()})
    write_object_npz(data / "objects.npz", times, units, labels)
    write_shd(data / "shd.h5", times, units, labels)
    (data / "text.npz").write_text("not an archive\n")
    (data / "spikes.csv").write_text("t,u\n")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 12, 5)).astype(np.float32)
    np.savez(data / "x.npz", inputs=x, y=labels)
    np.savez(data / "short.npz", inputs=x, labels=labels[:59])
    np.savez(data / "both.npz", inputs=x, labels=labels, targets=x[:, :, :2])
    np.savez(data / "four.npz", inputs=x[:, :, :4], labels=labels)
    np.savez(data / "ints.npz", inputs=(x > 0).astype(np.int8), labels=labels)
    np.savez(data / "traj.npz", inputs=x, targets=x[:, :10])


SPIKES = "{type: spike_files, n_inputs: 30, n_classes: 3, n_steps: 20, "
ARRAYS = "{type: array_files, "
BAD = [
    ("missing file", SPIKES + "train_path: data/none.npz}", "dataset.train_path: file not found: data/none.npz"),
    ("missing test file", SPIKES + "train_path: data/spikes.npz, test_path: data/none.h5}",
     "dataset.test_path: file not found: data/none.h5"),
    ("missing labels", ARRAYS + "train_path: data/x.npz, target: labels}",
     "dataset.train_path: data/x.npz: no array 'labels' (has: inputs, y); name it with dataset.labels_key"),
    ("neither labels nor targets", ARRAYS + "train_path: data/x.npz}",
     "dataset.train_path: data/x.npz: no array 'labels' or 'targets' (has: inputs, y)"),
    ("labels of a spike file", SPIKES + "train_path: data/no_labels.npz}",
     "dataset.train_path: data/no_labels.npz: no array 'labels' (has: offsets, times, units)"),
    ("a key naming no array", SPIKES + "train_path: data/shd.h5, units_key: spikes/unit}",
     "dataset.train_path: data/shd.h5: no array 'spikes/unit' (has: labels, spikes/times, spikes/units); "
     "name it with dataset.units_key"),
    ("flat without offsets", SPIKES + "train_path: data/no_offsets.npz}",
     "dataset.train_path: data/no_offsets.npz: no array 'offsets' (has: labels, times, units): 'times' is flat"),
    ("offsets of a wrong shape", SPIKES + "train_path: data/short_offsets.npz}",
     "dataset.train_path: data/short_offsets.npz: 'offsets' has shape (60,), expected (61,): one more than the "
     "60 samples of 'labels'"),
    ("offsets out of order", SPIKES + "train_path: data/bad_offsets.npz}",
     "dataset.train_path: data/bad_offsets.npz: 'offsets' must start at 0, never decrease"),
    ("labels of a wrong shape", ARRAYS + "train_path: data/short.npz}",
     "dataset.train_path: data/short.npz: 'labels' has shape (59,), expected one label per sample of 'inputs': (60,)"),
    ("targets of a wrong shape", ARRAYS + "train_path: data/traj.npz}",
     "dataset.train_path: data/traj.npz: 'targets' has shape (60, 10, 5), expected (samples, steps, outputs) with "
     "the samples and steps of 'inputs': (60, 12, outputs)"),
    ("integer inputs", ARRAYS + "train_path: data/ints.npz}",
     "dataset.train_path: data/ints.npz: 'inputs' holds int8, expected floating point"),
    ("labels and targets", ARRAYS + "train_path: data/both.npz}",
     "dataset.train_path: data/both.npz: holds both 'labels' and 'targets': set dataset.target"),
    ("a test file of other channels", ARRAYS + "train_path: data/both.npz, target: labels, test_path: data/four.npz}",
     "dataset.test_path: data/four.npz: samples of 12 steps × 4 channels, but the training file's are "
     "12 steps × 5 channels"),
    ("units beyond n_inputs", SPIKES.replace("n_inputs: 30", "n_inputs: 20") + "train_path: data/spikes.npz}",
     "dataset.train_path: data/spikes.npz: 'units' has values outside [0, 20) (dataset.n_inputs): from 0 to 29"),
    ("labels beyond n_classes", SPIKES.replace("n_classes: 3", "n_classes: 2") + "train_path: data/spikes.npz, "
     "test_path: data/shd.h5}", "dataset.train_path: data/spikes.npz: 'labels' has values outside [0, 2) "
     "(dataset.n_classes): from 0 to 2"),
    ("labels of arrays beyond n_classes", ARRAYS + "train_path: data/four.npz, n_classes: 2}",
     "dataset.train_path: data/four.npz: 'labels' has values outside [0, 2)"),
    ("pickled arrays", SPIKES + "train_path: data/objects.npz}",
     "dataset.train_path: data/objects.npz: 'times' is an object array (stored with pickle): set "
     "dataset.allow_pickle: true"),
    ("not an archive", SPIKES + "train_path: data/text.npz}",
     "dataset.train_path: data/text.npz: cannot read it as NPZ: File is not a zip file"),
    ("not HDF5", SPIKES + "train_path: data/text.npz, format: hdf5}",
     "dataset.train_path: data/text.npz: cannot read it as HDF5"),
    ("an unknown suffix", SPIKES + "train_path: data/spikes.csv}",
     "dataset.train_path: data/spikes.csv: cannot tell the format from the name"),
    ("a file for a directory format", SPIKES + "train_path: data/spikes.npz, format: npy}",
     "dataset.train_path: data/spikes.npz: format npy reads a directory of .npy files"),
    ("too few samples to split", SPIKES + "train_path: data/spikes.npz, max_samples: 3, test_fraction: 0.1}",
     "dataset: 3 samples of {data}/spikes.npz cannot be split with test_fraction 0.1 (no test sample left)"),
    ("fractions that leave nothing", SPIKES + "train_path: data/spikes.npz, test_fraction: 0.5, valid_fraction: 0.5}",
     "dataset: test_fraction + valid_fraction must be below 1, got 0.5 + 0.5"),
]


@pytest.fixture(scope="module")
def bad_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    bad_files(root / "data")
    return root


@pytest.mark.parametrize("case, dataset, message", BAD, ids=[b[0] for b in BAD])
def test_a_bad_file_is_a_spec_error_naming_the_file_and_the_key(bad_data, tmp_path, case, dataset, message):
    (tmp_path / "data").symlink_to(bad_data / "data")
    (tmp_path / "sweep.yaml").write_text(f"name: bad\ndataset: {dataset}\n")
    out = subprocess.run([sys.executable, "-m", "snnbatch.orchestrator.cli", "submit", "sweep.yaml",
                          "--store", "store", "--backend", "inline"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "1000"})
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    expected = message.format(data=(bad_data / "data").resolve())
    assert expected in " ".join(out.stderr.split()), out.stderr
    assert "error: sweep.yaml: " in out.stderr
    assert not (tmp_path / "store").exists() and not (tmp_path / "runs").exists()


def test_a_file_changed_after_submitting_fails_its_task_naming_it(tmp_path):
    times, units, labels = make_spikes()
    path = write_flat_npz(tmp_path / "s.npz", times, units, labels)
    store, task = plan_task(tmp_path, "changed", f"{{type: spike_files, train_path: {path}, n_inputs: 30, "
                                                 "n_classes: 3, n_steps: 20}", iterations=2)
    np.savez(path, **{k: v for k, v in flat(times, units, labels).items() if k != "labels"})
    out = run_task(store, task)
    assert out.state == "failed"
    assert TaskStore(store, task, mode="r").status()["error_line"] == (
        f"ValueError: dataset.train_path: {path}: no array 'labels' (has: offsets, times, units); "
        "name it with dataset.labels_key")


def test_a_relative_path_is_made_absolute_and_a_stored_config_is_not_checked(tmp_path, monkeypatch):
    times, units, labels = make_spikes()
    write_flat_npz(tmp_path / "s.npz", times, units, labels)
    monkeypatch.chdir(tmp_path)
    spec = spec_mod.parse("dataset: {type: spike_files, train_path: s.npz, n_inputs: 30, n_classes: 3}\n")
    assert spec.dataset.train_path == str(tmp_path / "s.npz")
    config = TaskConfig.model_validate({"dataset": {"type": "spike_files", "train_path": "/no/such.npz",
                                                    "n_inputs": 30, "n_classes": 3}})
    assert config.dataset.train_path == "/no/such.npz"


def test_a_sweep_reads_each_file_once_until_it_changes(tmp_path, monkeypatch):
    times, units, labels = make_spikes()
    path = write_flat_npz(tmp_path / "s.npz", times, units, labels)
    calls = []
    inspect = file_datasets._inspect_spikes
    monkeypatch.setattr(file_datasets, "_inspect_spikes", lambda *a: calls.append(a[0]) or inspect(*a))
    text = (f"dataset: {{type: spike_files, train_path: {path}, n_inputs: 30, n_classes: 3}}\n"
            "sweep: {grid: {lr: [0.001, 0.002, 0.003]}, seeds: 4}\n")
    spec_mod.parse(text)
    assert calls == [path]
    os.utime(path, ns=(0, 12345))  # another file now: read again
    spec_mod.parse(text)
    assert calls == [path, path]


# ------------------------------------------------------------------ training on them


def plan_task(tmp_path, name, dataset, model="lif", rule="bptt", iterations=10, training=""):
    text = (f"name: {name}\nmodel: {{type: {model}, n_hidden: 16}}\nlearning: {{rule: {rule}}}\n"
            f"dataset: {dataset}\ntraining: {{iterations: {iterations}, batch_size: 24, lr: 1.0e-2{training}}}\n"
            "checkpoint: {every_iterations: 5}\n")
    spec = spec_mod.parse(text)
    tasks = planner.plan(spec)
    store, _ = RunStore.create_or_update(tmp_path / name, spec, text, tasks)
    return store.path, tasks[0].id


@pytest.mark.parametrize("model, rule, file", [("lif", "bptt", "s.npz"), ("lif", "bptt", "s.h5"),
                                               ("alif", "eprop", "s.npz")])
def test_spiking_networks_train_on_spike_files(tmp_path, model, rule, file):
    times, units, labels = make_spikes()
    path = (write_flat_npz if file.endswith(".npz") else write_shd)(tmp_path / file, times, units, labels)
    store, task = plan_task(tmp_path, "files", f"{{type: spike_files, train_path: {path}, n_inputs: 30, "
                                               "n_classes: 3, n_steps: 20, dt: 0.001, valid_fraction: 0.1}",
                            model=model, rule=rule)
    out = run_task(store, task)
    assert out.state == "done", out.error
    status = TaskStore(store, task, mode="r").status()
    assert status["iteration"] == 10 and 0.0 <= status["test_accuracy"] <= 1.0
    assert np.isfinite(status["loss"])


@pytest.mark.parametrize("dataset", ["spike_files", "shd"])
def test_a_spiking_network_validates_on_the_validation_part_of_a_file(tmp_path, dataset):
    times, units, labels = make_spikes()
    path = write_shd(tmp_path / "s.h5", times, units, labels)
    store, task = plan_task(tmp_path, "files", f"{{type: {dataset}, train_path: {path}, n_inputs: 30, "
                                               "n_classes: 3, n_steps: 20, dt: 0.001, valid_fraction: 0.1}",
                            training=", validate_every: 4")
    out = run_task(store, task)
    assert out.state == "done", out.error
    got = open_run(store).task(task)
    acc = got.metrics["valid_accuracy"]
    assert [i + 1 for i in np.flatnonzero(~np.isnan(acc))] == [4, 8, 10]
    assert got.status["valid_accuracy"] == acc[got.status["best_iteration"] - 1]
    assert np.isfinite(got.status["test_accuracy"])
    without = tmp_path / "plain"
    without.mkdir()
    with pytest.raises(SpecError, match=f"training.validate_every: dataset '{dataset}' has no validation split: set "
                                        "dataset.valid_fraction"):
        plan_task(without, "files", f"{{type: {dataset}, train_path: {path}, n_inputs: 30, n_classes: 3, "
                                    "n_steps: 20, dt: 0.001}", training=", validate_every: 4")
