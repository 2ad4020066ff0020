"""Where tasks run. One small module per backend; all share :class:`base.Backend`.

``inline`` runs tasks one after another in the driver's process (debugging);
``local`` (the default) runs them on a Dask ``LocalCluster``; ``dask`` on an
existing Dask scheduler; ``slurm`` as job arrays through submitit;
``htcondor`` as one cluster of jobs through HTCondor's Python bindings.
"""
from __future__ import annotations

import importlib

BACKENDS = {
    "inline": "snnbatch.orchestrator.backends.inline:InlineBackend",
    "local": "snnbatch.orchestrator.backends.dask:LocalBackend",
    "dask": "snnbatch.orchestrator.backends.dask:DaskBackend",
    "slurm": "snnbatch.orchestrator.backends.slurm:SlurmBackend",
    "htcondor": "snnbatch.orchestrator.backends.htcondor:HTCondorBackend",
}


def get(name: str):
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)
