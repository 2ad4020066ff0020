"""One task's life on a compute node: lease, load, train in steps, checkpoint, finish.

:func:`run_task` is what every backend runs (``snnbatch run-task STORE ID``
on a cluster node, a Dask worker, or the driver itself). It first takes the
task's lease (``tasks/<id>/lease``, see :mod:`snnbatch.jobs.store`): when a
live process elsewhere holds it, it returns at once with the outcome
``leased`` and writes nothing. Holding the lease, it starts from the task's
newest good checkpoint, or from scratch, and checkpoints every
``checkpoint.every_iterations`` iterations (``auto``: 200, deferred while a
checkpoint would cost more than ``checkpoint.max_overhead`` of the time since
the previous one) or ``every_minutes`` of wall time, when asked to stop (a
signal sets a :class:`StopFlag`) and before its own deadline. A resumed task produces the same bits as one that never stopped.
With ``training.validate_every`` it validates on the way and ends with the state of
the best validation (:mod:`snnbatch.jobs.validation`).

What it guarantees, and records in the task's ``status``:

* every attempt is kept in ``attempts`` (host, pid, from which iteration, the last
  iteration it checkpointed, how it ended); one that ended without a word (SIGKILL,
  a dead node) is marked ``lost`` by the next holder of the lease;
* a bad checkpoint (altered, truncated, deleted, unreadable) is reported in
  ``warnings``, removed, and the previous good one is used; with none, the
  task restarts from scratch and the warning says so;
* a task that raises is retried up to ``resources.retries`` times, each time
  from its newest good checkpoint; every attempt is kept in ``attempts``
  with its cause; the last traceback is kept in ``error``. A non-finite
  metric (a diverged loss), or a non-finite array in a state about to be
  checkpointed, raises ``FloatingPointError``: a diverged state is never saved;
* a store that cannot be written (no space, quota, read-only) stops the task
  with the outcome ``interrupted`` and ``store_error`` set; the last good
  checkpoint stays as it was, and the task resumes from it later. A store
  that cannot even be leased raises :class:`~snnbatch.jobs.store.StoreWriteError`.
"""
from __future__ import annotations

import math
import os
import signal
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from . import early_stopping, halving, threads, validation
from .config import AUTO_EVERY_ITERATIONS
from .errors import StoreWriteError
from .lease import LEASE_HEARTBEAT_SECONDS, Lease, describe_holder
from .store import TaskStore

HEARTBEAT_SECONDS = 10.0
STOP_POLL_SECONDS = 0.25  # how often a task run with a stop file looks for it
# Fault injection for tests (snnbatch.testing): SIGKILL this process right after this iteration, so
# a test kills a task at a known state instead of racing a fast kernel with a timer.
# The value is an iteration, or TASK_ID:ITERATION for one task of a sweep (a prefix of its id), or
# several of these separated by commas.
_KILL_AT = os.environ.get("SNNBATCH_KILL_AT_ITERATION") or ""
_STOP_AT = os.environ.get("SNNBATCH_STOP_AT_ITERATION") or ""  # SIGSTOP itself there


def _fault_at(value: str, task_id: str) -> frozenset[int]:
    """The iterations a fault-injection variable names for this task (empty: none)."""
    found = set()
    for entry in filter(None, (e.strip() for e in value.split(","))):
        who, _, at = entry.rpartition(":")
        if at and (not who or task_id.startswith(who)):
            found.add(int(at))
    return frozenset(found)


RETRY_DELAY_SECONDS = 1.0  # before the first retry; doubles each time, at most RETRY_DELAY_MAX
RETRY_DELAY_MAX = 60.0


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
    """How a call to :func:`run_task` ended.

    ``state``: ``done``; ``parked`` (a halving sweep: trained to its rung's budget, waiting for the
    rung's decision; ``decided``: the rung decisions this call then wrote); ``pruned`` (a halving
    sweep ended it at a rung); ``failed`` (every attempt raised; traceback in ``error``);
    ``interrupted`` (stopped by a signal, the deadline, or a store that cannot be
    written, then ``store_error`` is true and ``reason`` says why and names the
    store); ``leased`` (another live process runs this task: nothing was done
    or written; ``reason`` names the holder).
    """

    task_id: str
    state: str  # "done", "parked", "pruned", "interrupted", "failed" or "leased"
    iteration: int
    reason: str | None = None
    error: str | None = None
    store_error: bool = False
    decided: list = field(default_factory=list)


class _LeaseLost(Exception):
    """Another process took this task's lease over (ours was judged stale): stop, write nothing."""


def run_task(
    store_path,
    task_id: str,
    *,
    stop: StopFlag | None = None,
    deadline: float | None = None,
    backend: str = "inline",
    job_id: str | None = None,
    cpus: int | None = None,
    lease_wait: float | None = None,
    stop_file=None,
) -> Outcome:
    """Run task ``task_id`` of the store at ``store_path`` until it is done or asked to stop.

    ``deadline`` (epoch seconds) makes the task checkpoint and stop on its own
    before a scheduler would kill it. ``lease_wait``: see
    :meth:`TaskStore.acquire_lease`. ``stop_file``: a path whose existence asks the task to checkpoint
    and stop as a signal would (a driver's stop request to workers that get no signal, see
    :mod:`snnbatch.orchestrator.backends.dask`); polled every :data:`STOP_POLL_SECONDS`, and
    before anything is done (then nothing is written). Never raises for a failure inside
    training: the traceback goes to the store and the outcome says ``failed``.
    Raises :class:`~snnbatch.jobs.errors.StoreError` for a task id, a store or
    a store format it cannot use, before anything is written.
    """
    ts = TaskStore(store_path, task_id)
    if stop_file is not None and os.path.exists(stop_file):  # stopped before it started: nothing to record
        return Outcome(task_id, "interrupted", ts.read_status().iteration, "interrupt")
    lease, holder = ts.acquire_lease(wait=lease_wait)
    if lease is None:
        return Outcome(task_id, "leased", ts.read_status().iteration,
                       f"running elsewhere: {describe_holder(holder)}")
    stop = stop if stop is not None else StopFlag()  # a fresh StopFlag is falsy: "or" would replace it
    beat = _Heartbeat(lease, stop, stop_file)
    beat.start()
    try:
        outcome = _run_leased(ts, lease, stop, deadline, backend, job_id, cpus)
    finally:
        beat.finish()
        ts.finish_removals()  # old checkpoints set aside: gone before another process may take the task
        lease.release()
    if outcome.state == "parked":  # the last of its rung to park decides the rung (anyone else may too)
        try:
            outcome.decided = halving.try_decide(store_path, by=f"{backend} {job_id or os.getpid()}")
        except OSError:
            pass  # left for the next one to look: a decision is either whole or not written
    return outcome


class _Heartbeat(threading.Thread):
    """Refreshes the lease while the task runs (Numba kernels release the GIL), and turns a stop
    request (``stop_file`` appearing) into a request on the task's :class:`StopFlag`."""

    def __init__(self, lease: Lease, stop: StopFlag | None = None, stop_file=None):
        super().__init__(daemon=True, name="snnbatch-lease")
        self.lease, self.stop, self.stop_file = lease, stop, stop_file
        self._done = threading.Event()

    def run(self):
        poll = STOP_POLL_SECONDS if self.stop_file is not None else LEASE_HEARTBEAT_SECONDS
        next_beat = time.monotonic() + LEASE_HEARTBEAT_SECONDS
        beating = True
        while not self._done.wait(poll):
            if self.stop_file is not None and self.stop is not None and os.path.exists(self.stop_file):
                self.stop.request("interrupt")
            if not beating or time.monotonic() < next_beat:
                continue
            next_beat = time.monotonic() + LEASE_HEARTBEAT_SECONDS
            try:
                if not self.lease.refresh():
                    beating = False  # lost: the training loop sees it through lease.held()
            except OSError:
                pass  # a full or flaky file system: try again at the next beat

    def finish(self):
        self._done.set()
        self.join(timeout=5)


def _run_leased(ts: TaskStore, lease: Lease, stop: StopFlag, deadline, backend, job_id, cpus) -> Outcome:
    task_id = ts.task_id
    status = ts.read_status()
    if status.state in ("done", "pruned"):
        return Outcome(task_id, status.state, status.iteration, f"already {status.state}")
    cfg = ts.config()
    threads.apply(cpus or threads.from_allocation(cfg.resources.cpus))
    ts.clean_leftovers()
    run = _Run(ts, lease, stop, deadline, cfg, status, backend, job_id)
    retries = cfg.resources.retries
    delay = RETRY_DELAY_SECONDS
    try:
        for n in range(retries + 1):
            outcome = run.attempt(last=n == retries)
            if outcome.state != "failed" or n == retries:
                return outcome
            until = time.monotonic() + delay
            while time.monotonic() < until and not stop:
                time.sleep(0.05)
            delay = min(2 * delay, RETRY_DELAY_MAX)
            if stop:
                run.write(state="interrupted")
                return Outcome(task_id, "interrupted", outcome.iteration, stop.reason, outcome.error)
        raise AssertionError("unreachable")
    except _LeaseLost:
        return Outcome(task_id, "leased", 0, f"lease lost to {describe_holder(ts.lease_holder())}")
    except StoreWriteError as exc:
        note = str(exc)
        try:
            run.write(state="interrupted", error=note, error_line=note.splitlines()[0][:300], store_error=True)
        except (StoreWriteError, _LeaseLost):
            pass  # the status cannot be written either; the released lease shows the task is not running
        return Outcome(task_id, "interrupted", run.iteration, note, note, store_error=True)


class _Run:
    """The attempts of one ``run_task`` call, and the status record they share."""

    def __init__(self, ts, lease, stop, deadline, cfg, status, backend, job_id):
        self.ts, self.lease, self.stop, self.deadline, self.cfg = ts, lease, stop, deadline, cfg
        self.attempts = list(status.attempts)
        if self.attempts and "ended" not in self.attempts[-1]:  # we hold the lease: its process is gone
            lost = self.attempts[-1]
            # its last sign of life: the last heartbeat or status write (a progress heartbeat every 10 s)
            lost["ended"] = max(float(lost.get("started") or 0), status.heartbeat or 0.0, status.updated or 0.0)
            lost["reason"] = "lost (killed, or its node failed)"
        self.warnings = list(status.warnings)
        self.recorded_checkpoint = status.checkpoint
        self.backend, self.job_id = backend, job_id
        self.iteration = 0

    def write(self, **values) -> None:
        """Update the status, unless the lease was lost (then the new holder owns the status)."""
        if not self.lease.held():
            raise _LeaseLost()
        self.ts.update_status(**values)

    def attempt(self, last: bool) -> Outcome:
        ts, ck, task_id = self.ts, self.cfg.checkpoint, self.ts.task_id
        attempt = {
            "n": len(self.attempts) + 1,
            "started": time.time(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "backend": self.backend,
            "job_id": self.job_id,
        }
        self.attempts.append(attempt)
        self.write(state="running", attempts=self.attempts, heartbeat=time.time(), error=None, error_line=None,
                   store_error=False)

        def finish(reason: str, **values) -> None:
            attempt["ended"] = time.time()
            attempt["reason"] = reason
            self.write(attempts=self.attempts, **values)

        state = None
        try:
            from .trainer import build_trainer, initial_state, total_iterations

            trainer = build_trainer(self.cfg)
            state = self.resume_point()
            if state is None:
                state = initial_state(trainer)
            attempt["from_iteration"] = state.iteration
            total = total_iterations(trainer, self.cfg.training)
            last_ck_iter, last_ck_time, last_beat = state.iteration, time.monotonic(), time.monotonic()
            every = ck.every_iterations or AUTO_EVERY_ITERATIONS
            last_ck_cost = 0.0  # seconds the previous checkpoint (and its status write) took
            self.iteration = state.iteration
            self.write(total=total, iteration=state.iteration, attempts=self.attempts, warnings=self.warnings)
            tracker = _early_stopping(self.cfg, state)
            validator = validation.build(self.cfg, trainer, state)
            limit, rung = halving.target(ts.path, task_id, total)  # a halving sweep: its rung's budget
            if rung is not None and rung.pruned:
                finish("pruned", state="pruned", rung=rung.rung)
                return Outcome(task_id, "pruned", state.iteration)
            kill_at, stop_at = _fault_at(_KILL_AT, task_id), _fault_at(_STOP_AT, task_id)

            while state.iteration < limit:
                before = state.iteration
                metrics = trainer.step(state)
                if state.iteration != before:
                    raise RuntimeError(f"{type(trainer).__name__}.step changed state.iteration "
                                       f"({before} -> {state.iteration}): the runner counts iterations")
                state.iteration += 1
                _check_finite(metrics, state.iteration)
                state.record(metrics)
                if validator is not None:
                    validator.after_step(state)
                    metrics = {**metrics, **validator.best_values(state)}  # what the status shows
                if tracker is not None:
                    rule = self.cfg.training.early_stopping
                    improved = tracker.evaluate(state.metrics.get(rule.metric, []), state.iteration)
                    if improved and validator is None:  # when validating, the validation selects the state
                        early_stopping.keep_best(state.arrays)
                    if tracker.stop:
                        break
                t = time.monotonic()
                reason = self.stop.reason or (
                    "deadline" if self.deadline is not None and time.time() >= self.deadline else None
                )
                if not self.lease.held():
                    raise _LeaseLost()
                by_count = state.iteration - last_ck_iter >= every
                if by_count and ck.every_iterations is None and (t - last_ck_time) * ck.max_overhead < last_ck_cost:
                    by_count = False  # auto: checkpointing now would cost more than max_overhead of the time
                due = by_count or (t - last_ck_time >= ck.every_minutes * 60)
                if (due or reason) and state.iteration < limit:
                    _check_finite_state(state)
                    name = ts.save_checkpoint(state, ck.keep)
                    self.iteration = state.iteration
                    last_ck_iter, last_ck_time = state.iteration, t
                    attempt["checkpointed"] = state.iteration
                    self.recorded_checkpoint = name
                    self.write(iteration=state.iteration, checkpoint=name, heartbeat=time.time(),
                               attempts=self.attempts, metrics=_last(metrics))
                    last_beat = t
                    last_ck_cost = time.monotonic() - t
                elif t - last_beat >= HEARTBEAT_SECONDS:
                    self.write(progress=state.iteration, heartbeat=time.time(), metrics=_last(metrics))
                    last_beat = t
                if reason and state.iteration < limit:
                    finish(reason, state="interrupted")
                    return Outcome(task_id, "interrupted", state.iteration, reason)
                if state.iteration in kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)  # fault injection for tests: die without a word
                if state.iteration in stop_at:
                    os.kill(os.getpid(), signal.SIGSTOP)  # for tests: wait here for a signal (then SIGCONT)

            if state.iteration < total and not (tracker is not None and tracker.stop):
                if last_ck_iter != state.iteration:  # park at the rung's budget, from a checkpoint there
                    _check_finite_state(state)
                    self.recorded_checkpoint = ts.save_checkpoint(state, ck.keep)
                    attempt["checkpointed"] = state.iteration
                self.iteration = state.iteration
                finish("parked", state="parked", rung=rung.rung, iteration=state.iteration,
                       checkpoint=self.recorded_checkpoint, metrics={k: v[-1] for k, v in state.metrics.items() if v})
                return Outcome(task_id, "parked", state.iteration)
            stopped_early = {}
            if tracker is not None:
                if validator is None:
                    early_stopping.restore_best(state.arrays)
                stopped_early = {"best_iteration": tracker.best_iteration,
                                 "stopped_early": state.iteration if tracker.stop else None}
            if validator is not None:
                stopped_early.update(validator.finish(state))  # the selected state, and where it is from
            _check_finite_state(state)
            final = trainer.evaluate(state)
            if not self.lease.held():
                raise _LeaseLost()
            name = ts.save_checkpoint(state, ck.keep, extra={"final": True, **final})
            self.iteration = state.iteration
            attempt["checkpointed"] = state.iteration
            last = {k: v[-1] for k, v in state.metrics.items() if v}
            if validator is not None:
                last.update(validator.best_values(state))  # the selected state's validation
            finish("stopped early" if stopped_early.get("stopped_early") else "done", state="done",
                   iteration=state.iteration, checkpoint=name, finished=time.time(), metrics={**last, **final},
                   **stopped_early)  # a final metric wins over the last iteration's
            return Outcome(task_id, "done", state.iteration)
        except (_LeaseLost, StoreWriteError):
            raise
        except Exception as exc:  # a task failure: keep its traceback, let the sweep go on
            tb = traceback.format_exc()
            line = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            attempt["error_line"] = line
            if last:
                finish("error", state="failed", error=tb, error_line=line)
            else:
                finish("error", error=tb, error_line=line)  # still "running": a retry follows
            return Outcome(task_id, "failed", state.iteration if state else 0, "error", tb)

    def resume_point(self):
        """The newest good checkpoint; bad ones are reported in ``warnings`` and removed."""
        ts = self.ts
        state, name, bad = ts.newest_good_checkpoint()
        names = {n for n, _ in bad} | ({name} if name else set())
        recorded = self.recorded_checkpoint
        notes = [problem for _, problem in bad]
        if recorded and recorded not in names and (name is None or recorded > name):
            notes.append(f"checkpoint {recorded}, recorded in the status, is missing")
        if notes:
            where = (f"resumed from checkpoint {name} at iteration {state.iteration}" if state
                     else "no good checkpoint: restarted from scratch")
            self.warnings.append(f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {'; '.join(notes)}; {where}")
            self.attempts[-1]["warnings"] = len(notes)
            self.write(warnings=self.warnings)
            for bad_name, _ in bad:
                ts.discard_checkpoint(bad_name)
        self.recorded_checkpoint = name
        return state


def _early_stopping(cfg, state):
    """The early-stopping tracker of the task (None without ``training.early_stopping``), caught up with
    a resumed state's history; a fresh state's first evaluation is its best so far."""
    rule = cfg.training.early_stopping
    if rule is None:
        return None
    from .registry import algorithm

    better = next(m.better for m in algorithm(cfg.model.type).metrics if m.name == rule.metric)
    tracker = early_stopping.Tracker(rule, better)
    tracker.replay(state.metrics.get(rule.metric, []), state.iteration)
    return tracker


def _check_finite(metrics: dict[str, float], iteration: int) -> None:
    for k, v in metrics.items():
        if not math.isfinite(float(v)):
            raise FloatingPointError(f"{k} is not finite at iteration {iteration} ({v}): the training diverged")


def _check_finite_state(state) -> None:
    """Never checkpoint a diverged state: every float array must be finite."""
    for k, a in state.arrays.items():
        a = np.asarray(a)
        if a.dtype.kind in "fc" and not np.isfinite(a).all():
            raise FloatingPointError(f"{k} is not finite at iteration {state.iteration}: the training diverged")


def _last(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()}
