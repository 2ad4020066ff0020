"""Scale: what planning, creating, reading and reporting a store of many tasks costs.

For sweeps of 1,000 and 10,000 tasks (``--full`` adds 100,000) of a cheap grid (learning rates x 10
seeds), nothing trained: ``plan --json``; store creation (``RunStore.create_or_update``, the path
``submit`` takes, then ``record_submission`` of one backend job per task); ``status --json`` and
choosing what ``resume`` runs while every task is pending; then 10 % of the tasks marked done, each
with final metrics and one checkpoint (two weight arrays and the metric histories of 100 iterations,
written by ``TaskStore.save_checkpoint``), 5 % failed; ``status --json`` and the table; choosing
what ``resume`` runs (``runnable``, as ``resume`` does); ``report`` (the HTML page and figures, which
read the done tasks' metric histories); and the files the store holds per task, pending and after. All commands run in this process (the CLI imported once), so
the times are their work, not the interpreter's start-up.

Each is set against a reference measured in the same run on the same metadata held as plain JSON
files, one per task document, in a plain directory: serialising the plan's configs with ``json``
(plan), writing the documents (creation and submission records) and reading them (status, resume,
report). The targets of issue 15 for 100,000 tasks: plan <= 5 s, creation <= 15 s, status <= 2 s,
resume selection <= 3 s, report <= 30 s.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

NAME = "scale"
TITLE = "Scale: stores of many tasks"

TARGETS_100K = {"plan": 5.0, "create": 15.0, "status_pending": 2.0, "resume_pending": 3.0, "status_json": 2.0,
                "status_json_warm": 2.0, "status_table": 2.0, "resume": 3.0, "report": 30.0}


def _spec_text(n: int) -> str:
    """A grid of ``n`` cheap tasks (``n`` a multiple of 10): n/10 learning rates x 10 seeds."""
    return (f"name: scale-{n}\ndataset: {{n_train: 64, n_test: 32, n_inputs: 16, n_steps: 20}}\n"
            f"model: {{n_hidden: 8}}\ntraining: {{iterations: 100, batch_size: 32}}\nsweep:\n  grid:\n"
            f"    lr: {json.dumps([round(1e-6 * (i + 1), 8) for i in range(n // 10)])}\n  seeds: 10\n")


def _cli(args: list[str]) -> tuple[float, str]:
    from snnbatch.orchestrator.cli import main

    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        try:
            main(args, standalone_mode=False)
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise RuntimeError(f"snnbatch {' '.join(args)} exited with {exc.code}") from None
    return time.perf_counter() - t0, buf.getvalue()


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _count_files(path: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(path))


# ---------------------------------------------------------------------------- the plain-JSON reference


def _plain_write(base: Path, docs: dict[str, dict]) -> None:
    """One JSON file per document (``key`` -> ``base/key.json``), directories made as needed."""
    made = set()
    for key, doc in docs.items():
        path = base / f"{key}.json"
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        with open(path, "w") as fh:
            json.dump(doc, fh)


def _plain_read(base: Path, keys: list[str]) -> list[dict | None]:
    out = []
    for key in keys:
        try:
            with open(base / f"{key}.json", "rb") as fh:
                out.append(json.loads(fh.read()))
        except FileNotFoundError:
            out.append(None)
    return out


def _state():
    """A small trained state: two weight arrays and 100 iterations of two metrics' histories."""
    import numpy as np

    from snnbatch.jobs.state import TrainState

    rng = np.random.default_rng(0)
    return TrainState(100, {"w_in": rng.standard_normal((16, 8)), "w_out": rng.standard_normal((8, 2))}, rng,
                      {"loss": list(np.linspace(1.0, 0.1, 100)), "accuracy": list(np.linspace(0.5, 0.97, 100))})


def one_size(n: int, work: Path, log) -> dict:
    from snnbatch.jobs.store import TaskStore
    from snnbatch.orchestrator import halving as run_halving
    from snnbatch.orchestrator import planner, spec as spec_mod
    from snnbatch.orchestrator.store import RunStore

    if not hasattr(run_halving, "runnable"):
        from snnbatch.orchestrator.cli import submit as run_halving  # noqa: F811 - where runnable lives

    spec_file = work / f"scale-{n}.yaml"
    text = _spec_text(n)
    spec_file.write_text(text)
    store_path = work / f"store-{n}"
    plain = work / f"plain-{n}"
    r: dict = {}

    # plan
    r["plan"], out = _cli(["plan", str(spec_file), "--json"])
    planned = json.loads(out)
    r["plan_ref"], _ = _timed(lambda: json.dumps(planned))
    spec = spec_mod.load(spec_file)
    tasks = planner.plan(spec)
    n = len(tasks)
    r["tasks"] = n
    log(f"{n} tasks: plan --json {r['plan']:.2f} s")

    # create + submission records
    r["create"], (store, added) = _timed(lambda: RunStore.create_or_update(store_path, spec, text, tasks))
    assert len(added) == n
    ids = [t.id for t in tasks]
    meta = {f"{tid}/meta": {"config": t.config_dict(), "params": t.params, "index": i} for i, (tid, t) in
            enumerate(zip(ids, tasks))}
    r["create_ref"], _ = _timed(lambda: _plain_write(plain, meta))
    jobs = {tid: {"job_id": f"local-{i}"} for i, tid in enumerate(ids)}
    r["submit_record"], _ = _timed(lambda: store.record_submission(ids, "local", jobs))
    sched = {f"{tid}/scheduler": {"backend": "local", "submissions": [{"backend": "local", "time": 0.0, **jobs[tid]}],
                                   **jobs[tid]} for tid in ids}
    r["submit_record_ref"], _ = _timed(lambda: _plain_write(plain, sched))
    log(f"{n} tasks: create {r['create']:.2f} s, record_submission {r['submit_record']:.2f} s")
    r["files_pending"] = _count_files(store_path) - 1  # the root's zarr.json left out
    r["plain_files_pending"] = _count_files(plain)
    all_keys = [f"{tid}/{d}" for tid in ids for d in ("meta", "scheduler")]
    r["status_pending"], out = _cli(["status", str(store_path), "--json"])
    r["read_pending_ref"], _ = _timed(lambda: _plain_read(plain, all_keys))
    r["resume_pending"], chosen = _timed(lambda: run_halving.runnable(RunStore.open(store_path)))
    assert len(chosen) == n
    log(f"{n} tasks pending: status --json {r['status_pending']:.2f} s, resume selection {r['resume_pending']:.2f} s")

    # 10 % done with final metrics, 5 % failed
    now = time.time()
    status_docs = {}
    for i, tid in enumerate(ids):
        if i % 10 == 3:
            values = {"state": "done", "iteration": 100, "total": 100, "loss": 0.1, "accuracy": 0.97,
                      "test_accuracy": 0.93, "test_loss": 0.2,
                      "attempts": [{"n": 1, "started": now - 100, "ended": now - 10, "reason": "done"}]}
        elif i % 20 == 1:
            values = {"state": "failed", "iteration": 40, "total": 100, "loss": 2.0,
                      "error_line": "FloatingPointError: loss is not finite"}
        else:
            continue
        ts = TaskStore(store_path, tid)
        if values["state"] == "done":
            ts.save_checkpoint(_state(), keep=2)
            ts.finish_removals()
        ts.update_status(**values)
        status_docs[f"{tid}/status"] = values
    _plain_write(plain, status_docs)
    all_keys = [f"{tid}/{d}" for tid in ids for d in ("meta", "status", "scheduler")]
    done_keys = [k for k in status_docs if status_docs[k]["state"] == "done"]
    r["done"] = len(done_keys)

    # status
    r["status_json"], out = _cli(["status", str(store_path), "--json"])
    assert len(json.loads(out)["tasks"] if isinstance(json.loads(out), dict) else json.loads(out)) == n
    r["status_json_warm"], _ = _cli(["status", str(store_path), "--json"])  # the cache of status records read
    r["status_table"], _ = _cli(["status", str(store_path)])
    r["read_ref"], _ = _timed(lambda: _plain_read(plain, all_keys))
    log(f"{n} tasks: status --json {r['status_json']:.2f} s (again {r['status_json_warm']:.2f} s), "
        f"table {r['status_table']:.2f} s")

    # resume selection
    opened = RunStore.open(store_path)
    r["resume"], chosen = _timed(lambda: run_halving.runnable(RunStore.open(store_path)))
    assert len(chosen) == n - r["done"] - sum(1 for d in status_docs.values() if d["state"] == "failed"), len(chosen)
    del opened

    # report
    r["report"], _ = _cli(["report", str(store_path), "--out", str(work / f"report-{n}")])
    r["report_ref"], _ = _timed(lambda: (_plain_read(plain, [k.replace("/status", "/meta") for k in done_keys]),
                                         _plain_read(plain, done_keys)))
    log(f"{n} tasks: resume selection {r['resume']:.2f} s, report {r['report']:.2f} s")

    r["files"] = _count_files(store_path) - 1
    r["files_per_task"] = r["files"] / n
    r["files_pending_per_task"] = r["files_pending"] / n
    r["plain_files_per_task"] = r["plain_files_pending"] / n
    shutil.rmtree(store_path, ignore_errors=True)
    shutil.rmtree(plain, ignore_errors=True)
    return r


def run(mode: str, log, sizes: list[int] | None = None) -> dict:
    sizes = sizes or [1000, 10000] + ([100000] if mode == "full" else [])
    out = {"sizes": {}}
    with tempfile.TemporaryDirectory(prefix="snnbatch-scale-") as tmp:
        for n in sizes:
            work = Path(tmp) / str(n)
            work.mkdir()
            out["sizes"][str(n)] = one_size(n, work, log)
    out["targets_100k"] = TARGETS_100K
    return out


ROWS = [("plan", "plan --json", "plan_ref", "json.dumps of the plan"),
        ("create", "store creation (create_or_update)", "create_ref", "write task documents"),
        ("submit_record", "record_submission", "submit_record_ref", "write scheduler documents"),
        ("status_pending", "status --json, all pending", "read_pending_ref", "read all documents"),
        ("resume_pending", "resume selection, all pending", "read_pending_ref", "read all documents"),
        ("status_json", "status --json (first read)", "read_ref", "read all documents"),
        ("status_json_warm", "status --json (again)", "read_ref", "read all documents"),
        ("status_table", "status (table)", "read_ref", "read all documents"),
        ("resume", "resume selection (runnable)", "read_ref", "read all documents"),
        ("report", "report (page and figures)", "report_ref", "read the done tasks' documents")]


def tables(result):
    from rich.table import Table

    out = []
    for n, r in result["sizes"].items():
        t = Table(title=f"{TITLE}: {r['tasks']:,} tasks ({r['done']:,} done), nothing trained", title_justify="left")
        for col in ("step", "snnbatch s", "reference", "reference s", "ratio", "target at 100,000"):
            t.add_column(col, justify="left" if col in ("step", "reference") else "right")
        for key, label, ref, ref_label in ROWS:
            target = TARGETS_100K.get(key)
            t.add_row(label, f"{r[key]:.3f}", ref_label, f"{r[ref]:.3f}", f"{r[key] / max(r[ref], 1e-9):.1f}x",
                      f"{target:g} s" if target else "—")
        t.caption = (f"files per task: {r['files_pending_per_task']:.3f} in the store before any task ran "
                     f"({r['plain_files_per_task']:.2f} as plain JSON, one per document), "
                     f"{r['files_per_task']:.2f} with {r['done']:,} tasks done and checkpointed")
        out.append(t)
    return out


if __name__ == "__main__":  # python -m benchmarks.bench_scale [--sizes N ...]: these sizes alone, printed
    import argparse
    import sys

    from rich.console import Console

    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_scale", description=TITLE)
    parser.add_argument("--sizes", nargs="+", type=int, default=[1000, 10000], help="task counts (multiples of 10)")
    parser.add_argument("--json", metavar="FILE", help="also write the result here")
    args = parser.parse_args()
    result = run("full", lambda msg: print(msg, file=sys.stderr, flush=True), args.sizes)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    for table in tables(result):
        Console().print(table)
