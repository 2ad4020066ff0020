"""Adaptive LIF: the adaptation dynamics, the hand-written BPTT against finite differences, LIF as a special case."""
import numba
import numpy as np
import pytest

from snnbatch.kernels import alif, events, lif


def _data(n_in=8, T=40, B=3, O=3, rate=0.15, seed=0):
    rng = np.random.default_rng(seed)
    ev = events.from_dense((rng.random((B, T, n_in)) < rate).astype(float))
    return ev, rng.integers(0, O, B)


def _smooth_cfg(recurrent):
    # strong weights and a soft surrogate: every neuron's adaptation and reset matter to the loss
    return alif.ALIFConfig(
        n_inputs=8, n_hidden=6, n_outputs=3, recurrent=recurrent, smooth=True, detach_reset=False, dtype="float64",
        surrogate_scale=5.0, tau_adapt=20e-3, adapt_jump=0.5, weight_scale=30.0, n_blocks=2,
    )


def _numeric_grad(params, ev, labels, cfg, names=None, h=1e-6):
    out = {}
    for name in names or params:
        p = params[name]
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            q = {k: v.copy() for k, v in params.items()}
            q[name][idx] += h
            lp, _ = alif.loss_and_grad(q, ev, labels, cfg)
            q[name][idx] -= 2 * h
            lm, _ = alif.loss_and_grad(q, ev, labels, cfg)
            num[idx] = (lp - lm) / (2 * h)
        out[name] = num
    return out


@pytest.mark.parametrize("recurrent", [False, True])
def test_gradient_matches_finite_differences(recurrent):
    ev, labels = _data()
    cfg = _smooth_cfg(recurrent)
    params = alif.init_params(cfg, np.random.default_rng(1))
    _, grads = alif.loss_and_grad(params, ev, labels, cfg)
    numeric = _numeric_grad(params, ev, labels, cfg)
    assert set(grads) == set(params)
    for name in params:
        err = np.abs(grads[name] - numeric[name]).max() / np.abs(numeric[name]).max()
        assert err < 1e-7, (name, err)


def test_adaptation_gradient_path_is_needed():
    """Dropping dL/dA (a BPTT that ignores the threshold's memory) breaks the finite-difference match."""
    ev, labels = _data()
    cfg = _smooth_cfg(False)
    params = alif.init_params(cfg, np.random.default_rng(1))
    numeric = _numeric_grad(params, ev, labels, cfg, ["w_in"])["w_in"]
    # the adaptation is large here: the same weights without it give a clearly different gradient
    _, no_adapt = alif.loss_and_grad(params, ev, labels, cfg._replace(adapt_jump=0.0))
    assert np.abs(no_adapt["w_in"] - numeric).max() / np.abs(numeric).max() > 0.1
    _, full = alif.loss_and_grad(params, ev, labels, cfg)
    assert np.abs(full["w_in"] - numeric).max() / np.abs(numeric).max() < 1e-7


def test_adaptation_trace_and_threshold():
    """A[n+1] = ρ A[n] + S[n]; a spike needs U above ϑ + β_a A; adaptation lowers the firing rate."""
    n_in, T = 4, 200
    dense = np.zeros((1, T, n_in))
    dense[0, :, :] = 1.0  # every input unit at every step: a strong, constant drive
    ev = events.from_dense(dense)
    cfg = alif.ALIFConfig(n_inputs=n_in, n_hidden=3, n_outputs=2, adapt_jump=0.5, tau_adapt=50e-3, dtype="float64")
    params = {"w_in": np.full((n_in, 3), 0.02), "w_out": np.ones((3, 2))}
    tr = alif.forward(params, ev, cfg)
    S, U, A = tr.spikes[0], tr.voltages[0], tr.adaptation[0]
    assert np.array_equal(A[0], np.zeros(3))
    np.testing.assert_allclose(A[1:], cfg.rho * A[:-1] + S[:-1], rtol=0, atol=1e-12)
    assert np.array_equal(S, (U - cfg.threshold - cfg.adapt_jump * A > 0).astype(float))
    plain = alif.forward(params, ev, cfg._replace(adapt_jump=0.0))
    assert 0 < S.sum() < plain.spikes.sum()
    # inter-spike intervals grow as the threshold builds up
    isi = np.diff(np.flatnonzero(S[:, 0]))
    assert isi[-1] > isi[0] and np.all(np.diff(isi[:10]) >= 0)


@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_zero_jump_is_exactly_lif(recurrent, dtype):
    ev, labels = _data(n_in=10, T=60, B=5, rate=0.1)
    acfg = alif.ALIFConfig(n_inputs=10, n_hidden=7, n_outputs=3, recurrent=recurrent, adapt_jump=0.0, dtype=dtype,
                           weight_scale=20.0, n_blocks=4)
    lcfg = lif.LIFConfig(**{k: getattr(acfg, k) for k in lif.LIFConfig._fields})
    params = alif.init_params(acfg, np.random.default_rng(2))
    assert all(np.array_equal(params[k], v) for k, v in lif.init_params(lcfg, np.random.default_rng(2)).items())
    la, ga = alif.loss_and_grad(params, ev, labels, acfg)
    ll, gl = lif.loss_and_grad(params, ev, labels, lcfg)
    assert abs(la - ll) <= 1e-12 * abs(ll)
    for k in gl:
        assert ga[k].tobytes() == gl[k].tobytes(), k
    assert alif.forward(params, ev, acfg).spikes.sum() > 0


def test_same_bits_for_any_thread_count():
    ev, labels = _data(n_in=10, T=50, B=9, rate=0.1)
    cfg = alif.ALIFConfig(n_inputs=10, n_hidden=16, n_outputs=3, recurrent=True, weight_scale=20.0, n_blocks=4)
    params = alif.init_params(cfg, np.random.default_rng(3))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        l1, g1 = alif.loss_and_grad(params, ev, labels, cfg)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        l2, g2 = alif.loss_and_grad(params, ev, labels, cfg)
    finally:
        numba.set_num_threads(before)
    assert l1 == l2
    assert all(g1[k].tobytes() == g2[k].tobytes() for k in g1)


def test_training_lowers_the_loss():
    from snnbatch.kernels import optim, randman

    data = randman.make_dataset(randman.RandmanConfig(n_inputs=40, n_train=200, n_test=50, n_steps=50),
                                np.random.default_rng(0))
    cfg = alif.ALIFConfig(n_inputs=40, n_hidden=32, n_outputs=2, n_blocks=4)
    params = alif.init_params(cfg, np.random.default_rng(1))
    state = optim.adam_init(params)
    first = alif.evaluate(params, data.train_events, data.train_labels, cfg)["loss"]
    for _ in range(30):
        _, grads = alif.loss_and_grad(params, data.train_events, data.train_labels, cfg)
        optim.adam_step(params, grads, state, 5e-3)
    after = alif.evaluate(params, data.test_events, data.test_labels, cfg)
    assert after["loss"] < 0.5 * first
    assert after["accuracy"] > 0.8
