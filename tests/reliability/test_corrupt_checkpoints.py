"""Damaged checkpoints: detected, reported in the status, removed; the previous good one is used.

A task is stopped after 10 iterations (checkpoints at 6, 9 and 10 are kept),
the newest checkpoint is damaged in one way or another, and the task is run
again: it must say what it found (status ``warnings``), resume from iteration
9 (or from scratch when nothing good is left, and say so), and end exactly
as a run that was never interrupted.
"""
from __future__ import annotations

import json
import shutil

import pytest

from snnbatch.jobs.runner import run_task
from snnbatch.jobs.store import TaskStore

from .conftest import SMALL, StopAfter, assert_same_as, make_store, spec_text, status_of

TEXT = spec_text(SMALL, training={"iterations": 30, "batch_size": 64},
                 checkpoint={"every_iterations": 3, "keep": 3})


@pytest.fixture
def stopped(tmp_path, references):
    """A task stopped at iteration 10: checkpoints 00000001 (it. 6), 00000002 (9), 00000003 (10)."""
    store, (tid,) = make_store(tmp_path / "store", TEXT)
    outcome = run_task(store.path, tid, stop=StopAfter(10))
    assert (outcome.state, outcome.iteration) == ("interrupted", 10)
    ckdir = store.path / "tasks" / tid / "checkpoints"
    assert sorted(p.name for p in ckdir.iterdir() if p.is_dir()) == ["00000001", "00000002", "00000003"]
    return store.path, tid, ckdir, references(TEXT)


def _chunk(ckdir, name, array="params.w_in"):
    return next(p for p in (ckdir / name / array / "c").rglob("*") if p.is_file())


def truncate_chunk(ckdir):
    f = _chunk(ckdir, "00000003")
    f.write_bytes(f.read_bytes()[:5])


def alter_byte(ckdir):
    f = _chunk(ckdir, "00000003")
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))


def delete_chunk(ckdir):
    _chunk(ckdir, "00000003").unlink()  # Zarr reads a missing chunk as fill values: only the checksum tells


def garbage_group_metadata(ckdir):
    (ckdir / "00000003" / "zarr.json").write_text("{not json")


def garbage_array_metadata(ckdir):
    (ckdir / "00000003" / "data_order" / "zarr.json").write_bytes(b"\x00\xff garbage")


def uncommitted(ckdir):
    meta = ckdir / "00000003" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"] = {}
    meta.write_text(json.dumps(doc))


DAMAGE = {
    "truncated file": (truncate_chunk, "unreadable"),
    "altered byte": (alter_byte, "checksum"),
    "deleted chunk": (delete_chunk, "checksum"),
    "garbage group zarr.json": (garbage_group_metadata, "unreadable"),
    "garbage array zarr.json": (garbage_array_metadata, "unreadable"),
    "never committed": (uncommitted, "never committed"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_newest_checkpoint(stopped, damage):
    store_path, tid, ckdir, ref = stopped
    spoil, words = DAMAGE[damage]
    spoil(ckdir)
    assert run_task(store_path, tid).state == "done"
    st = status_of(store_path, tid)
    (warning,) = st["warnings"]
    assert "checkpoint 00000003" in warning and words in warning, warning
    assert "resumed from checkpoint 00000002 at iteration 9" in warning, warning
    assert st["attempts"][-1]["from_iteration"] == 9
    assert st["attempts"][-1]["warnings"] == 1
    assert_same_as(store_path, ref, tid)


def test_missing_newest_checkpoint_directory(stopped):
    """The status names checkpoint 00000003; it is gone: say so, and go on from the one before."""
    store_path, tid, ckdir, ref = stopped
    shutil.rmtree(ckdir / "00000003")
    assert run_task(store_path, tid).state == "done"
    st = status_of(store_path, tid)
    (warning,) = st["warnings"]
    assert "checkpoint 00000003, recorded in the status, is missing" in warning
    assert "resumed from checkpoint 00000002 at iteration 9" in warning
    assert_same_as(store_path, ref, tid)


def test_missing_checkpoints_group(stopped):
    store_path, tid, ckdir, ref = stopped
    shutil.rmtree(ckdir)
    assert run_task(store_path, tid).state == "done"
    st = status_of(store_path, tid)
    (warning,) = st["warnings"]
    assert "is missing" in warning and "no good checkpoint: restarted from scratch" in warning
    assert st["attempts"][-1]["from_iteration"] == 0
    assert_same_as(store_path, ref, tid)


def test_every_checkpoint_damaged_restarts_from_scratch(stopped):
    store_path, tid, ckdir, ref = stopped
    for name in ("00000001", "00000002", "00000003"):
        f = _chunk(ckdir, name)
        f.write_bytes(f.read_bytes()[:-1] + bytes([f.read_bytes()[-1] ^ 0xFF]))
    assert run_task(store_path, tid).state == "done"
    st = status_of(store_path, tid)
    (warning,) = st["warnings"]
    for name in ("00000001", "00000002", "00000003"):
        assert f"checkpoint {name}" in warning
    assert warning.endswith("no good checkpoint: restarted from scratch")
    assert st["attempts"][-1]["from_iteration"] == 0
    assert_same_as(store_path, ref, tid)


def test_bad_checkpoints_are_removed_and_not_reported_twice(stopped):
    store_path, tid, ckdir, ref = stopped
    alter_byte(ckdir)
    assert run_task(store_path, tid, stop=StopAfter(3)).state == "interrupted"
    # the damaged one is gone; its name went to the next checkpoint (iteration 9 + 3)
    assert TaskStore(store_path, tid).load_checkpoint("00000003").iteration == 12
    assert run_task(store_path, tid).state == "done"
    assert len(status_of(store_path, tid)["warnings"]) == 1
    assert_same_as(store_path, ref, tid)
