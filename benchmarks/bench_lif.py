"""LIF kernel vs its peers: seconds per training epoch and peak memory, 1 and 2 threads.

Randman, 100 inputs -> 128 LIF -> 2 readouts, T = 100, batch 256, 2000 samples per
epoch, float32, Adam (forward, backward and optimizer step); feed-forward and
recurrent. Every (implementation, network, threads) runs in a fresh subprocess,
so its thread counts come from the environment and its peak memory (VmHWM) is its own.
Epoch times are medians over repeats; speed figures are ratios to the fastest
peer measured in the same run.

Peers (benchmarks/peers.py): ``spytorch`` is the reference the way the SpyTorch
tutorial writes it; ``spytorch-unbind`` is the same code with the per-step slices
taken by ``unbind`` (the tutorial's ``h1[:, t]`` costs O(T²) in autograd); snnTorch
and Norse as their users write such a network. All run with 1 thread; with 2
threads the full form runs every peer, the quick form the kernel and the fastest
peers. A float64 check confirms that ``spytorch`` computes the kernel's gradient.
"""
from __future__ import annotations

import os
import time

NAME = "lif"
TITLE = "LIF kernel vs PyTorch peers (Randman 100-128-2, T=100, batch 256, 2000 samples/epoch, float32)"

N_INPUTS, N_HIDDEN, N_OUTPUTS, T, BATCH, N_TRAIN, LR = 100, 128, 2, 100, 256, 2000, 2e-3
PEERS = ("spytorch", "spytorch-unbind", "snntorch", "norse")
QUICK_2_THREADS = ("kernel", "spytorch-unbind", "norse")  # the quick form's 2-thread rows: kernel, fastest peers
SPECIFIED = ("spytorch", "snntorch", "norse")  # the references the targets name


def _data(n_inputs=N_INPUTS, n_steps=T, n_train=N_TRAIN, seed=0):
    import numpy as np

    from snnbatch.kernels import randman

    cfg = randman.RandmanConfig(n_inputs=n_inputs, n_train=n_train, n_test=2, n_steps=n_steps)
    return randman.make_dataset(cfg, np.random.default_rng(seed))


def _batches(n_train, batch, epoch):
    import numpy as np

    order = np.random.default_rng(1000 + epoch).permutation(n_train)
    return [order[i : i + batch] for i in range(0, n_train, batch)]


def epoch_task(impl: str, recurrent: bool, threads: int, repeats: int, n_hidden: int = N_HIDDEN, n_steps: int = T,
               batch: int = BATCH, n_train: int = N_TRAIN, dtype: str = "float32", start_at: float = 0.0,
               surrogate_cutoff: float = 0.0) -> dict:
    """Median seconds per epoch (forward, backward, Adam) of ``impl`` in this process.

    ``start_at``: a ``time.time()`` before which the timed epochs do not begin (so that processes run
    side by side time the same interval). ``surrogate_cutoff``: the kernel's sparse backward (0: exact).
    """
    import numpy as np

    from snnbatch.kernels import lif

    from .common import hwm_mib, peak_rss_mib, reset_peak_rss, rss_mib

    data = _data(n_steps=n_steps, n_train=n_train)
    cfg = lif.LIFConfig(n_inputs=N_INPUTS, n_hidden=n_hidden, n_outputs=N_OUTPUTS, recurrent=recurrent, dtype=dtype,
                        surrogate_cutoff=surrogate_cutoff)
    params = lif.init_params(cfg, np.random.default_rng(1))
    if impl == "kernel":
        import numba

        from snnbatch.kernels import optim

        numba.set_num_threads(threads)
        state = optim.adam_init(params)

        def epoch(e, warm_up=False):
            loss = 0.0
            for idx in _batches(n_train, batch, e)[: 1 if warm_up else None]:
                loss, _, grads = lif.loss_acc_grad(params, data.train_events, data.train_labels, cfg, idx)
                optim.adam_step(params, grads, state, LR)
            return loss
    else:
        import torch

        from . import peers

        torch.set_num_threads(threads)
        model = peers.make_model(impl, cfg, params)
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        labels = torch.tensor(data.train_labels)

        def epoch(e, warm_up=False):
            loss = None
            for idx in _batches(n_train, batch, e)[: 1 if warm_up else None]:
                x = peers.dense_inputs(data.train_events.take(idx), N_INPUTS)
                loss = peers.max_readout_loss(model(x), labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            return loss.item()

    base = rss_mib()
    epoch(0, warm_up=True)  # one batch: compilation (from the cache if filled), allocator
    time.sleep(max(0.0, start_at - time.time()))
    warm = rss_mib()
    reset = reset_peak_rss()
    wall, cpu, losses, loads = [], [], [], []
    for e in range(1, repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        losses.append(float(epoch(e)))
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        loads.append(os.getloadavg()[0])
    return {"wall": wall, "cpu": cpu, "last_loss": losses[-1], "base_rss_mib": base, "warm_rss_mib": warm,
            "train_peak_rss_mib": hwm_mib() if reset else float("nan"), "peak_rss_mib": peak_rss_mib(),
            "load_average": loads}


CUTOFFS = (0.01, 0.1)  # the sparse backward's cut-offs measured (σ' ≤ 1; 0.1: |U − ϑ| > 0.022 counts as zero)
ACCURACY_SEEDS = (1, 2, 3)  # initial weights; the data are the same for every seed
# (classes, manifold dimension, epochs): the timed network's 2-class Randman, which every cut-off solves in
# 10 epochs, and a harder one on which accuracy can be lost (30 epochs: after 10 the seeds spread over 30 points)
ACCURACY_TASKS = ((2, 1, 10), (10, 2, 30))


def cutoff_accuracy_task(cutoffs, seeds=ACCURACY_SEEDS, tasks=ACCURACY_TASKS) -> dict:
    """Test accuracy after each task's epochs of the recurrent network (the timed one, with as many readouts
    as classes), for each Randman task, cut-off (0 = exact) and seed of the initial weights: every cut-off
    starts from the same weights. ``kept``: the share of (neuron, step) surrogate derivatives ≥ the cut-off
    at the start (first seed)."""
    import numpy as np

    from snnbatch.kernels import lif, optim, randman

    out = {}
    for n_classes, dim, epochs in tasks:
        data = randman.make_dataset(randman.RandmanConfig(n_inputs=N_INPUTS, n_classes=n_classes, dim=dim,
                                                          n_train=N_TRAIN, n_test=1000, n_steps=T),
                                    np.random.default_rng(0))
        task = out.setdefault(f"{n_classes} classes, dimension {dim}, {epochs} epochs", {})
        for cut in cutoffs:
            cfg = lif.LIFConfig(n_inputs=N_INPUTS, n_hidden=N_HIDDEN, n_outputs=n_classes, recurrent=True,
                                surrogate_cutoff=cut)
            accuracies, kept = [], None
            for seed in seeds:
                params = lif.init_params(cfg, np.random.default_rng(seed))
                if kept is None:
                    U = lif.forward(params, data.train_events, cfg, np.arange(BATCH)).voltages
                    kept = float((1.0 / (cfg.surrogate_scale * np.abs(U - cfg.threshold) + 1.0) ** 2 >= cut).mean())
                state = optim.adam_init(params)
                for e in range(1, epochs + 1):
                    for idx in _batches(N_TRAIN, BATCH, e):
                        _, _, grads = lif.loss_acc_grad(params, data.train_events, data.train_labels, cfg, idx)
                        optim.adam_step(params, grads, state, LR)
                accuracies.append(lif.evaluate(params, data.test_events, data.test_labels, cfg)["accuracy"])
            task[str(cut)] = {"test_accuracy": float(np.mean(accuracies)), "min": float(np.min(accuracies)),
                              "max": float(np.max(accuracies)), "per_seed": accuracies, "kept": kept}
    return out


def check_task() -> dict:
    """float64: the SpyTorch reference's loss and gradient against the kernel's (same network?)."""
    import numpy as np
    import torch

    from snnbatch.kernels import lif

    from . import peers

    data = _data(n_train=64)
    out = {}
    for recurrent in (False, True):
        cfg = lif.LIFConfig(recurrent=recurrent, dtype="float64")
        params = lif.init_params(cfg, np.random.default_rng(1))
        loss, grads = lif.loss_and_grad(params, data.train_events, data.train_labels, cfg)
        model = peers.make_model("spytorch", cfg, params)
        x = peers.dense_inputs(data.train_events, N_INPUTS, torch.float64)
        tloss = peers.max_readout_loss(model(x), torch.tensor(data.train_labels))
        tloss.backward()
        err = max(float(np.abs(getattr(model, k).grad.numpy() - g).max() / np.abs(g).max()) for k, g in grads.items())
        out["recurrent" if recurrent else "feed-forward"] = {"loss_rel_diff": abs(tloss.item() - loss) / loss,
                                                             "grad_max_rel_diff": err}
    return out


def run(mode: str, log) -> dict:
    from .common import median, subprocess_task

    full = mode == "full"
    repeats_kernel, repeats_peer = (7, 5) if full else (5, 3)
    rows = []
    for threads in (1, 2):
        for recurrent in (False, True):
            for impl in ("kernel", *PEERS):
                if threads == 2 and not full and impl not in QUICK_2_THREADS:
                    continue
                net = "recurrent" if recurrent else "feed-forward"
                log(f"{impl:16s} {net:13s} {threads} thread(s)")
                kwargs = dict(impl=impl, recurrent=recurrent, threads=threads,
                              repeats=repeats_kernel if impl == "kernel" else repeats_peer)
                try:
                    r = subprocess_task("benchmarks.bench_lif:epoch_task", kwargs, threads=threads)
                except Exception as exc:  # noqa: BLE001 - a broken peer is reported, the others still run
                    rows.append({"impl": impl, "net": net, "threads": threads, "error": str(exc)[-500:]})
                    continue
                rows.append({"impl": impl, "net": net, "threads": threads, "wall": r["wall"], "cpu": r["cpu"],
                             "wall_median": median(r["wall"]), "cpu_median": median(r["cpu"]),
                             **{k: r[k] for k in ("peak_rss_mib", "base_rss_mib", "warm_rss_mib",
                                                  "train_peak_rss_mib", "last_loss", "load_average")}})
    _ratios(rows)
    log("sparse backward: recurrent kernel epochs with surrogate cut-offs " + ", ".join(map(str, CUTOFFS)))
    sparse = _sparse_rows(rows, repeats_kernel)
    log("sparse backward: test accuracy, exact and with the cut-offs, on " + "; ".join(
        f"{c} classes, dimension {d}, {e} epochs" for c, d, e in ACCURACY_TASKS))
    sparse_acc = subprocess_task("benchmarks.bench_lif:cutoff_accuracy_task", {"cutoffs": (0.0, *CUTOFFS)}, threads=1)
    sparse_acc.pop("peak_rss_mib", None)
    sparse_acc.pop("process_seconds", None)
    machine = {}
    for recurrent in (False, True):
        net = "recurrent" if recurrent else "feed-forward"
        log(f"two 1-thread kernel processes at once, {net} (what the machine gives 2 independent workers)")
        machine[net] = _pair_throughput(recurrent, repeats_kernel, rows)
    log("float64 gradient check against the SpyTorch reference")
    check = subprocess_task("benchmarks.bench_lif:check_task", {}, threads=1)
    check.pop("peak_rss_mib", None)
    check.pop("process_seconds", None)
    return {"rows": rows, "machine": machine, "check": check, "sparse": sparse, "sparse_accuracy": sparse_acc,
            "repeats": {"kernel": repeats_kernel, "peer": repeats_peer}}


def _sparse_rows(rows, repeats: int) -> list:
    """1-thread recurrent kernel epochs with each cut-off; speed-up = the exact kernel's CPU time in this run
    (the kernel row above) / this one's."""
    from .common import median, subprocess_task

    exact = next((r for r in rows if (r["impl"], r["net"], r["threads"]) == ("kernel", "recurrent", 1)
                  and "error" not in r), None)
    out = []
    for cut in CUTOFFS:
        r = subprocess_task("benchmarks.bench_lif:epoch_task", dict(impl="kernel", recurrent=True, threads=1,
                                                                     repeats=repeats, surrogate_cutoff=cut), threads=1)
        row = {"cutoff": cut, "cpu": r["cpu"], "cpu_median": median(r["cpu"])}
        if exact:
            row["speedup"] = exact["cpu_median"] / row["cpu_median"]
        out.append(row)
    return out


def _pair_throughput(recurrent: bool, repeats: int, rows) -> dict:
    """The machine's own 1 -> 2 core ceiling for this work: two independent 1-thread kernel processes timing
    the same interval (both start at ``start_at``, after their set-up); throughput gain = 2 × (1-thread
    epoch alone) / (epoch with the other one running)."""
    from concurrent.futures import ThreadPoolExecutor

    from .common import median, subprocess_task

    net = "recurrent" if recurrent else "feed-forward"
    kwargs = dict(impl="kernel", recurrent=recurrent, threads=1, repeats=repeats, start_at=time.time() + 6.0)
    with ThreadPoolExecutor(2) as pool:
        pair = list(pool.map(lambda _: subprocess_task("benchmarks.bench_lif:epoch_task", kwargs, threads=1), range(2)))
    alone = next(r for r in rows if (r["impl"], r["net"], r["threads"]) == ("kernel", net, 1) and "error" not in r)
    two = next((r for r in rows if (r["impl"], r["net"], r["threads"]) == ("kernel", net, 2) and "error" not in r), None)
    together = median(pair[0]["wall"] + pair[1]["wall"])
    out = {"pair_wall_median": together, "throughput_gain": 2 * alone["wall_median"] / together}
    if two:
        out["kernel_2_threads_gain"] = alone["wall_median"] / two["wall_median"]
        out["of_machine"] = out["kernel_2_threads_gain"] / out["throughput_gain"]
    return out


def _ratios(rows):
    """Kernel speed-ups over each peer and over the fastest one; 1 -> 2 thread speed-ups.

    With one thread the speed-ups are ratios of CPU time: on a machine shared with other work a
    single-threaded process's CPU time is what it costs, its wall time also counts the time it
    waited for a core (the wall ratio is kept alongside). With two threads they are wall-time
    ratios. The 1 -> 2 thread speed-up divides the 1-thread CPU time by the 2-thread wall time.
    """
    ok = [r for r in rows if "error" not in r]
    by = {(r["impl"], r["net"], r["threads"]): r for r in ok}

    def cost(r):
        return r["cpu_median"] if r["threads"] == 1 else r["wall_median"]

    for r in ok:
        r["cost"] = cost(r)
        r["cost_measure"] = "cpu" if r["threads"] == 1 else "wall"
        one = by.get((r["impl"], r["net"], 1))
        if r["threads"] == 2 and one:
            r["speedup_1_to_2"] = one["cpu_median"] / r["wall_median"]
        if r["impl"] != "kernel":
            k = by.get(("kernel", r["net"], r["threads"]))
            if k:
                r["kernel_speedup"] = cost(r) / cost(k)
                r["kernel_speedup_wall"] = r["wall_median"] / k["wall_median"]
    for r in ok:
        if r["impl"] == "kernel":
            peers = [p for p in ok if p["impl"] != "kernel" and p["net"] == r["net"] and p["threads"] == r["threads"]]
            for key, group in (("vs_fastest_specified", [p for p in peers if p["impl"] in SPECIFIED]),
                               ("vs_fastest_any", peers)):
                if group:
                    best = min(group, key=cost)
                    r[key] = {"peer": best["impl"], "speedup": cost(best) / cost(r)}


TARGETS = {"feed-forward": 18.0, "recurrent": 15.0}


def tables(result):
    from rich.table import Table

    t = Table(title=TITLE, title_justify="left",
              caption="speed-ups: 1 thread by CPU time, 2 threads by wall time (wall ratio in brackets); 1→2: "
                      "1-thread CPU / 2-thread wall. peak RSS: VmHWM of the fresh process (interpreter, libraries, "
                      "data included); training MiB: peak during the timed epochs above the RSS after a warm-up "
                      "batch; load: 1-min load average of the machine during the run.")
    for col in ("implementation", "network", "threads", "s/epoch (wall)", "s/epoch (cpu)", "kernel speed-up",
                "1→2 threads", "peak RSS MiB", "training MiB", "load"):
        t.add_column(col, justify="left" if col in ("implementation", "network") else "right")
    for r in result["rows"]:
        if "error" in r:
            t.add_row(r["impl"], r["net"], str(r["threads"]), "[red]failed[/red]", "", "", "", "", "", "")
            continue
        if r["impl"] == "kernel":
            sp = ""
        else:
            sp = f"{r['kernel_speedup']:.1f}× ({r['kernel_speedup_wall']:.1f}×)" if "kernel_speedup" in r else ""
        t.add_row(r["impl"], r["net"], str(r["threads"]), f"{r['wall_median']:.3f}", f"{r['cpu_median']:.3f}", sp,
                  f"{r['speedup_1_to_2']:.2f}×" if "speedup_1_to_2" in r else "", f"{r['peak_rss_mib']:.0f}",
                  f"{r['train_peak_rss_mib'] - r['warm_rss_mib']:.1f}", f"{max(r['load_average']):.1f}")
    s = Table(title="Targets: kernel epoch vs the fastest peer, same threads (feed-forward ≥18×, recurrent ≥15×)",
              title_justify="left", caption="specified peers: spytorch (tutorial-style), snnTorch, Norse; "
                                            "spytorch-unbind is the tutorial code without its O(T²) slicing")
    for col in ("network", "threads", "vs fastest specified peer", "vs fastest peer incl. spytorch-unbind"):
        s.add_column(col)
    for r in result["rows"]:
        if r["impl"] != "kernel" or "vs_fastest_any" not in r:
            continue
        cells = []
        for key in ("vs_fastest_specified", "vs_fastest_any"):
            v = r.get(key)
            if v is None:
                cells.append("(not run)")
                continue
            mark = "[green]met[/green]" if v["speedup"] >= TARGETS[r["net"]] else "[red]missed[/red]"
            cells.append(f"{v['speedup']:.1f}× vs {v['peer']} {mark}")
        s.add_row(r["net"], str(r["threads"]), *cells)
    m = Table(title="1 → 2 cores: the kernel with 2 threads against what the machine gives two independent workers",
              title_justify="left", caption="machine: two 1-thread kernel processes at once, throughput gain = 2 × the "
                                            "1-thread epoch alone / the epoch with the other one running (wall times)")
    for col in ("network", "kernel, 2 threads (1-thread wall / 2-thread wall)", "machine, 2 processes", "kernel / machine"):
        m.add_column(col, justify="left" if col == "network" else "right")
    for net, v in result.get("machine", {}).items():
        m.add_row(net, f"{v['kernel_2_threads_gain']:.2f}×" if "kernel_2_threads_gain" in v else "",
                  f"{v['throughput_gain']:.2f}×", f"{v['of_machine']:.0%}" if "of_machine" in v else "")
    c = Table(title="Same network? float64, SpyTorch reference vs kernel", title_justify="left")
    for col in ("network", "loss rel. diff", "max grad rel. diff"):
        c.add_column(col)
    for net, v in result["check"].items():
        c.add_row(net, f"{v['loss_rel_diff']:.1e}", f"{v['grad_max_rel_diff']:.1e}")
    tables = [t, s, m, c]
    if "sparse" in result:
        acc = result.get("sparse_accuracy", {})
        tasks = [k for k, v in acc.items() if isinstance(v, dict) and "0.0" in v]
        sp = Table(title=f"Sparse backward (surrogate_cutoff), recurrent, 1 thread: speed-up over the exact kernel "
                         f"in this run; test accuracy (1000 test samples), mean (lowest to highest) over "
                         f"{len(ACCURACY_SEEDS)} seeds of the initial weights, per Randman task",
                   title_justify="left", caption="kept: share of (neuron, step) surrogate derivatives ≥ the cut-off "
                                                 "at the initial weights (the ones whose dL/dS the backward computes)")
        for col in ("cut-off", "s/epoch (cpu)", "speed-up", *(f"kept, {t}" for t in tasks), *tasks):
            sp.add_column(col, justify="right")

        def accuracy(a):
            return (f"{a['test_accuracy']:.1%} ({a['min']:.1%} to {a['max']:.1%})" if "min" in a
                    else f"{a['test_accuracy']:.1%}")

        exact = next((r for r in result.get("rows", []) if (r["impl"], r["net"], r["threads"])
                      == ("kernel", "recurrent", 1) and "error" not in r), None)
        speed = {"0.0": exact, **{str(r["cutoff"]): r for r in result["sparse"]}}
        for cut in speed:
            r = speed.get(cut)
            sp.add_row(cut + (" (exact)" if cut == "0.0" else ""), f"{r['cpu_median']:.3f}" if r else "",
                       f"{r['speedup']:.2f}×" if r and "speedup" in r else "",
                       *(f"{acc[t][cut]['kept']:.1%}" if cut in acc[t] else "" for t in tasks),
                       *(accuracy(acc[t][cut]) if cut in acc[t] else "" for t in tasks))
        tables.append(sp)
    return tables
