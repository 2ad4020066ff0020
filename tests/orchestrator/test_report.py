"""snnbatch report and the results API (open_run(...).to_pandas(), .to_xarray()) on a small finished sweep."""
from __future__ import annotations

import base64
import io
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

import snnbatch
from snnbatch.jobs.store import TaskStore
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.cli import main
from snnbatch.orchestrator.report import choose, label
from snnbatch.orchestrator.store import RunStore

# 8 tasks of 16 iterations each, a few seconds in all: lr spans more than a decade (a log axis).
SPEC = """\
name: tiny-report
description: report test sweep
dataset: {n_train: 256, n_test: 64}
model: {n_hidden: 16}
training: {epochs: 2, batch_size: 32}
checkpoint: {every_iterations: 4}
sweep:
  grid: {lr: [1.0e-3, 3.0e-2], n_hidden: [8, 16]}
  seeds: 2
"""
ITERATIONS = 16
PNGS = ("curves.png", "final.png", "heatmap.png")


@pytest.fixture(scope="session")
def finished(tmp_path_factory):
    """A finished sweep: 2 learning rates x 2 hidden sizes x 2 seeds, run inline."""
    base = tmp_path_factory.mktemp("report")
    (base / "spec.yaml").write_text(SPEC)
    store = base / "store"
    result = CliRunner().invoke(main, ["submit", str(base / "spec.yaml"), "--store", str(store),
                                       "--backend", "inline", "--no-progress"])
    assert result.exit_code == 0, result.output
    return store


@pytest.fixture
def copy(finished, tmp_path):
    """A copy of the finished store that a test may change."""
    return shutil.copytree(finished, tmp_path / "store")


def drop_task(path, task_id):
    """Rewrite the store's plan without ``task_id`` (and remove what the task wrote)."""
    from snnbatch.jobs.store import PLAN, add_planned, planned_configs, planned_tasks

    kept = [{"id": tid, **meta, "config": planned_configs(path)[tid]}
            for tid, meta in planned_tasks(path).items() if tid != task_id]
    shutil.rmtree(path / PLAN)
    shutil.rmtree(path / "tasks" / task_id)
    add_planned(path, kept)


def report(*args):
    return CliRunner().invoke(main, ["report", *map(str, args)])


# ------------------------------------------------------------------ the files


def test_report_writes_table_plots_and_page(finished, tmp_path):
    out = tmp_path / "out"
    result = report(finished, "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["report.html", "results.csv", "results.parquet", *PNGS])

    run = snnbatch.open_run(finished)
    ids = [t.id for t in run]
    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == 8 and list(csv["id"]) == ids
    for col in ("id", "state", "lr", "n_hidden", "seed", "test_accuracy", "test_loss", "final_loss",
                "final_accuracy", "iterations", "attempts", "elapsed_s"):
        assert col in csv.columns
    assert set(csv["state"]) == {"done"}
    assert sorted(set(csv["lr"])) == [1e-3, 3e-2] and sorted(set(csv["n_hidden"])) == [8, 16]
    assert sorted(set(csv["seed"])) == [0, 1]
    assert (csv["iterations"] == ITERATIONS).all() and csv["test_accuracy"].between(0, 1).all()
    by_id = {t.id: t for t in run}
    for _, row in csv.iterrows():
        assert row["test_accuracy"] == pytest.approx(by_id[row["id"]]["test_accuracy"])
        assert row["lr"] == by_id[row["id"]].params["lr"]

    parquet = pd.read_parquet(out / "results.parquet")
    pd.testing.assert_frame_equal(parquet, run.to_pandas())

    for name in PNGS:
        data = (out / name).read_bytes()
        assert len(data) > 20_000, name
        img = Image.open(io.BytesIO(data))
        img.verify()
        img = Image.open(io.BytesIO(data))
        assert img.format == "PNG" and img.width >= 600 and img.height >= 350, (name, img.size)
        pixels = np.asarray(img.convert("L"))
        assert pixels.std() > 10, f"{name} is nearly blank"

    page = (out / "report.html").read_text()
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == 3
    for b64 in embedded:
        Image.open(io.BytesIO(base64.b64decode(b64))).verify()
    assert not re.search(r'(src|href)="(https?:|file:|/)', page), "the page must not fetch anything"
    assert "<table" in page and page.count("<tr") >= 9
    for tid in ids:
        assert tid[:8] in page
    assert "tiny-report" in page and "learning rate" in page and "hidden neurons" in page
    assert "Best test accuracy" in page


def test_choices_and_defaults(finished):
    run = snnbatch.open_run(finished)
    c = choose(run)
    assert (c.metric, c.axes, c.x_axes, c.group, c.heatmap) == (
        "test_accuracy", ["lr", "n_hidden"], ["lr", "n_hidden"], "lr", ("n_hidden", "lr"))
    # 'loss' names the final training loss; a dotted axis name resolves to the spec's short one
    c = choose(run, metric="loss", x="training.lr")
    assert (c.metric, c.x_axes, c.group, c.heatmap) == ("final_loss", ["lr"], "n_hidden", ("lr", "n_hidden"))
    assert label("training.lr") == "learning rate" and label("iteration") == "training iteration"


@pytest.mark.parametrize("args, words", [
    (["--metric", "bogus"], ["--metric 'bogus'", "test_accuracy", "final_loss"]),
    (["--x", "tau"], ["--x 'tau'", "not a swept parameter", "lr, n_hidden"]),
    (["--group", "seed"], ["--group seed", "replicates", "lr, n_hidden"]),
    (["--x", "lr", "--group", "lr"], ["--x and --group", "'lr'"]),
])
def test_bad_options_exit_2_and_write_nothing(finished, tmp_path, args, words):
    out = tmp_path / "out"
    result = report(finished, "--out", out, *args)
    assert result.exit_code == 2, result.output
    for w in words:
        assert w in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


@pytest.mark.parametrize("make", ["missing", "empty", "file"])
def test_not_a_store_exits_2_and_writes_nothing(tmp_path, make):
    path = tmp_path / "nostore"
    if make == "empty":
        path.mkdir()
    elif make == "file":
        path.write_text("not a store")
    out = tmp_path / "out"
    result = report(path, "--out", out)
    assert result.exit_code == 2, result.output
    assert str(path) in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert not out.exists()
    assert not (tmp_path / "nostore-report").exists()


def test_report_options_with_a_failed_and_an_unfinished_task(copy):
    run = snnbatch.open_run(copy)
    failed, pending = run.tasks[0].id, run.tasks[-1].id
    TaskStore(copy, failed).update_status(
        state="failed", error="Traceback (most recent call last):\n  ...\nFloatingPointError: loss is not finite",
        error_line="FloatingPointError: loss is not finite at iteration 3 (nan)",
        test_accuracy=None, test_loss=None)
    shutil.rmtree(copy / "tasks" / pending / "status")
    shutil.rmtree(copy / "tasks" / pending / "checkpoints")
    # the default --out: STORE-report, beside the store
    result = report(copy, "--metric", "test_loss", "--x", "n_hidden", "--group", "lr")
    assert result.exit_code == 0, result.output
    out = copy.parent / f"{copy.name}-report"
    assert str(out) in result.output
    assert all((out / name).stat().st_size > 20_000 for name in PNGS)
    df = pd.read_csv(out / "results.csv")
    row = df.set_index("id").loc[failed]
    assert row["state"] == "failed" and row["error"].startswith("FloatingPointError: loss is not finite")
    assert np.isnan(row["test_accuracy"])
    assert df.set_index("id").loc[pending, "state"] == "pending"
    page = (out / "report.html").read_text()
    assert "Best test loss" in page
    assert "1 task failed" in page and "FloatingPointError: loss is not finite at iteration 3" in page


def test_report_of_a_run_with_nothing_finished(tmp_path):
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(SPEC)
    spec = spec_mod.load(spec_path)
    RunStore.create_or_update(tmp_path / "store", spec, SPEC, planner.plan(spec))
    out = tmp_path / "out"
    result = report(tmp_path / "store", "--out", out)
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {"report.html", "results.csv", "results.parquet"}
    assert "No task has reported" in (out / "report.html").read_text()
    assert len(pd.read_csv(out / "results.csv")) == 8


# ------------------------------------------------------------------ the Python API


def test_to_pandas(finished):
    df = snnbatch.open_run(finished).to_pandas()
    assert list(df.columns[:5]) == ["id", "state", "lr", "n_hidden", "seed"]
    assert len(df) == 8 and df["id"].is_unique
    assert df["test_accuracy"].dtype == float and df["iterations"].tolist() == [ITERATIONS] * 8
    assert df["error"].isna().all()


def test_to_xarray_full_grid(finished):
    run = snnbatch.open_run(finished)
    ds = run.to_xarray()
    assert dict(ds.sizes) == {"lr": 2, "n_hidden": 2, "seed": 2, "iteration": ITERATIONS}
    assert ds["lr"].values.tolist() == [1e-3, 3e-2] and ds["n_hidden"].values.tolist() == [8, 16]
    assert ds["seed"].values.tolist() == [0, 1] and ds["iteration"].values.tolist() == list(range(1, 17))
    assert ds["loss"].dims == ("lr", "n_hidden", "seed", "iteration")
    assert ds["test_accuracy"].dims == ("lr", "n_hidden", "seed")
    assert {"loss", "accuracy", "test_accuracy", "test_loss", "final_loss", "final_accuracy"} <= set(ds.data_vars)
    for t in run:
        where = dict(lr=t.params["lr"], n_hidden=t.params["n_hidden"], seed=t.params["seed"])
        cell = ds.sel(where)
        assert str(cell["task_id"].values) == t.id
        np.testing.assert_array_equal(cell["loss"].values, t.metrics["loss"])
        assert float(cell["test_accuracy"]) == pytest.approx(t["test_accuracy"])
        assert float(cell["final_loss"]) == pytest.approx(t.metrics["loss"][-1])
    assert ds["lr"].attrs["long_name"] == "learning rate"
    assert ds["test_accuracy"].mean("seed").dims == ("lr", "n_hidden")


def test_to_xarray_pads_unequal_lengths_with_nan(copy):
    run = snnbatch.open_run(copy)
    short = run.tasks[2]
    ckdir = copy / "tasks" / short.id / "checkpoints"
    newest = sorted(p.name for p in ckdir.iterdir() if p.name.isdigit())[-1]
    shutil.rmtree(ckdir / newest)  # back to the checkpoint before the last: 12 iterations
    ds = snnbatch.open_run(copy).to_xarray()
    assert ds.sizes["iteration"] == ITERATIONS
    loss = ds["loss"].sel(lr=short.params["lr"], n_hidden=short.params["n_hidden"], seed=short.params["seed"]).values
    assert np.isfinite(loss[:12]).all() and np.isnan(loss[12:]).all()


def test_to_xarray_not_a_grid_uses_a_task_dimension(copy):
    run = snnbatch.open_run(copy)
    gone = run.tasks[3].id
    drop_task(copy, gone)  # 7 of 8 combinations: no longer a full grid
    run = snnbatch.open_run(copy)
    assert not run.is_grid
    ds = run.to_xarray()
    assert dict(ds.sizes) == {"task": 7, "iteration": ITERATIONS}
    assert gone not in ds["task"].values.tolist()
    for k in ("lr", "n_hidden", "seed"):
        assert ds[k].dims == ("task",) and k not in ds.dims
    assert ds["loss"].dims == ("task", "iteration") and ds["test_accuracy"].dims == ("task",)
    assert ds["test_accuracy"].groupby("lr").mean().sizes == {"lr": 2}


def test_to_xarray_random_sweep(tmp_path):
    text = SPEC.split("sweep:")[0] + ("sweep:\n  random: {samples: 5, params: {lr: {loguniform: [1.0e-3, 1.0e-1]}}}\n"
                                      "  seeds: 2\n")
    (tmp_path / "spec.yaml").write_text(text)
    spec = spec_mod.load(tmp_path / "spec.yaml")
    RunStore.create_or_update(tmp_path / "store", spec, text, planner.plan(spec))
    run = snnbatch.open_run(tmp_path / "store")
    ds = run.to_xarray()
    assert run.axes == ["lr"] and not run.is_grid
    assert ds["lr"].dims == ("task",) and ds.sizes["task"] == 10 and ds["seed"].dims == ("task",)
    assert np.isnan(ds["test_accuracy"].values).all()


def test_a_swept_mapping_labels_its_column_colours_and_coordinates(tmp_path):
    """A sweep axis whose values are mappings (``lr_schedule: [constant, {type: cosine, ...}]``)
    reports like any other: its values in their YAML flow form, in the table, the figures and xarray."""
    text = SPEC.split("sweep:")[0].replace("epochs: 2", "iterations: 4") + (
        "sweep:\n  grid: {lr_schedule: [constant, {type: cosine, to: 0.1}], lr: [1.0e-3, 3.0e-2]}\n")
    (tmp_path / "spec.yaml").write_text(text)
    r = CliRunner().invoke(main, ["submit", str(tmp_path / "spec.yaml"), "--store", str(tmp_path / "store"),
                                  "--backend", "inline", "--no-progress"])
    assert r.exit_code == 0, r.output
    result = report(tmp_path / "store", "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    csv = pd.read_csv(tmp_path / "report" / "results.csv")
    assert sorted(set(csv["lr_schedule"])) == ["constant", "{type: cosine, to: 0.1}"]
    run = snnbatch.open_run(tmp_path / "store")
    assert list(run.to_xarray()["lr_schedule"].values) == ["constant", "{type: cosine, to: 0.1}"]
    cosine = next(t for t in run.tasks if t.params["lr_schedule"] != "constant")
    assert cosine.config["training"]["lr_schedule"]["type"] == "cosine"  # the config keeps the mapping


# ------------------------------------------------------------------ the figures, as a slide needs them

# 4 tasks of 16 iterations, one seed, validating every 4 iterations; 4 classes: chance level 0.25.
VALIDATING = """\
name: tiny-valid
dataset: {n_train: 256, n_test: 64, n_valid: 64, n_classes: 4}
model: {n_hidden: 16}
training: {epochs: 2, batch_size: 32, validate_every: 4}
checkpoint: {every_iterations: 8}
sweep:
  grid: {lr: [1.0e-3, 3.0e-2], n_hidden: [8, 16]}
"""


@pytest.fixture(scope="session")
def validating(tmp_path_factory):
    base = tmp_path_factory.mktemp("report-valid")
    (base / "spec.yaml").write_text(VALIDATING)
    result = CliRunner().invoke(main, ["submit", str(base / "spec.yaml"), "--store", str(base / "store"),
                                       "--backend", "inline", "--no-progress"])
    assert result.exit_code == 0, result.output
    return base / "store"


def _figures(store, **options):
    from snnbatch.orchestrator.report import figures

    run = snnbatch.open_run(store)
    choice = choose(run, **options)
    return run, choice, figures(run, choice, run.to_pandas())


def _caption_text(fig) -> str:
    return fig._supxlabel.get_text().replace("\n", " ")


def _legend_colours(ax) -> dict[str, tuple]:
    from matplotlib.colors import to_rgba

    legend = ax.get_legend()
    return {t.get_text(): to_rgba(h.get_color() if hasattr(h, "get_color") else h.lines[0].get_color())
            for t, h in zip(legend.get_texts(), legend.legend_handles)}


def test_one_variable_one_colour_map_in_every_panel(finished):
    from matplotlib.colors import to_rgba

    run, choice, figs = _figures(finished)
    assert choice.cmaps["lr"] != choice.cmaps["n_hidden"]
    lr = {fmt: to_rgba(c) for fmt, c in zip(["0.001", "0.03"], choice.colours(run, "lr").values())}
    hidden = {fmt: to_rgba(c) for fmt, c in zip(["8", "16"], choice.colours(run, "n_hidden").values())}
    assert not set(lr.values()) & set(hidden.values()), "two variables share a colour"
    x_lr, x_hidden = figs["final.png"].axes  # panels: x = lr (coloured by n_hidden), then x = n_hidden
    assert _legend_colours(x_lr) == hidden and _legend_colours(x_hidden) == lr
    # the training curves colour by lr with the same colours, in both panels
    for ax in figs["curves.png"].axes[:2]:
        thick = {to_rgba(line.get_color()) for line in ax.get_lines() if line.get_linewidth() > 2}
        assert thick == set(lr.values())
    assert figs["heatmap.png"].axes[0].images[0].get_cmap().name.startswith("viridis")


def test_accuracy_axes_are_clipped_to_0_1(copy):
    for t in snnbatch.open_run(copy):
        TaskStore(copy, t.id).update_status(test_accuracy=1.0)
    _, _, figs = _figures(copy)
    for ax in figs["final.png"].axes:
        lo, hi = ax.get_ylim()
        assert 0 <= lo < hi <= 1.0
    accuracy_row = figs["curves.png"].axes[2:]  # below the loss row
    assert accuracy_row[0].get_ylabel().startswith("training accuracy")
    for ax in accuracy_row:
        lo, hi = ax.get_ylim()
        assert 0 <= lo < hi <= 1.0
    bar = figs["heatmap.png"].axes[0].images[0]
    assert bar.get_clim() == (0.5, 1.0)  # randman's default 2 classes: chance level 0.5


def test_heatmap_scale_is_anchored_and_stated(validating):
    run, choice, figs = _figures(validating)
    im = figs["heatmap.png"].axes[0].images[0]
    assert im.get_clim() == (0.25, 1.0)
    assert _caption_text(figs["heatmap.png"]) == "colour scale: chance level 0.250 to 1"
    df = run.to_pandas()
    _, _, figs = _figures(validating, heatmap_scale="min-max")
    lo, hi = df["test_accuracy"].min(), df["test_accuracy"].max()
    assert figs["heatmap.png"].axes[0].images[0].get_clim() == pytest.approx((lo, hi))
    assert _caption_text(figs["heatmap.png"]) == f"colour scale: the cells' minimum {lo:.3f} to maximum {hi:.3f}"
    # a loss is never anchored: its cells' range, stated
    _, _, figs = _figures(validating, metric="test_loss")
    lo, hi = df["test_loss"].min(), df["test_loss"].max()
    assert figs["heatmap.png"].axes[0].images[0].get_clim() == pytest.approx((lo, hi))
    assert _caption_text(figs["heatmap.png"]).startswith("colour scale: the cells' minimum")
    result = report(validating, "--out", validating.parent / "bad", "--heatmap-scale", "median")
    assert result.exit_code == 2 and "--heatmap-scale" in result.output


def test_validation_curves_beside_training_curves(validating):
    run, _, figs = _figures(validating)
    fig = figs["curves.png"]
    assert fig._suptitle.get_text() == "Training and validation curves"
    assert "dashed: validation" in _caption_text(fig)
    loss, accuracy = fig.axes[:2], fig.axes[2:]  # rows: loss, accuracy; a panel per hidden size
    assert accuracy[0].get_ylabel() == "accuracy" and loss[0].get_ylabel().startswith("loss (cross-entropy")
    histories = run.histories()
    for ax, hidden in zip(accuracy, [8, 16]):
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        solid = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
        assert len(dashed) == 2 and len(solid) == 2  # one run per learning rate: a line each, no mean
        for t in (t for t in run if t.params["n_hidden"] == hidden):
            valid = histories[t.id]["valid_accuracy"]
            where = np.flatnonzero(np.isfinite(valid)) + 1
            assert where.tolist() == [4, 8, 12, 16]
            assert any(np.array_equal(line.get_xdata(), where) and np.allclose(line.get_ydata(), valid[where - 1])
                       for line in dashed)


def test_curves_have_an_epoch_axis_and_wall_time_on_request(validating):
    run, _, figs = _figures(validating)
    fig = figs["curves.png"]
    tops = [child for ax in fig.axes for child in ax.child_axes]
    assert len(tops) == 2 and all(t.get_xlabel() == "epoch" for t in tops)  # 256 / 32: 8 iterations per epoch
    assert "epochs of 8 iterations" in _caption_text(fig)
    _, _, figs = _figures(validating, curves_x="epoch")
    ax = figs["curves.png"].axes[0]
    assert ax.get_xlabel() == "" and figs["curves.png"].axes[-1].get_xlabel() == "epoch"
    assert np.allclose(ax.get_lines()[0].get_xdata(), np.arange(1, 17) / 8)
    _, _, figs = _figures(validating, curves_x="wall-time")
    fig = figs["curves.png"]
    assert fig.axes[-1].get_xlabel() == "wall time (s)"
    assert "wall time spread evenly over each attempt" in _caption_text(fig)
    elapsed = [t.elapsed for t in run]  # each run's line ends at its wall time
    ends = [float(line.get_xdata()[-1]) for line in fig.axes[0].get_lines() if line.get_linestyle() == "-"]
    assert len(ends) == 2 and all(min(abs(e - f) for f in elapsed) < 0.01 for e in ends)
    for line in fig.axes[0].get_lines():
        x = np.asarray(line.get_xdata(), float)
        assert (np.diff(x) > 0).all()


def test_captions_say_what_is_drawn(finished, validating):
    _, _, figs = _figures(validating)  # one seed: each colour is a single run
    caption = _caption_text(figs["curves.png"])
    assert "one line per run" in caption and "thin" not in caption and "mean" not in caption
    assert "mean" not in _caption_text(figs["final.png"])
    _, _, figs = _figures(finished)  # two seeds
    caption = _caption_text(figs["curves.png"])
    assert "thin: single runs" in caption and "thick: mean per learning rate" in caption
    assert "over 2 seeds" in _caption_text(figs["final.png"])


def _table_cells(page: str) -> list[dict[str, str]]:
    table = page.split("<h2>All tasks</h2>")[1]
    heads = [re.sub("<.*?>", "", h) for h in re.findall(r"<th[^>]*>(.*?)</th>", table)]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.split("<tbody>")[1])
    return [dict(zip(heads, (re.sub("<.*?>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)))) for r in rows]


def test_training_and_test_accuracy_have_the_same_decimals(validating, tmp_path):
    assert report(validating, "--out", tmp_path).exit_code == 0
    rows = _table_cells((tmp_path / "report.html").read_text())
    assert len(rows) == 4
    heads = [next(h for h in rows[0] if h.startswith(name))
             for name in ("final training accuracy", "validation accuracy", "test accuracy")]
    places = {h: {len(r[h].split(".")[1]) for r in rows} for h in heads}
    assert places == dict.fromkeys(places, {3}), places
    losses = {h: {len(r[h].split(".")[1]) for r in rows} for h in rows[0] if "loss" in h}
    assert len(losses) == 3 and len(set().union(*losses.values())) == 1, losses


def test_wall_time_counts_every_attempt(copy):
    from snnbatch.orchestrator.report import wall_time

    tid = snnbatch.open_run(copy).tasks[0].id
    TaskStore(copy, tid).update_status(attempts=[
        {"n": 1, "started": 100.0, "ended": 110.0, "from_iteration": 0, "checkpointed": 8},
        {"n": 2, "started": 200.0, "ended": 205.0, "from_iteration": 8},  # lost before a checkpoint: 5 s
        {"n": 3, "started": 300.0, "ended": 310.0, "from_iteration": 8, "checkpointed": 16}])
    t = snnbatch.open_run(copy).task(tid)
    i = np.arange(1, 17)
    expected = np.where(i <= 8, 10 * i / 8, 15 + 10 * (i - 8) / 8)
    np.testing.assert_allclose(wall_time(t, 16), expected)


def test_a_run_of_many_tasks_caps_the_page_and_draws_its_lines_as_one(copy, tmp_path, monkeypatch):
    # the limits made small so that this run of 8 tasks has "many": the same code as for 100,000
    from matplotlib.collections import LineCollection

    from snnbatch.orchestrator import report as report_mod

    monkeypatch.setattr(report_mod, "MAX_TABLE_ROWS", 3)
    monkeypatch.setattr(report_mod, "MAX_FAILED_LINES", 1)
    monkeypatch.setattr(report_mod, "MANY_LINES", 1)
    run = snnbatch.open_run(copy)
    for t in run.tasks[:2]:
        TaskStore(copy, t.id).update_status(state="failed", error_line="FloatingPointError: loss is not finite",
                                            test_accuracy=None, test_loss=None)
    assert report(copy, "--out", tmp_path / "out").exit_code == 0
    page = (tmp_path / "out" / "report.html").read_text()
    rows = _table_cells(page)
    df = pd.read_csv(tmp_path / "out" / "results.csv")
    assert len(df) == 8 and len(rows) == 3  # every task in the table files, the best 3 on the page
    best = df.sort_values("test_accuracy", ascending=False, kind="stable")["id"].str[:8].tolist()[:3]
    assert [r["task"] for r in rows] == best
    assert "the 3 best of 8 tasks by test accuracy" in page
    assert "2 tasks: FloatingPointError: loss is not finite" in page  # grouped by message
    run, _, figs = _figures(copy)
    collections = [c for ax in figs["curves.png"].axes for c in ax.collections if isinstance(c, LineCollection)]
    assert collections and sum(len(c.get_paths()) for c in collections) == 2 * 8  # loss and accuracy of every run
    ax = figs["curves.png"].axes[0]
    lo, hi = ax.get_ylim()
    assert lo < hi and np.isfinite([lo, hi]).all()
