"""SLURM without a cluster: dry runs, and scheduler commands that are missing or fail.

The commands are stand-ins on a PATH that holds nothing else (a real SLURM, if installed, is not on
it): ``scontrol`` answers MaxArraySize, ``sbatch`` submits or refuses as a real one does, with
SLURM's own words on stderr, and ``srun`` is there (submitit looks for it). What a user must see: exit status 5 (the scheduler failed, not the
input), the command, its exit code and its stderr, and no traceback.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from snnbatch.jobs.config import Resources
from snnbatch.jobs.errors import BackendError
from snnbatch.orchestrator import backends, planner, spec as spec_mod
from snnbatch.orchestrator.backends.base import SubmitOptions
from snnbatch.orchestrator.store import RunStore

from conftest import TINY, tree

CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]
SPEC = TINY + "resources: {cpus: 2, time: \"00:10:00\"}\nsweep: {seeds: 3}\n"
REFUSED = "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified"


def fake_path(tmp_path: Path, **scripts: str) -> dict:
    """An environment whose PATH holds only these shell scripts (name -> body)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in scripts.items():
        script = bin_dir / name
        script.write_text("#!/bin/sh\n" + body + "\n")
        script.chmod(0o755)
    return os.environ | {"PATH": str(bin_dir)}


def scontrol(max_array_size: int = 1001) -> str:
    return f'echo "MaxArraySize            = {max_array_size}"'


SRUN = "exit 0"


def snnbatch(*args, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


@pytest.fixture
def store(tmp_path):
    text = SPEC
    spec = spec_mod.parse(text)
    tasks = planner.plan(spec)
    store, _ = RunStore.create_or_update(tmp_path / "store", spec, text, tasks)
    return store, [t.id for t in tasks]


# ------------------------------------------------------------------ dry runs


def test_dry_run_of_a_stores_unfinished_tasks(store, tmp_path, monkeypatch):
    """The path ``resume --dry-run`` takes: a store's path, name and resources (the old dry-run branch of
    ``SlurmBackend.submit`` passed the store and the ids alone, and raised TypeError)."""
    run, ids = store
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no scontrol: SLURM's default MaxArraySize
    res = Resources.model_validate(run.spec_dict()["resources"])
    before = tree(run.path)
    text = backends.get("slurm")(SubmitOptions(max_parallel=2)).dry_run(run.path, run.name, res, ids)
    assert text.startswith("1 array(s) for 3 tasks (SLURM's default MaxArraySize; scontrol did not answer 1001): "
                           "[0-2]\n")
    assert "each element: 2 cpu, 2G, 00:10:00; at most 2 at once; 1.0 core-hours requested" in text
    assert "#SBATCH --array=0-2%2" in text and "#SBATCH --cpus-per-task=2" in text
    assert tree(run.path) == before


def test_resume_dry_run_splits_by_max_array_size_and_writes_nothing(store, tmp_path):
    run, ids = store
    env = fake_path(tmp_path, scontrol=scontrol(2), sbatch="echo sbatch must not run >&2; exit 99")
    before = tree(run.path)
    r = snnbatch("resume", run.path, "--backend", "slurm", "--dry-run", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("2 array(s) for 3 tasks (MaxArraySize 2): [0-1], [0-0]\n"), r.stdout
    assert "sbatch script of the first array:\n#!/bin/bash" in r.stdout and r.stderr == ""
    assert tree(run.path) == before


def test_resume_dry_run_of_a_finished_store_says_so(cli, store):
    run, ids = store
    assert cli("resume", run.path, "--backend", "inline", "--no-progress").exit_code == 0
    result = cli("resume", run.path, "--backend", "slurm", "--dry-run")
    assert result.exit_code == 0 and "nothing to run, every task is done" in result.output, result.output


# ------------------------------------------------------------------ sbatch and friends fail


def test_sbatch_refusing_is_exit_5_with_its_command_exit_code_and_stderr(write_spec, tmp_path):
    spec = write_spec(SPEC)
    env = fake_path(tmp_path, scontrol=scontrol(), srun=SRUN, sbatch=f'echo "{REFUSED}" >&2; exit 1')
    r = snnbatch("submit", spec, "--store", tmp_path / "store", "--backend", "slurm", env=env, cwd=tmp_path)
    assert r.returncode == 5, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    first, *rest = r.stderr.splitlines()
    assert first.startswith("error: 'sbatch ") and first.endswith("' failed with exit code 1"), r.stderr
    assert rest == [REFUSED, "no task was submitted"], r.stderr
    assert r.stderr.count(REFUSED) == 1  # once, in the error (submitit's own echo of it is held back)
    status = json.loads(snnbatch("status", tmp_path / "store", "--json", env=env, cwd=tmp_path).stdout)
    assert [t["job_id"] for t in status["tasks"]] == [None] * 3


def test_sbatch_refusing_the_second_array_keeps_the_first_recorded(write_spec, tmp_path):
    spec = write_spec(SPEC)
    sbatch = ('if [ -e "$0.called" ]; then echo "sbatch: error: QOSMaxSubmitJobPerUserLimit" >&2; exit 1; fi\n'
              ': > "$0.called"\necho "Submitted batch job 4242"')
    env = fake_path(tmp_path, scontrol=scontrol(2), srun=SRUN, sbatch=sbatch)
    r = snnbatch("submit", spec, "--store", tmp_path / "store", "--backend", "slurm", env=env, cwd=tmp_path)
    assert r.returncode == 5, r.stdout + r.stderr
    assert "failed with exit code 1\nsbatch: error: QOSMaxSubmitJobPerUserLimit\n" in r.stderr
    assert r.stderr.rstrip().endswith("2 of 3 tasks were submitted before it and are recorded in the store")
    status = json.loads(snnbatch("status", tmp_path / "store", "--json", env=env, cwd=tmp_path).stdout)
    assert sorted(str(t["job_id"]) for t in status["tasks"]) == ["4242_0", "4242_1", "None"]


@pytest.mark.parametrize("present, missing", [({}, "scontrol"), ({"scontrol": scontrol()}, "srun"),
                                              ({"scontrol": scontrol(), "srun": SRUN}, "sbatch")])
def test_slurm_commands_not_on_path_are_exit_5(write_spec, tmp_path, present, missing):
    spec = write_spec(SPEC)
    env = fake_path(tmp_path, **present)
    r = snnbatch("submit", spec, "--store", tmp_path / "store", "--backend", "slurm", env=env, cwd=tmp_path)
    assert r.returncode == 5, r.stdout + r.stderr
    assert f"error: '{missing}' not found: is this a SLURM login node?" in r.stderr and "Traceback" not in r.stderr


def test_scancel_failing_is_exit_5(store, tmp_path):
    run, ids = store
    run.record_submission(ids, "slurm", {tid: {"job_id": f"77_{i}"} for i, tid in enumerate(ids)})
    env = fake_path(tmp_path, scancel='echo "scancel: error: Kill job error on job id 77: Access/permission denied" '
                                      '>&2; exit 1')
    r = snnbatch("cancel", run.path, env=env, cwd=tmp_path)
    assert r.returncode == 5, r.stdout + r.stderr
    assert "error: 'scancel 77' failed with exit code 1\nscancel: error: Kill job error" in r.stderr


def test_the_status_hook_never_raises_when_squeue_fails(tmp_path, monkeypatch):
    env = fake_path(tmp_path, squeue="exit 1", sacct="echo slurm_load_jobs error >&2; exit 1")
    monkeypatch.setenv("PATH", env["PATH"])
    assert backends.get("slurm")().status(["5_0"]) == {}


def test_a_failure_is_a_backend_error_with_exit_code_5():
    assert BackendError.exit_code == 5


# ------------------------------------------------------------------ queue limits


def test_a_sweep_larger_than_max_submit_jobs_is_submitted_as_far_as_the_limit_allows(write_spec, tmp_path):
    spec = write_spec(SPEC)  # 3 tasks; MaxSubmitJobs 2 with one job queued: room for one
    env = fake_path(tmp_path, scontrol=scontrol(), srun=SRUN, sacctmgr="echo 2", squeue="echo 77_0",
                    sbatch='echo "Submitted batch job 4242"')
    r = snnbatch("submit", spec, "--store", tmp_path / "store", "--backend", "slurm", env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "submitted array 4242 with 1 tasks\nsubmitted 1 of 3 tasks, as many as the queue takes now " \
           "(MaxSubmitJobs 2, 1 queued); the other 2 are submitted by the last element" in r.stdout, r.stdout
    status = json.loads(snnbatch("status", tmp_path / "store", "--json", env=env, cwd=tmp_path).stdout)
    ids = [t["id"] for t in status["tasks"]]
    assert [t["job_id"] for t in status["tasks"]] == ["4242", None, None]
    (record,) = (tmp_path / "store" / "slurm" / "chain").glob("*.json")
    assert {k: v for k, v in json.loads(record.read_text()).items() if k in ("after", "next")} == \
        {"after": ids[:1], "next": ids[1:]}


def test_a_full_queue_submits_nothing_and_says_so(write_spec, tmp_path):
    spec = write_spec(SPEC)
    env = fake_path(tmp_path, scontrol=scontrol(), srun=SRUN, sacctmgr="echo 2", squeue="echo 77_0; echo 77_1",
                    sbatch="echo sbatch must not run >&2; exit 99")
    r = snnbatch("submit", spec, "--store", tmp_path / "store", "--backend", "slurm", env=env, cwd=tmp_path)
    assert r.returncode == 5, r.stdout + r.stderr
    assert "error: the queue is full (MaxSubmitJobs 2, 2 queued): no task was submitted" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "sbatch must not run" not in r.stderr
