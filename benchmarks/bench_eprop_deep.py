"""e-prop with several hidden layers: working memory against T and depth, and whether two layers learn Randman.

Two measurements:

* **Memory.** The :mod:`tracemalloc` peak of one e-prop pass (``loss_and_grad``) of 1, 2 and 3
  hidden layers of 64 neurons over T = 100, 400 and 1600 steps (4 samples in 4 blocks, float32,
  100 inputs, 10 outputs), beside the bytes of :func:`snnbatch.kernels.eprop_deep.workspace`;
  one layer also through kernels/eprop.py. Every array e-prop works in is allocated by its NumPy
  wrapper, so tracemalloc sees it all.
* **Randman.** examples/eprop.yaml's setting (10-class Randman, 150 iterations of 128, Adam) for
  one layer of 64 LIF neurons and two layers of 64 with ``learning.feedback`` symmetric and random,
  and, as a control of what the first layer's broadcast updates add, two layers with ``w_in`` not
  trained; trained through the trainer contract in this process (as bench_memory.train): test
  accuracy, mean and range over seeds.
"""
from __future__ import annotations

import statistics
import time

NAME = "eprop_deep"
TITLE = "e-prop with several hidden layers: memory against T and depth, Randman accuracy"

FORMS = {
    "quick": {"steps": [100, 400], "depths": [1, 2, 3], "lrs": [5e-3], "seeds": [0]},
    "full": {"steps": [100, 400, 1600], "depths": [1, 2, 3], "lrs": [2e-3, 5e-3], "seeds": [0, 1, 2]},
}
NETWORKS = {  # (model keys, learning keys, weights not trained)
    "one layer (64)": ({"n_hidden": 64}, {}, ()),
    "two layers (64, 64), symmetric": ({"n_hidden": [64, 64]}, {"feedback": "symmetric"}, ()),
    "two layers (64, 64), symmetric, w_in not trained": ({"n_hidden": [64, 64]}, {"feedback": "symmetric"},
                                                         ("w_in",)),
    "two layers (64, 64), random": ({"n_hidden": [64, 64]}, {"feedback": "random"}, ()),
}


def _peak(fn) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def memory(steps, depths, log) -> list[dict]:
    import numpy as np

    from snnbatch.kernels import eprop, eprop_deep, events, lif

    rows = []
    for depth in depths:
        cfg = eprop_deep.EpropDeepConfig(n_inputs=100, n_hidden=(64,) * depth, n_outputs=10,
                                         recurrent=(False,) * depth, n_blocks=4, weight_scale=20.0)
        params = eprop_deep.init_params(cfg, np.random.default_rng(0))
        peaks = []
        for T in steps:
            rng = np.random.default_rng(T)
            ev = events.from_dense((rng.random((4, T, 100)) < 0.02).astype(np.float32))
            labels = rng.integers(0, 10, 4)
            eprop_deep.loss_and_grad(params, ev, labels, cfg)  # compiled and warm
            peaks.append(_peak(lambda: eprop_deep.loss_and_grad(params, ev, labels, cfg)))
        rows.append({"kernel": "eprop_deep", "depth": depth, "steps": list(steps), "peak": peaks,
                     "workspace": eprop_deep.workspace_bytes(cfg, 4)})
        log(f"depth {depth}: workspace {rows[-1]['workspace']} B, peaks {peaks}")
    one = lif.LIFConfig(n_inputs=100, n_hidden=64, n_outputs=10, n_blocks=4, weight_scale=20.0)
    params = eprop.init_params(one, np.random.default_rng(0))
    peaks = []
    for T in steps:
        rng = np.random.default_rng(T)
        ev = events.from_dense((rng.random((4, T, 100)) < 0.02).astype(np.float32))
        labels = rng.integers(0, 10, 4)
        eprop.loss_and_grad(params, ev, labels, one)
        peaks.append(_peak(lambda: eprop.loss_and_grad(params, ev, labels, one)))
    rows.append({"kernel": "eprop", "depth": 1, "steps": list(steps), "peak": peaks, "workspace": None})
    return rows


def spec(network: dict, learning: dict, lr: float, seed: int) -> dict:
    from .bench_memory import RANDMAN

    return {"model": {"type": "lif", **network}, "dataset": RANDMAN, "learning": {"rule": "eprop", **learning},
            "training": {"iterations": 150, "batch_size": 128, "lr": lr}, "seed": seed}


def train(args) -> dict:
    """``args = (spec, frozen)``: bench_memory.train's run of the task ``spec``, the weights ``frozen`` not trained
    (their learning rate scaled by 0: the control of what the lower layer's broadcast updates add)."""
    spec, frozen = args
    from snnbatch.jobs.config import TaskConfig
    from snnbatch.jobs.trainer import build_trainer, initial_state, total_iterations

    config = TaskConfig.model_validate(spec)
    t0 = time.perf_counter()
    trainer = build_trainer(config)
    if frozen:
        trainer.lr_scale = {**trainer.lr_scale, **{name: 0.0 for name in frozen}}
    state = initial_state(trainer)
    total = total_iterations(trainer, config.training)
    while state.iteration < total:
        state.record(trainer.step(state))
        state.iteration += 1
    out = {k: float(v) for k, v in trainer.evaluate(state).items()}
    out["train_accuracy"] = float(statistics.fmean(state.metrics["accuracy"][-10:]))
    out["seconds"] = time.perf_counter() - t0
    return out


def run(mode: str, log, pool=None) -> dict:
    form = FORMS[mode]
    out = {"memory": memory(form["steps"], form["depths"], log), "randman": [], "seeds": form["seeds"]}
    for lr in form["lrs"]:
        for name, (network, learning, frozen) in NETWORKS.items():
            t0 = time.perf_counter()
            specs = [(spec(network, learning, lr, s), frozen) for s in form["seeds"]]
            runs = [train(s) for s in specs] if pool is None else list(pool.map(train, specs))
            acc = [r["test_accuracy"] for r in runs]
            log(f"Randman lr {lr:g} {name}: test accuracy {', '.join(f'{a:.3f}' for a in acc)}")
            out["randman"].append({"lr": lr, "network": name, "test_accuracy": acc,
                                   "train_accuracy": [r["train_accuracy"] for r in runs],
                                   "mean": statistics.fmean(acc), "min": min(acc), "max": max(acc),
                                   "seconds": time.perf_counter() - t0})
    return out


def tables(result):
    from rich.table import Table

    m = Table(title="e-prop working memory (tracemalloc peak of one pass, KiB) against T and depth",
              title_justify="left", caption="64 LIF neurons per layer, 100 inputs, 10 outputs, 4 samples in 4 "
                                            "blocks, float32; workspace: the arrays of eprop_deep.workspace")
    m.add_column("kernel", justify="left")
    m.add_column("layers", justify="right")
    steps = result["memory"][0]["steps"]
    for T in steps:
        m.add_column(f"T={T}", justify="right")
    m.add_column("workspace", justify="right")
    for r in result["memory"]:
        m.add_row(r["kernel"], str(r["depth"]), *[f"{p / 1024:.1f}" for p in r["peak"]],
                  "" if r["workspace"] is None else f"{r['workspace'] / 1024:.1f}")
    t = Table(title=f"Randman, examples/eprop.yaml's setting, e-prop: test accuracy over {len(result['seeds'])} "
                    "seed(s)", title_justify="left",
              caption="10 classes, 150 iterations of 128 samples, Adam, LIF; mean (range)")
    for col in ("lr", "network", "test accuracy", "train accuracy", "s"):
        t.add_column(col, justify="left" if col == "network" else "right")
    for r in result["randman"]:
        cell = f"{r['mean']:.3f}" if len(r["test_accuracy"]) == 1 else f"{r['mean']:.3f} ({r['min']:.3f}-{r['max']:.3f})"
        t.add_row(f"{r['lr']:g}", r["network"], cell, f"{statistics.fmean(r['train_accuracy']):.3f}",
                  f"{r['seconds']:.0f}")
    return [m, t]


if __name__ == "__main__":
    import argparse
    from concurrent.futures import ProcessPoolExecutor

    from rich.console import Console

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_eprop_deep")
    parser.add_argument("--full", action="store_true", help="three seeds, two learning rates, T up to 1600")
    parser.add_argument("--workers", type=int, default=1, help="processes to spread each group's seeds over")
    args = parser.parse_args()
    console = Console()
    start = time.perf_counter()

    def say(msg):
        console.print(f"[dim]{time.perf_counter() - start:6.0f}s  {msg}[/dim]")

    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as executor:
            res = run("full" if args.full else "quick", say, executor)
    else:
        res = run("full" if args.full else "quick", say)
    for table in tables(res):
        console.print(table)
