"""One task's life on a compute node: build the trainer, train in steps, checkpoint, resume.

Never imports dask or submitit; imports Numba only inside the trainers, after
the thread settings of the task's allocation are in place. Importing this
package imports none of its modules: ``snnbatch.jobs.store`` (which reading a
run needs) never brings the registry, the config classes or a plugin with it.
The names below are imported when first used.
"""
from __future__ import annotations

import importlib

_EXPORTS = {"TaskConfig": "config", "task_id": "config", "run_task": "runner", "StopFlag": "runner",
            "Outcome": "runner"}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
