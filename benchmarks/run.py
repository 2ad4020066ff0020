"""``python -m benchmarks.run --quick | --full [--only NAME ...]``: run the benchmarks, print, save JSON.

Every speed figure is a ratio against a reference measured in the same run.
Results go to benchmarks/results/<mode>-<time>.json (and latest-<mode>.json)
with the machine's description, plots to benchmarks/results/scaling.png (and,
in the full form, force_scaling.png).

To add a benchmark, write ``benchmarks/bench_<name>.py`` with ``NAME``, ``TITLE``,
``run(mode, log) -> dict`` and ``tables(result) -> list[rich.table.Table]`` (see
benchmarks/common.py) and add its module name to ``MODULES``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time

# One module per benchmark, run in this order. Register new ones here.
MODULES = [
    "benchmarks.bench_lif",  # LIF kernel vs PyTorch peers: s/epoch, peak memory, 1 and 2 threads
    "benchmarks.bench_compile",  # cold vs warm Numba cache at task start-up
    "benchmarks.bench_scaling",  # BPTT and e-prop: time and memory vs hidden size, steps, batch; plot
    "benchmarks.bench_dendritic",  # dendritic forward vs Brian2 (numpy, Cython), build time apart
    "benchmarks.bench_force",  # RLS/FORCE: s/iteration and memory vs N, plastic inputs, packing, dtype
    "benchmarks.bench_shd",  # two recurrent layers on SHD-shaped data vs PyTorch peers, over input density
    "benchmarks.bench_memory",  # recurrent initialisation on Randman; delayed match-to-sample over delays
    "benchmarks.bench_deep",  # BPTT of two hidden layers vs a PyTorch network of the same equations: s/epoch
    "benchmarks.bench_eprop_deep",  # e-prop of 1-3 hidden layers: memory against T and depth; Randman accuracy
    "benchmarks.bench_halving",  # 81 Randman configurations: full grid vs successive halving, iterations and best accuracy
    "benchmarks.bench_scale",  # plan, create, status, resume selection, report of 1,000-100,000 tasks vs plain JSON
    "benchmarks.bench_overhead",  # per-task backend overhead, 300-task SLURM submit, status of 1,000 tasks, checkpoint cost
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--quick", action="store_const", const="quick", dest="mode", help="a few minutes (default)")
    form.add_argument("--full", action="store_const", const="full", dest="mode", help="more repeats, all peers, "
                      "scaling plots")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks (by NAME: "
                        + ", ".join(m.rsplit("_", 1)[-1] for m in MODULES) + ")")
    args = parser.parse_args(argv)
    mode = args.mode or "quick"

    from rich.console import Console

    from .common import machine_info, write_results

    console = Console(width=None if sys.stdout.isatty() else 160)
    modules = [importlib.import_module(m) for m in MODULES]
    if args.only:
        unknown = set(args.only) - {m.NAME for m in modules}
        if unknown:
            parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {[m.NAME for m in modules]}")
        modules = [m for m in modules if m.NAME in args.only]
    machine = machine_info()
    console.print(f"[bold]snnbatch benchmarks ({mode})[/bold] on {machine['cpu_model']}, {machine['cpu_count']} "
                  f"cores, load average {machine['load_average'][0]:.2f}")
    results, t0 = {}, time.perf_counter()
    for mod in modules:
        start = time.perf_counter()

        def log(msg, _name=mod.NAME, _start=start):
            console.print(f"[dim]{time.perf_counter() - t0:6.0f}s  {_name}: {msg}[/dim]")

        try:
            results[mod.NAME] = mod.run(mode, log)
        except Exception as exc:  # noqa: BLE001 - one failed benchmark must not lose the others' results
            results[mod.NAME] = {"error": f"{type(exc).__name__}: {exc}"}
            console.print(f"[red]{mod.NAME} failed:[/red] {exc}")
            continue
        results[mod.NAME]["seconds"] = time.perf_counter() - start
        for table in mod.tables(results[mod.NAME]):
            console.print(table)
    machine["load_average_end"] = list(__import__("os").getloadavg())
    path = write_results(mode, results, machine)
    console.print(f"results: {path}  ({time.perf_counter() - t0:.0f} s)")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
