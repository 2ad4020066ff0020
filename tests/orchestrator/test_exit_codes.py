"""Every exit status, reached as a user reaches it: the command run as a real process.

0 done, 1 tasks failed, 2 bad input, 3 interrupted (Ctrl-C included), 4 leased elsewhere, 5 the
scheduler or the file system failed. The codes are ``snnbatch.jobs.errors.ExitCode``; the README's
table must say the same. An sbatch that fails or is missing is in ``test_slurm_offline.py``, a full or
read-only store in ``tests/reliability/test_store_space.py``.
"""
from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snnbatch.jobs.errors import BackendError, ExitCode, PluginError, SpecError, StoreError, StoreWriteError, UserError
from snnbatch.jobs.store import TaskStore
from snnbatch.orchestrator.store import RunStore

from conftest import TINY

CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]
README = Path(__file__).resolve().parents[2] / "README.md"
# long enough to be stopped mid-run, whatever the machine
LONG = TINY.replace("iterations: 2", "iterations: 1000000") + "checkpoint: {every_iterations: 50}\n"


def snnbatch(*args, cwd=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=300, cwd=cwd, **kw)


def test_the_codes():
    assert [(c.name, int(c)) for c in ExitCode] == [("DONE", 0), ("TASKS_FAILED", 1), ("BAD_INPUT", 2),
                                                    ("INTERRUPTED", 3), ("LEASED", 4), ("SYSTEM", 5)]
    for cls in (UserError, SpecError, StoreError, PluginError):
        assert cls.exit_code == ExitCode.BAD_INPUT, cls
    assert StoreWriteError.exit_code == BackendError.exit_code == ExitCode.SYSTEM


def test_the_readme_table_gives_the_same_codes():
    text = README.read_text()
    section = text[text.index("## Exit status"):]
    section = section[:section.index("\n## ", 4)]
    rows = re.findall(r"^\| (\d) \| \*\*([^*]+)\*\*", section, re.MULTILINE)
    assert [int(code) for code, _ in rows] == [int(c) for c in ExitCode]
    assert [word for _, word in rows] == ["done", "tasks failed", "bad input", "interrupted", "leased elsewhere",
                                          "scheduler or file system failed"]


def test_0_done_and_1_failed(write_spec, tmp_path):
    spec = write_spec(TINY + "sweep: {grid: {lr: [2.0e-3, 1.0e+38]}}\n")
    r = snnbatch("submit", spec, "--store", tmp_path / "store", "--backend", "inline", "--no-progress")
    assert r.returncode == ExitCode.TASKS_FAILED, r.stdout + r.stderr
    assert "finished: 1 done, 1 failed" in r.stdout and "Traceback" not in r.stderr
    r = snnbatch("resume", tmp_path / "store", "--backend", "inline", "--no-progress")  # failed ones stay failed
    assert r.returncode == ExitCode.DONE and "nothing to run, every task is done" in r.stdout, r.stdout + r.stderr
    good = write_spec(TINY, name="good.yaml")
    r = snnbatch("submit", good, "--store", tmp_path / "good", "--backend", "inline", "--no-progress")
    assert r.returncode == ExitCode.DONE and "finished: 1 done" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("args, words", [
    (["submit", "{spec}", "--backend", "inline", "--max-parallel", "0"], "Invalid value for '--max-parallel'"),
    (["submit", "{bad}", "--backend", "inline"], "training.lr: expected a positive number"),
    (["status", "{tmp}"], "not a snnbatch run store"),
    (["run-task", "{tmp}", "../../etc"], "is not a task id"),
    (["submit", "{spec}", "--backend", "local", "--dry-run"], "--dry-run: the local backend runs the tasks itself"),
])
def test_2_bad_input(write_spec, tmp_path, args, words):
    paths = {"spec": write_spec(TINY), "bad": write_spec("training: {lr: fast}\n", name="bad.yaml"), "tmp": tmp_path}
    r = snnbatch(*[a.format(**paths) for a in args], cwd=tmp_path)
    assert r.returncode == ExitCode.BAD_INPUT, r.stdout + r.stderr
    assert words in r.stderr and "Traceback" not in r.stderr, r.stderr


def _planned(spec_path: Path, text: str, store: Path) -> list[str]:
    """A new store holding the tasks of the spec; their ids."""
    from snnbatch.orchestrator import planner, spec as spec_mod

    spec = spec_mod.load(spec_path)
    tasks = planner.plan(spec)
    RunStore.create_or_update(store, spec, text, tasks)
    return [t.id for t in tasks]


def _started(store: Path, timeout: float = 120) -> str:
    """Wait until the store's one task has trained and checkpointed a little; its id."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            (task,) = RunStore.open(store).tasks()
            if task["state"] == "running" and task["status"].get("checkpoint"):
                return task["id"]
        except Exception:  # the store is not there yet
            pass
        time.sleep(0.2)
    raise AssertionError("the task did not start")


@pytest.mark.parametrize("command", [["submit", "{spec}", "--store", "{store}", "--backend", "inline",
                                      "--no-progress"],
                                     ["run-task", "{store}", "{task}"]])
def test_3_ctrl_c_checkpoints_and_exits_3(write_spec, tmp_path, command):
    spec = write_spec(LONG)
    store = tmp_path / "store"
    task = ""
    if command[0] == "run-task":
        task = _planned(spec, LONG, store)[0]
    proc = subprocess.Popen(CLI + [a.format(spec=spec, store=store, task=task) for a in command],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        tid = _started(store)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED, out + err
    assert "Traceback" not in err
    status = TaskStore(store, tid, mode="r").status()
    assert status["state"] == "interrupted" and status["attempts"][-1]["reason"] == "interrupt"
    if command[0] == "submit":
        # the store's real path, to paste
        assert f"interrupted: every task keeps its last checkpoint; continue with 'snnbatch resume {store.resolve()}'" in err


def test_4_leased_elsewhere(write_spec, tmp_path):
    store = tmp_path / "store"
    (tid,) = _planned(write_spec(TINY), TINY, store)
    lease, _ = TaskStore(store, tid).acquire_lease()  # this live process holds the task
    try:
        r = snnbatch("run-task", store, tid)
    finally:
        lease.release()
    assert r.returncode == ExitCode.LEASED, r.stdout + r.stderr
    assert f"{tid}: leased at iteration 0 (running elsewhere: host " in r.stdout
    assert f"pid {os.getpid()}" in r.stdout


def test_5_a_store_that_cannot_be_written(write_spec, tmp_path):
    """Files larger than a few bytes cannot be written (RLIMIT_FSIZE): the file system refuses, exit 5."""
    spec = write_spec(TINY)

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16, 16))

    r = snnbatch("submit", spec, "--store", tmp_path / "store", "--backend", "inline", preexec_fn=small_files)
    assert r.returncode == ExitCode.SYSTEM, r.stdout + r.stderr
    assert f"error: {tmp_path / 'store'}: cannot write the run store: File too large" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "store").exists()


def test_5_a_dask_scheduler_that_cannot_be_reached(write_spec, tmp_path):
    spec = write_spec(TINY)
    env = os.environ | {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    r = snnbatch("submit", spec, "--store", tmp_path / "store", "--backend", "dask", "--scheduler-address",
                 "tcp://127.0.0.1:9", env=env)
    assert r.returncode == ExitCode.SYSTEM, r.stdout + r.stderr
    assert "error: cannot reach the Dask scheduler at tcp://127.0.0.1:9: " in r.stderr and "Traceback" not in r.stderr
    assert json.loads(snnbatch("status", tmp_path / "store", "--json").stdout)["summary"]["pending"] == 1


def test_submit_counts_a_task_another_driver_finished_as_done_and_an_interrupted_one_as_3(write_spec, tmp_path):
    """How ``submit`` and ``resume`` choose their status once the backend has waited for the tasks."""
    from snnbatch.jobs.runner import StopFlag, run_task
    from snnbatch.orchestrator.backends.base import Backend, SubmitResult
    from snnbatch.orchestrator.cli.submit import _run

    text = TINY + "sweep: {seeds: 3}\n"
    store = tmp_path / "store"
    first, second, third = _planned(write_spec(text), text, store)
    assert run_task(store, first).state == "done"  # by another driver, which held it when this one came to it

    class Racing(Backend):
        name = "racing"

        def submit(self, store, task_ids):
            return SubmitResult(waited=True, outcomes={first: "leased", second: run_task(store.path, second).state})

    _run(RunStore.open(store, mode="r+"), [first, second], Racing())  # returns: every task is done (status 0)

    class Stopped(Backend):
        name = "stopped"

        def submit(self, store, task_ids):
            stop = StopFlag()
            stop.request("interrupt")
            return SubmitResult(waited=True, outcomes={third: run_task(store.path, third, stop=stop).state})

    with pytest.raises(SystemExit) as info:
        _run(RunStore.open(store, mode="r+"), [third], Stopped())
    assert info.value.code == ExitCode.INTERRUPTED
