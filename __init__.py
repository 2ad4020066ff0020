"""snnbatch: train hundreds of spiking neural networks on a cluster and lose none of them.

The repository root is this package: ``snnbatch.kernels`` (numerics),
``snnbatch.jobs`` (one task on a compute node) and ``snnbatch.orchestrator``
(spec, planner, backends, CLI). Imports point one way:
orchestrator -> jobs -> kernels.
"""
__version__ = "0.1.0"


def open_run(path):
    """Open a run store for reading results: see :class:`snnbatch.orchestrator.results.Run`."""
    from .orchestrator.results import Run

    return Run(path)


__all__ = ["open_run", "__version__"]
