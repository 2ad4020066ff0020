"""E-prop with several hidden layers, and learning.feedback: which kernel a task runs, its ids, its seeds, a sweep."""
from __future__ import annotations

import numpy as np
import pytest

from snnbatch import open_run
from snnbatch.jobs.config import TaskConfig
from snnbatch.jobs.trainer import build_trainer, initial_state
from snnbatch.kernels import deep, eprop, eprop_deep
from snnbatch.orchestrator import planner, spec as spec_mod

DATA = {"n_inputs": 10, "n_train": 16, "n_test": 8, "n_steps": 12}


def trainer(model, learning=None, seed=0):
    return build_trainer(TaskConfig.model_validate({
        "seed": seed, "dataset": DATA, "training": {"iterations": 1, "batch_size": 8}, "model": model,
        "learning": {"rule": "eprop", **(learning or {})}}))


def ids(text: str) -> list[str]:
    return [t.id for t in planner.plan(spec_mod.parse(text, "s.yaml"))]


@pytest.mark.parametrize("model_type", ["lif", "alif"])
def test_the_kernel_a_task_runs_on(model_type):
    one = trainer({"type": model_type, "n_hidden": 16})
    assert one.kernel is eprop and one.kcfg.n_hidden == 16
    two = trainer({"type": model_type, "n_hidden": [16, 8], "recurrent": [False, True]})
    assert two.kernel is eprop_deep
    assert (two.kcfg.n_hidden, two.kcfg.recurrent, two.kcfg.feedback) == ((16, 8), (False, True), "symmetric")
    assert two.kcfg.adapt_jump == (0.2 if model_type == "alif" else 0.0)  # 0: LIF neurons
    assert two.kcfg.recurrent_weight_scale == 0.5 and two.lr_scale == {"w_rec1": 0.1}
    # random feedback has no one-layer kernel of its own: it runs on eprop_deep, one layer
    rnd = trainer({"type": model_type, "n_hidden": 16}, {"feedback": "random"})
    assert rnd.kernel is eprop_deep and (rnd.kcfg.n_hidden, rnd.kcfg.feedback) == ((16,), "random")


def test_feedback_keeps_the_ids_of_specs_without_it():
    base = "model: {n_hidden: 32}\nlearning: {rule: eprop%s}\n"
    assert ids(base % "") == ids(base % ", feedback: symmetric")
    assert ids(base % ", feedback: random") != ids(base % "")
    deep_ids = ids("model: {n_hidden: [32, 32]}\nlearning: {rule: eprop}\nsweep: {grid: {feedback: [symmetric, random]}}")
    assert len(set(deep_ids)) == 2 and ids("model: {n_hidden: [32, 32]}\nlearning: {rule: eprop}")[0] == deep_ids[0]


def test_initial_network_is_the_bptt_kernels_and_the_feedback_is_fixed_by_the_task_seed():
    model = {"type": "alif", "n_hidden": [16, 8], "recurrent": True}
    t = trainer(model)
    state = initial_state(t)
    params, _ = t.split(state)
    dcfg = deep.DeepALIFConfig(**{k: getattr(t.kcfg, k) for k in deep.DeepALIFConfig._fields if hasattr(t.kcfg, k)})
    ref = deep.init_params(dcfg, np.random.default_rng(t.seeds()[0]))
    assert list(params) == list(ref) == ["w_in", "w_rec", "w_in1", "w_rec1", "w_out"]
    assert all(params[k].tobytes() == ref[k].tobytes() for k in ref)
    assert trainer(model).kcfg.feedback_seed == t.kcfg.feedback_seed != trainer(model, seed=1).kcfg.feedback_seed
    # the feedback stream is apart from the two of the weights and the data order
    assert t.kcfg.feedback_seed not in [int(s.generate_state(1)[0]) for s in t.seeds()]


def test_two_layer_eprop_sweep_end_to_end(cli, write_spec, tmp_path):
    """A sweep over the feedback of a two-layer e-prop network, submitted and run inline: both tasks done,
    learning (the training loss falls), test metrics recorded."""
    path = write_spec("""\
name: deep-eprop
dataset: {n_inputs: 20, n_classes: 3, n_train: 96, n_test: 48, n_steps: 30}
model: {type: lif, n_hidden: [24, 16], recurrent: [false, true]}
learning: {rule: eprop}
training: {iterations: 12, batch_size: 32, lr: 5.0e-3}
checkpoint: {every_iterations: 4}
sweep: {grid: {feedback: [symmetric, random]}}
""")
    result = cli("submit", path, "--store", tmp_path / "store", "--backend", "inline", "--no-progress")
    assert result.exit_code == 0, result.output
    run = open_run(tmp_path / "store")
    tasks = run.tasks
    assert sorted(t.params["feedback"] for t in tasks) == ["random", "symmetric"]
    for task in tasks:
        assert task.state == "done", task.error_line
        assert set(task.checkpoint) >= {"params/w_in", "params/w_in1", "params/w_rec1", "params/w_out"}
        loss = task.metrics["loss"]
        assert len(loss) == 12 and loss[-3:].mean() < loss[:3].mean()
        assert 0.0 <= task.final["test_accuracy"] <= 1.0 and np.isfinite(task.final["test_loss"])


def test_warm_up_tells_the_feedbacks_apart():
    """One layer with random feedback runs on another kernel than with symmetric: each is compiled once."""
    from snnbatch.jobs import warmup

    configs = [t.config for t in planner.plan(spec_mod.parse(
        "model: {n_hidden: 32}\nlearning: {rule: eprop}\nsweep: {grid: {feedback: [symmetric, random], "
        "lr: [0.001, 0.002]}}", "s.yaml"))]
    assert len(configs) == 4
    assert sorted(c.learning.feedback for c in warmup.distinct(configs)) == ["random", "symmetric"]
