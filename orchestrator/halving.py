"""Successive halving from the orchestrator's side: the plan a store records, and the rung loop of the
backends that wait for their tasks.

The decisions themselves are :mod:`snnbatch.jobs.halving` (written once in the store, by whoever comes
first: a task that parks last, this loop, ``resume`` or ``status``). A backend that waits (inline,
local, dask) runs the tasks of a rung, decides it and runs the promoted tasks on, rung after rung; on
SLURM the array element that parks last submits the next rung's array itself.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..jobs import halving
from ..jobs.status import TaskStatus

if TYPE_CHECKING:
    from .backends.base import Backend, SubmitResult
    from .planner import Task
    from .store import RunStore


def runnable(store: RunStore, tasks: list[dict] | None = None, include_failed: bool = False) -> list[str]:
    """The tasks with training to do now: not ended, not running, and, in a halving sweep, not parked
    at a rung that is still open."""
    tasks = store.tasks(configs=False) if tasks is None else tasks
    skip = {"done", "running", "pruned"} | (set() if include_failed else {"failed"})
    plan = halving.plan_of(store.path)
    made = halving.decisions(store.path, plan) if plan else {}
    out = []
    for t in tasks:
        if t["state"] in skip:
            continue
        if plan is not None and t["state"] == "parked" and halving.waiting_at_rung(
                t["id"], TaskStatus.from_attrs(t["status"]), plan, made):
            continue  # parked at its rung's budget; the rung is not decided yet
        out.append(t["id"])
    return out


def decide(store: RunStore, by: str) -> list[dict]:
    """Decide the rungs that can be decided now (nothing for a sweep without halving); never raises
    for a store that cannot be written (the decision is left to the next one to look)."""
    try:
        return halving.try_decide(store.path, by=by)
    except OSError:
        return []


def drive(store: RunStore, ids: list[str], backend: Backend) -> SubmitResult:
    """Submit ``ids``; in a halving sweep run by a backend that waits, go on rung after rung until no
    task has training left to do now."""
    from .backends.base import SubmitResult

    result = backend.submit(store, ids)
    if halving.plan_of(store.path) is None or not result.waited:
        return result
    outcomes, last, tried = dict(result.outcomes), result, set()
    while not set(last.outcomes.values()) & {"interrupted", "leased"}:  # stopped, or another driver has some
        decide(store, by=f"{backend.name} driver")
        ids = runnable(store)
        if not ids or tuple(ids) in tried:
            break
        tried.add(tuple(ids))
        last = backend.submit(store, ids)
        outcomes.update(last.outcomes)
    return SubmitResult(waited=True, outcomes=outcomes, text=result.text)


def describe(spec, tasks: list[Task]) -> str | None:
    """A line for ``plan``: the rungs, how many tasks reach each, and the iterations trained at most."""
    from .planner import plan_record  # here: status and resume import no config code

    record = plan_record(spec, tasks)
    if record is None:
        return None
    plan = halving.Plan.from_record(record)
    length = min(t.config.training.iterations for t in tasks)
    counts, spent = [len(tasks)], 0
    for budget in plan.rungs:
        counts.append(max(1, counts[-1] // plan.eta))
        spent += (counts[-2] - counts[-1]) * budget
    spent += counts[-1] * length
    grid = sum(t.config.training.iterations for t in tasks)
    rungs = ", ".join(map(str, plan.rungs)) or "none"
    return (f"halving on {plan.metric} ({plan.better} is better), eta {plan.eta}: rungs at {rungs} iterations, "
            f"{' -> '.join(map(str, counts))} tasks; {counts[-1]} train{'s' * (counts[-1] == 1)} to the end; at most {spent} of the "
            f"full grid's {grid} iterations ({spent / grid:.0%})")


def check_resubmission(store_path, spec, tasks: list[Task]) -> None:
    """Refuse, before anything is written, a spec that would change a halving sweep already planned in
    the store: another halving plan, or new tasks once its first rung is decided (they could not be ranked)."""
    from ..jobs.errors import UserError

    recorded = halving.plan_of(store_path)
    if recorded is None:
        return
    from .planner import plan_record

    wanted = plan_record(spec, tasks)
    if wanted != recorded.record():
        raise UserError(f"{store_path}: holds a halving sweep planned as {recorded.record()}; this spec's "
                        f"sweep.halving gives {wanted}; choose another --store")
    made = halving.decisions(store_path, recorded)
    new = {t.id for t in tasks} - set(halving._task_ids(store_path))
    if made and new:
        raise UserError(f"{store_path}: rung 0 of its halving sweep is decided: {len(new)} new task(s) could not "
                        "be ranked with the others; choose another --store")
