"""Packing several tasks into one SLURM array element (resources.pack, resources.node_cpus), without a
cluster: which tasks go to which element, what an element asks for, which of its tasks a (re)started
element runs, and a lane process running a pack whose middle task fails, or stopped by a signal."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from snnbatch import open_run
from snnbatch.jobs import pack
from snnbatch.jobs.config import Resources
from snnbatch.jobs.runner import run_task
from snnbatch.jobs.store import TaskStore
from snnbatch.orchestrator import backends, planner, spec as spec_mod
from snnbatch.orchestrator.backends import slurm
from snnbatch.orchestrator.backends.base import SubmitOptions

from conftest import TINY, tree

LANE = [sys.executable, "-m", "snnbatch.jobs.pack", "lane"]


def ids(n):
    return [f"{i:012x}" for i in range(n)]


@pytest.mark.parametrize("resources, per_element, side_by_side, groups", [
    ({}, 1, 1, [[0], [1], [2], [3], [4], [5], [6]]),
    ({"pack": 3}, 3, 1, [[0, 1, 2], [3, 4, 5], [6]]),
    ({"cpus": 2, "node_cpus": 8}, 4, 4, [[0, 1, 2, 3], [4, 5, 6]]),  # node_cpus alone: one round side by side
    ({"cpus": 2, "node_cpus": 7}, 3, 3, [[0, 1, 2], [3, 4, 5], [6]]),  # a core left over
    ({"cpus": 2, "node_cpus": 8, "pack": 10}, 10, 4, [[0, 1, 2, 3, 4, 5, 6]]),
    ({"pack": 1, "node_cpus": 4}, 1, 4, [[0], [1], [2], [3], [4], [5], [6]]),
])
def test_tasks_go_to_elements_in_plan_order(resources, per_element, side_by_side, groups):
    res = Resources(**resources)
    assert (res.per_element, res.side_by_side, res.packed) == (per_element, side_by_side, per_element > 1)
    assert slurm.elements(ids(7), res) == [[ids(7)[i] for i in g] for g in groups]


def test_a_packed_element_asks_for_node_cpus_and_the_memory_of_the_tasks_side_by_side():
    p = slurm.executor_parameters(Resources(cpus=2, node_cpus=8, memory="1G", pack=10), "x", None, 3)
    assert (p["cpus_per_task"], p["mem"]) == (8, "4096M")
    p = slurm.executor_parameters(Resources(memory="1G", pack=10), "x", None, 3)  # one after another
    assert (p["cpus_per_task"], p["mem"]) == (1, "1024M")
    p = slurm.executor_parameters(Resources(cpus=1, node_cpus=8, memory="1G", pack=2), "x", None, 3)
    assert (p["cpus_per_task"], p["mem"]) == (8, "2048M")  # only two tasks to run side by side


def test_packing_keys_do_not_change_task_ids(write_spec):
    def planned(extra):
        return [t.id for t in planner.plan(spec_mod.load(write_spec(TINY + extra + "sweep: {seeds: 3}\n")))]

    assert planned("") == planned("resources: {pack: 2, node_cpus: 4}\n") == planned("resources: {pack: 5}\n")


def test_dry_run_of_a_packed_sweep_shows_elements_not_tasks(tmp_path, monkeypatch, write_spec):
    text = TINY + 'resources: {cpus: 2, node_cpus: 8, memory: 1G, pack: 5, time: "00:10:00"}\nsweep: {seeds: 12}\n'
    spec = spec_mod.load(write_spec(text))
    tasks = planner.plan(spec)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no scontrol: SLURM's default MaxArraySize
    out = backends.get("slurm")(SubmitOptions()).dry_run(tmp_path / "s", "tiny", spec.resources, [t.id for t in tasks])
    assert out.startswith("1 array(s) for 12 tasks (SLURM's default MaxArraySize; scontrol did not answer 1001): "
                          "[0-2]\npacked: 5 tasks per element (3 elements), 4 side by side with 2 cpu each, the "
                          "others one after another\neach element: 8 cpu, 4096M, 00:10:00;"), out
    assert "4.0 core-hours requested" in out  # 3 elements x 8 cores x 10 minutes
    assert "#SBATCH --array=0-2" in out and "#SBATCH --cpus-per-task=8" in out and "#SBATCH --mem=4096M" in out


@pytest.fixture
def packed_store(planned_store):
    """Three tasks; the middle one diverges (its learning rate), so it fails."""
    text = TINY.replace("iterations: 2", "iterations: 12") + (
        "checkpoint: {every_iterations: 4}\nresources: {pack: 3}\nsweep: {grid: {lr: [1.0e-3, 1.0e+38, 2.0e-3]}}\n")
    store, tasks, _, _ = planned_store(text)
    return store, [t.id for t in tasks]


def test_a_restarted_element_selects_only_its_unfinished_tasks(packed_store):
    store, (a, b, c) = packed_store
    assert pack.unfinished(store.path, [a, b, c]) == [a, b, c]  # nothing started: every task, in order
    # looking creates nothing: tasks/ holds only tasks that started (the next chunk of a 100,000-task
    # sweep is 100,000 looks)
    assert sorted(p.name for p in (store.path / "tasks").iterdir() if p.is_dir()) == []
    assert run_task(store.path, a).state == "done"
    assert run_task(store.path, b).state == "failed"
    assert pack.unfinished(store.path, [a, b, c]) == [c]
    TaskStore(store.path, c).update_status(state="interrupted", iteration=4)  # stopped at a checkpoint
    assert pack.unfinished(store.path, [a, b, c]) == [c]


def test_the_requeue_budget_is_kept_per_task(packed_store):
    store, (a, _, _) = packed_store
    limit = TaskStore(store.path, a).config().resources.max_requeues
    TaskStore(store.path, a).update_status(state="interrupted", attempts=[{"n": i} for i in range(limit)])
    assert not pack.budget_spent(store.path, a)
    TaskStore(store.path, a).update_status(attempts=[{"n": i} for i in range(limit + 1)])
    assert pack.budget_spent(store.path, a)
    assert TaskStore(store.path, a).read_status().state == "failed"


def lane_command(store, **kw):
    now = time.time()
    args = {"--job-id": "77_3", "--deadline": str(now + 3600), "--limit-at": str(now + 3700),
            "--signal-delay": "120", "--cpus": "1", **kw}
    return LANE + [str(store.path)] + [x for kv in args.items() for x in kv]


def test_a_lane_runs_its_pack_one_task_at_a_time_and_a_failing_one_does_not_stop_the_rest(packed_store):
    store, order = packed_store
    proc = subprocess.run(lane_command(store), input="".join(t + "\n" for t in order), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    outcomes = [json.loads(line) for line in proc.stdout.splitlines()]  # the outcomes alone on stdout
    assert [(o["task"], o["state"]) for o in outcomes] == list(zip(order, ["done", "failed", "done"]))
    run = open_run(store.path)
    assert [run.task(t).state for t in order] == ["done", "failed", "done"]
    assert "finite" in run.task(order[1]).status["error_line"]
    for t in order:  # each its own attempts, all in the element's job
        (attempt,) = run.task(t).status["attempts"]
        assert attempt["job_id"] == "77_3" and attempt["backend"] == "slurm"
    # a second start of the element (a requeue) has nothing left to run
    assert pack.unfinished(store.path, order) == []


def _stopped(pid):
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] == "T"


@pytest.mark.parametrize("signum, reason", [(signal.SIGTERM, "sigterm (requeue, preemption or cancel)"),
                                            (signal.SIGUSR2, "preemption")])
def test_a_signalled_lane_checkpoints_its_task_and_starts_no_other(packed_store, signum, reason):
    store, (a, _, c) = packed_store
    env = {**os.environ, "SNNBATCH_STOP_AT_ITERATION": f"{a}:5"}  # SIGSTOP itself after iteration 5 of a
    proc = subprocess.Popen(lane_command(store), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    proc.stdin.write(a + "\n")
    proc.stdin.flush()
    deadline = time.time() + 300
    while not _stopped(proc.pid):  # a state, not a time: stopped right after its checkpoint at 4 and iteration 5
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.01)
    proc.send_signal(signum)  # USR2 an hour before the limit: a preemption
    os.kill(proc.pid, signal.SIGCONT)
    line = proc.stdout.readline()
    proc.stdin.write(c + "\n")  # handed the next task: not started
    proc.stdin.close()
    assert proc.wait(timeout=300) == 3
    o = json.loads(line)
    assert (o["task"], o["state"], o["iteration"], o["reason"]) == (a, "interrupted", 6, reason)
    run = open_run(store.path)
    assert run.task(a).status["attempts"][-1]["reason"] == reason
    assert run.task(c).state == "pending"
    assert pack.unfinished(store.path, [a, c]) == [a, c]


def test_a_task_whose_lane_is_sigkilled_runs_again_in_a_new_lane_from_its_checkpoint(packed_store):
    """The element's lane feeder (what a packed element runs for each lane): its lane is SIGKILLed in the
    middle of a task; a new lane runs that task again, from its checkpoint, and then the rest."""
    import threading

    store, (a, _, c) = packed_store
    env = {**os.environ, "SNNBATCH_STOP_AT_ITERATION": f"{a}:5"}  # SIGSTOP itself after iteration 5 of a
    runner = slurm.PackRunner()
    queue = [a, c]
    feeder = threading.Thread(target=runner._lane, args=(lane_command(store), env, queue, len(queue)))
    feeder.start()

    def stopped_lane(other_than=()):
        deadline = time.time() + 300
        while True:  # a state, not a time: a lane stopped right after a's checkpoint at 4 and iteration 5
            lanes = [p for p in runner._lanes if p.pid not in other_than and p.poll() is None]
            if lanes and _stopped(lanes[0].pid):
                return lanes[0]
            assert feeder.is_alive() and time.time() < deadline
            time.sleep(0.01)

    first = stopped_lane()
    first.kill()  # SIGKILL: no checkpoint, no status written; the lease's holder is gone
    second = stopped_lane(other_than={first.pid})  # the new lane, with a again
    os.kill(second.pid, signal.SIGCONT)
    feeder.join(timeout=300)
    assert not feeder.is_alive()
    assert {t: o["state"] for t, o in runner._outcomes.items()} == {a: "done", c: "done"}
    attempts = open_run(store.path).task(a).status["attempts"]
    assert len(attempts) == 2  # the killed one and the one that finished it
    assert attempts[1]["from_iteration"] == 4  # from the checkpoint the killed lane wrote
    assert pack.unfinished(store.path, [a, c]) == []


def test_a_task_whose_lane_dies_twice_is_left_lost_for_the_next_start(packed_store):
    store, (a, _, c) = packed_store
    runner = slurm.PackRunner()
    queue = [a, c]
    command = [sys.executable, "-c", "import os, sys; sys.stdin.readline(); os._exit(9)"]  # dies with its task
    runner._lane(command, dict(os.environ), queue, 10)
    assert runner._outcomes == {a: {"task": a, "state": "lost", "reason": "lane exit 9"},
                                c: {"task": c, "state": "lost", "reason": "lane exit 9"}}
    assert runner._retried == {a, c} and queue == []


def test_what_a_sigusr2_means_is_told_by_the_time_left():
    assert pack.usr2_reason(limit_at=1000.0, signal_delay=120, now=1000.0 - 150) == "timeout"
    assert pack.usr2_reason(limit_at=1000.0, signal_delay=120, now=1000.0 - 600) == "preemption"


def test_a_lane_that_may_use_enough_cores_gets_its_own(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    assert slurm.lane_cores(3, 2) == [[0, 1], [2, 3], [4, 5]]
    assert slurm.lane_cores(4, 2) is None  # too few: the lanes share, each with 2 threads
