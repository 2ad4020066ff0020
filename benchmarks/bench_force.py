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
* the peak RSS of the process after the timed iterations (before the reference
  allocates its own matrices), beside the covariance bytes N·L² (full) or
  N·L(L+1)/2 (packed) × the dtype's size.

Single-threaded figures are CPU times (the machine may be shared; a 1-thread
process's CPU time is what it costs, its wall time also counts waiting for a
core). The 1 → 2 thread speed-up divides the 1-thread CPU time by the 2-thread
wall time, as in bench_lif. A float64 check compares one RLS update of the
kernel with the reference (packed and full). The full form also plots
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
        "repeats": 3, "rls_repeats": 5, "variants_at": ((1000, 80), (1000, 160)), "threads_at": ((1000, 160),),
    },
    "full": {
        "n_neurons": (500, 1000, 2000, 4000), "n_plastic": (40, 80, 160, 320), "duration": 1000.0,
        "repeats": 3, "rls_repeats": 7, "variants_at": ((2000, 40), (2000, 80), (2000, 160), (2000, 320)),
        "threads_at": ((1000, 160), (2000, 320), (4000, 160)),
    },
}
REF_MAX_BYTES = 512 * 2**20  # the reference's own covariances; larger points time it on a subset of neurons
REF_CHUNK = 128  # neurons per batched NumPy call of the reference (bounds its temporaries)


# --------------------------------------------------------------------------- the NumPy reference


def reference_rls_step(P, w, r, pre, y, chunk=REF_CHUNK):
    """One textbook RLS update of every neuron, in place; returns the a-priori errors ``e`` (N,).

    ``P`` (N, L, L) full inverse covariances, ``w`` (N, L) plastic weights, ``r``
    (N_pre,) filtered spike trains, ``pre`` (N, L) presynaptic indices, ``y`` (N,)
    residual targets of the read-out ``w·r``. For each neuron::

        k = P r;  c = 1 / (1 + rᵀ k);  e = w·r − y;  w −= c e k;  P −= c k kᵀ

    batched over ``chunk`` neurons at a time with matmul / einsum.
    """
    N = P.shape[0]
    e = np.empty(N, P.dtype)
    for s in range(0, N, chunk):
        sl = slice(s, min(N, s + chunk))
        R = r[pre[sl]]  # (n, L)
        K = np.matmul(P[sl], R[:, :, None])[:, :, 0]  # k = P r
        c = 1.0 / (1.0 + np.einsum("na,na->n", R, K))
        e[sl] = np.einsum("na,na->n", w[sl], R) - y[sl]
        w[sl] -= (c * e[sl])[:, None] * K
        P[sl] -= c[:, None, None] * (K[:, :, None] * K[:, None, :])
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


def point_task(n_neurons: int, n_plastic: int, packed: bool, dtype: str, duration: float, threads: int,
               repeats: int, rls_repeats: int, reference: bool) -> dict:
    """One (N, L, storage, dtype, threads) point in this fresh process; see the module docstring."""
    import numba

    from snnbatch.kernels import force as F

    from .common import median, peak_rss_mib, rss_mib

    numba.set_num_threads(threads)
    base = rss_mib()
    cfg = F.ForceConfig(n_neurons=n_neurons, n_plastic=n_plastic, duration=duration, packed=packed, dtype=dtype)
    state = F.init_state(cfg, np.random.default_rng(0))
    targets = F.make_targets(cfg, np.random.default_rng(1), F.innate_current(state, cfg))
    F.train_iteration(state, targets, cfg)  # warm-up: compiled code loaded, pages touched
    metrics = []
    wall, cpu = _timed(lambda: metrics.append(F.train_iteration(state, targets, cfg)), repeats)
    out = {"iter_wall": wall, "iter_cpu": cpu, "iter_wall_median": median(wall), "iter_cpu_median": median(cpu),
           "correlation": metrics[-1]["correlation"], "rate_hz": metrics[-1]["rate_hz"],
           "rls_updates_per_iter": cfg.n_steps // cfg.learn_every, "base_rss_mib": base,
           "train_peak_rss_mib": peak_rss_mib(), "cov_bytes": int(state["P"].nbytes),
           "load_average": os.getloadavg()[0]}

    # the RLS update alone, on the trained covariances
    rng = np.random.default_rng(2)
    N, L = n_neurons, n_plastic
    r = _traces(rng, N, cfg.dtype)
    y = rng.normal(-0.4, 0.5, N).astype(cfg.dtype)
    i_s, i_p, err = np.zeros(N, cfg.dtype), np.zeros(N, cfg.dtype), np.zeros((N, 2))
    step = lambda: _kernel_rls_step(F, state, cfg, r, y, i_s, i_p, err)  # noqa: E731
    step()
    wall, cpu = _timed(step, rls_repeats)
    out.update(rls_wall_median=median(wall), rls_cpu_median=median(cpu))
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
    return out


def check_task(n_neurons: int = 200, n_plastic: int = 40) -> dict:
    """float64: one RLS update by the kernel and by the reference from the same trained state."""
    import numba

    from snnbatch.kernels import force as F

    numba.set_num_threads(1)
    out = {}
    for packed in (True, False):
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

        out["packed" if packed else "full"] = {
            "n_neurons": N, "n_plastic": L,
            "w_max_rel_diff": rel(state["w_plastic"], w_ref),
            "dw_max_rel_diff": rel(state["w_plastic"] - w0, w_ref - w0),
            "P_max_rel_diff": rel(P_k, P_ref),
            "dP_max_rel_diff": rel(P_k - P0, P_ref - P0),
            "e2_max_rel_diff": rel(err[:, 0], e_ref**2),
        }
    return out


# --------------------------------------------------------------------------- driver


def _points(form):
    """(N, L, storage, dtype, threads) to measure: the default variant everywhere, the others where listed."""
    pts = [(N, L, *DEFAULT_VARIANT, 1) for N in form["n_neurons"] for L in form["n_plastic"]]
    pts += [(N, L, *v, 1) for (N, L) in form["variants_at"] for v in VARIANTS[1:]]
    pts += [(N, L, *DEFAULT_VARIANT, 2) for (N, L) in form["threads_at"]]
    return pts


def run(mode: str, log) -> dict:
    from .common import RESULTS, subprocess_task

    form = FORMS["full" if mode == "full" else "quick"]
    rows = []
    for N, L, storage, dtype, threads in _points(form):
        log(f"N={N} L={L} {storage} {dtype} {threads} thread(s)")
        kwargs = dict(n_neurons=N, n_plastic=L, packed=storage == "packed", dtype=dtype,
                      duration=form["duration"], threads=threads, repeats=form["repeats"],
                      rls_repeats=form["rls_repeats"], reference=threads == 1)
        row = {"n_neurons": N, "n_plastic": L, "storage": storage, "dtype": dtype, "threads": threads,
               "cov_mib": _cov_bytes(N, L, storage, dtype) / 2**20}
        try:
            r = subprocess_task("benchmarks.bench_force:point_task", kwargs, threads=threads)
        except Exception as exc:  # noqa: BLE001 - one failed point is reported, the others still run
            row["error"] = str(exc)[-500:]
            rows.append(row)
            continue
        r.pop("process_seconds", None)
        row.update(r)
        rows.append(row)
    _ratios(rows)
    log("float64 agreement check: kernel vs NumPy reference, one RLS update")
    check = subprocess_task("benchmarks.bench_force:check_task", {}, threads=1)
    check.pop("peak_rss_mib", None)
    check.pop("process_seconds", None)
    out = {"duration_ms": form["duration"], "repeats": form["repeats"], "rls_repeats": form["rls_repeats"],
           "rows": rows, "check": check}
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
    """Kernel RLS speed-up over the reference (1 thread, CPU time); 1 → 2 thread speed-ups."""
    ok = [r for r in rows if "error" not in r]
    one = {(r["n_neurons"], r["n_plastic"], r["storage"], r["dtype"]): r for r in ok if r["threads"] == 1}
    for r in ok:
        r["rls_share"] = r["rls_updates_per_iter"] * r["rls_cpu_median"] / r["iter_cpu_median"] if r["threads"] == 1 \
            else r["rls_updates_per_iter"] * r["rls_wall_median"] / r["iter_wall_median"]
        if "ref_cpu_median" in r:
            r["rls_speedup"] = r["ref_cpu_median"] / r["rls_cpu_median"]
            r["rls_speedup_wall"] = r["ref_wall_median"] / r["rls_wall_median"]
        if r["threads"] == 2:
            o = one.get((r["n_neurons"], r["n_plastic"], r["storage"], r["dtype"]))
            if o:
                r["iter_speedup_1_to_2"] = o["iter_cpu_median"] / r["iter_wall_median"]
                r["iter_speedup_1_to_2_wall"] = o["iter_wall_median"] / r["iter_wall_median"]
                r["rls_speedup_1_to_2"] = o["rls_cpu_median"] / r["rls_wall_median"]
                r["rls_speedup_1_to_2_wall"] = o["rls_wall_median"] / r["rls_wall_median"]


def _plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "error" not in r and r["threads"] == 1]
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
        axs[2].loglog(x, [r["train_peak_rss_mib"] for r in pts], "o-", color=line.get_color(), label=f"N={N} peak RSS")
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
    axs[2].set_title("memory: covariance bytes and peak RSS (packed float32)")
    axs[2].set_xlabel("plastic inputs per neuron L")
    axs[2].set_ylabel("MiB")
    axs[2].legend(fontsize=7)
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
                      "peak RSS: ru_maxrss of the fresh process after the timed iterations.")
    for col in ("N", "L", "storage", "dtype", "s/iteration", "RLS ms", "NumPy ref ms", "kernel vs NumPy",
                "RLS share", "covariance MiB", "peak RSS MiB", "load"):
        t.add_column(col, justify="left" if col in ("storage", "dtype") else "right")
    for r in result["rows"]:
        if r["threads"] != 1:
            continue
        head = (str(r["n_neurons"]), str(r["n_plastic"]), r["storage"], r["dtype"])
        if "error" in r:
            t.add_row(*head, "[red]failed[/red]", *[""] * 6, f"{r['cov_mib']:.1f}", "", "")
            continue
        dagger = "†" if r.get("ref_neurons", r["n_neurons"]) < r["n_neurons"] else ""
        t.add_row(*head, f"{r['iter_cpu_median']:.3f} ({r['iter_wall_median']:.3f})", f"{r['rls_cpu_median'] * 1e3:.2f}",
                  f"{r['ref_cpu_median'] * 1e3:.1f}{dagger}" if "ref_cpu_median" in r else "—",
                  f"{r['rls_speedup']:.1f}×" if "rls_speedup" in r else "—", f"{r['rls_share']:.0%}",
                  f"{r['cov_mib']:.1f}", f"{r['train_peak_rss_mib']:.0f}", f"{r['load_average']:.1f}")
    s = Table(title="RLS/FORCE kernel, packed float32: 1 → 2 threads", title_justify="left",
              caption="speed-up: 1-thread CPU time / 2-thread wall time (wall / wall in brackets). The RLS updates "
                      "run in parallel over blocks of neurons; the per-step neuron update only from "
                      "4096 neurons on, so the simulation part stays serial at these sizes.")
    for col in ("N", "L", "s/iteration 1 thread (cpu)", "s/iteration 2 threads (wall)", "iteration speed-up",
                "RLS ms 1 thread (cpu)", "RLS ms 2 threads (wall)", "RLS speed-up", "load"):
        s.add_column(col, justify="right")
    for r in result["rows"]:
        if r["threads"] != 2 or "error" in r or "iter_speedup_1_to_2" not in r:
            continue
        o = next(x for x in result["rows"] if x["threads"] == 1 and "error" not in x and all(
            x[k] == r[k] for k in ("n_neurons", "n_plastic", "storage", "dtype")))
        s.add_row(str(r["n_neurons"]), str(r["n_plastic"]), f"{o['iter_cpu_median']:.3f}",
                  f"{r['iter_wall_median']:.3f}",
                  f"{r['iter_speedup_1_to_2']:.2f}× ({r['iter_speedup_1_to_2_wall']:.2f}×)",
                  f"{o['rls_cpu_median'] * 1e3:.2f}", f"{r['rls_wall_median'] * 1e3:.2f}",
                  f"{r['rls_speedup_1_to_2']:.2f}× ({r['rls_speedup_1_to_2_wall']:.2f}×)", f"{r['load_average']:.1f}")
    c = Table(title="Same update? float64, one RLS update of every neuron, kernel vs NumPy reference",
              title_justify="left", caption="max |kernel − reference| / max |reference| from the same trained state; "
                                            "Δ: of the change the update makes")
    for col in ("storage", "N", "L", "w", "Δw", "P", "ΔP", "e²"):
        c.add_column(col, justify="left" if col == "storage" else "right")
    for storage, v in result["check"].items():
        c.add_row(storage, str(v["n_neurons"]), str(v["n_plastic"]), *(f"{v[k]:.1e}" for k in (
            "w_max_rel_diff", "dw_max_rel_diff", "P_max_rel_diff", "dP_max_rel_diff", "e2_max_rel_diff")))
    return [t, s, c]
