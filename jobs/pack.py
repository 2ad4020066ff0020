"""Several tasks in one scheduler job (``resources.pack``, ``resources.node_cpus``): the compute-node side.

A packed SLURM array element holds a list of tasks. It runs them in *lanes*: ``node_cpus // cpus``
lanes side by side (one without ``node_cpus``), each a process of its own started with
``python -m snnbatch.jobs.pack lane STORE``, so each lane has its own thread settings (the variables
of :mod:`snnbatch.jobs.threads` set to ``resources.cpus``, and a share of the element's cores when
the element may use enough of them), and a lane that crashes takes no pack-mate with it. The
element hands each lane one task id at a time on its stdin, the next one whenever the lane reports
the previous one's :class:`~snnbatch.jobs.runner.Outcome` as a JSON line, so a lane that draws short
tasks takes more of them. Every task is run by :func:`~snnbatch.jobs.runner.run_task` as it would
be alone: its own lease, checkpoints, attempts and status; a task that fails is recorded as failed
and its lane goes on with the next one.

:func:`unfinished` is what an element (first start, requeue, preemption) selects from its pack:
the tasks that have training left to do now, so a requeued element runs only those.

A lane installs its signal handlers before it imports anything else: SIGUSR2 (a coming time
limit or a preemption, told apart by the time left, as the unpacked element does), SIGTERM and
SIGINT make its running task checkpoint and stop; the lane then reports it and takes no other.
"""
from __future__ import annotations

import signal
import sys
import time

ENDED = ("done", "failed", "pruned")
_STOP = None  # the lane's StopFlag, once the runner is imported
_EARLY: list[str] = []  # a signal's reason that came before the StopFlag existed
_STOP_INFO: dict = {}  # the element's time limit and signal delay, to tell what a SIGUSR2 means


def usr2_reason(limit_at: float, signal_delay: float, now: float | None = None) -> str:
    """What a SIGUSR2 means: ``timeout`` when it comes at most ``signal_delay`` (+45 s: slurmctld
    checks limits every 30 s) before the time limit at ``limit_at``, else ``preemption``."""
    left = limit_at - (time.time() if now is None else now)
    return "timeout" if left <= signal_delay + 45 else "preemption"


def unfinished(store_path, task_ids: list[str]) -> list[str]:
    """The tasks of ``task_ids`` with training to do now, in their order: not done, failed or pruned,
    and in a halving sweep not parked at a rung that is not decided yet (a running task is kept: its
    lease tells whether its holder is still alive)."""
    from . import halving
    from .status import TaskStatus
    from .store import stored_status

    plan = halving.plan_of(store_path)
    made = halving.decisions(store_path, plan) if plan else {}
    out = []
    for tid in task_ids:
        st = TaskStatus.from_attrs(stored_status(store_path, tid))
        if st.state in ENDED:
            continue
        if plan is not None and st.state == "parked" and halving.waiting_at_rung(tid, st, plan, made):
            continue
        out.append(tid)
    return out


def budget_spent(store_path, task_id: str) -> bool:
    """Mark the task failed, and say so, when it was started more than ``resources.max_requeues`` times."""
    from .store import TaskStore

    from .config import Resources

    ts = TaskStore(store_path, task_id)
    attempts = ts.status().get("attempts", [])
    limit = Resources.model_validate(ts.config_dict.get("resources", {})).max_requeues
    if len(attempts) <= limit:
        return False
    ts.update_status(state="failed", error_line=f"requeue budget exhausted after {len(attempts)} attempts "
                     f"(resources.max_requeues = {limit})")
    return True


def lane(store_path: str, *, job_id: str, deadline: float | None, limit_at: float, signal_delay: float,
         cpus: int, cpu_list: list[int] | None = None, inbox=None, outbox=None) -> int:
    """Run the task ids read one a line from ``inbox`` (stdin) until it closes or a stop is asked;
    write each outcome as a JSON line to ``outbox``. Returns the exit status (0, or 3 when stopped)."""
    import json
    import os

    from . import threads

    if cpu_list:
        try:
            os.sched_setaffinity(0, cpu_list)
        except (AttributeError, OSError):
            pass  # not on this system, or not these cores: the lane shares the element's
    os.environ.update(threads.environment(cpus))
    from .runner import StopFlag, run_task

    global _STOP
    _STOP = StopFlag()
    for reason in _EARLY:
        _STOP.request(reason)
    _STOP_INFO.update(limit_at=limit_at, signal_delay=signal_delay)
    for line in inbox:
        tid = line.strip()
        if not tid:
            continue
        if _STOP:
            break
        if budget_spent(store_path, tid):
            record = {"task": tid, "state": "failed", "iteration": 0, "reason": "requeue budget exhausted"}
        else:
            o = run_task(store_path, tid, stop=_STOP, deadline=deadline, backend="slurm", job_id=job_id, cpus=cpus)
            record = {"task": tid, "state": o.state, "iteration": o.iteration, "reason": o.reason,
                      "decided": o.decided, "store_error": o.store_error}
        outbox.write(json.dumps(record) + "\n")
        outbox.flush()
        if _STOP:
            break
    return 3 if _STOP else 0


def _on_signal(signum, _frame):
    if signum == signal.SIGUSR2:
        info = _STOP_INFO
        reason = usr2_reason(info["limit_at"], info["signal_delay"]) if info else "usr2"
    elif signum == signal.SIGTERM:
        reason = "sigterm (requeue, preemption or cancel)"
    else:
        reason = "interrupt"
    if _STOP is None:
        _EARLY.append(reason)
    else:
        _STOP.request(reason)


def main(argv: list[str]) -> int:
    """``python -m snnbatch.jobs.pack lane STORE --job-id J --deadline T --limit-at T --signal-delay S
    --cpus N [--cpu-list 0,1]``: one lane of a packed element (stdin: task ids; stdout: outcomes)."""
    import argparse
    import os

    p = argparse.ArgumentParser(prog="snnbatch.jobs.pack")
    p.add_argument("command", choices=["lane"])
    p.add_argument("store")
    p.add_argument("--job-id", required=True)
    p.add_argument("--deadline", type=float, default=None)
    p.add_argument("--limit-at", type=float, required=True)
    p.add_argument("--signal-delay", type=float, required=True)
    p.add_argument("--cpus", type=int, required=True)
    p.add_argument("--cpu-list", default="")
    a = p.parse_args(argv)
    _STOP_INFO.update(limit_at=a.limit_at, signal_delay=a.signal_delay)
    outbox = os.fdopen(os.dup(1), "w")  # outcomes only; whatever else prints goes to the log
    os.dup2(2, 1)
    cpu_list = [int(c) for c in a.cpu_list.split(",") if c]
    return lane(a.store, job_id=a.job_id, deadline=a.deadline, limit_at=a.limit_at, signal_delay=a.signal_delay,
                cpus=a.cpus, cpu_list=cpu_list, inbox=sys.stdin, outbox=outbox)


if __name__ == "__main__":
    for _sig in (signal.SIGUSR2, signal.SIGTERM, signal.SIGINT):  # first: a signal must never kill a lane
        signal.signal(_sig, _on_signal)
    sys.exit(main(sys.argv[1:]))
