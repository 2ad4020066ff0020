"""Shared pieces of the reliability tests: small sweeps, their uninterrupted references, comparisons.

Every test that breaks a run compares its final result with a reference: the
same tasks run once, in this process, without interruption. Results are
compared bit for bit (every checkpoint array, every metric history, the test
metrics), so "nothing lost" means nothing lost.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from snnbatch.jobs.runner import StopFlag, run_task
from snnbatch.jobs.store import TaskStore
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore

CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]

# 60 iterations of a 16-neuron network: about a second of training per task.
SMALL = """
name: rel
dataset: {n_train: 256, n_test: 128, n_inputs: 20, n_steps: 50}
model: {n_hidden: 16}
training: {iterations: 60, batch_size: 64}
checkpoint: {every_iterations: 2, keep: 2}
"""


def spec_text(base: str = SMALL, **sections) -> str:
    """``base`` with some top-level sections replaced, e.g. ``sweep={"seeds": 4}``."""
    data = yaml.safe_load(base)
    data.update(sections)
    return yaml.safe_dump(data, sort_keys=False)


def make_store(path, text: str) -> tuple[RunStore, list[str]]:
    spec = spec_mod.parse(text)
    tasks = planner.plan(spec)
    store, _ = RunStore.create_or_update(path, spec, text, tasks)
    return store, [t.id for t in tasks]


def snnbatch(*args, timeout=300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kw)


def snnbatch_parallel(*commands, preexec_fn=None) -> list[tuple[int, str, str]]:
    """Several CLI commands at once (they must not depend on each other): ``(exit code, stdout, stderr)`` each."""
    procs = [subprocess.Popen(CLI + [str(a) for a in c], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=preexec_fn) for c in commands]
    return [(p.returncode, out, err) for p, (out, err) in ((p, p.communicate(timeout=300)) for p in procs)]


def status_of(store_path, task_id) -> dict:
    return TaskStore(store_path, task_id, mode="r").status()


def final_result(store_path, task_id):
    state, problems = TaskStore(store_path, task_id, mode="r").latest_checkpoint()
    assert problems == [], problems
    return state


def assert_same_as(store_path, ref_path, task_id) -> None:
    """The task's final checkpoint, metric history and test metrics equal the reference's, bit for bit."""
    got, want = final_result(store_path, task_id), final_result(ref_path, task_id)
    assert got.iteration == want.iteration
    assert set(got.arrays) == set(want.arrays)
    for k in want.arrays:
        assert got.arrays[k].dtype == want.arrays[k].dtype, k
        assert got.arrays[k].tobytes() == want.arrays[k].tobytes(), f"{task_id}: array {k} differs"
    assert got.metrics.keys() == want.metrics.keys()
    for k in want.metrics:
        assert np.array_equal(np.asarray(got.metrics[k]), np.asarray(want.metrics[k])), f"{task_id}: metric {k}"
    assert got.rng.bit_generator.state == want.rng.bit_generator.state
    st, ref = status_of(store_path, task_id), status_of(ref_path, task_id)
    assert st["state"] == "done"
    for k in ("test_loss", "test_accuracy", "loss", "accuracy"):
        assert st[k] == ref[k], k


class StopAfter(StopFlag):
    """A stop flag that asks for a stop once the training loop has looked at it ``n`` times."""

    def __init__(self, n: int):
        super().__init__()
        self.left = n

    @property
    def reason(self):
        self.left -= 1
        return "test-stop" if self.left <= 0 else None

    @reason.setter
    def reason(self, value):
        pass


def tree_digest(path) -> dict[str, str]:
    """Every file under ``path`` with a hash of its bytes: to show that nothing changed."""
    out = {}
    for root, dirs, files in os.walk(path):
        for f in files:
            p = Path(root) / f
            out[str(p.relative_to(path))] = hashlib.sha256(p.read_bytes()).hexdigest()
        for d in dirs:
            out[str((Path(root) / d).relative_to(path)) + "/"] = ""
    return out


@pytest.fixture(scope="session", autouse=True)
def one_numba_thread():
    """Run in-process tasks with one Numba thread, as ``run-task`` subprocesses do (cpus: 1).

    Results do not depend on the thread count, but the runs should cost what the subprocesses'
    do; Numba may already be loaded by another test module, when its environment variable is too late.
    """
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(1)
    else:
        os.environ["NUMBA_NUM_THREADS"] = "1"


@pytest.fixture(scope="session")
def references(tmp_path_factory):
    """``references(text)``: a store where every task of ``text`` ran once, uninterrupted, in this process."""
    made: dict[str, Path] = {}

    def get(text: str) -> Path:
        data = yaml.safe_load(text)
        data.pop("checkpoint", None)
        data.pop("resources", None)
        data["checkpoint"] = {"every_iterations": 100000}
        key = json.dumps(data, sort_keys=True)
        if key not in made:
            path = tmp_path_factory.mktemp("reference") / "store"
            _, ids = make_store(path, yaml.safe_dump(data))
            for tid in ids:
                assert run_task(path, tid).state == "done"
            made[key] = path
        return made[key]

    return get
