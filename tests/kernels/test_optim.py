"""Learning-rate schedules, gradient clipping by the global norm, and decoupled weight decay (AdamW)."""
import math

import numpy as np
import pytest

from snnbatch.kernels import optim


def _lrs(total, **kw):
    return [optim.scheduled_lr(0.1, i, total, **kw) for i in range(total)]


def test_constant_is_the_rate_itself():
    assert _lrs(5) == [0.1] * 5


def test_warmup_rises_linearly_then_holds():
    lrs = _lrs(8, warmup=4)
    np.testing.assert_allclose(lrs, [0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1, 0.1], rtol=0, atol=1e-15)


def test_step_drops_by_factor_every_n_after_warmup():
    lrs = _lrs(9, kind="step", warmup=2, every=3, factor=0.5)
    np.testing.assert_allclose(lrs, [0.05, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025], rtol=1e-15)


def test_cosine_goes_from_lr_towards_to():
    total, warmup = 12, 2
    lrs = _lrs(total, kind="cosine", warmup=warmup, to=0.1)
    assert lrs[warmup] == pytest.approx(0.1)
    span = total - warmup
    for i in range(warmup, total):
        j = i - warmup
        assert lrs[i] == pytest.approx(0.1 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * j / span))), rel=1e-14)
    assert all(a > b for a, b in zip(lrs[warmup:], lrs[warmup + 1:]))  # strictly falling
    assert lrs[-1] > 0.01  # one step short of to·lr
    # half way through the cosine part: the mean of lr and to·lr
    assert optim.scheduled_lr(0.1, warmup + span // 2, total, "cosine", warmup, to=0.1) == pytest.approx(0.055)


def test_a_step_schedule_needs_every():
    with pytest.raises(ValueError, match="every"):
        optim.scheduled_lr(0.1, 0, 5, "step")
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        optim.scheduled_lr(0.1, 0, 5, "linear")


def test_clipping_scales_to_the_global_norm_and_keeps_direction():
    rng = np.random.default_rng(0)
    grads = {"a": rng.normal(size=(3, 4)).astype(np.float32), "b": rng.normal(size=5).astype(np.float32)}
    norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
    clipped, before = optim.clip_by_global_norm(grads, 0.5)
    assert before == pytest.approx(norm, rel=1e-12)
    assert optim.global_norm(clipped) == pytest.approx(0.5, rel=1e-6)
    for k in grads:
        assert clipped[k].dtype == np.float32
        np.testing.assert_allclose(clipped[k], grads[k] * (0.5 / norm), rtol=1e-6)
    # below the limit: the very same arrays, untouched
    same, _ = optim.clip_by_global_norm(grads, norm * 1.01)
    assert all(same[k] is grads[k] for k in grads)


def _adamw_reference(p, grads, lr, wd, b1=0.9, b2=0.999, eps=1e-8):
    """PyTorch's documented AdamW, one scalar at a time in float64."""
    p = [float(x) for x in p]
    m = [0.0] * len(p)
    v = [0.0] * len(p)
    for t, g in enumerate(grads, start=1):
        for i in range(len(p)):
            p[i] -= lr * wd * p[i]
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            p[i] -= lr * (m[i] / (1 - b1**t)) / (math.sqrt(v[i] / (1 - b2**t)) + eps)
    return np.array(p)


def test_adamw_matches_the_reference_algorithm():
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=6)
    grads = [rng.normal(size=6) for _ in range(5)]
    params = {"w": p0.copy()}
    state = optim.adam_init(params)
    for g in grads:
        optim.adam_step(params, {"w": g}, state, 1e-2, weight_decay=0.3)
    np.testing.assert_allclose(params["w"], _adamw_reference(p0, grads, 1e-2, 0.3), rtol=1e-12, atol=1e-15)
    assert int(state["t"]) == 5


def test_zero_weight_decay_is_adam_bit_for_bit_and_decay_shrinks():
    rng = np.random.default_rng(2)
    p0 = rng.normal(size=(4, 3)).astype(np.float32)
    g = rng.normal(size=(4, 3)).astype(np.float32)
    plain, decayed = {"w": p0.copy()}, {"w": p0.copy()}
    s1, s2 = optim.adam_init(plain), optim.adam_init(decayed)
    optim.adam_step(plain, {"w": g}, s1, 1e-3)
    optim.adam_step(decayed, {"w": g}, s2, 1e-3, weight_decay=0.0)
    assert plain["w"].tobytes() == decayed["w"].tobytes()
    # SGD on a zero gradient with decay: exactly the decay factor per step
    w = {"w": p0.copy()}
    for _ in range(3):
        optim.sgd_step(w, {"w": np.zeros_like(p0)}, optim.sgd_init(w), 0.1, weight_decay=0.5)
    np.testing.assert_allclose(w["w"], p0 * np.float32(0.95) ** 3, rtol=1e-6)
    assert w["w"].dtype == np.float32
