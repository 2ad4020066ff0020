"""The example plugins on a live SLURM: the installed package's network and the single-file plugin's.

Each sweep has two tasks, a short one and a long one. Submitted with ``SNNBATCH_KILL_AT_ITERATION``
in the environment (sbatch passes the submitting environment on to the job, and srun to its step),
the long task's array element SIGKILLs itself right after iteration 13, its last checkpoint at 10,
while the short one finishes. ``resume --backend slurm`` runs only the killed task, from iteration
10, and every task ends with the same bits as an uninterrupted run on the local backend.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from snnbatch import open_run
from snnbatch.orchestrator.scheduler import LIVE

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugin"
CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]
KILL_AT, EVERY, SHORT, LONG = 13, 5, 12, 40

pytest.importorskip("snnbatch_izhikevich", reason="pip install -e examples/plugin (make does)")

# plugin: (example spec, the axis zipped with the number of iterations, its two values, own metric)
SWEEPS = {
    "izhikevich": ("sweep.yaml", "training.lr", [5.0e-3, 2.0e-3], "rate_hz"),
    "count_readout": ("file_sweep.yaml", "model.n_hidden", [32, 64], "margin"),
}


def cli(*args, env=None, timeout=300):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def ok(r) -> str:
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def wait_until(predicate, timeout, interval=2.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def status(store) -> dict:
    return json.loads(ok(cli("status", store, "--json", timeout=120)))


def spec_for(name: str, tmp_path: Path) -> Path:
    """The example sweep with two tasks, SHORT and LONG iterations long, checkpointing every EVERY."""
    spec_file, axis, values, _ = SWEEPS[name]
    data = yaml.safe_load((EXAMPLES / spec_file).read_text())
    data["plugins"] = [str(EXAMPLES / p) for p in data.get("plugins", [])]
    data["training"] = {**data["training"], "epochs": None, "iterations": LONG}
    data["checkpoint"] = {"every_iterations": EVERY, "every_minutes": 60}
    data["resources"] = {**data["resources"], "time": "00:05:00", "memory": "500M"}
    data["sweep"] = {"zip": {axis: values, "training.iterations": [SHORT, LONG]}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def killed_and_ended(store):
    """The status once the short task is done and the long one's element has died and left the queue."""
    d = status(store)
    by_total = {t["total"]: t for t in d["tasks"]}
    long_ = by_total.get(LONG)
    if long_ is None or by_total.get(SHORT, {}).get("state") != "done":
        return None
    if long_["state"] == "interrupted" and long_["scheduler_state"] not in LIVE:
        return d
    assert long_["state"] in ("pending", "queued", "running", "interrupted"), long_
    return None


def all_done(store):
    d = status(store)
    assert d["summary"]["failed"] == 0, d
    return d if d["summary"]["done"] == len(d["tasks"]) else None


def test_plugin_sweeps_on_slurm_killed_resumed_and_bit_identical(cluster, tmp_path):
    cluster.start(accounting="on")
    specs = {name: spec_for(name, tmp_path) for name in SWEEPS}
    stores = {name: tmp_path / f"{name}-slurm" for name in SWEEPS}
    for name, spec in specs.items():
        out = ok(cli("submit", spec, "--store", stores[name], "--backend", "slurm",
                     env={"SNNBATCH_KILL_AT_ITERATION": str(KILL_AT)}))
        assert "submitted array" in out  # fire and forget: the elements run on their own
    # the uninterrupted runs, on the local backend, while SLURM works
    refs = {}
    for name, spec in specs.items():
        refs[name] = tmp_path / f"{name}-local"
        assert "finished: 2 done" in ok(cli("submit", spec, "--store", refs[name], "--backend", "local",
                                            "--no-progress", timeout=600))

    for name, store in stores.items():
        d = wait_until(lambda: killed_and_ended(store), 300, 2, f"{name}: the long task to be killed")
        long_ = next(t for t in d["tasks"] if t["total"] == LONG)
        assert long_["iteration"] == KILL_AT // EVERY * EVERY  # the last checkpoint before the kill
        assert long_["job_id"] and "_" in long_["job_id"]  # an array element
        out = ok(cli("resume", store, "--backend", "slurm"))
        assert "running 1 task" in out and "submitted array" in out  # only the killed task
    for name, store in stores.items():
        wait_until(lambda: all_done(store), 300, 2, f"{name}: the resumed task to finish")

    for name, store in stores.items():
        run, ref = open_run(store), open_run(refs[name])
        metric = SWEEPS[name][3]
        for t in ref.tasks:
            mine = run.task(t.id)
            assert mine.state == "done"
            assert set(mine.checkpoint) == set(t.checkpoint)
            for k, v in t.checkpoint.items():
                assert mine.checkpoint[k].tobytes() == v.tobytes(), f"{name} {t.id}: {k} differs"
            assert set(mine.metrics) == set(t.metrics) and metric in t.metrics
            for k, v in t.metrics.items():
                assert mine.metrics[k].tobytes() == v.tobytes(), f"{name} {t.id}: metric {k} differs"
            assert mine.final == t.final
            attempts = mine.status["attempts"]
            assert all(a["backend"] == "slurm" for a in attempts)
            if mine.status["total"] == LONG:
                assert [a["from_iteration"] for a in attempts] == [0, KILL_AT // EVERY * EVERY]
                assert attempts[0]["reason"].startswith("lost") and attempts[1]["reason"] == "done"
            else:
                assert len(attempts) == 1 and attempts[0]["reason"] == "done"
