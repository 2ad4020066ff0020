"""Build a task's dataset from its config (generated from a seed or read from disk)."""
from __future__ import annotations

import numpy as np

from .config import RandmanData


def build(cfg):
    if isinstance(cfg, RandmanData):
        from ..kernels import randman

        rc = randman.RandmanConfig(**cfg.model_dump(exclude={"type", "seed"}))
        return randman.make_dataset(rc, np.random.default_rng(cfg.seed))
    raise TypeError(f"no dataset builder for {type(cfg).__name__}")  # pragma: no cover
