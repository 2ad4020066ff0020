"""LIF BPTT kernel: finite differences, an independent NumPy reference, thread independence, training."""
import json
import subprocess
import sys

import numpy as np
import pytest

from snnbatch.kernels import events, lif, optim, randman


def _data(n_in=8, T=40, B=6, O=3, rate=0.15, seed=0):
    rng = np.random.default_rng(seed)
    ev = events.from_dense((rng.random((B, T, n_in)) < rate).astype(float))
    return ev, rng.integers(0, O, B)


# --------------------------------------------------------------------------- finite differences


def _smooth_cfg(recurrent):
    # a soft surrogate and strong weights: every neuron, its reset and the recurrence matter to the loss
    return lif.LIFConfig(n_inputs=8, n_hidden=6, n_outputs=3, recurrent=recurrent, smooth=True, detach_reset=False,
                         dtype="float64", surrogate_scale=5.0, weight_scale=30.0, n_blocks=2)


@pytest.mark.parametrize("recurrent", [False, True])
def test_gradient_matches_central_finite_differences(recurrent):
    ev, labels = _data()
    cfg = _smooth_cfg(recurrent)
    params = lif.init_params(cfg, np.random.default_rng(1))
    _, grads = lif.loss_and_grad(params, ev, labels, cfg)
    assert set(grads) == set(params) == set(lif.param_names(cfg))
    rng = np.random.default_rng(2)
    h = 1e-6
    for name, p in params.items():
        scale = np.abs(grads[name]).max()
        assert scale > 1e-4, name
        flat = rng.choice(p.size, size=min(8, p.size), replace=False)
        for idx in map(lambda f: np.unravel_index(f, p.shape), flat):
            q = {k: v.copy() for k, v in params.items()}
            q[name][idx] += h
            lp = lif.evaluate(q, ev, labels, cfg)["loss"]
            q[name][idx] -= 2 * h
            lm = lif.evaluate(q, ev, labels, cfg)["loss"]
            numeric = (lp - lm) / (2 * h)
            err = abs(grads[name][idx] - numeric) / max(abs(numeric), 1e-2 * scale)
            assert err < 1e-6, (name, idx, grads[name][idx], numeric, err)


# --------------------------------------------------------------------------- NumPy reference


def reference(params, x, labels, cfg):
    """Forward and BPTT of the docstring's equations, written plainly and vectorised over the batch.

    ``x``: dense (B, T, n_inputs) inputs. Returns (S, U, Uo, loss, grads) with S[n], U[n] for
    n = 0 .. T-1 and Uo[n + 1], as :func:`lif.forward` reports them.
    """
    a, b, th, sc = cfg.alpha, cfg.beta, cfg.threshold, cfg.surrogate_scale
    w_in, w_out = params["w_in"], params["w_out"]
    w_rec = params["w_rec"] if cfg.recurrent else np.zeros((cfg.n_hidden, cfg.n_hidden))
    B, T, _ = x.shape
    H, O = cfg.n_hidden, cfg.n_outputs
    S, U, Uo = np.zeros((B, T, H)), np.zeros((B, T, H)), np.zeros((B, T, O))
    u, i, uo, io = np.zeros((B, H)), np.zeros((B, H)), np.zeros((B, O)), np.zeros((B, O))
    for n in range(T):
        s = (u - th > 0).astype(float)
        U[:, n], S[:, n] = u, s
        i = a * i + x[:, n] @ w_in + s @ w_rec
        u = b * u + i - th * s
        io = a * io + s @ w_out
        uo = b * uo + io
        Uo[:, n] = uo
    # loss: cross-entropy of softmax over the readouts' maxima in time
    t_max = Uo.argmax(axis=1)  # (B, O)
    m = Uo.max(axis=1)
    z = np.exp(m - m.max(axis=1, keepdims=True))
    p = z / z.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(B), labels]).mean()
    g_m = (p - np.eye(O)[labels]) / B  # dL/dm
    # adjoints: ū = dL/dU[n+1], ī = dL/dI[n+1] (after the update below), ūo, īo likewise
    ub, ib, uob, iob = np.zeros((B, H)), np.zeros((B, H)), np.zeros((B, O)), np.zeros((B, O))
    g = {"w_in": np.zeros_like(w_in), "w_rec": np.zeros_like(w_rec), "w_out": np.zeros_like(w_out)}
    for n in range(T - 1, -1, -1):
        uob = np.where(t_max == n, g_m, 0.0) + b * uob
        iob = uob + a * iob
        ib = ub + a * ib
        g["w_in"] += x[:, n].T @ ib
        g["w_rec"] += S[:, n].T @ ib
        g["w_out"] += S[:, n].T @ iob
        g_s = iob @ w_out.T + ib @ w_rec.T
        if not cfg.detach_reset:
            g_s -= th * ub
        ub = b * ub + g_s / (sc * np.abs(U[:, n] - th) + 1.0) ** 2
    if not cfg.recurrent:
        del g["w_rec"]
    return S, U, Uo, loss, g


@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("detach_reset", [True, False])
def test_spiking_forward_and_gradient_equal_the_numpy_reference(recurrent, detach_reset):
    data = randman.make_dataset(randman.RandmanConfig(n_inputs=30, n_train=24, n_test=2, n_steps=60, n_classes=3),
                                np.random.default_rng(0))
    cfg = lif.LIFConfig(n_inputs=30, n_hidden=20, n_outputs=3, recurrent=recurrent, detach_reset=detach_reset,
                        dtype="float64", weight_scale=25.0, n_blocks=4)
    params = lif.init_params(cfg, np.random.default_rng(1))
    ev, labels = data.train_events, data.train_labels
    S, U, Uo, loss, ref = reference(params, ev.to_dense(30), labels, cfg)
    tr = lif.forward(params, ev, cfg)
    assert 0.01 < S.mean() < 0.5  # spikes, but not saturated
    assert np.array_equal(tr.spikes, S)
    np.testing.assert_allclose(tr.voltages, U, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tr.readout, Uo, rtol=0, atol=1e-12)
    got_loss, grads = lif.loss_and_grad(params, ev, labels, cfg)
    assert got_loss == pytest.approx(loss, rel=1e-12)
    assert set(grads) == set(ref)
    for name in ref:
        scale = np.abs(ref[name]).max()
        assert scale > 0
        np.testing.assert_allclose(grads[name], ref[name], rtol=0, atol=1e-10 * scale, err_msg=name)


def test_index_selects_samples_and_evaluate_agrees():
    ev, labels = _data(B=9)
    cfg = lif.LIFConfig(n_inputs=8, n_hidden=10, n_outputs=3, recurrent=True, weight_scale=20.0, n_blocks=3,
                        dtype="float64")
    params = lif.init_params(cfg, np.random.default_rng(3))
    idx = np.array([4, 1, 7, 2])
    loss, acc, grads = lif.loss_acc_grad(params, ev, labels, cfg, idx)
    # labels may be given for the whole set or for the selection
    loss2, acc2, grads2 = lif.loss_acc_grad(params, ev, labels[idx], cfg, idx)
    sub = lif.loss_and_grad(params, ev.take(idx), labels[idx], cfg)
    assert loss == loss2 == sub[0] and acc == acc2
    assert all(grads[k].tobytes() == grads2[k].tobytes() == sub[1][k].tobytes() for k in grads)
    assert lif.evaluate(params, ev, labels, cfg, idx) == {"loss": loss, "accuracy": acc}


# --------------------------------------------------------------------------- threads, float32


_HASH_SCRIPT = """
import hashlib, json, numba, numpy as np
from snnbatch.kernels import lif, randman
data = randman.make_dataset(randman.RandmanConfig(n_train=96, n_test=2, n_steps=60), np.random.default_rng(0))
out = {"threads": numba.get_num_threads()}
for rec in (False, True):
    cfg = lif.LIFConfig(recurrent=rec, n_hidden=64)
    p = lif.init_params(cfg, np.random.default_rng(1))
    loss, acc, g = lif.loss_acc_grad(p, data.train_events, data.train_labels, cfg, np.arange(3, 90))
    h = hashlib.sha256(repr(loss).encode())
    for k in sorted(g):
        h.update(g[k].tobytes())
    out[str(rec)] = h.hexdigest()
print(json.dumps(out))
"""


def test_same_bits_for_one_and_two_threads():
    runs = []
    for threads in (1, 2):
        env = {**__import__("os").environ, "NUMBA_NUM_THREADS": str(threads)}
        proc = subprocess.run([sys.executable, "-c", _HASH_SCRIPT], env=env, capture_output=True, text=True,
                              timeout=300, check=True)
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert [r.pop("threads") for r in runs] == [1, 2]
    assert runs[0] == runs[1]


def test_float32_runs_and_follows_float64():
    data = randman.make_dataset(randman.RandmanConfig(n_train=64, n_test=2, n_steps=80), np.random.default_rng(0))
    cfg32 = lif.LIFConfig(recurrent=True)
    p32 = lif.init_params(cfg32, np.random.default_rng(1))
    assert all(v.dtype == np.float32 for v in p32.values())
    loss32, g32 = lif.loss_and_grad(p32, data.train_events, data.train_labels, cfg32)
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in g32.values())
    tr = lif.forward(p32, data.train_events, cfg32, np.arange(4))
    assert tr.spikes.dtype == tr.voltages.dtype == tr.readout.dtype == np.float32
    cfg64 = cfg32._replace(dtype="float64")
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}
    loss64, g64 = lif.loss_and_grad(p64, data.train_events, data.train_labels, cfg64)
    assert loss32 == pytest.approx(loss64, rel=1e-3)
    for k in g64:
        cos = float((g32[k].astype(np.float64) * g64[k]).sum() / np.linalg.norm(g32[k]) / np.linalg.norm(g64[k]))
        assert cos > 0.99, (k, cos)


# --------------------------------------------------------------------------- training


def test_short_training_on_randman_reaches_90_percent():
    data = randman.make_dataset(randman.RandmanConfig(n_train=1000, n_test=500), np.random.default_rng(0))
    cfg = lif.LIFConfig()
    params = lif.init_params(cfg, np.random.default_rng(1))
    state = optim.adam_init(params)
    rng = np.random.default_rng(2)
    for _ in range(8):
        order = rng.permutation(len(data.train_labels))
        for i in range(0, len(order), 128):
            _, grads = lif.loss_and_grad(params, data.train_events, data.train_labels, cfg, order[i : i + 128])
            optim.adam_step(params, grads, state, 2e-3)
    res = lif.evaluate(params, data.test_events, data.test_labels, cfg)
    assert res["accuracy"] >= 0.9, res



def test_spike_events_to_dense_counts_every_event():
    from snnbatch.kernels.events import from_times

    rng = np.random.default_rng(0)
    t, u, s = rng.integers(0, 20, 500), rng.integers(0, 7, 500), rng.integers(0, 9, 500)
    events = from_times(t, u, s, 9, 20)
    expected = np.zeros((9, 20, 7))
    np.add.at(expected, (s, t, u), 1.0)
    assert np.array_equal(events.to_dense(7), expected)
    picked = np.array([5, 2, 2, 8])
    assert np.array_equal(events.take(picked).to_dense(7), expected[picked])


# --------------------------------------------------------------------------- the sparse backward (surrogate cut-off)


@pytest.mark.parametrize("recurrent", [False, True])
def test_surrogate_cutoff_zero_is_exact_and_tiny_cutoff_changes_only_rounding(recurrent):
    ev, labels = _data(n_in=10, T=50, B=20, O=3, rate=0.2)
    cfg = lif.LIFConfig(n_inputs=10, n_hidden=20, n_outputs=3, recurrent=recurrent, dtype="float64",
                        weight_scale=20.0, n_blocks=2)
    params = lif.init_params(cfg, np.random.default_rng(2))
    _, exact = lif.loss_and_grad(params, ev, labels, cfg)
    _, zero = lif.loss_and_grad(params, ev, labels, cfg._replace(surrogate_cutoff=0.0))
    for k in exact:
        np.testing.assert_array_equal(zero[k], exact[k])
    # below every surrogate derivative: the sparse path computes the same gradient (its sums in another order)
    _, tiny = lif.loss_and_grad(params, ev, labels, cfg._replace(surrogate_cutoff=1e-300))
    for k in exact:
        np.testing.assert_allclose(tiny[k], exact[k], rtol=0, atol=1e-12 * np.abs(exact[k]).max())
        assert np.abs(exact[k]).max() > 0


@pytest.mark.parametrize("module", ["lif", "alif"])
def test_surrogate_cutoff_drops_the_derivatives_below_it(module):
    from snnbatch.kernels import alif

    mod, C = (lif, lif.LIFConfig) if module == "lif" else (alif, alif.ALIFConfig)
    ev, labels = _data(n_in=10, T=50, B=20, O=3, rate=0.2)
    cfg = C(n_inputs=10, n_hidden=20, n_outputs=3, recurrent=True, dtype="float64", weight_scale=20.0, n_blocks=2)
    params = mod.init_params(cfg, np.random.default_rng(2))
    _, exact = mod.loss_and_grad(params, ev, labels, cfg)
    # σ' ≤ 1, equal to 1 only exactly at threshold: a cut-off of 1 stops every path through the hidden layer
    _, none = mod.loss_and_grad(params, ev, labels, cfg._replace(surrogate_cutoff=1.0))
    np.testing.assert_array_equal(none["w_out"], exact["w_out"])
    assert not none["w_in"].any() and not none["w_rec"].any()
    # a moderate cut-off keeps most of the gradient, but not all of it
    _, some = mod.loss_and_grad(params, ev, labels, cfg._replace(surrogate_cutoff=0.05))
    g, e = some["w_in"].ravel(), exact["w_in"].ravel()
    cos = g @ e / np.sqrt((g @ g) * (e @ e))
    assert 0.5 < cos < 1.0 - 1e-9


# --------------------------------------------------------------------------- the activity penalty (BPTT's training loss)


def _penalty(counts, cfg):
    """The activity penalty of spike counts (samples, neurons), its mean over samples: the README's formula."""
    up = cfg.activity_upper_strength * np.maximum(counts - cfg.activity_upper, 0.0) ** 2
    lo = cfg.activity_lower_strength * np.maximum(cfg.activity_lower - counts, 0.0) ** 2
    return float((up + lo).sum(axis=1).mean())


def _between(values, q):
    """A value between two neighbouring sorted ``values`` near quantile ``q``: a bound on no count (no kink)."""
    v = np.sort(values.ravel())
    i = int(q * (v.size - 1))
    assert v[i + 1] > v[i]
    return float(0.5 * (v[i] + v[i + 1]))


@pytest.mark.parametrize("module", ["lif", "alif"])
@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("cutoff", [0.0, 1e-300], ids=["dense", "sparse"])
def test_activity_penalty_gradient_matches_central_finite_differences(module, recurrent, cutoff):
    from snnbatch.kernels import alif

    mod = lif if module == "lif" else alif
    C = lif.LIFConfig if module == "lif" else alif.ALIFConfig
    ev, labels = _data()
    base = _smooth_cfg(recurrent)._asdict()
    cfg = C(**{k: v for k, v in base.items() if k in C._fields})._replace(surrogate_cutoff=cutoff)
    params = mod.init_params(cfg, np.random.default_rng(1))
    counts = mod.forward(params, ev, cfg).spikes.sum(axis=1)  # (samples, neurons); smooth: sums of spike values
    cfg = cfg._replace(activity_upper=_between(counts, 0.6), activity_upper_strength=0.05,
                       activity_lower=_between(counts, 0.4), activity_lower_strength=0.03)
    # both bounds active: some counts above the upper bound, some below the lower
    assert (counts > cfg.activity_upper).sum() >= 5 and (counts < cfg.activity_lower).sum() >= 5
    readout_loss = mod.evaluate(params, ev, labels, cfg)["loss"]  # evaluation: the readout loss alone
    loss, grads = mod.loss_and_grad(params, ev, labels, cfg)
    assert loss == pytest.approx(readout_loss + _penalty(counts, cfg), rel=1e-12)
    assert loss > readout_loss + 0.1
    _, plain = mod.loss_and_grad(params, ev, labels, cfg._replace(activity_upper_strength=0.0,
                                                                  activity_lower_strength=0.0))
    rng = np.random.default_rng(2)
    h = 1e-5
    for name, p in params.items():
        scale = np.abs(grads[name]).max()
        assert scale > 1e-4, name
        if name != "w_out":  # the counts do not depend on w_out; the penalty moves the other gradients
            assert np.abs(grads[name] - plain[name]).max() > 1e-2 * scale, name
        flat = rng.choice(p.size, size=min(8, p.size), replace=False)
        for idx in map(lambda f: np.unravel_index(f, p.shape), flat):
            def f(d):
                q = {k: v.copy() for k, v in params.items()}
                q[name][idx] += d
                return mod.loss_and_grad(q, ev, labels, cfg)[0]

            numeric = (8 * (f(h) - f(-h)) - (f(2 * h) - f(-2 * h))) / (12 * h)  # fourth-order central difference
            err = abs(grads[name][idx] - numeric) / max(abs(numeric), 1e-2 * scale)
            assert err < 1e-6, (name, idx, grads[name][idx], numeric, err)


def test_activity_penalty_off_and_out_of_reach_give_the_bits_of_none():
    ev, labels = _data(n_in=10, T=50, B=20, O=3, rate=0.2)
    cfg = lif.LIFConfig(n_inputs=10, n_hidden=20, n_outputs=3, recurrent=True, weight_scale=20.0, n_blocks=2)
    params = lif.init_params(cfg, np.random.default_rng(2))
    loss, grads = lif.loss_and_grad(params, ev, labels, cfg)
    counts = lif.forward(params, ev, cfg).spikes.sum(axis=1)
    assert counts.max() > 0
    # a bound no count reaches adds exact zeros: the same loss and bits, though the penalty's code runs
    far = cfg._replace(activity_upper=float(counts.max()) + 1.0, activity_upper_strength=1.0,
                       activity_lower=0.0, activity_lower_strength=1.0)
    loss2, grads2 = lif.loss_and_grad(params, ev, labels, far)
    assert loss2 == loss
    assert all(grads2[k].tobytes() == grads[k].tobytes() for k in grads)


@pytest.mark.parametrize("module", ["lif", "alif"])
def test_activity_penalty_moves_spike_counts_in_training(module):
    """A strong upper bound lowers the hidden spike counts, a strong lower bound wakes silent neurons."""
    from snnbatch.kernels import alif

    mod, C = (lif, lif.LIFConfig) if module == "lif" else (alif, alif.ALIFConfig)
    data = randman.make_dataset(randman.RandmanConfig(n_inputs=40, n_classes=4, n_train=256, n_test=128,
                                                      n_steps=60), np.random.default_rng(0))
    base = C(n_inputs=40, n_hidden=48, n_outputs=4, n_blocks=4, weight_scale=12.0)

    def train(cfg):
        params = mod.init_params(base, np.random.default_rng(1))
        state = optim.adam_init(params)
        rng = np.random.default_rng(2)
        for _ in range(4):
            order = rng.permutation(256)
            for i in range(0, 256, 64):
                _, grads = mod.loss_and_grad(params, data.train_events, data.train_labels, cfg, order[i:i + 64])
                optim.adam_step(params, grads, state, 5e-3)
        return mod.forward(params, data.test_events, cfg).spikes.sum(axis=1), params

    plain, _ = train(base)
    # counts per test sample and neuron; measured: mean 1.5 (lif) and 1.2 (alif), 37-39 % of them zero
    assert plain.mean() > 1.0 and (plain == 0).mean() > 0.2, (plain.mean(), (plain == 0).mean())
    upper, _ = train(base._replace(activity_upper=1.0, activity_upper_strength=0.05))  # measured: mean 0.33-0.34
    assert upper.mean() < 0.5 * plain.mean(), (upper.mean(), plain.mean())
    lower, _ = train(base._replace(activity_lower=3.0, activity_lower_strength=0.05))  # measured: 0.7-2 % zero
    assert lower.mean() > plain.mean() and (lower == 0).mean() < 0.25 * (plain == 0).mean(), \
        ((lower == 0).mean(), (plain == 0).mean())
