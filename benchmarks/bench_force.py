"""RLS/FORCE kernel scaling: seconds per training iteration and memory against N and plastic inputs.

The network of ``kernels/force.py`` (seed 002): N LIF neurons, 80 static and L
(``n_plastic``) plastic inputs per neuron, 0.1 ms steps, an RLS update every
10 ms. Each point runs in a fresh subprocess (so its thread count comes from the
environment and its peak RSS is its own) and measures

* one training iteration, ``force.train_iteration`` (simulation + RLS), after a
  warm-up iteration: median over repeats;
* the RLS update alone: one update of every neuron's weights and inverse
  covariance (the kernel's parallel ``_rls_all``, the part that grows with L²),
  median over repeats, against :func:`reference_rls_step` below, a plain NumPy
  implementation of the same update on full matrices batched over neurons, run
  in the same process at the same size and dtype;
* memory: the peak resident set during the timed iterations (VmHWM of
  /proc/self/status after resetting it; a process started by ``subprocess``
  reports its parent's peak as its own ``ru_maxrss`` when the parent's was
  larger) and its growth over the process once the compiled code is loaded,
  beside the covariance bytes N·L² (full) or N·L(L+1)/2 (packed) × the dtype's
  size. The NumPy reference allocates its own matrices only afterwards.

Single-threaded figures are CPU times (the machine may be shared; a 1-thread
process's CPU time is what it costs, its wall time also counts waiting for a
core). The 1 → 2 thread speed-up of the default (packed, float32) is measured
in one process started with 2 threads that alternates 1 and 2 threads repeat by
repeat, so that both see the same load: wall / wall, and 1-thread CPU / 2-thread
wall as in bench_lif. A float64 check compares one RLS update of the kernel with
the reference (packed and full). The full form also plots
benchmarks/results/force_scaling.png.
"""
from __future__ import annotations

import os
import time

import numpy as np

NAME = "force"
TITLE = "RLS/FORCE kernel scaling (N LIF neurons, 80 static + L plastic inputs, dt 0.1 ms, RLS every 10 ms)"

VARIANTS = (("packed", "float32"), ("full", "float32"), ("packed", "float64"), ("full", "float64"))
DEFAULT_VARIANT = VARIANTS[0]  # the kernel's default: packed, float32
FORMS = {
    "quick": {
        "n_neurons": (200, 1000), "n_plastic": (40, 80, 160), "duration": 300.0,
        "repeats": 3, "rls_repeats": 9, "variants_at": ((1000, 80), (1000, 160)), "threads_at": ((1000, 160),),
    },
    "full": {
        "n_neurons": (500, 1000, 2000, 4000), "n_plastic": (40, 80, 160, 320), "duration": 1000.0,
        "repeats": 3, "rls_repeats": 11, "variants_at": ((2000, 40), (2000, 80), (2000, 160), (2000, 320)),
        "threads_at": ((1000, 160), (4096, 80)),  # from 4096 neurons on the per-step update is parallel too
    },
}
# The kernel enters a parallel region for every RLS update (every 10 ms of simulated time) and runs the
# time steps between them serially; with Numba's OpenMP layer the idle worker spin-waits there unless
# OMP_WAIT_POLICY=passive, so the thread test runs both ways.
WAIT_POLICIES = ("unset", "passive")
RLS_MIN_SECONDS, RLS_MAX_REPEATS = 1.0, 60  # the RLS update alone: at least rls_repeats, about a second in all
REF_MAX_BYTES = 512 * 2**20  # the reference's own covariances; larger points time it on a subset of neurons
REF_CHUNK = 128  # neurons per batched NumPy call of the reference (bounds its temporaries)


# --------------------------------------------------------------------------- the NumPy reference


def reference_rls_step(P, w, r, pre, y, chunk=REF_CHUNK):
    """One textbook RLS update of every neuron, in place; returns the a-priori errors ``e`` (N,).

    ``P`` (N, L, L) full inverse covariances, ``w`` (N, L) plastic weights, ``r``
    (N_pre,) filtered spike trains, ``pre`` (N, L) presynaptic indices, ``y`` (N,)
    residual targets of the read-out ``w·r``. For each neuron::

        k = P r;  c = 1 / (1 + rᵀ k);  e = w·r − y;  w −= c e k;  P −= c k kᵀ

    batched over ``chunk`` neurons at a time with matmul / einsum; the outer
    products go to one preallocated buffer (fresh (chunk, L, L) temporaries
    cost page faults that are not the update's arithmetic).
    """
    N, L = P.shape[0], P.shape[-1]
    e = np.empty(N, P.dtype)
    outer = np.empty((min(N, chunk), L, L), P.dtype)
    for s in range(0, N, chunk):
        sl = slice(s, min(N, s + chunk))
        R = r[pre[sl]]  # (n, L)
        K = np.matmul(P[sl], R[:, :, None])[:, :, 0]  # k = P r
        c = 1.0 / (1.0 + np.einsum("na,na->n", R, K))
        e[sl] = np.einsum("na,na->n", w[sl], R) - y[sl]
        w[sl] -= (c * e[sl])[:, None] * K
        kk = outer[: K.shape[0]]
        np.multiply((c[:, None] * K)[:, :, None], K[:, None, :], out=kk)  # c k kᵀ
        P[sl] -= kk
    return e


def _kernel_rls_step(F, state, cfg, r, y, i_s, i_p, err):
    """One RLS update of every neuron by the kernel (what train_iteration runs every ``learn_every`` steps)."""
    N = cfg.n_neurons
    target = (y + i_s)[None, :]  # the kernel's residual is target[t] − Is
    F._rls_all((N + F._BLOCK - 1) // F._BLOCK, 0, state["w_plastic"], state["P"].reshape(N, -1),
               state["pre_plastic"], r, i_s, i_p, target, bool(cfg.packed), err)


def _traces(rng, n, dtype):
    """Filtered spike trains like the network's (≈ 5-20 Hz through a 150 ms filter: r ≈ 0.005-0.02 per ms)."""
    return rng.gamma(4.0, 0.0025, n).astype(dtype)


def _timed(fn, repeats):
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


# --------------------------------------------------------------------------- subprocess tasks


def _setup(F, n_neurons, n_plastic, packed, dtype, duration):
    """Compiled code loaded (on a tiny network), then the network, its targets and the RSS in between."""
    from .common import rss_mib

    tiny = F.ForceConfig(n_neurons=100, n_static=20, n_plastic=8, duration=20.0, packed=packed, dtype=dtype)
    st = F.init_state(tiny, np.random.default_rng(0))
    F.train_iteration(st, F.make_targets(tiny, np.random.default_rng(1)), tiny)
    del st
    base = rss_mib()
    cfg = F.ForceConfig(n_neurons=n_neurons, n_plastic=n_plastic, duration=duration, packed=packed, dtype=dtype)
    state = F.init_state(cfg, np.random.default_rng(0))
    targets = F.make_targets(cfg, np.random.default_rng(1), F.innate_current(state, cfg))
    F.train_iteration(state, targets, cfg)  # warm-up: pages touched, weights away from their initial values
    rng = np.random.default_rng(2)
    r = _traces(rng, n_neurons, cfg.dtype)
    y = rng.normal(-0.4, 0.5, n_neurons).astype(cfg.dtype)
    scratch = np.zeros(n_neurons, cfg.dtype), np.zeros(n_neurons, cfg.dtype), np.zeros((n_neurons, 2))
    step = lambda: _kernel_rls_step(F, state, cfg, r, y, *scratch)  # noqa: E731 - the RLS update alone
    return cfg, state, targets, base, r, y, step


def point_task(n_neurons: int, n_plastic: int, packed: bool, dtype: str, duration: float, threads: int,
               repeats: int, rls_repeats: int, reference: bool) -> dict:
    """One (N, L, storage, dtype) point in this fresh process; see the module docstring."""
    import numba

    from snnbatch.kernels import force as F

    from .common import hwm_mib, median, reset_peak_rss

    numba.set_num_threads(threads)
    cfg, state, targets, base, r, y, step = _setup(F, n_neurons, n_plastic, packed, dtype, duration)
    setup_peak = hwm_mib()  # make_targets and innate_current have their own temporaries
    reset = reset_peak_rss()
    metrics = []
    wall, cpu = _timed(lambda: metrics.append(F.train_iteration(state, targets, cfg)), repeats)
    out = {"iter_wall": wall, "iter_cpu": cpu, "iter_wall_median": median(wall), "iter_cpu_median": median(cpu),
           "correlation": metrics[-1]["correlation"], "rate_hz": metrics[-1]["rate_hz"],
           "rls_updates_per_iter": cfg.n_steps // cfg.learn_every, "base_rss_mib": base,
           "setup_peak_rss_mib": setup_peak, "train_peak_rss_mib": hwm_mib() if reset else float("nan"),
           "process_peak_rss_mib": max(setup_peak, hwm_mib()), "cov_bytes": int(state["P"].nbytes),
           "load_average": os.getloadavg()[0]}

    # the RLS update alone, on the trained covariances
    N, L = n_neurons, n_plastic
    first, _ = _timed(step, 1)
    n = min(RLS_MAX_REPEATS, max(rls_repeats, int(RLS_MIN_SECONDS / max(first[0], 1e-6))))
    wall, cpu = _timed(step, n)
    out.update(rls_wall_median=median(wall), rls_cpu_median=median(cpu), rls_repeats=n)
    if reference:
        n_ref = min(N, max(REF_CHUNK, REF_MAX_BYTES // (L * L * np.dtype(cfg.dtype).itemsize)))
        P = state["P"][:n_ref]
        P = F.unpack(P, L) if packed else P.copy()
        w = state["w_plastic"][:n_ref].copy()
        pre, yy = state["pre_plastic"][:n_ref], y[:n_ref]
        ref = lambda: reference_rls_step(P, w, r, pre, yy)  # noqa: E731
        ref()
        wall, cpu = _timed(ref, max(3, rls_repeats // 2))
        scale = N / n_ref  # the update is per neuron: its cost is linear in the number of neurons
        out.update(ref_neurons=n_ref, ref_wall_median=median(wall) * scale, ref_cpu_median=median(cpu) * scale)
    out["peak_rss_mib"] = max(out["process_peak_rss_mib"], hwm_mib())  # with the reference's arrays
    return out


def threads_task(n_neurons: int, n_plastic: int, packed: bool, dtype: str, duration: float, repeats: int,
                 rls_repeats: int) -> dict:
    """1 and 2 threads in this process (started with 2), alternating repeat by repeat.

    Interleaving puts both thread counts under the same load of a shared machine;
    ``numba.set_num_threads(1)`` runs the parallel regions on one thread, like a
    1-thread process.
    """
    import numba

    from snnbatch.kernels import force as F

    from .common import median

    cfg, state, targets, _, _, _, step = _setup(F, n_neurons, n_plastic, packed, dtype, duration)
    out = {"rls_updates_per_iter": cfg.n_steps // cfg.learn_every}
    for what, fn, n in (("iter", lambda: F.train_iteration(state, targets, cfg), repeats), ("rls", step, rls_repeats)):
        times = {t: ([], []) for t in (1, 2)}
        for t in (1, 2):
            numba.set_num_threads(t)
            fn()
        for _ in range(n):
            for t in (1, 2):
                numba.set_num_threads(t)
                wall, cpu = _timed(fn, 1)
                times[t][0].extend(wall)
                times[t][1].extend(cpu)
        for t, (wall, cpu) in times.items():
            out[f"{what}_wall_median_{t}"] = median(wall)
            out[f"{what}_cpu_median_{t}"] = median(cpu)
    out["load_average"] = os.getloadavg()[0]
    out["threading_layer"] = numba.threading_layer()
    return out


def check_task(sizes=((200, 40), (200, 160))) -> dict:
    """float64: one RLS update by the kernel and by the reference from the same trained state."""
    import numba

    from snnbatch.kernels import force as F

    numba.set_num_threads(1)
    out = []
    for (n_neurons, n_plastic), packed in ((nl, p) for nl in sizes for p in (True, False)):
        cfg = F.ForceConfig(n_neurons=n_neurons, n_plastic=n_plastic, duration=300.0, packed=packed,
                            dtype="float64")
        state = F.init_state(cfg, np.random.default_rng(0))
        targets = F.make_targets(cfg, np.random.default_rng(1), F.innate_current(state, cfg))
        F.train_iteration(state, targets, cfg)  # a covariance that has learned something
        N, L = n_neurons, n_plastic
        P0 = F.unpack(state["P"], L) if packed else state["P"].copy()
        w0 = state["w_plastic"].copy()
        rng = np.random.default_rng(3)
        r, y = _traces(rng, N, np.float64), rng.normal(-0.4, 0.5, N)
        i_s, i_p, err = np.zeros(N), np.zeros(N), np.zeros((N, 2))
        _kernel_rls_step(F, state, cfg, r, y, i_s, i_p, err)
        P_ref, w_ref = P0.copy(), w0.copy()
        e_ref = reference_rls_step(P_ref, w_ref, r, state["pre_plastic"], y)
        P_k = F.unpack(state["P"], L) if packed else state["P"]

        def rel(a, b):
            return float(np.abs(a - b).max() / np.abs(b).max())

        out.append({
            "storage": "packed" if packed else "full", "n_neurons": N, "n_plastic": L,
            "w_max_rel_diff": rel(state["w_plastic"], w_ref),
            "dw_max_rel_diff": rel(state["w_plastic"] - w0, w_ref - w0),
            "P_max_rel_diff": rel(P_k, P_ref),
            "dP_max_rel_diff": rel(P_k - P0, P_ref - P0),
            "e2_max_rel_diff": rel(err[:, 0], e_ref**2),
        })
    return {"points": out}


# --------------------------------------------------------------------------- driver


def _points(form):
    """(N, L, storage, dtype) to measure: the default variant everywhere, the others where listed."""
    pts = [(N, L, *DEFAULT_VARIANT) for N in form["n_neurons"] for L in form["n_plastic"]]
    pts += [(N, L, *v) for (N, L) in form["variants_at"] for v in VARIANTS[1:]]
    return pts


def run(mode: str, log) -> dict:
    from .common import RESULTS, subprocess_task

    form = FORMS["full" if mode == "full" else "quick"]
    rows = []
    for N, L, storage, dtype in _points(form):
        log(f"N={N} L={L} {storage} {dtype}, 1 thread")
        kwargs = dict(n_neurons=N, n_plastic=L, packed=storage == "packed", dtype=dtype,
                      duration=form["duration"], threads=1, repeats=form["repeats"],
                      rls_repeats=form["rls_repeats"], reference=True)
        row = {"n_neurons": N, "n_plastic": L, "storage": storage, "dtype": dtype, "threads": 1,
               "cov_mib": _cov_bytes(N, L, storage, dtype) / 2**20}
        try:
            r = subprocess_task("benchmarks.bench_force:point_task", kwargs, threads=1)
        except Exception as exc:  # noqa: BLE001 - one failed point is reported, the others still run
            row["error"] = str(exc)[-500:]
            rows.append(row)
            continue
        r.pop("process_seconds", None)
        row.update(r)
        rows.append(row)
    _ratios(rows)
    threads = []
    for (N, L), wait in ((p, w) for p in form["threads_at"] for w in WAIT_POLICIES):
        log(f"N={N} L={L} {' '.join(DEFAULT_VARIANT)}, 1 and 2 threads interleaved, OMP_WAIT_POLICY={wait}")
        kwargs = dict(n_neurons=N, n_plastic=L, packed=DEFAULT_VARIANT[0] == "packed", dtype=DEFAULT_VARIANT[1],
                      duration=form["duration"], repeats=max(5, form["repeats"]), rls_repeats=form["rls_repeats"])
        row = {"n_neurons": N, "n_plastic": L, "omp_wait_policy": wait}
        env = {"OMP_WAIT_POLICY": wait} if wait != "unset" else None
        try:
            row.update(subprocess_task("benchmarks.bench_force:threads_task", kwargs, threads=2, env=env))
        except Exception as exc:  # noqa: BLE001
            row["error"] = str(exc)[-500:]
        else:
            row.pop("process_seconds", None)
            for what in ("iter", "rls"):
                row[f"{what}_speedup_1_to_2"] = row[f"{what}_wall_median_1"] / row[f"{what}_wall_median_2"]
                row[f"{what}_speedup_1_to_2_cpu"] = row[f"{what}_cpu_median_1"] / row[f"{what}_wall_median_2"]
        threads.append(row)
    log("float64 agreement check: kernel vs NumPy reference, one RLS update")
    check = subprocess_task("benchmarks.bench_force:check_task", {}, threads=1)
    check.pop("peak_rss_mib", None)
    check.pop("process_seconds", None)
    out = {"duration_ms": form["duration"], "repeats": form["repeats"], "rls_repeats": form["rls_repeats"],
           "rows": rows, "threads": threads, "check": check}
    if mode == "full":
        RESULTS.mkdir(parents=True, exist_ok=True)
        png = RESULTS / "force_scaling.png"
        _plot(rows, png)
        out["plot"] = str(png)
    return out


def _cov_bytes(N, L, storage, dtype):
    itemsize = 4 if dtype == "float32" else 8
    return N * (L * (L + 1) // 2 if storage == "packed" else L * L) * itemsize


def _ratios(rows):
    """Kernel RLS speed-up over the reference (CPU time, 1 thread) and the RLS share of an iteration."""
    for r in rows:
        if "error" in r:
            continue
        r["rls_share"] = r["rls_updates_per_iter"] * r["rls_cpu_median"] / r["iter_cpu_median"]
        if "ref_cpu_median" in r:
            r["rls_speedup"] = r["ref_cpu_median"] / r["rls_cpu_median"]
            r["rls_speedup_wall"] = r["ref_wall_median"] / r["rls_wall_median"]


def _plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "error" not in r]
    default = [r for r in ok if (r["storage"], r["dtype"]) == DEFAULT_VARIANT]
    Ns = sorted({r["n_neurons"] for r in default})
    fig, axs = plt.subplots(1, 3, figsize=(15, 4.8), constrained_layout=True)
    for N in Ns:
        pts = sorted((r for r in default if r["n_neurons"] == N), key=lambda r: r["n_plastic"])
        x = [r["n_plastic"] for r in pts]
        line, = axs[0].loglog(x, [r["iter_cpu_median"] for r in pts], "o-", label=f"N={N} iteration")
        axs[0].loglog(x, [r["rls_updates_per_iter"] * r["rls_cpu_median"] for r in pts], "s:", color=line.get_color(),
                      label=f"N={N} RLS part")
        axs[2].loglog(x, [r["cov_mib"] for r in pts], "s:", color=line.get_color(), label=f"N={N} covariance")
        axs[2].loglog(x, [r["train_peak_rss_mib"] - r["base_rss_mib"] for r in pts], "o-", color=line.get_color(),
                      label=f"N={N} RSS growth")
    axs[0].set_title("packed float32, 1 thread: s per iteration (CPU)")
    axs[0].set_xlabel("plastic inputs per neuron L")
    axs[0].set_ylabel("s")
    axs[0].legend(fontsize=7)
    vN = sorted({r["n_neurons"] for r in ok if (r["storage"], r["dtype"]) != DEFAULT_VARIANT})
    for storage, dtype in VARIANTS:
        pts = sorted((r for r in ok if r["n_neurons"] in vN[-1:] and (r["storage"], r["dtype"]) == (storage, dtype)),
                     key=lambda r: r["n_plastic"])
        if not pts:
            continue
        x = [r["n_plastic"] for r in pts]
        line, = axs[1].loglog(x, [r["rls_cpu_median"] * 1e3 for r in pts], "o-", label=f"kernel {storage} {dtype}")
        if all("ref_cpu_median" in r for r in pts) and storage == "full":
            axs[1].loglog(x, [r["ref_cpu_median"] * 1e3 for r in pts], "x--", color=line.get_color(),
                          label=f"NumPy reference {dtype}")
    axs[1].set_title(f"one RLS update of all {vN[-1] if vN else ''} neurons (CPU, 1 thread)")
    axs[1].set_xlabel("plastic inputs per neuron L")
    axs[1].set_ylabel("ms")
    axs[1].legend(fontsize=7)
    axs[2].set_title("memory, packed float32: covariances, RSS growth")
    axs[2].set_xlabel("plastic inputs per neuron L")
    axs[2].set_ylabel("MiB")
    axs[2].legend(fontsize=7)
    Ls = sorted({r["n_plastic"] for r in ok})
    for ax in axs:
        ax.set_xscale("log", base=2)
        ax.set_xticks(Ls, [str(v) for v in Ls])
        ax.minorticks_off()
    fig.suptitle("snnbatch RLS/FORCE kernel (80 static inputs, dt 0.1 ms, RLS every 10 ms)")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tables(result):
    from rich.table import Table

    t = Table(title=f"{TITLE}, {result['duration_ms']:.0f} ms per iteration, 1 thread", title_justify="left",
              caption="s/iteration: force.train_iteration (simulation + RLS), median CPU time (wall in brackets); "
                      "RLS ms: one update of all N neurons by the kernel; vs NumPy: the reference's CPU time for the "
                      "same update (full matrices, same dtype) / the kernel's († reference timed on a subset of "
                      "neurons and scaled by N); RLS share: updates per iteration × RLS time / iteration time; "
                      "peak RSS: VmHWM of the fresh process during the timed iterations; RSS growth: that peak less "
                      "the RSS once the compiled code is loaded (state with the covariances, targets and their "
                      "time-major copy).")
    for col in ("N", "L", "storage", "dtype", "s/iteration", "RLS ms", "NumPy ref ms", "kernel vs NumPy",
                "RLS share", "covariance MiB", "peak RSS MiB", "RSS growth MiB", "load"):
        t.add_column(col, justify="left" if col in ("storage", "dtype") else "right")
    for r in result["rows"]:
        head = (str(r["n_neurons"]), str(r["n_plastic"]), r["storage"], r["dtype"])
        if "error" in r:
            t.add_row(*head, "[red]failed[/red]", *[""] * 4, f"{r['cov_mib']:.1f}", "", "", "")
            continue
        dagger = "†" if r.get("ref_neurons", r["n_neurons"]) < r["n_neurons"] else ""
        t.add_row(*head, f"{r['iter_cpu_median']:.3f} ({r['iter_wall_median']:.3f})",
                  f"{r['rls_cpu_median'] * 1e3:.2f}",
                  f"{r['ref_cpu_median'] * 1e3:.1f}{dagger}" if "ref_cpu_median" in r else "—",
                  f"{r['rls_speedup']:.1f}×" if "rls_speedup" in r else "—", f"{r['rls_share']:.0%}",
                  f"{r['cov_mib']:.1f}", f"{r['train_peak_rss_mib']:.0f}",
                  f"{r['train_peak_rss_mib'] - r['base_rss_mib']:.0f}", f"{r['load_average']:.1f}")
    s = Table(title=f"RLS/FORCE kernel, {' '.join(DEFAULT_VARIANT)}: 1 → 2 threads, {result['duration_ms']:.0f} ms "
                    "per iteration", title_justify="left",
              caption="one process started with 2 threads, 1 and 2 threads alternating repeat by repeat; wall times "
                      "(CPU time summed over threads in brackets). speed-up: 1-thread wall / 2-thread wall "
                      "(1-thread CPU / 2-thread wall in brackets). The RLS updates run in parallel over blocks of "
                      "neurons; the per-step neuron update only from 4096 neurons on (below that the simulation "
                      "part is serial). OMP_WAIT_POLICY unset: libgomp's default, the idle worker spin-waits "
                      "for a while after each parallel region (CPU time that a shared machine's other work does not "
                      "get); passive: it sleeps.")
    for col in ("N", "L", "layer, OMP_WAIT_POLICY", "s/iteration 1 thread", "s/iteration 2 threads",
                "iteration speed-up", "RLS ms 1 thread", "RLS ms 2 threads", "RLS speed-up", "load"):
        s.add_column(col, justify="left" if col.startswith("layer") else "right")
    for r in result.get("threads", []):
        if "error" in r:
            s.add_row(str(r["n_neurons"]), str(r["n_plastic"]), r["omp_wait_policy"], "[red]failed[/red]", *[""] * 6)
            continue
        cells = []
        for what, scale, fmt in (("iter", 1.0, ".3f"), ("rls", 1e3, ".2f")):
            for n in (1, 2):
                wall, cpu = r[f"{what}_wall_median_{n}"] * scale, r[f"{what}_cpu_median_{n}"] * scale
                cells.append(f"{wall:{fmt}} ({cpu:{fmt}})")
            cells.append(f"{r[f'{what}_speedup_1_to_2']:.2f}× ({r[f'{what}_speedup_1_to_2_cpu']:.2f}×)")
        s.add_row(str(r["n_neurons"]), str(r["n_plastic"]), f"{r['threading_layer']}, {r['omp_wait_policy']}", *cells,
                  f"{r['load_average']:.1f}")
    c = Table(title="Same update? float64, one RLS update of every neuron, kernel vs NumPy reference",
              title_justify="left", caption="max |kernel − reference| / max |reference| from the same trained state; "
                                            "Δ: of the change the update makes")
    for col in ("storage", "N", "L", "w", "Δw", "P", "ΔP", "e²"):
        c.add_column(col, justify="left" if col == "storage" else "right")
    for v in result["check"]["points"]:
        c.add_row(v["storage"], str(v["n_neurons"]), str(v["n_plastic"]), *(f"{v[k]:.1e}" for k in (
            "w_max_rel_diff", "dw_max_rel_diff", "P_max_rel_diff", "dP_max_rel_diff", "e2_max_rel_diff")))
    return [t, s, c]

