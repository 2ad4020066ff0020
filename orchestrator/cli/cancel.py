"""snnbatch cancel STORE [--task ID ...]"""
from __future__ import annotations

import click

from .. import backends
from ...jobs.store import resolve_task_id
from ..store import RunStore
from .app import console, run_command


@click.command("cancel")
@click.argument("store_path", metavar="STORE", type=click.Path(file_okay=False, path_type=str))
@click.option("--task", "task_ids", multiple=True, metavar="ID",
              help="Cancel only this task's job (its id or any unique prefix; repeat for several).")
@run_command
def cancel_command(store_path, task_ids):
    """Cancel the cluster jobs of STORE's unfinished tasks. Checkpoints stay; resume later.

    \b
    Example:
      snnbatch cancel runs/sweep && snnbatch resume runs/sweep --backend slurm
      snnbatch cancel runs/sweep --task 3fa2c1d0
    """
    store = RunStore.open(store_path)
    tasks = store.tasks(configs=False)
    if task_ids:
        ids = [t["id"] for t in tasks]
        wanted = {resolve_task_id(store.path, tid, ids=ids) for tid in task_ids}
        tasks = [t for t in tasks if t["id"] in wanted]
    by_backend: dict[str, list[str]] = {}
    for t in tasks:
        sched = t["scheduler"]
        if t["state"] not in ("done", "failed") and sched.get("job_id"):
            by_backend.setdefault(sched.get("backend", ""), []).append(str(sched["job_id"]))
    if not by_backend:
        console.print(f"{store.path}: no cluster jobs to cancel")
        return
    for name, job_ids in sorted(by_backend.items()):
        console.print(backends.get(name)().cancel(job_ids), highlight=False)


COMMANDS = [cancel_command]
