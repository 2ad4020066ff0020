"""snnbatch export STORE (--best METRIC | --task ID) --out DIR, and/or --tensorboard DIR"""
from __future__ import annotations

import click

from .app import abort, console, run_command


@click.command("export")
@click.argument("store_path", metavar="STORE", type=click.Path(file_okay=False, path_type=str))
@click.option("--best", "metric", metavar="METRIC", default=None,
              help="Export the done task with the best METRIC: 'accuracy' is judged on valid_accuracy when the "
                   "tasks validate, else test_accuracy, else final_accuracy; a full name (test_loss) as it is.")
@click.option("--task", "task_id", metavar="ID", default=None,
              help="Export this task (its id or any unique prefix) instead of the best one.")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Directory for the exported task's files (needed with --best or --task).")
@click.option("--tensorboard", "tensorboard", type=click.Path(file_okay=False, path_type=str), default=None,
              help="Write every task's metric histories as TensorBoard event files into this directory.")
@run_command
def export_command(store_path, metric, task_id, out, tensorboard):
    """Take results away from STORE: one task's trained parameters, config and metric histories, and/or
    every task's histories for TensorBoard.

    \b
    Files written into --out:
      params.npz     every array of the task's final checkpoint (numpy.load); with validation, the
                       state of its best validation, with early stopping that of its best iteration
      config.yaml    the task's resolved config, every key
      metrics.csv    one row per iteration, one column per metric (validation metrics empty where
                       the task did not validate)
      export.yaml    the store, task, swept parameters, checkpoint and which state it holds, metrics
    --tensorboard DIR: one run per task (DIR/<task id>), its histories as scalars and its swept
    parameters as HParams; view them with 'tensorboard --logdir DIR'.

    \b
    Examples:
      snnbatch export runs/quickstart --best accuracy --out best/
      snnbatch export runs/quickstart --task 3fa2c1d0 --out task/
      snnbatch export runs/quickstart --tensorboard tb/ && tensorboard --logdir tb/
    """
    from ...jobs.store import resolve_task_id
    from ..export import best_task, export_task, export_tensorboard
    from ..results import Run

    if metric is None and task_id is None and tensorboard is None:
        abort("export: give --best METRIC or --task ID (with --out DIR), or --tensorboard DIR")
    if (metric is not None or task_id is not None) and out is None:
        abort("export: --best and --task write into --out DIR: give it")
    if out is not None and metric is None and task_id is None:
        abort("export: --out needs --best METRIC or --task ID (which task to export)")
    run = Run(store_path)
    if metric is not None or task_id is not None:
        chosen = None
        if task_id is not None:
            task = run.task(resolve_task_id(run.path, task_id, ids=[t.id for t in run.tasks]))
        else:
            task, column = best_task(run, metric)
            value = task.final[column]
            chosen = {"by": column, "value": float(value), "asked": metric,
                      "better": "higher" if run.labels.higher_is_better(column) else "lower"}
            console.print(f"best {metric}: judged on {column} ({chosen['better']} is better): task {task.id} "
                          f"with {column} = {value:.4g}", highlight=False)
        done = export_task(task, out, chosen)
        console.print(f"parameters from {done.about}", highlight=False)
        console.print(f"wrote {', '.join(str(f) for f in done.files)}", highlight=False)
    if tensorboard is not None:
        dirs = export_tensorboard(run, tensorboard)
        console.print(f"wrote TensorBoard runs of {len(dirs)} tasks into {tensorboard}; view them with "
                      f"'tensorboard --logdir {tensorboard}'", highlight=False)


COMMANDS = [export_command]
