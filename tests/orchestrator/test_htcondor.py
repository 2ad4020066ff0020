"""HTCondor, offline: the rendered description is what HTCondor's own parser accepts and expands.

No HTCondor pool runs here; these tests use the official bindings (htcondor2) to parse the
text and expand its item data, and compare the text with a golden file.
"""
import json
import subprocess
import sys
from pathlib import Path

import htcondor2
import pytest
from click.testing import CliRunner

from snnbatch.jobs.config import Resources
from snnbatch.jobs.errors import BackendError
from snnbatch.orchestrator.backends import htcondor
from snnbatch.orchestrator.cli import main
from snnbatch.orchestrator.store import RunStore

GOLDEN = Path(__file__).parent / "golden" / "htcondor.sub"
IDS = ["0123456789ab", "fedcba987654", "a1b2c3d4e5f6"]
RES = Resources(cpus=3, memory="1.5G", time="02:00:00", retries=2)


def test_matches_golden_text():
    text = htcondor.render(Path("/shared/runs/demo"), "demo", RES, IDS, python="/opt/venv/bin/python")
    assert text == GOLDEN.read_text()


def test_htcondor_parses_it_and_expands_one_job_per_task():
    text = htcondor.render(Path("/shared/runs/demo"), "demo", RES, IDS, python="/opt/venv/bin/python")
    sub = htcondor2.Submit(text)
    assert [item["task_id"] for item in sub.itemdata()] == IDS
    assert sub.getQArgs().startswith("task_id from")
    assert sub.expand("request_cpus") == "3"
    assert sub.expand("request_memory") == "1536"
    assert sub.expand("checkpoint_exit_code") == str(htcondor.CHECKPOINT_EXIT_CODE)
    assert "run-task /shared/runs/demo $(task_id)" in sub["arguments"]
    assert "NUMBA_NUM_THREADS=3" in sub["environment"] and "OMP_NUM_THREADS=3" in sub["environment"]


def test_checkpoint_exit_code_is_what_run_task_exits_with_when_interrupted():
    from snnbatch.orchestrator.cli.run_task import EXIT

    assert EXIT["interrupted"] == htcondor.CHECKPOINT_EXIT_CODE


def test_a_broken_description_is_a_clear_error():
    with pytest.raises(BackendError, match="HTCondor rejected"):
        htcondor.parse("= 3\nqueue\n")


def test_dry_run_via_cli_writes_nothing(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: hc\nresources: {cpus: 2}\nsweep: {seeds: 3}\n")
    store = tmp_path / "store"
    r = CliRunner().invoke(main, ["submit", str(spec), "--store", str(store), "--backend", "htcondor", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "one cluster of 3 jobs" in r.output and "queue task_id from (" in r.output
    assert not store.exists()


# ------------------------------------------------------------------ --dry-run and exit codes

CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]
SPEC = "name: hc\nresources: {cpus: 2}\nsweep: {seeds: 3}\n"


def test_dry_run_prints_a_description_htcondor_accepts_as_it_is(tmp_path):
    """Every line the dry run adds is a comment: its output can be handed to condor_submit."""
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    r = CliRunner().invoke(main, ["submit", str(spec), "--store", str(tmp_path / "store"), "--backend", "htcondor",
                                  "--dry-run"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "# one cluster of 3 jobs; 6.0 core-hours at the time limit"
    assert lines[1].startswith("# checked with htcondor2.Submit (HTCondor ") and "not handed to a schedd" in lines[1]
    sub = htcondor2.Submit(r.output)
    ids = [item["task_id"] for item in sub.itemdata()]
    assert len(ids) == 3 and sub.expand("request_cpus") == "2"
    assert f"run-task {(tmp_path / 'store').resolve()} $(task_id)" in sub["arguments"]


def test_resume_dry_run_lists_only_the_unfinished_tasks(tmp_path):
    from snnbatch.orchestrator import planner, spec as spec_mod

    spec = spec_mod.parse(SPEC)
    tasks = planner.plan(spec)
    store, _ = RunStore.create_or_update(tmp_path / "store", spec, SPEC, tasks)
    runner = CliRunner()
    r = runner.invoke(main, ["resume", str(store.path), "--backend", "htcondor", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert [item["task_id"] for item in htcondor2.Submit(r.output).itemdata()] == [t.id for t in tasks]
    assert runner.invoke(main, ["resume", str(store.path), "--backend", "inline", "--no-progress"]).exit_code == 0
    r = runner.invoke(main, ["resume", str(store.path), "--backend", "htcondor", "--dry-run"])
    assert r.exit_code == 0 and "nothing to run, every task is done" in r.output, r.output


def test_dry_run_as_a_process_exits_0_and_writes_nothing(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    r = subprocess.run(CLI + ["submit", str(spec), "--backend", "htcondor", "--dry-run"], capture_output=True,
                       text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("# one cluster of 3 jobs") and "queue task_id from (" in r.stdout and r.stderr == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_without_the_bindings_a_dry_run_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "htcondor2", None)  # import htcondor2 now raises ImportError
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    r = CliRunner().invoke(main, ["submit", str(spec), "--store", str(tmp_path / "store"), "--backend", "htcondor",
                                  "--dry-run"])
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "error: --backend htcondor needs HTCondor's Python bindings: pip install 'snnbatch[htcondor]'" in r.stderr
    assert not (tmp_path / "store").exists()


def test_without_a_schedd_submit_and_cancel_exit_5_and_status_still_works(tmp_path):
    """There is no HTCondor pool here: the schedd cannot be found, which is the scheduler failing (5)."""
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    store = tmp_path / "store"
    r = subprocess.run(CLI + ["submit", str(spec), "--store", str(store), "--backend", "htcondor"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 5, r.stdout + r.stderr
    assert "error: could not submit to HTCondor's schedd: " in r.stderr and "Traceback" not in r.stderr
    ids = json.loads(subprocess.run(CLI + ["plan", str(spec), "--json"], capture_output=True, text=True,
                                    timeout=120).stdout)["tasks"]
    RunStore.open(store, mode="r+").record_submission([t["id"] for t in ids], "htcondor",
                                                      {t["id"]: {"job_id": f"12.{i}"} for i, t in enumerate(ids)})
    r = subprocess.run(CLI + ["cancel", str(store)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 5 and "error: could not remove HTCondor cluster(s) 12: " in r.stderr, r.stderr
    r = subprocess.run(CLI + ["status", str(store), "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert [t["scheduler_state"] for t in json.loads(r.stdout)["tasks"]] == [None] * 3
