"""Recurrent networks that learn, and a task that needs recurrence: test accuracy side by side.

Two measurements, each network trained in this process through the trainer contract
(``build_trainer``, ``step``, ``evaluate``: the code a task runs, without a store):

* **Randman, recurrent defaults.** The setting of examples/eprop.yaml (10-class Randman,
  64 LIF neurons, 150 iterations of 128 samples): feed-forward, recurrent as before the
  recurrent keys existed (``recurrent_weight_scale: null``: the recurrent weights at the input
  weights' scale, learning at ``training.lr``) and recurrent with the defaults
  (:data:`RECOMMENDED`, :data:`RECURRENT_LR`), with BPTT and e-prop.
* **Delayed match-to-sample** (``dataset: {type: delayed_match}``, :mod:`snnbatch.kernels.cues`)
  over delay lengths: feed-forward and recurrent LIF and ALIF with BPTT, on the max-over-time
  readout (the default) and on the last step's (``learning.readout: last``), and recurrent LIF and
  ALIF (and feed-forward ALIF) with e-prop, whose readout is per step (``argmax Σ_n log softmax``).
  0.5 is chance; 0.75 is what a network without memory can reach through the max or the per-step
  readout, 0.5 through the last step's (see the README's Algorithms section).

The quick form runs one seed of a few cases (about 2 minutes on 2 shared cores), the full form every
case over five seeds, three for Randman (see :data:`FORMS`; under a load of 6-8 on 2 shared cores its
memory rows took 33 minutes on 2 processes, most of it e-prop's). Mean and range over seeds are
reported, with the wall time of each group. The
README's delayed match-to-sample table is this benchmark's full form (``python -m
benchmarks.bench_memory --memory`` runs it alone on 2 processes); its Randman table, more pairs of
recurrent_weight_scale and recurrent_lr_scale over more seeds, is ``python -m benchmarks.bench_memory --scales``.
"""
from __future__ import annotations

import statistics
import time

NAME = "memory"
TITLE = "Recurrent defaults on Randman, and delayed match-to-sample over delays"

# the recurrent defaults (``auto``) of snnbatch.jobs.lif_bptt: recurrent_weight_scale, recurrent_lr_scale
RECOMMENDED = 0.5
RECURRENT_LR = 0.1

FORMS = {
    "quick": {"randman": {"bptt": [2e-3]}, "randman_seeds": [0], "delays": [0, 50], "seeds": [0]},
    "full": {"randman": {"bptt": [2e-3, 5e-3], "eprop": [2e-3]}, "randman_seeds": [0, 1, 2],
             "delays": [0, 25, 50, 100, 200], "seeds": [0, 1, 2, 3, 4]},
}

# ------------------------------------------------------------------ Randman (examples/eprop.yaml's setting)

RANDMAN = {"type": "randman", "n_inputs": 100, "n_classes": 10, "n_train": 1000, "n_test": 500, "dim": 2,
           "n_steps": 100}
BEFORE = {"recurrent": True, "recurrent_weight_scale": None}  # the initialisation and learning rate before the keys
RANDMAN_NETWORKS = {
    "feed-forward": {"recurrent": False},
    "recurrent, as before the keys (scale 7, lr ×1)": BEFORE,
    f"recurrent, the defaults (scale {RECOMMENDED}, lr ×{RECURRENT_LR})": {"recurrent": True},
}


# the README's table of recurrent defaults: (rule, seeds), each at both learning rates of examples/eprop.yaml;
# the networks: (recurrent_weight_scale, recurrent_lr_scale)
SCALE_SWEEP = {"bptt": [0, 1, 2, 3, 4], "eprop": [0, 1, 2]}
SCALES = [(None, 1.0), (0.5, 1.0), (0.5, 0.3), (0.5, 0.1), (0.0, 0.1)]


def randman_spec(network: dict, rule: str, lr: float, seed: int) -> dict:
    return {"model": {"type": "lif", "n_hidden": 64, **network}, "dataset": RANDMAN, "learning": {"rule": rule},
            "training": {"iterations": 150, "batch_size": 128, "lr": lr}, "seed": seed}


# ------------------------------------------------------------------ delayed match-to-sample

MEMORY_DATA = {"type": "delayed_match"}  # the defaults: 2000 training and 500 test samples
ALIF = {"type": "alif", "tau_adapt": 0.5, "adapt_jump": 0.5}
BPTT, LAST = {"rule": "bptt"}, {"rule": "bptt", "readout": "last"}
EPROP = {"rule": "eprop"}
MEMORY_NETWORKS = {  # name: (model keys, learning keys)
    "feed-forward LIF, BPTT": ({"type": "lif", "recurrent": False}, BPTT),
    "feed-forward ALIF, BPTT": ({**ALIF, "recurrent": False}, BPTT),
    "recurrent LIF, BPTT": ({"type": "lif", "recurrent": True}, BPTT),
    "recurrent ALIF, BPTT": ({**ALIF, "recurrent": True}, BPTT),
    # the loss of the last step only: a network that forgot the cue is at chance (0.5), not at 0.75
    "feed-forward LIF, BPTT, readout last": ({"type": "lif", "recurrent": False}, LAST),
    "feed-forward ALIF, BPTT, readout last": ({**ALIF, "recurrent": False}, LAST),
    "recurrent LIF, BPTT, readout last": ({"type": "lif", "recurrent": True}, LAST),
    "recurrent ALIF, BPTT, readout last": ({**ALIF, "recurrent": True}, LAST),
    "feed-forward ALIF, e-prop": ({**ALIF, "recurrent": False}, EPROP),  # e-prop's gradient is exact here
    "recurrent LIF, e-prop": ({"type": "lif", "recurrent": True}, EPROP),
    "recurrent ALIF, e-prop": ({**ALIF, "recurrent": True}, EPROP),
}
MEMORY_TRAINING = {"iterations": 600, "batch_size": 64, "lr": 2e-3}


def memory_spec(network: dict, learning: dict, delay: int, seed: int) -> dict:
    return {"model": {"n_hidden": 64, **network}, "dataset": {**MEMORY_DATA, "delay_steps": delay},
            "learning": dict(learning), "training": MEMORY_TRAINING, "seed": seed}


# ------------------------------------------------------------------ running


def train(spec: dict) -> dict:
    """Train the task ``spec`` describes, start to end, in this process; its final metrics and seconds."""
    from snnbatch.jobs.config import TaskConfig
    from snnbatch.jobs.trainer import build_trainer, initial_state, total_iterations

    config = TaskConfig.model_validate(spec)
    t0 = time.perf_counter()
    trainer = build_trainer(config)
    state = initial_state(trainer)
    total = total_iterations(trainer, config.training)
    while state.iteration < total:
        state.record(trainer.step(state))
        state.iteration += 1
    out = {k: float(v) for k, v in trainer.evaluate(state).items()}
    out["train_accuracy"] = float(statistics.fmean(state.metrics["accuracy"][-10:]))
    out["seconds"] = time.perf_counter() - t0
    return out


def _group(label: str, specs: list[dict], log, pool=None) -> dict:
    t0 = time.perf_counter()
    runs = [train(s) for s in specs] if pool is None else list(pool.map(train, specs))
    acc = [r["test_accuracy"] for r in runs]
    log(f"{label}: test accuracy {', '.join(f'{a:.3f}' for a in acc)}")
    return {"test_accuracy": acc, "train_accuracy": [r["train_accuracy"] for r in runs],
            "mean": statistics.fmean(acc), "min": min(acc), "max": max(acc), "seconds": time.perf_counter() - t0}


def run(mode: str, log, pool=None, only_memory: bool = False, networks: str = "") -> dict:
    """The form ``mode`` of :data:`FORMS`; ``pool``: an executor to spread each group's seeds over;
    ``only_memory``: no Randman part; ``networks``: only the memory networks whose name contains it."""
    form = FORMS[mode]
    randman = []
    for rule, lrs in ({} if only_memory else form["randman"]).items():
        for lr in lrs:
            for name, network in RANDMAN_NETWORKS.items():
                specs = [randman_spec(network, rule, lr, s) for s in form["randman_seeds"]]
                randman.append({"rule": rule, "lr": lr, "network": name,
                                **_group(f"Randman {rule} lr {lr:g} {name}", specs, log, pool)})
    memory = []
    for name, (network, learning) in MEMORY_NETWORKS.items():
        if networks not in name:
            continue
        for delay in form["delays"]:
            specs = [memory_spec(network, learning, delay, s) for s in form["seeds"]]
            memory.append({"network": name, "delay": delay, **_group(f"delay {delay} {name}", specs, log, pool)})
    return {"recommended": RECOMMENDED, "recurrent_lr": RECURRENT_LR, "randman": randman, "memory": memory, "delays": form["delays"],
            "seeds": form["seeds"], "randman_seeds": form["randman_seeds"], "memory_training": MEMORY_TRAINING,
            "memory_data": MEMORY_DATA}


def _cell(r: dict) -> str:
    if len(r["test_accuracy"]) == 1:
        return f"{r['mean']:.2f}"
    return f"{r['mean']:.2f} ({r['min']:.2f}-{r['max']:.2f})"


def tables(result):
    from rich.table import Table

    n = len(result["randman_seeds"])
    t = Table(title=f"Randman, examples/eprop.yaml's setting: test accuracy, mean (range) over {n} seed(s)",
              title_justify="left",
              caption="10 classes, 64 LIF neurons, 150 iterations of 128 samples. 'as before the keys': "
                      "recurrent_weight_scale null (the recurrent weights at the input weights' scale) and the "
                      "recurrent weights learning at training.lr, as every run made before the keys existed.")
    for col in ("rule", "lr", "network", "test accuracy", "s"):
        t.add_column(col, justify="left" if col in ("rule", "network") else "right")
    for r in result["randman"]:
        t.add_row(r["rule"], f"{r['lr']:g}", r["network"], _cell(r), f"{r['seconds']:.0f}")
    m = Table(title=f"Delayed match-to-sample: test accuracy over delay (steps of 1 ms), mean (range) over "
                    f"{len(result['seeds'])} seed(s)", title_justify="left",
              caption=f"64 neurons, {result['memory_training']['iterations']} iterations of "
                      f"{result['memory_training']['batch_size']}, lr {result['memory_training']['lr']:g}, "
                      f"recurrent networks with the defaults (recurrent_weight_scale {result['recommended']}, "
                      f"recurrent_lr_scale {result.get('recurrent_lr', RECURRENT_LR)}), ALIF tau_adapt 0.5 s, adapt_jump 0.5. "
                      "Chance 0.5; 0.75 is reachable without memory through the readout's max (or sum) over time, "
                      "0.5 only with readout last.")
    m.add_column("network", justify="left")
    for d in result["delays"]:
        m.add_column(f"delay {d}", justify="right")
    m.add_column("s", justify="right")
    for name in dict.fromkeys(r["network"] for r in result["memory"]):
        rows = {r["delay"]: r for r in result["memory"] if r["network"] == name}
        m.add_row(name, *[_cell(rows[d]) for d in result["delays"]],
                  f"{sum(r['seconds'] for r in rows.values()):.0f}")
    return [t, m]


def _label(scale, lr_scale) -> str:
    return f"scale {'none (7)' if scale is None else scale}, lr ×{lr_scale}"


def scale_sweep(log=print, workers: int = 2) -> list[dict]:
    """The README's Randman table: feed-forward and every pair of :data:`SCALES`, mean over seeds.

    The runs are spread over ``workers`` processes (accuracy only: the seconds are not comparable).
    """
    from concurrent.futures import ProcessPoolExecutor

    groups = []
    for rule, seeds in SCALE_SWEEP.items():
        for lr in (2e-3, 5e-3):
            networks = {"feed-forward": {"recurrent": False}}
            for scale, lr_scale in SCALES:
                networks[_label(scale, lr_scale)] = {"recurrent": True, "recurrent_weight_scale": scale,
                                                     "recurrent_lr_scale": lr_scale}
            for name, network in networks.items():
                groups.append((rule, lr, name, [randman_spec(network, rule, lr, s) for s in seeds]))
    with ProcessPoolExecutor(workers) as pool:
        futures = [[pool.submit(train, spec) for spec in specs] for *_, specs in groups]
        rows = []
        for (rule, lr, name, _), runs in zip(groups, futures):
            acc = [f.result()["test_accuracy"] for f in runs]
            rows.append({"rule": rule, "lr": lr, "network": name, "test_accuracy": acc,
                         "mean": statistics.fmean(acc)})
            log(f"{rule} lr {lr:g} {name}: mean {statistics.fmean(acc):.3f} over {len(acc)} seeds "
                f"({', '.join(f'{a:.3f}' for a in acc)})")
    return rows


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_memory")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--scales", action="store_true",
                       help="the README's Randman table of recurrent_weight_scale and recurrent_lr_scale values")
    which.add_argument("--memory", action="store_true",
                       help="the README's delayed match-to-sample table (the full form's), on 2 processes")
    parser.add_argument("--networks", default="", metavar="TEXT",
                        help="with --memory: only the networks whose name contains TEXT ('recurrent', 'e-prop')")
    args = parser.parse_args()
    if args.scales:
        scale_sweep()
    else:
        from concurrent.futures import ProcessPoolExecutor

        from rich.console import Console

        with ProcessPoolExecutor(2) as pool:
            t0 = time.perf_counter()
            result = run("full", print, pool=pool, only_memory=True, networks=args.networks)
        Console(width=200).print(tables(result)[1])
        print(f"{(time.perf_counter() - t0) / 60:.1f} minutes")
