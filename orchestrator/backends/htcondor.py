"""HTCondor: the sweep as one cluster of jobs, through HTCondor's Python bindings.

The submit description queues one job per task with ``queue task_id from
( ... )``; each job runs ``snnbatch run-task STORE $(task_id)`` on a shared
filesystem. When HTCondor vacates a job it sends SIGTERM: the task
checkpoints and exits with status 3, which the description declares as its
``checkpoint_exit_code``, so HTCondor runs the job again and the task
continues from its checkpoint.

Not run against a live HTCondor pool: none can run on the machines this
project is tested on (HTCondor is not packaged for Debian there, and PyPI has
only the bindings). What can be checked offline is checked by :func:`check`,
before every submission and by ``--dry-run``: the rendered description is
parsed by ``htcondor2.Submit`` and its item data expands to the task ids; the
tests also compare its text with a golden file.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

from ...jobs.config import Resources
from ...jobs.errors import BackendError, ExitCode, StoreError, StoreWriteError, UserError
from ...jobs.store import is_store_full_or_readonly
from ...jobs.threads import VARIABLES
from .base import Backend, SubmitResult

CHECKPOINT_EXIT_CODE = int(ExitCode.INTERRUPTED)  # `snnbatch run-task` exits 3 after a checkpoint on SIGTERM


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


def bindings():
    """HTCondor's Python bindings (the ``htcondor`` package's ``htcondor2``); a UserError when not installed."""
    try:
        import htcondor2
    except ImportError:
        raise UserError("--backend htcondor needs HTCondor's Python bindings: "
                        "pip install 'snnbatch[htcondor]' (or: pip install htcondor)") from None
    return htcondor2


def parse(text: str):
    """The description as HTCondor reads it (raises BackendError if HTCondor rejects it)."""
    htcondor2 = bindings()
    try:
        return htcondor2.Submit(text)
    except Exception as exc:
        raise BackendError(f"HTCondor rejected the submit description: {exc}") from None


def check(text: str, task_ids: list[str]):
    """What HTCondor's bindings can check without a schedd: the description parses, and its item data
    expands to one job per task, in order. Returns the parsed description."""
    sub = parse(text)
    try:
        items = [item["task_id"] for item in sub.itemdata()]
    except Exception as exc:
        raise BackendError(f"HTCondor cannot expand the description's queue statement: {exc}") from None
    if items != list(task_ids):
        raise BackendError(f"the submit description queues {len(items)} jobs for {len(task_ids)} tasks")
    return sub


class HTCondorBackend(Backend):
    name = "htcondor"

    def dry_run(self, store_path, name, resources, task_ids):
        """The submit description ``submit`` would hand to the schedd, checked by HTCondor's own parser.

        Every line but the description's own is a comment, so the text is itself a valid description.
        """
        text = render(store_path, name, resources, task_ids)
        check(text, task_ids)
        hours = len(task_ids) * resources.cpus * resources.time_seconds / 3600
        version = re.search(r"\d+\.\d+\.\d+", bindings().version())
        return (f"# one cluster of {len(task_ids)} jobs; {hours:.1f} core-hours at the time limit\n"
                f"# checked with htcondor2.Submit (HTCondor {version and version.group()}): it parses and queues "
                "one job per task; not handed to a schedd\n" + text)

    def submit(self, store, task_ids):
        res = Resources.model_validate(store.spec_dict().get("resources", {}))
        sub = check(render(store.path, store.name, res, task_ids), task_ids)
        try:
            (store.path / "htcondor").mkdir(exist_ok=True)
        except OSError as exc:
            error = StoreWriteError if is_store_full_or_readonly(exc) else StoreError
            raise error(f"{store.path}: cannot make the directory for HTCondor's logs: {exc.strerror or exc}") from None
        htcondor2 = bindings()
        try:
            result = htcondor2.Schedd().submit(sub)
        except Exception as exc:
            raise BackendError(f"could not submit to HTCondor's schedd: {exc}") from None
        cluster = result.cluster()
        jobs = {tid: {"job_id": f"{cluster}.{i}", "cluster_id": cluster} for i, tid in enumerate(task_ids)}
        store.record_submission(task_ids, "htcondor", jobs)
        return SubmitResult(waited=False, jobs=jobs, text=f"submitted HTCondor cluster {cluster} with {len(task_ids)} jobs")

    def cancel(self, job_ids):
        clusters = sorted({j.split(".")[0] for j in job_ids})
        htcondor2 = bindings()
        try:
            htcondor2.Schedd().act(htcondor2.JobAction.Remove, " || ".join(f"ClusterId == {c}" for c in clusters))
        except Exception as exc:
            raise BackendError(f"could not remove HTCondor cluster(s) {', '.join(clusters)}: {exc}") from None
        return f"removed HTCondor cluster(s) {', '.join(clusters)}"

    def status(self, job_ids):
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
