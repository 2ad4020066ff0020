"""Run tasks one after another in this process: for debugging, and the reference for the others."""
from __future__ import annotations

import signal

from ...jobs.runner import StopFlag, install_signal_handlers, run_task
from ..progress import Monitor
from .base import Backend, SubmitResult


class InlineBackend(Backend):
    name = "inline"

    def submit(self, store, task_ids):
        outcomes = {}
        stop = StopFlag()
        previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        install_signal_handlers(stop, {signal.SIGINT: "interrupt", signal.SIGTERM: "sigterm"})
        try:
            with Monitor(store, task_ids, enabled=self.options.progress):
                for tid in task_ids:
                    if stop:
                        break
                    outcomes[tid] = run_task(store.path, tid, stop=stop, backend="inline").state
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
        if stop:
            raise KeyboardInterrupt
        return SubmitResult(waited=True, outcomes=outcomes)
