"""status --watch: the compact live view (a line per state, the slowest and fastest running tasks) of a
1,000-task store whose status records are written as the runner writes them (no training runs)."""
from __future__ import annotations

import re
import time

from click.testing import CliRunner

from snnbatch.jobs.store import TaskStore
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.cli import main
from snnbatch.orchestrator.cli.status import task_rows
from snnbatch.orchestrator.progress import Counts
from snnbatch.orchestrator.results import format_duration
from snnbatch.orchestrator.store import RunStore
from snnbatch.orchestrator.watch import compact

SPEC = "name: thousand\nsweep:\n  grid: {lr: [1.0e-3, 2.0e-3, 4.0e-3, 8.0e-3]}\n  seeds: 250\n"


def test_compact_view_of_1000_tasks(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    spec = spec_mod.load(tmp_path / "spec.yaml")
    tasks = planner.plan(spec)
    store, _ = RunStore.create_or_update(tmp_path / "store", spec, SPEC, tasks)
    assert len(tasks) == 1000
    now = time.time()
    # 10 running (their leases held by this live process) for 100 s at 1..10 it/s (task i: i + 1 it/s),
    # 600 done, 5 failed, the rest pending
    leases = []
    for i, t in enumerate(tasks[:10]):
        leases.append(TaskStore(store.path, t.id).acquire_lease()[0])
        TaskStore(store.path, t.id).update_status(state="running", iteration=100 * (i + 1), total=2000,
                                                 attempts=[{"n": 1, "started": now - 100, "host": "h"}])
    for t in tasks[10:610]:
        TaskStore(store.path, t.id).update_status(
            state="done", iteration=2000, total=2000, attempts=[{"n": 1, "started": now - 900, "ended": now - 800}])
    for t in tasks[610:615]:
        TaskStore(store.path, t.id).update_status(state="failed", iteration=3, total=2000, error="boom",
                                                 attempts=[{"n": 1, "started": now - 900, "ended": now - 899}])
    read = store.tasks()
    rows = task_rows(store, read)
    text = compact(store.name, str(store.path), rows, Counts(read), now=now).plain
    for lease in leases:
        lease.release()
    lines = text.splitlines()
    assert lines[0].startswith(f"thousand ({store.path}): 1000 tasks, ")
    done = 600 * 2000 + 5 * 3 + sum(100 * (i + 1) for i in range(10))
    assert f"{done}/{1000 * 2000} iterations" in lines[0]  # the pending tasks' planned iterations too
    counts = {m.group(2): int(m.group(1)) for m in (re.match(r"\s+(\d+) (\w+)", ln) for ln in lines[1:5]) if m}
    assert counts == {"running": 10, "pending": 385, "done": 600, "failed": 5}
    rates = {r["id"]: r["iteration"] / r["elapsed_s"] for r in rows if r["state"] == "running"}
    assert 100 <= rows[0]["elapsed_s"] < 160 and f"{sum(rates.values()):.3g} it/s in all" in lines[1]  # about 55
    tail = lines[5:]
    assert len(tail) == 6 and tail[0].split()[0] == "slowest" and tail[3].split()[0] == "fastest"
    slow_ids, fast_ids = ([re.search(r"\b[0-9a-f]{8}\b", ln).group() for ln in part] for part in (tail[:3], tail[3:]))
    assert slow_ids == [t.id[:8] for t in tasks[:3]]  # 1, 2, 3 it/s
    assert fast_ids == [t.id[:8] for t in tasks[9:6:-1]]  # 10, 9, 8 it/s
    # the slowest: 100/2000 at about 1 it/s, about 1900 s left; the fastest: 1000/2000 at about 10 it/s
    slow, fast = rates[tasks[0].id], rates[tasks[9].id]
    assert f"100/2000  {slow:.3g} it/s  ETA {format_duration(1900 / slow)}  lr={tasks[0].params['lr']:.3g}" in tail[0]
    assert f"1000/2000  {fast:.3g} it/s  ETA {format_duration(1000 / fast)}  lr={tasks[9].params['lr']:.3g}" in tail[3]
    assert len(lines) == 11  # compact: not a line per task


def test_watch_prints_the_compact_view_and_the_table_on_request(tmp_path):
    (tmp_path / "spec.yaml").write_text("name: ended\nsweep: {seeds: 3}\n")
    spec = spec_mod.load(tmp_path / "spec.yaml")
    tasks = planner.plan(spec)
    store, _ = RunStore.create_or_update(tmp_path / "store", spec, "", tasks)
    now = time.time()
    for t in tasks:
        TaskStore(store.path, t.id).update_status(state="done", iteration=10, total=10, loss=0.5,
                                                 attempts=[{"n": 1, "started": now - 9, "ended": now}])
    result = CliRunner().invoke(main, ["status", str(store.path), "--watch", "--interval", "0.2"])
    assert result.exit_code == 0, result.output
    words = " ".join(result.output.split())  # wrapped at the console's width
    assert "3 tasks, 30/30 iterations (100 %)" in words and "3 done" in words
    assert tasks[0].id[:8] not in result.output  # no table
    result = CliRunner().invoke(main, ["status", str(store.path), "--watch", "--view", "table"])
    assert result.exit_code == 0 and all(t.id[:8] in result.output for t in tasks)
