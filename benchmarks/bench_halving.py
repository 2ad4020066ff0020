"""Successive halving against the full grid: an 81-configuration Randman sweep run both ways.

The same spec is submitted twice through ``snnbatch submit --backend local`` (Dask, 2 workers): once
as the full grid (every configuration trained to the end), once with ``sweep.halving`` (eta = 3,
rungs at L/27, L/9 and L/3 of the training length L, so 81 -> 27 -> 9 -> 3 configurations train on
and 3 reach the end). Both validate every ``min_iterations`` iterations on a held-out split; each
sweep's best configuration is the one with the best validation accuracy among those trained to the
end, and its test accuracy is that configuration's. Reported: the iterations each sweep trained
(the sum over its tasks of the iterations each reached), their ratio, wall times and their ratio,
and the best validation and test accuracy each found. Target: at most 1/4 of the iterations for a
best result within one percentage point of the full grid's.

The quick form is a small network on a short training (a few minutes on 2 cores); the full form a
larger one trained longer (see :data:`FORMS`).
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

NAME = "halving"
TITLE = "Successive halving vs the full grid: 81 Randman configurations"

GRID = {"lr": [5e-4, 2e-3, 8e-3], "weight_scale": [2.0, 7.0, 20.0], "tau_mem": [0.005, 0.01, 0.03],
        "tau_syn": [0.002, 0.005, 0.01]}
FORMS = {
    "quick": {"n_hidden": 32, "n_steps": 50, "n_inputs": 40, "n_classes": 10, "dim": 2, "n_train": 1000,
              "n_valid": 300, "n_test": 500, "batch_size": 64, "min_iterations": 10},
    "full": {"n_hidden": 64, "n_steps": 100, "n_inputs": 100, "n_classes": 10, "dim": 2, "n_train": 2000,
             "n_valid": 500, "n_test": 1000, "batch_size": 128, "min_iterations": 20},
}
ETA = 3


def spec(form: dict, halving: bool) -> dict:
    r = form["min_iterations"]
    out = {
        "name": "bench-halving" if halving else "bench-grid",
        "model": {"type": "lif", "n_hidden": form["n_hidden"]},
        "dataset": {"type": "randman", **{k: form[k] for k in ("n_steps", "n_inputs", "n_classes", "dim",
                                                                "n_train", "n_valid", "n_test")}},
        "training": {"iterations": 27 * r, "batch_size": form["batch_size"], "validate_every": r},
        "checkpoint": {"every_iterations": 27 * r},
        "resources": {"cpus": 1},
        "sweep": {"grid": GRID},
    }
    if halving:
        out["sweep"]["halving"] = {"metric": "valid_accuracy", "min_iterations": r, "eta": ETA}
    return out


def _sweep(form: dict, halving: bool, root: Path, log) -> dict:
    from snnbatch import open_run

    path = root / ("halving.yaml" if halving else "grid.yaml")
    path.write_text(yaml.safe_dump(spec(form, halving), sort_keys=False))
    store = root / path.stem
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "snnbatch.orchestrator.cli", "submit", str(path), "--store",
                        str(store), "--backend", "local", "--max-parallel", "2", "--no-progress"],
                       capture_output=True, text=True, timeout=7200)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{path.stem} sweep failed ({r.returncode}): {(r.stdout + r.stderr)[-2000:]}")
    run = open_run(store)
    iterations, finished = 0, []
    for t in run:
        iterations += int(t.status["iteration"])
        if t.state == "done":
            valid = t.metrics["valid_accuracy"]
            finished.append((float(max(v for v in valid if not math.isnan(v))), float(t.status["test_accuracy"]),
                             t.id))
    best = max(finished, key=lambda x: (x[0], x[2]))  # the best validation (ties: the task id)
    log(f"{path.stem}: {len(run)} tasks, {iterations} iterations in {seconds:.0f} s; best validation "
        f"{best[0]:.3f}, its test accuracy {best[1]:.3f}")
    return {"tasks": len(run), "iterations": iterations, "seconds": seconds, "finished": len(finished),
            "best_valid_accuracy": best[0], "best_test_accuracy": best[1], "best_task": best[2]}


def run(mode: str, log) -> dict:
    form = FORMS[mode]
    with tempfile.TemporaryDirectory(prefix="bench-halving-") as tmp:
        grid = _sweep(form, False, Path(tmp), log)
        halving = _sweep(form, True, Path(tmp), log)
    return {
        "form": form, "eta": ETA, "grid": grid, "halving": halving,
        "iterations_ratio": halving["iterations"] / grid["iterations"],
        "seconds_ratio": halving["seconds"] / grid["seconds"],
        "valid_difference_pp": 100 * (halving["best_valid_accuracy"] - grid["best_valid_accuracy"]),
        "test_difference_pp": 100 * (halving["best_test_accuracy"] - grid["best_test_accuracy"]),
        "target_met": halving["iterations"] * 4 <= grid["iterations"]
        and round(grid["best_test_accuracy"] - halving["best_test_accuracy"], 9) <= 0.01,
    }


def tables(result):
    from rich.table import Table

    f = result["form"]
    t = Table(title=f"81 Randman configurations, full grid vs successive halving (eta {result['eta']})",
              title_justify="left",
              caption=f"LIF {f['n_hidden']} hidden, {f['n_classes']} classes, {27 * f['min_iterations']} iterations "
                      f"of {f['batch_size']}; rungs at {f['min_iterations']}, {3 * f['min_iterations']}, "
                      f"{9 * f['min_iterations']}; local backend, 2 workers. Best: the best validation accuracy "
                      "among the configurations trained to the end; test: that configuration's. "
                      f"Target (≤ 1/4 of the iterations, test within 1 point): "
                      f"{'met' if result['target_met'] else 'NOT met'}.")
    for col in ("sweep", "tasks to the end", "iterations", "wall s", "best valid acc", "its test acc"):
        t.add_column(col, justify="left" if col == "sweep" else "right")
    for name in ("grid", "halving"):
        r = result[name]
        t.add_row("full grid" if name == "grid" else "halving", str(r["finished"]), str(r["iterations"]),
                  f"{r['seconds']:.0f}", f"{r['best_valid_accuracy']:.3f}", f"{r['best_test_accuracy']:.3f}")
    t.add_row("halving / grid", "", f"{result['iterations_ratio']:.3f}", f"{result['seconds_ratio']:.2f}",
              f"{result['valid_difference_pp']:+.1f} pp", f"{result['test_difference_pp']:+.1f} pp")
    return [t]


if __name__ == "__main__":  # python -m benchmarks.bench_halving [--full]
    mode = "full" if "--full" in sys.argv else "quick"
    result = run(mode, lambda m: print(m, flush=True))
    from rich.console import Console

    for table in tables(result):
        Console().print(table)
    print(json.dumps(result, indent=1))
