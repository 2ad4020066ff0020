"""Pure numerical kernels: neurons, learning rules, datasets, optimizers.

Nothing here does I/O, logging or argument validation inside compiled code,
and nothing touches global random state: every function that needs
randomness takes an ``np.random.Generator``. This package imports only
NumPy, Numba and its own modules, so it can be used without the rest of
snnbatch::

    import numpy as np
    from snnbatch.kernels import lif, randman

    data = randman.make_dataset(randman.RandmanConfig(), np.random.default_rng(0))
    cfg = lif.LIFConfig()
    params = lif.init_params(cfg, np.random.default_rng(1))
    loss, grads = lif.loss_and_grad(params, data.train_events, data.train_labels, cfg)

Modules are imported on demand; Numba compiles a function on its first call
and caches the machine code on disk.

**The cache is keyed by the sources of all of kernels/.** Numba checks a
cached function against its own source file only, but the machine code it
caches includes the compiled functions it calls from other modules: after a
change there, Numba would load the old code. Every compiled function here is
therefore declared with :func:`._jit.njit`, and importing ``_jit`` installs a
cache locator for the functions of kernels/: each is cached where Numba would
put it (below ``NUMBA_CACHE_DIR`` when that is set, else in ``__pycache__``
beside the sources, else in the user's cache directory), in a subdirectory
``snnbatch-<hash>`` named by a sha256 of every ``kernels/*.py`` file. A
change to any of them means new directories and a fresh compile, and
processes running different versions of kernels/ never read each other's
files, even in one shared ``NUMBA_CACHE_DIR``. The
directories of earlier versions are left behind and can be deleted at any
time. Setting ``NUMBA_CACHE_DIR`` from here instead would not work if Numba
was imported first, would move the cache of every other Numba user in the
process, and would have to yield to a user's own ``NUMBA_CACHE_DIR``, where
the stale cache would come back. (``NUMBA_CACHE_LOCATOR_CLASSES``, if set,
replaces Numba's locators and this one with them.)
"""
