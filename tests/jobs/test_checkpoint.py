"""Checkpoints: round trip, atomic commit, corruption detection and fallback."""
import json

import numpy as np
import pytest

from snnbatch.jobs.store import CorruptCheckpoint, TaskStore
from snnbatch.jobs.trainer import TrainState
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore


@pytest.fixture
def task_store(tmp_path):
    spec = spec_mod.parse("name: ck\ntraining: {iterations: 3}\n")
    tasks = planner.plan(spec)
    store, _ = RunStore.create_or_update(tmp_path / "run", spec, "", tasks)
    return TaskStore(store.path, tasks[0].id)


def _state(seed=0, iteration=7):
    rng = np.random.default_rng(seed)
    arrays = {
        "params/w": rng.normal(size=(5, 3)).astype(np.float32),
        "opt/t": np.asarray(4, dtype=np.int64),
        "data_order": rng.permutation(10),
    }
    rng.random(3)  # advance, so the saved RNG state is not the seed's
    return TrainState(iteration, arrays, rng, {"loss": [0.5, 0.25], "accuracy": [0.1, 0.9]})


def test_round_trip_is_exact_including_rng(task_store):
    state = _state()
    task_store.save_checkpoint(state, keep=2)
    loaded, problems = task_store.latest_checkpoint()
    assert problems == []
    assert loaded.iteration == 7
    assert set(loaded.arrays) == set(state.arrays)
    for k, v in state.arrays.items():
        assert loaded.arrays[k].dtype == v.dtype and loaded.arrays[k].shape == v.shape
        assert np.array_equal(loaded.arrays[k], v)
    assert loaded.metrics == state.metrics
    # the generator continues exactly where the saved one would have
    assert np.array_equal(loaded.rng.random(5), state.rng.random(5))


def test_keeps_only_the_newest(task_store):
    for it in range(5):
        task_store.save_checkpoint(_state(iteration=it), keep=2)
    names = task_store.checkpoint_names()
    assert len(names) == 2
    assert task_store.latest_checkpoint()[0].iteration == 4


def test_uncommitted_checkpoint_is_skipped(task_store):
    task_store.save_checkpoint(_state(iteration=1), keep=3)
    name = task_store.save_checkpoint(_state(iteration=2), keep=3)
    # a crash before the commit: the group has no 'complete' attribute
    meta = task_store.path / "tasks" / task_store.task_id / "checkpoints" / name / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"] = {}
    meta.write_text(json.dumps(doc))
    state, problems = task_store.latest_checkpoint()
    assert state.iteration == 1
    assert "never committed" in problems[0]


def test_altered_array_is_detected_and_previous_used(task_store):
    task_store.save_checkpoint(_state(iteration=1), keep=3)
    name = task_store.save_checkpoint(_state(iteration=2, seed=1), keep=3)
    chunk_dir = task_store.path / "tasks" / task_store.task_id / "checkpoints" / name / "params.w" / "c"
    chunk = next(p for p in chunk_dir.rglob("*") if p.is_file())
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpoint, match="checksum"):
        task_store.load_checkpoint(name)
    state, problems = task_store.latest_checkpoint()
    assert state.iteration == 1 and len(problems) == 1


def test_truncated_array_is_detected(task_store):
    name = task_store.save_checkpoint(_state(iteration=1), keep=3)
    chunk_dir = task_store.path / "tasks" / task_store.task_id / "checkpoints" / name / "params.w" / "c"
    chunk = next(p for p in chunk_dir.rglob("*") if p.is_file())
    chunk.write_bytes(chunk.read_bytes()[:7])
    state, problems = task_store.latest_checkpoint()
    assert state is None and "checkpoint" in problems[0]


def test_old_checkpoints_are_gone_once_removals_finish(task_store):
    for it in range(6):
        task_store.save_checkpoint(_state(iteration=it), keep=2)
        assert len(task_store.checkpoint_names()) == min(it + 1, 2)  # set aside at once, whatever the removal
    task_store.finish_removals()
    ckdir = task_store.path / "tasks" / task_store.task_id / "checkpoints"
    assert sorted(p.name for p in ckdir.iterdir()) == ["00000004", "00000005", "zarr.json"]
    assert task_store.latest_checkpoint()[0].iteration == 5


def test_arrays_read_without_zarr_are_zarrs_and_other_forms_go_through_zarr(task_store):
    import zarr

    from snnbatch.jobs.store import _read_plain_array, read_checkpoint

    state = _state()
    state.arrays.update({"zeros": np.zeros((3, 2)), "scalar": np.array(5, dtype=np.int64),
                         "mask": np.array([True, False, True]), "half": np.arange(4, dtype=np.float32)})
    name = task_store.save_checkpoint(state, keep=2)
    path = task_store.dir / "checkpoints" / name
    ck = zarr.open_group(str(path), mode="r")
    keys = list(ck.array_keys())
    assert len(keys) >= len(state.arrays)
    for key in keys:
        plain, read = _read_plain_array(path / key), np.asarray(ck[key][...])
        assert plain is not None and plain.dtype == read.dtype and np.array_equal(plain, read), key
    # an array stored compressed (not how snnbatch writes one) is read by zarr, and still verified
    w = "params.w"  # the array of "params/w"
    value = np.asarray(ck[w][...])
    zarr.open_group(str(path), mode="r+").create_array(w, data=value, chunks=(1,) + value.shape[1:], overwrite=True)
    assert _read_plain_array(path / w) is None
    _, arrays = read_checkpoint(path)
    assert np.array_equal(arrays["params/w"], state.arrays["params/w"])
