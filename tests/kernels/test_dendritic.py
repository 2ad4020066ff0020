"""Two-compartment dendritic network: spiking, the discrete adjoint against finite differences, training."""
import numpy as np

from snnbatch.kernels import dendritic, optim


def _const_input(cfg, value=1.0):
    return {"inputs": np.full((cfg.n_steps, cfg.n_inputs), value)}


def test_soma_spikes_repeatedly_and_resets():
    """Documented parameters: rest is a fixed point, a constant input gives repeated spikes that reset."""
    cfg = dendritic.DendriticConfig(n_neurons=1, n_inputs=1, duration=500.0, recurrent=False)
    task = _const_input(cfg)
    # no input: the all-zero resting state stays put (up to the round-off of a·b² + c = 0)
    rest = dendritic.forward({"w_in": np.zeros((1, 1))}, task, cfg)
    assert np.abs(rest.v_soma).max() < 1e-12 and np.abs(rest.v_dend).max() < 1e-12
    # current into the isolated soma, and input through the dendrite (the network's path)
    soma_only = cfg._replace(bias=(0.1, 0.0), sigma=(0.0, 0.0))
    for traces in (
        dendritic.forward({"w_in": np.zeros((1, 1))}, task, soma_only),
        dendritic.forward({"w_in": np.full((1, 1), 0.1)}, task, cfg),
    ):
        v = traces.v_soma[:, 0]
        up = np.flatnonzero((v[1:] > cfg.spike_threshold) & (v[:-1] <= cfg.spike_threshold))
        assert len(up) >= 10  # ≥ 20 Hz over 0.5 s
        assert v.max() < 1.2 and np.all(np.isfinite(v))
        # every spike resets: between consecutive upward crossings v falls back near rest
        for a, b in zip(up[:-1], up[1:]):
            assert v[a:b].min() < 0.1
        # and the spikes keep coming (not a single transient): some in the last fifth
        assert up[-1] > 0.8 * len(v)


def test_default_network_spikes():
    cfg = dendritic.DendriticConfig(n_neurons=20, duration=500.0)
    rng = np.random.default_rng(0)
    task = dendritic.make_task(cfg, rng)
    params = dendritic.init_params(cfg, rng)
    counts = dendritic.count_spikes(dendritic.forward(params, task, cfg).v_soma, cfg.spike_threshold)
    assert np.count_nonzero(counts >= 3) >= 15
    metrics = dendritic.evaluate(params, task, cfg)
    assert 5.0 < metrics["rate_hz"] < 100.0
    assert set(metrics) >= {"loss", "correlation", "rate_hz"}


def test_teacher_reproduces_targets_exactly_and_deterministically():
    cfg = dendritic.DendriticConfig(n_neurons=5, n_inputs=4, duration=100.0)
    task = dendritic.make_task(cfg, np.random.default_rng(3))
    teacher = {k.split("/", 1)[1]: v for k, v in task.items() if k.startswith("teacher/")}
    assert set(teacher) == set(dendritic.param_names(cfg))
    assert dendritic.loss(teacher, task, cfg) == 0.0
    assert dendritic.evaluate(teacher, task, cfg)["correlation"] > 0.999
    again = dendritic.make_task(cfg, np.random.default_rng(3))
    assert all(np.array_equal(task[k], again[k]) for k in task)
    params = dendritic.init_params(cfg, np.random.default_rng(4))
    l1, g1 = dendritic.loss_and_grad(params, task, cfg)
    l2, g2 = dendritic.loss_and_grad(params, task, cfg)
    assert l1 == l2 and all(np.array_equal(g1[k], g2[k]) for k in g1)
    assert l1 == dendritic.loss(params, task, cfg) == dendritic.evaluate(params, task, cfg)["loss"]


def test_adjoint_gradient_matches_central_differences():
    """Recurrent network, every parameter kind (sigma too), float64: relative error < 1e-5."""
    cfg = dendritic.DendriticConfig(
        n_neurons=4, n_inputs=3, duration=50.0, recurrent=True, train_sigma=True, w_rec_std=0.5, w_in_mean=1.0,
    )
    rng = np.random.default_rng(1)
    task = dendritic.make_task(cfg, rng)
    params = dendritic.init_params(cfg, rng)
    # the student spikes, so the gradient goes through spikes and recurrent synapses
    assert dendritic.count_spikes(dendritic.forward(params, task, cfg).v_soma, 0.5).sum() >= 4
    loss, grads = dendritic.loss_and_grad(params, task, cfg)
    assert loss > 0.0
    assert set(grads) == set(params) == {"w_in", "w_soma", "w_dend", "sigma"}
    pick = np.random.default_rng(2)
    h = 1e-6
    for name, p in params.items():
        g = grads[name]
        assert g.shape == p.shape and g.dtype == p.dtype
        flat = np.flatnonzero(np.abs(g) > 1e-2 * np.abs(g).max())
        for k in pick.choice(flat, size=min(5, flat.size), replace=False):
            idx = np.unravel_index(k, p.shape)
            plus = {n: v.copy() for n, v in params.items()}
            minus = {n: v.copy() for n, v in params.items()}
            plus[name][idx] += h
            minus[name][idx] -= h
            numeric = (dendritic.loss(plus, task, cfg) - dendritic.loss(minus, task, cfg)) / (2 * h)
            rel = abs(g[idx] - numeric) / abs(numeric)
            assert rel < 1e-5, (name, idx, g[idx], numeric, rel)


def test_recurrence_off_has_only_input_weights():
    cfg = dendritic.DendriticConfig(n_neurons=3, n_inputs=2, duration=20.0, recurrent=False)
    rng = np.random.default_rng(5)
    task = dendritic.make_task(cfg, rng)
    params = dendritic.init_params(cfg, rng)
    assert set(params) == {"w_in"}
    _, grads = dendritic.loss_and_grad(params, task, cfg)
    assert set(grads) == {"w_in"}
    # recurrent=True with zero recurrent weights is the same network
    rec = cfg._replace(recurrent=True)
    zeros = dict(params, w_soma=np.zeros((3, 3)), w_dend=np.zeros((3, 3)))
    a = dendritic.forward(params, task, cfg)
    b = dendritic.forward(zeros, task, rec)
    np.testing.assert_allclose(a.v_soma, b.v_soma, rtol=0, atol=1e-14)


def test_plain_python_matches_compiled():
    cfg = dendritic.DendriticConfig(n_neurons=3, n_inputs=2, duration=5.0, recurrent=True, w_rec_std=0.5)
    rng = np.random.default_rng(7)
    task = dendritic.make_task(cfg, rng)
    params = dendritic.init_params(cfg, rng)
    w_in, w_soma, w_dend, sigma, inputs = dendritic._arrays(params, task, cfg)
    N, T = cfg.n_neurons, cfg.n_steps
    K = dendritic._consts(cfg, np.float64)
    x0 = dendritic._initial_state(cfg, N, np.float64)
    fwd_args = (x0, inputs, w_in.T.copy(), w_soma.T.copy(), w_dend.T.copy(), sigma, K,
                cfg.syn_threshold, cfg.syn_width, cfg.dt, True)
    xs = []
    for fn in (dendritic._forward_py, dendritic._forward):
        X = np.empty((T + 1, 6, N))
        fn(*fwd_args, X, np.empty((9, N)))
        xs.append(X)
    np.testing.assert_allclose(xs[0], xs[1], rtol=1e-12, atol=1e-15)
    X = xs[1]
    targets = task["targets"]
    scale = 1.0 / (T * N)
    assert abs(dendritic._loss_py(X, targets, scale) - dendritic._loss(X, targets, scale)) <= 1e-15
    outs = []
    for fn in (dendritic._backward_py, dendritic._backward):
        g = [np.zeros_like(w_in), np.zeros_like(w_soma), np.zeros_like(w_dend), np.zeros_like(sigma)]
        work = [np.zeros((6, N)), np.zeros((6, N)), np.zeros(N), np.zeros(N), np.zeros(N)]
        fn(X, inputs, targets, w_in, w_soma, w_dend, sigma, K, cfg.syn_threshold, cfg.syn_width, cfg.dt, True,
           scale, *g, *work)
        outs.append(g)
    for a, b in zip(*outs):
        assert np.abs(a).max() > 0.0
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14 * np.abs(b).max())


def test_adam_training_lowers_the_loss_steadily():
    """Student starts near a spiking teacher (5% relative weight noise); Adam on the adjoint gradient."""
    cfg = dendritic.DendriticConfig(n_neurons=4, n_inputs=5, duration=50.0, recurrent=True)
    rng = np.random.default_rng(0)
    task = dendritic.make_task(cfg, rng)
    assert dendritic.count_spikes(task["targets"], cfg.spike_threshold).sum() >= 3
    params = {}
    for key, w in task.items():
        if key.startswith("teacher/"):
            params[key.split("/", 1)[1]] = w + 0.05 * rng.normal(0.0, w.std() + 1e-3, w.shape)
    state = optim.adam_init(params)
    losses = []
    for _ in range(100):
        value, grads = dendritic.loss_and_grad(params, task, cfg)
        losses.append(value)
        optim.adam_step(params, grads, state, lr=5e-4)
    final = dendritic.loss(params, task, cfg)
    assert final < 0.5 * losses[0], (losses[0], final)
    quarters = [np.mean(losses[i:i + 25]) for i in range(0, 100, 25)]
    assert all(b < a for a, b in zip(quarters, quarters[1:])), quarters
    assert dendritic.evaluate(params, task, cfg)["correlation"] > 0.9


def test_float32_runs_finite_and_close_to_float64():
    cfg64 = dendritic.DendriticConfig(n_neurons=6, n_inputs=4, duration=100.0, recurrent=True)
    cfg32 = cfg64._replace(dtype="float32")
    task = dendritic.make_task(cfg32, np.random.default_rng(11))
    params = dendritic.init_params(cfg32, np.random.default_rng(12))
    assert all(v.dtype == np.float32 for v in params.values()) and task["targets"].dtype == np.float32
    traces = dendritic.forward(params, task, cfg32)
    for tr in traces:
        assert tr.dtype == np.float32 and np.all(np.isfinite(tr))
    loss32, grads = dendritic.loss_and_grad(params, task, cfg32)
    assert np.isfinite(loss32) and loss32 > 0.0
    for name, g in grads.items():
        assert g.dtype == np.float32 and g.shape == params[name].shape and np.all(np.isfinite(g))
        assert np.abs(g).max() > 0.0
    # same problem in float64: the somatic traces agree closely
    p64 = {k: v.astype(np.float64) for k, v in params.items()}
    t64 = {k: v.astype(np.float64) for k, v in task.items()}
    v64 = dendritic.forward(p64, t64, cfg64).v_soma
    assert np.corrcoef(v64.ravel(), traces.v_soma.astype(np.float64).ravel())[0, 1] > 0.9
    assert np.isfinite(dendritic.evaluate(params, task, cfg32)["correlation"])


def test_simulate_matches_forward_bit_for_bit():
    """Without recurrence, simulate (chunked, parallel, no traces) is forward's last state and spike counts."""
    for dtype in ("float64", "float32"):
        # 300 neurons: two full chunks and a partial one
        cfg = dendritic.DendriticConfig(n_neurons=300, n_inputs=4, duration=200.0, recurrent=False, dtype=dtype,
                                        w_in_mean=1.0)
        rng = np.random.default_rng(21)
        task = {"inputs": dendritic.make_inputs(cfg, rng)}
        params = dendritic.init_params(cfg, rng)
        traces = dendritic.forward(params, task, cfg)
        final, spikes = dendritic.simulate(params, task, cfg)
        assert final.dtype == np.dtype(dtype) and final.shape == (6, 300)
        assert np.array_equal(final, np.stack([tr[-1] for tr in traces]))
        counts = dendritic.count_spikes(traces.v_soma, cfg.spike_threshold)
        assert counts.sum() > 0 and np.array_equal(spikes, counts)
    # recurrent networks go through forward
    rec = cfg._replace(n_neurons=5, recurrent=True, dtype="float64")
    p = dendritic.init_params(rec, np.random.default_rng(3))
    t = {"inputs": dendritic.make_inputs(rec, np.random.default_rng(4))}
    final, spikes = dendritic.simulate(p, t, rec)
    traces = dendritic.forward(p, t, rec)
    assert np.array_equal(final[0], traces.v_soma[-1])
    assert np.array_equal(spikes, dendritic.count_spikes(traces.v_soma, rec.spike_threshold))


def test_simulate_plain_python_matches_compiled_and_thread_count():
    import numba

    cfg = dendritic.DendriticConfig(n_neurons=130, n_inputs=3, duration=20.0, recurrent=False, w_in_mean=2.0)
    rng = np.random.default_rng(8)
    task = {"inputs": dendritic.make_inputs(cfg, rng)}
    params = dendritic.init_params(cfg, rng)
    w_in, _, _, sigma, inputs = dendritic._arrays(params, task, cfg)
    args = (dendritic._initial_state(cfg, 130, np.float64), inputs, w_in.T.copy(), sigma,
            dendritic._consts(cfg, np.float64), cfg.dt, cfg.spike_threshold)
    outs = []
    for fn in (dendritic._forward_ff_py, dendritic._forward_ff):
        final, spikes = np.empty((6, 130)), np.empty(130, np.int64)
        fn(*args, final, spikes)
        outs.append((final, spikes))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-12, atol=1e-15)
    assert np.array_equal(outs[0][1], outs[1][1])
    before = numba.get_num_threads()
    try:
        results = []
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            results.append(dendritic.simulate(params, task, cfg))
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(a, b) for r in results[1:] for a, b in zip(results[0], r))
