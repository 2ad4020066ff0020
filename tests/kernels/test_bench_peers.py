"""The deep PyTorch peers of the SHD benchmark (benchmarks/peers.py) build kernels/deep.py's network: with the
activity penalty on, the SpyTorch-style peer's float64 loss and gradients, by autograd, equal deep.py's."""
from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")
peers = pytest.importorskip("snnbatch.benchmarks.peers", reason="the benchmarks/ folder of a source checkout")

from snnbatch.kernels import deep, events  # noqa: E402


def _data(n_in=20, T=60, B=24, O=3, rate=0.08, seed=0):
    rng = np.random.default_rng(seed)
    dense = (rng.random((B, T, n_in)) < rate).astype(np.float64)
    return dense, events.from_dense(dense.astype(np.uint8)), rng.integers(0, O, B)


def _peer_loss_and_grad(cfg, params, dense, labels):
    model = peers.DeepSpyTorchLIF(cfg, params)
    loss = peers.deep_loss(model, model(torch.tensor(dense)), torch.tensor(labels))
    loss.backward()
    grads = {"w_out": model.w_out.grad.numpy()}
    for k, rec in enumerate(cfg.recurrent):
        a, b = peers._layer_names(k)
        grads[a] = model.w_in[k].grad.numpy()
        if rec:
            grads[b] = model.w_rec[k].grad.numpy()
    return loss.item(), grads, model.counts


@pytest.mark.parametrize("recurrent", [(True, True), (True, False)], ids=["rr", "rf"])
def test_regularised_deep_peer_equals_kernel_float64(recurrent):
    dense, ev, labels = _data()
    # counts are whole numbers: bounds between them, both active in both layers
    cfg = deep.DeepLIFConfig(n_inputs=20, n_hidden=(24, 16), n_outputs=3, recurrent=recurrent, dtype="float64",
                             weight_scale=20.0, n_blocks=3, activity_upper=4.5, activity_upper_strength=0.02,
                             activity_lower=1.5, activity_lower_strength=0.05)
    params = deep.init_params(cfg, np.random.default_rng(3))
    loss, grads = deep.loss_and_grad(params, ev, labels, cfg)
    ref_loss, ref, counts = _peer_loss_and_grad(cfg, params, dense, labels)
    assert [tuple(c.shape) for c in counts] == [(24, H) for H in cfg.n_hidden]
    for c in counts:
        assert (c > cfg.activity_upper).double().mean() > 0.1 and (c < cfg.activity_lower).double().mean() > 0.1
    assert ref_loss > deep.evaluate(params, ev, labels, cfg)["loss"] + 0.1  # the penalty is in both losses
    assert abs(loss - ref_loss) <= 1e-12 * abs(ref_loss)
    assert set(grads) == set(ref)
    for k in ref:
        scale = np.abs(ref[k]).max()
        assert scale > 0, k
        assert np.abs(grads[k] - ref[k]).max() <= 1e-9 * scale, k


def test_unregularised_deep_peers_keep_no_counts():
    dense, ev, labels = _data()
    cfg = deep.DeepLIFConfig(n_inputs=20, n_hidden=(24, 16), n_outputs=3, recurrent=(True, True), dtype="float64",
                             weight_scale=20.0, n_blocks=3)
    params = deep.init_params(cfg, np.random.default_rng(3))
    loss, grads = deep.loss_and_grad(params, ev, labels, cfg)
    model = peers.DeepSpyTorchLIF(cfg, params)
    uo = model(torch.tensor(dense))
    assert model.counts is None
    ref = peers.deep_loss(model, uo, torch.tensor(labels))
    assert ref.item() == peers.max_readout_loss(uo, torch.tensor(labels)).item()
    assert abs(loss - ref.item()) <= 1e-12 * abs(ref.item())


@pytest.mark.parametrize("name, module", [("snntorch", "snntorch"), ("norse", "norse")])
def test_regularised_snntorch_and_norse_peers_add_the_penalty(name, module):
    """float32, as the benchmark runs them; their networks differ slightly from deep.py's (module docstring of
    peers.py), so only the penalty's presence and the counts are checked."""
    pytest.importorskip(module)
    dense, _, labels = _data()
    cfg = deep.DeepLIFConfig(n_inputs=20, n_hidden=(24, 16), n_outputs=3, recurrent=(True, False), dtype="float32",
                             weight_scale=20.0, activity_upper=4.5, activity_upper_strength=0.02,
                             activity_lower=1.5, activity_lower_strength=0.05)
    params = deep.init_params(cfg, np.random.default_rng(3))
    model = peers.DEEP_PEERS[name](cfg, params)
    x, y = torch.tensor(dense, dtype=torch.float32), torch.tensor(labels)  # as the benchmark runs them
    uo = model(x)
    assert [tuple(c.shape) for c in model.counts] == [(24, H) for H in cfg.n_hidden]
    assert all(float(c.detach().min()) >= 0 and torch.equal(c, c.round()) for c in model.counts)  # spike counts
    loss = peers.deep_loss(model, uo, y)
    penalty = peers.activity_penalty(model.counts, cfg)
    assert penalty.item() > 0
    assert abs(loss.item() - peers.max_readout_loss(uo, y).item() - penalty.item()) <= 1e-6 * loss.item()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    unreg = peers.DEEP_PEERS[name](cfg._replace(activity_upper_strength=0.0, activity_lower_strength=0.0), params)
    unreg(x)
    assert unreg.counts is None
