"""The multi-layer BPTT kernel (deep.py): finite differences, one layer as lif.py / alif.py, threads, training.

The torch autograd reference of a deep network is in test_autograd.py.
"""
import numba
import numpy as np
import pytest

from snnbatch.kernels import alif, deep, events, lif


def _data(n_in=8, T=30, B=6, O=3, rate=0.15, seed=0):
    rng = np.random.default_rng(seed)
    dense = (rng.random((B, T, n_in)) < rate).astype(np.float64)
    return events.from_dense(dense), rng.integers(0, O, B)


def _smooth_cfg(adaptive, sizes, recurrent, readout):
    # a soft surrogate and strong weights: every neuron, its reset and the recurrence matter to the loss
    C = deep.DeepALIFConfig if adaptive else deep.DeepLIFConfig
    return C(n_inputs=8, n_hidden=sizes, n_outputs=3, recurrent=recurrent, smooth=True, detach_reset=False,
             dtype="float64", surrogate_scale=5.0, weight_scale=30.0, n_blocks=2, readout=readout)


CASES = [  # (adaptive, sizes, recurrent, readout)
    (False, (6, 5), (True, False), "max"),
    (False, (6, 5), (False, True), "mean"),
    (False, (6, 5), (True, True), "last"),
    (False, (6, 5), (True, False), "per_step"),
    (False, (6, 5), (False, True), "count"),
    (False, (6, 5), (True, True), "mse"),
    (False, (6, 5, 4), (True, False, True), "per_step"),
    (True, (6, 5), (True, False), "max"),
    (True, (6, 5), (False, True), "count"),
    (True, (6, 5, 4), (False, True, True), "mean"),
]


@pytest.mark.parametrize("adaptive, sizes, recurrent, readout", CASES,
                         ids=[f"{'alif' if a else 'lif'}-{len(s)}-{''.join('r' if x else 'f' for x in r)}-{o}"
                              for a, s, r, o in CASES])
def test_gradient_matches_central_finite_differences(adaptive, sizes, recurrent, readout):
    """Along a random direction per matrix, by the fourth-order central difference (its truncation error
    is below 1e-9 at h = 1e-6 here; the second-order one's is near 1e-6 for these strong weights)."""
    ev, labels = _data()
    cfg = _smooth_cfg(adaptive, sizes, recurrent, readout)
    if readout == "mse":
        labels = np.random.default_rng(5).normal(size=(6, 30, 3))
    params = deep.init_params(cfg, np.random.default_rng(1))
    _, grads = deep.loss_and_grad(params, ev, labels, cfg)
    assert list(grads) == list(params) == list(deep.param_names(cfg))
    rng = np.random.default_rng(2)
    h = 1e-6

    def loss_at(name, v, t):
        q = {k: x.copy() for k, x in params.items()}
        q[name] += t * v
        return deep.evaluate(q, ev, labels, cfg)["loss"]

    for name, p in params.items():
        v = rng.normal(size=p.shape)
        numeric = (8 * (loss_at(name, v, h) - loss_at(name, v, -h))
                   - (loss_at(name, v, 2 * h) - loss_at(name, v, -2 * h))) / (12 * h)
        analytic = float((grads[name] * v).sum())
        assert abs(analytic) > 1e-4, name
        err = abs(analytic - numeric) / abs(analytic)
        assert err < 1e-6, (name, analytic, numeric, err)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("adaptive", [False, True], ids=["lif", "alif"])
@pytest.mark.parametrize("recurrent", [False, True], ids=["ff", "rec"])
@pytest.mark.parametrize("readout", ["max", "per_step"])
def test_one_layer_gives_the_bits_of_the_one_layer_kernels(dtype, adaptive, recurrent, readout):
    ev, labels = _data(n_in=20, T=60, B=24)
    mod, C, D = (alif, alif.ALIFConfig, deep.DeepALIFConfig) if adaptive else (lif, lif.LIFConfig, deep.DeepLIFConfig)
    cfg = C(n_inputs=20, n_hidden=24, n_outputs=3, recurrent=recurrent, dtype=dtype, weight_scale=20.0, n_blocks=3,
            readout=readout)
    dcfg = D(**{**cfg._asdict(), "n_hidden": (24,), "recurrent": (recurrent,)})
    params = mod.init_params(cfg, np.random.default_rng(3))
    loss, acc, grads = mod.loss_acc_grad(params, ev, labels, cfg)
    d_loss, d_acc, d_grads = deep.loss_acc_grad(params, ev, labels, dcfg)
    assert (loss, acc) == (d_loss, d_acc)
    assert sorted(grads) == sorted(d_grads)
    assert all(grads[k].tobytes() == d_grads[k].tobytes() for k in grads)
    assert deep.evaluate(params, ev, labels, dcfg) == mod.evaluate(params, ev, labels, cfg)


@pytest.mark.parametrize("cutoff", [0.0, 0.01], ids=["exact", "sparse"])
@pytest.mark.parametrize("adaptive", [False, True], ids=["lif", "alif"])
def test_same_bits_for_one_and_two_threads(adaptive, cutoff):
    ev, labels = _data(n_in=10, T=50, B=9, rate=0.1)
    C = deep.DeepALIFConfig if adaptive else deep.DeepLIFConfig
    cfg = C(n_inputs=10, n_hidden=(16, 12), n_outputs=3, recurrent=(True, True), weight_scale=20.0, n_blocks=4,
            surrogate_cutoff=cutoff)
    params = deep.init_params(cfg, np.random.default_rng(3))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        l1, g1 = deep.loss_and_grad(params, ev, labels, cfg)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        l2, g2 = deep.loss_and_grad(params, ev, labels, cfg)
    finally:
        numba.set_num_threads(before)
    assert numba.config.NUMBA_NUM_THREADS >= 2
    assert l1 == l2
    assert all(g1[k].tobytes() == g2[k].tobytes() for k in g1)
    assert all(np.abs(g).max() > 0 for g in g1.values())  # every layer is reached


def test_training_lowers_the_loss_of_two_layers():
    from snnbatch.kernels import optim, randman

    data = randman.make_dataset(randman.RandmanConfig(n_inputs=40, n_train=200, n_test=50, n_steps=50),
                                np.random.default_rng(0))
    cfg = deep.DeepLIFConfig(n_inputs=40, n_hidden=(32, 32), n_outputs=2, recurrent=(False, True),
                             recurrent_weight_scale=0.5, n_blocks=4)
    params = deep.init_params(cfg, np.random.default_rng(1))
    state = optim.adam_init(params)
    first = deep.evaluate(params, data.train_events, data.train_labels, cfg)["loss"]
    for _ in range(30):
        _, g = deep.loss_and_grad(params, data.train_events, data.train_labels, cfg)
        optim.adam_step(params, g, state, 2e-3)
    last = deep.evaluate(params, data.train_events, data.train_labels, cfg)
    assert last["loss"] < 0.8 * first
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in params.values())


def test_a_mismatched_config_is_refused():
    ev, labels = _data()
    cfg = deep.DeepLIFConfig(n_inputs=8, n_hidden=(6, 5), n_outputs=3, recurrent=(True,))
    with pytest.raises(ValueError, match="n_hidden has 2 layers, recurrent 1"):
        deep.loss_and_grad({}, ev, labels, cfg)


# --------------------------------------------------------------------------- the sparse backward (surrogate_cutoff)


SPARSE_CASES = [  # (adaptive, sizes, recurrent)
    (False, (20, 16), (True, False)),
    (False, (20, 16, 12), (False, True, True)),
    (True, (20, 16), (False, True)),
    (True, (20, 16, 12), (True, False, True)),
]
SPARSE_IDS = [f"{'alif' if a else 'lif'}-{len(s)}-{''.join('r' if x else 'f' for x in r)}" for a, s, r in SPARSE_CASES]


def _sparse_setup(adaptive, sizes, recurrent, **kw):
    ev, labels = _data(n_in=10, T=50, B=20, rate=0.2)
    C = deep.DeepALIFConfig if adaptive else deep.DeepLIFConfig
    cfg = C(n_inputs=10, n_hidden=sizes, n_outputs=3, recurrent=recurrent, dtype="float64", weight_scale=20.0,
            n_blocks=2, **kw)
    return ev, labels, cfg, deep.init_params(cfg, np.random.default_rng(2))


@pytest.mark.parametrize("adaptive, sizes, recurrent", SPARSE_CASES, ids=SPARSE_IDS)
def test_surrogate_cutoff_zero_is_exact_and_tiny_cutoff_changes_only_rounding(adaptive, sizes, recurrent):
    ev, labels, cfg, params = _sparse_setup(adaptive, sizes, recurrent)
    _, exact = deep.loss_and_grad(params, ev, labels, cfg)
    _, zero = deep.loss_and_grad(params, ev, labels, cfg._replace(surrogate_cutoff=0.0))
    assert all(zero[k].tobytes() == exact[k].tobytes() for k in exact)
    # below every surrogate derivative: the sparse path computes the same gradient (its sums in another order)
    loss, tiny = deep.loss_and_grad(params, ev, labels, cfg._replace(surrogate_cutoff=1e-300))
    assert loss == deep.loss_and_grad(params, ev, labels, cfg)[0]  # the forward pass is untouched
    for k in exact:
        assert np.abs(exact[k]).max() > 0, k
        np.testing.assert_allclose(tiny[k], exact[k], rtol=0, atol=1e-12 * np.abs(exact[k]).max(), err_msg=k)


@pytest.mark.parametrize("adaptive, sizes, recurrent", SPARSE_CASES, ids=SPARSE_IDS)
def test_surrogate_cutoff_of_one_stops_every_path_through_the_hidden_layers(adaptive, sizes, recurrent):
    ev, labels, cfg, params = _sparse_setup(adaptive, sizes, recurrent)
    _, exact = deep.loss_and_grad(params, ev, labels, cfg)
    # σ' ≤ 1, equal to 1 only exactly at threshold: no dL/dS of any layer is kept
    _, none = deep.loss_and_grad(params, ev, labels, cfg._replace(surrogate_cutoff=1.0))
    np.testing.assert_array_equal(none["w_out"], exact["w_out"])
    assert np.abs(exact["w_out"]).max() > 0
    for k in deep.param_names(cfg)[:-1]:
        assert not none[k].any(), k


@pytest.mark.parametrize("adaptive, sizes, recurrent", SPARSE_CASES, ids=SPARSE_IDS)
def test_a_moderate_cutoff_keeps_part_of_the_gradient_of_every_layer(adaptive, sizes, recurrent):
    ev, labels, cfg, params = _sparse_setup(adaptive, sizes, recurrent, surrogate_scale=20.0)
    _, exact = deep.loss_and_grad(params, ev, labels, cfg)
    _, some = deep.loss_and_grad(params, ev, labels, cfg._replace(surrogate_cutoff=0.05))
    np.testing.assert_array_equal(some["w_out"], exact["w_out"])
    for k in deep.param_names(cfg)[:-1]:
        g, e = some[k].ravel(), exact[k].ravel()
        cos = g @ e / np.sqrt((g @ g) * (e @ e))
        assert 0.3 < cos < 1.0 - 1e-9, (k, cos)


@pytest.mark.parametrize("adaptive", [False, True], ids=["lif", "alif"])
@pytest.mark.parametrize("recurrent", [False, True], ids=["ff", "rec"])
@pytest.mark.parametrize("regularise", [False, True], ids=["plain", "activity"])
def test_one_layer_with_a_cutoff_gives_the_bits_of_the_one_layer_kernels(adaptive, recurrent, regularise):
    ev, labels = _data(n_in=20, T=60, B=24)
    mod, C, D = (alif, alif.ALIFConfig, deep.DeepALIFConfig) if adaptive else (lif, lif.LIFConfig, deep.DeepLIFConfig)
    penalty = dict(activity_upper=2.5, activity_upper_strength=0.1, activity_lower=0.5,
                   activity_lower_strength=0.2) if regularise else {}
    cfg = C(n_inputs=20, n_hidden=24, n_outputs=3, recurrent=recurrent, weight_scale=20.0, n_blocks=3,
            surrogate_cutoff=0.01, **penalty)
    dcfg = D(**{**cfg._asdict(), "n_hidden": (24,), "recurrent": (recurrent,)})
    params = mod.init_params(cfg, np.random.default_rng(3))
    loss, acc, grads = mod.loss_acc_grad(params, ev, labels, cfg)
    d_loss, d_acc, d_grads = deep.loss_acc_grad(params, ev, labels, dcfg)
    _, exact = mod.loss_and_grad(params, ev, labels, cfg._replace(surrogate_cutoff=0.0))
    assert not np.array_equal(grads["w_in"], exact["w_in"])  # the cut-off drops something
    assert (loss, acc) == (d_loss, d_acc)
    assert all(grads[k].tobytes() == d_grads[k].tobytes() for k in grads)


# --------------------------------------------------------------------------- the activity penalty, every hidden layer


ACTIVITY_CASES = [  # (adaptive, sizes, recurrent)
    (False, (6, 5), (True, False)),
    (False, (6, 5, 4), (False, True, True)),
    (True, (6, 5), (False, True)),
    (True, (6, 5, 4), (True, False, True)),
]


@pytest.mark.parametrize("adaptive, sizes, recurrent", ACTIVITY_CASES,
                         ids=[f"{'alif' if a else 'lif'}-{len(s)}-{''.join('r' if x else 'f' for x in r)}"
                              for a, s, r in ACTIVITY_CASES])
def test_activity_penalty_of_every_layer_matches_central_finite_differences(adaptive, sizes, recurrent):
    ev, labels = _data()
    cfg = _smooth_cfg(adaptive, sizes, recurrent, "max")
    params = deep.init_params(cfg, np.random.default_rng(1))
    # counts (smooth: sums of spike values, negative below threshold) on either side of the bounds
    cfg = cfg._replace(activity_upper=0.5, activity_upper_strength=0.5, activity_lower=-2.0,
                       activity_lower_strength=0.3)
    readout_loss = deep.evaluate(params, ev, labels, cfg)["loss"]
    loss, grads = deep.loss_and_grad(params, ev, labels, cfg)
    _, plain = deep.loss_and_grad(params, ev, labels, cfg._replace(activity_upper_strength=0.0,
                                                                   activity_lower_strength=0.0))
    upper = deep.loss_and_grad(params, ev, labels, cfg._replace(activity_lower_strength=0.0))[0]
    lower = deep.loss_and_grad(params, ev, labels, cfg._replace(activity_upper_strength=0.0))[0]
    assert upper > readout_loss + 0.1 and lower > readout_loss + 0.1  # both bounds active
    assert loss == pytest.approx(upper + lower - readout_loss, rel=1e-12)
    rng = np.random.default_rng(2)
    h = 1e-6

    def loss_at(name, v, t):
        q = {k: x.copy() for k, x in params.items()}
        q[name] += t * v
        return deep.loss_and_grad(q, ev, labels, cfg)[0]  # the training loss: readout and penalty

    for name, p in params.items():
        if name != "w_out":  # every layer's counts depend on its own and lower layers' weights
            assert np.abs(grads[name] - plain[name]).max() > 1e-2 * np.abs(grads[name]).max(), name
        v = rng.normal(size=p.shape)
        numeric = (8 * (loss_at(name, v, h) - loss_at(name, v, -h))
                   - (loss_at(name, v, 2 * h) - loss_at(name, v, -2 * h))) / (12 * h)
        analytic = float((grads[name] * v).sum())
        assert abs(analytic) > 1e-4, name
        err = abs(analytic - numeric) / abs(analytic)
        assert err < 1e-6, (name, analytic, numeric, err)


@pytest.mark.parametrize("adaptive", [False, True], ids=["lif", "alif"])
def test_activity_penalty_of_one_layer_gives_the_bits_of_the_one_layer_kernels(adaptive):
    ev, labels = _data(n_in=20, T=60, B=24)
    mod, C, D = (alif, alif.ALIFConfig, deep.DeepALIFConfig) if adaptive else (lif, lif.LIFConfig, deep.DeepLIFConfig)
    cfg = C(n_inputs=20, n_hidden=24, n_outputs=3, recurrent=True, weight_scale=20.0, n_blocks=3,
            activity_upper=2.5, activity_upper_strength=0.1, activity_lower=0.5, activity_lower_strength=0.2)
    dcfg = D(**{**cfg._asdict(), "n_hidden": (24,), "recurrent": (True,)})
    params = mod.init_params(cfg, np.random.default_rng(3))
    loss, acc, grads = mod.loss_acc_grad(params, ev, labels, cfg)
    d_loss, d_acc, d_grads = deep.loss_acc_grad(params, ev, labels, dcfg)
    assert loss > mod.evaluate(params, ev, labels, cfg)["loss"] + 1.0
    assert (loss, acc) == (d_loss, d_acc)
    assert all(grads[k].tobytes() == d_grads[k].tobytes() for k in grads)
