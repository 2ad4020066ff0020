"""The scheduler's view of a run's jobs, merged into what the store says.

The store is the truth about a task's progress; the scheduler adds what only
it knows: whether a job is still queued, running, or gone. Each cluster
backend answers ``scheduler_states(job_ids)`` quickly and never raises (on
SLURM: squeue for live jobs, and sacct only when accounting answers).
"""
from __future__ import annotations

import importlib

from .backends import BACKENDS

LIVE = {"PENDING", "CONFIGURING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED",
        "COMPLETING", "IDLE", "TRANSFERRING", "HELD"}


def live_states(tasks: list[dict]) -> dict[str, str]:
    """Task id -> scheduler state, for the tasks a cluster backend submitted."""
    by_backend: dict[str, dict[str, str]] = {}
    for t in tasks:
        sched = t.get("scheduler") or {}
        backend, job_id = sched.get("backend"), sched.get("job_id")
        if job_id and backend in ("slurm", "htcondor"):
            by_backend.setdefault(backend, {})[str(job_id)] = t["id"]
    out: dict[str, str] = {}
    for backend, jobs in by_backend.items():
        module = importlib.import_module(BACKENDS[backend].split(":")[0])
        for job_id, state in module.scheduler_states(list(jobs)).items():
            out[jobs[job_id]] = state
    return out


def merge(tasks: list[dict]) -> list[dict]:
    """Add ``scheduler_state`` to each task; a pending task whose job is queued shows as ``queued``."""
    states = live_states(tasks)
    for t in tasks:
        state = states.get(t["id"])
        t["scheduler_state"] = state
        if state and t["state"] in ("pending", "interrupted") and state in LIVE:
            t["state"] = "queued" if state in ("PENDING", "REQUEUED", "IDLE", "REQUEUE_HOLD") else t["state"]
    return tasks
