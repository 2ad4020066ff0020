"""A packed sweep (resources.pack, resources.node_cpus) on the live single-node SLURM: four tasks in one
array element, two side by side. Two of them fail, one is short, one is long; the long one is
preempted, then requeued by its element's own deadline, and ends with the bits of the inline backend's
run of the same spec. The failing pack-mates stop no one, and the requeued element runs only the task
that was not finished.
"""
import subprocess
import time

import numpy as np

from snnbatch import open_run

from test_slurm import all_ended, cli, status, wait_until, write

SPEC = """
name: packed
dataset: {{n_train: 1024, n_test: 256}}
model: {{n_hidden: 128}}
training: {{batch_size: 256}}
checkpoint: {{every_iterations: 25}}
resources: {{time: "00:10:00", memory: 300M, pack: 4, node_cpus: 2{margin}}}
sweep: {{grid: {{lr: [1.0e-3, 1.0e+38], iterations: [40, {long}]}}}}
"""
LONG = 3000  # iterations: long enough that an attempt outlasts a preemption's latency on a fast, idle machine


def reference(tmp_path, spec):
    """The same spec on the inline backend, which ignores packing (exit status 1: two tasks fail)."""
    store = tmp_path / "reference"
    r = cli("submit", str(spec), "--store", str(store), "--backend", "inline", "--no-progress", timeout=900)
    assert r.returncode == 1 and "2 done, 2 failed" in r.stdout, r.stdout + r.stderr
    return open_run(store)


def checkpointed_in_this_attempt(store, long_id, rest):
    """The long task running and past a checkpoint of its current attempt, its pack-mates ended (read
    from the store in this process: the window between the element's requeues is a few seconds)."""
    run = open_run(store)
    st = run.task(long_id).status
    attempts = st.get("attempts") or [{}]
    ended = all(run.task(t).state in ("done", "failed") for t in rest)
    return ended and st.get("state") == "running" and attempts[-1].get("checkpointed") is not None \
        and len(attempts) >= 2 and attempts[-1]


def test_a_packed_sweep_survives_preemption_and_requeue_bit_identical_and_a_failing_pack_mate_stops_no_one(
        cluster, tmp_path):
    cluster.start(accounting="on")
    t0 = time.monotonic()
    ref = reference(tmp_path, write(tmp_path, "reference", SPEC.format(margin="", long=LONG)))
    whole_run = time.monotonic() - t0
    # the element's own deadline comes after 30 % of the time the whole run took here (at least 4 s, at
    # most 30 s), long before SLURM's USR2 for the 10-minute limit: the long task needs several attempts
    # (a floor above the long task's own time, as 10 s was on an idle machine, would leave it one)
    run_for = min(30, max(4, int(whole_run * 0.3)))
    margin = 600 - run_for
    spec = write(tmp_path, "packed", SPEC.format(margin=f', deadline_margin: "{margin // 60:02d}:{margin % 60:02d}"',
                                                 long=LONG))
    store = tmp_path / "packed"
    r = cli("submit", str(spec), "--store", str(store), "--backend", "slurm")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "with 4 tasks in 1 elements (resources.pack)" in r.stdout, r.stdout
    ids = {(t["params"]["lr"], t["params"]["iterations"]): t["id"] for t in status(store)["tasks"]}
    long_id = ids[(1e-3, LONG)]
    rest = [t for k, t in ids.items() if k != (1e-3, LONG)]
    # after a requeue by the element's own deadline, once the long task has checkpointed again
    first = wait_until(lambda: checkpointed_in_this_attempt(store, long_id, rest), 600, 0.2,
                       "a requeue, then a checkpoint of the long task, its pack-mates ended")
    # a job in the high-priority partition that needs every CPU of the node preempts the element
    cpus = subprocess.run(["sinfo", "-h", "-N", "-o", "%c"], capture_output=True, text=True).stdout.split()[0]
    r = subprocess.run(["sbatch", "-p", "high", "-c", cpus, "--mem=100M", "-o", "/dev/null", "--wrap", "sleep 3"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = wait_until(lambda: all_ended(store), 900, 3, "the packed sweep to end")

    by = {(t["params"]["lr"], t["params"]["iterations"]): t for t in d["tasks"]}
    assert {k: t["state"] for k, t in by.items()} == {(1e-3, 40): "done", (1e-3, LONG): "done",
                                                      (1e38, 40): "failed", (1e38, LONG): "failed"}
    assert len({t["job_id"] for t in d["tasks"]}) == 1  # one element, shown per task
    run = open_run(store)
    long = run.task(long_id).status["attempts"]
    reasons = [a["reason"] for a in long]
    n = first["n"]  # the attempt that was preempted
    assert set(reasons[:n - 1]) == {"deadline"} and reasons[n - 1] == "preemption" and reasons[-1] == "done", reasons
    assert set(reasons[n:-1]) <= {"deadline"}, reasons
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
