"""Orchestration overhead: what snnbatch itself costs around the training.

1. Per-task overhead of each backend. A sweep of trivial tasks (8 hidden neurons, 2
   iterations of 32 samples) goes through ``snnbatch submit`` with ``inline``,
   ``local`` (Dask LocalCluster) and, with a live SLURM, ``slurm`` (submit, then poll
   the store until every task is done). Overhead per task = (wall time of the sweep −
   the tasks' own training) / tasks, where the tasks' own training is the same trivial
   trainer run directly in-process (the reference, measured in this run). It includes
   the driver's start-up, amortised over the sweep's tasks. Shown also as a fraction of
   a quick-start task's training time (measured here) and of a 10-hour cluster task.
   With a live SLURM also packed (``resources.pack``): the same trivial tasks, ``n`` and ``4n`` of them,
   all in one array element, one after another, and in one element of two cores (``node_cpus: 2``,
   two side by side), against the same numbers unpacked; from the two sizes, an element's fixed cost
   and each further task's cost, hence the overhead per task of a pack of any size, as a fraction of
   a 1-minute task.
2. Submitting 300 tasks to the live SLURM: ``snnbatch submit --backend slurm`` (it
   returns after submission), the arrays it made (from the store's scheduler records
   and squeue), then ``snnbatch cancel``. Reference: one plain ``sbatch --wrap true``.
3. ``snnbatch status`` of 1,000 tasks (and one refresh of ``--watch``), some with status records and metrics, against
   the interpreter start-up with the CLI imported, reading the 3,000 small JSON
   documents with plain ``json`` (the floor for any reader of this layout), all in this run.
4. Checkpoint cost: one checkpoint of the quick-start network (and the status write
   that follows it in the runner) against 200 training iterations, the default
   ``checkpoint.every_iterations`` count, in one process; and the default policy
   (``every_iterations: auto``, which bounds the cost by ``checkpoint.max_overhead``) in
   a real run of the same network by the runner: the time spent in checkpoints
   against the run's.

SLURM: run as root with Slurm installed, the module starts the test cluster with
tests/slurm/start.sh (its own state dir) and always stops it with stop.sh; otherwise the
SLURM rows say why they are not available. HTCondor cannot run on this machine.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NAME = "overhead"
TITLE = "Orchestration overhead"

TEN_HOURS = 10 * 3600.0
SLURM_STATE = "/tmp/snnbatch-slurm-bench"
QUICKSTART = "examples/quickstart.yaml"
TRIVIAL = """\
name: {name}
dataset: {{n_train: 64, n_test: 32, n_inputs: 16, n_steps: 20}}
model: {{n_hidden: 8}}
training: {{iterations: 2, batch_size: 32}}
resources: {{cpus: 1, memory: 500M, time: "00:05:00"}}
sweep:
  grid:
    lr: {lrs}
  seeds: {seeds}
"""
HTCONDOR_NOTE = ("not measured: no HTCondor pool can run on this machine (not packaged for Debian here; "
                 "PyPI has only the Python bindings)")


def _trivial_spec(name: str, n: int, packing: str = "") -> str:
    """``n`` trivial tasks; ``packing``: more resources keys (``pack: 8, node_cpus: 2``)."""
    seeds = 2 if n % 2 == 0 else 1
    lrs = [round(1e-3 * (i + 1), 6) for i in range(n // seeds)]
    text = TRIVIAL.format(name=name, lrs=json.dumps(lrs), seeds=seeds)
    return text.replace('time: "00:05:00"}', f'time: "00:05:00", {packing}}}') if packing else text


PACKINGS = {"unpacked": "", "pack": "pack: {n}", "pack, node_cpus 2": "pack: {n}, node_cpus: 2"}
ONE_MINUTE = 60.0


def _root() -> Path:
    from .common import ROOT

    return ROOT


def _snnbatch() -> list[str]:
    script = Path(sys.executable).with_name("snnbatch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "snnbatch.orchestrator.cli"]


def _timed(cmd: list[str], timeout: float = 600, check: bool = True, **kw) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    wall = time.perf_counter() - t0
    if check and proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{tail}")
    return wall, proc


def _cli_env() -> dict:
    env = dict(os.environ)
    env["COLUMNS"] = "200"
    return env


# ---------------------------------------------------------------------------- in a fresh process


def direct_trivial(spec_text: str, repeats: int = 3) -> dict:
    """The trivial tasks' trainers run directly (no store, no runner): the tasks' own work."""
    from snnbatch.jobs.config import TaskConfig
    from snnbatch.jobs.trainer import build_trainer, initial_state, total_iterations
    from snnbatch.orchestrator import planner, spec as spec_mod

    tmp = Path(tempfile.mkdtemp(prefix="snnbatch-direct-"))
    try:
        (tmp / "spec.yaml").write_text(spec_text)
        tasks = planner.plan(spec_mod.load(tmp / "spec.yaml"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def one(task):
        cfg = TaskConfig.model_validate(task.config_dict())
        trainer = build_trainer(cfg)
        state = initial_state(trainer)
        while state.iteration < total_iterations(trainer, cfg.training):
            state.record(trainer.step(state))
            state.iteration += 1
        trainer.evaluate(state)

    one(tasks[0])  # compile or load the kernels
    sweeps = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for task in tasks:
            one(task)
        sweeps.append(time.perf_counter() - t0)
    return {"tasks": len(tasks), "sweep_seconds": sorted(sweeps)[len(sweeps) // 2], "sweeps": sweeps}


def checkpoint_cost(repeats: int = 5) -> dict:
    """The quick-start task: its training time, 200 iterations, and one checkpoint."""
    import numpy as np
    import yaml

    from snnbatch.jobs.config import AUTO_EVERY_ITERATIONS
    from snnbatch.jobs.store import TaskStore
    from snnbatch.jobs.trainer import build_trainer, initial_state, total_iterations
    from snnbatch.orchestrator import planner, spec as spec_mod
    from snnbatch.orchestrator.store import RunStore

    every = AUTO_EVERY_ITERATIONS
    root = _root()
    spec_path = root / QUICKSTART
    spec = spec_mod.load(spec_path)
    tasks = planner.plan(spec)
    n_hidden = yaml.safe_load(spec_path.read_text())["model"]["n_hidden"]  # the spec's model, not a sweep value
    task = next((t for t in tasks if t.params.get("n_hidden") == n_hidden), tasks[0])
    tmp = Path(tempfile.mkdtemp(prefix="snnbatch-ckpt-"))
    try:
        store, _ = RunStore.create_or_update(tmp / "store", spec, spec_path.read_text(), [task])
        ts = TaskStore(store.path, task.id)
        cfg = ts.config()
        trainer = build_trainer(cfg)
        state = initial_state(trainer)
        keep = cfg.checkpoint.keep
        state.record(trainer.step(state))  # compile or load the kernels
        state.iteration += 1
        t0, c0 = time.perf_counter(), time.process_time()
        window, cpu_window = [], []
        total = total_iterations(trainer, cfg.training)
        while state.iteration < total:
            state.record(trainer.step(state))
            state.iteration += 1
            if len(window) < every:
                window.append(time.perf_counter())
                cpu_window.append(time.process_time())
        final = trainer.evaluate(state)
        train_seconds = (time.perf_counter() - t0) * total / max(1, total - 1)
        # a task shorter than the interval: scale its per-iteration time
        t200 = (window[-1] - t0) * every / len(window)
        cpu200 = (cpu_window[-1] - c0) * every / len(cpu_window)

        saves, save_cpu, removals, status_writes = [], [], [], []
        for i in range(repeats):
            t1, c1 = time.perf_counter(), time.process_time()
            ts.save_checkpoint(state, keep)
            t2 = time.perf_counter()
            save_cpu.append(time.process_time() - c1)
            ts.update_status(iteration=state.iteration, checkpoint="x", heartbeat=time.time(), loss=1.0, accuracy=0.5)
            t3 = time.perf_counter()
            saves.append(t2 - t1)
            status_writes.append(t3 - t2)
        t5 = time.perf_counter()
        ts.finish_removals()  # what the runner does once, at the end of the task
        removals.append(time.perf_counter() - t5)
        loaded, _, bad = ts.newest_good_checkpoint()
        assert loaded is not None and not bad and loaded.iteration == state.iteration
        nbytes = sum(np.asarray(v).nbytes for v in state.arrays.values())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(xs):
        return sorted(xs)[len(xs) // 2]

    return {
        "every_iterations": every,
        "max_overhead": cfg.checkpoint.max_overhead,
        "n_hidden": n_hidden,
        "task_id": task.id,
        "total_iterations": total,
        "train_seconds": train_seconds,
        "test_accuracy": float(final.get("test_accuracy", float("nan"))),
        "iterations_seconds": t200,
        "checkpoint_seconds": med(saves),
        "iterations_cpu_seconds": cpu200,
        "checkpoint_cpu_seconds": med(save_cpu),
        "status_write_seconds": med(status_writes),
        "removal_seconds": med(removals),
        "removal_runs": removals,
        "checkpoint_runs": saves,
        "state_bytes": int(nbytes),
        "arrays": len(state.arrays) + len(state.metrics),
    }


def auto_interval_run(iterations: int) -> dict:
    """The quick-start network trained for ``iterations`` by the runner with the default checkpoint policy
    (``every_iterations: auto``): the time spent in checkpoints against the whole run."""
    import yaml

    from snnbatch.jobs.runner import run_task
    from snnbatch.jobs.store import TaskStore
    from snnbatch.orchestrator import planner, spec as spec_mod
    from snnbatch.orchestrator.store import RunStore

    data = yaml.safe_load((_root() / QUICKSTART).read_text())
    data.pop("sweep", None)
    data["training"] = {**{k: v for k, v in data.get("training", {}).items() if k != "epochs"}, "iterations": iterations}
    data.pop("checkpoint", None)  # the defaults
    text = yaml.safe_dump(data, sort_keys=False)
    spec = spec_mod.parse(text)
    (task,) = planner.plan(spec)
    tmp = Path(tempfile.mkdtemp(prefix="snnbatch-auto-"))
    spent, at, started = [], [], []
    save = TaskStore.save_checkpoint

    def timed(self, state, keep, extra=None):
        t0 = time.perf_counter()
        try:
            return save(self, state, keep, extra)
        finally:
            spent.append(time.perf_counter() - t0)
            at.append(state.iteration)
            started.append(t0)

    TaskStore.save_checkpoint = timed
    try:
        store, _ = RunStore.create_or_update(tmp / "store", spec, text, [task])
        t0 = time.perf_counter()
        outcome = run_task(store.path, task.id)
        wall = time.perf_counter() - t0
    finally:
        TaskStore.save_checkpoint = save
        shutil.rmtree(tmp, ignore_errors=True)
    periodic = spent[:-1]  # the last one is the final checkpoint every task writes once
    # what the policy bounds: each periodic checkpoint waits until 1 / max_overhead times its predecessor's
    # cost has passed; over the completed gaps, the predecessors' cost against the gaps' time
    k = len(periodic)
    span = started[k - 1] - started[0] if k > 1 else 0.0
    return {"iterations": iterations, "state": outcome.state, "run_seconds": wall, "checkpoints": len(spent),
            "checkpoint_iterations": at, "periodic_seconds": sum(periodic), "final_seconds": spent[-1] if spent else 0.0,
            "periodic_fraction": sum(periodic) / wall, "gap_fraction": sum(periodic[:-1]) / span if span else None}


def build_status_store(path: str, n: int = 1000) -> dict:
    """A store of ``n`` planned tasks, none run: 30 % done with metrics, 5 % failed, 5 % running (no live
    lease, so shown as interrupted), every task with a scheduler record; and the time to make it."""
    from snnbatch.jobs.store import TaskStore
    from snnbatch.orchestrator import planner, spec as spec_mod
    from snnbatch.orchestrator.store import RunStore

    side = round(math.sqrt(n / 10))
    text = (f"name: status-1000\nmodel: {{n_hidden: 8}}\ntraining: {{iterations: 100}}\nsweep:\n  grid:\n"
            f"    lr: {json.dumps([round(1e-4 * (i + 1), 6) for i in range(side)])}\n"
            f"    n_hidden: {json.dumps(list(range(8, 8 + side)))}\n  seeds: {n // (side * side)}\n")
    spec_file = Path(path).with_suffix(".yaml")
    spec_file.write_text(text)
    t0 = time.perf_counter()
    spec = spec_mod.load(spec_file)
    tasks = planner.plan(spec)
    t1 = time.perf_counter()
    store, added = RunStore.create_or_update(path, spec, text, tasks)
    t2 = time.perf_counter()
    now = time.time()
    ids = [t.id for t in tasks]
    for i, tid in enumerate(ids):
        attempts = [{"n": 1, "started": now - 100, "ended": now - 10, "host": "node", "pid": 1, "backend": "local",
                     "reason": "done"}]
        if i % 20 == 1:
            values = {"state": "failed", "iteration": 40, "total": 100, "loss": 2.0, "attempts": attempts,
                      "error": "Traceback ...\nFloatingPointError: loss is not finite",
                      "error_line": "FloatingPointError: loss is not finite"}
        elif i % 20 == 2:
            values = {"state": "running", "iteration": 60, "total": 100, "loss": 0.4, "attempts": attempts[:1]}
        elif i % 10 in (3, 4, 5):
            values = {"state": "done", "iteration": 100, "total": 100, "loss": 0.1, "accuracy": 0.97,
                      "test_accuracy": 0.93, "test_loss": 0.2, "attempts": attempts, "checkpoint": "00000004"}
        else:
            continue
        TaskStore(path, tid).update_status(**values)
    t3 = time.perf_counter()
    store.record_submission(ids, "local", {tid: {"job_id": f"local-{i}"} for i, tid in enumerate(ids)})
    t4 = time.perf_counter()
    return {"tasks": len(added), "plan_seconds": t1 - t0, "create_seconds": t2 - t1, "status_records_seconds": t3 - t2,
            "record_submission_seconds": t4 - t3, "with_status": sum(1 for i in range(n) if i % 20 in (1, 2)
                                                                    or i % 10 in (3, 4, 5))}


def index_reads(path: str, repeats: int = 3) -> dict:
    """Reading the index of the store at ``path``: RunStore.tasks() and plain json of its 3 documents
    per task."""
    from snnbatch.orchestrator.store import RunStore

    store = RunStore.open(path)

    def plain():
        out = []
        base = Path(path) / "tasks"
        for name in sorted(os.listdir(base)):
            if name == "zarr.json":
                continue
            docs = []
            for sub in ("", "status", "scheduler"):
                try:
                    with open(base / name / sub / "zarr.json", "rb") as fh:
                        docs.append(json.loads(fh.read()).get("attributes", {}))
                except FileNotFoundError:
                    docs.append(None)
            out.append(docs)
        return out

    def best(fn):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2]

    n = len(store.tasks())
    return {"tasks": n, "run_store_tasks_seconds": best(store.tasks), "plain_json_seconds": best(plain)}


def status_in_process(path: str, repeats: int = 3) -> dict:
    """``snnbatch status`` (``--json`` and the table) called in a process that has already imported the CLI:
    its work beyond the interpreter's start-up."""
    import contextlib
    import io

    t0 = time.perf_counter()
    from snnbatch.orchestrator.cli import main

    imported = time.perf_counter() - t0

    def call(args):
        buf = io.StringIO()
        t1 = time.perf_counter()
        with contextlib.redirect_stdout(buf):
            try:
                main(args, standalone_mode=False)
            except SystemExit:
                pass
        return time.perf_counter() - t1

    def watch_refresh():
        """One refresh of ``status --watch``'s compact view: read the store, build the view, print it."""
        from rich.console import Console

        from snnbatch.orchestrator.cli.status import task_rows
        from snnbatch.orchestrator.progress import Counts
        from snnbatch.orchestrator.store import RunStore
        from snnbatch.orchestrator.watch import compact

        t1 = time.perf_counter()
        store = RunStore.open(path)
        tasks = store.tasks()
        Console(file=io.StringIO(), width=200).print(compact(store.name, path, task_rows(store, tasks), Counts(tasks)))
        return time.perf_counter() - t1

    json_runs = [call(["status", path, "--json"]) for _ in range(repeats)]
    table_runs = [call(["status", path]) for _ in range(repeats)]
    watch_runs = [watch_refresh() for _ in range(repeats)]
    return {"import_seconds": imported, "json_seconds": sorted(json_runs)[repeats // 2],
            "table_seconds": sorted(table_runs)[repeats // 2], "watch_seconds": sorted(watch_runs)[repeats // 2],
            "json_runs": json_runs, "table_runs": table_runs, "watch_runs": watch_runs}


# ---------------------------------------------------------------------------- in this process


def _store_states(store: Path) -> dict[str, dict]:
    """Each task's status attributes, read through the run store (missing ones as {})."""
    from snnbatch.orchestrator.store import RunStore

    names = [n for n in os.listdir(store / "tasks") if n != "zarr.json"]
    docs = RunStore.open(store).read_many([f"tasks/{n}/status" for n in names])
    return {n: d or {} for n, d in zip(names, docs)}


def _recorded_seconds(store: Path) -> float:
    total = 0.0
    for st in _store_states(store).values():
        for a in st.get("attempts") or []:
            if a.get("started") and a.get("ended"):
                total += a["ended"] - a["started"]
    return total


def _sweep(backend: str, spec_text: str, work: Path, tag: str, timeout: float = 600) -> dict:
    spec = work / f"{tag}.yaml"
    spec.write_text(spec_text)
    store = work / f"{tag}-store"
    cmd = _snnbatch() + ["submit", str(spec), "--store", str(store), "--backend", backend, "--no-progress"]
    wall, _ = _timed(cmd, timeout=timeout, env=_cli_env())
    states = _store_states(store)
    done = sum(1 for s in states.values() if s.get("state") == "done")
    return {"wall_seconds": wall, "done": done, "tasks": len(states), "recorded_seconds": _recorded_seconds(store)}


def _slurm_sweep(spec_text: str, work: Path, tag: str, timeout: float) -> dict:
    spec = work / f"{tag}.yaml"
    spec.write_text(spec_text)
    store = work / f"{tag}-store"
    cmd = _snnbatch() + ["submit", str(spec), "--store", str(store), "--backend", "slurm", "--no-progress"]
    t0 = time.perf_counter()
    submit, _ = _timed(cmd, timeout=300, env=_cli_env())
    from snnbatch.orchestrator.store import RunStore

    n = len(RunStore.open(store).tasks(configs=False))  # a task that has not started has no status of its own
    while True:
        states = _store_states(store)
        finished = [s for s in states.values() if s.get("state") in ("done", "failed")]
        if len(finished) == n:
            break
        if time.perf_counter() - t0 > timeout:
            _timed(_snnbatch() + ["cancel", str(store)], check=False, env=_cli_env())
            raise RuntimeError(f"SLURM sweep: {len(finished)} of {len(states)} tasks finished within {timeout:.0f} s")
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    done = sum(1 for s in states.values() if s.get("state") == "done")
    return {"wall_seconds": wall, "submit_seconds": submit, "done": done, "tasks": len(states),
            "recorded_seconds": _recorded_seconds(store)}


def _packing(runs: dict, n: int, direct_n: float, subprocess_task) -> dict:
    """Overhead per task of each packing at ``n`` and ``4n`` tasks; for a pack, the element's fixed cost
    and each further task's cost (the line through the two sizes), and the overhead per task of a pack
    of 10 and of 100 one-minute tasks."""
    big = 4 * n
    direct_big = subprocess_task("benchmarks.bench_overhead:direct_trivial",
                                 {"spec_text": _trivial_spec("direct", big), "repeats": 3}, threads=1)["sweep_seconds"]
    direct = {str(n): direct_n, str(big): direct_big}
    out = {"tasks": [n, big], "direct_seconds": direct, "by": {}}
    from .common import median

    for label, by_n in runs.items():
        row = {}
        for k, rs in by_n.items():
            wall = median([r["wall_seconds"] for r in rs])
            over = wall - direct[k]
            row[k] = {"runs": rs, "wall_seconds": wall, "done": min(r["done"] for r in rs), "overhead_seconds": over,
                      "overhead_per_task_seconds": over / int(k), "of_one_minute_task": over / int(k) / ONE_MINUTE}
        per_task = (row[str(big)]["overhead_seconds"] - row[str(n)]["overhead_seconds"]) / (big - n)
        fixed = row[str(n)]["overhead_seconds"] - per_task * n
        row["each_further_task_seconds"] = per_task
        row["fixed_seconds"] = fixed
        for size in (10, 100):
            row[f"pack_{size}_of_one_minute_task"] = (fixed / size + per_task) / ONE_MINUTE
        out["by"][label] = row
    un, pk = out["by"]["unpacked"], out["by"]["pack"]
    out["ratio_packed_to_unpacked"] = {k: pk[k]["overhead_per_task_seconds"] / un[k]["overhead_per_task_seconds"]
                                       for k in direct}
    return out


def _slurm_available() -> tuple[bool, str]:
    if os.geteuid() != 0:
        return False, "not running as root (tests/slurm/start.sh needs root)"
    if not shutil.which("slurmctld"):
        return False, "slurmctld is not installed (apt-get install slurm-wlm munge)"
    if not (_root() / "tests" / "slurm" / "start.sh").exists():
        return False, "tests/slurm/start.sh is missing"
    return True, ""


def _squeue_arrays(name: str) -> list[str]:
    r = subprocess.run(["squeue", "-h", "-n", name, "-o", "%F"], capture_output=True, text=True, timeout=60)
    return sorted({line.strip() for line in r.stdout.splitlines() if line.strip()})


def _slurm_part(mode: str, log, work: Path, n_trivial: int) -> dict:
    out: dict = {}
    root = _root()
    try:
        log("starting the test SLURM (tests/slurm/start.sh)")
        t0 = time.perf_counter()
        r = subprocess.run([str(root / "tests/slurm/start.sh"), "--accounting", "off", "--state-dir", SLURM_STATE],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            tail = " ".join((r.stdout + r.stderr).strip().splitlines()[-3:])
            return {"available": False, "reason": f"tests/slurm/start.sh failed: {tail[-300:]}"}
        out.update(available=True, state_dir=r.stdout.strip().splitlines()[-1],
                   start_seconds=time.perf_counter() - t0)
        log(f"SLURM up in {out['start_seconds']:.0f} s, state dir {out['state_dir']}")
        m = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True, timeout=60).stdout
        out["max_array_size"] = next((int(line.split("=")[1]) for line in m.splitlines()
                                      if line.startswith("MaxArraySize")), None)

        # the reference: one plain sbatch, and one plain 300-element array
        sb = []
        for _ in range(3 if mode == "quick" else 5):
            wall, _ = _timed(["sbatch", "--parsable", "-o", "/dev/null", "-J", "bench-sbatch", "--wrap", "true"])
            sb.append(wall)
        out["sbatch_seconds"] = sorted(sb)[len(sb) // 2]
        out["sbatch_runs"] = sb
        wall, proc = _timed(["sbatch", "--parsable", "-o", "/dev/null", "-J", "bench-array", "--array=0-299%1",
                             "--wrap", "true"])
        out["sbatch_array_300_seconds"] = wall
        subprocess.run(["scancel", proc.stdout.strip().split(";")[0]], capture_output=True, timeout=60)

        # 300 tasks in one submit
        log("submitting 300 tasks to SLURM")
        spec = work / "submit300.yaml"
        spec.write_text(_trivial_spec("submit300", 300))
        store = work / "submit300-store"
        cmd = _snnbatch() + ["submit", str(spec), "--store", str(store), "--backend", "slurm", "--no-progress",
                             "--max-parallel", "2"]
        wall, proc = _timed(cmd, timeout=600, env=_cli_env())
        out["submit_300_seconds"] = wall
        out["submit_300_output"] = proc.stdout.strip().splitlines()[-3:]
        from snnbatch.orchestrator.store import RunStore

        arrays = set()
        recorded = 0
        for sched in (t.get("scheduler") for t in RunStore.open(store).tasks(configs=False)):
            if sched:
                if sched.get("array_id"):
                    arrays.add(str(sched["array_id"]))
                    recorded += 1
        out["submit_300_tasks_recorded"] = recorded
        out["submit_300_arrays_store"] = sorted(arrays)
        out["submit_300_arrays_squeue"] = _squeue_arrays("snnbatch-submit300")
        wall, proc = _timed(_snnbatch() + ["cancel", str(store)], env=_cli_env())
        out["cancel_300_seconds"] = wall
        out["cancel_300_output"] = proc.stdout.strip()
        for _ in range(100):
            if not _squeue_arrays("snnbatch-submit300"):
                break
            time.sleep(0.2)

        # trivial tasks, submit until done in the store
        log(f"{n_trivial} trivial tasks on SLURM")
        runs = [_slurm_sweep(_trivial_spec(f"slurm{i}", n_trivial), work, f"slurm-{i}", timeout=300)
                for i in range(1 if mode == "quick" else 3)]
        out["trivial_runs"] = runs

        # packing: n and 4n trivial tasks, unpacked and all in one element
        packing = {}
        for i in range(2 if mode == "quick" else 3):
            for label, keys in PACKINGS.items():
                for n in (n_trivial, 4 * n_trivial):
                    log(f"{n} trivial tasks on SLURM, {label}")
                    tag = f"{label.replace(', ', '-').replace(' ', '')}-{n}-{i}"
                    packing.setdefault(label, {}).setdefault(str(n), []).append(_slurm_sweep(
                        _trivial_spec(f"p{tag}", n, keys.format(n=n)), work, f"packing-{tag}", timeout=900))
        out["packing_runs"] = packing
    finally:
        log("stopping the test SLURM (tests/slurm/stop.sh)")
        subprocess.run([str(root / "tests/slurm/stop.sh"), "--state-dir", SLURM_STATE], capture_output=True,
                       timeout=300)
    return out


def run(mode: str, log) -> dict:
    from .common import median, subprocess_task

    quick = mode == "quick"
    n_trivial = 8 if quick else 16
    repeats = 1 if quick else 3
    work = Path(tempfile.mkdtemp(prefix="snnbatch-overhead-"))
    result: dict = {"mode": mode, "trivial_tasks": n_trivial}
    try:
        # ------------------------------------------------------------------ 4 (and the quick-start reference)
        log("checkpoint cost and quick-start task time (fresh process, 1 thread)")
        ck = subprocess_task("benchmarks.bench_overhead:checkpoint_cost", {"repeats": 9 if quick else 21},
                             threads=1)
        ck["fraction"] = (ck["checkpoint_seconds"] + ck["status_write_seconds"]) / ck["iterations_seconds"]
        log("the default checkpoint policy (auto) in a real run of the quick-start network")
        ck["auto"] = subprocess_task("benchmarks.bench_overhead:auto_interval_run",
                                     {"iterations": 1000 if quick else 4000}, threads=1)
        result["checkpoint"] = ck

        # ------------------------------------------------------------------ 1: reference, inline, local
        spec_text = _trivial_spec("trivial", n_trivial)
        log(f"{n_trivial} trivial tasks run directly in-process (the reference)")
        direct = subprocess_task("benchmarks.bench_overhead:direct_trivial", {"spec_text": spec_text,
                                                                              "repeats": 3}, threads=1)
        direct_total = direct["sweep_seconds"]
        result["direct"] = direct
        backends = {}
        for backend in ("inline", "local"):
            runs = []
            for i in range(repeats):
                log(f"{n_trivial} trivial tasks on the {backend} backend")
                runs.append(_sweep(backend, _trivial_spec(f"{backend}{i}", n_trivial), work, f"{backend}-{i}"))
            backends[backend] = {"runs": runs}
        ok, reason = _slurm_available()
        if ok:
            try:
                slurm = _slurm_part(mode, log, work, n_trivial)
            except Exception as exc:  # noqa: BLE001 - the other parts' results stay
                slurm = {"available": False, "reason": f"{type(exc).__name__}: {str(exc)[-300:]}"}
        else:
            slurm = {"available": False, "reason": reason}
        result["slurm"] = slurm
        if slurm.get("trivial_runs"):
            backends["slurm"] = {"runs": slurm.pop("trivial_runs")}
        qs_train = ck["train_seconds"]
        for name, b in backends.items():
            b["wall_seconds"] = median([r["wall_seconds"] for r in b["runs"]])
            b["done"] = min(r["done"] for r in b["runs"])
            b["recorded_per_task_seconds"] = median([r["recorded_seconds"] for r in b["runs"]]) / n_trivial
            b["overhead_per_task_seconds"] = (b["wall_seconds"] - direct_total) / n_trivial
            b["fraction_of_quickstart_task"] = b["overhead_per_task_seconds"] / qs_train
            b["fraction_of_10h_task"] = b["overhead_per_task_seconds"] / TEN_HOURS
        result["backends"] = backends
        if slurm.get("packing_runs"):
            result["packing"] = _packing(slurm.pop("packing_runs"), n_trivial, direct_total, subprocess_task)

        # ------------------------------------------------------------------ 3: status of 1,000 tasks
        log("a store of 1,000 planned tasks")
        status_store = work / "status-1000"
        built = subprocess_task("benchmarks.bench_overhead:build_status_store", {"path": str(status_store)},
                                threads=1)
        result["status_store"] = built
        n_status = 3 if quick else 7
        json_runs, table_runs, import_runs = [], [], []
        for _ in range(n_status):
            wall, proc = _timed(_snnbatch() + ["status", str(status_store), "--json"], env=_cli_env())
            json_runs.append(wall)
            wall, _ = _timed(_snnbatch() + ["status", str(status_store)], env=_cli_env())
            table_runs.append(wall)
            wall, _ = _timed([sys.executable, "-c", "import snnbatch.orchestrator.cli"])
            import_runs.append(wall)
        doc = json.loads(proc.stdout)
        work_in_process = subprocess_task("benchmarks.bench_overhead:status_in_process",
                                          {"path": str(status_store), "repeats": n_status}, threads=1,
                                          env={"COLUMNS": "200"})
        log("reading the index: RunStore.tasks(), plain json")
        reads = subprocess_task("benchmarks.bench_overhead:index_reads", {"path": str(status_store),
                                                                          "repeats": 3}, threads=1)
        result["status"] = {
            "tasks": len(doc["tasks"]),
            "summary": doc["summary"],
            "json_seconds": median(json_runs),
            "table_seconds": median(table_runs),
            "import_seconds": median(import_runs),
            "json_work_seconds": work_in_process["json_seconds"],
            "table_work_seconds": work_in_process["table_seconds"],
            "watch_work_seconds": work_in_process["watch_seconds"],
            "in_process": work_in_process,
            "runs": {"json": json_runs, "table": table_runs, "import": import_runs},
            **reads,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["htcondor"] = HTCONDOR_NOTE
    return result


# ---------------------------------------------------------------------------- tables


def _s(x: float) -> str:
    return f"{x:.3f}" if abs(x) < 10 else f"{x:.1f}"


def _pct(x: float) -> str:
    return f"{100 * x:.2g} %" if x >= 1e-4 else f"{x:.1e}"


def tables(result):
    from rich.table import Table

    out = []
    n = result["trivial_tasks"]
    notes: list[str] = []
    ck = result["checkpoint"]
    direct = result["direct"]["sweep_seconds"]
    t = Table(title=f"{TITLE}: per-task overhead of each backend, {n} trivial tasks (8 neurons, 2 iterations)",
              title_justify="left")
    for col in ("backend", "sweep wall s", "done", "training s/task (store)", "overhead s/task",
                f"of a quick-start task ({ck['train_seconds']:.1f} s)", "of a 10-hour task"):
        t.add_column(col, justify="left" if col == "backend" else "right")
    t.add_row("direct, in-process (reference)", _s(direct), str(n), f"{direct / n:.4f}", "—", "—", "—")
    for name in ("inline", "local", "slurm"):
        b = result["backends"].get(name)
        if b is None:
            reason = result["slurm"].get("reason", "not run")
            t.add_row(name, "—", "—", "—", "not available", "—", "—")
            notes.append(f"{name}: not available ({reason})")
            continue
        t.add_row(name, _s(b["wall_seconds"]), f"{b['done']}/{n}", f"{b['recorded_per_task_seconds']:.3f}",
                  _s(b["overhead_per_task_seconds"]), _pct(b["fraction_of_quickstart_task"]),
                  _pct(b["fraction_of_10h_task"]))
    t.add_row("htcondor", "—", "—", "—", "not measured", "—", "—")
    t.caption = (f"htcondor: {HTCONDOR_NOTE}. "
                 "overhead/task = (sweep wall − the same trainers run directly in-process) / tasks; the wall is "
                 "`snnbatch submit` from launch to exit (slurm: until every task is done in the store), so it "
                 "includes the driver's start-up (and LocalCluster's, and each SLURM element's interpreter) "
                 "amortised over the sweep; 'training s/task (store)' is the attempts' duration the runner "
                 "recorded (lease, store, dataset, trainer, checkpoint). Medians over "
                 f"{len(next(iter(result['backends'].values()))['runs'])} run(s)." + "".join(f" {x}." for x in notes))
    out.append(t)

    p = result.get("packing")
    if p:
        n, big = p["tasks"]
        t = Table(title=f"Packing on SLURM: overhead per trivial task, {n} and {big} tasks, unpacked and all in "
                  "one array element", title_justify="left")
        for col in ("packing", f"{n} tasks: wall s", "overhead s/task", "of a 1-minute task", f"{big} tasks: wall s",
                    "overhead s/task", "of a 1-minute task", "element's fixed s", "each further task s"):
            t.add_column(col, justify="left" if col == "packing" else "right")
        for label, row in p["by"].items():
            a, b = row[str(n)], row[str(big)]
            t.add_row(label, _s(a["wall_seconds"]), _s(a["overhead_per_task_seconds"]), _pct(a["of_one_minute_task"]),
                      _s(b["wall_seconds"]), _s(b["overhead_per_task_seconds"]), _pct(b["of_one_minute_task"]),
                      _s(row["fixed_seconds"]), f"{row['each_further_task_seconds']:.3f}")
        pk = p["by"]["pack"]
        r = p["ratio_packed_to_unpacked"]
        t.caption = (f"overhead = sweep wall (submit until every task is done in the store) − the same trainers run "
                     f"directly in-process ({_s(p['direct_seconds'][str(n)])} / {_s(p['direct_seconds'][str(big)])} s); "
                     f"packed / unpacked overhead per task: {r[str(n)]:.2f} at {n} tasks, {r[str(big)]:.2f} at {big}. "
                     "Trivial tasks, so the overhead is extrapolated to 1-minute tasks as overhead s / 60 s: a pack of "
                     f"10 one-minute tasks {_pct(pk['pack_10_of_one_minute_task'])}, of 100 "
                     f"{_pct(pk['pack_100_of_one_minute_task'])} (target < 1 %). 'fixed' and 'each further task': the line "
                     f"through the two sizes. Elements of the same array run at once on the test node "
                     "(8 declared CPUs on this machine's cores).")
        out.append(t)

    s = result["slurm"]
    t = Table(title="300 tasks submitted to SLURM in one `snnbatch submit --backend slurm`", title_justify="left")
    t.add_column("what", justify="left")
    t.add_column("value", justify="right")
    if not s.get("available"):
        t.add_row("SLURM", f"not available ({s.get('reason')})")
    else:
        arrays = s["submit_300_arrays_store"]
        expected = math.ceil(300 / (s.get("max_array_size") or 1001))
        t.add_row("snnbatch submit, 300 tasks (s)", _s(s["submit_300_seconds"]))
        t.add_row("one plain `sbatch --wrap true` (s, reference)", _s(s["sbatch_seconds"]))
        t.add_row("→ 300 tasks cost", f"{s['submit_300_seconds'] / s['sbatch_seconds']:.1f}× one sbatch")
        t.add_row("300 separate sbatch calls (300 × one, for comparison)", _s(300 * s["sbatch_seconds"]))
        start = result.get("status", {}).get("import_seconds")
        if start is not None:
            t.add_row("  of the submit: interpreter start-up with the CLI imported", _s(start))
        t.add_row("one plain 300-element `sbatch --array` (s)", _s(s["sbatch_array_300_seconds"]))
        t.add_row("arrays made (store records / squeue)",
                  f"{len(arrays)} / {len(s['submit_300_arrays_squeue'])} (MaxArraySize {s.get('max_array_size')}: "
                  f"≥ {expected} needed)")
        t.add_row("tasks with a job id recorded", str(s["submit_300_tasks_recorded"]))
        t.add_row("snnbatch cancel (s)", _s(s["cancel_300_seconds"]))
        t.caption = (f"test cluster (tests/slurm/start.sh, accounting off) up in {s['start_seconds']:.0f} s; submit "
                     "with --max-parallel 2 so that few elements start before the cancel; the time includes "
                     "the interpreter start-up, planning, creating the store, MaxArraySize and the pickles")
    out.append(t)

    st = result["status"]
    t = Table(title=f"`snnbatch status` of {st['tasks']} tasks ({result['status_store']['with_status']} with "
              "status records and metrics, all with scheduler records)", title_justify="left")
    t.add_column("what", justify="left")
    t.add_column("s", justify="right")
    t.add_column("note", justify="left")
    t.add_row("python -c 'import snnbatch.orchestrator.cli' (reference)", _s(st["import_seconds"]),
              "interpreter start-up with the CLI imported")
    t.add_row("snnbatch status --json (wall, fresh process)", _s(st["json_seconds"]), "")
    t.add_row("snnbatch status (table, 200 columns; wall, fresh process)", _s(st["table_seconds"]), "")
    t.add_row("  status --json, CLI already imported", _s(st["json_work_seconds"]),
              "the work beyond interpreter start-up")
    t.add_row("  status (table), CLI already imported", _s(st["table_work_seconds"]),
              "the work beyond interpreter start-up")
    if "watch_work_seconds" in st:
        t.add_row("  one refresh of status --watch (compact view)", _s(st["watch_work_seconds"]),
                  f"{st['watch_work_seconds'] / st['run_store_tasks_seconds']:.2f}× RunStore.tasks()")
    t.add_row("RunStore.tasks() in-process", _s(st["run_store_tasks_seconds"]), "Zarr's store, reads concurrent")
    t.add_row("plain json of the 3 documents per task (reference)", _s(st["plain_json_seconds"]),
              f"RunStore.tasks() = {st['run_store_tasks_seconds'] / st['plain_json_seconds']:.1f}×")
    b = result["status_store"]
    t.add_row("create_or_update: add 1,000 tasks", _s(b["create_seconds"]), "one Zarr group per task")
    t.add_row("record_submission for 1,000 tasks", _s(b["record_submission_seconds"]), "")
    out.append(t)

    t = Table(title=f"Checkpoint cost, quick-start network ({ck['n_hidden']} hidden, {ck['arrays']} arrays, "
              f"{ck['state_bytes'] / 1024:.0f} KiB), one process, 1 thread", title_justify="left")
    t.add_column("what", justify="left")
    t.add_column("s", justify="right")
    t.add_column("of 200 iterations", justify="right")
    t.add_row(f"{ck['every_iterations']} training iterations (default every_iterations; reference)",
              _s(ck["iterations_seconds"]), "100 %")
    t.add_row("one checkpoint (save_checkpoint: arrays, checksums, commit; blocking)", f"{ck['checkpoint_seconds']:.4f}",
              _pct(ck["checkpoint_seconds"] / ck["iterations_seconds"]))
    t.add_row("  once per task, at its end: waiting for background removals", f"{ck['removal_seconds']:.4f}", "")
    t.add_row("the status write after it", f"{ck['status_write_seconds']:.4f}",
              _pct(ck["status_write_seconds"] / ck["iterations_seconds"]))
    t.add_row("checkpoint + status", f"{ck['checkpoint_seconds'] + ck['status_write_seconds']:.4f}",
              _pct(ck["fraction"]))
    if "checkpoint_cpu_seconds" in ck:
        t.add_row("one checkpoint, CPU time (vs 200 iterations' CPU time)", f"{ck['checkpoint_cpu_seconds']:.4f}",
                  _pct(ck["checkpoint_cpu_seconds"] / ck["iterations_cpu_seconds"]))
    auto = ck.get("auto")
    if auto:
        t.add_row(f"default policy (every_iterations: auto), a run of {auto['iterations']} iterations: "
                  f"{auto['checkpoints'] - 1} periodic checkpoints (at {', '.join(map(str, auto['checkpoint_iterations'][:-1]))})",
                  f"{auto['periodic_seconds']:.4f}", _pct(auto["periodic_fraction"]) + " of the run")
        if auto.get("gap_fraction") is not None:
            t.add_row("  between periodic checkpoints: each one's cost / the time to the next", "",
                      _pct(auto["gap_fraction"]))
    met = auto is not None and auto["periodic_fraction"] < 0.01
    t.caption = (f"target < 1 % at the default interval: {'met' if met else 'missed'} "
                 f"(every_iterations: auto checkpoints every {ck['every_iterations']} iterations, but no more often "
                 f"than {_pct(ck['max_overhead'])} of the time allows; the first one, before any cost is known, at "
                 f"{ck['every_iterations']}, which a run of hours amortises). A fixed every_iterations: {ck['every_iterations']} costs "
                 f"{_pct(ck['fraction'])} on this network of {ck['iterations_seconds'] / ck['every_iterations'] * 1e3:.1f} ms "
                 "per iteration, and proportionally less on slower ones. Checkpoints beyond checkpoint.keep are renamed "
                 "aside at once and removed in a background thread. Medians.")
    out.append(t)
    return out
