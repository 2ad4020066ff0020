"""The recurrent weights' own initial scale, ``recurrent_weight_scale`` (kernels/lif.py, shared by alif and eprop)."""
import math

import numpy as np
import pytest

from snnbatch.kernels import alif, lif

@pytest.mark.parametrize("module, config", [(lif, lif.LIFConfig), (alif, alif.ALIFConfig)])
def test_unset_recurrent_weight_scale_is_the_old_initialisation_bit_for_bit(module, config):
    cfg = config(n_inputs=30, n_hidden=20, n_outputs=3, recurrent=True, weight_scale=5.0)
    got = module.init_params(cfg, np.random.default_rng(7))
    rng = np.random.default_rng(7)  # the initialisation before the key existed, written out
    scale = cfg.weight_scale * (1.0 - cfg.beta)
    old = {"w_in": rng.normal(0.0, scale / math.sqrt(30), (30, 20)),
           "w_rec": rng.normal(0.0, scale / math.sqrt(20), (20, 20)),
           "w_out": rng.normal(0.0, scale / math.sqrt(20), (20, 3))}
    assert set(got) == set(old)
    for k in old:
        assert got[k].dtype == np.float32 and np.array_equal(got[k], old[k].astype(np.float32)), k
    same = module.init_params(cfg._replace(recurrent_weight_scale=5.0), np.random.default_rng(7))
    assert all(np.array_equal(same[k], got[k]) for k in got)


@pytest.mark.parametrize("module, config", [(lif, lif.LIFConfig), (alif, alif.ALIFConfig)])
def test_recurrent_weight_scale_changes_the_recurrent_weights_only(module, config):
    cfg = config(n_inputs=30, n_hidden=20, n_outputs=3, recurrent=True, dtype="float64")
    base = module.init_params(cfg, np.random.default_rng(1))
    for scale in (0.0, 0.5, 2.0):
        p = module.init_params(cfg._replace(recurrent_weight_scale=scale), np.random.default_rng(1))
        assert np.array_equal(p["w_in"], base["w_in"]) and np.array_equal(p["w_out"], base["w_out"])
        np.testing.assert_allclose(p["w_rec"], base["w_rec"] * scale / cfg.weight_scale, rtol=1e-12, atol=0)
    ff = module.init_params(cfg._replace(recurrent=False, recurrent_weight_scale=0.5), np.random.default_rng(1))
    assert set(ff) == {"w_in", "w_out"}
