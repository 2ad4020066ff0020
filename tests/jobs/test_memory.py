"""The delayed_match dataset and the recurrent defaults (model.recurrent_weight_scale, recurrent_lr_scale):
declared, validated, numbers in the task id of recurrent networks, trained by lif and alif with bptt and
eprop, and resumed bit for bit after SIGKILL."""
import numpy as np
import pytest

from snnbatch.jobs import alif_bptt, config, lif_bptt, registry
from snnbatch.jobs.memory_data import DelayedMatchData, build_delayed_match
from snnbatch.jobs.trainer import build_trainer, initial_state
from snnbatch.testing import check_trainer

SMALL = {"type": "delayed_match", "cue_steps": 5, "delay_steps": 12, "probe_steps": 5, "units_per_pattern": 4,
         "n_noise": 4, "spike_prob": 0.3, "n_train": 96, "n_test": 32}


def test_the_dataset_is_registered_as_spikes_and_every_spiking_classifier_takes_it():
    d = registry.dataset("delayed_match")
    assert d.kind == "spikes" and d.section is DelayedMatchData
    for model in ("lif", "alif"):
        assert "delayed_match" in registry.accepted_datasets(registry.algorithm(model))


def test_the_dataset_is_its_seed():
    a = build_delayed_match(DelayedMatchData(**SMALL, seed=5))
    b = build_delayed_match(DelayedMatchData(**SMALL, seed=5))
    assert np.array_equal(a.train_events.units, b.train_events.units) and np.array_equal(a.test_labels, b.test_labels)
    assert (a.n_inputs, a.n_classes, a.n_steps) == (2 * 2 * 4 + 4, 2, 22)


@pytest.mark.parametrize("bad, key", [({"n_patterns": 1}, "n_patterns"), ({"spike_prob": 1.5}, "spike_prob"),
                                      ({"delay_steps": -1}, "delay_steps"), ({"n_hiden": 3}, "n_hiden")])
def test_bad_keys_are_spec_errors(bad, key):
    with pytest.raises(ValueError, match=key):
        DelayedMatchData(**bad)


def _cfg(model: dict, **training):
    return config.TaskConfig.model_validate({"model": model, "training": training} if training else {"model": model})


def test_recurrent_defaults_are_numbers_in_the_id_of_recurrent_networks_only():
    for section in (lif_bptt.LIFModel, alif_bptt.ALIFModel):
        for key in ("recurrent_weight_scale", "recurrent_lr_scale"):
            field = section.model_fields[key]
            assert field.default == "auto" and field.json_schema_extra == config.ID_WHEN_SET
    for model in ("lif", "alif"):
        ff = _cfg({"type": model})
        assert (ff.model.recurrent_weight_scale, ff.model.recurrent_lr_scale) == ("auto", "auto")
        assert "recurrent_weight_scale" not in ff.model_dump(mode="json", exclude_defaults=True)["model"]
        rec = _cfg({"type": model, "recurrent": True})
        assert (rec.model.recurrent_weight_scale, rec.model.recurrent_lr_scale) == (0.5, 0.1)
        explicit = _cfg({"type": model, "recurrent": True, "recurrent_weight_scale": 0.5, "recurrent_lr_scale": 0.1})
        assert config.task_id(rec) == config.task_id(explicit)
        # a stored config reads back to the same task
        assert config.task_id(config.TaskConfig.model_validate(rec.model_dump(mode="json"))) == config.task_id(rec)
        # a stored config from before the keys: recurrent_weight_scale null, no recurrent_lr_scale
        legacy = _cfg({"type": model, "recurrent": True, "recurrent_weight_scale": None})
        assert legacy.model.recurrent_lr_scale == 1.0
        assert config.task_id(legacy) != config.task_id(rec)
        assert build_trainer(legacy.model_copy(update={"dataset": config.TaskConfig.model_validate(
            {"model": {"type": model}, "dataset": SMALL}).dataset})).lr_scale == {}
        # a scale given alone takes the default learning rate of the recurrent weights, and names both
        two = _cfg({"type": model, "recurrent": True, "recurrent_weight_scale": 2.0})
        assert two.model.recurrent_lr_scale == 0.1 and config.task_id(two) != config.task_id(rec)
    with pytest.raises(ValueError, match="recurrent_weight_scale"):
        config.TaskConfig.model_validate({"model": {"type": "lif", "recurrent_weight_scale": -1.0}})
    with pytest.raises(ValueError, match="recurrent_lr_scale"):
        config.TaskConfig.model_validate({"model": {"type": "lif", "recurrent": True, "recurrent_lr_scale": "x"}})


def test_a_sweep_that_makes_networks_recurrent_gives_them_the_recurrent_defaults():
    from snnbatch.orchestrator import planner, spec as spec_mod

    tasks = planner.plan(spec_mod.parse("name: s\nmodel: {type: lif, n_hidden: 16}\n"
                                        "sweep: {grid: {recurrent: [false, true]}}\n"))
    assert [(t.config.model.recurrent_weight_scale, t.config.model.recurrent_lr_scale) for t in tasks] == [
        ("auto", "auto"), (0.5, 0.1)]


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_recurrent_learning_rate_scales_the_recurrent_weights_steps_only(optimizer):
    def one_step(lr_scale):
        cfg = config.TaskConfig.model_validate({
            "model": {"type": "lif", "n_hidden": 16, "recurrent": True, "dtype": "float64",
                      "recurrent_weight_scale": 1.0, "recurrent_lr_scale": lr_scale},
            "dataset": SMALL, "training": {"iterations": 1, "batch_size": 32, "optimizer": optimizer, "lr": 0.01}})
        trainer = build_trainer(cfg)
        state = initial_state(trainer)
        before = {k: v.copy() for k, v in state.arrays.items() if k.startswith("params/")}
        trainer.step(state)
        return {k: state.arrays[k] - before[k] for k in before}

    full, tenth = one_step(1.0), one_step(0.1)
    assert np.abs(full["params/w_rec"]).max() > 0
    np.testing.assert_allclose(tenth["params/w_rec"], 0.1 * full["params/w_rec"], rtol=1e-9, atol=1e-15)
    for k in ("params/w_in", "params/w_out"):
        assert np.array_equal(tenth[k], full[k]), k


@pytest.mark.parametrize("model, rule", [("lif", "bptt"), ("alif", "bptt"), ("lif", "eprop"), ("alif", "eprop")])
def test_lif_and_alif_train_on_it_with_the_recurrent_scale_they_are_given(model, rule):
    cfg = config.TaskConfig.model_validate({
        "model": {"type": model, "n_hidden": 16, "recurrent": True, "recurrent_weight_scale": 0.5},
        "dataset": SMALL, "learning": {"rule": rule}, "training": {"iterations": 3, "batch_size": 32}})
    trainer = build_trainer(cfg)
    assert trainer.kcfg.recurrent_weight_scale == 0.5 and trainer.kcfg.n_inputs == 20
    state = initial_state(trainer)
    unset = build_trainer(cfg.model_copy(update={"model": cfg.model.model_copy(
        update={"recurrent_weight_scale": None})}))
    w_rec = initial_state(unset).arrays["params/w_rec"]
    np.testing.assert_allclose(state.arrays["params/w_rec"], w_rec * (0.5 / 7.0), rtol=1e-6)
    metrics = trainer.step(state)
    assert np.isfinite(metrics["loss"]) and 0.0 <= metrics["accuracy"] <= 1.0
    assert set(trainer.evaluate(state)) == {"test_loss", "test_accuracy"}


@pytest.mark.parametrize("model, rule", [("lif", "bptt"), ("alif", "eprop")])
def test_sigkill_and_resume_are_bit_identical(model, rule, tmp_path):
    spec = {"model": {"type": model, "n_hidden": 16, "recurrent": True, "recurrent_weight_scale": 0.5,
                      **({"tau_adapt": 0.2, "adapt_jump": 0.5} if model == "alif" else {})},
            "dataset": SMALL, "learning": {"rule": rule}, "training": {"iterations": 12, "batch_size": 32}}
    result = check_trainer(spec, kills=2, seed=3, workdir=tmp_path / "check")
    assert len(result.kills) == 2 and result.iterations == 12
