"""Dendritic network forward simulation: the snnbatch kernel against Brian2 on the same equations.

The comparison of seed 000 (against Dendrify, which runs on Brian2): N two-compartment
neurons (soma + dendrite, v/u/w each, the :class:`DendriticConfig` defaults), recurrence
off, each neuron driven in its dendrite by ``W_in · x(t)`` from the same 10 input
signals, 1.0 s simulated with forward Euler at dt = 0.1 ms. Brian2 gets the kernel's ODEs
written as equations (``method='euler'``, so both integrate the same discrete system), the
kernel's input pattern as a ``TimedArray`` and the kernel's ``w_in`` as per-neuron
constants; it records nothing (no monitors), its best case.

Brian2 targets: the default (``'auto'``: Cython when it works), ``'numpy'`` and
``'cython'``. Its build time (code generation and, for Cython, compilation into a fresh,
empty cache directory) is the first ``run`` minus a later one and is reported apart.
Run times are later runs of 1 s after ``Network.restore``; ``loop`` subtracts the time of a
one-step run (the per-``run`` code generation Brian2 repeats each time), the most
favourable figure for Brian2. The kernel: ``forward`` (keeps all six traces, what the
adjoint needs) and ``simulate`` (keeps the final state and spike counts, like Brian2
without monitors), after a warm-up call (Numba compilation, or loading it from the cache,
reported apart). Every measurement runs in a fresh subprocess with 1 thread (the kernel's
``simulate`` also with 2); single-threaded figures are CPU time. Speed-ups are ratios to
the fastest Brian2 target measured in the same run.

Same network? For N = 10, float64, Brian2 (numpy and Cython) records the somatic voltage
and it is compared with the kernel's trace: max abs difference and spike counts.

Brian2 2.9.0 (the newest release) does not import with NumPy >= 2.4, which removed
``ndarray.ptp``; :func:`import_brian2` applies the upstream fix (brian-team/brian2#1705,
``np.ptp`` in place of ``np.ndarray.ptp``) to that one line at import time.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time

NAME = "dendritic"
TITLE = "Dendritic network forward, 1 s at dt = 0.1 ms, recurrence off: snnbatch kernel vs Brian2 (float64)"

N_QUICK = (10, 100, 1000)
N_FULL = (10, 100, 1000, 3000, 10000)
SEED_PARAMS, SEED_INPUTS = 1, 0


def import_brian2():
    """``import brian2``; with NumPy >= 2.4 its ``Quantity.ptp`` line is read as upstream fixed it."""
    import importlib.machinery
    import sys

    import numpy as np

    if not hasattr(np.ndarray, "ptp") and "brian2" not in sys.modules:
        target = "brian2.units.fundamentalunits"

        class Loader(importlib.machinery.SourceFileLoader):
            def get_code(self, fullname):
                source = self.get_source(fullname).replace("np.ndarray.ptp)", "np.ptp)")
                return compile(source, self.path, "exec", dont_inherit=True)

        class Finder:
            @staticmethod
            def find_spec(name, path=None, target_module=None):
                if name != target:
                    return None
                spec = importlib.machinery.PathFinder.find_spec(name, path)
                spec.loader = Loader(name, spec.origin)
                return spec

        sys.meta_path.insert(0, Finder)
        try:
            import brian2
        finally:
            sys.meta_path.remove(Finder)
        return brian2
    import brian2

    return brian2


def _problem(n_neurons: int, dtype: str = "float64"):
    import numpy as np

    from snnbatch.kernels import dendritic

    cfg = dendritic.DendriticConfig(n_neurons=n_neurons, recurrent=False, dtype=dtype)
    params = dendritic.init_params(cfg, np.random.default_rng(SEED_PARAMS))
    inputs = dendritic.make_inputs(cfg, np.random.default_rng(SEED_INPUTS))
    return cfg, params, {"inputs": inputs}


def brian2_equations(cfg) -> str:
    """The kernel's ODEs (module docstring of snnbatch.kernels.dendritic) as Brian2 equations, time in ms.

    Suffix 0 is the soma, 1 the dendrite; ``win<q>`` are neuron i's input weights, ``xin`` the input pattern.
    """
    drive = " + ".join(f"win{q}*xin(t, {q})" for q in range(cfg.n_inputs))
    eqs = f"""
dv_s/dt = ((a0*(v_s - b0)**2 + c0)*(v_s - 1) - j0*u_s*(v_s - l0) - k0*w_s*(v_s - m0) + sig0*(v_d - mu1) + bias0)/ms : 1
du_s/dt = (d0*(v_s - e0)**4 + f0 - u_s)/tu0 : 1
dw_s/dt = (g0*(v_s - h0)**2 + i0 - w_s)/tw0 : 1
dv_d/dt = ((a1*(v_d - b1)**2 + c1)*(v_d - 1) - j1*u_d*(v_d - l1) - k1*w_d*(v_d - m1) + sig1*(v_s - mu0) + J_d)/ms : 1
du_d/dt = (d1*(v_d - e1)**4 + f1 - u_d)/tu1 : 1
dw_d/dt = (g1*(v_d - h1)**2 + i1 - w_d)/tw1 : 1
J_d = bias1 + {drive} : 1
"""
    return eqs + "".join(f"win{q} : 1 (constant)\n" for q in range(cfg.n_inputs))


def _brian2_network(b2, cfg, params, task, record_v: bool):
    from snnbatch.kernels import dendritic

    ns = {}
    for name in dendritic._CONST_NAMES:
        if name in ("tau_u", "tau_w"):
            continue
        ns[name + "0"], ns[name + "1"] = getattr(cfg, name)
    ns["sig0"], ns["sig1"] = cfg.sigma
    ns["tu0"], ns["tu1"] = cfg.tau_u[0] * b2.ms, cfg.tau_u[1] * b2.ms
    ns["tw0"], ns["tw1"] = cfg.tau_w[0] * b2.ms, cfg.tau_w[1] * b2.ms
    ns["xin"] = b2.TimedArray(task["inputs"], dt=cfg.dt * b2.ms)
    b2.defaultclock.dt = cfg.dt * b2.ms
    group = b2.NeuronGroup(cfg.n_neurons, brian2_equations(cfg), method="euler", namespace=ns)
    for c, name in enumerate(("v", "u", "w")):  # the kernel's initial state (all zero by default)
        x0 = dendritic._initial_state(cfg, 1, "float64")
        setattr(group, f"{name}_s", x0[c, 0])
        setattr(group, f"{name}_d", x0[3 + c, 0])
    for q in range(cfg.n_inputs):
        setattr(group, f"win{q}", params["w_in"][:, q])
    objects = [group]
    monitor = None
    if record_v:
        monitor = b2.StateMonitor(group, "v_s", record=True)
        objects.append(monitor)
    return b2.Network(*objects), group, monitor


def _set_target(b2, target: str, cache_dir: str):
    b2.prefs.codegen.target = target  # "auto" is Brian2's default
    b2.prefs.codegen.runtime.cython.cache_dir = cache_dir
    b2.prefs.logging.console_log_level = "ERROR"


def brian2_task(target: str, n_neurons: int, repeats: int, cache_dir: str) -> dict:
    """First run (build + run) and ``repeats`` later runs of 1 s, and one-step runs, in this process."""
    t0 = time.perf_counter()
    b2 = import_brian2()
    t_import = time.perf_counter() - t0
    cfg, params, task = _problem(n_neurons)
    _set_target(b2, target, cache_dir)
    cached = len(os.listdir(cache_dir)) if os.path.isdir(cache_dir) else 0
    duration = cfg.duration * b2.ms
    t0, c0 = time.perf_counter(), time.process_time()
    net, group, _ = _brian2_network(b2, cfg, params, task, record_v=False)
    net.store()
    net.run(duration, namespace={})
    first_wall, first_cpu = time.perf_counter() - t0, time.process_time() - c0
    used = type(group.state_updater.codeobj).__name__.replace("CodeObject", "").lower()
    wall, cpu, step_wall, step_cpu = [], [], [], []
    for _ in range(repeats):
        net.restore()
        t0, c0 = time.perf_counter(), time.process_time()
        net.run(duration, namespace={})
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        net.restore()
        t0, c0 = time.perf_counter(), time.process_time()
        net.run(cfg.dt * b2.ms, namespace={})
        step_wall.append(time.perf_counter() - t0)
        step_cpu.append(time.process_time() - c0)
    return {"target_used": used, "import": t_import, "cache_entries_before": cached, "first_wall": first_wall,
            "first_cpu": first_cpu, "wall": wall, "cpu": cpu, "step_wall": step_wall, "step_cpu": step_cpu,
            "v_soma_checksum": float(abs(group.v_s[:]).sum()), "load_average": os.getloadavg()[0]}


def kernel_task(n_neurons: int, repeats: int, threads: int, dtype: str = "float64", forward: bool = True) -> dict:
    """Warm-up call, then ``repeats`` timed calls of ``simulate`` (and ``forward``), in this process."""
    import numba
    import numpy as np

    from snnbatch.kernels import dendritic

    numba.set_num_threads(threads)
    cfg, params, task = _problem(n_neurons, dtype)
    out = {"load_average": os.getloadavg()[0]}
    fns = {"simulate": lambda: dendritic.simulate(params, task, cfg)}
    if forward:
        fns["forward"] = lambda: dendritic.forward(params, task, cfg)
    for name, fn in fns.items():
        t0 = time.perf_counter()
        result = fn()
        out[f"{name}_first"] = time.perf_counter() - t0
        wall, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            result = fn()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        out[name] = {"wall": wall, "cpu": cpu}
        v = result[0][0] if name == "simulate" else result.v_soma[-1]
        out[f"{name}_v_soma_checksum"] = float(np.abs(np.asarray(v, np.float64)).sum())
    return out


def check_task(n_neurons: int, cache_dir: str) -> dict:
    """float64: Brian2's somatic voltage (numpy and Cython) against the kernel's, and simulate against forward."""
    import numpy as np

    from snnbatch.kernels import dendritic

    b2 = import_brian2()
    cfg, params, task = _problem(n_neurons)
    traces = dendritic.forward(params, task, cfg)
    # Brian2 records the state at the start of each step, t_0 .. t_{T-1}; the kernel's rows are t_1 .. t_T
    x0 = dendritic._initial_state(cfg, n_neurons, "float64")
    v_kernel = np.vstack([x0[:1], traces.v_soma[:-1]])
    counts_kernel = dendritic.count_spikes(v_kernel, cfg.spike_threshold)
    final, spikes = dendritic.simulate(params, task, cfg)
    out = {"n_neurons": n_neurons, "kernel_spikes": counts_kernel.tolist(),
           "simulate_final_equal_forward": bool(np.array_equal(final[0], traces.v_soma[-1])),
           "simulate_spikes_equal_forward": bool(np.array_equal(spikes, dendritic.count_spikes(
               traces.v_soma, cfg.spike_threshold))), "targets": {}}
    for target in ("numpy", "cython"):
        b2.start_scope()
        _set_target(b2, target, cache_dir)
        net, group, monitor = _brian2_network(b2, cfg, params, task, record_v=True)
        net.run(cfg.duration * b2.ms, namespace={})
        v_b2 = np.asarray(monitor.v_s[:, :]).T
        counts = dendritic.count_spikes(v_b2, cfg.spike_threshold)
        out["targets"][target] = {
            "max_abs_diff": float(np.abs(v_b2 - v_kernel).max()),
            "v_range": float(v_kernel.max() - v_kernel.min()),
            "spikes_equal": int(np.count_nonzero(counts == counts_kernel)),
            "spikes_brian2": int(counts.sum()), "spikes_kernel": int(counts_kernel.sum()),
        }
    return out


def run(mode: str, log) -> dict:
    from .common import median, subprocess_task

    full = mode == "full"
    sizes = N_FULL if full else N_QUICK
    rep_kernel, rep_b2 = (7, 3) if full else (5, 1)
    rows = []
    builds = {}
    tmp = tempfile.mkdtemp(prefix="snnbatch-brian2-")
    try:
        # the quick form's "auto" runs share Cython's (filled) cache: its cold build is Cython's
        caches = {t: os.path.join(tmp, f"cache-{t if full or t != 'auto' else 'cython'}")
                  for t in ("numpy", "cython", "auto")}
        for path in set(caches.values()):
            os.makedirs(path)
        for n in sizes:
            row = {"n_neurons": n}
            for threads in (1, 2):
                if threads == 2 and not full and n != sizes[-1]:
                    continue
                log(f"kernel N={n} {threads} thread(s)")
                row[f"kernel_{threads}"] = subprocess_task(
                    "benchmarks.bench_dendritic:kernel_task",
                    {"n_neurons": n, "repeats": rep_kernel, "threads": threads, "forward": threads == 1 and n <= 3000},
                    threads=threads)
            for target in ("numpy", "cython", "auto"):
                if target == "auto" and not full and n != sizes[-1]:
                    continue  # the default target: largest size only in the quick form
                if target == "numpy" and n > 3000:
                    continue  # about 40 s per run at N = 10,000
                log(f"Brian2 {target} N={n}")
                try:
                    r = subprocess_task("benchmarks.bench_dendritic:brian2_task",
                                        {"target": target, "n_neurons": n, "repeats": rep_b2,
                                         "cache_dir": caches[target]}, threads=1)
                except Exception as exc:  # noqa: BLE001 - a failed target is reported, the others still run
                    row[f"brian2_{target}"] = {"error": str(exc)[-500:]}
                    continue
                r["run_cpu"] = median(r["cpu"])
                r["run_wall"] = median(r["wall"])
                r["loop_cpu"] = max(median([a - b for a, b in zip(r["cpu"], r["step_cpu"])]), 1e-9)
                r["build_wall"] = r["first_wall"] - r["run_wall"]
                row[f"brian2_{target}"] = r
                if r["cache_entries_before"] == 0 and target not in builds:
                    builds[target] = {"n_neurons": n, "build_wall": r["build_wall"], "first_wall": r["first_wall"],
                                      "target_used": r["target_used"]}
            rows.append(row)
        log("same network? float64, N = 10, Brian2 numpy and Cython vs the kernel")
        check = subprocess_task("benchmarks.bench_dendritic:check_task",
                                {"n_neurons": 10, "cache_dir": caches["cython"]}, threads=1)
        check.pop("process_seconds", None)
        check.pop("peak_rss_mib", None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for row in rows:
        _ratios(row)
    return {"rows": rows, "check": check, "cold_build": builds, "repeats": {"kernel": rep_kernel, "brian2": rep_b2}}


def _ratios(row):
    from .common import median

    k = row["kernel_1"]
    row["kernel_simulate_cpu"] = median(k["simulate"]["cpu"])
    if "forward" in k:
        row["kernel_forward_cpu"] = median(k["forward"]["cpu"])
    if "kernel_2" in row:
        row["kernel_simulate_wall_2"] = median(row["kernel_2"]["simulate"]["wall"])
    b2 = [(t, row[f"brian2_{t}"]) for t in ("numpy", "cython", "auto")
          if f"brian2_{t}" in row and "error" not in row[f"brian2_{t}"]]
    if not b2:
        return
    best_t, best = min(b2, key=lambda tr: tr[1]["run_cpu"])
    best_loop = min(r["loop_cpu"] for _, r in b2)
    row["brian2_best"] = {"target": best_t, "run_cpu": best["run_cpu"], "loop_cpu": best_loop}
    row["speedup_simulate"] = best["run_cpu"] / row["kernel_simulate_cpu"]
    row["speedup_simulate_loop"] = best_loop / row["kernel_simulate_cpu"]
    if "kernel_forward_cpu" in row:
        row["speedup_forward"] = best["run_cpu"] / row["kernel_forward_cpu"]


TARGET = 10.0


def tables(result):
    from rich.table import Table

    t = Table(title=TITLE, title_justify="left",
              caption="seconds per 1 s simulated, CPU time, 1 thread (2 threads: wall). kernel simulate: final state "
                      "and spike counts; forward: all six traces kept. Brian2 run: a later net.run(1 s), no monitors; "
                      "loop: minus a one-step run (per-run code generation). build: first run minus a later one "
                      "(wall; Cython compiles only when its cache is empty, marked cold). speed-up: Brian2's fastest "
                      "target run / kernel simulate (forward; vs Brian2 loop).")
    for col in ("N", "kernel simulate", "2 threads", "kernel forward", "Brian2 numpy", "Brian2 cython",
                "Brian2 auto", "Brian2 build", "speed-up vs Brian2 best", "≥10×"):
        t.add_column(col, justify="right")

    def cell(row, target):
        r = row.get(f"brian2_{target}")
        if r is None:
            return "—"
        if "error" in r:
            return "[red]failed[/red]"
        return f"{r['run_cpu']:.3f} (loop {r['loop_cpu']:.3f})"

    for row in result["rows"]:
        builds = []
        for target in ("numpy", "cython", "auto"):
            r = row.get(f"brian2_{target}")
            if r and "error" not in r:
                cold = " cold" if r["cache_entries_before"] == 0 else ""
                builds.append(f"{target[:2]} {_build(r['build_wall'])}{cold}")
        sp = row.get("speedup_simulate")
        t.add_row(
            str(row["n_neurons"]), f"{row['kernel_simulate_cpu']:.4f}",
            f"{row['kernel_simulate_wall_2']:.4f}" if "kernel_simulate_wall_2" in row else "—",
            f"{row['kernel_forward_cpu']:.4f}" if "kernel_forward_cpu" in row else "—",
            cell(row, "numpy"), cell(row, "cython"), cell(row, "auto"), ", ".join(builds),
            (f"{sp:.1f}× vs {row['brian2_best']['target']} ("
             + (f"{row['speedup_forward']:.1f}×; " if "speedup_forward" in row else "")
             + f"{row['speedup_simulate_loop']:.1f}×)") if sp else "—",
            ("[green]met[/green]" if sp >= TARGET else "[red]missed[/red]") if sp else "")
    b = Table(title="Brian2 build time with an empty cache directory (first run minus a later run, wall s)",
              title_justify="left")
    for col in ("target", "chosen code", "N", "build s", "first run s"):
        b.add_column(col)
    for target, v in result["cold_build"].items():
        b.add_row(target, v["target_used"], str(v["n_neurons"]), _build(v["build_wall"]), f"{v['first_wall']:.2f}")
    c = Table(title=f"Same network? float64, N = {result['check']['n_neurons']}, 1 s: Brian2's somatic voltage vs "
                    "the kernel's", title_justify="left",
              caption=f"kernel simulate vs forward: final state identical "
                      f"{result['check']['simulate_final_equal_forward']}, spike counts identical "
                      f"{result['check']['simulate_spikes_equal_forward']}")
    for col in ("Brian2 target", "max |Δv_soma|", "v range", "neurons with equal spike count", "spikes Brian2",
                "spikes kernel"):
        c.add_column(col)
    n = result["check"]["n_neurons"]
    for target, v in result["check"]["targets"].items():
        c.add_row(target, f"{v['max_abs_diff']:.1e}", f"{v['v_range']:.2f}", f"{v['spikes_equal']}/{n}",
                  str(v["spikes_brian2"]), str(v["spikes_kernel"]))
    return [t, b, c]


def _build(seconds: float) -> str:
    """A build time measured as a difference of two runs: below the runs' own spread it reads as ~0."""
    return f"{seconds:.1f}" if seconds >= 0.05 else "~0"
