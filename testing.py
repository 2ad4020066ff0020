"""Test helpers for plugin authors: is my trainer's resume bit-identical?

::

    from snnbatch.testing import check_trainer

    def test_my_network_resumes_bit_for_bit():
        check_trainer({"plugins": ["mymodel.py"], "model": {"type": "izhikevich", "n_hidden": 16},
                       "training": {"iterations": 30}})

:func:`check_trainer` trains the task the spec describes once without a
break, then again in a separate process that is SIGKILLed right after chosen
iterations (random, from ``seed``) and resumed from its newest checkpoint each
time, plus one stop by a signal (SIGTERM, a clean checkpoint), and asserts
that every array of the final state, every metric history and every final
metric are the same bits. A trainer passes when all of its evolving state is
in the arrays and the Generator its ``init_state`` returns; one that keeps
state elsewhere (on ``self``, in a global, in NumPy's global random state)
fails with the first difference named.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

__all__ = ["check_trainer", "TrainerCheck"]


class TrainerCheck:
    """What :func:`check_trainer` did: the task id, its iterations, and where it killed the task."""

    def __init__(self, task_id: str, iterations: int, kills: list[int], attempts: int):
        self.task_id, self.iterations, self.kills, self.attempts = task_id, iterations, kills, attempts

    def __repr__(self) -> str:
        return (f"TrainerCheck(task {self.task_id}: {self.iterations} iterations, SIGKILL after {self.kills}, "
                f"{self.attempts} attempts, bit-identical)")


def check_trainer(spec: dict[str, Any] | str | os.PathLike, *, kills: int = 2, seed: int = 0,
                  checkpoint_every: int = 3, sigterm: bool = True, workdir=None) -> TrainerCheck:
    """Kill and resume the first task of ``spec`` (a dict, or a spec file) and compare it bit for bit.

    ``kills``: how many SIGKILLs, each right after a random iteration; ``checkpoint_every``:
    the checkpoint interval of the interrupted run (so that each resume repeats some
    iterations, as after a real kill). Plugin files in a dict's ``plugins`` are relative
    to the current directory. Raises ``AssertionError`` naming the first difference.
    """
    from .jobs.runner import run_task
    from .orchestrator import planner, spec as spec_mod
    from .orchestrator.store import RunStore

    if isinstance(spec, dict):
        data, base = dict(spec), Path.cwd()
    else:
        data, base = spec_mod.load_yaml(Path(spec).read_text()) or {}, Path(spec).resolve().parent
    data["plugins"] = [str((base / p).resolve()) for p in data.get("plugins", [])]
    data.pop("sweep", None)  # the first task of the sweep: the base config
    text = yaml.safe_dump(data, sort_keys=False)
    parsed = spec_mod.parse(text, "<check_trainer>")
    task = planner.plan(parsed)[0]
    total = _total(task)
    rng = np.random.default_rng(seed)
    upper = max(2, total - 1)
    kill_at = sorted(int(k) for k in rng.choice(np.arange(1, upper), size=min(kills, upper - 1), replace=False))
    tmp = Path(workdir or tempfile.mkdtemp(prefix="snnbatch-check-"))

    ref_store, _ = RunStore.create_or_update(tmp / "reference", parsed, text, [task])
    out = run_task(ref_store.path, task.id)
    if out.state != "done":
        raise AssertionError(f"the uninterrupted run did not finish: {out.state}\n{out.error or out.reason}")

    data["checkpoint"] = {**data.get("checkpoint", {}), "every_iterations": checkpoint_every, "every_minutes": 1e9}
    text_i = yaml.safe_dump(data, sort_keys=False)
    parsed_i = spec_mod.parse(text_i, "<check_trainer>")
    (task_i,) = [t for t in planner.plan(parsed_i) if t.id == task.id]
    store, _ = RunStore.create_or_update(tmp / "interrupted", parsed_i, text_i, [task_i])
    for k in kill_at:
        code = _run_task_process(store.path, task.id, {"SNNBATCH_KILL_AT_ITERATION": str(k)})
        if code != -9:
            raise AssertionError(f"the run meant to be killed after iteration {k} ended with exit status {code} "
                                 "instead (see the task's status in the store)")
    if sigterm:
        _sigterm_midway(store.path, task.id, total)
    code = _run_task_process(store.path, task.id, {})
    if code != 0:
        raise AssertionError(f"the resumed run ended with exit status {code}")
    _compare(ref_store.path, store.path, task.id)
    from . import open_run

    attempts = len(open_run(store.path).task(task.id).status.get("attempts") or [])
    return TrainerCheck(task.id, total, kill_at, attempts)


def _total(task) -> int:
    from .jobs.trainer import build_trainer, total_iterations

    return total_iterations(build_trainer(task.config), task.config.training)


def _run_task_process(store_path, task_id: str, env: dict[str, str]) -> int:
    cmd = [sys.executable, "-m", "snnbatch.orchestrator.cli", "run-task", str(store_path), task_id]
    proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, timeout=3600)
    if proc.returncode not in (0, -9):
        raise AssertionError(f"run-task exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode


def _sigterm_midway(store_path, task_id: str, total: int) -> None:
    """Run the task in a process, send it SIGTERM once it has passed a checkpoint, and let it stop cleanly."""
    import signal
    import time

    from . import open_run

    start = int(open_run(store_path).task(task_id).status.get("iteration") or 0)
    if start >= total - 1:
        return
    cmd = [sys.executable, "-m", "snnbatch.orchestrator.cli", "run-task", str(store_path), task_id]
    # stop the process itself (SIGSTOP) right after the next iteration, then ask it to stop cleanly
    proc = subprocess.Popen(cmd, env={**os.environ, "SNNBATCH_STOP_AT_ITERATION": str(start + 1)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        try:
            if _stopped(proc.pid):
                break
        except OSError:
            break
        time.sleep(0.01)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        os.kill(proc.pid, signal.SIGCONT)
    code = proc.wait(timeout=600)
    if code not in (0, 3):
        raise AssertionError(f"run-task stopped by SIGTERM exited {code}, expected 3 (interrupted) or 0 (done)")


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()[0] == "T"


def _compare(ref_path, got_path, task_id: str) -> None:
    from . import open_run

    ref, got = open_run(ref_path).task(task_id), open_run(got_path).task(task_id)
    if got.state != "done":
        raise AssertionError(f"the interrupted run is {got.state}, not done")
    a, b = ref.checkpoint, got.checkpoint
    if set(a) != set(b):
        raise AssertionError(f"the state arrays differ: {sorted(set(a) ^ set(b))} in only one run")
    for name in sorted(a):
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.dtype != y.dtype or x.shape != y.shape or x.tobytes() != y.tobytes():
            raise AssertionError(f"state array {name!r} differs after kill and resume "
                                 f"(max |difference| {_maxdiff(x, y)}): some state lives outside the arrays "
                                 "and the Generator that init_state returns")
    for name in sorted(set(ref.metrics) | set(got.metrics)):
        x, y = ref.metrics.get(name), got.metrics.get(name)
        if x is None or y is None or x.tobytes() != y.tobytes():
            first = _first_difference(x, y)
            raise AssertionError(f"metric history {name!r} differs after kill and resume{first}")
    for name, value in ref.final.items():
        if got.final.get(name) != value and not (value != value and got.final.get(name) != got.final.get(name)):
            raise AssertionError(f"final metric {name!r} differs: {value!r} uninterrupted, {got.final.get(name)!r} resumed")


def _maxdiff(x, y) -> str:
    try:
        return f"{np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))):.3g}"
    except (ValueError, TypeError):
        return "n/a"


def _first_difference(x, y) -> str:
    if x is None or y is None:
        return " (recorded in only one run)"
    n = min(len(x), len(y))
    diff = np.flatnonzero(x[:n] != y[:n])
    if diff.size:
        return f" (first at iteration {int(diff[0]) + 1}: {x[diff[0]]!r} vs {y[diff[0]]!r})"
    return f" ({len(x)} vs {len(y)} values)"
