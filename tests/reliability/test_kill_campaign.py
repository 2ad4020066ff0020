"""Kill campaign: SIGKILL tasks at random instants, resume them, and find nothing lost.

Each task of a small sweep is started with ``snnbatch run-task STORE ID`` in a
subprocess and killed with SIGKILL, again and again, then left to finish.
Kills land everywhere: during start-up (taking the lease, writing the status),
between iterations and, most often, in the middle of writing a checkpoint (a
checkpoint every 2 iterations, and half of the attempts run with
``SNNBATCH_TEST_SLOW_CHECKPOINT`` set, which sleeps before each array write
and before the commit). Afterwards:

* every task is done and bit-identical to an uninterrupted run;
* no attempt lost more than the checkpoint interval: each attempt started from
  the last checkpoint an earlier attempt recorded (or the one after it, when
  the kill fell between committing a checkpoint and recording it);
* no checkpoint was ever found damaged (no warnings), nothing is left behind.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time

import pytest

from snnbatch.jobs.store import LEASE

from .conftest import CLI, SMALL, assert_same_as, make_store, spec_text, status_of

INTERVAL = 2  # checkpoint.every_iterations in SMALL


def _attempt_started(status_files, pid: int) -> bool:
    """Whether process ``pid`` has loaded a checkpoint and is training (read without Zarr, like a poller)."""
    for f in status_files:
        try:
            attempts = json.loads(f.read_text())["attributes"].get("attempts") or []
        except (OSError, ValueError, KeyError):
            continue
        if attempts and attempts[-1].get("pid") == pid and "from_iteration" in attempts[-1]:
            return True
    return False


def _partial_checkpoint(ckdirs) -> bool:
    """Whether a checkpoint is being written (or was left half written) in one of ``ckdirs``."""
    for d in ckdirs:
        try:
            if any(".partial-" in name for name in os.listdir(d)):
                return True
        except OSError:
            pass
    return False


def _wait(proc, condition, poll: float, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while proc.poll() is None and not condition() and time.monotonic() < deadline:
        time.sleep(poll)


def kill_loop(store_path, task_ids, kills_wanted: int, rng: random.Random, command) -> tuple[int, int]:
    """Start ``command`` and SIGKILL it ``kills_wanted`` times at random instants, then let it finish.

    A kill lands (1) anywhere, start-up included, (2) at a random instant of training, or
    (3) while a checkpoint is being written (with the slow-checkpoint hook on). Timed from
    what the process has done, not from the clock alone, so a loaded machine changes the
    mix little. Returns the number of kills, and how many left a checkpoint half written.
    """
    status_files = [store_path / "tasks" / tid / "status" / "zarr.json" for tid in task_ids]
    ckdirs = [store_path / "tasks" / tid / "checkpoints" for tid in task_ids]
    kills = mid_checkpoint = 0
    while True:
        mode = rng.choices(["anywhere", "training", "checkpoint"], weights=[2, 4, 4])[0]
        slow = mode == "checkpoint" or rng.random() < 0.5
        env = dict(os.environ, SNNBATCH_TEST_SLOW_CHECKPOINT="0.01" if slow else "")
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        if kills >= kills_wanted:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err.decode()
            return kills, mid_checkpoint
        if mode == "anywhere":
            time.sleep(rng.uniform(0.05, 1.0))
        else:
            _wait(proc, lambda: _attempt_started(status_files, proc.pid), poll=0.02)
            if mode == "training":
                time.sleep(rng.uniform(0.05, 0.5))
            else:
                _wait(proc, lambda: _partial_checkpoint(ckdirs), poll=0.002)
                time.sleep(rng.uniform(0, 0.08))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        _, err = proc.communicate(timeout=60)
        if proc.returncode == 0:
            return kills, mid_checkpoint  # finished before the kill landed
        assert proc.returncode == -signal.SIGKILL, err.decode()
        mid_checkpoint += _partial_checkpoint(ckdirs)


def campaign(store_path, task_ids, kills_per_task: int, seed: int, workers: int = 3) -> tuple[int, int]:
    """``snnbatch run-task`` under :func:`kill_loop` for every task, ``workers`` tasks at a time.

    Returns the kills, and those that left a checkpoint half written.
    """
    todo = list(task_ids)
    counts, errors = [], []
    lock = threading.Lock()

    def worker(n):
        rng = random.Random(seed * 1000 + n)
        while True:
            with lock:
                if not todo or errors:
                    return
                tid = todo.pop(0)
            try:
                counts.append(kill_loop(store_path, [tid], kills_per_task, rng,
                                        CLI + ["run-task", str(store_path), tid]))
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def check_attempts(status: dict, interval: int) -> None:
    """Work lost per kill is bounded by the checkpoint interval, as the attempt records show."""
    *killed, last = status["attempts"]
    assert last["reason"] == "done"
    assert all(a["reason"] == "lost (killed, or its node failed)" and a["ended"] >= a["started"] for a in killed)
    floor = 0  # the newest checkpoint an earlier attempt recorded
    for a in status["attempts"]:
        if "from_iteration" not in a:
            continue  # killed before it had loaded anything
        start = a["from_iteration"]
        assert floor <= start <= floor + interval, (floor, a)
        floor = max(floor, a.get("checkpointed", start))


def check_clean(store_path, task_id) -> None:
    task_dir = store_path / "tasks" / task_id
    assert not (task_dir / LEASE).exists()
    leftovers = [p.name for p in (task_dir / "checkpoints").iterdir() if "partial" in p.name or "deleted" in p.name]
    assert leftovers == []


def _run_campaign(tmp_path, references, n_tasks, kills_per_task, seed, keep=2, driver=False):
    text = spec_text(SMALL, sweep={"seeds": n_tasks}, checkpoint={"every_iterations": INTERVAL, "keep": keep})
    store, ids = make_store(tmp_path / "store", text)
    ref = references(text)
    if driver:
        command = CLI + ["resume", str(store.path), "--backend", "inline", "--no-progress"]
        kills, mid_checkpoint = kill_loop(store.path, ids, kills_per_task, random.Random(seed), command)
    else:
        kills, mid_checkpoint = campaign(store.path, ids, kills_per_task, seed)
    for tid in ids:
        st = status_of(store.path, tid)
        assert st["state"] == "done"
        assert st.get("warnings", []) == [], st["warnings"]
        check_attempts(st, INTERVAL)
        check_clean(store.path, tid)
        assert_same_as(store.path, ref, tid)
    return kills, mid_checkpoint, ids


def test_fifty_kills_lose_nothing(tmp_path, references):
    t0 = time.monotonic()
    kills, mid_checkpoint, ids = _run_campaign(tmp_path, references, n_tasks=5, kills_per_task=11, seed=1)
    assert kills >= 50, kills
    assert mid_checkpoint >= 10, mid_checkpoint  # the campaign does hit the checkpoint writes
    attempts = sum(len(status_of(tmp_path / "store", tid)["attempts"]) for tid in ids)
    print(f"\nkill campaign: {kills} kills ({mid_checkpoint} mid-checkpoint), {attempts} recorded attempts, "
          f"{time.monotonic() - t0:.0f}s")


@pytest.mark.slow
def test_many_kills_keep_one_checkpoint(tmp_path, references):
    """keep: 1, the tightest setting: the only checkpoint is replaced at every save."""
    kills, mid_checkpoint, _ = _run_campaign(tmp_path, references, n_tasks=4, kills_per_task=60, seed=2, keep=1)
    assert kills >= 200 and mid_checkpoint >= 40


@pytest.mark.slow
def test_many_kills_of_the_driver(tmp_path, references):
    """SIGKILL ``snnbatch resume STORE --backend inline`` (the tasks run inside the driver), then resume."""
    kills, _, _ = _run_campaign(tmp_path, references, n_tasks=8, kills_per_task=60, seed=3, driver=True)
    assert kills >= 50


def test_sigterm_checkpoints_then_exits_3(tmp_path, references):
    """SIGTERM (a scheduler's warning before the kill) saves a checkpoint at once and exits with status 3."""
    # long enough that the signal, sent as soon as training starts, lands well before the end
    iterations = 3000
    text = spec_text(SMALL, checkpoint={"every_iterations": 10000, "keep": 2},
                     training={"iterations": iterations, "batch_size": 64})
    store, (tid,) = make_store(tmp_path / "store", text)
    status_file = store.path / "tasks" / tid / "status" / "zarr.json"
    proc = subprocess.Popen(CLI + ["run-task", str(store.path), tid], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    while proc.poll() is None and not _attempt_started([status_file], proc.pid):
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, out + err
    st = status_of(store.path, tid)
    stopped_at = st["attempts"][0]["checkpointed"]
    assert 0 < stopped_at < iterations and f"interrupted at iteration {stopped_at} (sigterm)" in out
    assert (st["state"], st["iteration"], st["attempts"][0]["reason"]) == ("interrupted", stopped_at, "sigterm")
    r = subprocess.run(CLI + ["run-task", str(store.path), tid], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert status_of(store.path, tid)["attempts"][1]["from_iteration"] == stopped_at  # nothing lost
    assert_same_as(store.path, references(text), tid)
