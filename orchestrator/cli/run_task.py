"""snnbatch run-task STORE TASK_ID: what a compute node runs."""
from __future__ import annotations

import sys

import click

from ...jobs.errors import ExitCode
from ...jobs.runner import StopFlag, install_signal_handlers, run_task
from ...jobs.store import resolve_task_id
from .app import abort, run_command

EXIT = {"done": ExitCode.DONE, "failed": ExitCode.TASKS_FAILED, "interrupted": ExitCode.INTERRUPTED,
        "leased": ExitCode.LEASED}


@click.command("run-task")
@click.argument("store_path", metavar="STORE", type=click.Path(file_okay=False, path_type=str))
@click.argument("task_id")
@click.option("--deadline", type=float, default=None, help="Checkpoint and stop at this time (Unix seconds).")
@click.option("--backend", default="cli", hidden=True)
@click.option("--job-id", default=None, hidden=True)
@run_command
def run_task_command(store_path, task_id, deadline, backend, job_id):
    """Run one task of STORE until it is done, from its newest checkpoint.

    TASK_ID: the task's id or any unique prefix of it (as 'snnbatch status STORE' lists them).

    SIGTERM, SIGUSR2 and SIGINT make it checkpoint and exit with status 3.
    Exit status 0: done; 1: the task failed (traceback in the store); 2: bad input (a task id or a
    store that cannot be used); 3: stopped after a checkpoint; 4: another live process runs this
    task; 5: the store cannot be written (full, read-only).

    \b
    Example:
      snnbatch run-task runs/quickstart 3fa2c1d0
    """
    task_id = resolve_task_id(store_path, task_id)
    stop = StopFlag()
    install_signal_handlers(stop)
    outcome = run_task(store_path, task_id, stop=stop, deadline=deadline, backend=backend, job_id=job_id)
    if outcome.state == "failed":
        click.echo(outcome.error or "", err=True)
    if outcome.store_error:
        abort(outcome.reason or f"{store_path}: the store cannot be written", ExitCode.SYSTEM)
    click.echo(f"{task_id}: {outcome.state} at iteration {outcome.iteration}" + (f" ({outcome.reason})" if outcome.reason else ""))
    sys.exit(int(EXIT[outcome.state]))


COMMANDS = [run_task_command]
