"""SLURM job arrays through submitit: fire and forget, preemption-safe.

One array per chunk of tasks (never one ``sbatch`` per task); chunks respect
the cluster's ``MaxArraySize`` (which bounds the array *index*, so a chunk
holds at most MaxArraySize elements, indexed 0..n-1). Each element unpickles
a tiny :class:`TaskRunner` (store path and task id, nothing else) and runs the
task from the store; the submitting process may exit right after.

Inside an element, training runs in a thread while the main thread waits, so
signals are handled promptly:

* ``USR2`` (sent ``signal_delay_s`` before the time limit, and on preemption
  with ``preempt_send_user_signal``): submitit calls
  :meth:`TaskRunner.checkpoint`, which stops training at the next iteration
  with a checkpoint and hands submitit a resubmission; submitit requeues the
  element with ``scontrol requeue``.
* ``SIGTERM`` (``scontrol requeue``, preemption without a user signal, or
  ``scancel``): checkpoint and exit; SLURM itself requeues or ends the job.
* the element's own deadline (start + time limit − ``resources.deadline_margin``): checkpoint and
  requeue itself, in case no signal comes.

Every attempt and why it ended is in the task's status; a task requeued more
than ``resources.max_requeues`` times is marked failed.
"""
from __future__ import annotations

import math
import os
import re
import shlex
import subprocess
import threading
import time
from pathlib import Path

import submitit

from ...jobs.config import Resources, parse_duration
from ...jobs.errors import BackendError
from ...jobs.runner import StopFlag, run_task
from ...jobs.store import TaskStore
from .base import Backend, SubmitResult

SIGNAL_DELAY_S = 120
THREAD_SETUP = [
    f"export {var}=${{SLURM_CPUS_PER_TASK:-1}}"
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
]


def run(cmd: list[str], timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess:
    """Every scheduler command goes through here; a failure names command, exit code and output."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise BackendError(f"'{cmd[0]}' not found: is this a SLURM login node?") from None
    except subprocess.TimeoutExpired:
        raise BackendError(f"'{shlex.join(cmd)}' did not answer within {timeout:.0f} s") from None
    if check and r.returncode != 0:
        raise BackendError(
            f"'{shlex.join(cmd)}' failed with exit code {r.returncode}\n{(r.stdout + r.stderr).strip()[-2000:]}"
        )
    return r


def max_array_size() -> int:
    """The cluster's MaxArraySize (array indices must be below it)."""
    out = run(["scontrol", "show", "config"], timeout=30).stdout
    m = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, re.MULTILINE)
    return int(m.group(1)) if m else 1001


def chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def signal_delay(limit_s: float) -> int:
    """Seconds before the time limit at which SLURM sends USR2."""
    return int(min(SIGNAL_DELAY_S, max(10, limit_s // 3)))


# ------------------------------------------------------------------ on the compute node


class TaskRunner(submitit.helpers.Checkpointable):
    """What one array element runs: ``TaskRunner()(store_path, task_id)``."""

    def __init__(self):
        self._deadline_at_limit = 0.0
        self._signal_delay = SIGNAL_DELAY_S
        self._stop: StopFlag | None = None
        self._thread: threading.Thread | None = None
        self._outcome = None

    def __getstate__(self):  # only the class travels in the pickle
        return {}

    def __setstate__(self, state):
        self.__init__()

    def __call__(self, store_path: str, task_id: str) -> str:
        import signal

        env = submitit.JobEnvironment()
        ts = TaskStore(store_path, task_id)
        cfg = ts.config()
        status = ts.status()
        attempts = status.get("attempts", [])
        if status.get("state") == "done":
            return "done"
        if len(attempts) > cfg.resources.max_requeues:
            ts.update_status(state="failed", error_line=f"requeue budget exhausted after {len(attempts)} attempts "
                             f"(resources.max_requeues = {cfg.resources.max_requeues})")
            return "failed"
        limit = cfg.resources.time_seconds
        self._deadline_at_limit = time.time() + limit
        self._signal_delay = signal_delay(limit)
        deadline = time.time() + limit - cfg.resources.deadline_margin_seconds
        self._stop = StopFlag()
        # SIGTERM: `scontrol requeue`, a preemption without a user signal, or scancel
        signal.signal(signal.SIGTERM, lambda *_: self._stop.request("sigterm (requeue, preemption or cancel)"))
        cpus = int(os.environ.get("SLURM_CPUS_PER_TASK", cfg.resources.cpus))

        def target():
            self._outcome = run_task(store_path, task_id, stop=self._stop, deadline=deadline, backend="slurm",
                                     job_id=str(env.job_id), cpus=cpus)

        self._thread = threading.Thread(target=target, name=f"task-{task_id}")
        self._thread.start()
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)
        outcome = self._outcome
        if outcome.state == "leased":
            return "running elsewhere"  # another live process holds this task
        if outcome.state == "interrupted" and outcome.reason == "deadline":
            env._requeue(0)  # no signal came before our own deadline: requeue ourselves
        if outcome.state == "failed":
            raise RuntimeError(f"task {task_id} failed: {(outcome.error or '').strip().splitlines()[-1:]}")
        return outcome.state

    def checkpoint(self, store_path: str, task_id: str):
        """USR2: stop at the next iteration with a checkpoint, then let submitit requeue us.

        USR2 comes ``signal_delay_s`` before the time limit (slurmctld checks limits every
        30 s, so up to 30 s earlier) or at a preemption: which one is told by the time left.
        """
        if self._stop is not None:
            left = self._deadline_at_limit - time.time()
            self._stop.request("timeout" if left <= self._signal_delay + 45 else "preemption")
        if self._thread is not None:
            self._thread.join()
        if self._outcome is not None and self._outcome.state != "interrupted":
            return None  # done or failed: nothing to requeue
        ts = TaskStore(store_path, task_id)
        cfg = ts.config()
        if len(ts.status().get("attempts", [])) > cfg.resources.max_requeues:
            ts.update_status(state="failed", error_line="requeue budget exhausted "
                             f"(resources.max_requeues = {cfg.resources.max_requeues})")
            return None
        return submitit.helpers.DelayedSubmission(TaskRunner(), store_path, task_id)


# ------------------------------------------------------------------ on the login node


def executor_parameters(res: Resources, name: str, max_parallel: int | None, n: int) -> dict:
    params = {
        "job_name": f"snnbatch-{name}",
        "cpus_per_task": res.cpus,
        "mem": f"{res.memory_mb}M",
        "time": max(1, math.ceil(parse_duration(res.time) / 60)),
        "signal_delay_s": signal_delay(parse_duration(res.time)),
        "setup": list(THREAD_SETUP),
        "array_parallelism": max_parallel or n,
        "stderr_to_stdout": True,
        "additional_parameters": dict(res.sbatch_extra),
    }
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(res, key):
            params[key] = getattr(res, key)
    return params


class SlurmBackend(Backend):
    name = "slurm"

    def _executor(self, path: Path, name: str, res: Resources, n: int) -> submitit.SlurmExecutor:
        ex = submitit.SlurmExecutor(folder=str(Path(path).resolve() / "slurm" / "%A"), max_num_timeout=res.max_requeues)
        ex.update_parameters(**executor_parameters(res, name, self.options.max_parallel, n))
        return ex

    def dry_run_text(self, path: Path, name: str, res: Resources, task_ids: list[str]) -> str:
        """What ``submit`` would ask for: arrays, resources, core-hours and the sbatch script. Writes nothing."""
        try:
            size, source = max_array_size(), "MaxArraySize"
        except BackendError:
            size, source = 1001, "SLURM's default MaxArraySize; scontrol did not answer"
        arrays = chunks(task_ids, size)
        ex = self._executor(path, name, res, len(arrays[0]) if arrays else 0)
        params = dict(ex.parameters)
        params["map_count"] = len(arrays[0]) if arrays else 0
        script = submitit.slurm.slurm._make_sbatch_string(command=ex._submitit_command_str, folder=ex.folder,
                                                          **params)
        hours = len(task_ids) * res.cpus * res.time_seconds / 3600
        return "\n".join([
            f"{len(arrays)} array(s) for {len(task_ids)} tasks ({source} {size}): "
            + ", ".join(f"[0-{len(a) - 1}]" for a in arrays),
            f"each element: {res.cpus} cpu, {res.memory}, {res.time}; at most "
            f"{self.options.max_parallel or 'all'} at once; {hours:.1f} core-hours requested",
            "sbatch script of the first array:",
            script,
        ])

    def submit(self, store, task_ids):
        if self.options.dry_run:
            return SubmitResult(waited=False, text=self.dry_run_text(store, task_ids))
        res = Resources.model_validate(store.spec_dict().get("resources", {}))
        arrays = chunks(task_ids, max_array_size())
        jobs_by_task: dict[str, dict] = {}
        lines = []
        for chunk in arrays:
            ex = self._executor(store.path, store.name, res, len(chunk))
            try:
                jobs = ex.map_array(TaskRunner(), [str(store.path.resolve())] * len(chunk), chunk)
            except Exception as exc:  # sbatch refused: partition, account, limits ...
                if jobs_by_task:
                    store.record_submission(list(jobs_by_task), "slurm", jobs_by_task)
                raise BackendError(f"sbatch failed after {len(jobs_by_task)} tasks were submitted: {exc}") from None
            array_id = jobs[0].job_id.split("_")[0]
            lines.append(f"submitted array {array_id} with {len(chunk)} tasks")
            for tid, job in zip(chunk, jobs):
                jobs_by_task[tid] = {"job_id": job.job_id, "array_id": array_id,
                                     "log": str(job.paths.stdout)}
        store.record_submission(list(jobs_by_task), "slurm", jobs_by_task)
        lines.append(f"follow with 'snnbatch status {store.path}'; the jobs go on if you log out")
        return SubmitResult(waited=False, jobs=jobs_by_task, text="\n".join(lines))


def _have(cmd: str) -> bool:
    import shutil

    return shutil.which(cmd) is not None


# ------------------------------------------------------------------ status and cancel


def scheduler_states(job_ids: list[str], timeout: float = 15.0) -> dict[str, str]:
    """The scheduler's word on each job id: squeue for live jobs, sacct (if it answers) for ended ones.

    Never waits on sacct for long and never fails: a cluster without accounting gives
    only the squeue states, and jobs squeue no longer lists are left out.
    """
    if not job_ids or not _have("squeue"):
        return {}
    states: dict[str, str] = {}
    arrays = sorted({j.split("_")[0] for j in job_ids})
    try:
        r = run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(arrays)], timeout=timeout, check=False)
        if r.returncode == 0:
            for line in r.stdout.splitlines():
                parts = line.split("|")
                if len(parts) >= 2:
                    states[parts[0]] = parts[1].split()[0]
    except BackendError:
        pass
    r = run(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(arrays)], timeout=timeout, check=False)
    if r.returncode == 0:
        for line in r.stdout.splitlines():
            jid, _, state = line.partition("|")
            states[jid.strip()] = state.strip()
    return {j: states[j] for j in job_ids if j in states}


def cancel(job_ids: list[str]) -> str:
    arrays = sorted({j.split("_")[0] for j in job_ids})
    if not arrays:
        return "no SLURM jobs recorded"
    run(["scancel", *arrays], timeout=60)
    return f"cancelled SLURM job(s) {', '.join(arrays)}"
