"""HTCondor: the sweep as one cluster of jobs, through HTCondor's Python bindings.

The submit description queues one job per task with ``queue task_id from
( ... )``; each job runs ``snnbatch run-task STORE $(task_id)`` on a shared
filesystem. When HTCondor vacates a job it sends SIGTERM: the task
checkpoints and exits with status 3, which the description declares as its
``checkpoint_exit_code``, so HTCondor runs the job again and the task
continues from its checkpoint.

Not run against a live HTCondor pool: none can run on the machines this
project is tested on (HTCondor is not packaged for Debian there, and PyPI has
only the bindings). The tests check what can be checked offline: the rendered
description is parsed by ``htcondor2.Submit``, its item data expands to the
task ids, and its text matches a golden file.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ...jobs.config import Resources
from ...jobs.errors import BackendError
from ...jobs.threads import VARIABLES
from .base import Backend, SubmitResult

CHECKPOINT_EXIT_CODE = 3  # `snnbatch run-task` exits 3 after a checkpoint on SIGTERM / deadline


def render(store_path: Path, name: str, res: Resources, task_ids: list[str], python: str | None = None) -> str:
    """The submit description for ``task_ids`` (a whole text, with its queue statement)."""
    store = str(Path(store_path).resolve())
    python = python or sys.executable
    env = " ".join(f"{var}={res.cpus}" for var in VARIABLES)
    lines = [
        f"# snnbatch run '{name}': {len(task_ids)} tasks",
        "universe = vanilla",
        f"executable = {python}",
        f'arguments = "-m snnbatch.orchestrator.cli run-task {store} $(task_id) --backend htcondor '
        f'--job-id $(ClusterId).$(ProcId)"',
        f"batch_name = snnbatch-{name}",
        f"request_cpus = {res.cpus}",
        f"request_memory = {res.memory_mb}",
        f'environment = "{env}"',
        f"checkpoint_exit_code = {CHECKPOINT_EXIT_CODE}",
        "kill_sig = SIGTERM",
        "should_transfer_files = NO",
        f"max_retries = {res.retries}",
        f"log = {store}/htcondor/$(ClusterId).log",
        f"output = {store}/htcondor/$(ClusterId).$(ProcId).out",
        f"error = {store}/htcondor/$(ClusterId).$(ProcId).err",
        "queue task_id from (",
        *(f"  {tid}" for tid in task_ids),
        ")",
    ]
    return "\n".join(lines) + "\n"


def parse(text: str):
    """The description as HTCondor reads it (raises BackendError if HTCondor rejects it)."""
    try:
        import htcondor2
    except ImportError:
        raise BackendError("--backend htcondor needs HTCondor's Python bindings: pip install htcondor") from None
    try:
        return htcondor2.Submit(text)
    except Exception as exc:
        raise BackendError(f"HTCondor rejected the submit description: {exc}") from None


class HTCondorBackend(Backend):
    name = "htcondor"

    def dry_run_text(self, path: Path, name: str, res: Resources, task_ids: list[str]) -> str:
        text = render(path, name, res, task_ids)
        parse(text)
        hours = len(task_ids) * res.cpus * res.time_seconds / 3600
        return f"one cluster of {len(task_ids)} jobs; {hours:.1f} core-hours at the time limit\n{text}"

    def submit(self, store, task_ids):
        res = Resources.model_validate(store.spec_dict().get("resources", {}))
        (store.path / "htcondor").mkdir(exist_ok=True)
        sub = parse(render(store.path, store.name, res, task_ids))
        import htcondor2

        try:
            result = htcondor2.Schedd().submit(sub)
        except Exception as exc:
            raise BackendError(f"could not submit to HTCondor's schedd: {exc}") from None
        cluster = result.cluster()
        jobs = {tid: {"job_id": f"{cluster}.{i}", "cluster_id": cluster} for i, tid in enumerate(task_ids)}
        store.record_submission(task_ids, "htcondor", jobs)
        return SubmitResult(waited=False, jobs=jobs, text=f"submitted HTCondor cluster {cluster} with {len(task_ids)} jobs")


def scheduler_states(job_ids: list[str]) -> dict[str, str]:
    """Live job states from the schedd; {} when it cannot be reached."""
    names = {1: "IDLE", 2: "RUNNING", 3: "REMOVED", 4: "COMPLETED", 5: "HELD", 6: "TRANSFERRING", 7: "SUSPENDED"}
    clusters = sorted({j.split(".")[0] for j in job_ids})
    try:
        import htcondor2

        ads = htcondor2.Schedd().query(
            constraint=" || ".join(f"ClusterId == {c}" for c in clusters),
            projection=["ClusterId", "ProcId", "JobStatus"],
        )
    except Exception:
        return {}
    states = {f"{ad['ClusterId']}.{ad['ProcId']}": names.get(int(ad["JobStatus"]), "UNKNOWN") for ad in ads}
    return {j: states[j] for j in job_ids if j in states}


def cancel(job_ids: list[str]) -> str:
    clusters = sorted({j.split(".")[0] for j in job_ids})
    try:
        import htcondor2

        htcondor2.Schedd().act(htcondor2.JobAction.Remove, " || ".join(f"ClusterId == {c}" for c in clusters))
    except Exception as exc:
        raise BackendError(f"could not remove HTCondor cluster(s) {', '.join(clusters)}: {exc}") from None
    return f"removed HTCondor cluster(s) {', '.join(clusters)}"
