"""Faults at cluster scale on the live single-node SLURM: a packed sweep of 200 small tasks (pack: 20,
node_cpus: 2, two lanes side by side in each of 10 elements) while the test SIGKILLs task processes,
restarts slurmctld, and sets the node DOWN (which kills and requeues every element on it) and back:
two SIGKILLs, the restart, the node DOWN, one more SIGKILL, five faults.
Every fault is injected once a state is reached (tasks done, a task running past a checkpoint, a task
stopped by itself right after its checkpoint at iteration 10: SNNBATCH_STOP_AT_ITERATION, which its
run from that checkpoint never reaches again), never after a fixed time. Every task must end done by the sweep itself, nothing left for ``snnbatch resume``
(a SIGKILLed task runs again in its element's new lane, a killed element is requeued), with the bits of
the inline backend's run of the same spec.
"""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

from snnbatch import open_run

from test_slurm import CLI, cli, wait_until, write

N = 200
ITERATIONS = 30
KILL_AT = 10  # a checkpoint: the tasks the test kills stop themselves right after it
KILLED = (3, 14, 193)  # by plan index: two tasks of the first element, one of the last
SPEC = f"""
name: faults
dataset: {{n_train: 128, n_test: 64}}
model: {{n_hidden: 8}}
training: {{iterations: {ITERATIONS}, batch_size: 64}}
checkpoint: {{every_iterations: 10}}
resources: {{time: "00:10:00", memory: 200M, pack: 20, node_cpus: 2, max_requeues: 20}}
sweep: {{seeds: {N}}}
"""
STATE = Path("/tmp/snnbatch-slurm")  # start.sh's default state dir
ACTIVE = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
          "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT"}


def statuses(store):
    """Each planned task's status record, read directly (a task that has not started has none)."""
    out = {}
    for d in (Path(store) / "tasks").iterdir():
        try:
            out[d.name] = json.loads((d / "status" / "zarr.json").read_text())["attributes"]
        except (OSError, ValueError, KeyError):
            out[d.name] = {"state": "pending"}
    return out


def lane_pid(store, tid):
    """The pid of the lane process that holds the task's lease, if it is alive and is a lane."""
    try:
        pid = int(json.loads((Path(store) / "tasks" / tid / "lease").read_text())["pid"])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
    except (OSError, ValueError, KeyError):
        return None
    return pid if "snnbatch.jobs.pack" in cmdline else None


def mid_run(store, exclude=()):
    """A task running past its first checkpoint with iterations to go, and its lane's pid."""
    for tid, st in statuses(store).items():
        if tid in exclude or st.get("state") != "running":
            continue
        if 10 <= (st.get("iteration") or 0) < ITERATIONS:
            pid = lane_pid(store, tid)
            if pid:
                return tid, pid
    return None


def count(store, state):
    return sum(st.get("state") == state for st in statuses(store).values())


def jobs_in_queue():
    r = subprocess.run(["squeue", "-h", "-r", "-n", "snnbatch-faults", "-o", "%i %T"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return None  # slurmctld not answering: not known
    return [line.split() for line in r.stdout.splitlines() if line.split()[1:2] and line.split()[1] in ACTIVE]


def stopped_lane(store, tid):
    """The pid of the lane that holds task ``tid``'s lease, once that lane has stopped itself (state T)."""
    pid = lane_pid(store, tid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text() if pid else ""
    except OSError:
        return None
    return pid if stat and stat.rsplit(")", 1)[1].split()[0] == "T" else None


def sigkill_stopped(store, tid, killed):
    """SIGKILL the lane of task ``tid`` once it has stopped right after its checkpoint at KILL_AT. Returns 1,
    the faults injected."""
    pid = wait_until(lambda: stopped_lane(store, tid), 600, 0.1, f"task {tid} stopped at iteration {KILL_AT}")
    os.kill(pid, signal.SIGKILL)
    killed.add(tid)
    return 1


def node():
    return subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True).stdout.split()[0]


def node_state():
    """The node's state (one line per partition it is in)."""
    return set(subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True).stdout.split())


def test_a_packed_sweep_of_200_tasks_survives_sigkills_a_slurmctld_restart_and_a_node_down_bit_identical(
        cluster, tmp_path, request):
    cluster.start(accounting="on")
    t0 = time.monotonic()
    spec = write(tmp_path, "faults", SPEC)
    store = tmp_path / "faults"
    reference = start_reference(tmp_path, spec, request)  # the inline run of the same spec, beside the sweep
    planned = json.loads(cli("plan", str(spec), "--json").stdout)["tasks"]
    targets = [planned[i]["id"] for i in KILLED]
    env = {**os.environ, "SNNBATCH_STOP_AT_ITERATION": ",".join(f"{t}:{KILL_AT}" for t in targets)}
    r = subprocess.run(CLI + ["submit", str(spec), "--store", str(store), "--backend", "slurm"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"with {N} tasks in 10 elements (resources.pack)" in r.stdout, r.stdout
    faults = {"sigkill": 0, "slurmctld restart": 0, "node down": 0}
    killed: set[str] = set()

    # SIGKILL the lanes of two tasks of the first element, each stopped right after its checkpoint
    for tid in targets[:2]:
        faults["sigkill"] += sigkill_stopped(store, tid, killed)

    # slurmctld stopped while tasks run, started again once a task has finished without it
    wait_until(lambda: mid_run(store), 300, 0.1, "a task running past a checkpoint")
    done_before = count(store, "done")
    restart = time.monotonic()
    pid = int((STATE / "run" / "slurmctld.pid").read_text())
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), 60, 0.1, "slurmctld to stop")
    wait_until(lambda: count(store, "done") > done_before, 300, 0.2, "a task to finish while slurmctld is down")
    with open(STATE / "log" / "slurmctld.restart.stderr", "w") as err:
        subprocess.run(["setsid", "slurmctld"], cwd="/", stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                       check=True, timeout=60)
    wait_until(lambda: subprocess.run(["scontrol", "ping"], capture_output=True).returncode == 0, 60, 0.2,
               "slurmctld to answer again")
    faults["slurmctld restart"] += 1
    print(f"slurmctld down for {time.monotonic() - restart:.1f} s")

    # the node DOWN while elements run tasks mid-run: SLURM kills and requeues them; then back to IDLE
    wait_until(lambda: mid_run(store), 300, 0.1, "a task running past a checkpoint")
    running = [j for j, s in jobs_in_queue() if s == "RUNNING"]
    assert running, "no element running"
    assert statuses(store).get(targets[2], {"state": "pending"})["state"] == "pending", "the last element started before the node went DOWN"
    host = node()
    subprocess.run(["scontrol", "update", f"NodeName={host}", "State=DOWN", "Reason=test"], check=True,
                   capture_output=True)
    faults["node down"] += 1
    # (a killed element may stay COMPLETING until the node is back: slurmctld waits for its slurmd's word)
    wait_until(lambda: (lambda q: q is not None and not any(s == "RUNNING" for _, s in q))(
        jobs_in_queue()), 120, 0.2, "no element running on the DOWN node")
    requeued = {j for j, s in jobs_in_queue()}
    assert set(running) & requeued, (running, requeued)  # killed and queued again, not ended
    r = subprocess.run(["scontrol", "update", f"NodeName={host}", "State=RESUME"], capture_output=True, text=True)
    # a refusal is no failure when the node is back already (slurmd registered again by itself)
    wait_until(lambda: node_state() <= {"idle", "mix", "alloc"}, 60, 0.2,
               f"the node back (scontrol update State=RESUME: exit {r.returncode} {r.stderr.strip()})")

    # one more SIGKILL, of a task of the last element (after the requeued elements ran again)
    faults["sigkill"] += sigkill_stopped(store, targets[2], killed)

    # every element leaves the queue, and nothing is left for resume
    wait_until(lambda: jobs_in_queue() == [], 900, 1, "every element to leave the queue")
    assert count(store, "done") == N, f"{N - count(store, 'done')} task(s) left unfinished by the faults"
    sweep = time.monotonic() - t0
    print(f"faults injected: {faults}, sweep {sweep:.0f} s")
    assert faults["sigkill"] == 3 and faults["slurmctld restart"] == 1 and faults["node down"] == 1, faults

    run = open_run(store)
    tasks = {t.id: t for t in run.tasks}
    assert len(tasks) == N and all(t.state == "done" for t in tasks.values())
    for tid in killed:  # a killed task is recorded as lost and run again from a checkpoint, not from scratch
        attempts = tasks[tid].status["attempts"]
        assert any(a["reason"].startswith("lost") for a in attempts[:-1]), attempts
        assert attempts[-1]["from_iteration"] >= 10, attempts
    interrupted = [t for t in tasks.values() if len(t.status["attempts"]) >= 2]
    # the node's kill interrupted running tasks too: SIGTERM, a checkpoint, the requeued element resumed them
    assert any(a["reason"].startswith("sigterm") for t in interrupted for a in t.status["attempts"]), \
        [t.status["attempts"] for t in interrupted]
    ref = reference()
    for t in ref.tasks:
        mine = tasks[t.id]
        for k, v in t.checkpoint.items():
            assert mine.checkpoint[k].tobytes() == v.tobytes(), f"{t.id}: {k} differs"
        assert np.array_equal(mine.metrics["loss"], t.metrics["loss"]), t.id
        assert mine.status["test_accuracy"] == t.status["test_accuracy"], t.id
    print(f"faults injected: {sum(faults.values())} ({faults}); {len(interrupted)} tasks interrupted and resumed; "
          f"test {time.monotonic() - t0:.0f} s")


def start_reference(tmp_path, spec, request):
    """Start the inline backend's run of ``spec`` in a process of its own (stopped when the test ends); the
    call it returns waits for that run and opens its store."""
    store = tmp_path / "reference"
    proc = subprocess.Popen(CLI + ["submit", str(spec), "--store", str(store), "--backend", "inline",
                                   "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    request.addfinalizer(lambda: proc.poll() is None and (proc.kill(), proc.wait()))

    def finished():
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, out
        return open_run(store)

    return finished
