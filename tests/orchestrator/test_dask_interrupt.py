"""Ctrl-C on the default local Dask backend: the whole process group gets SIGINT, as from a terminal;
the workers survive it, each running task checkpoints and records its attempt as interrupted with
its real wall time (not, later, as lost), and the command exits 3."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from snnbatch import open_run

CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]
SPEC = """
name: long
dataset: {n_train: 128, n_test: 64}
model: {n_hidden: 8}
training: {iterations: 100000, batch_size: 64}
checkpoint: {every_iterations: 5}
sweep: {seeds: 2}
"""


def _statuses(store):
    try:
        return {t.id: t.status for t in open_run(store)}
    except Exception:  # not created yet
        return {}


@pytest.mark.dask
def test_ctrl_c_records_each_running_task_as_interrupted_with_its_time(tmp_path):
    spec = tmp_path / "long.yaml"
    spec.write_text(SPEC)
    store = tmp_path / "store"
    proc = subprocess.Popen(CLI + ["submit", str(spec), "--store", str(store), "--max-parallel", "2",
                                   "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:  # the state: both tasks running, each past its first checkpoint
            statuses = _statuses(store)
            if len(statuses) == 2 and all(s.get("state") == "running" and s.get("checkpoint") for s in statuses.values()):
                break
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, statuses
            time.sleep(0.2)
        started = {tid: s["attempts"][-1]["started"] for tid, s in statuses.items()}
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the driver and every worker
        out, err = proc.communicate(timeout=180)
        sent = time.time()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 3, out + err
    assert f"continue with 'snnbatch resume {store.resolve()}'" in " ".join(err.split()), err
    assert "Traceback" not in err, err
    assert not list(store.glob(".stop-request-*"))
    for t in open_run(store):
        attempt = t.status["attempts"][-1]
        assert t.status["state"] == "interrupted" and t.state == "interrupted", t.status
        assert attempt["reason"] == "interrupt" and attempt["started"] == started[t.id], attempt
        assert started[t.id] < attempt["ended"] <= sent
        assert attempt["checkpointed"] == t.status["iteration"] >= 5
    status = subprocess.run(CLI + ["status", str(store), "--json"], capture_output=True, text=True, timeout=120)
    rows = json.loads(status.stdout)["tasks"]
    for row in rows:
        attempt = next(t for t in open_run(store) if t.id == row["id"]).status["attempts"][-1]
        assert row["state"] == "interrupted"
        assert row["elapsed_s"] == pytest.approx(attempt["ended"] - attempt["started"], abs=0.11) and row["elapsed_s"] > 0
