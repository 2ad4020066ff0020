"""The report of a run: the results table, plots and one self-contained HTML page.

:func:`write_report` writes into one directory:

* ``results.csv``, ``results.parquet``: :meth:`Run.to_pandas`, one row per task;
* ``curves.png``: training loss (and accuracy) against the iteration, smoothed, one thin
  line per task and a thick mean per value of the ``group`` axis, one column of panels
  per value of a second axis when it has few values;
* ``final.png``: the chosen final metric against each swept parameter (or ``x`` alone):
  every task as a point, the mean over replicates as a line with ± one standard deviation,
  coloured by a second axis; a log axis when the values span more than a decade;
* ``heatmap.png``: the metric's mean over seeds across two swept axes (runs with two or more);
* ``report.html``: all of the above on one page, images embedded, nothing to fetch.

Choices are checked against the run (:func:`choose`) before anything is written.
Each metric is labelled, and its best value chosen, as its algorithm declares it: from
the record the run store keeps (:attr:`Run.labels`), so no plugin code is imported.
Figures are drawn on :class:`matplotlib.figure.Figure` objects with the Agg canvas, so
no global backend is set and nothing needs a display.
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

import numpy as np

from ..jobs.errors import UserError
from ..jobs.version import snnbatch_version
from .labels import LABELS, Labels  # noqa: F401  (LABELS: importable here)
from .results import Run, format_duration

FILES = ("report.html", "results.csv", "results.parquet", "curves.png", "final.png", "heatmap.png")
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


def choose(run: Run, metric: str | None = None, x: str | None = None, group: str | None = None) -> Choice:
    """Check the options against the run and fill in the defaults; :class:`UserError` naming the
    option otherwise.

    metric: ``test_accuracy`` when a task has one, else ``test_loss``, else ``final_loss``.
    group: the first varying axis (other than ``x``). x: every varying axis gets a panel.
    The heatmap spans ``x`` (columns, default the first axis) and ``group`` (rows).
    """
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
                    notes=notes, labels=labels)
    choice.group = group or next((a for a in axes if a != x and choice.discrete(run, a)), None)
    grid_axes = [a for a in axes if choice.discrete(run, a, MAX_HEATMAP)]
    if len(grid_axes) >= 2:
        cols = x if x in grid_axes else next(a for a in grid_axes if a != choice.group)
        rows = choice.group if choice.group in grid_axes and choice.group != cols else next(
            a for a in grid_axes if a != cols)
        choice.heatmap = (cols, rows)
    return choice


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


def _colours(values: list) -> dict:
    """A colour per value: ordered (viridis) for numbers, qualitative (tab10) for anything else."""
    import matplotlib

    if values and all(_is_number(v) for v in values):
        cmap = matplotlib.colormaps["viridis"]
        pos = np.linspace(0.05, 0.8, len(values)) if len(values) > 1 else [0.35]
        return {v: cmap(p) for v, p in zip(values, pos)}
    cmap = matplotlib.colormaps["tab10"]
    return {v: cmap(i % 10) for i, v in enumerate(values)}


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


def curves_figure(run: Run, choice: Choice) -> bytes | None:
    labels = choice.labels
    histories = run.histories()
    tasks = [t for t in run.tasks if histories[t.id].get("loss") is not None and len(histories[t.id]["loss"])]
    if not tasks:
        return None
    metrics = [m for m in ("loss", "accuracy") if any(m in histories[t.id] for t in tasks)]
    group = choice.group
    panel = next((a for a in choice.axes if a != group and choice.discrete(run, a, MAX_PANEL_VALUES)), None)
    if len(choice.x_axes) == 1 and choice.x_axes[0] != group and choice.discrete(run, choice.x_axes[0],
                                                                                  MAX_PANEL_VALUES):
        panel = choice.x_axes[0]
    panel_values = run.axis_values(panel) if panel else [None]
    group_values = run.axis_values(group) if group else [None]
    colours = _colours(group_values) if group else {None: "#3b528b"}
    length = max(len(histories[t.id]["loss"]) for t in tasks)
    window = max(1, int(round(length / 40)))
    iteration = np.arange(1, length + 1)

    ncols, nrows = len(panel_values), len(metrics)
    fig = _figure(max(7.0, 5.2 * ncols + 1.5), 3.9 * nrows + 0.9)
    axs = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey="row")
    for r, metric in enumerate(metrics):
        all_y = []
        for c, pv in enumerate(panel_values):
            ax = axs[r][c]
            for gv in group_values:
                members = [t for t in tasks if (panel is None or t.params.get(panel) == pv)
                           and (group is None or t.params.get(group) == gv)]
                curves = np.full((len(members), length), np.nan)
                for i, t in enumerate(members):
                    y = np.asarray(histories[t.id].get(metric, []), dtype=float)
                    curves[i, : len(y)] = _smooth(y, window)
                if not len(members):
                    continue
                colour = colours[gv]
                for y in curves:
                    ax.plot(iteration, y, color=colour, lw=0.9, alpha=0.35)
                with warnings.catch_warnings():  # 'mean of empty slice' past the end of shorter runs
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(curves, axis=0)
                name = fmt_value(gv) if group else f"mean of {len(members)}"
                ax.plot(iteration, mean, color=colour, lw=2.6, label=name)
                all_y.append(curves[np.isfinite(curves)])
            if r == 0 and panel:
                ax.set_title(f"{labels(panel)} = {fmt_value(pv)}")
            if r == nrows - 1:
                ax.set_xlabel(labels("iteration"))
            if c == 0:
                ax.set_ylabel(labels(metric))
        ys = np.concatenate(all_y) if all_y else np.array([])
        if metric == "loss" and len(ys) and ys.min() > 0 and ys.max() / ys.min() > 20:
            axs[r][0].set_yscale("log")
    handles, names = axs[0][0].get_legend_handles_labels()
    if group and handles:
        fig.legend(handles, names, title=labels(group), loc="outside right center")
    smooth = f" (moving average over {window} iterations)" if window > 1 else ""
    mean = f"mean per {labels(group)}" if group else "mean"
    fig.suptitle("Training curves")
    _caption(fig, f"thin: single runs{smooth}  ·  thick: {mean}")
    return _png(fig)


def _caption(fig, text: str) -> None:
    fig.supxlabel(text, fontsize=12, color="#555555", fontweight="normal")


def _finished(df, metric: str):
    return df[np.isfinite(df[metric].to_numpy(float))]


def final_figure(run: Run, choice: Choice, df) -> bytes | None:
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
        c_values = run.axis_values(colour_axis) if colour_axis else [None]
        colours = _colours(c_values) if colour_axis else {None: "#3b528b"}
        for j, cv in enumerate(c_values):
            sub = data if colour_axis is None else data[data[colour_axis].map(lambda v: v == cv)]
            if sub.empty:
                continue
            dodge = (j - (len(c_values) - 1) / 2) * 0.06 if len(c_values) > 1 and xa not in choice.drawn else 0.0
            xs, means, stds, counts = [], [], [], []
            for xv in x_values:
                vals = sub[sub[xa].map(lambda v: v == xv)][metric].to_numpy(float)
                if not len(vals):
                    continue
                pos = _position(xv, x_values, numeric, log, dodge)
                ax.scatter(np.full(len(vals), pos), vals, s=44, color=colours[cv], alpha=0.6,
                           edgecolors="white", linewidths=0.6, zorder=5)
                xs.append(pos)
                means.append(vals.mean())
                stds.append(vals.std(ddof=1) if len(vals) > 1 else 0.0)
                counts.append(len(vals))
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
    fig.suptitle(f"Final {labels(metric)}")
    _caption(fig, f"points: single runs{spread}")
    return _png(fig)


def _seeds_figure(data, metric: str, labels: Labels) -> bytes:
    """A run of replicates only: the metric of each seed, the mean and ± one s.d."""
    seeds, vals = data["seed"].to_numpy(), data[metric].to_numpy(float)
    fig = _figure(9.0, 4.6)
    ax = fig.subplots()
    mean = vals.mean()
    places = decimals(vals)
    if len(vals) > 1:
        sd = vals.std(ddof=1)
        ax.axhspan(mean - sd, mean + sd, color="#3b528b", alpha=0.12, lw=0, label=f"± s.d. ({sd:.{places}f})")
    ax.axhline(mean, color="#3b528b", lw=2.4, label=f"mean ({mean:.{places}f})")
    ax.scatter(seeds, vals, s=60, color="#3b528b", edgecolors="white", linewidths=0.8, zorder=5, label="single runs")
    if len(seeds) <= 20:
        ax.set_xticks(seeds, [str(s) for s in seeds])
    ax.margins(x=0.12)
    ax.set_xlabel(labels("seed"))
    ax.set_ylabel(labels(metric))
    fig.legend(loc="outside right center")
    fig.suptitle(f"Final {labels(metric)}")
    return _png(fig)


def _replicates(data, axes: list[str]) -> str:
    """How many seeds each point of a figure averages, in words ('2 seeds', '2-3 seeds')."""
    if data.empty:
        return ""
    sizes = data.groupby([data[a].map(repr) for a in axes] or [np.zeros(len(data))], sort=False).size()
    lo, hi = int(sizes.min()), int(sizes.max())
    if hi <= 1:
        return ""
    return f"{lo} seeds" if lo == hi else f"{lo}–{hi} seeds"


def _position(xv, values: list, numeric: bool, log: bool, dodge: float) -> float:
    if not numeric:
        return values.index(xv) + dodge * 2
    if log:
        return xv * 10 ** (dodge * 0.5 * math.log10(max(values) / min(values)) / max(1, len(values) - 1))
    span = (max(values) - min(values)) or abs(xv) or 1.0
    return xv + dodge * span / max(1, len(values) - 1) * 0.6


def heatmap_figure(run: Run, choice: Choice, df) -> bytes | None:
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
    for i, r in enumerate(rv):
        for j, c in enumerate(cv):
            vals = data[data[rows].map(lambda v: v == r) & data[cols].map(lambda v: v == c)][metric].to_numpy(float)
            if len(vals):
                mean[i, j], count[i, j] = vals.mean(), len(vals)
                std[i, j] = vals.std(ddof=1) if len(vals) > 1 else np.nan
    if np.isfinite(mean).sum() < max(2, mean.size // 2):  # a random sweep: mostly empty cells
        return None
    import matplotlib

    cmap = matplotlib.colormaps["viridis" if labels.higher_is_better(metric) else "viridis_r"].with_extremes(bad="#eeeeee")
    fig = _figure(min(13.0, 3.3 + 1.3 * len(cv)), min(11.0, 1.9 + 0.95 * len(rv)))
    ax = fig.subplots()
    ax.grid(False)
    im = ax.imshow(np.ma.masked_invalid(mean), cmap=cmap, origin="lower", aspect="auto")
    ax.set_xticks(range(len(cv)), [fmt_value(v) for v in cv])
    ax.set_yticks(range(len(rv)), [fmt_value(v) for v in rv])
    ax.set_xlabel(labels(cols))
    ax.set_ylabel(labels(rows))
    for s in ax.spines.values():
        s.set_visible(False)
    lo, hi = np.nanmin(mean), np.nanmax(mean)
    places = decimals(mean)
    for i in range(len(rv)):
        for j in range(len(cv)):
            if not np.isfinite(mean[i, j]):
                continue
            frac = 0.5 if hi == lo else (mean[i, j] - lo) / (hi - lo)
            if not labels.higher_is_better(metric):
                frac = 1 - frac
            text = f"{mean[i, j]:.{places}f}"
            if np.isfinite(std[i, j]) and len(cv) <= 8:
                text += f"\n± {std[i, j]:.{places}f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=13 if len(cv) <= 6 else 10,
                    color="black" if frac > 0.55 else "white")
    bar = fig.colorbar(im, ax=ax, shrink=0.9)
    bar.set_label(labels(metric))
    others = [a for a in choice.axes if a not in (cols, rows)]
    reps = _replicates(data, [cols, rows, *others])
    over = " and ".join([*([reps] if reps else []), *(labels(a) for a in others)])
    ax.set_title(f"{labels(metric).capitalize()}" + (f", mean ± s.d. over {over}" if over else ""))
    return _png(fig)


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
table { border-collapse: collapse; font-size: 14px; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; text-align: right; border-bottom: 1px solid #eceef1; white-space: nowrap; }
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
    labels = choice.labels
    dims = [*choice.axes, "seed"]
    metrics = [m for m in df.columns if m in set(_metric_columns(df)) and df[m].notna().any()]
    show_err = df["error"].notna().any()
    head = ["task", "state", *dims, *metrics, "iterations", "attempts", "time"] + (["error"] if show_err else [])
    left = {"task", "state", "error"}
    places = {m: decimals(df[m]) for m in metrics}
    out = ['<div class="scroll"><table>', "<thead><tr>" + "".join(
        f'<th class="{"l" if h in left else ""}">{html.escape(labels(h) if h in dims or h in metrics else h)}</th>'
        for h in head) + "</tr></thead><tbody>"]
    for _, r in df.iterrows():
        cells = [f'<td class="l id" title="{r["id"]}">{r["id"][:8]}</td>',
                 f'<td class="l st-{html.escape(str(r["state"]))}">{html.escape(str(r["state"]))}</td>']
        cells += [f"<td>{html.escape(fmt_value(r[d]))}</td>" for d in dims]
        cells += [f"<td>{'' if _isna(r[m]) else f'{r[m]:.{places[m]}f}'}</td>" for m in metrics]
        total = r["total"]
        its = f"{r['iterations']}/{total}" if total is not None and not _isna(total) else str(r["iterations"])
        cells += [f"<td>{its}</td>", f"<td>{r['attempts']}</td>", f"<td>{format_duration(r['elapsed_s'])}</td>"]
        if show_err:
            cells.append(f'<td class="err">{html.escape(_text(r["error"]))}</td>')
        cls = ' class="failed"' if r["state"] == "failed" else ""
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


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
        items = "".join(f"<li><code>{r['id'][:8]}</code> {html.escape(_text(r['error']) or 'no error recorded')}</li>"
                        for _, r in failed.iterrows())
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


def check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")


def write_report(run: Run, out, metric: str | None = None, x: str | None = None,
                 group: str | None = None) -> list[Path]:
    """Write the report of ``run`` into the directory ``out``; returns the files written.

    Checks the options first (:func:`choose`): on a bad one, raises :class:`UserError` and
    writes nothing. Figures without data (no finished task, no second axis) are left out.
    """
    import matplotlib

    out = Path(out)
    check_out(out)
    choice = choose(run, metric, x, group)
    df = run.to_pandas()
    with matplotlib.rc_context(STYLE):
        images = {"curves.png": curves_figure(run, choice), "final.png": final_figure(run, choice, df),
                  "heatmap.png": heatmap_figure(run, choice, df)}
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
