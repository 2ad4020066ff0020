"""Multi-layer e-prop: one layer is eprop.py bit for bit; the last layer and w_out exact without recurrence; the
broadcast rule of the lower layers as a slow NumPy reference computes it; thread-count independent; memory flat in T."""
import math
import tracemalloc

import numba
import numpy as np
import pytest

from snnbatch.kernels import alif, eprop, eprop_deep, events, lif


def _data(n_in=6, T=40, B=3, O=3, rate=0.15, seed=0):
    rng = np.random.default_rng(seed)
    dense = (rng.random((B, T, n_in)) < rate).astype(float)
    return events.from_dense(dense), dense, rng.integers(0, O, B)


def _cfg(kind, n_hidden=(5, 4), recurrent=None, **kw):
    base = dict(n_inputs=6, n_hidden=tuple(n_hidden), n_outputs=3, dtype="float64", weight_scale=30.0, n_blocks=2,
                recurrent=tuple(recurrent or (False,) * len(n_hidden)), feedback_seed=7)
    if kind == "alif":
        base.update(tau_adapt=20e-3, adapt_jump=0.5)
    base.update(kw)
    return eprop_deep.EpropDeepConfig(**base)


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


# --------------------------------------------------------------------------- a slow NumPy reference of the rule


def _reference(params, dense, labels, cfg):
    """Loss, accuracy and the updates of the broadcast e-prop rule, from the equations, whole trace matrices per
    step (no factored traces, no skipped rows), float64."""
    B, T, _ = dense.shape
    L = len(cfg.n_hidden)
    a, b, r, th, jump = cfg.alpha, cfg.beta, cfg.rho, cfg.threshold, cfg.adapt_jump
    sc = cfg.surrogate_scale
    w_out = params["w_out"].astype(float)
    w_in = [params["w_in" if k == 0 else f"w_in{k}"].astype(float) for k in range(L)]
    w_rec = [params["w_rec" if k == 0 else f"w_rec{k}"].astype(float) if cfg.recurrent[k] else None for k in range(L)]
    fb = [f.astype(float) for f in eprop_deep.feedback_matrices(cfg, params["w_out"])]
    grads = {"w_out": np.zeros_like(w_out)}
    g_in = [np.zeros_like(w) for w in w_in]
    g_rec = [np.zeros_like(w) if w is not None else None for w in w_rec]
    total, correct = 0.0, 0

    def spike(z):
        return z / (sc * np.abs(z) + 1) if cfg.smooth else (z > 0).astype(float)

    for s in range(B):
        U = [np.zeros(H) for H in cfg.n_hidden]
        I = [np.zeros(H) for H in cfg.n_hidden]
        A = [np.zeros(H) for H in cfg.n_hidden]
        io, uo = np.zeros(cfg.n_outputs), np.zeros(cfg.n_outputs)
        fI, fU = np.zeros(cfg.n_hidden[-1]), np.zeros(cfg.n_hidden[-1])

        def traces(n_pre, H):
            return {"eI": np.zeros(n_pre), "eU": np.zeros((n_pre, H)), "eA": np.zeros((n_pre, H)),
                    "bI": np.zeros((n_pre, H)), "bU": np.zeros((n_pre, H))}

        pre = (cfg.n_inputs,) + cfg.n_hidden[:-1]
        tr_in = [traces(pre[k], H) for k, H in enumerate(cfg.n_hidden)]
        tr_rec = [traces(H, H) for H in cfg.n_hidden]
        loss, score = 0.0, np.zeros(cfg.n_outputs)
        for n in range(T):
            z = [U[k] - th - jump * A[k] for k in range(L)]
            S = [spike(zk) for zk in z]
            sig = [1.0 / (sc * np.abs(zk) + 1) ** 2 for zk in z]
            x = [dense[s, n]] + S[:-1]
            io = a * io + S[-1] @ w_out
            uo = b * uo + io
            logp = uo - uo.max() - np.log(np.exp(uo - uo.max()).sum())
            loss -= logp[labels[s]]
            score += logp
            g = (np.exp(logp) - np.eye(cfg.n_outputs)[labels[s]]) / (T * B)
            fI = a * fI + S[-1]
            fU = b * fU + fI
            grads["w_out"] += np.outer(fU, g)
            for k in range(L):
                signal = fb[k] @ g
                for t, xk, gk in ((tr_in[k], x[k], g_in[k]), (tr_rec[k], S[k], g_rec[k])):
                    if gk is None:
                        continue
                    t["eI"] = a * t["eI"] + xk
                    d = sig[k][None, :] * (t["eU"] - jump * t["eA"])
                    t["eU"] = b * t["eU"] + t["eI"][:, None] - (0.0 if cfg.detach_reset else th * d)
                    t["eA"] = r * t["eA"] + d
                    t["bI"] = a * t["bI"] + d
                    t["bU"] = b * t["bU"] + t["bI"]
                    gk += t["bU"] * signal[None, :]
            for k in range(L):
                I[k] = a * I[k] + x[k] @ w_in[k] + (S[k] @ w_rec[k] if w_rec[k] is not None else 0.0)
                U[k] = b * U[k] + I[k] - th * S[k]
                A[k] = r * A[k] + S[k]
        total += loss / T
        correct += int(np.argmax(score) == labels[s])
    for k in range(L):
        grads["w_in" if k == 0 else f"w_in{k}"] = g_in[k]
        if g_rec[k] is not None:
            grads["w_rec" if k == 0 else f"w_rec{k}"] = g_rec[k]
    return total / B, correct / B, grads


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("kind", ["lif", "alif"])
@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("smooth", [False, True])
def test_one_layer_is_eprop_bit_for_bit(kind, recurrent, dtype, smooth):
    """Same draws, same loss, accuracy and gradient bits as kernels/eprop.py, with either reset."""
    ev, _, labels = _data(n_in=8, T=3 * eprop.CHUNK + 7, B=5)
    base = dict(n_inputs=8, n_hidden=6, n_outputs=3, dtype=dtype, weight_scale=30.0, n_blocks=2, recurrent=recurrent,
                smooth=smooth, surrogate_scale=5.0 if smooth else 100.0)
    adapt = dict(tau_adapt=20e-3, adapt_jump=0.5) if kind == "alif" else {}
    for detach_reset in (True, False):
        one = (alif.ALIFConfig if kind == "alif" else lif.LIFConfig)(**base, detach_reset=detach_reset, **adapt)
        deep = eprop_deep.EpropDeepConfig(**{**base, "n_hidden": (6,), "recurrent": (recurrent,)},
                                          detach_reset=detach_reset, **adapt)
        params = eprop.init_params(one, np.random.default_rng(1))
        mine = eprop_deep.init_params(deep, np.random.default_rng(1))
        assert list(mine) == list(params) and all(mine[k].tobytes() == params[k].tobytes() for k in params)
        loss, acc, grads = eprop.loss_acc_grad(params, ev, labels, one)
        got_loss, got_acc, got = eprop_deep.loss_acc_grad(params, ev, labels, deep)
        assert (got_loss, got_acc) == (loss, acc)
        assert sorted(got) == sorted(grads)
        for name in grads:
            assert np.abs(grads[name]).max() > 0, name
            assert got[name].dtype == np.dtype(dtype) and got[name].tobytes() == grads[name].tobytes(), name


def test_init_names_order_and_scales():
    """w_in, w_rec, w_in1, (w_rec1), ..., w_out, drawn in that order from one generator, lif.py's scales."""
    cfg = _cfg("lif", n_hidden=(7, 5, 4), recurrent=(True, False, True), recurrent_weight_scale=0.5, dtype="float32")
    params = eprop_deep.init_params(cfg, np.random.default_rng(3))
    assert list(params) == ["w_in", "w_rec", "w_in1", "w_in2", "w_rec2", "w_out"]
    assert [params[k].shape for k in params] == [(6, 7), (7, 7), (7, 5), (5, 4), (4, 4), (4, 3)]
    rng = np.random.default_rng(3)
    s, rs = 30.0 * (1 - cfg.beta), 0.5 * (1 - cfg.beta)
    expect = [rng.normal(0, s / math.sqrt(6), (6, 7)), rng.normal(0, rs / math.sqrt(7), (7, 7)),
              rng.normal(0, s / math.sqrt(7), (7, 5)),
              rng.normal(0, s / math.sqrt(5), (5, 4)), rng.normal(0, rs / 2, (4, 4)), rng.normal(0, s / 2, (4, 3))]
    for (name, p), e in zip(params.items(), expect):
        assert p.dtype == np.float32 and p.tobytes() == e.astype(np.float32).tobytes(), name
    # the layer below the first starts as a one-layer network of the same seed would
    one = lif.init_params(lif.LIFConfig(n_inputs=6, n_hidden=7, n_outputs=3, weight_scale=30.0, recurrent=True,
                                        recurrent_weight_scale=0.5), np.random.default_rng(3))
    assert params["w_in"].tobytes() == one["w_in"].tobytes() and params["w_rec"].tobytes() == one["w_rec"].tobytes()


def test_feedback_matrices():
    """Fixed by the seed, shared by both feedbacks below the last layer; symmetric uses w_out for the last."""
    cfg = _cfg("lif", n_hidden=(5, 4, 6))
    params = eprop_deep.init_params(cfg, np.random.default_rng(0))
    sym = eprop_deep.feedback_matrices(cfg, params["w_out"])
    rnd = eprop_deep.feedback_matrices(cfg._replace(feedback="random"), params["w_out"])
    again = eprop_deep.feedback_matrices(cfg._replace(feedback="random"), params["w_out"])
    other = eprop_deep.feedback_matrices(cfg._replace(feedback="random", feedback_seed=8), params["w_out"])
    assert [f.shape for f in rnd] == [(5, 3), (4, 3), (6, 3)]
    assert sym[2] is params["w_out"] or sym[2].tobytes() == params["w_out"].tobytes()
    assert all(a.tobytes() == b.tobytes() for a, b in zip(rnd, again))
    assert all(a.tobytes() == b.tobytes() for a, b in zip(sym[:2], rnd[:2]))
    assert rnd[2].tobytes() != params["w_out"].tobytes()
    assert all(a.tobytes() != b.tobytes() for a, b in zip(rnd, other))
    with pytest.raises(ValueError, match="feedback"):
        eprop_deep.feedback_matrices(cfg._replace(feedback="sideways"), params["w_out"])


@pytest.mark.parametrize("kind,n_hidden,recurrent,feedback,detach_reset,smooth", [
    ("lif", (5, 4), (False, False), "symmetric", True, False),
    ("lif", (5, 4), (True, False), "symmetric", False, True),
    ("alif", (5, 4, 3), (False, True, True), "symmetric", True, True),
    ("alif", (5, 4), (True, True), "random", False, False),
    ("lif", (4, 6, 3), (False, False, False), "random", True, True),
])
def test_equals_a_slow_numpy_reference_of_the_broadcast_rule(kind, n_hidden, recurrent, feedback, detach_reset, smooth):
    """Every layer's update, recurrent or not, either feedback: the rule as written from the equations."""
    ev, dense, labels = _data(B=5)
    cfg = _cfg(kind, n_hidden, recurrent, feedback=feedback, detach_reset=detach_reset, smooth=smooth,
               surrogate_scale=5.0 if smooth else 100.0)
    params = eprop_deep.init_params(cfg, np.random.default_rng(2))
    loss, acc, grads = eprop_deep.loss_acc_grad(params, ev, labels, cfg)
    ref_loss, ref_acc, ref = _reference(params, dense, labels, cfg)
    assert list(grads) == list(params)
    assert set(ref) == set(grads)
    assert abs(loss - ref_loss) < 1e-12 * ref_loss and acc == ref_acc
    for name in ref:
        assert np.abs(ref[name]).max() > 1e-8, name  # a gradient worth comparing
        assert _rel(grads[name], ref[name]) < 1e-10, name


@pytest.mark.parametrize("kind,n_hidden", [("lif", (5, 4)), ("alif", (4, 5, 3))])
def test_last_layer_and_readout_are_the_per_step_loss_gradient_without_recurrence(kind, n_hidden):
    """Float64, smooth, reset not detached: finite differences of the loss. Symmetric feedback: w_out and the
    last layer exact; random feedback: w_out exact. The lower layers' updates are the broadcast rule, not the
    gradient."""
    ev, _, labels = _data(B=3, T=30)
    cfg = _cfg(kind, n_hidden, smooth=True, detach_reset=False, surrogate_scale=5.0)
    params = eprop_deep.init_params(cfg, np.random.default_rng(1))
    top = f"w_in{len(n_hidden) - 1}"

    def numeric(name, c):
        p = params[name]
        num = np.zeros_like(p)
        h = 1e-6
        for idx in np.ndindex(p.shape):
            q = {k: v.copy() for k, v in params.items()}
            q[name][idx] += h
            lp = eprop_deep.evaluate(q, ev, labels, c)["loss"]
            q[name][idx] -= 2 * h
            lm = eprop_deep.evaluate(q, ev, labels, c)["loss"]
            num[idx] = (lp - lm) / (2 * h)
        return num

    _, grads = eprop_deep.loss_and_grad(params, ev, labels, cfg)
    for name in ("w_out", top):
        num = numeric(name, cfg)
        assert np.abs(num).max() > 1e-6, name
        assert _rel(grads[name], num) < 1e-7, name
    below = numeric("w_in", cfg)
    assert _rel(grads["w_in"], below) > 1e-3  # not the gradient: no path back through the layers above
    _, rnd = eprop_deep.loss_and_grad(params, ev, labels, cfg._replace(feedback="random"))
    assert rnd["w_out"].tobytes() == grads["w_out"].tobytes()
    assert rnd["w_in"].tobytes() == grads["w_in"].tobytes()  # the same B below the last layer
    assert _rel(rnd[top], grads[top]) > 1e-3


def test_evaluate_is_the_training_loss():
    ev, _, labels = _data(B=7, T=50)
    cfg = _cfg("alif", (6, 5), (True, False), dtype="float32")
    params = eprop_deep.init_params(cfg, np.random.default_rng(4))
    loss, acc, _ = eprop_deep.loss_acc_grad(params, ev, labels, cfg)
    assert eprop_deep.evaluate(params, ev, labels, cfg) == {"loss": loss, "accuracy": acc}
    sub = [4, 1, 6]
    assert eprop_deep.evaluate(params, ev, labels[sub], cfg, sub)["loss"] == eprop_deep.evaluate(
        params, ev, labels, cfg, sub)["loss"]


def test_same_bits_for_any_thread_count():
    ev, _, labels = _data(n_in=10, T=50, B=9, rate=0.1)
    cfg = _cfg("alif", (12, 8), (True, True), n_inputs=10, weight_scale=20.0, n_blocks=4, dtype="float32")
    params = eprop_deep.init_params(cfg, np.random.default_rng(3))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        l1, g1 = eprop_deep.loss_and_grad(params, ev, labels, cfg)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        l2, g2 = eprop_deep.loss_and_grad(params, ev, labels, cfg)
    finally:
        numba.set_num_threads(before)
    assert numba.config.NUMBA_NUM_THREADS >= 2
    assert l1 == l2
    assert list(g1) == list(g2) and all(np.abs(g1[k]).max() > 0 for k in g1)
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


@pytest.mark.parametrize("n_hidden,recurrent", [((32, 32), (False, True)), ((32, 24, 16), (True, True, False))])
def test_memory_flat_in_T(n_hidden, recurrent):
    """The arrays allocated (tracemalloc: the workspace is all NumPy) do not grow with T; they are the workspace."""
    cfg = _cfg("alif", n_hidden, recurrent, n_inputs=20, n_outputs=4, n_blocks=4)
    params = eprop_deep.init_params(cfg, np.random.default_rng(0))
    expect = eprop_deep.workspace_bytes(cfg, 4)
    layers = zip((20,) + n_hidden[:-1], n_hidden, recurrent)
    traces = 4 * 4 * sum(P * H + (H * H if r else 0) for P, H, r in layers) * 8  # 4 planes, 4 blocks, float64
    assert traces < expect < 1.5 * traces + 20_000
    peaks = []
    for T in (100, 400, 1600):
        ev, _, labels = _data(n_in=20, T=T, B=4, O=4, rate=0.02, seed=T)
        eprop_deep.loss_and_grad(params, ev, labels, cfg)  # compiled and warm
        peaks.append(_peak_bytes(lambda: eprop_deep.loss_and_grad(params, ev, labels, cfg)))
    assert max(peaks) < 1.05 * min(peaks), peaks
    assert expect < min(peaks) < expect + 64_000, (expect, peaks)


@pytest.mark.parametrize("kind", ["lif", "alif"])
@pytest.mark.parametrize("recurrent", [(False, False), (True, False), (False, True)])
@pytest.mark.parametrize("smooth,detach_reset", [(False, True), (True, False)])
def test_the_network_and_the_exact_gradients_of_the_deep_bptt_kernel(kind, recurrent, smooth, detach_reset):
    """kernels/deep.py with readout per_step (BPTT of the same per-step loss, an independent implementation):
    the same loss and accuracy (the same network), w_out's gradient always, the last layer's when it is not
    recurrent (its spikes then depend on nothing but its weights and the layer below)."""
    from snnbatch.kernels import deep

    ev, _, labels = _data(B=5)
    cfg = _cfg(kind, (5, 4), recurrent, smooth=smooth, detach_reset=detach_reset,
               surrogate_scale=5.0 if smooth else 100.0)
    shared = {k: getattr(cfg, k) for k in deep.DeepALIFConfig._fields if k in cfg._fields}
    if kind == "lif":
        shared = {k: v for k, v in shared.items() if k in deep.DeepLIFConfig._fields}
    bptt_cfg = (deep.DeepALIFConfig if kind == "alif" else deep.DeepLIFConfig)(**shared, readout="per_step")
    params = eprop_deep.init_params(cfg, np.random.default_rng(2))
    ref_loss, ref_acc, ref = deep.loss_acc_grad(params, ev, labels, bptt_cfg)
    loss, acc, grads = eprop_deep.loss_acc_grad(params, ev, labels, cfg)
    assert abs(loss - ref_loss) <= 1e-12 * ref_loss and acc == ref_acc
    exact = ["w_out"] + ([] if recurrent[1] else ["w_in1"])
    for name in exact:
        assert np.abs(ref[name]).max() > 1e-8, name
        assert _rel(grads[name], ref[name]) < 1e-10, name
    assert _rel(grads["w_in"], ref["w_in"]) > 1e-3  # the broadcast rule, not the gradient
