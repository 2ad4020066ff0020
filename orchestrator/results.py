"""Reading a run's results from Python: ``snnbatch.open_run(path)``.

::

    run = snnbatch.open_run("runs/quickstart")
    run.to_pandas()    # one row per task: id, state, swept parameters, final metrics, bookkeeping
    run.to_xarray()    # per-iteration and final metrics over the sweep's axes
    for task in run:   # TaskResult: params, state, status, metrics (history), checkpoint (arrays)
        ...

Only the status records are read for the table; the metric histories (for
:meth:`Run.to_xarray` and :attr:`TaskResult.metrics`) come from each task's
newest good checkpoint, read concurrently and without its other arrays.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from numbers import Number
from typing import Any

import numpy as np

from ..jobs.errors import UserError
from ..jobs.status import TaskStatus
from ..jobs.store import TASKS, TaskStore, read_metric_history, resolve_task_id  # noqa: F401  (read_metric_history: importable here)
from .labels import FINAL, Labels
from .store import RunStore

# The training metrics every trainer records each iteration: their last values become final_<name>.
TRAINING_METRICS = ("loss", "accuracy")
# Metric columns the table always has, in this order, even when no task reported them yet.
STANDARD_METRICS = ("test_accuracy", "test_loss", "final_loss", "final_accuracy")


def metric_column(key: str) -> str:
    """The table's name for a metric of the status record: ``loss`` -> ``final_loss``, others as they are."""
    return f"{FINAL}{key}" if key in TRAINING_METRICS else key


def final_metrics(status: TaskStatus | dict) -> dict[str, float]:
    """The metrics of a status record, named as in the results table (:func:`metric_column`)."""
    record = status if isinstance(status, TaskStatus) else TaskStatus.from_attrs(status)
    return {metric_column(k): v for k, v in record.metrics.items()}


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``: how long a task ran, for tables."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


@dataclass
class TaskResult:
    """One task: its config, swept parameters, state, status record and metric history."""

    run: "Run"
    id: str
    index: int
    params: dict[str, Any]  # a swept mapping or list in its YAML flow form ("{type: cosine, to: 0.1}")
    config: dict[str, Any]
    state: str
    status: dict[str, Any]  # the status record as stored; :attr:`record` is the same, typed
    scheduler: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def record(self) -> TaskStatus:
        return TaskStatus.from_attrs(self.status)

    def _store(self) -> TaskStore:
        return TaskStore(self.run.path, self.id, mode="r")

    @cached_property
    def checkpoint(self) -> dict[str, np.ndarray]:
        """The newest good checkpoint's arrays (parameters, optimizer state, ...); empty if none."""
        state, _ = self._store().latest_checkpoint()
        return {} if state is None else dict(state.arrays) | {"iteration": np.asarray(state.iteration)}

    @cached_property
    def metrics(self) -> dict[str, np.ndarray]:
        """Per-iteration training metrics (``loss``, ``accuracy``) up to the newest checkpoint;
        element ``i`` belongs to training iteration ``i + 1``."""
        return read_metric_history(self.run.path / TASKS / self.id)

    @cached_property
    def final(self) -> dict[str, float]:
        """The metrics of the status record: ``test_*`` after the task is done, and the last
        training values as ``final_loss``, ``final_accuracy``."""
        return final_metrics(self.record)

    @property
    def iterations(self) -> int:
        """Training iterations done (the newest checkpoint or progress report)."""
        return self.record.iterations_done

    @property
    def elapsed(self) -> float:
        """Seconds of wall time over all attempts."""
        return self.record.elapsed(self.state)

    @property
    def error_line(self) -> str | None:
        return self.record.error_summary

    def __getitem__(self, key):
        return self.status.get(key)


class Run:
    """A run store opened for reading."""

    def __init__(self, path):
        self.store = RunStore.open(path)
        self.path = self.store.path
        self._axis_values: dict[str, list] = {}
        self._metric_names: list[str] | None = None

    @property
    def name(self) -> str:
        return self.store.name

    @property
    def spec(self) -> dict:
        return self.store.spec_dict()

    @cached_property
    def labels(self) -> Labels:
        """Each metric's label and better direction, as the run's algorithms declare them (recorded in the store)."""
        return Labels(self.store.metrics())

    @cached_property
    def tasks(self) -> list[TaskResult]:
        return [TaskResult(self, t["id"], t["index"], _scalar_params(t["params"]), t["config"], t["state"], t["status"],
                           t["scheduler"])
                for t in self.store.tasks()]

    def task(self, task_id: str) -> TaskResult:
        """The task of this id, or of any unique prefix of it (``run.task("3fa2c1d0")``); a
        :class:`~snnbatch.jobs.errors.StoreError` names the candidates of an ambiguous prefix."""
        wanted = resolve_task_id(self.path, task_id, ids=[t.id for t in self.tasks])
        return next(t for t in self.tasks if t.id == wanted)

    def best(self, metric: str = "accuracy") -> TaskResult:
        """The done task with the best value of ``metric``, in the direction its algorithm declares.

        A bare name is judged on held-out data where the tasks have it: ``best("accuracy")`` picks
        on ``valid_accuracy`` when the tasks validate, else on ``test_accuracy``, else on the last
        training value ``final_accuracy``; a full name (``test_loss``) is taken as it is.
        :meth:`best_metric` says which column it used. With validation, the task's final checkpoint
        (:attr:`TaskResult.checkpoint`) holds the state of its best validation.
        """
        return best_task(self, metric)[0]

    def best_metric(self, metric: str = "accuracy") -> str:
        """The column :meth:`best` judges ``metric`` on (``valid_accuracy``, ``test_accuracy``, ...)."""
        return choose_metric(self, metric)

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self):
        return iter(self.tasks)

    def __repr__(self) -> str:
        states: dict[str, int] = {}
        for t in self.tasks:
            states[t.state] = states.get(t.state, 0) + 1
        return f"<Run {self.name!r} at {self.path}: {len(self)} tasks {states}>"

    # ---------------------------------------------------------------- the sweep's axes

    @cached_property
    def axes(self) -> list[str]:
        """The swept parameters other than ``seed``, as the spec names them, in plan order."""
        keys: dict[str, None] = {}
        for t in self.tasks:
            keys.update(dict.fromkeys(k for k in t.params if k != "seed"))
        return list(keys)

    @cached_property
    def varying_axes(self) -> list[str]:
        """The axes that take more than one value in this run."""
        return [k for k in self.axes if len({repr(t.params.get(k)) for t in self.tasks}) > 1]

    def axis_values(self, axis: str) -> list:
        """The distinct values of a swept parameter: sorted when they are numbers, else in plan order."""
        if axis not in self._axis_values:
            self._axis_values[axis] = _distinct([t.params.get(axis) for t in self.tasks])
        return list(self._axis_values[axis])

    @cached_property
    def is_grid(self) -> bool:
        """Whether the tasks fill the full grid of their axes' values and ``seed``, once each
        (never for random samples, whose values are drawn, not chosen)."""
        if (self.spec.get("sweep") or {}).get("random"):
            return False
        dims = [*self.axes, "seed"]
        try:
            combos = {tuple(t.params.get(k) for k in dims) for t in self.tasks}
        except TypeError:  # a value that cannot be hashed (a list)
            return False
        return len(combos) == len(self.tasks) == math.prod(len(self.axis_values(k)) for k in dims)

    # ---------------------------------------------------------------- tables

    def histories(self) -> dict[str, dict[str, np.ndarray]]:
        """Every task's metric history (:attr:`TaskResult.metrics`), read concurrently."""
        todo = [t for t in self.tasks if "metrics" not in t.__dict__]
        if todo:
            with ThreadPoolExecutor(max_workers=16) as pool:
                for t, m in zip(todo, pool.map(lambda t: read_metric_history(self.path / TASKS / t.id), todo)):
                    t.__dict__["metrics"] = m
        return {t.id: t.metrics for t in self.tasks}

    def metric_names(self) -> list[str]:
        """The final-metric columns of :meth:`to_pandas`: the standard ones first, then any other."""
        if self._metric_names is None:
            names = dict.fromkeys(STANDARD_METRICS)
            for t in self.tasks:
                names.update(dict.fromkeys(t.final))
            self._metric_names = list(names)
        return list(self._metric_names)

    def to_pandas(self):
        """The results table: a ``pandas.DataFrame`` with one row per task, in plan order.

        Columns: ``id``, ``state``, one column per swept parameter (as the spec names it,
        e.g. ``lr`` or ``training.lr``) and ``seed``; the final metrics ``test_accuracy``,
        ``test_loss`` (held out, once the task is done), ``final_loss``, ``final_accuracy``
        (the last training iteration's values) and any other metric the trainer reports
        (NaN where a task has none yet); ``iterations`` (done), ``total``, ``attempts``,
        ``elapsed_s`` (wall time over all attempts) and ``error`` (a failed task's last
        error line, else None).
        """
        import pandas as pd

        dims = [*self.axes, "seed"]
        metrics = self.metric_names()
        rows = []
        for t in self.tasks:
            final = t.final
            row = {"id": t.id, "state": t.state}
            row.update({k: t.params.get(k) for k in dims})
            row.update({m: final.get(m, math.nan) for m in metrics})
            row.update({
                "iterations": t.iterations,
                "total": t.record.total,
                "attempts": len(t.record.attempts),
                "elapsed_s": round(t.elapsed, 3),
                "error": t.error_line if t.state == "failed" else None,
            })
            rows.append(row)
        df = pd.DataFrame(rows, columns=["id", "state", *dims, *metrics, "iterations", "total", "attempts",
                                         "elapsed_s", "error"])
        df["total"] = df["total"].astype("Int64")
        df[metrics] = df[metrics].astype(float)
        return df

    def to_xarray(self):
        """The metrics as an ``xarray.Dataset``.

        Variables: the per-iteration training metrics (``loss``, ``accuracy``: one value per
        training iteration, up to each task's newest checkpoint) and the final metrics of
        :meth:`to_pandas` (``test_accuracy``, ``test_loss``, ``final_loss``, ...).
        Coordinates ``task_id`` and ``state`` say which task each value comes from.

        Full grids (every combination of the swept values and seeds present once): the
        dimensions are the swept parameters (as the spec names them), ``seed`` and
        ``iteration`` (1, 2, ...), so ``ds.test_accuracy.mean("seed")`` averages replicates
        and ``ds.loss.sel(lr=1e-3)`` picks one learning rate. Any other sweep (random
        samples, zipped axes): the dimensions are ``task`` (the task ids, in plan order)
        and ``iteration``, and each swept parameter and ``seed`` is a coordinate along
        ``task`` (``ds.lr``), e.g. ``ds.test_accuracy.groupby("lr").mean()``.

        Tasks of unequal lengths (unfinished, failed, or a swept number of iterations) are
        padded with NaN to the longest history.
        """
        import xarray as xr

        df = self.to_pandas()
        histories = self.histories()
        hist_names = list(dict.fromkeys(k for h in histories.values() for k in h))
        length = max((len(v) for h in histories.values() for v in h.values()), default=0)
        metrics = self.metric_names()
        finals = {m: (f"final_{m}" if m in hist_names else m) for m in metrics}
        dims = [*self.axes, "seed"]
        n = len(self.tasks)

        hist = {k: np.full((n, length), np.nan) for k in hist_names}
        for i, t in enumerate(self.tasks):
            for k, v in histories[t.id].items():
                hist[k][i, : len(v)] = v

        iteration = np.arange(1, length + 1)
        if self.is_grid and n:
            coords_values = {k: self.axis_values(k) for k in dims}
            shape = tuple(len(v) for v in coords_values.values())
            where = [np.ravel_multi_index(tuple(coords_values[k].index(t.params.get(k)) for k in dims), shape)
                     for t in self.tasks]
            order = np.argsort(where)

            def arrange(a: np.ndarray, extra: tuple = ()) -> np.ndarray:
                return a[order].reshape(shape + extra)

            data = {k: ([*dims, "iteration"], arrange(v, (length,))) for k, v in hist.items()}
            data.update({finals[m]: (dims, arrange(df[m].to_numpy(float))) for m in metrics})
            coords = {k: (k, np.asarray(v)) for k, v in coords_values.items()}
            coords["task_id"] = (dims, arrange(df["id"].to_numpy(str)))
            coords["state"] = (dims, arrange(df["state"].to_numpy(str)))
        else:
            data = {k: (["task", "iteration"], v) for k, v in hist.items()}
            data.update({finals[m]: ("task", df[m].to_numpy(float)) for m in metrics})
            coords = {"task": ("task", df["id"].to_numpy(str))}
            coords.update({k: ("task", _column(df[k])) for k in dims})
            coords["task_id"] = ("task", df["id"].to_numpy(str))
            coords["state"] = ("task", df["state"].to_numpy(str))
        coords["iteration"] = ("iteration", iteration)
        ds = xr.Dataset(data, coords=coords, attrs={"name": self.name, "store": str(self.path)})
        for k in [*dims, "iteration", *data]:
            ds[k].attrs["long_name"] = self.labels(k)
        return ds


def _scalar_params(params: dict[str, Any]) -> dict[str, Any]:
    """Swept values as table cells: a mapping or a list (``lr_schedule: {type: cosine}``) becomes its
    YAML flow form, so it can label a column, a colour and a coordinate (the config keeps the value)."""
    import yaml

    return {k: yaml.safe_dump(v, default_flow_style=True, sort_keys=False, width=10**6).strip()
            if isinstance(v, (dict, list)) else v for k, v in params.items()}


def _distinct(values: list) -> list:
    try:  # by hash: the same values as comparing each with those kept (100,000 tasks of 10,000 values)
        out = list(dict.fromkeys(values))
    except TypeError:  # a value that cannot be hashed
        out = []
        for v in values:
            if v not in out:
                out.append(v)
    if all(isinstance(v, Number) and not isinstance(v, bool) for v in out):
        out.sort()
    return out


def _column(series) -> np.ndarray:
    """A table column as an array xarray can hold: numbers stay numbers, anything else becomes text."""
    values = series.to_numpy()
    if values.dtype != object:
        return values
    return np.asarray([str(v) for v in values])


# Where a bare metric name is looked for, in this order: held-out validation (what selection is made
# on, when the tasks validate), then the test metrics, then the last training value.
BEST_PREFIXES = ("valid_", "test_", "final_")


def choose_metric(run: Run, metric: str) -> str:
    """The results-table column "best ``metric``" is judged on: ``metric`` itself when a done task has
    it (``valid_accuracy``, ``test_loss``, ``final_accuracy``), else ``valid_<metric>`` where the done
    tasks have it, else ``test_<metric>``, else ``final_<metric>``. A :class:`UserError` lists the
    metrics there are when none fits."""
    done = [t for t in run.tasks if t.state == "done"]
    if not done:
        raise UserError(f"{run.path}: no task is done yet ({len(run.tasks)} tasks); "
                        f"see 'snnbatch status {run.path}'")
    have = {k for t in done for k, v in t.final.items() if _finite(v)}
    for name in (metric, *(p + metric for p in BEST_PREFIXES)):
        if name in have:
            return name
    raise UserError(f"{run.path}: no done task has a metric {metric!r} (nor "
                    f"{', '.join(p + metric for p in BEST_PREFIXES)}); they have: {', '.join(sorted(have))}")


def best_task(run: Run, metric: str) -> tuple[TaskResult, str]:
    """The done task with the best value of ``metric`` (:func:`choose_metric` says which column, the
    run's record of the metric which way is better; the first in plan order on a tie), and that column."""
    name = choose_metric(run, metric)
    higher = run.labels.higher_is_better(name)
    scored = [(t.final[name], t) for t in run.tasks if t.state == "done" and _finite(t.final.get(name))]
    best = max(scored, key=lambda s: s[0]) if higher else min(scored, key=lambda s: s[0])
    return best[1], name


def _finite(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False
