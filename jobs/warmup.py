"""Compile a sweep's kernels once, before its tasks fan out.

Numba caches compiled kernels on disk (``cache=True``; in ``NUMBA_CACHE_DIR``
when set, else beside the installed sources or in the user's cache
directory). Hundreds of tasks starting on a cold cache would each compile
the same kernels; :func:`warm` runs one training step of a task's trainer,
which compiles and caches everything that task kind needs, so the tasks
that follow load the compiled code instead.
"""
from __future__ import annotations

import time

from .config import TaskConfig


def signature(config: TaskConfig) -> tuple:
    """Tasks with the same signature share their compiled kernels."""
    model = config.model.model_dump()
    layers = model.get("n_hidden")
    recurrent = model.get("recurrent")
    return (model.get("type"), config.learning.rule, model.get("dtype"),
            tuple(recurrent) if isinstance(recurrent, list) else recurrent,
            len(layers) if isinstance(layers, list) else 1, getattr(config.learning, "feedback", None))


def distinct(configs: list[TaskConfig]) -> list[TaskConfig]:
    seen: dict[tuple, TaskConfig] = {}
    for c in configs:
        seen.setdefault(signature(c), c)
    return list(seen.values())


def warm(config: dict | TaskConfig, plugins: list[dict] = ()) -> float:
    """Build the trainer for ``config``, run one step and one evaluation; returns the seconds it took.

    ``plugins``: the run store's plugin record, loaded first (on a worker that has not loaded them).
    """
    from . import plugins as plugin_code
    from .trainer import build_trainer, initial_state

    plugin_code.load_recorded(list(plugins))
    cfg = config if isinstance(config, TaskConfig) else TaskConfig.model_validate(config)
    t0 = time.perf_counter()
    trainer = build_trainer(cfg)
    state = initial_state(trainer)
    trainer.step(state)
    trainer.evaluate(state)
    return time.perf_counter() - t0
