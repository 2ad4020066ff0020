"""Leases: one process runs a task at a time, whoever starts it, and a dead holder never blocks it.

The rules (see ``snnbatch.jobs.store``) are tested in this process with lease
files written by hand; then two real ``snnbatch resume`` (and ``submit``)
drivers race over the same store, and every task must run exactly once.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from snnbatch.jobs.runner import run_task
from snnbatch.jobs.store import LEASE, Lease, TaskStore, _lease_info, lease_alive
from snnbatch.orchestrator.store import RunStore

from .conftest import CLI, SMALL, assert_same_as, make_store, spec_text, status_of, tree_digest

@pytest.fixture
def task(tmp_path):
    store, (tid,) = make_store(tmp_path / "store", SMALL)
    return TaskStore(store.path, tid)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_lease(ts: TaskStore, **fields) -> dict:
    info = _lease_info("f" * 32) | fields
    (ts.dir / LEASE).write_text(json.dumps(info))
    return info


def test_a_second_holder_is_refused_and_nothing_is_written(task):
    lease, _ = task.acquire_lease()
    assert isinstance(lease, Lease)
    again, holder = task.acquire_lease()
    assert again is None and holder["pid"] == os.getpid()
    before = tree_digest(task.path)
    outcome = run_task(task.path, task.task_id)
    assert outcome.state == "leased"
    assert outcome.reason.startswith("running elsewhere: host ")
    assert tree_digest(task.path) == before
    lease.release()
    assert not (task.dir / LEASE).exists()
    lease, _ = task.acquire_lease()
    assert lease is not None


def test_a_dead_holder_on_this_host_is_taken_over(task):
    write_lease(task, pid=_dead_pid())
    lease, holder = task.acquire_lease()
    assert lease is not None and holder is None
    assert json.loads((task.dir / LEASE).read_text())["pid"] == os.getpid()


def test_an_unreaped_holder_is_dead(task):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    time.sleep(0.5)  # exited, not waited for: a zombie, which kill(pid, 0) still finds
    try:
        assert not lease_alive(_lease_info("x") | {"pid": proc.pid, "start": None})
    finally:
        proc.wait()


def test_a_reused_pid_is_not_the_holder(task):
    write_lease(task, pid=os.getpid(), start="1")  # our pid, but a process that started at boot
    lease, _ = task.acquire_lease()
    assert lease is not None


def test_a_holder_elsewhere_counts_until_its_heartbeat_is_stale(task):
    write_lease(task, host="node7", where="node7 pid:[1]", heartbeat=time.time())
    t0 = time.monotonic()
    lease, holder = task.acquire_lease()
    assert lease is None and holder["host"] == "node7"
    assert time.monotonic() - t0 < 1  # a recent heartbeat: refused at once, no waiting

    write_lease(task, host="node7", where="node7 pid:[1]", heartbeat=time.time() - 50)
    t0 = time.monotonic()
    lease, holder = task.acquire_lease(wait=0.3)  # missed heartbeats: wait a while for it to go stale
    assert lease is None and time.monotonic() - t0 >= 0.3

    write_lease(task, host="node7", where="node7 pid:[1]", heartbeat=time.time() - 1000)
    lease, holder = task.acquire_lease()
    assert lease is not None


def test_an_unreadable_lease_is_judged_by_its_age(task):
    (task.dir / LEASE).write_bytes(b"\x00garbage")
    assert task.acquire_lease()[0] is None
    os.utime(task.dir / LEASE, (time.time() - 1000, time.time() - 1000))
    assert task.acquire_lease()[0] is not None


def test_a_holder_whose_lease_is_taken_over_stops_without_writing(task, monkeypatch):
    """If a holder's lease is taken over (it looked stale), the holder stops at its next step."""
    monkeypatch.setenv("SNNBATCH_TEST_SLOW_CHECKPOINT", "0.02")
    status_file = task.dir / "status" / "zarr.json"
    took = threading.Event()

    def take_over():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                attempts = json.loads(status_file.read_text())["attributes"].get("attempts", [])
                if attempts and attempts[-1].get("checkpointed", 0) >= 4:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.01)
        else:
            return
        os.rename(task.dir / LEASE, task.dir / "taken")
        write_lease(task, host="node7", where="node7 pid:[1]", heartbeat=time.time())
        took.set()

    thread = threading.Thread(target=take_over)
    thread.start()
    outcome = run_task(task.path, task.task_id)
    thread.join()
    assert took.is_set()
    assert outcome.state == "leased" and "lease lost to host node7" in outcome.reason
    st = task.status()
    assert st["state"] == "running" and "ended" not in st["attempts"][-1]  # nothing written after the loss
    assert json.loads((task.dir / LEASE).read_text())["host"] == "node7"  # the new holder's lease is kept


def test_status_says_running_only_while_a_live_process_holds_the_lease(task):
    task.update_status(state="running", heartbeat=time.time(), attempts=[{"pid": os.getpid(), "host": "x"}])
    store = RunStore.open(task.path)
    assert store.tasks()[0]["state"] == "interrupted"  # no lease
    lease, _ = task.acquire_lease()
    assert store.tasks()[0]["state"] == "running"
    lease.release()
    write_lease(task, pid=_dead_pid())
    assert store.tasks()[0]["state"] == "interrupted"
    write_lease(task, host="node7", where="node7 pid:[1]", heartbeat=time.time())
    assert store.tasks()[0]["state"] == "running"


# ------------------------------------------------------------------ real concurrent drivers

RACE = spec_text(SMALL, sweep={"seeds": 4}, checkpoint={"every_iterations": 10, "keep": 2})


def _race(*commands):
    procs = [subprocess.Popen(CLI + list(c), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert "Traceback" not in out + err, out + err
        # 0: all done; 1: this driver finished while the other still ran some tasks
        assert p.returncode in (0, 1), out + err
    return outs


def _each_ran_once(store_path, ids, ref):
    pids = set()
    for tid in ids:
        st = status_of(store_path, tid)
        assert st["state"] == "done"
        assert len(st["attempts"]) == 1, st["attempts"]
        pids.add(st["attempts"][0]["pid"])
        assert_same_as(store_path, ref, tid)
    return pids


@pytest.mark.parametrize("leftover", ["fresh store", "stale leases of a crashed run"])
def test_two_resume_drivers_run_every_task_once(tmp_path, references, leftover):
    store, ids = make_store(tmp_path / "store", RACE)
    if leftover != "fresh store":
        for tid in ids:
            write_lease(TaskStore(store.path, tid), pid=_dead_pid())
    args = ["resume", str(store.path), "--backend", "inline", "--no-progress"]
    _race(args, args)
    _each_ran_once(store.path, ids, references(RACE))


def test_two_submit_drivers_create_one_store_and_run_every_task_once(tmp_path, references):
    spec = tmp_path / "race.yaml"
    spec.write_text(RACE)
    store = tmp_path / "new" / "store"
    args = ["submit", str(spec), "--store", str(store), "--backend", "inline", "--no-progress"]
    _race(args, args)
    ids = RunStore.open(store).task_ids()
    assert len(ids) == 4
    _each_ran_once(store, ids, references(RACE))
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["store"]  # no temporary left behind
