"""How the LIF kernel's cost grows: time and memory against hidden size, time steps and batch size.

One forward+backward batch (``loss_acc_grad``, float32, 1 thread, initial weights)
per point, each point in a fresh subprocess: the time is the median over
repeats, the memory the growth of the peak resident set over the process's
state after a tiny warm-up call (compiled code loaded). The full form only;
plots to benchmarks/results/scaling.png.
"""
from __future__ import annotations

import time

NAME = "scaling"
TITLE = "LIF kernel scaling (forward+backward of one batch, float32, 1 thread, initial weights)"

DEFAULT = {"n_hidden": 128, "n_steps": 100, "batch": 256}
AXES = {
    "n_hidden": [32, 64, 128, 256, 512],
    "n_steps": [50, 100, 200, 400, 800],
    "batch": [32, 64, 128, 256, 512],
}


def point_task(recurrent: bool, n_hidden: int, n_steps: int, batch: int, repeats: int) -> dict:
    import numba
    import numpy as np

    from snnbatch.kernels import lif, randman

    from .common import median, peak_rss_mib

    numba.set_num_threads(1)
    data = randman.make_dataset(randman.RandmanConfig(n_train=batch, n_test=2, n_steps=n_steps),
                                np.random.default_rng(0))
    cfg = lif.LIFConfig(n_hidden=n_hidden, recurrent=recurrent)
    params = lif.init_params(cfg, np.random.default_rng(1))
    lif.loss_acc_grad(params, data.train_events, data.train_labels, cfg, np.arange(2))  # load the compiled code
    base = peak_rss_mib()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        lif.loss_acc_grad(params, data.train_events, data.train_labels, cfg)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"wall": median(wall), "cpu": median(cpu), "mem_mib": peak_rss_mib() - base}


def run(mode: str, log) -> dict:
    from .common import RESULTS, subprocess_task

    if mode != "full":
        return {"skipped": "full form only"}
    points = []
    for axis, values in AXES.items():
        for recurrent in (False, True):
            for v in values:
                kw = {**DEFAULT, axis: v}
                log(f"scaling {axis}={v} {'recurrent' if recurrent else 'feed-forward'}")
                r = subprocess_task("benchmarks.bench_scaling:point_task", dict(recurrent=recurrent, repeats=5, **kw),
                                    threads=1)
                points.append({"axis": axis, "value": v, "recurrent": recurrent, **kw, "wall": r["wall"],
                               "cpu": r["cpu"], "mem_mib": r["mem_mib"]})
    RESULTS.mkdir(parents=True, exist_ok=True)
    png = RESULTS / "scaling.png"
    _plot(points, png)
    return {"points": points, "plot": str(png)}


def _plot(points, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    for col, axis in enumerate(AXES):
        for recurrent, style in ((False, "o-"), (True, "s--")):
            pts = [p for p in points if p["axis"] == axis and p["recurrent"] == recurrent]
            x = [p["value"] for p in pts]
            label = "recurrent" if recurrent else "feed-forward"
            axs[0, col].loglog(x, [p["cpu"] * 1e3 for p in pts], style, label=label)
            axs[1, col].semilogx(x, [p["mem_mib"] for p in pts], style, label=label)
        # reference slopes through the feed-forward point at the default
        ff = {p["value"]: p["cpu"] * 1e3 for p in points if p["axis"] == axis and not p["recurrent"]}
        x0, y0 = DEFAULT[axis], ff[DEFAULT[axis]]
        xs = AXES[axis]
        axs[0, col].loglog(xs, [y0 * x / x0 for x in xs], ":", color="grey", label="∝ x")
        if axis == "n_hidden":
            axs[0, col].loglog(xs, [y0 * (x / x0) ** 2 for x in xs], "-.", color="grey", label="∝ x²")
        others = ", ".join(f"{k}={v}" for k, v in DEFAULT.items() if k != axis)
        axs[0, col].set_title(f"time vs {axis} ({others})")
        axs[0, col].set_ylabel("ms per batch (CPU)")
        axs[1, col].set_ylabel("peak RSS growth, MiB")
        axs[1, col].set_xlabel(axis)
        axs[0, col].legend(fontsize=8)
        axs[1, col].legend(fontsize=8)
    fig.suptitle("snnbatch LIF kernel: forward+backward of one batch, float32, 1 thread")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tables(result):
    from rich.table import Table

    if "points" not in result:
        return []
    t = Table(title=TITLE, title_justify="left", caption=f"plot: {result['plot']}")
    for col in ("axis", "value", "network", "ms/batch (cpu)", "ms/batch (wall)", "peak RSS growth MiB"):
        t.add_column(col, justify="left" if col in ("axis", "network") else "right")
    for p in result["points"]:
        t.add_row(p["axis"], str(p["value"]), "recurrent" if p["recurrent"] else "feed-forward",
                  f"{p['cpu'] * 1e3:.1f}", f"{p['wall'] * 1e3:.1f}", f"{p['mem_mib']:.1f}")
    return [t]
