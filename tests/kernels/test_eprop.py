"""E-prop: exact without recurrent weights, an approximation with them, memory independent of T."""
import tracemalloc

import numba
import numpy as np
import pytest

from snnbatch.kernels import alif, eprop, events, lif, randman


def _data(n_in=8, T=40, B=3, O=3, rate=0.15, seed=0):
    rng = np.random.default_rng(seed)
    ev = events.from_dense((rng.random((B, T, n_in)) < rate).astype(float))
    return ev, rng.integers(0, O, B)


def _cfg(kind, **kw):
    base = dict(n_inputs=8, n_hidden=6, n_outputs=3, dtype="float64", weight_scale=30.0, n_blocks=2)
    base.update(kw)
    if kind == "alif":
        return alif.ALIFConfig(tau_adapt=20e-3, adapt_jump=0.5, **base)
    return lif.LIFConfig(**base)


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.mark.parametrize("kind", ["lif", "alif"])
@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("smooth", [True, False])
def test_equals_bptt_without_recurrent_weights(kind, detach_reset, smooth):
    """The forward-in-time gradient is the BPTT gradient of the same per-step loss, to rounding."""
    ev, labels = _data()
    cfg = _cfg(kind, smooth=smooth, detach_reset=detach_reset, surrogate_scale=5.0 if smooth else 100.0)
    params = eprop.init_params(cfg, np.random.default_rng(1))
    loss, grads = eprop.loss_and_grad(params, ev, labels, cfg)
    ref_loss, ref = eprop.bptt_loss_and_grad(params, ev, labels, cfg)
    assert loss == ref_loss
    assert set(grads) == set(ref) == {"w_in", "w_out"}
    for name in ref:
        assert np.abs(ref[name]).max() > 1e-6  # a gradient worth comparing
        assert _rel(grads[name], ref[name]) < 1e-10, name


@pytest.mark.parametrize("kind,recurrent", [("lif", False), ("alif", True)])
def test_bptt_reference_matches_finite_differences(kind, recurrent):
    ev, labels = _data()
    cfg = _cfg(kind, smooth=True, detach_reset=False, surrogate_scale=5.0, recurrent=recurrent)
    params = eprop.init_params(cfg, np.random.default_rng(1))
    _, grads = eprop.bptt_loss_and_grad(params, ev, labels, cfg)
    h = 1e-6
    for name, p in params.items():
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            q = {k: v.copy() for k, v in params.items()}
            q[name][idx] += h
            lp = eprop.evaluate(q, ev, labels, cfg)["loss"]
            q[name][idx] -= 2 * h
            lm = eprop.evaluate(q, ev, labels, cfg)["loss"]
            num[idx] = (lp - lm) / (2 * h)
        assert _rel(grads[name], num) < 1e-7, name


@pytest.mark.parametrize("kind", ["lif", "alif"])
@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("smooth", [False, True])
def test_runs_the_same_network_as_the_bptt_kernels(kind, recurrent, dtype, smooth):
    """Bit for bit: spikes, voltages (adaptation) and readout of e-prop's online pass are lif.py's / alif.py's,
    over more steps than e-prop keeps at a time."""
    ev, _ = _data(n_in=10, T=3 * eprop.CHUNK + 5, B=4, rate=0.1)
    cfg = _cfg(kind, n_inputs=10, n_hidden=13, recurrent=recurrent, weight_scale=20.0, dtype=dtype, smooth=smooth,
               surrogate_scale=5.0 if smooth else 100.0)
    params = eprop.init_params(cfg, np.random.default_rng(2))
    reference = (alif if kind == "alif" else lif).forward(params, ev, cfg)
    got = eprop.forward(params, ev, cfg)
    assert type(got) is type(reference)
    assert reference.spikes.any() and (smooth or reference.spikes.mean() < 0.5)  # spikes, not saturated
    for name in reference._fields:
        ours, theirs = getattr(got, name), getattr(reference, name)
        assert ours.dtype == theirs.dtype == np.dtype(dtype) and ours.tobytes() == theirs.tobytes(), name
    assert eprop.readout(params, ev, cfg, [2, 0]).tobytes() == reference.readout[[2, 0]].tobytes()


def test_with_recurrent_weights_an_aligned_approximation():
    """Explicit recurrence ignored: w_out stays exact, w_in and w_rec differ from BPTT but point the same way."""
    data = randman.make_dataset(randman.RandmanConfig(n_inputs=40, n_train=32, n_test=1, n_steps=60, n_classes=3),
                                np.random.default_rng(0))
    cfg = lif.LIFConfig(n_inputs=40, n_hidden=32, n_outputs=3, recurrent=True, dtype="float64", n_blocks=4)
    params = eprop.init_params(cfg, np.random.default_rng(1))
    _, grads = eprop.loss_and_grad(params, data.train_events, data.train_labels, cfg)
    _, ref = eprop.bptt_loss_and_grad(params, data.train_events, data.train_labels, cfg)
    assert _rel(grads["w_out"], ref["w_out"]) < 1e-10
    for name in ("w_in", "w_rec"):
        cos = float((grads[name] * ref[name]).sum() / np.linalg.norm(grads[name]) / np.linalg.norm(ref[name]))
        assert _rel(grads[name], ref[name]) > 1e-4, name
        assert cos > 0.9, (name, cos)


def test_evaluate_is_the_training_loss_and_the_summed_log_probability_classifier():
    ev, labels = _data(n_in=10, T=50, B=7, rate=0.1, O=3)
    cfg = _cfg("alif", n_inputs=10, n_hidden=12, weight_scale=20.0)
    params = eprop.init_params(cfg, np.random.default_rng(4))
    loss, acc, _ = eprop.loss_acc_grad(params, ev, labels, cfg)
    res = eprop.evaluate(params, ev, labels, cfg)
    assert res["loss"] == loss and res["accuracy"] == acc
    uo = eprop.readout(params, ev, cfg)
    logp = uo - np.log(np.exp(uo).sum(axis=2, keepdims=True))
    assert np.isclose(loss, -logp[np.arange(len(labels)), :, labels].mean(), rtol=1e-12)
    assert acc == np.mean(logp.sum(axis=1).argmax(axis=1) == labels)


def test_same_bits_for_any_thread_count():
    ev, labels = _data(n_in=10, T=50, B=9, rate=0.1)
    cfg = _cfg("alif", n_inputs=10, n_hidden=16, recurrent=True, weight_scale=20.0, n_blocks=4)
    params = eprop.init_params(cfg, np.random.default_rng(3))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        l1, g1 = eprop.loss_and_grad(params, ev, labels, cfg)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        l2, g2 = eprop.loss_and_grad(params, ev, labels, cfg)
    finally:
        numba.set_num_threads(before)
    assert l1 == l2
    assert all(g1[k].tobytes() == g2[k].tobytes() for k in g1)


def _peak_bytes(fn) -> int:
    """Peak of the memory Python and NumPy allocate while ``fn`` runs, above what was allocated before."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_memory_flat_in_T_for_eprop_linear_for_bptt():
    """Measured with tracemalloc: e-prop's working memory does not grow with T, BPTT's grows in proportion.

    (Every array either gradient computation works in is allocated by its NumPy
    wrapper, the compiled code only per-block counters, so tracemalloc sees it all.)
    """
    cfg = alif.ALIFConfig(n_inputs=20, n_hidden=64, n_outputs=4, dtype="float64", n_blocks=4)
    params = eprop.init_params(cfg, np.random.default_rng(0))
    peaks = {"eprop": [], "bptt": []}
    steps = (100, 400, 1600)
    for T in steps:
        ev, labels = _data(n_in=20, T=T, B=4, O=4, rate=0.02, seed=T)
        for name, fn in (("eprop", eprop.loss_and_grad), ("bptt", eprop.bptt_loss_and_grad)):
            fn(params, ev, labels, cfg)  # compiled and warm
            peaks[name].append(_peak_bytes(lambda: fn(params, ev, labels, cfg)))
    e, b = peaks["eprop"], peaks["bptt"]
    report = f"peak bytes at T={steps}: eprop {e}, bptt {b}"
    assert max(e) < 1.05 * min(e), report
    # BPTT keeps per step and block U, A, the spike values (3·H float64) and indices (H int32), a spike offset
    # (int64) and Uo and its gradient (2·O float64): the growth is that, in proportion to T
    per_step = 4 * (3 * 64 * 8 + 64 * 4 + 8 + 2 * 4 * 8)
    assert b[2] > 10 * b[0], report
    for (t0, p0), (t1, p1) in zip(zip(steps, b), zip(steps[1:], b[1:])):
        assert abs((p1 - p0) - per_step * (t1 - t0)) < 0.02 * per_step * (t1 - t0), report
    assert e[0] < b[0], report
