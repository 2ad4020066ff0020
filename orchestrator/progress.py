"""A live progress display that reads the store, whatever backend runs the tasks."""
from __future__ import annotations

import threading

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .store import RunStore


class Monitor:
    """``with Monitor(store, ids): ...`` shows iterations done over all tasks and the task states."""

    def __init__(self, store: RunStore, task_ids: list[str], enabled: bool = True, interval: float = 1.0):
        self.store = store
        self.ids = set(task_ids)
        self.enabled = enabled
        self.interval = interval
        self._stop = threading.Event()
        self._thread = None
        self.console = Console(stderr=True)

    def _poll(self, progress, bar):
        final = False
        while True:
            try:
                tasks = [t for t in self.store.tasks() if t["id"] in self.ids]
            except Exception:
                tasks = []
            done_it = total_it = 0
            counts: dict[str, int] = {}
            for t in tasks:
                st = t["status"]
                total = int(st.get("total") or 0)
                it = max(int(st.get("iteration") or 0), int(st.get("progress") or 0))
                total_it += total
                done_it += total if t["state"] == "done" else min(it, total)
                counts[t["state"]] = counts.get(t["state"], 0) + 1
            text = "  ".join(f"{k} {v}" for k, v in sorted(counts.items()))
            progress.update(bar, completed=done_it, total=max(total_it, 1), states=text)
            if final:
                return
            final = self._stop.wait(self.interval)

    def __enter__(self):
        if not self.enabled:
            return self
        self.progress = Progress(
            TextColumn("[bold]training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("iterations"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[states]}"),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        bar = self.progress.add_task("train", total=1, states="")
        self._thread = threading.Thread(target=self._poll, args=(self.progress, bar), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._stop.set()
            self._thread.join(timeout=10)
            self.progress.stop()
        return False
