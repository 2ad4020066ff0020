"""How cost grows: time and memory of BPTT (lif.py) and online e-prop (eprop.py) against hidden size,
time steps and batch size.

Three algorithms, one gradient of one batch each (float32, 1 thread, initial weights, Randman):

* ``bptt_ff`` and ``bptt_rec``: :func:`snnbatch.kernels.lif.loss_acc_grad`, forward + backward,
  feed-forward and recurrent (max-over-time readout loss);
* ``eprop``: :func:`snnbatch.kernels.eprop.loss_acc_grad`, the online pass of the feed-forward
  network (per-step readout loss), whose gradient equals BPTT's of that loss.

Each (algorithm, point) runs in a fresh subprocess. **Time** is the CPU time of one call, median
over repeats after a warm-up on two samples (compiled code loaded); e-prop's is also given as a
ratio to BPTT feed-forward at the same point, measured in the same run.

**Memory** is an account of the bytes the kernel allocates for one call, from its own allocation
shapes: for lif.py, the per-block gradient sums, transposed weights and returned gradients made by
its Python wrapper, plus the arrays each block allocates in compiled code (the history U (T+1, H),
Uo (T, O), spike lists of T·H + H entries per sample, for the samples of the block's forward group
where the kernel has one (``lif._group_arrays``), and O(H) scratch), of which one block is live at
a time per thread; for e-prop, :func:`snnbatch.kernels.eprop.workspace` (traces and gradients per block,
nothing of size T) plus its small counters and returned gradients. The account is cross-checked
by two measurements: the peak of :mod:`tracemalloc` during the call in the same subprocess
(Numba's runtime allocates through CPython's raw allocator, so tracemalloc sees the compiled code's
arrays too; this is the method of tests/kernels/test_eprop.py), and, for a few long runs, the
growth of the peak resident set in a fresh process, which counts only the pages the kernel writes
(the spike lists are sized for every neuron spiking at every step but hold only the spikes).

The quick form measures T = 100, 400, 1600, H = 64, 128, 256 and B = 32, 128 (about a minute); the
full form the wider axes of ``FORMS["full"]``. Both plot to benchmarks/results/scaling.png.
"""
from __future__ import annotations

import time

NAME = "scaling"
TITLE = "How cost grows: BPTT (lif.py) and online e-prop (eprop.py), one batch, float32, 1 thread"

ALGOS = {
    "bptt_ff": "BPTT feed-forward",
    "bptt_rec": "BPTT recurrent",
    "eprop": "e-prop (feed-forward)",
}
AXIS_NAMES = ("n_hidden", "n_steps", "batch")

FORMS = {
    "quick": {
        "default": {"n_hidden": 128, "n_steps": 100, "batch": 32},
        "axes": {"n_hidden": [64, 128, 256], "n_steps": [100, 400, 1600], "batch": [32, 128]},
        "repeats": 3,
        # long runs for the resident-set cross-check (batch 16 = one sample per block)
        "rss": {"algos": ["bptt_ff", "eprop"], "n_steps": [1600, 6400], "n_hidden": 128, "batch": 16},
    },
    "full": {
        "default": {"n_hidden": 128, "n_steps": 100, "batch": 256},
        "axes": {
            "n_hidden": [32, 64, 128, 256, 512],
            "n_steps": [50, 100, 200, 400, 800, 1600],
            "batch": [32, 64, 128, 256, 512],
        },
        "repeats": 5,
        "rss": {"algos": list(ALGOS), "n_steps": [1600, 12800], "n_hidden": 128, "batch": 16},
    },
}


# --------------------------------------------------------------------------- the memory account


def _config(algo: str, n_hidden: int):
    from snnbatch.kernels import lif

    return lif.LIFConfig(n_hidden=n_hidden, recurrent=algo == "bptt_rec")


def memory_account(algo: str, n_hidden: int, n_steps: int, batch: int, threads: int = 1) -> dict:
    """Bytes allocated by one ``loss_acc_grad`` call: ``total`` at the peak, ``history`` the part
    that grows with the number of time steps."""
    import numpy as np

    from snnbatch.kernels import eprop

    cfg = _config(algo, n_hidden)
    d = np.dtype(cfg.dtype).itemsize
    H, n_in, O, T, B = cfg.n_hidden, cfg.n_inputs, cfg.n_outputs, n_steps, batch
    nb = max(1, min(cfg.n_blocks, B))
    hr2 = H * H if cfg.recurrent else 1
    grads = (n_in * H + H * O + (H * H if cfg.recurrent else 0)) * d  # the returned gradients
    if algo == "eprop":
        ws = sum(a.nbytes for a in eprop.workspace(cfg, nb, with_grad=True).values())
        small = 8 * B + 16 * nb + d  # index, per-block losses and counts, the 1x1 placeholder
        return {"total": ws + small + grads, "history": 0, "group": 0}
    # lif.py: the wrapper's buffers (index, per-block gradient sums, losses, counts; the 1x1 w_rec placeholder)
    wrapper = 8 * B + nb * (n_in * H + hr2 + H * O) * d + 16 * nb + (0 if cfg.recurrent else d)
    transposed = (H * H if cfg.recurrent else 0) * d + O * H * d  # w_rec.T, w_out.T: freed after the batch
    per_block = -(-B // nb)  # block 0 has the most samples
    block, group = _lif_block_bytes(T, H, O, cfg.dtype, per_block)
    history = block - _lif_block_bytes(0, H, O, cfg.dtype, per_block)[0]
    live = min(threads, nb)
    # the peak: during the batch (live blocks), or after it while the summed gradients are made
    total = wrapper + max(transposed + live * block, grads)
    return {"total": total, "history": live * history, "group": group}


def _lif_block_bytes(T: int, H: int, O: int, dtype: str, per_block: int) -> tuple[int, int]:
    """Bytes one block of lif._batch allocates, and how many samples share its forward arrays.

    The forward arrays are those of ``lif._group_arrays`` for a group of ``min(lif.GROUP, samples in the
    block)``; a kernel without groups allocates the same arrays for one sample at a time. The backward
    pass adds O(H) and O(O) scratch.
    """
    import numpy as np

    from snnbatch.kernels import lif

    d = np.dtype(dtype).itemsize
    scratch = 4 * H * d + 4 * O * d + 8 * O  # g_u, g_i, g_s, acc; g_uo, g_io, m, g_max; t_max
    group_arrays = getattr(lif, "_group_arrays", None)
    if group_arrays is not None and hasattr(lif, "GROUP"):
        G = min(lif.GROUP, per_block)
        arrays = getattr(group_arrays, "py_func", group_arrays)(G, T, H, O, np.dtype(dtype))
        return sum(a.nbytes for a in arrays) + scratch + 8 * per_block + 8 * G, G  # + the block's sample lists
    L = T * H + H  # spike lists: every neuron at every step
    forward = ((T + 1) * H * d + 2 * H * d + 8 * ((H + 7) // 8) + 2 * O * d  # U, s_row, i_syn, flags, io, uo
               + L * 4 + L * d + (T + 1) * 8 + T * O * d)  # spk_idx, spk_val, spk_ptr, Uo
    return forward + scratch, 1


# --------------------------------------------------------------------------- subprocess tasks


def _setup(algo: str, n_hidden: int, n_steps: int, batch: int, data_steps: int | None = None):
    """The kernel's gradient function, weights, data and config; with ``data_steps`` the Randman samples
    are ``data_steps`` long and followed by silent steps up to ``n_steps``."""
    import numpy as np

    from snnbatch.kernels import eprop, lif, randman
    from snnbatch.kernels.events import SpikeEvents

    data = randman.make_dataset(randman.RandmanConfig(n_train=batch, n_test=2, n_steps=data_steps or n_steps),
                                np.random.default_rng(0))
    ev = data.train_events
    if data_steps and n_steps > data_steps:
        pad = np.repeat(ev.ptr[:, -1:], n_steps - data_steps, axis=1)
        ev = SpikeEvents(np.ascontiguousarray(np.concatenate([ev.ptr, pad], axis=1)), ev.units)
    cfg = _config(algo, n_hidden)
    params = lif.init_params(cfg, np.random.default_rng(1))
    fn = eprop.loss_acc_grad if algo == "eprop" else lif.loss_acc_grad
    return fn, params, ev, data.train_labels, cfg


def point_task(algo: str, n_hidden: int, n_steps: int, batch: int, repeats: int) -> dict:
    """CPU and wall time of one batch (median of ``repeats``), then the tracemalloc peak of one more call."""
    import tracemalloc

    import numba
    import numpy as np

    from .common import median

    numba.set_num_threads(1)
    fn, params, ev, labels, cfg = _setup(algo, n_hidden, n_steps, batch)
    fn(params, ev, labels, cfg, np.arange(2))  # load the compiled code
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(params, ev, labels, cfg)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn(params, ev, labels, cfg)
        traced = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    return {"wall": median(wall), "cpu": median(cpu), "cpu_all": cpu, "traced_bytes": int(traced),
            "spikes_per_sample": ev.units.shape[0] / ev.n_samples}


def rss_task(algo: str, n_hidden: int, n_steps: int, batch: int, data_steps: int) -> dict:
    """Growth of the peak resident set during one call, over the process's state just before it."""
    import gc

    import numba
    import numpy as np

    from snnbatch.kernels import randman

    from .common import hwm_mib, reset_peak_rss, rss_mib

    numba.set_num_threads(1)
    fn, params, ev, labels, cfg = _setup(algo, n_hidden, n_steps, batch, data_steps)
    # load the compiled code on a short run, so that no block of the size measured is freed beforehand
    tiny = randman.make_dataset(randman.RandmanConfig(n_train=2, n_test=2, n_steps=8), np.random.default_rng(0))
    fn(params, tiny.train_events, tiny.train_labels, cfg)
    gc.collect()
    base = rss_mib()
    if not reset_peak_rss():
        return {"rss_growth_mib": None}
    fn(params, ev, labels, cfg)
    return {"rss_growth_mib": hwm_mib() - base}


# --------------------------------------------------------------------------- the benchmark


def run(mode: str, log) -> dict:
    from .common import RESULTS, subprocess_task

    form = FORMS["full" if mode == "full" else "quick"]
    default, axes, repeats = form["default"], form["axes"], form["repeats"]
    # each distinct configuration is measured once and shared by the axes it lies on
    configs = []
    for axis in AXIS_NAMES:
        for v in axes[axis]:
            kw = {**default, axis: v}
            if kw not in configs:
                configs.append(kw)
    measured = {}
    for kw in configs:
        for algo in ALGOS:
            log(f"{algo} H={kw['n_hidden']} T={kw['n_steps']} B={kw['batch']}")
            r = subprocess_task("benchmarks.bench_scaling:point_task", dict(algo=algo, repeats=repeats, **kw),
                                threads=1)
            acc = memory_account(algo, **kw)
            measured[(algo, kw["n_hidden"], kw["n_steps"], kw["batch"])] = {
                "algo": algo, **kw, "cpu": r["cpu"], "wall": r["wall"], "cpu_all": r["cpu_all"],
                "account_bytes": acc["total"], "history_bytes": acc["history"], "history_samples": acc["group"],
                "traced_bytes": r["traced_bytes"],
                "spikes_per_sample": r["spikes_per_sample"],
            }
    points = []
    for axis in AXIS_NAMES:
        for v in axes[axis]:
            kw = {**default, axis: v}
            ref = measured[("bptt_ff", kw["n_hidden"], kw["n_steps"], kw["batch"])]["cpu"]
            for algo in ALGOS:
                p = dict(measured[(algo, kw["n_hidden"], kw["n_steps"], kw["batch"])])
                p.update(axis=axis, value=v, vs_bptt_ff=p["cpu"] / ref)
                points.append(p)
    # for the resident set, the malloc threshold fixed: large blocks are mapped and unmapped, so no block
    # freed before the call is reused by it unseen
    env = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_ARENA_MAX": "1"}
    rss = []
    spec = form["rss"]
    short = min(spec["n_steps"])
    for algo in spec["algos"]:
        for T in spec["n_steps"]:
            kw = {"n_hidden": spec["n_hidden"], "n_steps": T, "batch": spec["batch"]}
            log(f"resident-set check {algo} T={T}")
            r = subprocess_task("benchmarks.bench_scaling:rss_task", dict(algo=algo, data_steps=short, **kw),
                                threads=1, env=env)
            acc = memory_account(algo, **kw)
            rss.append({"algo": algo, **kw, "data_steps": short, "rss_growth_mib": r["rss_growth_mib"],
                        "account_bytes": acc["total"], "history_bytes": acc["history"]})
        lo, hi = rss[-len(spec["n_steps"])], rss[-1]
        if lo["rss_growth_mib"] is not None and hi["rss_growth_mib"] is not None:
            dt = hi["n_steps"] - lo["n_steps"]
            hi["account_per_step"] = (hi["account_bytes"] - lo["account_bytes"]) / dt
            hi["rss_per_step"] = (hi["rss_growth_mib"] - lo["rss_growth_mib"]) * 2**20 / dt
    RESULTS.mkdir(parents=True, exist_ok=True)
    png = RESULTS / "scaling.png"
    _plot(points, default, axes, png)
    gap = [p["traced_bytes"] - p["account_bytes"] for p in points]
    return {"default": default, "axes": axes, "repeats": repeats, "points": points, "rss_check": rss,
            "traced_minus_account_bytes": [min(gap), max(gap)], "plot": str(png)}


# --------------------------------------------------------------------------- output

STYLE = {
    "bptt_ff": {"color": "tab:blue", "marker": "o", "linestyle": "-"},
    "bptt_rec": {"color": "tab:orange", "marker": "s", "linestyle": "--"},
    "eprop": {"color": "tab:green", "marker": "^", "linestyle": "-"},
}
AXIS_LABELS = {"n_hidden": "hidden neurons H", "n_steps": "time steps T", "batch": "batch size B"}


def _plot(points, default, axes, path):
    """Top row: CPU time, log-log, with reference slopes. Bottom row: the memory account with the
    tracemalloc peaks; log-log against H, linear against T (BPTT a straight line, e-prop flat) and B."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

    plain = FuncFormatter(lambda v, _: f"{v:g}")
    fig, axs = plt.subplots(2, 3, figsize=(15, 9), constrained_layout=True)
    for col, axis in enumerate(AXIS_NAMES):
        xs = axes[axis]
        at, am = axs[0, col], axs[1, col]
        x0 = default[axis]
        for algo, label in ALGOS.items():
            pts = sorted((p for p in points if p["axis"] == axis and p["algo"] == algo), key=lambda p: p["value"])
            x = [p["value"] for p in pts]
            at.plot(x, [p["cpu"] * 1e3 for p in pts], label=label, **STYLE[algo])
            mlabel = label
            if axis == "n_steps" and len(pts) > 1:
                slope = (pts[-1]["account_bytes"] - pts[0]["account_bytes"]) / (x[-1] - x[0])
                mlabel = f"{label}: {slope:+.0f} B per step"
            am.plot(x, [p["account_bytes"] / 2**20 for p in pts], label=mlabel, **STYLE[algo])
            am.plot(x, [p["traced_bytes"] / 2**20 for p in pts], "x", color="black", markersize=8, zorder=5,
                    label="tracemalloc peak" if algo == "eprop" else None)
        # reference slopes through BPTT feed-forward and e-prop at the default point
        for algo in ("bptt_ff", "eprop"):
            y0 = next(p["cpu"] * 1e3 for p in points if p["axis"] == axis and p["algo"] == algo and p["value"] == x0)
            at.plot(xs, [y0 * x / x0 for x in xs], ":", color="grey", label="∝ x" if algo == "bptt_ff" else None)
            if axis == "n_hidden":
                at.plot(xs, [y0 * (x / x0) ** 2 for x in xs], "-.", color="grey",
                        label="∝ x²" if algo == "bptt_ff" else None)
        at.set_xscale("log")
        at.set_yscale("log")
        if axis == "n_hidden":
            am.set_xscale("log")
            am.set_yscale("log")
            y0 = next(p["account_bytes"] / 2**20 for p in points
                      if p["axis"] == axis and p["algo"] == "eprop" and p["value"] == x0)
            am.plot(xs, [y0 * x / x0 for x in xs], ":", color="grey", label="∝ x")
            y0 = next(p["account_bytes"] / 2**20 for p in points
                      if p["axis"] == axis and p["algo"] == "bptt_rec" and p["value"] == x0)
            am.plot(xs, [y0 * (x / x0) ** 2 for x in xs], "-.", color="grey", label="∝ x²")
            am.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        elif axis == "batch":
            am.set_xscale("log")
            am.set_ylim(bottom=0)
        else:
            am.set_xlim(0, max(xs) * 1.05)
            am.set_ylim(bottom=0)
        others = ", ".join(f"{k}={v}" for k, v in default.items() if k != axis)
        at.set_title(f"CPU time vs {AXIS_LABELS[axis]}  ({others})", fontsize=10)
        am.set_title(f"memory vs {AXIS_LABELS[axis]}  ({others})", fontsize=10)
        at.set_ylabel("ms per batch (CPU, median)")
        am.set_ylabel("MiB allocated per call")
        am.set_xlabel(AXIS_LABELS[axis])
        for a in (at, am):
            if a.get_xscale() == "log":
                a.xaxis.set_major_locator(FixedLocator(xs))
                a.xaxis.set_minor_locator(NullLocator())
            else:
                a.set_xticks(xs if len(xs) <= 4 else [0] + xs[len(xs) // 2:])
            a.xaxis.set_major_formatter(plain)
            a.yaxis.set_major_formatter(plain)
            a.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
            a.grid(True, which="major", alpha=0.3)
            a.legend(fontsize=8, loc="best")
    fig.suptitle("snnbatch: BPTT (lif.py, max-over-time loss) vs online e-prop (eprop.py, per-step loss): one gradient "
                 "of one batch, float32, 1 thread, Randman 100 inputs → H → 2\nmemory: bytes the kernel allocates "
                 "for the call (account from its array shapes; 16 blocks, one live per thread, with BPTT's history "
                 "of G samples, see the table); × = tracemalloc peak",
                 fontsize=11)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _mib(b) -> str:
    return f"{b / 2**20:.2f}"


def tables(result):
    from rich.table import Table

    if "points" not in result:
        return []
    d = result["default"]
    lo, hi = result.get("traced_minus_account_bytes", (None, None))
    gap = "" if lo is None else f" (tracemalloc − account: {lo / 1024:+.1f} to {hi / 1024:+.1f} KiB over all points)"
    t = Table(title=f"{TITLE}; default H={d['n_hidden']}, T={d['n_steps']}, B={d['batch']}", title_justify="left",
              caption="time: CPU time of one loss_acc_grad call, median of "
              f"{result['repeats']}, each point a fresh process; × BPTT ff: against BPTT feed-forward at the same "
              "point in this run. memory: account = bytes the kernel allocates for the call (its array shapes; "
              "of which 'grows with T' = the history of the live block: 1 thread, one block of 16 at a time, holding "
              "the history of G samples); tracemalloc = measured "
              f"peak of the same call{gap}. plot: {result['plot']}", caption_justify="left")
    for col in ("axis", "value", "algorithm", "CPU ms/batch", "× BPTT ff", "account MiB", "grows with T MiB", "G",
                "tracemalloc MiB"):
        t.add_column(col, justify="left" if col in ("axis", "algorithm") else "right")
    for p in result["points"]:
        t.add_row(p["axis"], str(p["value"]), ALGOS[p["algo"]], f"{p['cpu'] * 1e3:.1f}", f"{p['vs_bptt_ff']:.2f}",
                  _mib(p["account_bytes"]), _mib(p["history_bytes"]), str(p.get("history_samples") or "-"),
                  _mib(p["traced_bytes"]))
    out = [t]
    if result.get("rss_check"):
        first = result["rss_check"][0]
        r = Table(title="Memory cross-check on long runs: growth of the peak resident set in a fresh process",
                  title_justify="left", caption=f"the same {first['data_steps']}-step Randman samples, followed by "
                  "silent steps up to T; bytes per step = growth between the two lengths / ΔT. RSS counts pages "
                  "written: BPTT's spike lists are allocated for every neuron spiking at every step (in the account) "
                  "but hold only the spikes, so BPTT's resident growth per step is about that of U and Uo "
                  "(H·4 + O·4 + 8 bytes)", caption_justify="left")
        for col in ("algorithm", "H", "T", "B", "account MiB", "peak RSS growth MiB", "account B/step",
                    "RSS B/step"):
            r.add_column(col, justify="left" if col == "algorithm" else "right")
        for p in result["rss_check"]:
            g = p["rss_growth_mib"]
            r.add_row(ALGOS[p["algo"]], str(p["n_hidden"]), str(p["n_steps"]), str(p["batch"]),
                      _mib(p["account_bytes"]), "n/a" if g is None else f"{g:.2f}",
                      f"{p['account_per_step']:.0f}" if "account_per_step" in p else "",
                      f"{p['rss_per_step']:.0f}" if "rss_per_step" in p else "")
        out.append(r)
    return out
