"""Two recurrent LIF layers on data shaped like the Heidelberg digits: kernel vs PyTorch peers over input density.

Synthetic data of SHD's shape (700 input channels, 20 classes, 100 time bins), input spike
density swept from 0.5 % to 10 % of (channel, bin) cells; the network 700 -> 256 (recurrent)
-> 256 (recurrent) -> 20, trained by BPTT (max-over-time readout, Adam), float32, batch 256,
1024 samples per epoch. The network is regularised: the training loss adds the activity penalty
(README, Activity penalty) on every hidden neuron's spike count per sample, both bounds on,
:data:`ACTIVITY`: upper bound 3 spikes at strength 1e-3, lower bound 1 spike at strength 1e-2
(at the initial weights both are active for some neurons at every density measured: the lower one
for the silent neurons, 27-79 % of each layer's (sample, neuron) counts, the upper one for 0.6-0.7 %
of them at 0.5 % density, 30-49 % at 2 % and 58-66 % at 10 %). The kernel is :mod:`snnbatch.kernels.deep` (what a spec with
``model: {n_hidden: [256, 256], recurrent: true}`` and these ``learning.activity_*`` keys trains); the
peers are the same network in PyTorch (:data:`benchmarks.peers.DEEP_PEERS`: SpyTorch's loop with
``unbind``, snnTorch, Norse), each keeping its layers' spike counts during forward and adding the same
penalty to its loss (:func:`benchmarks.peers.deep_loss`). The kernel is also timed without the penalty
(``kernel-unreg``, the exact backward), to show what the penalty costs it; the speed-ups compare only the
regularised networks. Every (implementation, density) runs in a fresh 1-thread subprocess; speed-ups
are ratios of CPU time to the fastest peer at the same density, in the same run (target: >= 10x at
every density). :func:`check_task` checks, in float64, that the kernel's loss (penalty included) and
gradients equal the SpyTorch-style peer's autograd on the same weights and batch.

Sparse backward (``surrogate_cutoff``, Perez-Nieves & Goodman 2021): at every density the kernel
also runs with the cut-offs :data:`CUTOFFS`, its speed-up being the exact kernel's CPU time over
its own, measured in the same run next to it; :func:`cutoff_accuracy_task` trains the network a few
epochs on SHD-shaped data, exact and with each cut-off from the same initial weights, and reports
the test accuracy (and the share of surrogate derivatives each cut-off keeps).

Event-driven input: the kernel adds one row of the input weights per input spike (and, backward,
one gradient row), where a dense network multiplies the whole (steps x 700) input by them. Which
pays depends on the density: :func:`input_stage_task` times both forms of that stage (the event loop
as the kernel runs it, the dense products through NumPy's BLAS) at every density, and the table
states where the dense form becomes the cheaper one.
"""
from __future__ import annotations

import os
import time

NAME = "shd"
TITLE = ("Two recurrent layers, SHD-shaped data (700-256-256-20, T=100, batch 256, 1024 samples/epoch, float32), "
         "regularised: activity penalty on every hidden neuron's spike count, upper bound 3 (strength 1e-3) and "
         "lower bound 1 (strength 1e-2)")

N_INPUTS, N_CLASSES, T, HIDDEN, BATCH, N_TRAIN, LR = 700, 20, 100, (256, 256), 256, 1024, 1e-3
PEERS = ("spytorch-unbind", "snntorch", "norse")
FORMS = {"quick": {"densities": (0.005, 0.02, 0.1), "repeats": 2},
         "full": {"densities": (0.005, 0.01, 0.02, 0.05, 0.1), "repeats": 3}}
TARGET = 10.0
# The activity penalty of the timed network (kernels/deep.py's fields): both bounds on. Spike counts per sample
# at the initial weights (first batch, SpyTorch-style peer, float32) lie from 0 (26-79 % of each layer's counts) to
# a 99th percentile of 3 (0.5 % density) to 92 (10 %), so a count above 3 and one below 1 both occur at every density.
ACTIVITY = {"activity_upper": 3.0, "activity_upper_strength": 1e-3,
            "activity_lower": 1.0, "activity_lower_strength": 1e-2}
CUTOFFS = (0.01, 0.1)  # the sparse backward's cut-offs measured (σ' ≤ 1; 0.1: |U − ϑ| > 0.022 counts as zero)
# The accuracy cost: the training set of the timed epochs and a test set from the same class patterns;
# (density, epochs, batch, learning rate, seeds of the initial weights; the data are the same for every seed).
# Smaller batches and rate than the timed epochs': with batch 256 and 1e-3 (4 epochs) and with 64 and 2e-3
# (8 epochs) the exact gradient left seed 1 at chance (5 %); with 32 and 5e-4 it learns.
ACCURACY = {"quick": (0.02, 12, 32, 5e-4, (1, 2, 3)), "full": (0.02, 30, 32, 5e-4, (1, 2, 3))}
N_TEST = 512


def make_data(density: float, n: int = N_TRAIN, seed: int = 0):
    """(events, labels): ``n`` samples, each of one of 20 classes; a class is a smooth random
    spectro-temporal rate pattern (as a spoken digit is a pattern over frequency channels and time),
    scaled so that the mean spike probability per (channel, bin) is ``density``."""
    import numpy as np

    from snnbatch.kernels import events

    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, T)[:, None]
    ch = np.linspace(0.0, 1.0, N_INPUTS)[None, :]
    patterns = np.zeros((N_CLASSES, T, N_INPUTS))
    for c in range(N_CLASSES):
        for _ in range(4):  # a few formant-like ridges per class
            t0, c0, slope = rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.95), rng.uniform(-0.5, 0.5)
            patterns[c] += np.exp(-((ch - c0 - slope * (t - t0)) ** 2) / 0.002 - (t - t0) ** 2 / 0.05)
    patterns = 0.2 + patterns  # background
    labels = rng.integers(0, N_CLASSES, n)
    rates = patterns[labels]
    rates *= density / rates.mean()
    spikes = rng.random(rates.shape) < np.minimum(rates, 1.0)
    return events.from_dense(spikes.astype(np.uint8)), labels.astype(np.int64)


def _cfg(dtype="float32", regularised: bool = True):
    """The timed network's config; ``regularised``: with the activity penalty :data:`ACTIVITY`."""
    from snnbatch.kernels import deep

    return deep.DeepLIFConfig(n_inputs=N_INPUTS, n_hidden=HIDDEN, recurrent=(True,) * len(HIDDEN),
                              n_outputs=N_CLASSES, dtype=dtype, recurrent_weight_scale=0.5,
                              **(ACTIVITY if regularised else {}))


def _batches(epoch):
    import numpy as np

    order = np.random.default_rng(1000 + epoch).permutation(N_TRAIN)
    return [order[i : i + BATCH] for i in range(0, N_TRAIN, BATCH)]


def epoch_task(impl: str, density: float, repeats: int, surrogate_cutoff: float = 0.0,
               regularised: bool = True) -> dict:
    """CPU and wall seconds per epoch (forward, backward, Adam) of ``impl`` in this process, 1 thread.

    ``surrogate_cutoff``: the kernel's sparse backward (0: exact); ``regularised``: with the activity penalty."""
    import numpy as np

    from snnbatch.kernels import deep

    from .common import median

    ev, labels = make_data(density)
    cfg = _cfg(regularised=regularised)._replace(surrogate_cutoff=surrogate_cutoff)
    params = deep.init_params(cfg, np.random.default_rng(1))
    if impl == "kernel":
        import numba

        from snnbatch.kernels import optim

        numba.set_num_threads(1)
        state = optim.adam_init(params)

        def epoch(e, warm_up=False):
            loss = 0.0
            for idx in _batches(e)[: 1 if warm_up else None]:
                loss, _, grads = deep.loss_acc_grad(params, ev, labels, cfg, idx)
                optim.adam_step(params, grads, state, LR)
            return loss
    else:
        import torch

        from . import peers

        torch.set_num_threads(1)
        model = peers.DEEP_PEERS[impl](cfg, params)
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        y = torch.tensor(labels)

        def epoch(e, warm_up=False):
            loss = None
            for idx in _batches(e)[: 1 if warm_up else None]:
                x = peers.dense_inputs(ev.take(idx), N_INPUTS)
                loss = peers.deep_loss(model, model(x), y[idx])  # readout loss (+ activity penalty)
                opt.zero_grad()
                loss.backward()
                opt.step()
            return loss.item()

    epoch(0, warm_up=True)
    wall, cpu, loads = [], [], []
    for e in range(1, repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        epoch(e)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        loads.append(os.getloadavg()[0])
    return {"wall_median": median(wall), "cpu_median": median(cpu), "load": max(loads),
            "density_measured": float(len(ev.units)) / (N_TRAIN * T * N_INPUTS)}


def kept_share(params, ev, cfg, index, cutoffs) -> dict:
    """Per cut-off, the share of (sample, neuron, step) surrogate derivatives σ'(U − ϑ) ≥ it over both layers,
    for the samples ``index``: the neurons whose dL/dS the sparse backward computes. From a float64 NumPy
    forward pass of deep.py's equations (not the kernel's bits: a statistic)."""
    import numpy as np

    B, L = len(index), len(cfg.n_hidden)
    x = np.zeros((B, T, N_INPUTS))
    for b, s in enumerate(index):
        for n in range(T):
            x[b, n, ev.units[ev.ptr[s, n]:ev.ptr[s, n + 1]]] += 1.0
    w_in = [params["w_in" if k == 0 else f"w_in{k}"].astype(np.float64) for k in range(L)]
    w_rec = [params["w_rec" if k == 0 else f"w_rec{k}"].astype(np.float64) for k in range(L)]
    U = [np.zeros((B, H)) for H in cfg.n_hidden]
    I = [np.zeros((B, H)) for H in cfg.n_hidden]
    sur = []
    for n in range(T):
        S = [(u > cfg.threshold).astype(np.float64) for u in U]
        for k in range(L):
            sur.append(1.0 / (cfg.surrogate_scale * np.abs(U[k] - cfg.threshold) + 1.0) ** 2)
            I[k] = cfg.alpha * I[k] + (x[:, n] if k == 0 else S[k - 1]) @ w_in[k] + S[k] @ w_rec[k]
            U[k] = cfg.beta * U[k] + I[k] - cfg.threshold * S[k]
    sur = np.concatenate([v.ravel() for v in sur])
    return {str(c): float((sur >= c).mean()) for c in cutoffs}


def cutoff_accuracy_task(cutoffs, density: float, epochs: int, batch: int, lr: float, seeds) -> dict:
    """Test accuracy after ``epochs`` epochs of the timed network (Adam, batches of ``batch``, rate ``lr``) for
    each cut-off (0 = exact) and seed of the initial weights: every cut-off starts from the same weights.
    Training set: the timed one (1024 samples); test set: :data:`N_TEST` further samples of the same class
    patterns. The network is the timed one, activity penalty included. ``kept``: :func:`kept_share` at the initial weights (first seed, first 256 samples of epoch 1);
    ``cpu``: CPU seconds of each training."""
    import numba
    import numpy as np

    from snnbatch.kernels import deep, optim

    numba.set_num_threads(1)
    ev, labels = make_data(density, n=N_TRAIN + N_TEST)
    test = np.arange(N_TRAIN, N_TRAIN + N_TEST)
    out = {"density": density, "epochs": epochs, "batch": batch, "lr": lr, "seeds": list(seeds), "n_test": N_TEST}
    base = _cfg()
    params0 = deep.init_params(base, np.random.default_rng(seeds[0]))
    out["kept"] = kept_share(params0, ev, base, _batches(1)[0], [c for c in cutoffs if c > 0])
    for cut in cutoffs:
        cfg = base._replace(surrogate_cutoff=cut)
        accuracies, cpu = [], []
        for seed in seeds:
            params = deep.init_params(cfg, np.random.default_rng(seed))
            state = optim.adam_init(params)
            c0 = time.process_time()
            for e in range(1, epochs + 1):
                order = np.random.default_rng(1000 + e).permutation(N_TRAIN)
                for i in range(0, N_TRAIN, batch):
                    _, _, grads = deep.loss_acc_grad(params, ev, labels, cfg, order[i:i + batch])
                    optim.adam_step(params, grads, state, lr)
            cpu.append(time.process_time() - c0)
            accuracies.append(deep.evaluate(params, ev, labels, cfg, test)["accuracy"])
        out[str(cut)] = {"test_accuracy": float(np.mean(accuracies)), "min": float(np.min(accuracies)),
                         "max": float(np.max(accuracies)), "per_seed": accuracies, "cpu": cpu}
    out["load"] = os.getloadavg()[0]
    return out


def input_stage_task(densities, repeats: int = 5) -> dict:
    """Seconds for one batch's input stage, both ways, 1 thread: event-driven (a row of w_in added per
    input spike forward, a gradient row added per spike backward) and dense (x·W_in and xᵀ·G by BLAS)."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from snnbatch.kernels._jit import njit

    from .common import median

    @njit(nogil=True, fastmath=False)
    def events_stage(ptr, units, index, w, g, cur, gw):
        H = w.shape[1]
        for b in range(index.shape[0]):
            s = index[b]
            for n in range(ptr.shape[1] - 1):
                for e in range(ptr[s, n], ptr[s, n + 1]):
                    u = units[e]
                    for h in range(H):
                        cur[b, n, h] += w[u, h]
                    for h in range(H):
                        gw[u, h] += g[b, n, h]

    H = HIDDEN[0]
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.05, (N_INPUTS, H)).astype(np.float32)
    idx = np.arange(BATCH)
    g = rng.normal(0, 1, (BATCH, T, H)).astype(np.float32)
    out = {}
    with threadpool_limits(1):
        for d in densities:
            ev, _ = make_data(d, n=BATCH)
            x = np.zeros((BATCH, T, N_INPUTS), np.float32)
            for s in range(BATCH):
                for n in range(T):
                    x[s, n, ev.units[ev.ptr[s, n]:ev.ptr[s, n + 1]]] += 1.0
            cur = np.zeros((BATCH, T, H), np.float32)
            gw = np.zeros((N_INPUTS, H), np.float32)
            events_stage(ev.ptr, ev.units, idx, w, g, cur, gw)  # compile
            ev_t, dense_t = [], []
            for _ in range(repeats):
                cur[:] = 0
                gw[:] = 0
                c0 = time.process_time()
                events_stage(ev.ptr, ev.units, idx, w, g, cur, gw)
                ev_t.append(time.process_time() - c0)
                c0 = time.process_time()
                x2 = x.reshape(-1, N_INPUTS)
                dense_cur = x2 @ w
                dense_gw = x2.T @ g.reshape(-1, H)
                dense_t.append(time.process_time() - c0)
            assert np.allclose(dense_cur.reshape(cur.shape), cur, atol=1e-4)
            assert np.allclose(dense_gw, gw, rtol=1e-3, atol=1e-2)
            out[str(d)] = {"events": median(ev_t), "dense": median(dense_t)}
    return out


def check_task(densities=()) -> dict:
    """float64: the kernel's loss (activity penalty included) and gradient against the SpyTorch-style peer's
    autograd (same network, same weights, same 16 samples at 2 % density). ``loss_rel_diff``; ``grad_max_rel_diff``,
    the largest over the weight matrices of max |kernel − peer| / max |peer|; ``penalty``, the penalty's part of the
    loss. ``active``: per density of ``densities``, the share of (sample, neuron) spike counts above the upper
    bound and below the lower one, per layer, at the initial weights on the first timed batch (float32 forward of
    the peer): both bounds act on the timed network."""
    import numpy as np
    import torch

    from snnbatch.kernels import deep

    from . import peers

    cfg = _cfg("float64")
    ev, labels = make_data(0.02, n=16)
    params = deep.init_params(cfg, np.random.default_rng(1))
    loss, grads = deep.loss_and_grad(params, ev, labels, cfg)
    model = peers.DeepSpyTorchLIF(cfg, params)
    uo = model(peers.dense_inputs(ev, N_INPUTS, torch.float64))
    y = torch.tensor(labels)
    ref = peers.deep_loss(model, uo, y)
    penalty = float(peers.activity_penalty(model.counts, cfg).detach())
    ref.backward()
    theirs = {"w_out": model.w_out.grad}
    for k in range(len(HIDDEN)):
        a, b = peers._layer_names(k)
        theirs[a], theirs[b] = model.w_in[k].grad, model.w_rec[k].grad
    assert set(theirs) == set(grads)
    rel = max(float(np.abs(grads[k] - theirs[k].numpy()).max() / (np.abs(theirs[k].numpy()).max() + 1e-300))
              for k in grads)
    out = {"loss_rel_diff": abs(loss - ref.item()) / abs(ref.item()), "grad_max_rel_diff": rel,
           "loss": loss, "penalty": penalty, "active": {}}
    cfg32 = _cfg()
    params32 = deep.init_params(cfg32, np.random.default_rng(1))
    model = peers.DeepSpyTorchLIF(cfg32, params32)
    for d in densities:
        ev, _ = make_data(d)
        with torch.no_grad():
            model(peers.dense_inputs(ev.take(_batches(1)[0]), N_INPUTS))
        out["active"][str(d)] = [{"above_upper": float((c > cfg.activity_upper).double().mean()),
                                  "below_lower": float((c < cfg.activity_lower).double().mean())}
                                 for c in model.counts]
    return out


def run(mode: str, log) -> dict:
    from .common import subprocess_task

    form = FORMS[mode]
    rows = []
    sparse = []
    for d in form["densities"]:
        for impl in ("kernel", "kernel-unreg", *PEERS):
            log(f"{impl:16s} density {d:.1%}")
            task = {"impl": "kernel" if impl == "kernel-unreg" else impl, "density": d, "repeats": form["repeats"]}
            if impl == "kernel-unreg":  # the exact kernel without the activity penalty: what the penalty costs
                task["regularised"] = False
            try:
                r = subprocess_task("benchmarks.bench_shd:epoch_task", task, threads=1)
            except Exception as exc:  # noqa: BLE001 - a broken peer is reported, the others still run
                rows.append({"impl": impl, "density": d, "error": str(exc)[-500:]})
                continue
            rows.append({"impl": impl, "density": d, **{k: r[k] for k in ("wall_median", "cpu_median", "load",
                                                                          "density_measured")}})
            if impl == "kernel":  # the sparse backward, timed next to the exact kernel
                for cut in CUTOFFS:
                    log(f"{'kernel':16s} density {d:.1%}, surrogate_cutoff {cut}")
                    c = subprocess_task("benchmarks.bench_shd:epoch_task",
                                        {"impl": impl, "density": d, "repeats": form["repeats"],
                                         "surrogate_cutoff": cut}, threads=1)
                    sparse.append({"density": d, "cutoff": cut, "wall_median": c["wall_median"],
                                   "cpu_median": c["cpu_median"], "load": c["load"],
                                   "speedup": r["cpu_median"] / c["cpu_median"]})
    for d in form["densities"]:
        at = [r for r in rows if r["density"] == d and "error" not in r]
        k = next((r for r in at if r["impl"] == "kernel"), None)
        others = [r for r in at if r["impl"] in PEERS]
        if k and others:
            best = min(others, key=lambda r: r["cpu_median"])
            k["vs_fastest"] = {"peer": best["impl"], "speedup": best["cpu_median"] / k["cpu_median"]}
    density, epochs, batch, lr, seeds = ACCURACY[mode]
    log(f"sparse backward: test accuracy after {epochs} epochs at density {density:.1%}, exact and with the "
        "cut-offs " + ", ".join(map(str, CUTOFFS)))
    accuracy = subprocess_task("benchmarks.bench_shd:cutoff_accuracy_task",
                               {"cutoffs": [0.0, *CUTOFFS], "density": density, "epochs": epochs, "batch": batch,
                                "lr": lr, "seeds": list(seeds)}, threads=1)
    log("input stage: event-driven vs dense, per density")
    stage = subprocess_task("benchmarks.bench_shd:input_stage_task", {"densities": list(form["densities"])}, threads=1)
    log("float64 check of the regularised loss and gradient against the SpyTorch-style peer")
    check = subprocess_task("benchmarks.bench_shd:check_task", {"densities": list(form["densities"])}, threads=1)
    for r in (stage, check, accuracy):
        r.pop("peak_rss_mib", None)
        r.pop("process_seconds", None)
    return {"rows": rows, "sparse": sparse, "sparse_accuracy": accuracy, "input_stage": stage, "check": check,
            "target": TARGET}


def crossover(stage: dict) -> str:
    """Where the dense input stage becomes cheaper than the event-driven one, in words."""
    ds = sorted(float(d) for d in stage)
    dearer = [d for d in ds if stage[str(d)]["events"] > stage[str(d)]["dense"]]
    if not dearer:
        last = stage[str(ds[-1])]  # the event loop's cost grows in proportion to the density, the dense one's not
        return (f"event-driven input is the cheaper at every density measured (up to {ds[-1]:.1%}); in proportion, "
                f"it would stop paying near {ds[-1] * last['dense'] / last['events']:.0%}")
    first = dearer[0]
    below = [d for d in ds if d < first]
    return (f"event-driven input stops paying between {below[-1]:.1%} and {first:.1%}" if below
            else f"event-driven input is dearer already at {first:.1%}")


def tables(result):
    from rich.table import Table

    t = Table(title=TITLE, title_justify="left",
              caption="1 thread, fresh process per row; s/epoch medians; speed-up: the fastest peer's CPU time over "
                      f"the kernel's at the same density (target ≥ {result['target']:.0f}×); kernel-unreg: the "
                      "kernel without the activity penalty (not compared); load: 1-min load average")
    for col in ("density", "implementation", "s/epoch (wall)", "s/epoch (cpu)", "kernel vs fastest", "load"):
        t.add_column(col, justify="left" if col == "implementation" else "right")
    for r in result["rows"]:
        if "error" in r:
            t.add_row(f"{r['density']:.1%}", r["impl"], "[red]failed[/red]", "", "", "")
            continue
        sp = ""
        if "vs_fastest" in r:
            v = r["vs_fastest"]
            mark = "[green]met[/green]" if v["speedup"] >= result["target"] else "[red]missed[/red]"
            sp = f"{v['speedup']:.1f}× vs {v['peer']} {mark}"
        t.add_row(f"{r['density']:.1%}", r["impl"], f"{r['wall_median']:.3f}", f"{r['cpu_median']:.3f}", sp,
                  f"{r['load']:.1f}")
    s = Table(title="Input stage of one batch (forward currents and input-weight gradient), 1 thread",
              title_justify="left", caption=crossover(result["input_stage"]))
    for col in ("density", "event-driven s", "dense (BLAS) s", "dense / event-driven"):
        s.add_column(col, justify="right")
    for d, v in sorted(result["input_stage"].items(), key=lambda kv: float(kv[0])):
        s.add_row(f"{float(d):.1%}", f"{v['events']:.4f}", f"{v['dense']:.4f}", f"{v['dense'] / v['events']:.2f}")
    chk = result["check"]
    active = "; ".join(f"{float(d):.1%}: " + ", ".join(f"layer {k} {a['above_upper']:.1%} above, {a['below_lower']:.1%} "
                                                        "below" for k, a in enumerate(v))
                       for d, v in sorted(chk.get("active", {}).items(), key=lambda kv: float(kv[0])))
    c = Table(title="Same network? float64, the regularised loss and gradient, kernel vs the SpyTorch-style peer's "
                    "autograd (16 samples, 2 % density)", title_justify="left",
              caption=("counts beyond the bounds at the initial weights (first timed batch): " + active) if active
              else None)
    for col in ("loss rel. diff", "max grad rel. diff", "loss", "of which penalty"):
        c.add_column(col)
    c.add_row(f"{chk['loss_rel_diff']:.1e}", f"{chk['grad_max_rel_diff']:.1e}",
              f"{chk['loss']:.4f}" if "loss" in chk else "", f"{chk['penalty']:.4f}" if "penalty" in chk else "")
    out = [t, s, c]
    if result.get("sparse"):
        acc = result.get("sparse_accuracy", {})
        kept = acc.get("kept", {})
        exact = {r["density"]: r for r in result["rows"] if r["impl"] == "kernel" and "error" not in r}
        unreg = {r["density"]: r for r in result["rows"] if r["impl"] == "kernel-unreg" and "error" not in r}
        sp = Table(title="Sparse backward (surrogate_cutoff), 1 thread: the regularised kernel's CPU s/epoch and its "
                         "speed-up over the exact kernel at the same density, in this run", title_justify="left",
                   caption="each row: fresh 1-thread processes, the cut-offs' right after the exact kernel's; "
                           "no penalty: the exact kernel without the activity penalty (kernel-unreg); "
                           "load: the highest 1-min load average of the row's epochs")
        for col in ("density", "exact s", *(f"cut-off {c} s" for c in CUTOFFS), *(f"speed-up {c}" for c in CUTOFFS),
                    "exact, no penalty s", "load"):
            sp.add_column(col, justify="right")
        for d, e in sorted(exact.items()):
            mine = {r["cutoff"]: r for r in result["sparse"] if r["density"] == d}
            sp.add_row(f"{d:.1%}", f"{e['cpu_median']:.3f}",
                       *(f"{mine[c]['cpu_median']:.3f}" if c in mine else "" for c in CUTOFFS),
                       *(f"{mine[c]['speedup']:.2f}×" if c in mine else "" for c in CUTOFFS),
                       f"{unreg[d]['cpu_median']:.3f}" if d in unreg else "",
                       f"{max([e['load']] + [m['load'] for m in mine.values()]):.1f}")
        out.append(sp)
        if "0.0" in acc:
            a = Table(title=f"Sparse backward: test accuracy ({acc['n_test']} test samples) after {acc['epochs']} "
                            f"epochs (batch {acc['batch']}, Adam {acc['lr']:g}) at density {acc['density']:.1%}, "
                            f"mean (lowest to highest) over {len(acc['seeds'])} seeds of the initial weights",
                      title_justify="left",
                      caption="kept: share of (sample, neuron, step) surrogate derivatives ≥ the cut-off, both "
                              "layers, at the initial weights (the ones whose dL/dS the backward computes)")
            for col in ("cut-off", "test accuracy", "kept", "CPU s per training"):
                a.add_column(col, justify="right")
            for cut in ["0.0", *map(str, CUTOFFS)]:
                if cut in acc:
                    v = acc[cut]
                    a.add_row(cut + (" (exact)" if cut == "0.0" else ""),
                              f"{v['test_accuracy']:.1%} ({v['min']:.1%} to {v['max']:.1%})",
                              f"{kept[cut]:.1%}" if cut in kept else "100%",
                              f"{sum(v['cpu']) / len(v['cpu']):.1f}")
            out.append(a)
    return out
