"""Reading a run is reading data: status, report and open_run take every metric's label, which way is
better and whether status shows it from the store's record, and import no plugin and no config class.

A plugin-file algorithm (examples/plugin/countreadout.py) is trained inline here; a fresh process
then reads the store. FORCE's stores are planned and their status records written directly.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from snnbatch import open_run
from snnbatch.jobs.runner import run_task
from snnbatch.jobs.status import TaskStatus
from snnbatch.jobs.store import CHECKPOINTS, TASKS, TaskStore, checkpoint_names, read_metric_history
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.cli import main
from snnbatch.orchestrator.cli.status import render, task_rows
from snnbatch.orchestrator.report import by_configuration, choose, write_report
from snnbatch.orchestrator.store import RunStore

PLUGIN = Path(__file__).resolve().parents[2] / "examples" / "plugin" / "countreadout.py"
PLUGIN_SPEC = f"""\
name: readout
plugins: [{PLUGIN}]
model: {{type: count_readout, n_hidden: 8, time_bins: 1}}
learning: {{rule: readout_sgd, momentum: 0.9}}
dataset: {{type: poisson_rates, n_inputs: 10, n_classes: 3, n_steps: 20, n_train: 64, n_test: 32}}
training: {{iterations: 4, batch_size: 32, lr: 0.05}}
checkpoint: {{every_iterations: 2}}
sweep: {{grid: {{n_hidden: [8, 16]}}}}
"""
FORCE_SPEC = """\
name: force-status
model: {type: force, n_neurons: 50, n_static: 20, n_plastic: 10, duration: 100.0}
learning: {rule: rls}
dataset: {type: sinusoids}
training: {iterations: 10}
sweep: {grid: {n_plastic: [10, 20]}, seeds: 2}
"""
# The modules of snnbatch that reading a run may import; nothing else of snnbatch.jobs.
# jobs.halving reads and writes rung decisions from the store's data alone (status may decide a rung).
READING = {"snnbatch.jobs", "snnbatch.jobs.errors", "snnbatch.jobs.lease", "snnbatch.jobs.state",
           "snnbatch.jobs.status", "snnbatch.jobs.store", "snnbatch.jobs.version", "snnbatch.jobs.halving"}


def plan_store(path: Path, text: str) -> tuple[RunStore, list]:
    spec = spec_mod.parse(text, str(path.parent / "spec.yaml"))
    tasks = planner.plan(spec)
    store, _ = RunStore.create_or_update(path, spec, text, tasks)
    return store, tasks


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory) -> Path:
    """Two tasks of the plugin file's algorithm, trained inline (4 iterations, checkpoints every 2)."""
    store, tasks = plan_store(tmp_path_factory.mktemp("plugin") / "store", PLUGIN_SPEC)
    for t in tasks:
        assert run_task(store.path, t.id).state == "done"
    return store.path


@pytest.fixture
def force_store(tmp_path) -> RunStore:
    """A FORCE sweep of 4 tasks: 3 done, 1 pending (status records written as the runner writes them)."""
    store, tasks = plan_store(tmp_path / "store", FORCE_SPEC)
    t0 = time.time() - 100
    for i, t in enumerate(tasks[:3]):
        TaskStore(store.path, t.id).update_status(
            state="done", iteration=10, total=10, attempts=[{"n": 1, "started": t0, "ended": t0 + 20}],
            metrics={"loss": 0.02 + i / 100, "train_correlation": 0.9, "rate_hz_train": 12.0, "test_loss": 0.03,
                     "correlation": 0.8 + i / 100, "rate_hz": 11.5})
    return store


# ------------------------------------------------------------------ no code is imported


def test_status_report_and_open_run_import_no_plugin_and_no_config(plugin_run, tmp_path):
    code = textwrap.dedent(f"""
        import json, sys
        import snnbatch
        from snnbatch.orchestrator.cli import main

        run = snnbatch.open_run({str(plugin_run)!r})
        run.to_pandas(), run.to_xarray(), [t.checkpoint for t in run]
        for args in (["status", {str(plugin_run)!r}, "--json"], ["status", {str(plugin_run)!r}],
                     ["report", {str(plugin_run)!r}, "--out", {str(tmp_path / "report")!r}]):
            main(args, standalone_mode=False)
        print("MODULES", json.dumps(sorted(sys.modules)))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    modules = set(json.loads(proc.stdout.rsplit("MODULES", 1)[1]))
    assert '"margin"' in proc.stdout and (tmp_path / "report" / "report.html").is_file()  # it did read them
    assert "snnbatch.jobs.config" not in modules
    assert not {m for m in modules if m.startswith("snnbatch_plugin_")}
    assert "snnbatch_izhikevich" not in modules  # an installed plugin's entry point was not loaded either
    jobs = {m for m in modules if m == "snnbatch.jobs" or m.startswith("snnbatch.jobs.")}
    assert jobs <= READING, f"reading a run imported {sorted(jobs - READING)}"


# ------------------------------------------------------------------ status from the declarations


def test_status_shows_a_plugins_declared_metrics(plugin_run):
    result = CliRunner().invoke(main, ["status", str(plugin_run), "--json"])
    assert result.exit_code == 0, result.output
    (task, _) = json.loads(result.output)["tasks"]
    declared = ["loss", "accuracy", "margin", "test_loss", "test_accuracy", "test_margin", "active_fraction"]
    assert [k for k in task if k in declared] == declared  # every declared metric, in declaration order
    status = TaskStore(plugin_run, task["id"], mode="r").read_status()
    assert {k: task[k] for k in declared} == status.metrics
    table = CliRunner().invoke(main, ["status", str(plugin_run)]).output
    header = next(line for line in table.splitlines() if line.startswith("task"))
    assert header.split()[-5:] == ["loss", "margin", "test", "accuracy", "time"]  # status=True ones only


def test_status_shows_forces_correlation(force_store):
    rows = task_rows(force_store)
    assert rows[0]["correlation"] == pytest.approx(0.8) and rows[3]["correlation"] is None
    assert {"loss", "train_correlation", "rate_hz_train", "test_loss", "correlation", "rate_hz"} <= set(rows[0])
    assert "accuracy" not in rows[0] and "test_accuracy" not in rows[0]
    from rich.console import Console
    import io

    out = io.StringIO()
    Console(file=out, width=120).print(render(force_store, rows, 120))
    header = next(line for line in out.getvalue().splitlines() if line.startswith("task"))
    assert "correlation" in header.split() and "loss" in header.split()
    assert "rate" not in header and "train" not in header  # declared, but not for status
    assert "0.810" in out.getvalue()


def test_a_store_without_the_record_shows_what_its_tasks_reported(force_store):
    root = zarr.open_group(str(force_store.path), mode="r+")
    attrs = dict(root.attrs)
    del attrs["metrics"]  # as a store planned before snnbatch recorded its metrics
    root.attrs.put(attrs)
    store = RunStore.open(force_store.path)
    assert store.metrics() == {}
    rows = task_rows(store)
    assert {"loss", "correlation", "rate_hz"} <= set(rows[0])
    run = open_run(store.path)
    assert run.labels("correlation") == "correlation" and run.labels("lr") == "learning rate"
    assert run.labels.higher_is_better("correlation") and not run.labels.higher_is_better("test_loss")


# ------------------------------------------------------------------ the report from the record


def test_report_labels_and_best_come_from_the_record(force_store, tmp_path):
    run = open_run(force_store.path)
    assert run.labels("correlation") == "test correlation"
    assert run.labels("final_loss") == "final training loss (MSE)"
    assert run.labels("n_plastic") == "n_plastic" and run.labels("training.lr") == "learning rate"
    choice = choose(run, metric="correlation")
    assert choice.labels.higher_is_better("correlation")
    best = by_configuration(run.to_pandas(), choice)
    assert best["mean"].iloc[0] == pytest.approx(0.82)  # n_plastic 20 (one task done): the higher is best
    # the record, not a table, decides: say lower is better and relabel it, and the report follows
    root = zarr.open_group(str(force_store.path), mode="r+")
    metrics = dict(root.attrs["metrics"])
    metrics["correlation"] = {**metrics["correlation"], "label": "held-out correlation (r)", "better": "lower"}
    root.update_attributes({"metrics": metrics})
    run = open_run(force_store.path)
    choice = choose(run, metric="correlation")
    assert by_configuration(run.to_pandas(), choice)["mean"].iloc[0] == pytest.approx(np.mean([0.80, 0.81]))
    write_report(run, tmp_path / "report", metric="correlation")
    page = (tmp_path / "report" / "report.html").read_text()
    assert "held-out correlation (r)" in page and "test correlation" not in page
    assert run.to_xarray()["correlation"].attrs["long_name"] == "held-out correlation (r)"


# ------------------------------------------------------------------ one checkpoint reader


def test_the_metric_history_is_read_by_the_stores_one_reader(plugin_run):
    run = open_run(plugin_run)
    task = run.tasks[0]
    task_dir = plugin_run / TASKS / task.id
    history = read_metric_history(task_dir)
    state, _ = TaskStore(plugin_run, task.id, mode="r").latest_checkpoint()
    assert set(history) == set(state.metrics) == set(task.metrics) and len(history["loss"]) == 4
    for k, v in history.items():
        assert v.tolist() == state.metrics[k] == task.metrics[k].tolist()
    assert task.record.metrics["loss"] == history["loss"][-1]


def test_a_metric_history_that_does_not_match_its_checksum_falls_back(plugin_run, tmp_path):
    import shutil

    store = shutil.copytree(plugin_run, tmp_path / "store")
    tid = open_run(store).tasks[0].id
    task_dir = store / TASKS / tid
    names = checkpoint_names(task_dir)
    assert len(names) >= 2
    newest = zarr.open_group(str(task_dir / CHECKPOINTS / names[-1]), mode="r+")
    newest["metrics.loss"][0] = 123.0  # altered on disk
    history = read_metric_history(task_dir)
    assert len(history["loss"]) == 2 and history["loss"][0] != 123.0  # the previous checkpoint's


# ------------------------------------------------------------------ the typed record


def test_the_status_record_reads_what_the_runner_writes(plugin_run):
    tid = open_run(plugin_run).tasks[0].id
    attrs = TaskStore(plugin_run, tid, mode="r").status()
    record = TaskStatus.from_attrs(attrs)
    assert (record.state, record.iteration, record.total) == ("done", 4, 4)
    assert record.checkpoint and record.finished and record.updated and not record.store_error
    assert len(record.attempts) == 1 and record.error is None and record.extra == {}
    assert set(record.metrics) == {k for k, v in attrs.items() if k in record.metrics}
    assert {"loss", "margin", "test_accuracy"} <= set(record.metrics)
    assert TaskStatus.from_attrs(record.to_attrs()) == record
    assert record.to_attrs() == {k: v for k, v in attrs.items() if v is not None and v is not False}


def test_the_status_record_of_a_task_that_never_started_and_of_unknown_keys():
    assert TaskStatus.from_attrs(None) == TaskStatus.from_attrs({"state": "pending"}) == TaskStatus()
    assert TaskStatus().to_attrs() == {"state": "pending", "iteration": 0, "attempts": [], "warnings": []}
    record = TaskStatus.from_attrs({"state": "failed", "progress": 7, "error": "Traceback\n  ...\nMemoryError: x\n",
                                    "started": 1.0, "note": "kept", "loss": 2, "flag": True})
    assert record.iterations_done == 7 and record.error_summary == "MemoryError: x"
    assert record.metrics == {"loss": 2.0} and record.extra == {"started": 1.0, "note": "kept", "flag": True}
    with pytest.raises(ValueError, match="'iteration' has the name of a status field"):
        TaskStatus(metrics={"iteration": 1.0}).to_attrs()
