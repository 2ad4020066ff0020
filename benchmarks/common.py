"""What every benchmark module shares: machine info, subprocess workers, medians, the results file.

A benchmark module (``benchmarks/bench_*.py``) defines

* ``NAME`` and ``TITLE``;
* ``run(mode, log) -> dict``: measure (``mode`` is ``"quick"`` or ``"full"``), return JSON-able results;
* ``tables(result) -> list[rich.table.Table]``: how the results print;

and registers itself in ``benchmarks/run.py``. Work that must start from a fresh
interpreter (thread counts, peak memory, cold compilation) goes through
:func:`subprocess_task`, which runs ``module:function(**kwargs)`` in ``python -m
benchmarks.worker`` and returns what the function returned.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"

THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def thread_env(threads: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(threads)
    env.update(extra)
    return env


def subprocess_task(target: str, kwargs: dict, threads: int = 1, env: dict | None = None, timeout: float = 1800) -> dict:
    """Run ``target`` ("module:function") with ``kwargs`` in a fresh interpreter limited to ``threads``."""
    full_env = thread_env(threads, **(env or {}))
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "benchmarks.worker", target, json.dumps(kwargs)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"{target}({kwargs}) failed with exit code {proc.returncode}:\n{tail}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_seconds"] = wall
    return out


def median(xs) -> float:
    return float(statistics.median(xs))


_PEAK_BEFORE_RESET = 0.0


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux VmHWM, across :func:`reset_peak_rss`).

    Not ``ru_maxrss``: a process started by ``subprocess`` reports its parent's peak there
    when the parent's was larger (Linux carries it across fork and exec).
    """
    return max(_PEAK_BEFORE_RESET, hwm_mib())


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (Linux: VmHWM), so that :func:`hwm_mib` sees only what follows."""
    global _PEAK_BEFORE_RESET
    _PEAK_BEFORE_RESET = max(_PEAK_BEFORE_RESET, hwm_mib())
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def hwm_mib() -> float:
    """Peak resident memory since the start or the last :func:`reset_peak_rss` (Linux VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def machine_info() -> dict:
    info = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "load_average": list(os.getloadavg()),
    }
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    for mod in ("numpy", "numba", "torch", "snntorch", "norse"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - absent or broken peers are reported, not fatal
            info[mod] = None
    try:
        info["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                            text=True, check=True).stdout.strip()
        info["git_dirty"] = bool(subprocess.run(["git", "status", "--porcelain", "kernels"], cwd=ROOT,
                                                capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_results(mode: str, results: dict, machine: dict) -> Path:
    """``benchmarks/results/<mode>-<time>.json`` and ``latest-<mode>.json``, each written atomically."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = json.dumps({"mode": mode, "machine": machine, "results": results}, indent=1, default=float)
    paths = [RESULTS / f"{mode}-{stamp}.json", RESULTS / f"latest-{mode}.json"]
    for path in paths:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.partial")
        tmp.write_text(text)
        tmp.replace(path)
    return paths[0]
