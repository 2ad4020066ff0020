"""The report of a run: the results table, plots and one self-contained HTML page.

:func:`write_report` writes into one directory:

* ``results.csv``, ``results.parquet``: :meth:`Run.to_pandas`, one row per task;
* ``curves.png``: training loss (and accuracy) against the iteration (an epoch axis on top),
  the epoch or the wall time, smoothed, one thin line per task and a thick mean per value of
  the ``group`` axis, one column of panels per value of a second axis when it has few values;
  the validation metrics dashed beside them when the tasks validate;
* ``final.png``: the chosen final metric against each swept parameter (or ``x`` alone):
  every task as a point, the mean over replicates as a line with ± one standard deviation,
  coloured by a second axis; a log axis when the values span more than a decade;
* ``heatmap.png``: the metric's mean over seeds across two swept axes (runs with two or more),
  its colour scale stated under it (:func:`colour_scale`);
* ``report.html``: all of the above on one page, images embedded, nothing to fetch.

Choices are checked against the run (:func:`choose`) before anything is written.
Each metric is labelled, and its best value chosen, as its algorithm declares it: from
the record the run store keeps (:attr:`Run.labels`), so no plugin code is imported.
Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas, so
no global backend is set and nothing needs a display (:func:`figures` returns them).
Each swept parameter keeps one colour map in every figure (:attr:`Choice.cmaps`), and an
accuracy's axes stay within [0, 1]. The training curves are drawn from :class:`Curve`
records, each styled by :func:`curve_style`.
"""
from __future__ import annotations

import base64
import html
import io
import math
import os
import time
import uuid
import warnings
from dataclasses import dataclass, field
from numbers import Number
from pathlib import Path
from typing import Any

import numpy as np

from ..jobs.errors import UserError
from ..jobs.version import snnbatch_version
from .labels import LABELS, Labels  # noqa: F401  (LABELS: importable here)
from .results import Run, format_duration

FILES = ("report.html", "results.csv", "results.parquet", "curves.png", "final.png", "heatmap.png", "halving.png")
STYLE = {
    "font.size": 13,
    "axes.titlesize": 15,
    "axes.titleweight": "bold",
    "axes.labelsize": 14,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 12,
    "legend.title_fontsize": 12,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.8,
    "figure.titlesize": 17,
    "figure.titleweight": "bold",
}
DPI = 110
MAX_PANEL_VALUES = 4  # a second axis with at most this many values splits the training curves into panels
MAX_COLOURS = 8  # an axis with more values than this is not used for colours
MAX_HEATMAP = 20  # nor for a heatmap's rows or columns
MAX_TABLE_ROWS = 1000  # the page's table of tasks shows at most this many (results.csv holds them all)
MAX_FAILED_LINES = 20  # more failed tasks than this: the page groups their errors by message
MANY_LINES = 200  # more runs than this in one colour of a panel: their thin lines drawn as one collection
# One colour map per swept parameter, in the order of the sweep's axes: single-hue maps for numbers
# (light to dark with the value), qualitative ones for anything else; the heatmap's metric is viridis.
SEQUENTIAL = ("Blues", "Oranges", "Greens", "Purples", "Reds", "Greys")
QUALITATIVE = ("tab10", "Dark2", "Set1", "Set2")
METRIC_CMAP = "viridis"
ONE_COLOUR = "#2c5d8f"  # the curves and points of a figure without a colour axis
CURVES_X = ("iteration", "epoch", "wall-time")
HEATMAP_SCALES = ("anchored", "min-max")


def label(name: str, metrics: dict | None = None) -> str:
    """The axis label of a parameter, metric or dimension: ``lr`` -> ``learning rate``; a metric's
    from ``metrics``, a store's record of them (:meth:`Run.labels` reads it), else its name."""
    return Labels(metrics)(name)


def higher_is_better(metric: str, metrics: dict | None = None) -> bool:
    """Which way ``metric`` is better, from ``metrics``, a store's record (see :func:`label`)."""
    return Labels(metrics).higher_is_better(metric)


def fmt_value(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def fmt_metric(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def decimals(values) -> int:
    """Decimal places that show 3 significant digits of typical values: 0.934, 2.31, 41.7."""
    values = np.abs(np.asarray(values, dtype=float))
    values = values[np.isfinite(values) & (values > 0)]
    if not len(values):
        return 3
    return int(min(6, max(0, 2 - math.floor(math.log10(np.median(values))))))


# ------------------------------------------------------------------ choosing what to plot


@dataclass
class Choice:
    """What the report shows: the final metric, the axes, and which axis colours and splits."""

    metric: str
    axes: list[str]  # the varying swept parameters, seed excluded
    drawn: set[str]  # those drawn from a continuous distribution (sweep.random: uniform, loguniform)
    x_axes: list[str]  # one panel of the final-metric figure each
    group: str | None  # colours the training curves
    heatmap: tuple[str, str] | None  # (columns, rows)
    notes: list[str] = field(default_factory=list)
    labels: Labels = field(default_factory=Labels)  # the run's metric labels and better directions
    cmaps: dict[str, str] = field(default_factory=dict)  # each swept parameter's colour map, in every figure
    curves_x: str = "iteration"  # the training curves' x axis: iteration, epoch or wall-time
    heatmap_scale: str = "anchored"  # anchored: an accuracy's colours span chance level (or 0) to 1; min-max

    def colours(self, run: Run, axis: str | None) -> dict:
        """A colour per value of ``axis``, from its own colour map (:data:`SEQUENTIAL` for numbers,
        :data:`QUALITATIVE` otherwise), the same in every panel and figure; one colour without an axis."""
        if axis is None:
            return {None: ONE_COLOUR}
        import matplotlib

        values = run.axis_values(axis)
        cmap = matplotlib.colormaps[self.cmaps[axis]]
        if self.cmaps[axis] in QUALITATIVE:
            return {v: cmap(i % cmap.N) for i, v in enumerate(values)}
        pos = np.linspace(0.4, 1.0, len(values)) if len(values) > 1 else [0.75]
        return {v: cmap(p) for v, p in zip(values, pos)}

    def discrete(self, run: Run, axis: str, most: int = 8) -> bool:
        """Whether ``axis`` takes a few chosen values (colours, panels, heatmap cells), not drawn ones."""
        return axis not in self.drawn and len(run.axis_values(axis)) <= most


def _resolve_axis(run: Run, name: str, option: str, axes: list[str]) -> str:
    if name in axes:
        return name
    short = [a for a in axes if a.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1]]
    if len(short) == 1:
        return short[0]
    if not axes:
        raise UserError(f"{option} {name!r}: {run.path} sweeps no parameter besides the seed; leave {option} out")
    valid = ", ".join(axes)
    if name == "seed":
        raise UserError(f"{option} seed: seeds are replicates, shown as the spread of each point; "
                        f"choose a swept parameter: {valid}")
    if name in run.axes:
        raise UserError(f"{option} {name!r}: takes a single value in this run; swept parameters that vary: {valid}")
    raise UserError(f"{option} {name!r}: not a swept parameter of {run.path}; choose from: {valid}")


def choose(run: Run, metric: str | None = None, x: str | None = None, group: str | None = None,
           curves_x: str = "iteration", heatmap_scale: str = "anchored") -> Choice:
    """Check the options against the run and fill in the defaults; :class:`UserError` naming the
    option otherwise.

    metric: ``test_accuracy`` when a task has one, else ``test_loss``, else ``final_loss``.
    group: the first varying axis (other than ``x``). x: every varying axis gets a panel.
    The heatmap spans ``x`` (columns, default the first axis) and ``group`` (rows).
    curves_x: the training curves against ``iteration`` (an epoch axis on top when the tasks share
    their iterations per epoch), ``epoch`` or ``wall-time``. heatmap_scale: ``anchored`` (an accuracy's
    colours from chance level, or 0, to 1) or ``min-max`` (the cells' range).
    """
    if curves_x not in CURVES_X:
        raise UserError(f"--curves-x {curves_x!r}: choose from: {', '.join(CURVES_X)}")
    if heatmap_scale not in HEATMAP_SCALES:
        raise UserError(f"--heatmap-scale {heatmap_scale!r}: choose from: {', '.join(HEATMAP_SCALES)}")
    labels = run.labels
    df_metrics = run.metric_names()
    present = [m for m in df_metrics if any(m in t.final for t in run.tasks)]
    if metric is None:
        metric = next((m for m in ("test_accuracy", "test_loss", "final_loss") if m in present),
                      present[0] if present else "final_loss")
    elif metric not in df_metrics:
        alias = f"final_{metric}"
        if alias in df_metrics:
            metric = alias
        else:
            raise UserError(f"--metric {metric!r}: not a metric of {run.path}; choose from: "
                            f"{', '.join(present or df_metrics)}")
    axes = list(run.varying_axes)
    if x is not None:
        x = _resolve_axis(run, x, "--x", axes)
    if group is not None:
        group = _resolve_axis(run, group, "--group", axes)
    if x is not None and x == group:
        raise UserError(f"--x and --group both name {x!r}: choose two different swept parameters")
    notes = []
    if not any(m == metric for t in run.tasks for m in t.final):
        notes.append(f"No task has reported {labels(metric)} yet.")
    drawn = drawn_axes(run)
    choice = Choice(metric=metric, axes=axes, drawn=drawn, x_axes=[x] if x else axes, group=None, heatmap=None,
                    notes=notes, labels=labels, cmaps=colour_maps(run, axes), curves_x=curves_x,
                    heatmap_scale=heatmap_scale)
    choice.group = group or next((a for a in axes if a != x and choice.discrete(run, a)), None)
    grid_axes = [a for a in axes if choice.discrete(run, a, MAX_HEATMAP)]
    if len(grid_axes) >= 2:
        cols = x if x in grid_axes else next(a for a in grid_axes if a != choice.group)
        rows = choice.group if choice.group in grid_axes and choice.group != cols else next(
            a for a in grid_axes if a != cols)
        choice.heatmap = (cols, rows)
    return choice


def colour_maps(run: Run, axes: list[str]) -> dict[str, str]:
    """Each swept parameter's own colour map, so that one colour never means two things."""
    numbers, others = iter(SEQUENTIAL * 2), iter(QUALITATIVE * 3)
    return {a: next(numbers) if all(_is_number(v) for v in run.axis_values(a)) else next(others) for a in axes}


def chance_level(run: Run) -> float | None:
    """1 / the number of classes, when the tasks' ``dataset.n_classes`` says it (the lowest, when swept)."""
    classes = {(t.config.get("dataset") or {}).get("n_classes") for t in run.tasks}
    if not classes or not all(isinstance(n, int) and n >= 2 for n in classes):
        return None
    return 1.0 / max(classes)


def drawn_axes(run: Run) -> set[str]:
    """The swept parameters drawn from a continuous distribution: every task has its own value."""
    random = (run.spec.get("sweep") or {}).get("random") or {}
    return {k for k, dist in (random.get("params") or {}).items()
            if isinstance(dist, dict) and (dist.get("uniform") or dist.get("loguniform"))}


# ------------------------------------------------------------------ figures


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _is_number(v) -> bool:
    return isinstance(v, Number) and not isinstance(v, bool)


def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average that ignores NaN and keeps the ends (fewer points there)."""
    if window <= 1 or len(y) < 3:
        return y
    ok = np.isfinite(y)
    kernel = np.ones(window)
    num = np.convolve(np.where(ok, y, 0.0), kernel, mode="same")
    den = np.convolve(ok.astype(float), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~ok] = np.nan
    return out


def _log_span(values: list) -> bool:
    nums = [v for v in values if _is_number(v)]
    return len(nums) == len(values) and len(nums) > 1 and min(nums) > 0 and max(nums) / min(nums) > 10


def _value_ticks(ax, values: list, log: bool) -> None:
    """Ticks at the swept values themselves, when there are few."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    if len(values) <= 10:
        ax.xaxis.set_major_locator(FixedLocator(values))
        ax.set_xticklabels([fmt_value(v) for v in values])
        if log:
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_minor_formatter(NullFormatter())


def iterations_per_epoch(task) -> int | None:
    """A task's training iterations per epoch, when its length was given in epochs; else None."""
    training = task.config.get("training") or {}
    total, epochs = task.record.total, training.get("epochs")
    if training.get("iterations") is not None or not total or not epochs or total % epochs:
        return None
    return total // epochs


def wall_time(task, length: int) -> np.ndarray:
    """The wall time (s) at which a task reached each of its ``length`` iterations, over all its
    attempts: each attempt's span from its start to its end (or last heartbeat) spread evenly over
    the iterations it trained up to its last checkpoint (those redone after a resume count at their
    last attempt; an attempt that saved none still counts its time); NaN where unknown."""
    out = np.full(length, np.nan)
    spent = 0.0
    for a in task.record.attempts:
        start, first = a.get("started"), a.get("from_iteration") or 0
        end = a.get("ended") or (task.status.get("heartbeat") if a is task.record.attempts[-1] else None)
        last = a.get("checkpointed") if a.get("ended") else task.record.iterations_done
        if start is None or end is None:
            continue
        duration = max(0.0, end - start)
        if last is not None and last > first:
            i = np.arange(first + 1, min(last, length) + 1)
            out[i - 1] = spent + duration * (i - first) / (last - first)
        spent += duration
    return out


@dataclass
class Curve:
    """One task's line in a panel: where it goes and how it looks; the training curves are drawn
    from a list of these (:func:`curve_style` chooses the look)."""

    task: Any
    x: np.ndarray
    y: np.ndarray
    validation: bool  # a held-out (validation) metric: dashed, drawn at its validations only


def curve_style(curve: Curve, colour, mean: bool) -> dict:
    """The matplotlib keywords of a curve: thin and faint for one run, thick for a mean; dashed
    with markers for validation."""
    style = {"color": colour, "lw": 2.6 if mean else 0.9, "alpha": 1.0 if mean else 0.45}
    if curve.validation:
        style.update(ls="--", marker="o", ms=4 if mean else 2.5)
    return style


def curve_x(choice: Choice, task, length: int) -> np.ndarray:
    """The x values of a task's first ``length`` iterations, in the unit of ``choice.curves_x``."""
    iteration = np.arange(1, length + 1, dtype=float)
    if choice.curves_x == "epoch":
        per_epoch = iterations_per_epoch(task)
        return iteration / per_epoch if per_epoch else np.full(length, np.nan)
    if choice.curves_x == "wall-time":
        return wall_time(task, length)
    return iteration


def curve_rows(histories: dict, tasks: list, labels: Labels) -> list[tuple[str, str | None]]:
    """The training curves' rows: (training metric, its validation metric or None); loss first,
    then accuracy, then any validation metric of neither."""
    names = dict.fromkeys(k for t in tasks for k in histories[t.id])
    validation = {m for m in names if (labels.metrics.get(m) or {}).get("validation") or m.startswith("valid_")}
    rows = [(m, f"valid_{m}" if f"valid_{m}" in validation else None) for m in ("loss", "accuracy") if m in names]
    paired = {v for _, v in rows}
    return rows + [(None, v) for v in validation if v not in paired]


def _row_label(labels: Labels, metric: str | None, valid: str | None) -> str:
    """A row's y label: the training metric's label; with validation beside it, what both measure
    (the validation metric's label without its "validation")."""
    if metric is None or valid is None:
        return labels(metric or valid)
    text = labels(valid)
    return text[len("validation "):] if text.startswith("validation ") else labels(metric)


def _mean(curves: list[np.ndarray]) -> np.ndarray:
    with warnings.catch_warnings():  # 'mean of empty slice' past the end of shorter runs
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.vstack(curves), axis=0)


def halving_figure(run: Run, choice: Choice):
    """A halving sweep's metric against iterations, one line per task: those pruned faded, the rung
    budgets marked; None for a sweep without halving."""
    from ..jobs import halving

    plan = halving.plan_of(run.path)
    if plan is None:
        return None
    histories = run.histories()
    words = halving.overview(run.path, [t.id for t in run.tasks])
    fig = _figure(8.0, 4.6)
    ax = fig.subplots()
    for pruned in (True, False):  # the pruned ones first, under the others
        for t in run.tasks:
            if (words[t.id]["halving"] == "pruned") != pruned:
                continue
            y = np.asarray(histories[t.id].get(plan.metric, []), dtype=float)
            x = np.arange(1, len(y) + 1)
            ok = np.isfinite(y)
            style = {"color": "#999999", "alpha": 0.35, "lw": 0.8} if pruned else {"color": "#3b528b", "lw": 1.8}
            ax.plot(x[ok], y[ok], marker="." if plan.validation else None, **style)
    for k, budget in enumerate(plan.rungs):
        ax.axvline(budget, color="#b2182b", ls="--", lw=1)
        ax.annotate(f"rung {k}", (budget, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                    textcoords="offset points", color="#b2182b", fontsize=10)
    ax.set_xlabel(choice.labels("iteration"))
    ax.set_ylabel(choice.labels(plan.metric))
    fig.suptitle(f"Successive halving (eta {plan.eta})")
    _caption(fig, "grey: pruned at a rung  ·  blue: promoted  ·  dashed: rung budgets")
    return fig


def curves_figure(run: Run, choice: Choice):
    """Training (and, where the tasks validate, validation) curves: one thin line per run and a thick
    mean per value of ``choice.group`` (just one line each when every value has one run); None
    without histories."""
    labels = choice.labels
    histories = run.histories()
    tasks = [t for t in run.tasks if histories[t.id].get("loss") is not None and len(histories[t.id]["loss"])]
    if not tasks:
        return None
    rows = curve_rows(histories, tasks, labels)
    group = choice.group
    panel = next((a for a in choice.axes if a != group and choice.discrete(run, a, MAX_PANEL_VALUES)), None)
    if len(choice.x_axes) == 1 and choice.x_axes[0] != group and choice.discrete(run, choice.x_axes[0],
                                                                                  MAX_PANEL_VALUES):
        panel = choice.x_axes[0]
    panel_values = run.axis_values(panel) if panel else [None]
    group_values = run.axis_values(group) if group else [None]
    colours = choice.colours(run, group)
    length = max(len(histories[t.id]["loss"]) for t in tasks)
    window = max(1, int(round(length / 40)))
    xs = {t.id: curve_x(choice, t, len(histories[t.id]["loss"])) for t in tasks}

    ncols, nrows = len(panel_values), len(rows)
    fig = _figure(max(7.0, 5.2 * ncols + 1.5), 3.9 * nrows + 1.2)
    axs = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey="row")
    several = False  # whether some line is a mean of more than one run
    validating = False
    for r, (metric, valid) in enumerate(rows):
        all_y = []
        for c, pv in enumerate(panel_values):
            ax = axs[r][c]
            for gv in group_values:
                members = [t for t in tasks if (panel is None or t.params.get(panel) == pv)
                           and (group is None or t.params.get(group) == gv)]
                if not members:
                    continue
                name = fmt_value(gv) if group else "mean" if len(members) > 1 else "run"
                for m, is_valid in ((metric, False), (valid, True)):
                    if m is None:
                        continue
                    lines = []
                    for t in members:
                        y = np.asarray(histories[t.id].get(m, []), dtype=float)
                        if is_valid:
                            keep = np.isfinite(y)
                            lines.append(Curve(t, xs[t.id][: len(y)][keep], y[keep], True))
                        else:
                            lines.append(Curve(t, xs[t.id][: len(y)], _smooth(y, window), False))
                    lines = [ln for ln in lines if len(ln.y)]
                    if not lines:
                        continue
                    validating = validating or is_valid
                    all_y += [ln.y[np.isfinite(ln.y)] for ln in lines]
                    several = _plot_lines(ax, lines, colours[gv], name if not is_valid else None) or several
            if r == 0 and panel:
                ax.set_title(f"{labels(panel)} = {fmt_value(pv)}")
            if r == nrows - 1:
                ax.set_xlabel(_x_label(choice))
            if c == 0:
                ax.set_ylabel(_row_label(labels, metric, valid))
        ys = np.concatenate(all_y) if all_y else np.array([])
        kind = metric or valid
        if labels.is_accuracy(kind):
            _clip_fraction(axs[r][0])
        elif labels.base(kind) == "loss" and len(ys) and ys.min() > 0 and ys.max() / ys.min() > 20:
            axs[r][0].set_yscale("log")
    epochs = _epoch_axis(choice, tasks, axs[0])
    handles, names = axs[0][0].get_legend_handles_labels()
    if validating:
        from matplotlib.lines import Line2D

        handles += [Line2D([], [], color="#555555", lw=2), Line2D([], [], color="#555555", lw=2, ls="--", marker="o")]
        names += ["training", "validation"]
    if handles and (group or validating):
        fig.legend(handles, names, title=labels(group) if group else None, loc="outside right center")
    caption = _curves_caption(choice, group, window, several, validating, epochs)
    fig.suptitle("Training and validation curves" if validating else "Training curves")
    _caption(fig, caption)
    return fig


def _plot_lines(ax, lines: list[Curve], colour, name: str | None) -> bool:
    """The runs of one colour: one thick line for a single run; thin lines and their thick mean for
    several on the same x values; for runs on x values of their own (wall time), one line each.
    Returns whether a mean was drawn."""
    longest = max(lines, key=lambda ln: len(ln.x))
    if len(lines) == 1 or not all(np.array_equal(ln.x, longest.x[: len(ln.x)], equal_nan=True) for ln in lines):
        for ln in lines:
            ax.plot(ln.x, ln.y, **curve_style(ln, colour, mean=len(lines) == 1), label=name)
            name = None
        return False
    if len(lines) > MANY_LINES:  # one artist for them all: the same lines, drawn in a fraction of the time
        _line_collection(ax, lines, curve_style(lines[0], colour, mean=False))
    else:
        for ln in lines:
            ax.plot(ln.x, ln.y, **curve_style(ln, colour, mean=False))
    padded = [np.concatenate([ln.y, np.full(len(longest.y) - len(ln.y), np.nan)]) for ln in lines]
    ax.plot(longest.x, _mean(padded), **curve_style(lines[0], colour, mean=True), label=name)
    return True


def _line_collection(ax, lines: list[Curve], style: dict) -> None:
    """Thin lines of one style as one :class:`~matplotlib.collections.LineCollection` (each still its own
    line, so where many overlap they look denser), their markers as one line of points."""
    from matplotlib.collections import LineCollection

    paths = [np.column_stack([ln.x, ln.y]) for ln in lines if len(ln.x)]
    ax.add_collection(LineCollection(paths, colors=[style["color"]], linewidths=style["lw"], alpha=style["alpha"],
                                     linestyles=style.get("ls", "-")), autolim=False)
    points = np.concatenate(paths)
    ax.update_datalim(points[np.isfinite(points).all(axis=1)])  # (NaN where a run has no value: a gap)
    if style.get("marker"):
        ax.plot(np.concatenate([p[:, 0] for p in paths]), np.concatenate([p[:, 1] for p in paths]), ls="none",
                marker=style["marker"], ms=style["ms"], color=style["color"], alpha=style["alpha"])
    ax.autoscale_view()


def _x_label(choice: Choice) -> str:
    return {"iteration": choice.labels("iteration"), "epoch": "epoch",
            "wall-time": "wall time (s)"}[choice.curves_x]


def _clip_fraction(ax) -> None:
    """An accuracy's y axis: as matplotlib fits it to what is drawn (error bars too), within [0, 1]."""
    lo, hi = ax.get_ylim()
    if hi <= 0 or lo >= 1:
        ax.set_ylim(0, 1)
    else:
        ax.set_ylim(max(0.0, lo), min(1.0, hi))


def _epoch_axis(choice: Choice, tasks: list, top_axes) -> str:
    """Against iterations: an epoch axis on top of each top panel when every task has the same
    iterations per epoch. Returns what the caption says about epochs."""
    if choice.curves_x != "iteration":
        if choice.curves_x == "epoch" and any(iterations_per_epoch(t) is None for t in tasks):
            return "runs whose length is not given in epochs are left out"
        return ""
    per_epoch = {iterations_per_epoch(t) for t in tasks}
    if len(per_epoch) != 1 or None in per_epoch:
        return "" if None in per_epoch else "the runs differ in iterations per epoch (--curves-x epoch)"
    n = per_epoch.pop()
    for ax in top_axes:
        top = ax.secondary_xaxis("top", functions=(lambda i: i / n, lambda e: e * n))
        top.set_xlabel("epoch")
    return f"top axis: epochs of {n} iterations"


def _curves_caption(choice: Choice, group: str | None, window: int, several: bool, validating: bool,
                    epochs: str) -> str:
    """What the curves figure shows, in words true to it."""
    labels = choice.labels
    smoothed = "training: " if validating else ""
    smooth = f" ({smoothed}moving average over {window} iterations)" if window > 1 else ""
    if several:
        mean = f"mean per {labels(group)}" if group else "mean"
        parts = [f"thin: single runs{smooth}", f"thick: {mean}"]
    else:
        parts = [f"one line per run{smooth}"]
    if validating:
        parts.append("dashed: validation, at each validation")
    if choice.curves_x == "wall-time":
        parts.append("wall time spread evenly over each attempt's iterations")
    if epochs:
        parts.append(epochs)
    return "  ·  ".join(parts)


def _caption(fig, text: str) -> None:
    """A line (or a few) of small grey text under the figure, wrapped at its width."""
    import textwrap

    width = max(40, int(fig.get_figwidth() * 11))
    fig.supxlabel("\n".join(textwrap.wrap(text, width)), fontsize=12, color="#555555", fontweight="normal")


def _finished(df, metric: str):
    return df[np.isfinite(df[metric].to_numpy(float))]


def final_figure(run: Run, choice: Choice, df):
    labels = choice.labels
    metric = choice.metric
    data = _finished(df, metric)
    if data.empty:
        return None
    if not choice.x_axes:
        return _seeds_figure(data, metric, labels)
    n = len(choice.x_axes)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = _figure(max(7.5, 6.0 * ncols), 4.9 * nrows + 0.6)
    axs = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    pooled = False
    for k, xa in enumerate(choice.x_axes):
        ax = axs[k // ncols][k % ncols]
        colour_axis = choice.group if choice.group and choice.group != xa else next(
            (a for a in choice.axes if a != xa and choice.discrete(run, a)), None)
        pooled = pooled or bool(set(choice.axes) - {xa, colour_axis})
        x_values = run.axis_values(xa)
        numeric = all(_is_number(v) for v in x_values)
        log = _log_span(x_values)
        span = (min(x_values), max(x_values)) if numeric else None
        c_values = run.axis_values(colour_axis) if colour_axis else [None]
        colours = choice.colours(run, colour_axis)
        for j, cv in enumerate(c_values):
            sub = data if colour_axis is None else data[data[colour_axis].map(lambda v: v == cv)]
            if sub.empty:
                continue
            dodge = (j - (len(c_values) - 1) / 2) * 0.06 if len(c_values) > 1 and xa not in choice.drawn else 0.0
            xs, means, stds, counts = [], [], [], []
            points_x, points_y = [], []
            at_x = _by_value(sub[xa].tolist(), sub[metric].to_numpy(float))
            for xv in x_values:
                vals = at_x(xv)
                if not len(vals):
                    continue
                pos = _position(xv, x_values, numeric, log, dodge, span)
                points_x.append(np.full(len(vals), pos))
                points_y.append(vals)
                xs.append(pos)
                means.append(vals.mean())
                stds.append(vals.std(ddof=1) if len(vals) > 1 else 0.0)
                counts.append(len(vals))
            if not xs:
                continue
            # every run of this colour in one call (one per x value costs a second per thousand values)
            ax.scatter(np.concatenate(points_x), np.concatenate(points_y), s=44, color=colours[cv], alpha=0.6,
                       edgecolors="white", linewidths=0.6, zorder=5, clip_on=False)
            if max(counts) > 1:  # replicates: mean and spread
                ax.errorbar(xs, means, yerr=stds, color=colours[cv], lw=2.4, capsize=5, capthick=1.8,
                            marker="o", ms=6, zorder=4, label=fmt_value(cv) if colour_axis else "mean ± s.d.")
            else:
                ax.plot([], [], color=colours[cv], marker="o", lw=0, label=fmt_value(cv) if colour_axis else "tasks")
        if log:
            ax.set_xscale("log")
        if numeric:
            if xa not in choice.drawn:
                _value_ticks(ax, x_values, log)
            if len(x_values) > 1:
                lo, hi = min(x_values), max(x_values)
                if log:
                    pad = (hi / lo) ** 0.08
                    ax.set_xlim(lo / pad, hi * pad)
                else:
                    pad = (hi - lo) * 0.08
                    ax.set_xlim(lo - pad, hi + pad)
        else:
            ax.set_xticks(range(len(x_values)), [fmt_value(v) for v in x_values])
            ax.set_xlim(-0.5, len(x_values) - 0.5)
        ax.set_xlabel(labels(xa))
        if k % ncols == 0:
            ax.set_ylabel(labels(metric))
        if colour_axis or len(data) > 1:
            ax.legend(title=labels(colour_axis) if colour_axis else None, loc="best")
    for k in range(n, nrows * ncols):
        axs[k // ncols][k % ncols].set_visible(False)
    reps = _replicates(data, choice.axes)
    if pooled:
        spread = "  ·  line and bars: mean ± s.d. of the runs at each value"
    else:
        spread = f"  ·  line and bars: mean ± s.d. over {reps}" if reps else ""
    if labels.is_accuracy(metric):
        _clip_fraction(axs[0][0])
    fig.suptitle(f"Final {labels(metric)}")
    _caption(fig, f"points: single runs{spread}")
    return fig


def _by_value(keys: list, values: np.ndarray):
    """``at(k)``: the ``values`` whose key equals ``k`` (in their order), grouped in one pass (comparing each
    key with every value of an axis of 10,000 values is most of a report of 100,000 tasks)."""
    try:
        groups: dict = {}
        for i, k in enumerate(keys):
            groups.setdefault(k, []).append(i)
    except TypeError:  # a key that cannot be hashed: compared one by one
        return lambda k: values[[i for i, key in enumerate(keys) if key == k]]
    empty = np.array([], dtype=values.dtype)
    return lambda k: values[groups[k]] if k in groups else empty


def _seeds_figure(data, metric: str, labels: Labels):
    """A run of replicates only: the metric of each seed, the mean and ± one s.d."""
    seeds, vals = data["seed"].to_numpy(), data[metric].to_numpy(float)
    fig = _figure(9.0, 4.6)
    ax = fig.subplots()
    mean = vals.mean()
    places = decimals(vals)
    if len(vals) > 1:
        sd = vals.std(ddof=1)
        ax.axhspan(mean - sd, mean + sd, color=ONE_COLOUR, alpha=0.12, lw=0, label=f"± s.d. ({sd:.{places}f})")
    ax.axhline(mean, color=ONE_COLOUR, lw=2.4, label=f"mean ({mean:.{places}f})")
    ax.scatter(seeds, vals, s=60, color=ONE_COLOUR, edgecolors="white", linewidths=0.8, zorder=5, label="single runs")
    if len(seeds) <= 20:
        ax.set_xticks(seeds, [str(s) for s in seeds])
    ax.margins(x=0.12)
    ax.set_xlabel(labels("seed"))
    ax.set_ylabel(labels(metric))
    if labels.is_accuracy(metric):
        _clip_fraction(ax)
    fig.legend(loc="outside right center")
    fig.suptitle(f"Final {labels(metric)}")
    return fig


def _replicates(data, axes: list[str]) -> str:
    """How many seeds each point of a figure averages, in words ('2 seeds', '2-3 seeds')."""
    if data.empty:
        return ""
    sizes = data.groupby([data[a].map(repr) for a in axes] or [np.zeros(len(data))], sort=False).size()
    lo, hi = int(sizes.min()), int(sizes.max())
    if hi <= 1:
        return ""
    return f"{lo} seeds" if lo == hi else f"{lo}–{hi} seeds"


def _position(xv, values: list, numeric: bool, log: bool, dodge: float, bounds: tuple | None = None) -> float:
    """Where a point of value ``xv`` goes, moved by ``dodge``; ``bounds``: (min, max) of ``values``, when known."""
    if not numeric:
        return values.index(xv) + dodge * 2
    lo, hi = bounds or (min(values), max(values))
    if log:
        return xv * 10 ** (dodge * 0.5 * math.log10(hi / lo) / max(1, len(values) - 1))
    span = (hi - lo) or abs(xv) or 1.0
    return xv + dodge * span / max(1, len(values) - 1) * 0.6


def heatmap_figure(run: Run, choice: Choice, df):
    labels = choice.labels
    if choice.heatmap is None:
        return None
    cols, rows = choice.heatmap
    metric = choice.metric
    data = _finished(df, metric)
    if data.empty:
        return None
    cv, rv = run.axis_values(cols), run.axis_values(rows)
    mean = np.full((len(rv), len(cv)), np.nan)
    std = np.full_like(mean, np.nan)
    count = np.zeros_like(mean, dtype=int)
    at = _by_value(list(zip(data[rows].tolist(), data[cols].tolist())), data[metric].to_numpy(float))
    for i, r in enumerate(rv):
        for j, c in enumerate(cv):
            vals = at((r, c))
            if len(vals):
                mean[i, j], count[i, j] = vals.mean(), len(vals)
                std[i, j] = vals.std(ddof=1) if len(vals) > 1 else np.nan
    if np.isfinite(mean).sum() < max(2, mean.size // 2):  # a random sweep: mostly empty cells
        return None
    import matplotlib

    name = METRIC_CMAP if labels.higher_is_better(metric) else f"{METRIC_CMAP}_r"
    cmap = matplotlib.colormaps[name].with_extremes(bad="#eeeeee")
    vmin, vmax, scale = colour_scale(run, choice, mean)
    fig = _figure(min(13.0, 3.3 + 1.3 * len(cv)), min(11.0, 2.4 + 0.95 * len(rv)))
    ax = fig.subplots()
    ax.grid(False)
    im = ax.imshow(np.ma.masked_invalid(mean), cmap=cmap, origin="lower", aspect="auto", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(cv)), [fmt_value(v) for v in cv])
    ax.set_yticks(range(len(rv)), [fmt_value(v) for v in rv])
    ax.set_xlabel(labels(cols))
    ax.set_ylabel(labels(rows))
    for s in ax.spines.values():
        s.set_visible(False)
    places = decimals(mean)
    for i in range(len(rv)):
        for j in range(len(cv)):
            if not np.isfinite(mean[i, j]):
                continue
            r, g, b, _ = cmap(im.norm(mean[i, j]))
            text = f"{mean[i, j]:.{places}f}"
            if np.isfinite(std[i, j]) and len(cv) <= 8:
                text += f"\n± {std[i, j]:.{places}f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=13 if len(cv) <= 6 else 10,
                    color="black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white")
    below = bool(np.nanmin(mean) < vmin)
    bar = fig.colorbar(im, ax=ax, shrink=0.9, extend="min" if below else "neither")
    bar.set_label(labels(metric))
    others = [a for a in choice.axes if a not in (cols, rows)]
    reps = _replicates(data, [cols, rows, *others])
    over = " and ".join([*([reps] if reps else []), *(labels(a) for a in others)])
    ax.set_title(f"{labels(metric).capitalize()}" + (f", mean ± s.d. over {over}" if over else ""))
    _caption(fig, scale)
    return fig


def colour_scale(run: Run, choice: Choice, cells: np.ndarray) -> tuple[float, float, str]:
    """The heatmap's colour range and the caption that states it: an accuracy's from chance level
    (1 / the number of classes, where the tasks say it; else 0) to 1, unless ``min-max`` was asked
    for; any other metric's, or with ``min-max``, the cells' minimum to maximum."""
    lo, hi = float(np.nanmin(cells)), float(np.nanmax(cells))
    places = decimals(cells)
    if choice.heatmap_scale == "anchored" and choice.labels.is_accuracy(choice.metric):
        chance = chance_level(run)
        start = f"chance level {chance:.{places}f}" if chance is not None else "0"
        below = "; cells below it take its colour" if chance is not None and lo < chance else ""
        return (chance or 0.0), 1.0, f"colour scale: {start} to 1{below}"
    if hi == lo:
        return lo - 0.5 * (abs(lo) or 1), hi + 0.5 * (abs(hi) or 1), f"colour scale: every cell {lo:.{places}f}"
    return lo, hi, f"colour scale: the cells' minimum {lo:.{places}f} to maximum {hi:.{places}f}"


# ------------------------------------------------------------------ the page


def by_configuration(df, choice: Choice):
    """The chosen metric's mean, s.d. and number of finished seeds per combination of the swept
    values, best first; None when no task has the metric."""
    labels = choice.labels
    data = _finished(df, choice.metric)
    if data.empty:
        return None
    if not choice.axes:
        keys = [np.zeros(len(data), dtype=int)]
    else:
        keys = [data[a].map(repr).rename(a) for a in choice.axes]
    grouped = data.groupby(keys, sort=False)
    stats = grouped[choice.metric].agg(["mean", "std", "count"])
    firsts = grouped.first()  # the swept values themselves (the keys are their repr)
    for a in choice.axes:
        stats[a] = firsts[a]
    stats = stats.reset_index(drop=True)
    return stats.sort_values("mean", ascending=not labels.higher_is_better(choice.metric), kind="stable")


def _best(choice: Choice, stats) -> str | None:
    labels = choice.labels
    if stats is None:
        return None
    row = stats.iloc[0]
    places = decimals(stats["mean"])
    name = labels(choice.metric)
    spread = f" ± {row['std']:.{places}f}" if row["count"] > 1 else ""
    seeds = f" ({int(row['count'])} seeds)" if row["count"] > 1 else ""
    if not choice.axes:
        return f"{name.capitalize()}: <b>{row['mean']:.{places}f}{spread}</b>{seeds}"
    where = ", ".join(f"{labels(a)} {fmt_value(row[a])}" for a in choice.axes)
    return f"Best {name}: <b>{row['mean']:.{places}f}{spread}</b>{seeds} at {html.escape(where)}"


def _configurations_html(choice: Choice, stats, limit: int = 12) -> str:
    labels = choice.labels
    if stats is None or not choice.axes:
        return ""
    places = decimals(stats["mean"])
    head = "".join(f"<th>{html.escape(labels(a))}</th>" for a in choice.axes)
    rows = []
    for _, r in stats.head(limit).iterrows():
        spread = f" ± {r['std']:.{places}f}" if r["count"] > 1 else ""
        rows.append("<tr>" + "".join(f"<td>{html.escape(fmt_value(r[a]))}</td>" for a in choice.axes)
                    + f"<td>{r['mean']:.{places}f}{spread}</td><td>{int(r['count'])}</td></tr>")
    more = (f'<p class="meta">the best {limit} of {len(stats)} configurations</p>' if len(stats) > limit else "")
    return (f'<table class="conf"><thead><tr>{head}<th>{html.escape(labels(choice.metric))}</th><th>runs</th>'
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}")


def _sweep_words(run: Run) -> str:
    labels = run.labels
    parts = [f"{labels(a)} ({len(run.axis_values(a))} values)" for a in run.varying_axes]
    seeds = len(run.axis_values("seed"))
    if seeds > 1:
        parts.append(f"{seeds} seeds")
    return " × ".join(parts) if parts else "a single configuration"


CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 0;
       color: #1d2430; background: #fff; }
main { max-width: 1320px; box-sizing: border-box; margin: 0 auto; padding: 28px 36px 48px; }
h1 { font-size: 30px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #e3e6ea; }
p.desc { font-size: 17px; margin: 2px 0 8px; color: #3a4350; }
p.meta { font-size: 14px; color: #5d6773; margin: 0 0 14px; }
.best { font-size: 18px; background: #eef6ee; border-left: 5px solid #3a9a4a; padding: 10px 16px; margin: 14px 0; }
.note { font-size: 15px; background: #fff6e5; border-left: 5px solid #e0a020; padding: 8px 14px; margin: 10px 0; }
.failed { font-size: 14px; background: #fdecec; border-left: 5px solid #c83232; padding: 8px 14px; margin: 10px 0; }
.failed code { font-size: 13px; }
.row { display: flex; gap: 28px; align-items: flex-start; }
@media (max-width: 1000px) { .row { flex-wrap: wrap; } }
.scroll { overflow-x: auto; }
.row > div { flex: 0 1 auto; min-width: 0; }
table.conf { font-size: 16px; } table.conf td, table.conf th { padding: 6px 14px; }
table.conf tbody tr:first-child td { font-weight: 600; background: #eef6ee; }
img { max-width: 100%; height: auto; display: block; margin: 6px 0; }
table { border-collapse: collapse; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 7px; text-align: right; border-bottom: 1px solid #eceef1; white-space: nowrap; }
th { background: #f4f6f8; white-space: normal; vertical-align: bottom; }
td.l, th.l { text-align: left; }
td.id { font-family: ui-monospace, Menlo, Consolas, monospace; }
tr.failed td { color: #b02020; }
td.err { white-space: normal; text-align: left; max-width: 420px; }
.st-done { color: #2a7a36; } .st-failed { color: #b02020; font-weight: 600; }
.st-running { color: #1f6fa8; } .st-interrupted { color: #a86f00; } .st-pending { color: #777; }
details { margin-top: 24px; } pre { background: #f6f8fa; padding: 12px; font-size: 13px; overflow-x: auto; }
footer { margin-top: 30px; font-size: 12px; color: #7a838d; }
"""


def _table_html(df, choice: Choice) -> str:
    """Every task's row; of a run of more than :data:`MAX_TABLE_ROWS` tasks, the best that many by the
    chosen metric (all of them are in results.csv and results.parquet). Built column by column."""
    labels = choice.labels
    dims = [*choice.axes, "seed"]
    metrics = [m for m in df.columns if m in set(_metric_columns(df)) and df[m].notna().any()]
    show_err = df["error"].notna().any()
    head = ["task", "state", *dims, *metrics, "iterations", "attempts", "time"] + (["error"] if show_err else [])
    left = {"task", "state", "error"}
    places = table_decimals(df, metrics, labels)
    note = ""
    if len(df) > MAX_TABLE_ROWS:
        best = df[choice.metric].sort_values(ascending=not labels.higher_is_better(choice.metric), kind="stable",
                                             na_position="last").index[:MAX_TABLE_ROWS]
        note = (f'<p class="meta">the {MAX_TABLE_ROWS:,} best of {len(df):,} tasks by {html.escape(labels(choice.metric))}'
                ", best first; every task is in results.csv and results.parquet</p>")
        df = df.loc[best]
    out = [note + '<div class="scroll"><table>', "<thead><tr>" + "".join(
        f'<th class="{"l" if h in left else ""}">{html.escape(labels(h) if h in dims or h in metrics else h)}</th>'
        for h in head) + "</tr></thead><tbody>"]
    states = [str(s) for s in df["state"].tolist()]
    columns = [[f'<td class="l id" title="{i}">{i[:8]}</td>' for i in df["id"].tolist()],
               [f'<td class="l st-{html.escape(s)}">{html.escape(s)}</td>' for s in states]]
    columns += [[f"<td>{html.escape(fmt_value(v))}</td>" for v in df[d].tolist()] for d in dims]
    columns += [[f"<td>{'' if _isna(v) else f'{v:.{places[m]}f}'}</td>" for v in df[m].tolist()] for m in metrics]
    columns.append([f"<td>{its}/{total}</td>" if total is not None and not _isna(total) else f"<td>{its}</td>"
                    for its, total in zip(df["iterations"].tolist(), df["total"].tolist())])
    columns.append([f"<td>{a}</td>" for a in df["attempts"].tolist()])
    columns.append([f"<td>{format_duration(e)}</td>" for e in df["elapsed_s"].tolist()])
    if show_err:
        columns.append([f'<td class="err">{html.escape(_text(e))}</td>' for e in df["error"].tolist()])
    for state, cells in zip(states, zip(*columns)):
        cls = ' class="failed"' if state == "failed" else ""
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def table_decimals(df, metrics: list[str], labels: Labels) -> dict[str, int]:
    """Decimals per metric column, the same for every column that measures the same thing (training,
    validation and test accuracy; the losses): enough for 3 significant digits of their typical value."""
    kinds: dict[str, list[str]] = {}
    for m in metrics:
        kinds.setdefault(labels.base(m), []).append(m)
    return {m: decimals(np.concatenate([df[k].to_numpy(float) for k in kind])) for kind in kinds.values() for m in kind}


def _text(v) -> str:
    """A table cell as text: '' for None and NaN."""
    return "" if v is None or _isna(v) else str(v)


def _isna(v) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _metric_columns(df) -> list[str]:
    start = list(df.columns).index("seed") + 1
    return list(df.columns)[start: list(df.columns).index("iterations")]


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def report_html(run: Run, choice: Choice, df, images: dict[str, bytes | None]) -> str:
    labels = choice.labels
    counts: dict[str, int] = {}
    for s in df["state"]:
        counts[s] = counts.get(s, 0) + 1
    states = ", ".join(f"{n} {s}" for s, n in counts.items())
    spec = run.spec
    desc = spec.get("description") or ""
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(run.name)}: snnbatch report</title>", f"<style>{CSS}</style></head><body><main>",
        f"<h1>{html.escape(run.name)}</h1>",
    ]
    if desc:
        parts.append(f'<p class="desc">{html.escape(desc)}</p>')
    parts.append(f'<p class="meta">{len(df)} tasks ({html.escape(states)}) · sweep: {html.escape(_sweep_words(run))}'
                 f" · store <code>{html.escape(str(run.path))}</code></p>")
    stats = by_configuration(df, choice)
    best = _best(choice, stats)
    if best:
        parts.append(f'<div class="best">{best}</div>')
    for note in choice.notes:
        parts.append(f'<div class="note">{html.escape(note)}</div>')
    failed = df[df["state"] == "failed"]
    if len(failed):
        errors = [_text(e) or "no error recorded" for e in failed["error"].tolist()]
        ids = [i[:8] for i in failed["id"].tolist()]
        if len(failed) <= MAX_FAILED_LINES:
            items = "".join(f"<li><code>{i}</code> {html.escape(e)}</li>" for i, e in zip(ids, errors))
        else:  # grouped by message, most frequent first, with a few of the tasks of each
            by_error: dict[str, list[str]] = {}
            for i, e in zip(ids, errors):
                by_error.setdefault(e, []).append(i)
            items = "".join(
                f"<li>{len(group)} tasks: {html.escape(e)} (<code>{', '.join(group[:3])}</code>"
                f"{f' and {len(group) - 3} more' if len(group) > 3 else ''})</li>"
                for e, group in sorted(by_error.items(), key=lambda kv: -len(kv[1])))
        parts.append(f'<div class="failed"><b>{len(failed)} task{"s" * (len(failed) != 1)} failed</b>'
                     f"<ul>{items}</ul></div>")
    if images.get("final.png"):
        parts.append("<h2>Across the sweep</h2>")
        parts.append(_img(images["final.png"], f"final {labels(choice.metric)} against each swept parameter"))
    configurations = _configurations_html(choice, stats)
    if images.get("heatmap.png") or configurations:
        parts.append("<h2>By configuration</h2><div class=\"row\">")
        if images.get("heatmap.png"):
            parts.append(f"<div>{_img(images['heatmap.png'], 'heatmap over two swept parameters')}</div>")
        parts.append(f"<div>{configurations}</div></div>")
    if images.get("curves.png"):
        parts.append(f"<h2>Training</h2>{_img(images['curves.png'], 'training curves')}")
    if images.get("halving.png"):
        parts.append(f"<h2>Successive halving</h2>{_img(images['halving.png'], 'the metric by rung, pruned faded')}")
    parts.append("<h2>All tasks</h2>")
    parts.append(_table_html(df, choice))
    if run.store.root.attrs.get("spec_yaml"):
        parts.append(f"<details><summary>Sweep spec</summary><pre>"
                     f"{html.escape(str(run.store.root.attrs['spec_yaml']))}</pre></details>")
    parts.append(f"<footer>snnbatch {snnbatch_version()} · {time.strftime('%Y-%m-%d %H:%M')} · the table is also in "
                 "results.csv and results.parquet beside this page</footer>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


# ------------------------------------------------------------------ writing


def _parquet_bytes(df) -> bytes:
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object and len({type(v) for v in out[col] if v is not None}) > 1:
            out[col] = out[col].map(lambda v: None if v is None else str(v))
    buf = io.BytesIO()
    out.to_parquet(buf, index=False)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def figures(run: Run, choice: Choice, df) -> dict:
    """The report's figures by file name (None where the run has no data for one), drawn in :data:`STYLE`."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        return {"curves.png": curves_figure(run, choice), "final.png": final_figure(run, choice, df),
                "heatmap.png": heatmap_figure(run, choice, df), "halving.png": halving_figure(run, choice)}


def check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")


def write_report(run: Run, out, metric: str | None = None, x: str | None = None,
                 group: str | None = None, curves_x: str = "iteration", heatmap_scale: str = "anchored") -> list[Path]:
    """Write the report of ``run`` into the directory ``out``; returns the files written.

    Checks the options first (:func:`choose`, which says what each means): on a bad one, raises
    :class:`UserError` and writes nothing. Figures without data (no finished task, no second axis)
    are left out.
    """
    import matplotlib

    out = Path(out)
    check_out(out)
    choice = choose(run, metric, x, group, curves_x=curves_x, heatmap_scale=heatmap_scale)
    df = run.to_pandas()
    with matplotlib.rc_context(STYLE):
        images = {name: _png(fig) if fig is not None else None for name, fig in figures(run, choice, df).items()}
    files = {"report.html": report_html(run, choice, df, images).encode(),
             "results.csv": df.to_csv(index=False).encode(),
             "results.parquet": _parquet_bytes(df),
             **{k: v for k, v in images.items() if v}}
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            _write(out / name, data)
        for name in set(FILES) - set(files):  # a figure this run no longer has: not a stale one
            (out / name).unlink(missing_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write the report: {exc.strerror or exc}") from None
    return [out / name for name in FILES if name in files]
