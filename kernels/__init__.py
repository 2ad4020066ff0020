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

Modules are imported on demand (Numba compiles on first call, cached on disk).
"""
