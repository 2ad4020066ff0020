"""HTCondor, offline: the rendered description is what HTCondor's own parser accepts and expands.

No HTCondor pool runs here; these tests use the official bindings (htcondor2) to parse the
text and expand its item data, and compare the text with a golden file.
"""
from pathlib import Path

import htcondor2
import pytest
from click.testing import CliRunner

from snnbatch.jobs.config import Resources
from snnbatch.jobs.errors import BackendError
from snnbatch.orchestrator.backends import htcondor
from snnbatch.orchestrator.cli import main

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
