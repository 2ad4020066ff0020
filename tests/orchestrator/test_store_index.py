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


def test_a_task_another_driver_wrote_first_is_kept_and_not_counted_as_added(planned_store, write_spec):
    from snnbatch.orchestrator import planner, spec as spec_mod

    store, tasks, _, _ = planned_store(SPEC)
    text = SPEC + "  seeds: 2\n"
    spec = spec_mod.load(write_spec(text))
    more = planner.plan(spec)
    new = [t for t in more if t.id not in {t.id for t in tasks}]
    assert new
    first = store.path / TASKS / new[0].id
    zarr.open_group(str(first), mode="w-", attributes={"config": new[0].config_dict(), "params": new[0].params,
                                                         "index": 99})
    before = (first / "zarr.json").read_bytes()
    _, added = RunStore.create_or_update(store.path, spec, text, more)
    assert new[0].id not in added and sorted(added) == sorted(t.id for t in new[1:])
    assert (first / "zarr.json").read_bytes() == before
    assert not list(store.path.glob(f"{TASKS}/*/.zarr.json.*"))  # no temporary file left behind
    assert len(store.tasks()) == len(more)


def test_a_write_killed_before_its_rename_leaves_the_old_record_readable(planned_store):
    store, tasks, _, _ = planned_store(SPEC)
    store.record_submission([t.id for t in tasks], "local", {t.id: {"job_id": "1"} for t in tasks})
    sched = store.path / TASKS / tasks[0].id / "scheduler"
    (sched / ".zarr.json.0badc0de.partial").write_bytes(b'{"attributes": {"backe')  # killed mid-write
    by_id = {t["id"]: t for t in store.tasks()}
    assert by_id[tasks[0].id]["scheduler"]["job_id"] == "1"
    store.record_submission([tasks[0].id], "local", {tasks[0].id: {"job_id": "2"}})
    attrs = dict(zarr.open_group(str(sched), mode="r").attrs)
    assert attrs["job_id"] == "2" and [s["job_id"] for s in attrs["submissions"]] == ["1", "2"]
