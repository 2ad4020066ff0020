"""A packed sweep (resources.pack, resources.node_cpus) on the live single-node SLURM: four tasks in one
array element, two side by side. Two of them fail, one is short, one is long; the long one is
preempted, then requeued by its element's own deadline, and ends with the bits of the inline backend's
run of the same spec. The failing pack-mates stop no one, and the requeued element runs only the task
that was not finished.
"""
import os
import signal
import subprocess
import time

import numpy as np

from snnbatch import open_run

from test_slurm import CLI, all_ended, cli, wait_until, write

SPEC = """
name: packed
dataset: {{n_train: 1024, n_test: 256}}
model: {{n_hidden: 128}}
training: {{batch_size: 256}}
checkpoint: {{every_iterations: 25}}
resources: {{time: "00:10:00", memory: 300M, pack: 4, node_cpus: 2{margin}}}
sweep: {{grid: {{lr: [1.0e-3, 1.0e+38], iterations: [40, {long}]}}}}
"""
LONG = 400
# The long task stops itself (SIGSTOP, SNNBATCH_STOP_AT_ITERATION) right after its checkpoints at these
# iterations, and the test interrupts it there: a state, not a time, however fast the kernel runs.
AT_DEADLINE, AT_PREEMPTION = 25, 200
RUN_FOR = 25  # seconds: the element's own deadline, long before SLURM's USR2 for the 10-minute limit


def reference(tmp_path, spec):
    """The same spec on the inline backend, which ignores packing (exit status 1: two tasks fail)."""
    store = tmp_path / "reference"
    r = cli("submit", str(spec), "--store", str(store), "--backend", "inline", "--no-progress", timeout=900)
    assert r.returncode == 1 and "2 done, 2 failed" in r.stdout, r.stdout + r.stderr
    return open_run(store)


def _proc(pid, name):
    try:
        with open(f"/proc/{pid}/{name}") as fh:
            return fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return None


def stopped(pid):
    stat = _proc(pid, "stat")
    return stat is not None and stat.rsplit(")", 1)[1].split()[0] == "T"


def signal_pending_or_gone(pid):
    """A signal waits for the stopped process (SLURM's USR2 of a preemption), or it no longer waits."""
    text = _proc(pid, "status")
    if text is None or not stopped(pid):
        return True
    masks = dict(line.split(":", 1) for line in text.splitlines() if line.startswith(("SigPnd", "ShdPnd")))
    return any(int(v, 16) for v in masks.values())


def lane_deadline(pid) -> float:
    """The deadline (seconds since the epoch) the element gave its lane ``pid`` (``--deadline T`` of its command)."""
    args = (_proc(pid, "cmdline") or "").split("\0")
    return float(args[args.index("--deadline") + 1])


def stopped_at(store, long_id, rest=(), after=0):
    """The long task's attempt, when an attempt after the first ``after`` has stopped itself (at one of the
    iterations the test names) and the long task's pack-mates ``rest`` have ended; else None."""
    run = open_run(store)
    st = run.task(long_id).status
    attempts = st.get("attempts") or [{}]
    last = attempts[-1]
    if st.get("state") != "running" or len(attempts) <= after or not stopped(last.get("pid", 0)):
        return None
    if not all(run.task(t).state in ("done", "failed") for t in rest):
        return None
    return {**last, "n": len(attempts)}


def test_a_packed_sweep_survives_preemption_and_requeue_bit_identical_and_a_failing_pack_mate_stops_no_one(
        cluster, tmp_path):
    cluster.start(accounting="on")
    ref = reference(tmp_path, write(tmp_path, "reference", SPEC.format(margin="", long=LONG)))
    ids = {(t.params["lr"], t.params["iterations"]): t.id for t in ref.tasks}
    long_id = ids[(1e-3, LONG)]
    rest = [t for k, t in ids.items() if k != (1e-3, LONG)]
    margin = 600 - RUN_FOR
    spec = write(tmp_path, "packed", SPEC.format(margin=f', deadline_margin: "{margin // 60:02d}:{margin % 60:02d}"',
                                                 long=LONG))
    store = tmp_path / "packed"
    env = {**os.environ, "SNNBATCH_STOP_AT_ITERATION": f"{long_id}:{AT_DEADLINE},{long_id}:{AT_PREEMPTION}"}
    r = subprocess.run(CLI + ["submit", str(spec), "--store", str(store), "--backend", "slurm"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "with 4 tasks in 1 elements (resources.pack)" in r.stdout, r.stdout

    # 1. stopped at iteration 25 (after its checkpoint there), its pack-mates ended: let the element's deadline pass, then let
    #    it go on; at the next iteration it sees the deadline, checkpoints and its element requeues itself
    first = wait_until(lambda: stopped_at(store, long_id, rest), 600, 0.2,
                       f"the long task stopped at iteration {AT_DEADLINE}, its pack-mates ended")
    deadline = lane_deadline(first["pid"])  # the element's deadline, as its lane was given it
    assert deadline <= first["started"] + RUN_FOR  # set when the element started, before this attempt
    time.sleep(max(0.0, deadline - time.time()) + 0.1)  # the stopped lane's deadline passes
    os.kill(first["pid"], signal.SIGCONT)
    # 2. stopped at iteration 200, in a later attempt (its last checkpoint some iterations before): a job in the high-priority partition that
    #    needs every CPU of the node preempts the element (SLURM sends USR2 first); once the signal waits
    #    for the stopped lane, let it go on
    second = wait_until(lambda: stopped_at(store, long_id, after=first["n"]), 600, 0.2,
                        f"the long task stopped at iteration {AT_PREEMPTION}")
    assert second["n"] > first["n"]
    cpus = subprocess.run(["sinfo", "-h", "-N", "-o", "%c"], capture_output=True, text=True).stdout.split()[0]
    r = subprocess.run(["sbatch", "-p", "high", "-c", cpus, "--mem=100M", "-o", "/dev/null", "--wrap", "sleep 3"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: signal_pending_or_gone(second["pid"]), 300, 0.1, "the preemption's signal")
    if stopped(second["pid"]):
        os.kill(second["pid"], signal.SIGCONT)
    d = wait_until(lambda: all_ended(store), 900, 3, "the packed sweep to end")

    by = {(t["params"]["lr"], t["params"]["iterations"]): t for t in d["tasks"]}
    assert {k: t["state"] for k, t in by.items()} == {(1e-3, 40): "done", (1e-3, LONG): "done",
                                                      (1e38, 40): "failed", (1e38, LONG): "failed"}
    assert len({t["job_id"] for t in d["tasks"]}) == 1  # one element, shown per task
    run = open_run(store)
    long = run.task(long_id).status["attempts"]
    reasons = [a["reason"] for a in long]
    n = second["n"]  # the attempt that was preempted
    assert reasons[first["n"] - 1] == "deadline", reasons
    assert set(reasons[:n - 1]) == {"deadline"} and reasons[n - 1] == "preemption" and reasons[-1] == "done", reasons
    assert set(reasons[n:-1]) <= {"deadline"}, reasons
    assert long[first["n"] - 1]["checkpointed"] == AT_DEADLINE + 1  # the iteration after the stop saw the deadline
    # at the first check after the USR2's handler has run: the next iteration, or one or two later when the
    # signal reached another of the lane's threads first
    assert AT_PREEMPTION < long[n - 1]["checkpointed"] <= AT_PREEMPTION + 5, long[n - 1]
    assert all(b["from_iteration"] == a["checkpointed"] > 0 for a, b in zip(long, long[1:])), long
    assert len({a["job_id"] for a in long}) == 1  # the same element, requeued
    for key in ((1e-3, 40), (1e38, 40), (1e38, LONG)):  # ended before the first requeue: never run again
        assert len(run.task(by[key]["id"]).status["attempts"]) == 1, key
    for key in ((1e-3, 40), (1e-3, LONG)):
        mine, theirs = run.task(by[key]["id"]), ref.task(by[key]["id"])
        for k, v in theirs.checkpoint.items():
            assert mine.checkpoint[k].tobytes() == v.tobytes(), f"{key}: {k} differs"
        assert np.array_equal(mine.metrics["loss"], theirs.metrics["loss"])
        assert mine.status["test_accuracy"] == theirs.status["test_accuracy"]
    assert "finite" in run.task(by[(1e38, 40)]["id"]).status["error_line"]
