"""Successive halving on a live SLURM with nobody logged in: the array element that parks last decides
its rung and submits the next rung's array itself; the promotions and the winner's bits are those of
the inline backend."""
import json
import subprocess
import sys
import time

import numpy as np

from snnbatch import open_run
from snnbatch.jobs import halving

CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]
SPEC = """\
name: hvslurm
dataset: {n_train: 64, n_test: 32, n_inputs: 16, n_steps: 20}
model: {n_hidden: 8}
training: {iterations: 18, batch_size: 32}
checkpoint: {every_iterations: 5}
resources: {time: "00:05:00", memory: 300M}
sweep:
  grid: {lr: [0.001, 0.003, 0.01, 0.03, 0.1, 0.2, 0.3, 0.5, 1.0]}
  halving: {metric: accuracy, min_iterations: 2, eta: 3}
"""


def decisions(path):
    plan = halving.plan_of(path)
    return [(k, d["promoted"], d["pruned"], d["values"]) for k, d in sorted(halving.decisions(path, plan).items())]


def ended(store):
    """Every task done or pruned, read from the store alone (``status`` would decide rungs itself)."""
    run = open_run(store)
    words = halving.overview(store, [t.id for t in run])
    states = {t.id: "pruned" if words[t.id]["halving"] == "pruned" else t.state for t in run}
    return states if set(states.values()) <= {"done", "pruned", "failed"} else None


def test_halving_runs_to_the_end_on_slurm_with_the_promotions_of_the_inline_backend(cluster, tmp_path):
    cluster.start(accounting="on")
    spec = tmp_path / "hv.yaml"
    spec.write_text(SPEC)
    ref = tmp_path / "ref"
    r = subprocess.run(CLI + ["submit", str(spec), "--store", str(ref), "--backend", "inline", "--no-progress"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    store = tmp_path / "slurm"
    r = subprocess.run(CLI + ["submit", str(spec), "--store", str(store), "--backend", "slurm"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "submitted array" in r.stdout, r.stdout + r.stderr  # and the driver is gone
    deadline = time.time() + 900
    while not ended(store):
        assert time.time() < deadline, "the halving sweep did not end on SLURM"
        time.sleep(2)
    states = ended(store)
    assert "failed" not in states.values()
    assert [d[:3] for d in decisions(store)] == [d[:3] for d in decisions(ref)]
    made = halving.decisions(store, halving.plan_of(store))
    arrays = set()
    for k, d in made.items():  # decided by an array element, which submitted the next rung's array
        assert d["decided_by"].startswith("slurm "), d["decided_by"]
        submitted = json.loads(halving.decision_path(store, k).with_suffix(".submitted.json").read_text())
        assert sorted(submitted["tasks"]) == sorted(d["promoted"]) and "error" not in submitted
        arrays |= {j.split("_")[0] for j in submitted["jobs"].values()}
    assert len(arrays) == len(made)  # one new array per rung
    (winner,) = made[1]["promoted"]
    a, b = open_run(store).task(winner), open_run(ref).task(winner)
    assert a.status["iteration"] == 18
    for k, v in b.checkpoint.items():
        assert np.asarray(a.checkpoint[k]).tobytes() == np.asarray(v).tobytes(), k
