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
    shutil.rmtree(copy / "tasks" / gone)  # 7 of 8 combinations: no longer a full grid
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
