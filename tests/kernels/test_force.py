"""FORCE/RLS kernel: packed BLAS, the closed-form RLS solution, learning, memory, determinism."""
import hashlib
import os
import subprocess
import sys
import textwrap
import time

import numpy as np

from snnbatch.kernels import force as F

# small, fast settings: 0.5 ms steps, an RLS update every 10 ms
FAST = dict(dt=0.5, learn_every=20)


def _setup(cfg, seed=0, innate=False):
    state = F.init_state(cfg, np.random.default_rng(seed))
    offset = F.innate_current(state, cfg) if innate else None
    return state, F.make_targets(cfg, np.random.default_rng(seed + 1), offset)


def _traces_r(spikes, pre, cfg):
    """Filtered spike trains r[n] (n_steps, N) rebuilt from recorded spikes (warm-up 0: r starts at 0)."""
    a = np.exp(-cfg.dt / cfg.tau_plastic)
    N, T = spikes.shape
    r = np.zeros((T, N))
    for n in range(1, T):
        r[n] = a * r[n - 1] + spikes[:, n - 1] / cfg.tau_plastic
    return r


# --------------------------------------------------------------------------- packed storage


def test_packed_kernels_match_dense():
    rng = np.random.default_rng(3)
    L = 9
    a = rng.normal(size=(L, L))
    a = a + a.T
    x = rng.normal(size=L)
    ap = F.pack(a)
    assert ap.shape == (F.packed_size(L),)
    np.testing.assert_array_equal(F.unpack(ap, L), a)
    assert ap[4 * 5 // 2 + 2] == a[2, 4]  # (a, b), a <= b, at b(b+1)/2 + a
    y = np.empty(L)
    F._spmv(ap, x, y)
    np.testing.assert_allclose(y, a @ x, rtol=1e-13, atol=1e-13)
    F._symv(a.ravel().copy(), x, y)
    np.testing.assert_allclose(y, a @ x, rtol=1e-13, atol=1e-13)
    F._spr(ap, x)
    np.testing.assert_allclose(F.unpack(ap, L), a - np.outer(x, x), rtol=1e-13, atol=1e-13)
    full = a.ravel().copy()
    F._syr(full, x)
    np.testing.assert_array_equal(full.reshape(L, L), full.reshape(L, L).T)  # stays exactly symmetric
    np.testing.assert_allclose(full.reshape(L, L), a - np.outer(x, x), rtol=1e-13, atol=1e-13)


def test_packed_and_full_storage_agree_float64():
    cfg = F.ForceConfig(n_neurons=100, n_static=40, n_plastic=20, duration=300.0, dtype="float64", **FAST)
    results = {}
    for packed in (True, False):
        c = cfg._replace(packed=packed)
        state, targets = _setup(c, innate=True)
        metrics = [F.train_iteration(state, targets, c) for _ in range(3)]
        results[packed] = state, metrics, F.evaluate(state, targets, c)
    (sp, mp, ep), (sf, mf, ef) = results[True], results[False]
    assert ep["rate_hz"] > 1.0
    assert sp["P"].shape == (100, 210) and sf["P"].shape == (100, 20, 20)
    assert not np.array_equal(sp["w_plastic"], 0.0)
    np.testing.assert_allclose(sp["w_plastic"], sf["w_plastic"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(F.unpack(sp["P"], 20), sf["P"], rtol=1e-9, atol=1e-9)
    for a, b in zip(mp + [ep], mf + [ef]):
        assert a.keys() == b.keys()
        for k in a:
            assert abs(a[k] - b[k]) <= 1e-9 * (1 + abs(a[k])), (k, a[k], b[k])


# --------------------------------------------------------------------------- RLS = regularised least squares


def test_rls_steps_equal_regularised_least_squares():
    """One neuron: after T updates, w = (lam I + Σ r rᵀ)⁻¹ (lam w0 + Σ r y) and P = (lam I + Σ r rᵀ)⁻¹."""
    rng = np.random.default_rng(7)
    L, T, lam = 12, 80, 0.05
    R = rng.gamma(2.0, 0.01, size=(T, L))  # trace-like: positive, ~0.02
    y = rng.normal(size=T)  # residual targets: target − static current
    w0 = rng.normal(size=L)
    expect_P = np.linalg.inv(lam * np.eye(L) + R.T @ R)
    expect_w = expect_P @ (lam * w0 + R.T @ y)
    for packed, step in ((True, F._rls_step), (False, F._rls_step), (True, F._rls_step_py)):
        P = np.eye(L) / lam
        p = F.pack(P) if packed else P.ravel().copy()
        w = w0.copy()
        k, u = np.empty(L), np.empty(L)
        for t in range(T):
            w_before = w.copy()
            e, dwr = step(p, w, R[t], k, u, y[t], packed)
            assert np.isclose(e, w_before @ R[t] - y[t], rtol=1e-12, atol=1e-12)  # a-priori error
            assert np.isclose(dwr, (w - w_before) @ R[t], rtol=1e-9, atol=1e-12)  # change of the read-out
        got_P = F.unpack(p, L) if packed else p.reshape(L, L)
        np.testing.assert_allclose(w, expect_w, rtol=1e-8)
        np.testing.assert_allclose(got_P, expect_P, rtol=1e-8, atol=1e-10 * np.abs(expect_P).max())


def test_network_rls_equals_least_squares_on_its_own_traces():
    """In the network, each neuron's weights solve the regularised least-squares problem posed by
    its presynaptic traces r_t and residual targets y_t = target_t − Is_t at the learning steps,
    and the plastic current is the read-out w·r."""
    cfg = F.ForceConfig(n_neurons=60, n_static=20, n_plastic=10, duration=200.0, warmup=0.0, mu_exc=0.4,
                        mu_inh=0.3, dtype="float64", lam=0.2, dt=0.5, learn_every=4, packed=True)
    state, targets = _setup(cfg, innate=True)
    w0 = state["w_plastic"].copy()
    tr = F.run(state, targets, cfg, learn=True)
    r = _traces_r(tr.spikes, state["pre_plastic"], cfg)
    steps = np.arange(cfg.learn_every - 1, cfg.n_steps, cfg.learn_every)
    static = (tr.currents - tr.plastic)[:, steps]
    assert tr.spikes.sum() > 100
    for i in range(cfg.n_neurons):
        R = r[steps][:, state["pre_plastic"][i]]
        A = cfg.lam * np.eye(cfg.n_plastic) + R.T @ R
        w = np.linalg.solve(A, cfg.lam * w0[i] + R.T @ (targets[i, steps] - static[i]))
        np.testing.assert_allclose(state["w_plastic"][i], w, rtol=1e-7, atol=1e-7 * np.abs(w).max())
        np.testing.assert_allclose(F.unpack(state["P"][i], cfg.n_plastic), np.linalg.inv(A), rtol=1e-7,
                                   atol=1e-9 / cfg.lam)
    # without learning the plastic current is exactly the read-out w·r of the final weights
    ev = F.run(state, targets, cfg, learn=False)
    r = _traces_r(ev.spikes, state["pre_plastic"], cfg)
    readout = np.einsum("il,til->it", state["w_plastic"], r[:, state["pre_plastic"]])
    np.testing.assert_allclose(ev.plastic, readout, rtol=1e-9, atol=1e-9 * np.abs(readout).max())
    assert ev.metrics == F.evaluate(state, targets, cfg)


# --------------------------------------------------------------------------- learning


def test_small_network_learns_sinusoids(record_property):
    """200 neurons, float32, packed: evaluation correlation ≥ 0.8 within a few iterations."""
    cfg = F.ForceConfig(n_neurons=200, **FAST)
    assert cfg.packed and cfg.dtype == "float32"
    state, targets = _setup(cfg, innate=True)
    before = F.evaluate(state, targets, cfg)
    t0 = time.perf_counter()
    history = []
    for it in range(12):
        F.train_iteration(state, targets, cfg)
        history.append(F.evaluate(state, targets, cfg))
        if history[-1]["correlation"] >= 0.8:
            break
    seconds = time.perf_counter() - t0
    record_property("force_seconds_to_0.8", seconds)
    record_property("force_iterations_to_0.8", len(history))
    corr = [round(h["correlation"], 3) for h in history]
    assert abs(before["correlation"]) < 0.2
    assert history[-1]["correlation"] >= 0.8, corr
    assert 1.0 < history[-1]["rate_hz"] < 60.0, history[-1]
    assert state["w_plastic"].dtype == np.float32 and state["P"].dtype == np.float32
    assert np.isfinite(state["P"]).all() and np.isfinite(state["w_plastic"]).all()
    print(f"correlation {corr} after {len(history)} iterations, {seconds:.1f} s")


def test_float32_and_packed_memory():
    L = 40
    base = F.ForceConfig(n_neurons=50, n_static=20, n_plastic=L, duration=50.0, **FAST)
    nbytes = {}
    for dtype in ("float32", "float64"):
        for packed in (True, False):
            cfg = base._replace(dtype=dtype, packed=packed)
            state, targets = _setup(cfg)
            m = F.train_iteration(state, targets, cfg)
            assert all(np.isfinite(v) for v in m.values()), m
            assert all(state[k].dtype == np.dtype(dtype) for k in ("P", "w_plastic", "w_static", "mu", "v0"))
            nbytes[dtype, packed] = state["P"].nbytes
    assert nbytes["float32", True] == 50 * L * (L + 1) // 2 * 4
    assert nbytes["float32", False] == 50 * L * L * 4
    for dtype in ("float32", "float64"):
        ratio = nbytes[dtype, True] / nbytes[dtype, False]
        assert ratio == (L + 1) / (2 * L) and ratio < 0.52
    assert nbytes["float32", True] * 2 == nbytes["float64", True]


def test_config_mismatch_is_rejected():
    cfg = F.ForceConfig(n_neurons=50, n_static=20, n_plastic=8, duration=20.0, **FAST)
    state, targets = _setup(cfg)
    for bad in (cfg._replace(packed=False), cfg._replace(dtype="float64")):
        try:
            F.evaluate(state, targets, bad)
        except ValueError:
            pass
        else:
            raise AssertionError(f"accepted a state made for another config: {bad}")


# --------------------------------------------------------------------------- determinism


_SCRIPT = textwrap.dedent("""
    import hashlib, numpy as np
    from snnbatch.kernels import force as F
    F._PARALLEL_MIN_NEURONS = 0  # the per-step neuron update in parallel too
    cfg = F.ForceConfig(n_neurons=200, dt=0.5, learn_every=20, duration=500.0)
    state = F.init_state(cfg, np.random.default_rng(0))
    targets = F.make_targets(cfg, np.random.default_rng(1), F.innate_current(state, cfg))
    metrics = [F.train_iteration(state, targets, cfg) for _ in range(2)] + [F.evaluate(state, targets, cfg)]
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode()); h.update(state[key].tobytes())
    print(h.hexdigest(), repr(metrics))
""")


def test_same_bits_for_any_thread_count():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    out = {}
    for n in ("1", "2"):
        env["NUMBA_NUM_THREADS"] = n
        proc = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        out[n] = proc.stdout.strip()
    assert out["1"] == out["2"]
    assert "correlation" in out["1"]


def test_parallel_and_serial_neuron_update_give_same_bits(monkeypatch):
    cfg = F.ForceConfig(n_neurons=100, n_static=80, n_plastic=16, duration=200.0, **FAST)
    out = []
    for threshold in (10**9, 0):
        monkeypatch.setattr(F, "_PARALLEL_MIN_NEURONS", threshold)
        state, targets = _setup(cfg)
        metrics = [F.train_iteration(state, targets, cfg) for _ in range(2)]
        out.append((metrics, hashlib.sha256(state["w_plastic"].tobytes() + state["P"].tobytes()).hexdigest()))
    assert out[0] == out[1]
    assert out[0][0][-1]["rate_hz"] > 1.0


def test_resume_from_copied_state_is_bit_identical():
    cfg = F.ForceConfig(n_neurons=100, n_static=80, n_plastic=16, duration=200.0, **FAST)
    state, targets = _setup(cfg)
    assert F.train_iteration(state, targets, cfg)["rate_hz"] > 1.0
    checkpoint = {k: np.frombuffer(v.tobytes(), v.dtype).reshape(v.shape).copy() for k, v in state.items()}
    m1 = F.train_iteration(state, targets, cfg)
    m2 = F.train_iteration(checkpoint, targets, cfg)
    assert m1 == m2
    for k in state:
        assert hashlib.sha256(state[k].tobytes()).digest() == hashlib.sha256(checkpoint[k].tobytes()).digest(), k
