"""Successive halving without a driver: rung budgets, parking, and rung decisions written once in the store.

A halving sweep records its plan in the run store's root attrs (``halving``: the metric, which way
is better, ``eta``, the rung budgets in iterations, the averaging window). Every task trains to the
budget of the rung it stands in, checkpoints there and *parks* (status ``parked``, with ``rung``).
When every task of rung ``k`` has parked or ended, anyone may decide the rung: the best
``max(1, n // eta)`` of its ``n`` tasks by the metric at the rung's budget (ties broken by task id)
are promoted and continue from their checkpoints to the next rung; the others are pruned. The tasks
promoted from the last rung train to the end of their training.

A decision is a file ``RUN/halving/rung-<k>.json`` created once: written whole under a temporary
name, then hard-linked to its final name, which fails when the name exists. So two processes that
decide at the same instant make one decision (the second reads the first's), and a process killed
at any moment leaves either no decision (the next one to look decides) or a whole one. A task's
rung and whether it was promoted or pruned are read from these files alone.

The value a task is ranked by is a function of its metric history up to the rung's budget: for a
validation metric the last validated value at or before the budget, for a training metric the mean
over the last ``window`` iterations before it. So every backend, worker count and resume ranks alike.
"""
from __future__ import annotations

import json
import math
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HALVING = "halving"  # the root attr of the plan, and the directory of the rung decisions
ENDED = ("done", "failed", "pruned")  # a task in one of these states takes no further rung


@dataclass(frozen=True)
class Plan:
    """A run's halving plan, as its store records it."""

    metric: str
    better: str  # "higher" or "lower"
    eta: int
    rungs: tuple[int, ...]  # the budgets in iterations, rising; the end of training follows the last
    window: int = 1  # iterations averaged for a training metric
    validation: bool = False  # the metric is validated (NaN between validations)

    @classmethod
    def from_record(cls, record) -> "Plan | None":
        if not isinstance(record, dict) or not record.get("rungs"):
            return None
        return cls(metric=str(record["metric"]), better=str(record.get("better", "lower")), eta=int(record["eta"]),
                   rungs=tuple(int(r) for r in record["rungs"]), window=int(record.get("window", 1)),
                   validation=bool(record.get("validation", False)))

    def record(self) -> dict:
        return {"metric": self.metric, "better": self.better, "eta": self.eta, "rungs": list(self.rungs),
                "window": self.window, "validation": self.validation}

    def budget(self, rung: int, total: int) -> int:
        """Iterations a task standing in ``rung`` trains to (past the last rung: its whole training)."""
        return min(self.rungs[rung], total) if rung < len(self.rungs) else total

    def value(self, history, budget: int) -> float:
        """The value a task is ranked by at a rung of ``budget`` iterations (NaN: it has none)."""
        h = np.asarray(history if history is not None else [], dtype=float)[:budget]
        if len(h) < budget:
            return math.nan
        if self.validation:
            seen = h[~np.isnan(h)]
            return float(seen[-1]) if len(seen) else math.nan
        return float(np.mean(h[budget - self.window:budget]))


@dataclass
class Standing:
    """Where a task stands: the rung it trains to, and how the decided rungs treated it."""

    rung: int  # the rung it stands in now (the number of rungs it was promoted from)
    pruned: bool = False  # pruned at ``rung``
    promoted: list[int] = field(default_factory=list)  # the rungs it was promoted from


def plan_of(store_path) -> Plan | None:
    """The halving plan of a store (None: not a halving sweep)."""
    try:
        with open(Path(store_path) / "zarr.json", "rb") as fh:
            attrs = json.load(fh).get("attributes", {})
    except (OSError, ValueError):
        return None
    return Plan.from_record(attrs.get(HALVING))


def decision_path(store_path, rung: int) -> Path:
    return Path(store_path) / HALVING / f"rung-{rung}.json"


def decisions(store_path, plan: Plan) -> dict[int, dict]:
    """The rung decisions made so far, by rung (a run of consecutive rungs from 0)."""
    out = {}
    for k in range(len(plan.rungs)):
        try:
            with open(decision_path(store_path, k), "rb") as fh:
                out[k] = json.load(fh)
        except FileNotFoundError:
            break
        except (OSError, ValueError):  # cannot happen for a linked file; unreadable storage: stop here
            break
    return out


def standing(task_id: str, plan: Plan, made: dict[int, dict]) -> Standing:
    s = Standing(0)
    for k in range(len(plan.rungs)):
        d = made.get(k)
        if d is None:
            break
        if task_id in d["promoted"]:
            s.promoted.append(k)
            s.rung = k + 1
        elif task_id in d["pruned"]:
            s.pruned = True
            break
        else:
            break  # not ranked at this rung (it ended before it): it stays where it is
    return s


def waiting_at_rung(task_id: str, status, plan: Plan, made: dict[int, dict]) -> bool:
    """Whether a parked task waits at its rung: trained to the rung's budget (``status``: its
    :class:`~snnbatch.jobs.status.TaskStatus`), not pruned, the rung not decided yet. Such a task has
    nothing to run until the rung is decided."""
    s = standing(task_id, plan, made)
    return not s.pruned and plan.budget(s.rung, status.total or 0) <= status.iteration


def members(task_ids: list[str], rung: int, made: dict[int, dict]) -> list[str]:
    """The tasks of a rung: every task for the first, those promoted from the rung before for the others."""
    return sorted(task_ids) if rung == 0 else sorted(made[rung - 1]["promoted"])


def _task_ids(store_path) -> list[str]:
    from .store import task_ids

    try:
        return task_ids(store_path)
    except OSError:
        return []


def _status(store_path, task_id: str) -> dict:
    try:
        with open(Path(store_path) / "tasks" / task_id / "status" / "zarr.json", "rb") as fh:
            return json.load(fh).get("attributes", {})
    except FileNotFoundError:
        return {"state": "pending"}
    except (OSError, ValueError):
        return {}  # being written (cannot be: files are renamed into place) or unreadable: not yet decidable


def rank(plan: Plan, rung: int, entries: dict[str, float], n_members: int) -> tuple[list[str], list[str]]:
    """(promoted, pruned) of a rung from the ranked tasks' values: the best ``max(1, n_members // eta)``,
    ties broken by task id; a task without a value (NaN) ranks last."""
    sign = -1.0 if plan.better == "higher" else 1.0
    order = sorted(entries, key=lambda t: (math.isnan(entries[t]), sign * entries[t] if not math.isnan(entries[t])
                                           else 0.0, t))
    keep = max(1, n_members // plan.eta)
    return order[:keep], order[keep:]


def try_decide(store_path, by: str = "") -> list[dict]:
    """Decide every rung that can be decided now; returns the decisions this call wrote (others' are not).

    A rung can be decided when every one of its tasks has parked at its budget or ended. Safe to call
    from any number of processes at once: each decision is written exactly once.
    """
    plan = plan_of(store_path)
    if plan is None:
        return []
    from .store import read_metric_history

    ids = _task_ids(store_path)
    made = decisions(store_path, plan)
    written = []
    for k in range(len(plan.rungs)):
        if k in made:
            continue
        if k > 0 and k - 1 not in made:
            break
        rung_members = members(ids, k, made)
        budget = plan.rungs[k]
        values: dict[str, float] = {}
        for tid in rung_members:
            st = _status(store_path, tid)
            state, iteration = st.get("state"), int(st.get("iteration") or 0)
            if state == "parked" and iteration >= budget:
                hist = read_metric_history(Path(store_path) / "tasks" / tid).get(plan.metric)
                values[tid] = plan.value(hist, budget)
            elif state in ("done", "failed") or (state == "pruned"):
                continue  # ended before this rung: not ranked
            else:
                return written  # still training (or never started): not decidable yet
        promoted, pruned = rank(plan, k, values, len(rung_members))
        decision = {"rung": k, "budget": budget, "metric": plan.metric, "members": len(rung_members),
                    "promoted": promoted, "pruned": pruned,
                    "values": {t: (None if math.isnan(v) else v) for t, v in values.items()},
                    "decided_by": by or f"{socket.gethostname()}:{os.getpid()}", "time": time.time()}
        if write_once(decision_path(store_path, k), decision):
            written.append(decision)
        with open(decision_path(store_path, k), "rb") as fh:
            made[k] = json.load(fh)
    return written


def write_once(path: Path, data: dict) -> bool:
    """Create ``path`` with ``data`` unless it exists: True when this call created it.

    Written whole under a temporary name, flushed, then hard-linked to ``path`` (``link`` fails on
    an existing name), so the file appears complete or not at all, and only once.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def target(store_path, task_id: str, total: int) -> tuple[int, Standing | None]:
    """The iterations the task may train to now, and its standing (None: not a halving sweep)."""
    plan = plan_of(store_path)
    if plan is None:
        return total, None
    s = standing(task_id, plan, decisions(store_path, plan))
    return plan.budget(s.rung, total), s


def overview(store_path, task_ids: list[str]) -> dict[str, dict]:
    """Each task's rung and halving word (``promoted``, ``pruned``, or None while its rung is open),
    read from the decisions; empty for a sweep without halving."""
    plan = plan_of(store_path)
    if plan is None:
        return {}
    made = decisions(store_path, plan)
    out = {}
    for tid in task_ids:
        s = standing(tid, plan, made)
        word = "pruned" if s.pruned else "promoted" if s.promoted else None
        out[tid] = {"rung": s.rung, "halving": word, "rungs": len(plan.rungs)}
    return out
