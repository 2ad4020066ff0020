"""Thread counts for the numerical libraries, set from a task's allocation.

These variables are read once, when NumPy's BLAS or Numba first load, so they
must be set before any numerics are imported in the task's process: the
runner calls :func:`apply` first thing, and the Dask and SLURM backends set
them in the worker's environment as well.
"""
from __future__ import annotations

import os

VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def from_allocation(default: int = 1) -> int:
    """CPUs this process was given: SLURM_CPUS_PER_TASK, then HTCondor's request, then ``default``."""
    for var in ("SLURM_CPUS_PER_TASK", "SNNBATCH_CPUS", "_CONDOR_REQUEST_CPUS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return default


def environment(n: int) -> dict[str, str]:
    return {var: str(n) for var in VARIABLES}


def apply(n: int) -> None:
    """Give this process ``n`` threads in every numerical library, loaded or not.

    Before the libraries load, the variables decide. A BLAS already loaded (NumPy is
    imported by then in a driver or a ``run-task`` process) is limited through
    threadpoolctl: OpenBLAS splits a matrix product differently with each thread
    count, so its last bits, and a task's, would otherwise depend on where it ran.
    """
    import sys

    if "numba" in sys.modules:
        loaded = os.environ.get("NUMBA_NUM_THREADS")
        if loaded is not None and loaded != str(n):
            import numba

            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    else:
        os.environ.update(environment(n))
    if "numpy" in sys.modules:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=n)  # stays in force for the process: it is not used as a context
