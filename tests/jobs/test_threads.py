"""A task's thread count holds for the BLAS even when NumPy loaded first (a driver, ``run-task``)."""
import subprocess
import sys
import textwrap

PRODUCT = """
import hashlib, numpy as np
rng = np.random.default_rng(0)
a, b = rng.normal(size=(30, 4000)), rng.normal(size=(4000, 48))
print(hashlib.sha256((a @ b).tobytes()).hexdigest())
"""


def run(code: str, **env) -> str:
    import os

    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         env={**os.environ, **env}, check=True)
    return out.stdout.strip().splitlines()[-1]


def test_apply_limits_a_blas_that_numpy_already_loaded():
    # numpy (and its BLAS, with one thread per core) loads before the task's allocation is applied
    late = run("import numpy\nfrom snnbatch.jobs import threads\nthreads.apply(1)\n"
               "from threadpoolctl import threadpool_info\n"
               "print(sorted({p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'}))")
    assert late == "[1]"


def test_the_product_bits_do_not_depend_on_when_the_limit_was_set():
    # set before numpy loads (a Dask worker's or SLURM task's environment) or after (inline): the same bits
    early = run(PRODUCT, OPENBLAS_NUM_THREADS="1")
    late = run("import numpy\nfrom snnbatch.jobs import threads\nthreads.apply(1)\n" + PRODUCT,
               OPENBLAS_NUM_THREADS="")
    assert early == late
