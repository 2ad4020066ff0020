"""Hidden layers: ``model.n_hidden`` and ``model.recurrent`` as one value or one per layer (models lif and alif)."""
from __future__ import annotations

import numpy as np
import pytest

from snnbatch.jobs.errors import SpecError
from snnbatch.jobs.alif_bptt import ALIFModel
from snnbatch.jobs.lif_bptt import LIFModel, layer_recurrent, layer_sizes, recurrent_names
from snnbatch.kernels import deep, lif
from snnbatch.orchestrator import planner, spec as spec_mod


def tasks(text: str):
    return planner.plan(spec_mod.parse(text, "s.yaml"))


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        spec_mod.parse(text, "s.yaml")
    return info.value.problems


@pytest.mark.parametrize("model", ["lif", "alif"])
@pytest.mark.parametrize("one, listed", [
    ("n_hidden: 128", "n_hidden: [128]"),
    ("n_hidden: 64, recurrent: true", "n_hidden: [64], recurrent: [true]"),
    ("n_hidden: 64, recurrent: false", "n_hidden: [64], recurrent: [false]"),
    ("n_hidden: 64, recurrent: true", "n_hidden: 64, recurrent: [true]"),
])
def test_a_list_of_one_layer_is_that_layer_with_its_task_id(model, one, listed):
    a = tasks(f"model: {{type: {model}, {one}}}")
    b = tasks(f"model: {{type: {model}, {listed}}}")
    assert [t.id for t in a] == [t.id for t in b]
    assert a[0].config.model.model_dump() == b[0].config.model.model_dump()
    assert isinstance(b[0].config.model.n_hidden, int) and isinstance(b[0].config.model.recurrent, bool)


@pytest.mark.parametrize("Model", [LIFModel, ALIFModel])
def test_the_helpers_read_the_layers(Model):
    m = Model(n_hidden=32)
    assert layer_sizes(m) == (32,) and layer_recurrent(m) == (False,) and recurrent_names(m) == ()
    m = Model(n_hidden=[32, 16, 8], recurrent=[True, False, True])
    assert layer_sizes(m) == (32, 16, 8) and layer_recurrent(m) == (True, False, True)
    assert recurrent_names(m) == ("w_rec", "w_rec2")
    m = Model(n_hidden=[32, 16], recurrent=True)
    assert layer_recurrent(m) == (True, True) and recurrent_names(m) == ("w_rec", "w_rec1")


@pytest.mark.parametrize("Model", [LIFModel, ALIFModel])
def test_the_recurrent_defaults_apply_when_any_layer_is_recurrent(Model):
    m = Model(n_hidden=[32, 16], recurrent=[False, True])
    assert (m.recurrent_weight_scale, m.recurrent_lr_scale) == (0.5, 0.1)
    m = Model(n_hidden=[32, 16], recurrent=[False, False])
    assert (m.recurrent_weight_scale, m.recurrent_lr_scale) == ("auto", "auto")


@pytest.mark.parametrize("text, expected", [
    ("model: {n_hidden: [32, 32], recurrent: [true, false, true]}",
     "model.recurrent: expected one entry per hidden layer: n_hidden has 2 layers, recurrent has 3 entries"),
    ("model: {n_hidden: 32, recurrent: [true, false]}",
     "model.recurrent: expected one entry per hidden layer: n_hidden has 1 layer, recurrent has 2 entries"),
    ("model: {n_hidden: [32, -4]}", "model.n_hidden: entry 1: expected a positive integer, got -4"),
    ("model: {n_hidden: []}", "model.n_hidden: expected a positive integer or a list of them"),
    ("model: {n_hidden: [32, 32], recurrent: [true, maybe]}",
     "model.recurrent: entry 1: expected true or false, got 'maybe'"),
    ("model: {type: alif, n_hidden: [32, 32]}\nlearning: {rule: eprop, feedback: sideways}",
     "learning.feedback: expected one of: 'symmetric', 'random', got 'sideways'"),
    ("sweep: {grid: {n_hidden: [64, [32, 0]]}}", "sweep.grid.n_hidden[1]: entry 1: expected a positive integer, got 0"),
])
def test_bad_layers_are_spec_errors_naming_the_key(text, expected):
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found


def test_one_layer_of_the_deep_kernel_draws_the_weights_of_lif():
    for recurrent, scale in ((False, None), (True, None), (True, 0.5)):
        cfg = lif.LIFConfig(n_inputs=7, n_hidden=5, n_outputs=3, recurrent=recurrent, recurrent_weight_scale=scale)
        dcfg = deep.DeepLIFConfig(n_inputs=7, n_hidden=(5,), n_outputs=3, recurrent=(recurrent,),
                                  recurrent_weight_scale=scale)
        a = lif.init_params(cfg, np.random.default_rng(3))
        b = deep.init_params(dcfg, np.random.default_rng(3))
        assert list(a) == list(b) == list(deep.param_names(dcfg))
        for k in a:
            assert a[k].tobytes() == b[k].tobytes()


def test_deep_weights_are_drawn_layer_by_layer_with_their_names_and_shapes():
    cfg = deep.DeepLIFConfig(n_inputs=7, n_hidden=(5, 4, 6), n_outputs=3, recurrent=(True, False, True))
    p = deep.init_params(cfg, np.random.default_rng(0))
    assert [(k, v.shape) for k, v in p.items()] == [
        ("w_in", (7, 5)), ("w_rec", (5, 5)), ("w_in1", (5, 4)), ("w_in2", (4, 6)), ("w_rec2", (6, 6)),
        ("w_out", (6, 3))]
    assert all(v.dtype == np.float32 for v in p.values())


@pytest.mark.parametrize("model", ["lif", "alif"])
def test_a_deep_network_trains_through_its_trainer_on_the_deep_kernel(model):
    from snnbatch.jobs.trainer import build_trainer, initial_state

    text = (f"model: {{type: {model}, n_hidden: [12, 10, 8], recurrent: [true, false, true]}}\n"
            "dataset: {n_train: 64, n_test: 32, n_inputs: 16, n_steps: 20}\n"
            "training: {iterations: 3, batch_size: 32, clip_grad_norm: 1.0}\n")
    config = tasks(text)[0].config
    trainer = build_trainer(config)
    assert trainer.kernel is deep
    assert trainer.kcfg.n_hidden == (12, 10, 8) and trainer.kcfg.recurrent == (True, False, True)
    assert trainer.lr_scale == {"w_rec": 0.1, "w_rec2": 0.1}  # recurrent_lr_scale: every recurrent matrix
    state = initial_state(trainer)
    assert sorted(k[7:] for k in state.arrays if k.startswith("params/")) == sorted(deep.param_names(trainer.kcfg))
    before = {k: v.copy() for k, v in state.arrays.items()}
    metrics = trainer.step(state)
    assert set(metrics) == {"loss", "accuracy"}
    assert all(not np.array_equal(before[f"params/{k}"], state.arrays[f"params/{k}"])
               for k in deep.param_names(trainer.kcfg))
    assert set(trainer.evaluate(state)) == {"test_loss", "test_accuracy"}
    one = build_trainer(tasks(text.replace("[12, 10, 8], recurrent: [true, false, true]", "[12]"))[0].config)
    assert one.kernel.__name__ == f"snnbatch.kernels.{model}"  # one layer: the one-layer kernel


@pytest.mark.parametrize("model", ["lif", "alif"])
def test_the_sparse_backward_of_a_deep_network_reaches_the_deep_kernel(model):
    from snnbatch.jobs.trainer import build_trainer, initial_state

    text = (f"model: {{type: {model}, n_hidden: [16, 16], recurrent: [true, false]}}\n"
            "learning: {surrogate_cutoff: 0.1}\n"
            "dataset: {n_train: 32, n_test: 16, n_inputs: 16, n_steps: 20}\n"
            "training: {iterations: 2, batch_size: 16}\n")
    task = tasks(text)[0]
    assert task.id != tasks(text.replace("learning: {surrogate_cutoff: 0.1}\n", ""))[0].id  # in the task id
    trainer = build_trainer(task.config)
    assert trainer.kernel is deep and trainer.kcfg.surrogate_cutoff == 0.1
    state = initial_state(trainer)
    before = {k: v.copy() for k, v in state.arrays.items()}
    trainer.step(state)
    assert not np.array_equal(before["params/w_out"], state.arrays["params/w_out"])
