"""A task's status record, typed: what the runner writes into ``tasks/<id>/status`` and every reader reads.

The stored form (the group's Zarr attributes) is flat: the bookkeeping fields
of :class:`TaskStatus` and, beside them, one key per metric with its latest
value (the last training iteration's, then the final ones once the task is
done: ``{"state": "done", "iteration": 400, ..., "loss": 0.21, "test_accuracy": 0.93}``).
:meth:`TaskStatus.from_attrs` reads that form and :meth:`TaskStatus.to_attrs`
writes it; a reader asks the record's fields, never the keys.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from numbers import Number
from typing import Any


@dataclass
class TaskStatus:
    """One task's status record.

    ``state``: pending, running, interrupted, done or failed, as the task last wrote it
    (the store index shows a running task without a live lease as interrupted);
    ``iteration``: the iteration of the newest checkpoint (of the final state once done);
    ``progress``: the iteration reached by the last heartbeat since; ``total``: the
    iterations planned (None before the first start); ``checkpoint``: the newest
    checkpoint's name; ``attempts``: one record per start (host, pid, backend, job id,
    ``started``, ``ended``, ``reason``, ``from_iteration``, ``checkpointed``,
    ``error_line``); ``warnings``: bad checkpoints met and what was done about them;
    ``error`` / ``error_line``: the last attempt's traceback and its one-line summary;
    ``heartbeat``, ``finished``, ``updated``: epoch seconds; ``store_error``: the last
    attempt stopped because the store could not be written; ``stopped_early``: the
    iteration where early stopping ended the task (its state is the one of
    ``best_iteration``; with validation, ``best_iteration`` is the iteration of the state the task
    ended with, selected on the validation metric ``selected_on``); ``rung``: in a halving sweep, the rung the task parked or was pruned at
    (``state`` ``parked`` or ``pruned``); ``metrics``: the latest value of each metric; ``extra``: keys
    this version of snnbatch does not know, kept as they are.
    """

    state: str = "pending"
    iteration: int = 0
    progress: int = 0
    total: int | None = None
    checkpoint: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    error_line: str | None = None
    heartbeat: float | None = None
    finished: float | None = None
    updated: float | None = None
    store_error: bool = False
    stopped_early: int | None = None
    best_iteration: int | None = None
    selected_on: str | None = None
    rung: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any] | None) -> "TaskStatus":
        """The record of a status group's attributes (None or empty: a task that never started)."""
        if attrs is not None and len(attrs) == 1 and "state" in attrs:  # a state alone (a task that never
            return cls(state=str(attrs["state"] or "pending"))  # started, as readers fill it in): the same, sooner
        attrs = dict(attrs or {})
        known = {k: attrs.pop(k) for k in FIELDS if k in attrs}
        metrics = {k: float(v) for k, v in attrs.items() if _is_metric(k, v)}
        extra = {k: v for k, v in attrs.items() if k not in metrics}
        return cls(
            state=str(known.get("state") or "pending"),
            iteration=_int(known.get("iteration")),
            progress=_int(known.get("progress")),
            total=_optional_int(known.get("total")),
            checkpoint=known.get("checkpoint"),
            attempts=list(known.get("attempts") or []),
            warnings=list(known.get("warnings") or []),
            error=known.get("error"),
            error_line=known.get("error_line"),
            heartbeat=_float(known.get("heartbeat")),
            finished=_float(known.get("finished")),
            updated=_float(known.get("updated")),
            store_error=bool(known.get("store_error")),
            stopped_early=_optional_int(known.get("stopped_early")),
            best_iteration=_optional_int(known.get("best_iteration")),
            selected_on=known.get("selected_on"),
            rung=_optional_int(known.get("rung")),
            metrics=metrics,
            extra=extra,
        )

    def to_attrs(self) -> dict[str, Any]:
        """The stored form: the fields that are set (None and False left out), the unknown keys, then
        the metrics, flat."""
        out: dict[str, Any] = {"state": self.state, "iteration": self.iteration}
        if self.progress:
            out["progress"] = self.progress
        for name in ("total", "checkpoint", "error", "error_line", "heartbeat", "finished", "updated",
                     "stopped_early", "best_iteration", "selected_on", "rung"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        out["attempts"] = list(self.attempts)
        out["warnings"] = list(self.warnings)
        if self.store_error:
            out["store_error"] = True
        return {**out, **self.extra, **flat_metrics(self.metrics)}

    # ---------------------------------------------------------------- derived

    @property
    def iterations_done(self) -> int:
        """Training iterations done: the newest checkpoint's, or the last heartbeat's when later."""
        return max(self.iteration, self.progress)

    def elapsed(self, state: str | None = None, now: float | None = None) -> float:
        """Wall time summed over the attempts; a running attempt (``state``, default the record's) counts
        up to ``now``."""
        now = time.time() if now is None else now
        state = self.state if state is None else state
        total = 0.0
        for a in self.attempts:
            if "started" not in a:
                continue
            end = a.get("ended") or (now if state == "running" else a["started"])
            total += max(0.0, end - a["started"])
        return total

    @property
    def error_summary(self) -> str | None:
        """The one line that says why the task failed: ``error_line``, or the traceback's last line."""
        if self.error_line:
            return str(self.error_line)
        lines = [ln for ln in str(self.error or "").splitlines() if ln.strip()]
        return lines[-1].strip() if lines else None


# The stored keys of the bookkeeping fields; every other numeric key is a metric. ``started`` was
# written at the top level by early versions; it is bookkeeping, not a metric.
FIELDS = tuple(f.name for f in fields(TaskStatus) if f.name not in ("metrics", "extra"))
_NOT_METRICS = frozenset(FIELDS) | {"started"}


def flat_metrics(metrics: dict[str, Any] | None) -> dict[str, float]:
    """Metric values as the status stores them, beside the fields; a metric may not take a field's name."""
    metrics = dict(metrics or {})
    clash = sorted(set(metrics) & _NOT_METRICS)
    if clash:
        raise ValueError(f"metric {clash[0]!r} has the name of a status field; "
                         f"the status record keeps {', '.join(FIELDS)} for itself")
    return metrics


def _is_metric(key: str, value) -> bool:
    return key not in _NOT_METRICS and isinstance(value, Number) and not isinstance(value, bool)


def _int(value) -> int:
    return int(value or 0)


def _optional_int(value) -> int | None:
    return None if value is None else int(value)


def _float(value) -> float | None:
    return None if value is None else float(value)
