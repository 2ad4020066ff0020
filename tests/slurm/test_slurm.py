"""snnbatch on a live single-node SLURM: arrays, timeouts, preemption, requeue, accounting off, splitting.

Every interrupted task must end with the same bits as an uninterrupted run of the same spec by the
inline backend.
"""
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from snnbatch import open_run
from snnbatch.orchestrator.backends import slurm
from snnbatch.orchestrator.cli import main

def wait_until(predicate, timeout, interval=1.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]

TINY = """
name: {name}
dataset: {{n_train: 128, n_test: 64}}
model: {{n_hidden: 8}}
training: {{iterations: {iterations}, batch_size: 64}}
resources: {{time: "{time}", memory: 300M}}
sweep: {{seeds: {seeds}}}
"""

LONG = """
name: {name}
dataset: {{n_train: 1024, n_test: 256}}
model: {{n_hidden: 128}}
training: {{iterations: {iterations}, batch_size: 256}}
checkpoint: {{every_iterations: 25}}
resources: {{time: "{time}", memory: 500M}}
"""


def cli(*args, timeout=300):
    r = subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=timeout)
    return r


def write(tmp_path, name, text):
    p = tmp_path / f"{name}.yaml"
    p.write_text(text)
    return p


def status(store):
    r = cli("status", str(store), "--json", timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def all_ended(store):
    d = status(store)
    return d if d["summary"]["done"] + d["summary"]["failed"] == len(d["tasks"]) else None


def reference(tmp_path, spec):
    store = tmp_path / "reference"
    r = cli("submit", str(spec), "--store", str(store), "--backend", "inline", "--no-progress", timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    return open_run(store)


def assert_same_bits(store, ref):
    run = open_run(store)
    for t in ref:
        mine = run.task(t.id)
        assert mine.state == "done"
        for k, v in t.checkpoint.items():
            assert mine.checkpoint[k].tobytes() == v.tobytes(), f"{t.id}: {k} differs"
        assert np.array_equal(mine.metrics["loss"], t.metrics["loss"])
        assert mine.status["test_accuracy"] == t.status["test_accuracy"]


def running_with_checkpoint(store, min_iteration=25):
    d = status(store)
    t = d["tasks"][0]
    return t if t["state"] == "running" and t["iteration"] >= min_iteration else None


def test_example_sweep_of_64_tasks_completes_as_one_array(cluster, tmp_path):
    cluster.start(accounting="on")
    spec = Path(__file__).resolve().parents[2] / "examples" / "slurm.yaml"
    store = tmp_path / "many"
    r = cli("submit", str(spec), "--store", str(store), "--backend", "slurm", "--max-parallel", "8")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "submitted array" in r.stdout  # the driver returns at once: fire and forget
    d = wait_until(lambda: all_ended(store), 900, 3, "64 tasks")
    assert d["summary"]["done"] == 64
    arrays = {t["job_id"].split("_")[0] for t in d["tasks"]}
    assert len(arrays) == 1  # one array, not 64 sbatch calls
    # accounting is on: sacct knows the elements ended well
    states = wait_until(lambda: (lambda s: s if len(s) == 64 and set(s.values()) == {"COMPLETED"} else None)(
        slurm.scheduler_states([t["job_id"] for t in d["tasks"]])), 60, 2, "sacct COMPLETED")
    assert len(states) == 64


def test_failing_task_is_reported_while_the_rest_complete(cluster, tmp_path):
    cluster.start(accounting="on")
    text = TINY.format(name="fails", iterations=10, time="00:05:00", seeds=1).replace(
        "sweep: {seeds: 1}", "sweep: {grid: {lr: [1.0e-3, 1.0e+38]}}")
    spec = write(tmp_path, "fails", text)
    store = tmp_path / "fails"
    assert cli("submit", str(spec), "--store", str(store), "--backend", "slurm").returncode == 0
    d = wait_until(lambda: all_ended(store), 300, 2, "both tasks to end")
    by_lr = {t["params"]["lr"]: t for t in d["tasks"]}
    assert by_lr[1e-3]["state"] == "done"
    assert by_lr[1e38]["state"] == "failed"
    assert "finite" in by_lr[1e38]["error"]


def test_task_longer_than_its_time_limit_is_requeued_and_bit_identical(cluster, tmp_path):
    cluster.start(accounting="on")
    text = LONG.format(name="timeout", iterations=3000, time="00:01:00")
    t0 = time.monotonic()
    ref = reference(tmp_path, write(tmp_path, "reference", text))
    whole_run = time.monotonic() - t0
    # the task's own deadline falls halfway through the time the whole run took here (however fast
    # the kernel is), so at least one requeue happens, and each attempt still makes real progress;
    # at most 30 s in, well before SLURM's USR2 (20 s before the 1-minute limit)
    margin = 60 - min(30, max(4, int(whole_run / 2)))
    spec = write(tmp_path, "timeout", text.replace("memory: 500M", f'memory: 500M, deadline_margin: "00:{margin:02d}"'))
    store = tmp_path / "timeout"
    assert cli("submit", str(spec), "--store", str(store), "--backend", "slurm").returncode == 0
    wait_until(lambda: all_ended(store), 1500, 5, "the task to finish across requeues")
    attempts = open_run(store).tasks[0].status["attempts"]
    assert len(attempts) >= 2
    assert {a["reason"] for a in attempts[:-1]} <= {"timeout", "deadline"}
    assert all(b["from_iteration"] >= 25 for b in attempts[1:])
    assert_same_bits(store, ref)


def test_preemption_and_scontrol_requeue_resume_from_checkpoint(cluster, tmp_path):
    cluster.start(accounting="on")
    # long enough (tens of seconds) that the task is still running when the test requeues it a second time
    spec = write(tmp_path, "preempt", LONG.format(name="preempt", iterations=2000, time="00:30:00"))
    ref = reference(tmp_path, spec)
    store = tmp_path / "preempt"
    assert cli("submit", str(spec), "--store", str(store), "--backend", "slurm").returncode == 0
    t = wait_until(lambda: running_with_checkpoint(store, 25), 300, 1, "a first checkpoint")
    # a job in the high-priority partition that needs every CPU of the node preempts ours
    cpus = subprocess.run(["sinfo", "-h", "-N", "-o", "%c"], capture_output=True, text=True).stdout.split()[0]
    r = subprocess.run(["sbatch", "-p", "high", "-c", cpus, "--mem=100M", "-o", "/dev/null", "--wrap", "sleep 3"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wait_until(lambda: len(open_run(store).tasks[0].status.get("attempts", [])) >= 2
               and running_with_checkpoint(store, t["iteration"] + 25), 300, 1, "resumption after preemption")
    # scontrol requeue sends SIGTERM only
    subprocess.run(["scontrol", "requeue", t["job_id"]], check=True, capture_output=True)
    wait_until(lambda: all_ended(store), 900, 3, "the task to finish")
    attempts = open_run(store).tasks[0].status["attempts"]
    reasons = [a["reason"] for a in attempts]
    assert len(attempts) >= 3, reasons
    assert "preemption" in reasons or any(r.startswith("sigterm") for r in reasons[:1])
    assert any(r.startswith("sigterm") for r in reasons[1:]), reasons
    assert_same_bits(store, ref)


def test_accounting_off_status_split_arrays_and_resume(cluster, tmp_path):
    cluster.start(accounting="off", max_array_size=5)
    r = subprocess.run(["sacct"], capture_output=True, text=True)
    assert r.returncode != 0 or "disabled" in (r.stdout + r.stderr).lower()
    spec = write(tmp_path, "split", TINY.format(name="split", iterations=3, time="00:05:00", seeds=12))
    store = tmp_path / "split"
    dry = CliRunner().invoke(main, ["submit", str(spec), "--store", str(store), "--backend", "slurm", "--dry-run"])
    assert dry.exit_code == 0 and "3 array(s) for 12 tasks" in dry.output and "MaxArraySize 5" in dry.output
    assert not store.exists()
    r = cli("submit", str(spec), "--store", str(store), "--backend", "slurm", "--max-parallel", "2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("submitted array") == 3
    t0 = time.time()
    d = wait_until(lambda: all_ended(store), 600, 2, "12 tasks without accounting")
    assert d["summary"]["done"] == 12
    assert len({t["job_id"].split("_")[0] for t in d["tasks"]}) == 3
    # status stays quick without sacct
    t1 = time.time()
    status(store)
    assert time.time() - t1 < 30 and time.time() - t0 < 600
    # resume submits only what is unfinished: nothing here
    r = cli("resume", str(store), "--backend", "slurm")
    assert r.returncode == 0 and "nothing to run" in r.stdout
