"""Readouts (max, mean, last, per_step, count, mse): each loss's value against a NumPy reference computed
from the forward pass, and each hand-written gradient against central finite differences in float64."""
import numpy as np
import pytest

from snnbatch.kernels import alif, events, lif, readout


def _data(n_in=8, T=30, B=5, O=3, rate=0.15, seed=0, kind="max"):
    """Input events and labels, or for ``mse`` target trajectories (smooth, of the readout's size)."""
    rng = np.random.default_rng(seed)
    ev = events.from_dense((rng.random((B, T, n_in)) < rate).astype(float))
    if kind == "mse":
        t = np.arange(T) / T
        return ev, np.sin(2 * np.pi * (t[None, :, None] + rng.random((B, 1, O))))
    return ev, rng.integers(0, O, B)


def _cfg(model, recurrent, kind, **kw):
    common = dict(n_inputs=8, n_hidden=6, n_outputs=3, recurrent=recurrent, smooth=True, detach_reset=False,
                  dtype="float64", surrogate_scale=5.0, weight_scale=30.0, n_blocks=2, readout=kind, **kw)
    if model == "alif":
        return alif.ALIFConfig(tau_adapt=20e-3, adapt_jump=0.5, **common)
    return lif.LIFConfig(**common)


def _xent(logits, labels):
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(logp, labels[..., None], axis=-1)[..., 0], logp


def reference_loss(kind, S, Uo, w_out, labels, cfg):
    """The readout's loss and accuracy from the forward pass's spikes S (B, T, H) and voltages Uo (B, T, O)."""
    B, T, _ = Uo.shape
    if kind == "mse":
        return float(((Uo - labels) ** 2).mean()), 0.0
    if kind == "per_step":
        loss, logp = _xent(Uo, np.repeat(labels[:, None], T, axis=1))
        pred = logp.sum(axis=1).argmax(axis=1)
        return float(loss.mean(axis=1).mean()), float((pred == labels).mean())
    logits = {"max": lambda: Uo.max(axis=1), "mean": lambda: Uo.mean(axis=1), "last": lambda: Uo[:, -1],
              "count": lambda: S.sum(axis=1) @ w_out}[kind]()  # count: the spike counts through w_out
    loss, _ = _xent(logits, labels)
    return float(loss.mean()), float((logits.argmax(axis=1) == labels).mean())


MODULES = {"lif": lif, "alif": alif}


@pytest.mark.parametrize("kind", readout.READOUTS)
@pytest.mark.parametrize("model", ["lif", "alif"])
def test_the_loss_is_the_readout_of_the_forward_pass(model, kind):
    ev, labels = _data(kind=kind)
    mod = MODULES[model]
    cfg = _cfg(model, True, kind)
    params = mod.init_params(cfg, np.random.default_rng(1))
    tr = mod.forward(params, ev, cfg)
    want_loss, want_acc = reference_loss(kind, tr.spikes, tr.readout, params["w_out"], labels, cfg)
    got = mod.evaluate(params, ev, labels, cfg)
    assert got["loss"] == pytest.approx(want_loss, rel=1e-10)
    assert got["accuracy"] == want_acc
    loss, acc, _ = mod.loss_acc_grad(params, ev, labels, cfg)
    assert (loss, acc) == (got["loss"], got["accuracy"])


@pytest.mark.parametrize("kind", readout.READOUTS)
@pytest.mark.parametrize("model, recurrent", [("lif", False), ("lif", True), ("alif", True)])
def test_gradient_matches_central_finite_differences(model, recurrent, kind):
    ev, labels = _data(kind=kind)
    mod = MODULES[model]
    cfg = _cfg(model, recurrent, kind)
    params = mod.init_params(cfg, np.random.default_rng(1))
    _, grads = mod.loss_and_grad(params, ev, labels, cfg)
    rng = np.random.default_rng(2)
    h = 1e-6
    for name, p in params.items():
        scale = np.abs(grads[name]).max()
        assert scale > 1e-4, name
        flat = rng.choice(p.size, size=min(6, p.size), replace=False)
        for idx in map(lambda f: np.unravel_index(f, p.shape), flat):
            q = {k: v.copy() for k, v in params.items()}
            q[name][idx] += h
            lp = mod.evaluate(q, ev, labels, cfg)["loss"]
            q[name][idx] -= 2 * h
            lm = mod.evaluate(q, ev, labels, cfg)["loss"]
            numeric = (lp - lm) / (2 * h)
            err = abs(grads[name][idx] - numeric) / max(abs(numeric), 1e-2 * scale)
            assert err < 1e-6, (name, idx, grads[name][idx], numeric, err)


def test_readouts_differ_and_float32_follows_float64():
    losses = {}
    for kind in readout.READOUTS:
        ev, labels = _data(kind=kind)
        cfg64 = _cfg("lif", True, kind)
        p64 = lif.init_params(cfg64, np.random.default_rng(1))
        l64, g64 = lif.loss_and_grad(p64, ev, labels, cfg64)
        cfg32 = cfg64._replace(dtype="float32")
        l32, g32 = lif.loss_and_grad({k: v.astype(np.float32) for k, v in p64.items()}, ev, labels, cfg32)
        assert l32 == pytest.approx(l64, rel=1e-4), kind
        for k in g64:
            assert g32[k].dtype == np.float32
            np.testing.assert_allclose(g32[k], g64[k], rtol=1e-2, atol=1e-3 * np.abs(g64[k]).max(), err_msg=kind)
        losses[kind] = l64
    assert len(set(losses.values())) == len(losses)


def test_mse_takes_targets_of_the_readouts_shape_and_index_selects_them():
    ev, targets = _data(kind="mse")
    cfg = _cfg("lif", True, "mse")
    params = lif.init_params(cfg, np.random.default_rng(1))
    index = np.array([3, 1])
    whole = lif.loss_and_grad(params, ev, targets, cfg, index)
    given = lif.loss_and_grad(params, ev, targets[index], cfg, index)
    assert whole[0] == given[0] and all(np.array_equal(whole[1][k], given[1][k]) for k in params)
    assert lif.evaluate(params, ev, targets, cfg)["accuracy"] == 0.0
    with pytest.raises(ValueError, match=r"readout mse needs target trajectories \(samples, 30 steps, 3 outputs\)"):
        lif.evaluate(params, ev, targets[:, :, :2], cfg)


def test_an_unknown_readout_is_refused():
    ev, labels = _data()
    cfg = _cfg("lif", False, "median")
    with pytest.raises(ValueError, match="unknown readout 'median'"):
        lif.evaluate(lif.init_params(cfg, np.random.default_rng(1)), ev, labels, cfg)
