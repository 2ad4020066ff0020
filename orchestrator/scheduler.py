"""The scheduler's view of a run's jobs, merged into what the store says.

The store is the truth about a task's progress; the scheduler adds what only
it knows: whether a job is still queued, running, or gone. Each task's
``scheduler`` record names the backend that submitted it; that backend's
``status`` hook answers for its jobs quickly and never raises (on SLURM:
squeue for live jobs, and sacct only when accounting answers). Backends that
run tasks themselves know no jobs.
"""
from __future__ import annotations

from . import backends

LIVE = {"PENDING", "CONFIGURING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED",
        "COMPLETING", "IDLE", "TRANSFERRING", "HELD"}
QUEUED = {"PENDING", "REQUEUED", "IDLE", "REQUEUE_HOLD"}


def live_states(tasks: list[dict]) -> dict[str, str]:
    """Task id -> scheduler state, for the tasks whose jobs a backend recorded."""
    by_backend: dict[str, dict[str, list[str]]] = {}  # a packed job runs several tasks
    for t in tasks:
        sched = t.get("scheduler") or {}
        name, job_id = sched.get("backend"), sched.get("job_id")
        if job_id and name in backends.BACKENDS:
            by_backend.setdefault(name, {}).setdefault(str(job_id), []).append(t["id"])
    out: dict[str, str] = {}
    for name, jobs in by_backend.items():
        for job_id, state in backends.get(name)().status(list(jobs)).items():
            for tid in jobs[job_id]:
                out[tid] = state
    return out


def merge(tasks: list[dict]) -> list[dict]:
    """Add ``scheduler_state`` to each task; a pending task whose job is queued shows as ``queued``."""
    states = live_states(tasks)
    for t in tasks:
        state = states.get(t["id"])
        t["scheduler_state"] = state
        if state and t["state"] in ("pending", "interrupted") and state in LIVE:
            t["state"] = "queued" if state in QUEUED else t["state"]
    return tasks
