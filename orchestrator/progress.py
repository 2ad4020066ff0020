"""A live progress display that reads the store, whatever backend runs the tasks.

The total is every planned task's iterations from the start: a task that has
not started yet counts with the length its config gives (``training.iterations``,
or ``epochs`` × the iterations per epoch of a task of the same data that has
started, or of ``n_train`` / ``batch_size`` for a dataset that declares
``n_train``). On a terminal it is a bar with the rate, the time left and the
task counts; otherwise (a pipe, a log file, a batch job) or with ``--no-progress``
it is a plain line every ``line_interval`` seconds, and one at the end.
"""
from __future__ import annotations

import json
import threading
import time

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

from .store import RunStore


def planned_total(config: dict, started: dict[str, int]) -> int | None:
    """The iterations a task will train: from its config, or from a started task with the same data."""
    training = config.get("training", {})
    if training.get("iterations"):
        return int(training["iterations"])
    epochs = int(training.get("epochs") or 1)
    key = _data_key(config)
    if key in started:
        return epochs * started[key]
    n_train = config.get("dataset", {}).get("n_train")
    if isinstance(n_train, int) and n_train > 0:
        return epochs * max(1, n_train // max(1, min(int(training.get("batch_size") or 1), n_train)))
    return None


def _data_key(config: dict) -> str:
    return json.dumps([config.get("dataset"), config.get("training", {}).get("batch_size")], sort_keys=True)


def _length_sections(config: dict) -> dict:
    """What :class:`Counts` reads of a config: its ``training`` and ``dataset`` sections."""
    return {k: config[k] for k in ("training", "dataset") if k in config}


class Counts:
    """Iterations done and planned, and the tasks by state, of ``ids`` in a store."""

    def __init__(self, tasks: list[dict]):
        started: dict[str, int] = {}
        for t in tasks:  # a started task tells the iterations per epoch of its data
            st, cfg = t["status"], t.get("config") or {}
            total, epochs = st.get("total"), (cfg.get("training") or {}).get("epochs")
            if total and epochs and not (cfg.get("training") or {}).get("iterations"):
                started.setdefault(_data_key(cfg), max(1, int(total) // int(epochs)))
        self.done = self.total = 0
        self.unknown = 0
        self.states: dict[str, int] = {}
        for t in tasks:
            st = t["status"]
            total = st.get("total") or planned_total(t.get("config") or {}, started)
            it = max(int(st.get("iteration") or 0), int(st.get("progress") or 0))
            if total is None:
                self.unknown += 1
                total = it
            total = int(total)
            self.total += total
            self.done += total if t["state"] == "done" else min(it, total)
            self.states[t["state"]] = self.states.get(t["state"], 0) + 1

    def text(self) -> str:
        order = ("done", "failed", "running", "interrupted", "queued", "pending")
        parts = [f"{self.states[s]} {s}" for s in order if self.states.get(s)]
        parts += [f"{n} {s}" for s, n in sorted(self.states.items()) if s not in order]
        return ", ".join(parts)


class Monitor:
    """``with Monitor(store, ids): ...`` shows iterations done over all tasks and the task states."""

    def __init__(self, store: RunStore, task_ids: list[str], enabled: bool = True, interval: float = 1.0,
                 line_interval: float = 30.0, console: Console | None = None):
        self.store = store
        self.ids = set(task_ids)
        self.console = console or Console(stderr=True)
        self.bar = enabled and self.console.is_terminal
        self.interval = interval if self.bar else line_interval
        self._stop = threading.Event()
        self._thread = None
        self._start = time.monotonic()
        self._lengths: dict[str, dict] | None = None  # each task's config, the sections that say its length

    def counts(self) -> Counts:
        try:
            # the tasks' configs (a task's length) read once, not at every refresh (2 s for 100,000 tasks)
            tasks = [t for t in self.store.tasks(configs=self._lengths is None) if t["id"] in self.ids]
            if self._lengths is None:
                self._lengths = {t["id"]: _length_sections(t.get("config") or {}) for t in tasks}
            for t in tasks:
                t["config"] = self._lengths.get(t["id"], {})
            return Counts(tasks)
        except Exception:  # a store being written: the next poll reads it
            return Counts([])

    def line(self, counts: Counts) -> str:
        elapsed = time.monotonic() - self._start
        share = f" ({100 * counts.done / counts.total:.0f} %)" if counts.total else ""
        rate = counts.done / elapsed if elapsed > 0 else 0.0
        eta = f", {_duration((counts.total - counts.done) / rate)} left" if rate > 0 and counts.done < counts.total else ""
        return (f"training: {counts.done}/{counts.total} iterations{share}, {rate:.1f} it/s{eta}, "
                f"{_duration(elapsed)} elapsed; {counts.text()}")

    def _poll(self, progress=None, bar=None):
        final = False
        while True:
            counts = self.counts()
            if progress is not None:
                progress.update(bar, completed=counts.done, total=max(counts.total, 1), states=counts.text())
            else:
                self.console.print(self.line(counts), highlight=False, markup=False, soft_wrap=True)
            if final:
                return
            final = self._stop.wait(self.interval)

    def __enter__(self):
        self._start = time.monotonic()
        if self.bar:
            self.progress = Progress(
                TextColumn("[bold]training"), BarColumn(), MofNCompleteColumn(), TextColumn("iterations"),
                TaskProgressColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[states]}"),
                console=self.console, transient=False,
            )
            self.progress.start()
            bar = self.progress.add_task("train", total=1, states="")
            self._thread = threading.Thread(target=self._poll, args=(self.progress, bar), daemon=True)
        else:
            self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)
        if self.bar:
            self.progress.stop()
        return False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"
