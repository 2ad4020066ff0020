"""The progress total is every planned task's iterations from the start, also without a terminal."""
import re
import subprocess
import sys

from snnbatch.orchestrator.progress import Counts, planned_total

SPEC = """\
name: prog
dataset: {n_train: 64, n_test: 32, n_inputs: 16, n_steps: 20}
model: {n_hidden: 8}
training: {epochs: 2, batch_size: 32}
sweep: {grid: {lr: [1.0e-3, 2.0e-3, 3.0e-3]}}
"""


def test_plain_lines_count_every_planned_iteration_from_the_first(tmp_path):
    (tmp_path / "s.yaml").write_text(SPEC)
    r = subprocess.run([sys.executable, "-m", "snnbatch.orchestrator.cli", "submit", "s.yaml", "--store", "st",
                        "--backend", "inline"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("training: ")]
    assert lines[0].startswith("training: 0/12 iterations (0 %)") and lines[0].endswith("; 3 pending")
    assert re.match(r"training: 12/12 iterations \(100 %\), [0-9.]+ it/s, .* elapsed; 3 done$", lines[-1])


def test_a_pending_task_counts_with_its_planned_length():
    def task(state, cfg, **status):
        return {"state": state, "config": cfg, "status": status}

    epochs = {"dataset": {"type": "files"}, "training": {"epochs": 3, "batch_size": 8}}
    its = {"dataset": {"type": "files"}, "training": {"iterations": 7}}
    assert planned_total(its, {}) == 7 and planned_total(epochs, {}) is None
    counts = Counts([task("running", epochs, total=30, progress=4), task("pending", epochs), task("pending", its),
                     task("done", its, total=7, iteration=7)])
    # the running task tells the pending one of the same data its length: 10 iterations per epoch
    assert (counts.done, counts.total, counts.unknown) == (11, 30 + 30 + 7 + 7, 0)
    assert counts.text() == "1 done, 1 running, 2 pending"
