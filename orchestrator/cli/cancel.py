"""snnbatch cancel STORE"""
from __future__ import annotations

import click

from .. import backends
from ..store import RunStore
from .app import console, run_command


@click.command("cancel")
@click.argument("store_path", metavar="STORE", type=click.Path(file_okay=False, path_type=str))
@run_command
def cancel_command(store_path):
    """Cancel the cluster jobs of STORE's unfinished tasks. Checkpoints stay; resume later.

    \b
    Example:
      snnbatch cancel runs/sweep && snnbatch resume runs/sweep --backend slurm
    """
    store = RunStore.open(store_path)
    by_backend: dict[str, list[str]] = {}
    for t in store.tasks():
        sched = t["scheduler"]
        if t["state"] not in ("done", "failed") and sched.get("job_id"):
            by_backend.setdefault(sched.get("backend", ""), []).append(str(sched["job_id"]))
    if not by_backend:
        console.print(f"{store.path}: no cluster jobs to cancel")
        return
    for name, job_ids in sorted(by_backend.items()):
        console.print(backends.get(name)().cancel(job_ids), highlight=False)


COMMANDS = [cancel_command]
