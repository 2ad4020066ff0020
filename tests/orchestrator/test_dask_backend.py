"""`--backend dask --scheduler-address`: the tasks run on an existing Dask cluster's workers."""
import subprocess
import sys

import pytest
from distributed import LocalCluster

from snnbatch import open_run

CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]
SPEC = """
name: remote
dataset: {n_train: 128, n_test: 64}
model: {n_hidden: 8}
training: {iterations: 4, batch_size: 64}
sweep: {seeds: 3}
"""


@pytest.mark.dask
def test_tasks_run_on_an_existing_scheduler(tmp_path):
    spec = tmp_path / "remote.yaml"
    spec.write_text(SPEC)
    store = tmp_path / "store"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        r = subprocess.run(CLI + ["submit", str(spec), "--store", str(store), "--backend", "dask",
                                  "--scheduler-address", cluster.scheduler_address, "--no-progress"],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        worker_pids = {w.pid for w in cluster.workers.values() if hasattr(w, "pid")}
    run = open_run(store)
    assert [t.state for t in run] == ["done"] * 3
    ran_on = {t.status["attempts"][-1]["pid"] for t in run}
    assert all(a["backend"] == "dask" for t in run for a in t.status["attempts"])
    if worker_pids:  # the cluster's worker processes, not the driver, ran them
        assert ran_on <= worker_pids


def test_dask_backend_without_an_address_is_a_clear_error(tmp_path):
    spec = tmp_path / "remote.yaml"
    spec.write_text(SPEC)
    r = subprocess.run(CLI + ["submit", str(spec), "--store", str(tmp_path / "s"), "--backend", "dask"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert "--scheduler-address" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "s").exists()  # nothing written
