"""training.lr_schedule, training.weight_decay and training.clip_grad_norm in every GradientTrainer; learning.readout.

Each key leaves a task's id alone at its default and renames it when set; every built-in
gradient trainer (and the installed izhikevich plugin, built on GradientTrainer) takes its
steps as the keys say; a task using all three resumes bit for bit after SIGKILL.
"""
import numpy as np
import pytest

from snnbatch.jobs import config
from snnbatch.jobs.trainer import build_trainer, initial_state
from snnbatch.kernels import optim
from snnbatch.testing import check_trainer

SMALL = {"n_inputs": 20, "n_classes": 3, "n_train": 64, "n_test": 32, "n_steps": 30}
MODELS = {
    "lif-bptt": ({"type": "lif", "n_hidden": 12, "recurrent": True}, {"rule": "bptt"}, SMALL),
    "alif-bptt": ({"type": "alif", "n_hidden": 12}, {"rule": "bptt"}, SMALL),
    "lif-eprop": ({"type": "lif", "n_hidden": 12}, {"rule": "eprop"}, SMALL),
    "alif-eprop": ({"type": "alif", "n_hidden": 12}, {"rule": "eprop"}, SMALL),
    "dendritic-adjoint": ({"type": "dendritic", "n_neurons": 4, "n_inputs": 3, "duration": 20.0},
                          {"rule": "adjoint"}, {"type": "teacher"}),
    "izhikevich-plugin": ({"type": "izhikevich", "n_hidden": 12}, {"rule": "surrogate"}, SMALL),
}
KEYS = {"lr_schedule": {"type": "step", "warmup": 2, "every": 2, "factor": 0.5},
        "weight_decay": 0.2, "clip_grad_norm": 0.05}


def _config(name, **training):
    model, learning, data = MODELS[name]
    return config.TaskConfig.model_validate({"model": model, "learning": learning, "dataset": data,
                                             "training": {"iterations": 8, "batch_size": 32, **training}})


def test_defaults_keep_the_task_id_and_setting_a_key_renames_it():
    base = config.task_id(_config("lif-bptt"))
    same = [config.task_id(_config("lif-bptt", **kw)) for kw in
            ({"lr_schedule": None}, {"lr_schedule": "constant"}, {"lr_schedule": {"type": "constant"}},
             {"weight_decay": 0.0}, {"clip_grad_norm": None})]
    assert same == [base] * len(same)
    renamed = [config.task_id(_config("lif-bptt", **kw)) for kw in
               ({"lr_schedule": "cosine"}, {"lr_schedule": {"warmup": 3}}, {"weight_decay": 1e-4},
                {"clip_grad_norm": 1.0})]
    assert len(set(renamed)) == len(renamed) and base not in renamed
    # a bare name is the schedule with its defaults
    assert (_config("lif-bptt", lr_schedule="cosine").training.lr_schedule
            == config.LRSchedule(type="cosine", warmup=0, to=0.0))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_gradient_trainer_clips_schedules_and_decays(name):
    """apply_gradients: clip to the global norm, then p ← p·(1 − lr_i·wd) − lr_i·g (SGD), lr_i by the schedule
    (times recurrent_lr_scale for the recurrent weights)."""
    cfg = _config(name, optimizer="sgd", lr=0.1, **KEYS)
    trainer = build_trainer(cfg)
    state = initial_state(trainer)
    params, _ = trainer.split(state)
    rng = np.random.default_rng(0)
    assert trainer.lr_scale == ({"w_rec": 0.1} if cfg.model.type in ("lif", "alif") and cfg.model.recurrent else {})
    expected_lrs = [0.05, 0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    for i, lr_i in enumerate(expected_lrs):
        state.iteration = i  # as the runner would count
        assert trainer.learning_rate(state) == pytest.approx(lr_i, rel=1e-15)
        grads = {k: rng.normal(size=p.shape).astype(p.dtype) for k, p in params.items()}
        norm = optim.global_norm(grads)
        assert norm > 0.05
        before = {k: p.astype(np.float64) for k, p in params.items()}
        trainer.apply_gradients(state, grads)
        for k, p in params.items():
            rate = lr_i * trainer.lr_scale.get(k, 1.0)  # a recurrent network's w_rec: recurrent_lr_scale
            want = before[k] * (1 - rate * 0.2) - rate * grads[k].astype(np.float64) * (0.05 / norm)
            np.testing.assert_allclose(p, want, rtol=1e-5, atol=1e-6 * np.abs(want).max(), err_msg=k)
    # and a real training step under all three keys with Adam
    cfg = _config(name, **KEYS)
    trainer = build_trainer(cfg)
    state = initial_state(trainer)
    metrics = trainer.step(state)
    assert all(np.isfinite(v) for v in metrics.values())


def test_cosine_reaches_its_end_over_an_epoch_count():
    """The training length of a cosine schedule is the runner's: epochs × iterations per epoch."""
    model, learning, data = MODELS["lif-bptt"]
    cfg = config.TaskConfig.model_validate({"model": model, "learning": learning, "dataset": data,
                                            "training": {"epochs": 3, "batch_size": 16, "lr": 0.1,
                                                         "lr_schedule": {"type": "cosine", "to": 0.2}}})
    trainer = build_trainer(cfg)
    state = initial_state(trainer)
    total = 3 * trainer.iterations_per_epoch
    assert total >= 6
    lrs = []
    for i in range(total):
        state.iteration = i
        lrs.append(trainer.learning_rate(state))
    assert lrs[0] == 0.1 and all(a > b for a, b in zip(lrs, lrs[1:]))
    assert lrs[-1] == pytest.approx(0.1 * (0.2 + 0.8 * 0.5 * (1 + np.cos(np.pi * (total - 1) / total))))


def test_zero_weight_decay_and_no_clipping_step_exactly_as_before():
    a, b = (build_trainer(_config("lif-bptt")), build_trainer(_config("lif-bptt", weight_decay=0.0,
                                                                         clip_grad_norm=None)))
    sa, sb = initial_state(a), initial_state(b)
    for _ in range(2):
        a.step(sa)
        b.step(sb)
        sa.iteration += 1
        sb.iteration += 1
    for k, v in sa.arrays.items():
        assert v.tobytes() == sb.arrays[k].tobytes(), k


@pytest.mark.parametrize("name", ["lif-bptt", "alif-eprop", "dendritic-adjoint"])
def test_sigkill_and_resume_are_bit_identical(name, tmp_path):
    model, learning, data = MODELS[name]
    spec = {"model": model, "learning": learning, "dataset": data,
            "training": {"iterations": 14, "batch_size": 32, "lr_schedule": {"type": "cosine", "warmup": 3, "to": 0.1},
                         "weight_decay": 0.1, "clip_grad_norm": 0.5}}
    result = check_trainer(spec, kills=2, seed=4, workdir=tmp_path / "check")
    assert result.iterations == 14 and len(result.kills) == 2


# ------------------------------------------------------------------ learning.readout (bptt)


def _readout_config(model, readout=None):
    learning = {"rule": "bptt", **({"readout": readout} if readout else {})}
    return config.TaskConfig.model_validate({"model": {"type": model, "n_hidden": 12}, "learning": learning,
                                             "dataset": SMALL, "training": {"iterations": 4, "batch_size": 32}})


def test_the_readout_keeps_ids_at_max_and_reaches_the_kernel():
    for model in ("lif", "alif"):
        base = config.task_id(_readout_config(model))
        assert config.task_id(_readout_config(model, "max")) == base
        ids = {kind: config.task_id(_readout_config(model, kind)) for kind in ("mean", "last", "per_step", "count")}
        assert base not in ids.values() and len(set(ids.values())) == 4
        losses = set()
        for kind in ("max", "mean", "last", "per_step", "count"):
            trainer = build_trainer(_readout_config(model, kind))
            assert trainer.kcfg.readout == kind
            state = initial_state(trainer)
            losses.add(trainer.step(state)["loss"])
            assert set(trainer.evaluate(state)) == {"test_loss", "test_accuracy"}
        assert len(losses) == 5


@pytest.mark.parametrize("model, kind", [("lif", "per_step"), ("alif", "count")])
def test_a_readout_resumes_bit_identically_after_sigkill(model, kind, tmp_path):
    spec = {"model": {"type": model, "n_hidden": 12, "recurrent": True}, "learning": {"rule": "bptt", "readout": kind},
            "dataset": SMALL, "training": {"iterations": 12, "batch_size": 32}}
    result = check_trainer(spec, kills=2, seed=5, workdir=tmp_path / "check")
    assert result.iterations == 12 and len(result.kills) == 2
