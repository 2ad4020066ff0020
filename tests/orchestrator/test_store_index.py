"""The run store's index: tasks are Zarr groups with their config, listed in plan order; submissions accumulate."""
from __future__ import annotations

import zarr

from snnbatch.jobs.store import TASKS
from snnbatch.orchestrator.store import RunStore

SPEC = """\
name: index-test
sweep:
  grid: {lr: [1.0e-3, 3.0e-3], n_hidden: [64, 128]}
"""


def test_tasks_written_are_zarr_groups_with_their_config(planned_store):
    store, tasks, added, _ = planned_store(SPEC)
    assert added == [t.id for t in tasks]
    root = zarr.open_group(str(store.path), mode="r")
    assert sorted(root[TASKS].group_keys()) == store.task_ids() == sorted(added)
    for i, t in enumerate(tasks):
        attrs = dict(root[f"{TASKS}/{t.id}"].attrs)
        assert attrs == {"config": t.config_dict(), "params": t.params, "index": i}
    assert [t["id"] for t in store.tasks()] == added  # plan order


def test_adding_again_adds_nothing_and_keeps_the_records(planned_store):
    store, tasks, _, spec = planned_store(SPEC)
    before = (store.path / TASKS / tasks[0].id / "zarr.json").read_bytes()
    again, added = RunStore.create_or_update(store.path, spec, SPEC, tasks)
    assert added == []
    assert (store.path / TASKS / tasks[0].id / "zarr.json").read_bytes() == before


def test_a_task_being_added_is_not_listed_yet(planned_store):
    store, tasks, _, _ = planned_store(SPEC)
    (store.path / TASKS / "0123456789ab").mkdir()  # a driver made the directory, not yet its metadata
    assert "0123456789ab" not in store.task_ids()
    assert len(store.tasks()) == len(tasks)


def test_submissions_accumulate_and_zarr_reads_them(planned_store):
    store, tasks, _, _ = planned_store(SPEC)
    tid = tasks[1].id
    store.record_submission([tid], "slurm", {tid: {"job_id": "7_1", "array_id": "7"}})
    store.record_submission([tid], "slurm", {tid: {"job_id": "9_0", "array_id": "9"}})
    sched = dict(zarr.open_group(str(store.path / TASKS / tid / "scheduler"), mode="r").attrs)
    assert sched["job_id"] == "9_0" and sched["backend"] == "slurm"
    assert [s["job_id"] for s in sched["submissions"]] == ["7_1", "9_0"]
    by_id = {t["id"]: t for t in store.tasks()}
    assert by_id[tid]["scheduler"] == sched
    assert by_id[tasks[0].id]["scheduler"] == {}
