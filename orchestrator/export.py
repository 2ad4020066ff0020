"""Taking a run's results away: the best task's parameters, config and histories; TensorBoard files.

:func:`~snnbatch.orchestrator.results.best_task` picks the task (on the metric
:func:`~snnbatch.orchestrator.results.choose_metric` names), :func:`export_task` writes it to a directory
(``params.npz``, ``config.yaml``, ``metrics.csv``, ``export.yaml``) and
:func:`export_tensorboard` writes every task's histories as TensorBoard event files, with the
swept parameters as HParams, through tensorboardX.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..jobs.errors import UserError
from ..jobs.store import CHECKPOINTS, TASKS, read_checkpoint
from .results import _finite, best_task, choose_metric  # noqa: F401  (best_task, choose_metric: importable here)

if TYPE_CHECKING:
    from .results import Run, TaskResult


@dataclass
class Exported:
    """What :func:`export_task` wrote and where the parameters come from."""

    task_id: str
    out: Path
    files: list[Path]
    checkpoint: str
    iteration: int
    about: str  # a sentence: which checkpoint, and which state of the task it holds


def export_task(task: "TaskResult", out, selected: dict[str, Any] | None = None) -> Exported:
    """Write ``task``'s trained state (``params.npz``: every array of its newest good checkpoint,
    the final one of a done task), its resolved config (``config.yaml``), its metric histories
    (``metrics.csv``: one row per iteration; a validation metric is empty where there was no
    validation) and where they come from (``export.yaml``) into the directory ``out``."""
    import pandas as pd
    import yaml

    state, name, _ = task._store().newest_good_checkpoint()
    if state is None:
        raise UserError(f"{task.run.path}: task {task.id} has no checkpoint yet: nothing to export")
    attrs, _ = read_checkpoint(task.run.path / TASKS / task.id / CHECKPOINTS / name, prefix="\0")  # attrs only
    record = task.record
    final = bool(attrs.get("final"))
    if final and record.selected_on:
        about = (f"checkpoint {name}, the final one of task {task.id}: the state of its best validation "
                 f"({record.selected_on}) at iteration {record.best_iteration}")
    elif final and record.best_iteration:
        about = (f"checkpoint {name}, the final one of task {task.id}: the state of its best iteration "
                 f"({record.best_iteration}, early stopping)")
    elif final:
        about = f"checkpoint {name}, the final one of task {task.id}, after iteration {state.iteration}"
    else:
        about = (f"checkpoint {name}, the newest of task {task.id} ({task.state}), after iteration "
                 f"{state.iteration}: not a finished training")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    params, config, csv, meta = (out / n for n in ("params.npz", "config.yaml", "metrics.csv", "export.yaml"))
    np.savez(params, **{k: np.asarray(v) for k, v in state.arrays.items()})
    config.write_text(yaml.safe_dump(task.config, sort_keys=False), encoding="utf-8")
    histories = {k: np.asarray(v, dtype=float) for k, v in state.metrics.items()}
    length = max((len(v) for v in histories.values()), default=0)
    table = pd.DataFrame({"iteration": np.arange(1, length + 1)})
    for k, v in histories.items():
        table[k] = np.concatenate([v, np.full(length - len(v), np.nan)])
    table.to_csv(csv, index=False)
    meta.write_text(yaml.safe_dump({
        "store": str(task.run.path), "task": task.id, "state": task.state, "params": task.params,
        "checkpoint": name, "checkpoint_iteration": int(state.iteration), "final_checkpoint": final,
        "best_iteration": record.best_iteration, "selected_on": record.selected_on, "parameters_from": about,
        "metrics": {k: float(v) for k, v in task.final.items()}, **({"chosen": selected} if selected else {}),
    }, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return Exported(task.id, out, [params, config, csv, meta], name, int(state.iteration), about)


def hparam_value(value) -> int | float | str | bool:
    """A swept value as TensorBoard's HParams take it: a number, a string or a boolean."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def export_tensorboard(run: "Run", out) -> list[Path]:
    """One TensorBoard run per task under ``out/<task id>``: every metric history as scalars (step: the
    iteration; a validation metric at the iterations it was measured) and the task's swept parameters
    and seed as HParams with its final metrics. Returns the runs' directories."""
    from tensorboardX import SummaryWriter
    from tensorboardX.summary import hparams

    out = Path(out)
    histories = run.histories()
    written = []
    for t in run.tasks:
        history = histories[t.id]
        if not history and not t.final:
            continue  # not started: nothing to show
        logdir = out / t.id
        with SummaryWriter(logdir=str(logdir)) as w:
            for name, values in history.items():
                for i, v in enumerate(np.asarray(values, dtype=float)):
                    if math.isfinite(v):
                        w.add_scalar(name, float(v), i + 1)
            finals = {f"result/{k}": float(v) for k, v in t.final.items() if _finite(v)}
            hp = {k: hparam_value(v) for k, v in t.params.items()} | {"state": t.state}
            for summary in hparams(hp, finals):
                w.file_writer.add_summary(summary)
            step = max((len(v) for v in history.values()), default=t.iterations)
            for k, v in finals.items():
                w.add_scalar(k, v, step)
        written.append(logdir)
    return written
