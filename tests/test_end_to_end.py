"""The whole path: submit a sweep, SIGKILL a task mid-training, resume, compare bits.

The reference is the same sweep run without interruption by the inline
backend; every final array (parameters, optimizer state, data order), the
metric history and the test metrics must be identical.
"""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from snnbatch import open_run
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore

SPEC = """
name: e2e
dataset: {n_train: 1024, n_test: 256}
model: {n_hidden: 96}
training: {iterations: 120, batch_size: 256, lr: 3.0e-3}
checkpoint: {every_iterations: 10}
sweep:
  grid: {lr: [2.0e-3, 4.0e-3]}
"""

CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]


def _snnbatch(*args, **kw):
    return subprocess.run(CLI + list(args), capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "e2e.yaml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def reference(spec_file, tmp_path_factory):
    store = tmp_path_factory.mktemp("ref") / "store"
    r = _snnbatch("submit", str(spec_file), "--store", str(store), "--backend", "inline", "--no-progress")
    assert r.returncode == 0, r.stdout + r.stderr
    return open_run(store)


def _final(run, task_id):
    t = run.task(task_id)
    return t.checkpoint, t.metrics, t.status


def assert_same_bits(run, ref):
    assert [t.id for t in run] == [t.id for t in ref]
    for t in ref:
        arrays, metrics, status = _final(run, t.id)
        ref_arrays, ref_metrics, ref_status = _final(ref, t.id)
        assert status["state"] == "done"
        assert set(arrays) == set(ref_arrays)
        for k in ref_arrays:
            assert arrays[k].tobytes() == ref_arrays[k].tobytes(), f"{t.id}: {k} differs"
        for k in ref_metrics:
            assert np.array_equal(metrics[k], ref_metrics[k]), f"{t.id}: metric {k} differs"
        assert status["test_accuracy"] == ref_status["test_accuracy"]
        assert status["test_loss"] == ref_status["test_loss"]


def _wait_for_checkpoint(store_path, min_iteration, task_id=None, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            for t in RunStore.open(store_path).tasks():
                st = t["status"]
                if (task_id in (None, t["id"])) and st.get("state") == "running" and (st.get("iteration") or 0) >= min_iteration:
                    return t
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError("no task reached the wanted checkpoint in time")


def test_reference_learns(reference):
    for t in reference:
        assert t.state == "done"
        assert t.status["test_accuracy"] >= 0.9


def test_sigkill_run_task_then_resume_is_bit_identical(spec_file, reference, tmp_path):
    spec = spec_mod.load(spec_file)
    tasks = planner.plan(spec)
    store, _ = RunStore.create_or_update(tmp_path / "run", spec, spec_file.read_text(), tasks)
    tid = tasks[0].id
    proc = subprocess.Popen(CLI + ["run-task", str(store.path), tid], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        t = _wait_for_checkpoint(store.path, 30, tid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    killed_at = max(t["status"].get("progress") or 0, t["status"]["iteration"])
    # the dead process's task is seen as interrupted at once (its pid is gone)
    assert RunStore.open(store.path).tasks()[0]["state"] == "interrupted"
    r = _snnbatch("run-task", str(store.path), tid)
    assert r.returncode == 0, r.stdout + r.stderr
    run = open_run(store.path)
    status = run.task(tid).status
    assert len(status["attempts"]) == 2
    resumed_from = status["attempts"][1]["from_iteration"]
    assert 30 <= resumed_from <= status["total"]
    # work lost is bounded by the checkpoint interval
    assert killed_at - resumed_from <= 10 + 10  # interval, plus progress seen between polls
    ref_arrays, ref_metrics, _ = _final(reference, tid)
    arrays, metrics, _ = _final(run, tid)
    for k in ref_arrays:
        assert arrays[k].tobytes() == ref_arrays[k].tobytes(), k
    assert np.array_equal(metrics["loss"], ref_metrics["loss"])


@pytest.mark.dask
def test_local_dask_sigkill_worker_then_resume(spec_file, reference, tmp_path):
    store = tmp_path / "run"
    proc = subprocess.Popen(CLI + ["submit", str(spec_file), "--store", str(store), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t = _wait_for_checkpoint(store, 20)
        os.kill(int(t["status"]["attempts"][-1]["pid"]), signal.SIGKILL)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    r = _snnbatch("resume", str(store), "--no-progress")
    assert r.returncode == 0, r.stdout + r.stderr
    run = open_run(store)
    killed = run.task(t["id"])
    assert len(killed.status["attempts"]) >= 2
    assert_same_bits(run, reference)
