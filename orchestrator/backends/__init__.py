"""Where tasks run. One small module per backend; each a subclass of :class:`base.Backend`.

``inline`` runs tasks one after another in the driver's process (debugging);
``local`` (the default) runs them on a Dask ``LocalCluster``; ``dask`` on an
existing Dask scheduler; ``slurm`` as job arrays through submitit;
``htcondor`` as one cluster of jobs through HTCondor's Python bindings.

:data:`BACKENDS` is the one table of them: the CLI offers its names and gets
a backend by name with :func:`get`; each is imported only when it is used.
"""
from __future__ import annotations

import importlib

from ...jobs.errors import UserError
from .base import Backend

BACKENDS = {
    "inline": "snnbatch.orchestrator.backends.inline:InlineBackend",
    "local": "snnbatch.orchestrator.backends.dask:LocalBackend",
    "dask": "snnbatch.orchestrator.backends.dask:DaskBackend",
    "slurm": "snnbatch.orchestrator.backends.slurm:SlurmBackend",
    "htcondor": "snnbatch.orchestrator.backends.htcondor:HTCondorBackend",
}
DEFAULT = "local"


def get(name: str):
    """The backend class called ``name``; a :class:`UserError` listing the backends for any other name."""
    try:
        module, cls = BACKENDS[name].split(":")
    except KeyError:
        raise UserError(f"unknown backend {name!r}; choose from: {', '.join(BACKENDS)}") from None
    return getattr(importlib.import_module(module), cls)


def having(hook: str) -> list[str]:
    """The names of the backends that implement ``hook`` themselves (not the base class's default)."""
    return [name for name in BACKENDS if getattr(get(name), hook) is not getattr(Backend, hook)]


Backend.having = staticmethod(having)
