"""snnbatch status: the table at 80 columns, --json's fields, failed tasks' errors, 1,000 tasks, --watch.

The stores here are planned from a spec and their tasks' status records written directly
(as the runner writes them), so no training runs.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from rich.console import Console

from snnbatch.jobs.store import TaskStore
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.cli import main
from snnbatch.orchestrator.cli.status import render, task_rows
from snnbatch.orchestrator.store import RunStore

SPEC = """\
name: status-test
sweep:
  grid: {lr: [1.0e-3, 3.0e-3], n_hidden: [64, 128]}
  seeds: 2
"""
FIELDS = {"id", "index", "state", "params", "iteration", "total", "loss", "accuracy", "valid_loss", "valid_accuracy",
          "test_accuracy", "test_loss", "attempts", "elapsed_s", "job_id", "scheduler_state", "error", "stopped_early",
          "best_iteration", "selected_on"}
TRACEBACK = ("Traceback (most recent call last):\n  File \"runner.py\", line 1, in attempt\n"
             "FloatingPointError: loss is not finite at iteration 7 (nan): the training diverged\n")


def make_store(path, text: str) -> tuple[RunStore, list]:
    spec_file = path.parent / f"{path.name}.yaml"
    spec_file.write_text(text)
    spec = spec_mod.load(spec_file)
    tasks = planner.plan(spec)
    store, added = RunStore.create_or_update(path, spec, text, tasks)
    assert len(added) == len(tasks)
    return store, tasks


def finish(store_path, task_id: str, *, t0: float, seconds: float = 90.0, **values) -> None:
    """Write what the runner writes when a task ends."""
    record = {"total": 100, "iteration": 100,
              "attempts": [{"n": 1, "started": t0, "ended": t0 + seconds, "host": "h"}]}
    TaskStore(store_path, task_id).update_status(**(record | values))


@pytest.fixture
def store(tmp_path):
    """8 tasks: 5 done, 1 failed (error_line and traceback), 1 failed (traceback only), 1 pending;
    task 0 ran on a (recorded) cluster job."""
    store, tasks = make_store(tmp_path / "store", SPEC)
    t0 = time.time() - 1000
    ids = [t.id for t in tasks]
    for i, tid in enumerate(ids[:5]):
        finish(store.path, tid, t0=t0, state="done", loss=0.1 + i / 100, accuracy=0.95, test_accuracy=0.9 + i / 100,
               test_loss=0.3)
    finish(store.path, ids[5], t0=t0, seconds=5, state="failed", iteration=7, error=TRACEBACK,
           error_line="FloatingPointError: loss is not finite at iteration 7 (nan): the training diverged",
           loss=2.0)
    finish(store.path, ids[6], t0=t0, seconds=5, state="failed", iteration=3,
           error="Traceback (most recent call last):\n  ...\nMemoryError: cannot allocate 12 GB\n\n")
    store.record_submission([ids[0]], "local", {ids[0]: {"job_id": "4242_0"}})
    return store


def status(*args):
    return CliRunner().invoke(main, ["status", *map(str, args)])


def test_json_fields(store):
    result = status(store.path, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert set(doc) == {"store", "name", "summary", "tasks"}
    assert doc["name"] == "status-test" and doc["store"] == str(store.path)
    assert doc["summary"]["done"] == 5 and doc["summary"]["failed"] == 2 and doc["summary"]["pending"] == 1
    assert sum(doc["summary"].values()) == 8
    tasks = doc["tasks"]
    assert [t["index"] for t in tasks] == list(range(8))
    for t in tasks:
        assert set(t) == FIELDS
        assert len(t["id"]) == 12 and set(t["params"]) == {"lr", "n_hidden", "seed"}
    done = tasks[1]
    assert (done["state"], done["iteration"], done["total"], done["attempts"]) == ("done", 100, 100, 1)
    assert done["loss"] == pytest.approx(0.11) and done["test_accuracy"] == pytest.approx(0.91)
    assert done["test_loss"] == pytest.approx(0.3) and done["elapsed_s"] == pytest.approx(90.0)
    assert done["error"] is None and done["job_id"] is None
    assert tasks[0]["job_id"] == "4242_0"
    assert tasks[5]["error"] == "FloatingPointError: loss is not finite at iteration 7 (nan): the training diverged"
    assert tasks[6]["error"] == "MemoryError: cannot allocate 12 GB"  # the traceback's last line
    pending = tasks[7]
    assert (pending["state"], pending["iteration"], pending["total"], pending["attempts"]) == ("pending", 0, None, 0)


def run_cli(*args, columns: int = 80) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "xterm"}
    return subprocess.run([sys.executable, "-m", "snnbatch.orchestrator.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_table_fits_80_columns(store):
    proc = run_cli("status", store.path, columns=80)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80, out
    assert "…" not in out
    ids = [t["id"] for t in store.tasks()]
    for tid in ids:
        assert tid[:8] in out and tid not in out  # short ids in the table
    for word in ("lr", "n_hidden", "seed", "state", "iter", "test acc", "5 done", "2 failed", "1 pending"):
        assert word in out
    row = next(line for line in lines if line.startswith(ids[1][:8]))
    assert "100/100" in row and "0.910" in row and "done" in row
    # the failed tasks' errors follow the table, whole (wrapped at the terminal's width)
    words = " ".join(out.split())
    assert f"{ids[5][:8]} FloatingPointError: loss is not finite at iteration 7 (nan): the training diverged" in words
    assert f"{ids[6][:8]}  MemoryError: cannot allocate 12 GB" in out


def shown(store, width: int) -> str:
    """What 'snnbatch status' prints on a terminal ``width`` columns wide (the CLI's console settings)."""
    out = io.StringIO()
    Console(file=out, width=width, soft_wrap=True).print(render(store, task_rows(store), width))
    return out.getvalue()


def test_narrow_terminal_drops_columns_not_content(store):
    table = shown(store, 64).split("2 failed:")[0]
    assert max(len(line) for line in table.splitlines()) <= 64 and "…" not in table
    assert "test accuracy" in table and "100/100" in table and "loss" not in table
    wide = shown(store, 160)
    assert "job" in wide and "4242_0" in wide and "time" in wide and "1m30s" in wide and "loss" in wide


def test_watch_stops_when_every_task_ended(tmp_path):
    store, tasks = make_store(tmp_path / "store", "name: watched\nsweep: {seeds: 2}\n")
    finish(store.path, tasks[0].id, t0=time.time(), state="done", loss=0.2, test_accuracy=0.8)
    finish(store.path, tasks[1].id, t0=time.time(), state="failed", error=TRACEBACK)
    result = status(store.path, "--watch", "--interval", "0.2")
    assert result.exit_code == 0, result.output
    assert "1 done" in result.output and "1 failed" in result.output


def test_1000_tasks(tmp_path):
    store, tasks = make_store(tmp_path / "big", "name: big\nsweep: {seeds: 1000}\n")
    assert len(tasks) == 1000
    finish(store.path, tasks[10].id, t0=time.time(), state="done", loss=0.5, test_accuracy=0.75)
    result = status(store.path, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert len(doc["tasks"]) == 1000
    assert doc["summary"]["pending"] == 999 and doc["summary"]["done"] == 1
    assert [t["id"] for t in doc["tasks"]] == [t.id for t in tasks]
    assert [t["params"]["seed"] for t in doc["tasks"]] == list(range(1000))
    assert doc["tasks"][10]["test_accuracy"] == 0.75 and doc["tasks"][10]["state"] == "done"


@pytest.mark.parametrize("make", ["missing", "empty", "file", "zarr-not-snnbatch"])
def test_not_a_store_exits_2(tmp_path, make):
    path = tmp_path / "nostore"
    if make == "empty":
        path.mkdir()
    elif make == "file":
        path.write_text("hello")
    elif make == "zarr-not-snnbatch":
        import zarr

        zarr.open_group(str(path), mode="w")
    result = status(path)
    assert result.exit_code == 2, result.output
    assert str(path) in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)
    if make == "empty":  # and as a real process: the message on stderr, nothing on stdout
        proc = run_cli("status", path, "--json")
        assert proc.returncode == 2 and "error:" in proc.stderr and "Traceback" not in proc.stderr
        assert str(path) in proc.stderr and proc.stdout == ""


def test_many_failures_are_grouped_by_message(tmp_path):
    store, tasks = make_store(tmp_path / "store", "name: broken\nsweep: {seeds: 24}\n")
    t0 = time.time()
    for t in tasks[:21]:
        finish(store.path, t.id, t0=t0, state="failed", error_line="MemoryError: cannot allocate 12 GB")
    for t in tasks[21:23]:
        finish(store.path, t.id, t0=t0, state="failed", error=TRACEBACK)
    result = status(store.path)
    assert result.exit_code == 0, result.output
    words = " ".join(result.output.split())
    assert "23 failed:" in words
    assert f"21 tasks MemoryError: cannot allocate 12 GB ({tasks[0].id[:8]}, {tasks[1].id[:8]}, " in words
    assert "+18 more)" in words
    assert "2 tasks FloatingPointError: loss is not finite at iteration 7 (nan)" in words


def test_rows_of_tasks_never_started_are_those_of_a_pending_record(store, monkeypatch):
    from snnbatch.orchestrator.cli import status as status_module

    rows = task_rows(store)
    assert sum(r["state"] == "pending" for r in rows) == 1 and rows[0]["job_id"] == "4242_0"
    monkeypatch.setattr(status_module, "_never_started", lambda status: False)  # every task read in full
    slow = task_rows(store)
    assert rows == slow and [list(r) for r in rows] == [list(r) for r in slow]  # the same fields, in order
    doc = json.loads(status_module.json_document({"store": "s"}, rows))
    assert doc["tasks"] == json.loads(json.dumps(slow))
