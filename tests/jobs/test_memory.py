"""The delayed_match dataset and model.recurrent_weight_scale: declared, validated, in the task id only
when set, trained by lif and alif with bptt and eprop, and resumed bit for bit after SIGKILL."""
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


def test_recurrent_weight_scale_enters_the_task_id_only_when_set():
    for section in (lif_bptt.LIFModel, alif_bptt.ALIFModel):
        field = section.model_fields["recurrent_weight_scale"]
        assert field.default is None and field.json_schema_extra == config.ID_WHEN_SET
    for model in ("lif", "alif"):
        base = {"model": {"type": model, "recurrent": True}}
        unset = config.task_id(config.TaskConfig.model_validate(base))
        none = config.task_id(config.TaskConfig.model_validate(
            {"model": {"type": model, "recurrent": True, "recurrent_weight_scale": None}}))
        half = config.task_id(config.TaskConfig.model_validate(
            {"model": {"type": model, "recurrent": True, "recurrent_weight_scale": 0.5}}))
        assert unset == none != half
    with pytest.raises(ValueError, match="recurrent_weight_scale"):
        config.TaskConfig.model_validate({"model": {"type": "lif", "recurrent_weight_scale": -1.0}})


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
