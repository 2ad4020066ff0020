"""The hand-written BPTT gradients of lif.py and alif.py against PyTorch autograd, float64, to 1e-9.

The reference is written here from the equations of the kernels' docstrings (Heaviside spikes whose
derivative is the fast-sigmoid surrogate, zero below ``surrogate_cutoff`` for the sparse backward, the
reset optionally detached, the max-over-time readout loss), so autograd, not the kernel's own backward
pass, makes its gradient. PyTorch is in the
``bench`` extra, not the ``test`` one: these tests run where it is installed (``pip install -e
".[bench]"``) and are skipped where it is not.
"""
import numpy as np
import pytest

from snnbatch.kernels import alif, events, lif

torch = pytest.importorskip("torch", reason="PyTorch (the bench extra) is not installed")

pytestmark = pytest.mark.torch


class _Spike(torch.autograd.Function):
    """Heaviside forward, fast-sigmoid surrogate backward; ``cutoff`` > 0: surrogate values below it are zero
    (the sparse backward's gradient, ``surrogate_cutoff``)."""

    @staticmethod
    def forward(ctx, x, scale, cutoff=0.0):
        ctx.save_for_backward(x)
        ctx.scale = scale
        ctx.cutoff = cutoff
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if not ctx.cutoff:
            return grad / (ctx.scale * torch.abs(x) + 1.0) ** 2, None, None
        d = ctx.scale * torch.abs(x) + 1.0
        sur = 1.0 / (d * d)
        return grad * torch.where(sur >= ctx.cutoff, sur, torch.zeros_like(sur)), None, None


def _activity_penalty(spikes, cfg):
    """The activity penalty of BPTT's training loss (README): spike counts c (samples, neurons) over the steps,
    mean over samples of Σ_i λ_u relu(c_i − θ_u)² + λ_l relu(θ_l − c_i)²."""
    c = torch.stack(spikes, 1).sum(1)
    up = cfg.activity_upper_strength * torch.relu(c - cfg.activity_upper) ** 2
    lo = cfg.activity_lower_strength * torch.relu(cfg.activity_lower - c) ** 2
    return (up + lo).sum(1).mean()


def _reference(params, dense, labels, cfg, adaptive, cutoff=0.0):
    """The max-over-time cross-entropy of the network (plus the activity penalty, if on), by autograd: (loss, grads);
    ``cutoff`` > 0: surrogate derivatives below it count as zero (the sparse backward)."""
    w = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    x = torch.tensor(dense)
    B, T, _ = x.shape
    H, O = cfg.n_hidden, cfg.n_outputs
    rho, jump = (cfg.rho, cfg.adapt_jump) if adaptive else (0.0, 0.0)
    U, I, A = (torch.zeros(B, H, dtype=x.dtype) for _ in range(3))
    Io, Uo = torch.zeros(B, O, dtype=x.dtype), torch.zeros(B, O, dtype=x.dtype)
    S = _Spike.apply(U - cfg.threshold - jump * A, cfg.surrogate_scale, cutoff)
    outs, spikes = [], []
    for n in range(T):
        spikes.append(S)  # S[n]
        I = cfg.alpha * I + x[:, n] @ w["w_in"] + (S @ w["w_rec"] if cfg.recurrent else 0.0)
        Io = cfg.alpha * Io + S @ w["w_out"]
        Uo = cfg.beta * Uo + Io
        outs.append(Uo)
        U = cfg.beta * U + I - cfg.threshold * (S.detach() if cfg.detach_reset else S)
        if adaptive:
            A = rho * A + S
        S = _Spike.apply(U - cfg.threshold - jump * A, cfg.surrogate_scale, cutoff)
    m = torch.stack(outs, 1).max(1).values
    loss = torch.nn.functional.cross_entropy(m, torch.tensor(labels))
    if getattr(cfg, "activity_upper_strength", 0) or getattr(cfg, "activity_lower_strength", 0):
        loss = loss + _activity_penalty(spikes, cfg)
    loss.backward()
    return loss.item(), {k: v.grad.numpy() for k, v in w.items()}


def _data(n_in=20, T=60, B=24, O=3, rate=0.08, seed=0):
    rng = np.random.default_rng(seed)
    dense = (rng.random((B, T, n_in)) < rate).astype(np.float64)
    return dense, events.from_dense(dense), rng.integers(0, O, B)


@pytest.mark.parametrize("adaptive", [False, True], ids=["lif", "alif"])
@pytest.mark.parametrize("recurrent", [False, True], ids=["ff", "rec"])
@pytest.mark.parametrize("detach_reset", [True, False], ids=["detached", "reset-grad"])
def test_gradient_equals_torch_autograd_float64(adaptive, recurrent, detach_reset):
    dense, ev, labels = _data()
    mod, C = (alif, alif.ALIFConfig) if adaptive else (lif, lif.LIFConfig)
    # n_blocks=3 and 24 samples: every block runs a full group of eight samples' backward passes together
    cfg = C(n_inputs=20, n_hidden=24, n_outputs=3, recurrent=recurrent, detach_reset=detach_reset,
            dtype="float64", weight_scale=20.0, n_blocks=3)
    params = mod.init_params(cfg, np.random.default_rng(3))
    loss, grads = mod.loss_and_grad(params, ev, labels, cfg)
    ref_loss, ref = _reference(params, dense, labels, cfg, adaptive)
    S = mod.forward(params, ev, cfg).spikes
    assert 0.02 < S.mean() < 0.6  # the hidden layer spikes: the surrogate path is exercised
    assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
    assert set(grads) == set(ref)
    for k in ref:
        scale = np.abs(ref[k]).max()
        assert scale > 0
        assert np.abs(grads[k] - ref[k]).max() <= 1e-9 * scale, k


@pytest.mark.parametrize("adaptive", [False, True], ids=["lif", "alif"])
@pytest.mark.parametrize("recurrent", [False, True], ids=["ff", "rec"])
def test_sparse_gradient_equals_torch_autograd_with_the_cutoff_float64(adaptive, recurrent):
    """One hidden layer, surrogate_cutoff 0.05: the gradient of the network whose surrogate is zero below it."""
    dense, ev, labels = _data()
    mod, C = (alif, alif.ALIFConfig) if adaptive else (lif, lif.LIFConfig)
    cfg = C(n_inputs=20, n_hidden=24, n_outputs=3, recurrent=recurrent, dtype="float64", weight_scale=20.0,
            n_blocks=3, surrogate_cutoff=0.05)
    params = mod.init_params(cfg, np.random.default_rng(3))
    _, grads = mod.loss_and_grad(params, ev, labels, cfg)
    _, exact = mod.loss_and_grad(params, ev, labels, cfg._replace(surrogate_cutoff=0.0))
    _, ref = _reference(params, dense, labels, cfg, adaptive, cutoff=cfg.surrogate_cutoff)
    for k in ref:
        scale = np.abs(ref[k]).max()
        assert scale > 0, k
        assert np.abs(grads[k] - ref[k]).max() <= 1e-9 * scale, k
        if k != "w_out":
            assert np.abs(exact[k] - ref[k]).max() > 1e-3 * scale, k


@pytest.mark.parametrize("adaptive", [False, True], ids=["lif", "alif"])
@pytest.mark.parametrize("recurrent", [False, True], ids=["ff", "rec"])
@pytest.mark.parametrize("cutoff", [0.0, 1e-300], ids=["dense", "sparse"])
def test_activity_penalty_gradient_equals_torch_autograd_float64(adaptive, recurrent, cutoff):
    dense, ev, labels = _data()
    mod, C = (alif, alif.ALIFConfig) if adaptive else (lif, lif.LIFConfig)
    # counts are whole numbers: bounds between them; both bounds active
    cfg = C(n_inputs=20, n_hidden=24, n_outputs=3, recurrent=recurrent, dtype="float64", weight_scale=20.0,
            n_blocks=3, surrogate_cutoff=cutoff, activity_upper=4.5, activity_upper_strength=0.02,
            activity_lower=1.5, activity_lower_strength=0.05)
    params = mod.init_params(cfg, np.random.default_rng(3))
    counts = mod.forward(params, ev, cfg).spikes.sum(axis=1)
    assert (counts > cfg.activity_upper).mean() > 0.1 and (counts < cfg.activity_lower).mean() > 0.1
    loss, grads = mod.loss_and_grad(params, ev, labels, cfg)
    ref_loss, ref = _reference(params, dense, labels, cfg, adaptive)
    plain_loss = mod.evaluate(params, ev, labels, cfg)["loss"]  # evaluation: the readout loss alone
    assert ref_loss > plain_loss + 0.1
    assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
    assert set(grads) == set(ref)
    for k in ref:
        scale = np.abs(ref[k]).max()
        assert scale > 0
        assert np.abs(grads[k] - ref[k]).max() <= 1e-9 * scale, k


def _deep_reference(params, dense, labels, cfg, adaptive, cutoff=0.0):
    """The max-over-time cross-entropy of a multi-layer network (deep.py's docstring), by autograd; ``cutoff`` > 0:
    every spike's surrogate derivative below it counts as zero (the sparse backward)."""
    w = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    x = torch.tensor(dense)
    B, T, _ = x.shape
    rho, jump = (cfg.rho, cfg.adapt_jump) if adaptive else (0.0, 0.0)
    L, O = len(cfg.n_hidden), cfg.n_outputs
    U = [torch.zeros(B, H, dtype=x.dtype) for H in cfg.n_hidden]
    I = [torch.zeros(B, H, dtype=x.dtype) for H in cfg.n_hidden]
    A = [torch.zeros(B, H, dtype=x.dtype) for H in cfg.n_hidden]
    S = [_Spike.apply(U[k] - cfg.threshold - jump * A[k], cfg.surrogate_scale, cutoff) for k in range(L)]
    Io, Uo = torch.zeros(B, O, dtype=x.dtype), torch.zeros(B, O, dtype=x.dtype)
    outs, spikes = [], [[] for _ in range(L)]
    for n in range(T):
        for k in range(L):
            spikes[k].append(S[k])  # S_k[n]
        new_S = []
        for k in range(L):
            pre = x[:, n] if k == 0 else S[k - 1]  # the layer below at the same step
            I[k] = cfg.alpha * I[k] + pre @ w["w_in" if k == 0 else f"w_in{k}"]
            if cfg.recurrent[k]:
                I[k] = I[k] + S[k] @ w["w_rec" if k == 0 else f"w_rec{k}"]
            U[k] = cfg.beta * U[k] + I[k] - cfg.threshold * (S[k].detach() if cfg.detach_reset else S[k])
            if adaptive:
                A[k] = rho * A[k] + S[k]
            new_S.append(_Spike.apply(U[k] - cfg.threshold - jump * A[k], cfg.surrogate_scale, cutoff))
        Io = cfg.alpha * Io + S[L - 1] @ w["w_out"]
        Uo = cfg.beta * Uo + Io
        outs.append(Uo)
        S = new_S
    m = torch.stack(outs, 1).max(1).values
    loss = torch.nn.functional.cross_entropy(m, torch.tensor(labels))
    if cfg.activity_upper_strength or cfg.activity_lower_strength:
        for k in range(L):  # the penalty of every hidden layer
            loss = loss + _activity_penalty(spikes[k], cfg)
    loss.backward()
    counts = [torch.stack(sk, 1).sum(1).detach().numpy() for sk in spikes]
    return loss.item(), {k: v.grad.numpy() for k, v in w.items()}, counts


@pytest.mark.parametrize("adaptive", [False, True], ids=["lif", "alif"])
@pytest.mark.parametrize("sizes, recurrent", [((24, 16), (True, False)), ((24, 16), (False, True)),
                                              ((20, 16, 12), (True, False, True))], ids=["2-rf", "2-fr", "3-rfr"])
@pytest.mark.parametrize("detach_reset", [True, False], ids=["detached", "reset-grad"])
def test_deep_gradient_equals_torch_autograd_float64(adaptive, sizes, recurrent, detach_reset):
    from snnbatch.kernels import deep

    dense, ev, labels = _data()
    C = deep.DeepALIFConfig if adaptive else deep.DeepLIFConfig
    cfg = C(n_inputs=20, n_hidden=sizes, n_outputs=3, recurrent=recurrent, detach_reset=detach_reset,
            dtype="float64", weight_scale=20.0, n_blocks=3)
    params = deep.init_params(cfg, np.random.default_rng(3))
    loss, grads = deep.loss_and_grad(params, ev, labels, cfg)
    ref_loss, ref, _ = _deep_reference(params, dense, labels, cfg, adaptive)
    assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
    assert set(grads) == set(ref)
    for k in ref:
        scale = np.abs(ref[k]).max()
        assert scale > 0, k  # every layer's weights reach the loss
        assert np.abs(grads[k] - ref[k]).max() <= 1e-9 * scale, k


@pytest.mark.parametrize("adaptive", [False, True], ids=["lif", "alif"])
@pytest.mark.parametrize("sizes, recurrent", [((24, 16), (True, False)), ((24, 16), (False, True)),
                                              ((20, 16, 12), (True, False, True))], ids=["2-rf", "2-fr", "3-rfr"])
@pytest.mark.parametrize("detach_reset", [True, False], ids=["detached", "reset-grad"])
def test_deep_sparse_gradient_equals_torch_autograd_with_the_cutoff_float64(adaptive, sizes, recurrent,
                                                                            detach_reset):
    """surrogate_cutoff > 0 is the gradient of the network whose surrogate is zero below the cut-off."""
    from snnbatch.kernels import deep

    dense, ev, labels = _data()
    C = deep.DeepALIFConfig if adaptive else deep.DeepLIFConfig
    cfg = C(n_inputs=20, n_hidden=sizes, n_outputs=3, recurrent=recurrent, detach_reset=detach_reset,
            dtype="float64", weight_scale=20.0, n_blocks=3, surrogate_cutoff=0.05)
    params = deep.init_params(cfg, np.random.default_rng(3))
    loss, grads = deep.loss_and_grad(params, ev, labels, cfg)
    _, exact = deep.loss_and_grad(params, ev, labels, cfg._replace(surrogate_cutoff=0.0))
    ref_loss, ref, _ = _deep_reference(params, dense, labels, cfg, adaptive, cutoff=cfg.surrogate_cutoff)
    assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
    assert set(grads) == set(ref)
    for k in ref:
        scale = np.abs(ref[k]).max()
        assert scale > 0, k  # every layer's weights still reach the loss
        assert np.abs(grads[k] - ref[k]).max() <= 1e-9 * scale, k
        if k != "w_out":  # and the cut-off changes every hidden layer's gradient
            assert np.abs(exact[k] - ref[k]).max() > 1e-3 * scale, k


@pytest.mark.parametrize("adaptive", [False, True], ids=["lif", "alif"])
@pytest.mark.parametrize("sizes, recurrent", [((24, 16), (True, False)), ((20, 16, 12), (False, True, True))],
                         ids=["2-rf", "3-frr"])
@pytest.mark.parametrize("cutoff", [0.0, 0.05], ids=["exact", "sparse"])
def test_deep_activity_penalty_gradient_equals_torch_autograd_float64(adaptive, sizes, recurrent, cutoff):
    from snnbatch.kernels import deep

    dense, ev, labels = _data()
    C = deep.DeepALIFConfig if adaptive else deep.DeepLIFConfig
    cfg = C(n_inputs=20, n_hidden=sizes, n_outputs=3, recurrent=recurrent, dtype="float64", weight_scale=20.0,
            n_blocks=3, activity_upper=4.5, activity_upper_strength=0.02, activity_lower=1.5,
            activity_lower_strength=0.05, surrogate_cutoff=cutoff)
    params = deep.init_params(cfg, np.random.default_rng(3))
    loss, grads = deep.loss_and_grad(params, ev, labels, cfg)
    ref_loss, ref, counts = _deep_reference(params, dense, labels, cfg, adaptive, cutoff=cutoff)
    for c in counts:  # both bounds active in every layer
        assert (c > cfg.activity_upper).mean() > 0.05 and (c < cfg.activity_lower).mean() > 0.05
    assert ref_loss > deep.evaluate(params, ev, labels, cfg)["loss"] + 0.1
    assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
    for k in ref:
        scale = np.abs(ref[k]).max()
        assert scale > 0, k
        assert np.abs(grads[k] - ref[k]).max() <= 1e-9 * scale, k


# --------------------------------------------------------------------------- float32: as close as PyTorch's own


def _relative_errors(grads, truth):
    return {k: float(np.abs(grads[k] - truth[k]).max() / np.abs(truth[k]).max()) for k in truth}


@pytest.mark.parametrize("adaptive", [False, True], ids=["lif", "alif"])
@pytest.mark.parametrize("layers", [1, 2], ids=["one-layer", "two-layers"])
def test_float32_gradient_is_as_close_to_float64_autograd_as_pytorch_float32(adaptive, layers):
    """The kernel's float32 gradient errs from float64 autograd (the truth) by no more than 10 times what the
    same network in PyTorch's float32 errs, weight by weight."""
    from snnbatch.kernels import deep

    dense, ev, labels = _data()
    if layers == 1:
        mod, C = (alif, alif.ALIFConfig) if adaptive else (lif, lif.LIFConfig)
        cfg = C(n_inputs=20, n_hidden=24, n_outputs=3, recurrent=True, dtype="float64", weight_scale=20.0, n_blocks=3)
        params = mod.init_params(cfg, np.random.default_rng(3))

        def reference(p, x, c):
            return _reference(p, x, labels, c, adaptive)[:2]
    else:
        mod = deep
        C = deep.DeepALIFConfig if adaptive else deep.DeepLIFConfig
        cfg = C(n_inputs=20, n_hidden=(24, 16), n_outputs=3, recurrent=(True, False), dtype="float64",
                weight_scale=20.0, n_blocks=3)
        params = deep.init_params(cfg, np.random.default_rng(3))

        def reference(p, x, c):
            return _deep_reference(p, x, labels, c, adaptive)[:2]

    _, truth = reference(params, dense, cfg)
    cfg32 = cfg._replace(dtype="float32")
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    _, theirs = reference(p32, dense.astype(np.float32), cfg32)
    _, mine = mod.loss_and_grad(p32, ev, labels, cfg32)
    assert all(mine[k].dtype == np.float32 for k in mine)
    e_mine, e_theirs = _relative_errors(mine, truth), _relative_errors(theirs, truth)
    for k in truth:
        # both are float32 round-off, not a wrong gradient: here PyTorch's is 4e-7 to 7e-4 of the largest entry
        # (the surrogate's steep derivative amplifies it), the kernel's 2e-7 to 8e-4
        assert e_theirs[k] < 1e-2, (k, e_theirs)
        assert e_mine[k] <= 10 * e_theirs[k] + 1e-6, (k, e_mine[k], e_theirs[k])
