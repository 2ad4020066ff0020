"""``snnbatch status --watch``: a compact live view of a run, refreshed until every task has ended.

One line per state with its count (the running ones with their iterations and summed rate), then
the slowest and the fastest running tasks by iterations per second, each with its ETA. It is built
from the same records as ``status --json`` (:func:`snnbatch.orchestrator.cli.status.task_rows`), in
one pass over them, so that it stays quick for thousands of tasks.
"""
from __future__ import annotations

import time
from typing import Callable

from rich.text import Text

from .results import format_duration

STATES = ("running", "queued", "pending", "interrupted", "parked", "done", "pruned", "failed")
STYLE = {"done": "green", "failed": "bold red", "running": "cyan", "queued": "blue", "interrupted": "yellow",
         "pending": "dim", "parked": "magenta", "pruned": "dim"}
ENDED = {"done", "failed", "pruned"}
SHOWN = 3  # slowest and fastest running tasks shown
ID_CHARS = 8


def rate(row: dict) -> float | None:
    """A task's iterations per second over its attempts so far; None before its first iteration."""
    if not row.get("iteration") or not row.get("elapsed_s"):
        return None
    return row["iteration"] / row["elapsed_s"]


def eta(row: dict) -> float | None:
    """Seconds until a running task reaches its total at its rate so far; None when unknown."""
    r = rate(row)
    if r is None or not row.get("total"):
        return None
    return max(0, row["total"] - row["iteration"]) / r


def _params(row: dict, varying: list[str]) -> str:
    return " ".join(f"{k.rsplit('.', 1)[-1]}={v:.3g}" if isinstance(v, float) else f"{k.rsplit('.', 1)[-1]}={v}"
                    for k, v in ((k, row["params"].get(k)) for k in varying))


def _task_line(label: str, row: dict, varying: list[str]) -> str:
    r, left = rate(row), eta(row)
    parts = [f"{label:<8}", row["id"][:ID_CHARS], f"{row['iteration']}/{row['total'] or '?'}",
             f"{r:.3g} it/s" if r is not None else "", f"ETA {format_duration(left)}" if left is not None else ""]
    text = "  ".join(p for p in parts if p)
    params = _params(row, varying)
    return f"{text}  {params}" if params else text


def compact(name: str, path: str, rows: list[dict], counts=None, now: float | None = None) -> Text:
    """The compact view of a run's ``rows`` (the records of ``status --json``); ``counts``
    (:class:`~snnbatch.orchestrator.progress.Counts`) gives the iterations planned for the tasks
    that have not started, else only the started tasks' iterations are counted."""
    now = time.time() if now is None else now
    states: dict[str, int] = {}
    running: list[tuple[float, dict]] = []
    done_iterations = planned = 0
    for r in rows:
        states[r["state"]] = states.get(r["state"], 0) + 1
        done_iterations += r.get("iteration") or 0
        planned += r.get("total") or 0
        if r["state"] == "running" and rate(r) is not None:
            running.append((rate(r), r))
    if counts is not None:
        done_iterations, planned = counts.done, counts.total
    text = Text(no_wrap=False, overflow="fold")  # wrapped also on a console that leaves long lines to the terminal
    text.append(name, style="bold")
    progress = f", {done_iterations}/{planned} iterations ({100 * done_iterations / planned:.0f} %)" if planned else ""
    if counts is None and any(not r.get("total") for r in rows):
        progress += " of the tasks that started"
    text.append(f" ({path}): {len(rows)} tasks{progress}, at {time.strftime('%H:%M:%S', time.localtime(now))}\n")
    width = len(str(max(states.values(), default=0)))
    for state in [*STATES, *sorted(set(states) - set(STATES))]:
        if not states.get(state):
            continue
        text.append(f"  {states[state]:>{width}} {state}", style=STYLE.get(state, ""))
        if state == "running" and running:
            text.append(f"  {sum(r for r, _ in running):.3g} it/s in all")
        text.append("\n")
    if running:
        varying = _varying(rows)
        running.sort(key=lambda pair: (pair[0], pair[1]["id"]))
        slowest = running[:SHOWN]
        fastest = [pair for pair in running[::-1][:SHOWN] if pair not in slowest]
        for label, chosen in (("slowest", slowest), ("fastest", fastest)):
            for _, row in chosen:
                text.append(f"  {_task_line(label, row, varying)}\n")
                label = ""
    text.rstrip()
    return text


def _varying(rows: list[dict]) -> list[str]:
    first = rows[0]["params"] if rows else {}
    return [k for k in first if k != "seed" and len({repr(r["params"].get(k)) for r in rows}) > 1]


def watch(read: Callable[[], tuple], show: Callable[..., object], console, interval: float) -> None:
    """Show ``show(*read())`` and refresh it every ``interval`` seconds until every task has ended;
    ``read`` returns the rows of ``status --json`` first (Ctrl-C stops watching; that changes nothing
    in the store)."""
    from rich.live import Live

    try:
        with Live(console=console, auto_refresh=False) as live:
            while True:
                snapshot = read()
                live.update(show(*snapshot), refresh=True)
                if all(r["state"] in ENDED for r in snapshot[0]):
                    break
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
