"""Compile once: a task's start-up with an empty Numba cache (cold) and with a filled one (warm).

A "task start" here is what a training task does before its first step returns:
import the LIF kernel, make a small Randman set, one ``loss_acc_grad`` and one
``evaluate`` (float32, feed-forward and recurrent use the same compiled code).
Each start is a fresh interpreter with ``NUMBA_CACHE_DIR`` pointing at a
directory of this run: empty for the cold start, filled by it for the warm ones.
"""
from __future__ import annotations

import shutil
import tempfile
import time

NAME = "compile"
TITLE = "Task start-up: empty vs filled NUMBA_CACHE_DIR (fresh process each, 1 thread)"


def start_task() -> dict:
    t0 = time.perf_counter()
    import numpy as np

    from snnbatch.kernels import lif, randman

    t_import = time.perf_counter() - t0
    data = randman.make_dataset(randman.RandmanConfig(n_train=256, n_test=64), np.random.default_rng(0))
    cfg = lif.LIFConfig()
    params = lif.init_params(cfg, np.random.default_rng(1))
    t1 = time.perf_counter()
    lif.loss_acc_grad(params, data.train_events, data.train_labels, cfg, np.arange(128))
    lif.evaluate(params, data.test_events, data.test_labels, cfg)
    t_first = time.perf_counter() - t1
    t2 = time.perf_counter()
    lif.loss_acc_grad(params, data.train_events, data.train_labels, cfg, np.arange(128, 256))
    lif.evaluate(params, data.test_events, data.test_labels, cfg)
    t_second = time.perf_counter() - t2
    return {"import": t_import, "first_step": t_first, "second_step": t_second}


def run(mode: str, log) -> dict:
    from .common import median, subprocess_task

    cold_n, warm_n = (3, 5) if mode == "full" else (1, 3)
    cold, warm = [], []
    for _ in range(cold_n):
        cache = tempfile.mkdtemp(prefix="snnbatch-numba-cache-")
        try:
            log("cold start (empty cache)")
            cold.append(subprocess_task("benchmarks.bench_compile:start_task", {}, threads=1,
                                        env={"NUMBA_CACHE_DIR": cache}))
            for _ in range(warm_n if not warm else 0):
                log("warm start (filled cache)")
                warm.append(subprocess_task("benchmarks.bench_compile:start_task", {}, threads=1,
                                            env={"NUMBA_CACHE_DIR": cache}))
        finally:
            shutil.rmtree(cache, ignore_errors=True)

    def summary(runs):
        return {k: median([r[k] for r in runs]) for k in ("process_seconds", "import", "first_step", "second_step")}

    return {"cold": summary(cold), "warm": summary(warm), "cold_runs": cold, "warm_runs": warm}


def tables(result):
    from rich.table import Table

    t = Table(title=TITLE, title_justify="left")
    for col in ("cache", "process s", "import s", "first step + eval s", "second step + eval s"):
        t.add_column(col, justify="left" if col == "cache" else "right")
    for name in ("cold", "warm"):
        r = result[name]
        t.add_row(name, f"{r['process_seconds']:.2f}", f"{r['import']:.2f}", f"{r['first_step']:.2f}",
                  f"{r['second_step']:.3f}")
    c, w = result["cold"], result["warm"]
    t.caption = (f"a filled cache saves {c['process_seconds'] - w['process_seconds']:.1f} s per task start "
                 f"({c['process_seconds'] / w['process_seconds']:.1f}× faster start)")
    return [t]
