"""The run store's index: a pending task has no file of its own; the tasks one driver adds are one
plan document and each submission one submission document, none ever rewritten; readers stay right
when a write is killed, when two drivers add at once, and in a copy of the store; a store of the
format before (every task a Zarr group) reads, resumes and reports."""
from __future__ import annotations

import json
import multiprocessing
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import zarr

from snnbatch.jobs.store import PLAN, SUBMISSIONS, TASKS, TaskStore, planned_config, read_checkpoint
from snnbatch.orchestrator.store import RunStore

SPEC = """\
name: index-test
sweep:
  grid: {lr: [1.0e-3, 3.0e-3], n_hidden: [64, 128]}
"""
GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "format1-store.tar.gz"


def files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def test_pending_tasks_have_no_files_and_read_from_the_plan_document(planned_store):
    store, tasks, added, _ = planned_store(SPEC)
    assert added == [t.id for t in tasks]
    assert not [p for p in (store.path / TASKS).iterdir() if p.is_dir()]  # no file of its own until a task starts
    plan = [f for f in files(store.path) if f.startswith(PLAN)]
    (configs,) = [f for f in plan if f.endswith(".configs.jsonl")]
    assert sorted(plan) == sorted([f"{PLAN}/00000000.json", configs, configs.replace(".configs.jsonl", ".lookup")])
    assert store.task_ids() == sorted(added)
    listed = store.tasks()
    assert [t["id"] for t in listed] == added  # plan order
    for i, (t, row) in enumerate(zip(tasks, listed)):
        assert (row["config"], row["params"], row["index"], row["state"]) == (t.config_dict(), t.params, i, "pending")
        assert planned_config(store.path, t.id) == t.config_dict()  # its own line only
        assert TaskStore(store.path, t.id, mode="r").config_dict == t.config_dict()
    assert "config" not in store.tasks(configs=False)[0]
    assert planned_config(store.path, "0123456789ab") is None
    (store.path / configs.replace(".configs.jsonl", ".lookup")).unlink()  # found from the document instead
    assert [planned_config(store.path, t.id) for t in tasks] == [t.config_dict() for t in tasks]
    assert not [p for p in (store.path / TASKS).iterdir() if p.is_dir()]  # reading made nothing


def test_adding_again_adds_nothing_and_writes_nothing(planned_store):
    store, tasks, _, spec = planned_store(SPEC)
    before = {f: (store.path / f).read_bytes() for f in files(store.path) if f.startswith(PLAN)}
    again, added = RunStore.create_or_update(store.path, spec, SPEC, tasks)
    assert added == []
    assert {f: (store.path / f).read_bytes() for f in files(store.path) if f.startswith(PLAN)} == before


def test_a_directory_that_is_no_task_is_not_listed(planned_store):
    store, tasks, _, _ = planned_store(SPEC)
    (store.path / TASKS / "0123456789ab").mkdir()  # neither planned nor a format 1 group
    assert "0123456789ab" not in store.task_ids()
    assert len(store.tasks()) == len(tasks)


def test_submissions_accumulate_one_document_each(planned_store):
    store, tasks, _, _ = planned_store(SPEC)
    tid = tasks[1].id
    store.record_submission([tid], "slurm", {tid: {"job_id": "7_1", "array_id": "7"}})
    store.record_submission([tid], "slurm", {tid: {"job_id": "9_0", "array_id": "9"}})
    assert len(list((store.path / SUBMISSIONS).iterdir())) == 2
    by_id = {t["id"]: t for t in store.tasks()}
    sched = by_id[tid]["scheduler"]
    assert sched["job_id"] == "9_0" and sched["backend"] == "slurm" and sched["array_id"] == "9"
    assert [s["job_id"] for s in sched["submissions"]] == ["7_1", "9_0"]
    assert by_id[tasks[0].id]["scheduler"] == {}
    assert not [p for p in (store.path / TASKS).iterdir() if p.is_dir()]  # the driver wrote nothing into a task's place


def test_writes_killed_before_their_rename_change_nothing_a_reader_sees(planned_store, write_spec):
    from snnbatch.orchestrator import planner, spec as spec_mod

    store, tasks, _, _ = planned_store(SPEC)
    store.record_submission([t.id for t in tasks], "local", {t.id: {"job_id": "1"} for t in tasks})
    ts = TaskStore(store.path, tasks[0].id)
    ts.update_status(state="running", iteration=3)
    # a driver killed while writing a plan document, its configs, a submission; a task killed
    # while writing its status
    (store.path / PLAN / ".00000001.json.0badc0de.partial").write_bytes(b'{"ids": "0123')
    (store.path / PLAN / "0badc0de0badc0de.configs.jsonl").write_bytes(b'{"model": {')  # no document names it
    (store.path / SUBMISSIONS / ".00000000000000000001-0badc0de.json.1badc0de.partial").write_bytes(b'{"back')
    (ts.dir / "status" / ".zarr.json.2badc0de.partial").write_bytes(b'{"attributes": {"sta')
    by_id = {t["id"]: t for t in store.tasks()}
    assert len(by_id) == len(tasks)
    assert by_id[tasks[0].id]["scheduler"]["job_id"] == "1"
    assert by_id[tasks[0].id]["status"]["iteration"] == 3 and by_id[tasks[0].id]["state"] == "interrupted"
    # the next driver commits after the complete documents, and its tasks read
    spec = spec_mod.load(write_spec(SPEC + "  seeds: 2\n"))
    more = planner.plan(spec)
    _, added = RunStore.create_or_update(store.path, spec, SPEC + "  seeds: 2\n", more)
    assert sorted(added) == sorted(set(t.id for t in more) - set(t.id for t in tasks))
    assert (store.path / PLAN / "00000001.json").is_file()
    assert {t["id"]: t["config"] for t in store.tasks()} == {t.id: t.config_dict() for t in more}


def test_a_task_an_earlier_document_holds_is_not_counted_as_added(planned_store, write_spec):
    from snnbatch.jobs.store import add_planned
    from snnbatch.orchestrator import planner, spec as spec_mod

    store, tasks, _, _ = planned_store(SPEC)
    text = SPEC + "  seeds: 2\n"
    spec = spec_mod.load(write_spec(text))
    more = planner.plan(spec)
    new = [t for t in more if t.id not in {t.id for t in tasks}]
    # another driver committed one of them first
    assert add_planned(store.path, [{"id": new[0].id, "index": 99, "params": new[0].params,
                                     "config": new[0].config_dict()}]) == [new[0].id]
    _, added = RunStore.create_or_update(store.path, spec, text, more)
    assert new[0].id not in added and sorted(added) == sorted(t.id for t in new[1:])
    assert len(store.tasks()) == len(more)
    assert not [f for f in files(store.path) if ".partial" in f]  # no temporary file left behind


def _drive(path, text, spec_file, barrier, queue):
    from snnbatch.orchestrator import planner, spec as spec_mod

    spec = spec_mod.load(spec_file)
    tasks = planner.plan(spec)
    barrier.wait()
    _, added = RunStore.create_or_update(path, spec, text, tasks)
    queue.put(added)


def test_two_drivers_adding_at_once_each_task_is_added_once(tmp_path, write_spec):
    text = SPEC.replace("[64, 128]", "[8, 16, 24, 32, 40, 48]") + "  seeds: 25\n"  # 300 tasks
    spec_file = write_spec(text)
    ctx = multiprocessing.get_context("fork")
    for round_ in range(3):
        path = tmp_path / f"store-{round_}"
        barrier, queue = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_drive, args=(path, text, spec_file, barrier, queue)) for _ in range(2)]
        for p in procs:
            p.start()
        got = [queue.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        added = got[0] + got[1]
        assert len(added) == len(set(added)) == 300  # every task added, by exactly one of them
        store = RunStore.open(path)
        assert len(store.tasks()) == 300 == len(store.task_ids())


def test_a_copied_store_reads_and_resumes_the_same(tmp_path, cli, write_spec):
    from tests.conftest import TINY

    spec = write_spec(TINY + "sweep:\n  grid: {lr: [1.0e-3, 3.0e-3, 1.0e-2]}\n")
    from snnbatch.jobs.runner import run_task
    from snnbatch.orchestrator import spec as spec_mod

    path = tmp_path / "store"
    store, _ = RunStore.create_or_update(path, spec_mod.load(spec), spec.read_text(), _plan(spec))

    first = store.task_ids()[0]
    assert run_task(path, first).state == "done"
    original = {t["id"]: (t["state"], t["config"], t["status"].get("iteration")) for t in store.tasks()}
    copies = [tmp_path / "elsewhere" / "cp", tmp_path / "elsewhere" / "rsync"]
    copies[0].parent.mkdir()
    subprocess.run(["cp", "-r", str(path), str(copies[0])], check=True)
    subprocess.run(["rsync", "-a", f"{path}/", f"{copies[1]}/"], check=True)
    shutil.rmtree(path)  # the copies stand alone
    for copy in copies:
        moved = RunStore.open(copy)
        assert {t["id"]: (t["state"], t["config"], t["status"].get("iteration")) for t in moved.tasks()} == original
        result = cli("resume", copy, "--backend", "inline", "--no-progress")
        assert result.exit_code == 0, result.output
        assert {t["state"] for t in RunStore.open(copy).tasks()} == {"done"}
    a, b = (_final_arrays(c) for c in copies)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _plan(spec_file):
    from snnbatch.orchestrator import planner, spec as spec_mod

    return planner.plan(spec_mod.load(spec_file))


def _final_arrays(path: Path) -> dict:
    out = {}
    for tid in RunStore.open(path).task_ids():
        ts = TaskStore(path, tid, mode="r")
        name = ts.checkpoint_names()[-1]
        _, arrays = read_checkpoint(ts.dir / "checkpoints" / name)
        out.update({f"{tid}/{k}": v for k, v in arrays.items()})
    return out


@pytest.fixture
def format1_store(tmp_path) -> Path:
    """A store written by snnbatch before format 2: 4 tasks, two done (by that version), one
    submission record each, the others pending."""
    with tarfile.open(GOLDEN) as tar:
        tar.extractall(tmp_path / "old", filter="data")
    return tmp_path / "old"


def test_a_format_1_store_reads_resumes_and_reports(format1_store, tmp_path, cli):
    path = format1_store / "store"
    assert json.loads((path / "zarr.json").read_text())["attributes"]["snnbatch"]["format"] == 1
    store = RunStore.open(path)
    rows = store.tasks()
    assert [t["state"] for t in rows] == ["done", "pending", "done", "pending"]
    assert all(t["scheduler"]["job_id"] == f"inline-{i}" for i, t in enumerate(rows))
    assert rows[1]["config"] == TaskStore(path, rows[1]["id"], mode="r").config_dict
    from snnbatch.orchestrator.halving import runnable

    assert runnable(store) == [rows[1]["id"], rows[3]["id"]]
    status = cli("status", path, "--json")
    assert status.exit_code == 0, status.output
    assert [t["state"] for t in json.loads(status.output)["tasks"]] == ["done", "pending", "done", "pending"]

    again = rows[1]["id"]
    RunStore.open(path, mode="r+").record_submission([again], "inline", {again: {"job_id": "inline-9"}})
    assert root_format(path) == 2  # a snnbatch reading only format 1 refuses it instead of missing the record
    result = cli("resume", path, "--backend", "inline", "--no-progress")
    assert result.exit_code == 0, result.output
    rows = RunStore.open(path).tasks()
    assert [t["state"] for t in rows] == ["done"] * 4
    assert [len(t["scheduler"]["submissions"]) for t in rows] == [1, 2, 1, 1]  # the old record continued
    assert [t["scheduler"]["job_id"] for t in rows] == ["inline-0", "inline-9", "inline-2", "inline-3"]
    report = cli("report", path, "--out", tmp_path / "report")
    assert report.exit_code == 0, report.output
    assert (tmp_path / "report" / "report.html").is_file()

    # the same bits as a new store of the same spec: the old version's tasks and the ones run now
    fresh = tmp_path / "fresh"
    spec_file = format1_store / "spec.yaml"
    assert cli("submit", spec_file, "--store", fresh, "--backend", "inline", "--no-progress").exit_code == 0
    assert RunStore.open(fresh).task_ids() == RunStore.open(path).task_ids()
    old, new = _final_arrays(path), _final_arrays(fresh)
    assert old.keys() == new.keys() and all(np.array_equal(old[k], new[k]) for k in old)


def test_tasks_added_to_a_format_1_store_join_the_old_ones(format1_store, write_spec):
    from snnbatch.orchestrator import planner, spec as spec_mod

    path = format1_store / "store"
    text = (format1_store / "spec.yaml").read_text().replace("seeds: 2", "seeds: 3")
    spec = spec_mod.load(write_spec(text))
    tasks = planner.plan(spec)
    _, added = RunStore.create_or_update(path, spec, text, tasks)
    assert len(added) == 2
    rows = RunStore.open(path).tasks()
    assert sorted(t["id"] for t in rows) == sorted(t.id for t in tasks)
    # the old tasks' configs as the old version stored them (keys added since are absent), read as the same configs
    from snnbatch.jobs.config import TaskConfig

    assert {t["id"]: TaskConfig.model_validate(t["config"]).model_dump(mode="json") for t in rows} == {
        t.id: t.config_dict() for t in tasks}
    assert root_format(path) == 2  # a snnbatch reading only format 1 refuses it instead of missing tasks
    assert sorted(zarr.open_group(str(path / TASKS), mode="r").group_keys()) == sorted(
        t["id"] for t in rows if t["id"] not in added)  # the old groups as they were


def root_format(path: Path) -> int:
    return json.loads((path / "zarr.json").read_text())["attributes"]["snnbatch"]["format"]


# ------------------------------------------------------------------ the cache of status records

MANY = SPEC + "  seeds: 20\n"  # 80 tasks: more ended ones than a reader caches at once (CACHE_MIN_NEW)


def _ended(store, tasks, age_s: float = 30.0):
    """Every task done (its status written by its own TaskStore), the documents ``age_s`` old."""
    import os
    import time

    for i, t in enumerate(tasks):
        TaskStore(store.path, t.id).update_status(state="done" if i % 2 else "failed", iteration=5, loss=0.5,
                                                  error_line=None if i % 2 else "FloatingPointError")
        doc = store.path / TASKS / t.id / "status" / "zarr.json"
        old = time.time_ns() - int(age_s * 1e9)
        os.utime(doc, ns=(old, old))


def _documents(path: Path) -> dict:
    """Every started task's status record, read from its own document."""
    out = {}
    for d in (path / TASKS).iterdir():
        if (d / "status" / "zarr.json").is_file():
            out[d.name] = json.loads((d / "status" / "zarr.json").read_text())["attributes"]
    return out


def _read(path: Path) -> dict:
    return {t["id"]: t["status"] for t in RunStore.open(path).tasks() if t["state"] != "pending"}


def test_ended_tasks_records_are_cached_and_a_rewritten_document_is_read_again(planned_store):
    import os

    from snnbatch.orchestrator.store import STATUS_CACHE

    store, tasks, _, _ = planned_store(MANY)
    _ended(store, tasks)
    assert not (store.path / STATUS_CACHE).exists()
    assert _read(store.path) == _documents(store.path)
    cache = json.loads((store.path / STATUS_CACHE).read_text())["entries"]
    assert sorted(cache) == sorted(t.id for t in tasks) and all(e[3] == _documents(store.path)[k] for k, e in cache.items())
    # an unchanged document is read from the cache (here: the cached record, edited, is what a reader gets)
    doc = json.loads((store.path / STATUS_CACHE).read_text())
    doc["entries"][tasks[1].id][3]["loss"] = 0.25
    (store.path / STATUS_CACHE).write_text(json.dumps(doc))
    assert _read(store.path)[tasks[1].id]["loss"] == 0.25
    # the task's status written again, as a task writes it (whole, renamed into place): the same size
    # and (set back) the same time, but another file
    from snnbatch.jobs.store import group_document, write_whole

    path = store.path / TASKS / tasks[1].id / "status" / "zarr.json"
    attrs = json.loads(path.read_text())["attributes"]
    write_whole(path, group_document({**attrs, "loss": 0.7}))
    ino, size, mtime, _ = doc["entries"][tasks[1].id]
    os.utime(path, ns=(mtime, mtime))
    assert (os.stat(path).st_size, os.stat(path).st_mtime_ns) == (size, mtime) and os.stat(path).st_ino != ino
    assert _read(store.path)[tasks[1].id]["loss"] == 0.7
    # a task that starts again (its status running) and one whose document is new are never cached
    TaskStore(store.path, tasks[2].id).update_status(state="running", iteration=6)
    assert _read(store.path) == _documents(store.path)
    _ended(store, tasks[3:], age_s=0.0)
    assert _read(store.path) == _documents(store.path)
    cache = json.loads((store.path / STATUS_CACHE).read_text())["entries"]
    assert tasks[2].id not in cache or cache[tasks[2].id][3]["state"] != "running"


def test_a_torn_foreign_or_half_written_cache_is_read_past(planned_store):
    from snnbatch.orchestrator.store import STATUS_CACHE

    store, tasks, _, _ = planned_store(MANY)
    _ended(store, tasks)
    truth = _documents(store.path)
    assert _read(store.path) == truth
    cache = store.path / STATUS_CACHE
    good = cache.read_bytes()
    # a reader killed while writing the cache leaves its temporary file; another wrote half a file, or
    # something else sits there
    (cache.parent / ".statuses.json.0badc0de.partial").write_bytes(good[: len(good) // 2])
    for text in (good[: len(good) // 2], b"", b"[1, 2]", b'{"format": 1, "entries": {"%s": [1, 2, "x", {}]}}' % tasks[0].id.encode(),
                 b'{"format": 99, "entries": {}}'):
        cache.write_bytes(text)
        assert _read(store.path) == truth
        assert json.loads(cache.read_bytes())["format"] == 1  # read past, and written anew


def _read_in_a_process(path, times, out):
    for _ in range(times):
        out.put(_read(Path(path)))


def test_two_drivers_reading_and_caching_at_once_read_the_documents(planned_store):
    store, tasks, _, _ = planned_store(MANY)
    _ended(store, tasks)
    truth = _documents(store.path)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    drivers = [ctx.Process(target=_read_in_a_process, args=(str(store.path), 10, out)) for _ in range(2)]
    for p in drivers:
        p.start()
    results = [out.get(timeout=120) for _ in range(20)]
    for p in drivers:
        p.join(timeout=60)
    assert all(r == truth for r in results)
    # and one driver's cache, then the tasks' new documents, then the other's reads
    first, second = RunStore.open(store.path), RunStore.open(store.path)
    assert {t["id"]: t["status"] for t in first.tasks()} == {**truth}
    _ended(store, tasks[:40])  # rewritten (30 s old each: cacheable)
    assert _read(store.path) == _documents(store.path)
    assert {t["id"]: t["status"] for t in second.tasks() if t["state"] != "pending"} == _documents(store.path)


def test_a_copied_store_reads_its_own_documents_not_the_cache_of_the_original(planned_store, tmp_path):
    from snnbatch.orchestrator.store import STATUS_CACHE

    store, tasks, _, _ = planned_store(MANY)
    _ended(store, tasks)
    assert _read(store.path) == _documents(store.path) and (store.path / STATUS_CACHE).is_file()
    copies = [tmp_path / "cp", tmp_path / "rsync"]
    subprocess.run(["cp", "-r", str(store.path), str(copies[0])], check=True)
    subprocess.run(["rsync", "-a", f"{store.path}/", f"{copies[1]}/"], check=True)  # times kept
    for copy in copies:
        assert (copy / STATUS_CACHE).is_file()
        assert _read(copy) == _documents(copy)
        TaskStore(copy, tasks[0].id).update_status(loss=0.125)  # the copy goes on on its own
        assert _read(copy)[tasks[0].id]["loss"] == 0.125 and _read(store.path)[tasks[0].id]["loss"] == 0.5
        assert _read(copy) == _documents(copy)
