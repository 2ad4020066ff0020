"""One task's life on a compute node: load, train in steps, checkpoint, finish.

:func:`run_task` is what every backend runs (``snnbatch run-task STORE ID``
on a cluster node, a Dask worker, or the driver itself). It starts from the
task's newest good checkpoint, or from scratch, and checkpoints every
``checkpoint.every_iterations`` iterations or ``every_minutes`` of wall time,
when asked to stop (a signal sets a :class:`StopFlag`) and before its own
deadline. A resumed task produces the same bits as one that never stopped.
"""
from __future__ import annotations

import os
import signal
import socket
import time
import traceback
from dataclasses import dataclass

from . import threads
from .store import TaskStore

HEARTBEAT_SECONDS = 10.0


class StopFlag:
    """Set from a signal handler; the training loop checks it after every iteration."""

    def __init__(self):
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def __bool__(self) -> bool:
        return self.reason is not None


def install_signal_handlers(flag: StopFlag, signals: dict[int, str] | None = None) -> None:
    """Make ``signals`` (default SIGTERM, SIGUSR2, SIGINT) request a checkpoint and a clean stop."""
    signals = signals or {signal.SIGTERM: "sigterm", signal.SIGUSR2: "usr2", signal.SIGINT: "interrupt"}
    for sig, reason in signals.items():
        signal.signal(sig, lambda *_args, _r=reason: flag.request(_r))


@dataclass
class Outcome:
    task_id: str
    state: str  # "done", "interrupted" or "failed"
    iteration: int
    reason: str | None = None
    error: str | None = None


def run_task(
    store_path,
    task_id: str,
    *,
    stop: StopFlag | None = None,
    deadline: float | None = None,
    backend: str = "inline",
    job_id: str | None = None,
    cpus: int | None = None,
) -> Outcome:
    """Run task ``task_id`` of the store at ``store_path`` until it is done or asked to stop.

    ``deadline`` (epoch seconds) makes the task checkpoint and stop on its own
    before a scheduler would kill it. Never raises for a failure inside
    training: the traceback goes to the store and the outcome says ``failed``.
    """
    ts = TaskStore(store_path, task_id)
    status = ts.status()
    if status.get("state") == "done":
        return Outcome(task_id, "done", int(status.get("iteration", 0)), "already done")
    cfg = ts.config()
    threads.apply(cpus or threads.from_allocation(cfg.resources.cpus))
    stop = stop or StopFlag()

    attempts = list(status.get("attempts", []))
    attempt = {
        "n": len(attempts) + 1,
        "started": time.time(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "backend": backend,
        "job_id": job_id,
    }
    attempts.append(attempt)
    ts.update_status(state="running", attempts=attempts, heartbeat=time.time(), error=None, error_line=None)

    def finish_attempt(reason: str, **status_values) -> None:
        attempt["ended"] = time.time()
        attempt["reason"] = reason
        ts.update_status(attempts=attempts, **status_values)

    state = None
    try:
        from .trainer import build_trainer

        trainer = build_trainer(cfg)
        state, problems = ts.latest_checkpoint()
        if problems:
            note = "; ".join(problems)
            note += f"; resumed from iteration {state.iteration}" if state else "; no good checkpoint: restarted from scratch"
            ts.update_status(warnings=list(status.get("warnings", [])) + [note])
        if state is None:
            state = trainer.init_state()
        attempt["from_iteration"] = state.iteration
        total = trainer.total_iterations
        ck = cfg.checkpoint
        last_ck_iter, last_ck_time, last_beat = state.iteration, time.monotonic(), time.monotonic()
        ts.update_status(total=total, iteration=state.iteration, attempts=attempts)

        while state.iteration < total:
            metrics = trainer.step(state)
            state.record(metrics)
            t = time.monotonic()
            reason = stop.reason or (
                "deadline" if deadline is not None and time.time() >= deadline else None
            )
            due = (state.iteration - last_ck_iter >= ck.every_iterations) or (t - last_ck_time >= ck.every_minutes * 60)
            if (due or reason) and state.iteration < total:
                name = ts.save_checkpoint(state, ck.keep)
                last_ck_iter, last_ck_time = state.iteration, t
                ts.update_status(iteration=state.iteration, checkpoint=name, heartbeat=time.time(),
                                 **_last(metrics))
                last_beat = t
            elif t - last_beat >= HEARTBEAT_SECONDS:
                ts.update_status(progress=state.iteration, heartbeat=time.time(), **_last(metrics))
                last_beat = t
            if reason and state.iteration < total:
                finish_attempt(reason, state="interrupted")
                return Outcome(task_id, "interrupted", state.iteration, reason)

        final = trainer.evaluate(state)
        name = ts.save_checkpoint(state, ck.keep, extra={"final": True, **final})
        last = {k: v[-1] for k, v in state.metrics.items() if v}
        finish_attempt("done", state="done", iteration=state.iteration, checkpoint=name,
                       finished=time.time(), **last, **final)
        return Outcome(task_id, "done", state.iteration)
    except Exception as exc:  # a task failure: keep its traceback, let the sweep go on
        tb = traceback.format_exc()
        line = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        try:
            finish_attempt("error", state="failed", error=tb, error_line=line)
        except Exception:
            pass  # the store itself failed; the outcome still says so
        return Outcome(task_id, "failed", state.iteration if state else 0, "error", tb)


def _last(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}
