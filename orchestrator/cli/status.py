"""snnbatch status STORE"""
from __future__ import annotations

import json
import time

import click
from rich.table import Table

from ..store import RunStore
from .app import console, run_command

STATES = ("pending", "running", "interrupted", "done", "failed")
FINAL = {"done", "failed"}


def task_rows(store: RunStore) -> list[dict]:
    """One plain record per task: the stable form behind ``--json``."""
    rows = []
    now = time.time()
    for t in store.tasks():
        st = t["status"]
        attempts = st.get("attempts", [])
        elapsed = sum((a.get("ended") or (now if t["state"] == "running" else a["started"])) - a["started"]
                      for a in attempts if "started" in a)
        rows.append({
            "id": t["id"],
            "index": t["index"],
            "state": t["state"],
            "params": t["params"],
            "iteration": max(int(st.get("iteration") or 0), int(st.get("progress") or 0)),
            "total": st.get("total"),
            "loss": st.get("loss"),
            "accuracy": st.get("accuracy"),
            "test_accuracy": st.get("test_accuracy"),
            "attempts": len(attempts),
            "elapsed_s": round(elapsed, 1),
            "job_id": t["scheduler"].get("job_id"),
            "scheduler_state": t["scheduler"].get("scheduler_state"),
            "error": st.get("error_line"),
        })
    return rows


def summary(rows: list[dict]) -> dict[str, int]:
    counts = {s: 0 for s in STATES}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    return counts


def _num(v, fmt="{:.4g}"):
    return "" if v is None else fmt.format(v)


STYLE = {"done": "green", "failed": "red", "running": "cyan", "interrupted": "yellow", "pending": "dim"}


def render(store: RunStore, rows: list[dict]) -> Table:
    counts = summary(rows)
    title = f"{store.name} ({store.path}): " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    table = Table(title=title, title_justify="left")
    varying = [k for k in (rows[0]["params"] if rows else {}) if len({repr(r["params"].get(k)) for r in rows}) > 1]
    for col in ["#", "task", *varying, "state", "iter", "loss", "acc", "test acc", "tries", "time"]:
        table.add_column(col, justify="right" if col not in ("task", "state") else "left")
    show_jobs = any(r["job_id"] for r in rows)
    if show_jobs:
        table.add_column("job")
    for r in rows:
        it = f"{r['iteration']}/{r['total']}" if r["total"] else ""
        cells = [str(r["index"]), r["id"], *(_num(r["params"].get(k)) if isinstance(r["params"].get(k), float)
                                              else str(r["params"].get(k)) for k in varying)]
        state = f"[{STYLE.get(r['state'], '')}]{r['state']}[/]"
        cells += [state, it, _num(r["loss"]), _num(r["accuracy"], "{:.3f}"), _num(r["test_accuracy"], "{:.3f}"),
                  str(r["attempts"]), f"{r['elapsed_s']:.0f}s"]
        if show_jobs:
            cells.append(f"{r['job_id'] or ''} {r['scheduler_state'] or ''}".strip())
        table.add_row(*cells)
        if r["state"] == "failed" and r["error"]:
            table.add_row("", f"[red]  {r['error']}[/]", *[""] * (len(cells) - 2))
    return table


@click.command("status")
@click.argument("store_path", metavar="STORE", type=click.Path(file_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print a stable JSON document, for scripts.")
@click.option("--watch", is_flag=True, help="Refresh until every task has ended.")
@click.option("--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@run_command
def status_command(store_path, as_json, watch, interval):
    """Show each task's state, progress and metrics, read from STORE.

    \b
    Examples:
      snnbatch status runs/quickstart
      snnbatch status runs/quickstart --json | jq '.summary'
      snnbatch status runs/quickstart --watch
    """
    store = RunStore.open(store_path)
    if as_json:
        rows = task_rows(store)
        click.echo(json.dumps({"store": str(store.path), "name": store.name, "summary": summary(rows), "tasks": rows},
                              indent=2))
        return
    if not watch:
        console.print(render(store, task_rows(store)))
        return
    from rich.live import Live

    with Live(console=console, auto_refresh=False) as live:
        while True:
            rows = task_rows(store)
            live.update(render(store, rows), refresh=True)
            if all(r["state"] in FINAL for r in rows):
                break
            time.sleep(interval)


COMMANDS = [status_command]
