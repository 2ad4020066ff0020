"""The activity penalty of BPTT (learning.activity_*): keys, ids, spec errors, the reported losses."""
from __future__ import annotations

import pytest

from conftest import tree
from snnbatch.jobs.errors import SpecError
from snnbatch.jobs.trainer import build_trainer, initial_state
from snnbatch.orchestrator import planner, spec as spec_mod


SPEC = ("name: a\nmodel: {type: %s, n_hidden: 24}\nlearning: {%s}\n"
        "dataset: {n_inputs: 20, n_classes: 3, n_train: 64, n_test: 32, n_steps: 30}\n"
        "training: {iterations: 2, batch_size: 32}\n")


def tasks(text: str):
    return planner.plan(spec_mod.parse(text, "s.yaml"))


@pytest.mark.parametrize("model", ["lif", "alif"])
def test_the_keys_stay_out_of_the_task_id_until_set(model):
    plain = tasks(SPEC % (model, "rule: bptt"))[0]
    on = tasks(SPEC % (model, "activity_upper_strength: 0.01"))[0]
    assert plain.id != on.id
    assert plain.config.learning.activity_upper_strength == 0.0
    assert on.config.learning.activity_upper_strength == 0.01


@pytest.mark.parametrize("model", ["lif", "alif"])
def test_the_training_loss_has_the_penalty_and_the_test_loss_has_not(model):
    def trainer(learning):
        t = build_trainer(tasks(SPEC % (model, learning))[0].config)
        return t, initial_state(t)

    (plain, s0), (reg, s1) = trainer("rule: bptt"), trainer("activity_lower: 50, activity_lower_strength: 0.01")
    assert reg.kcfg.activity_lower_strength == 0.01 and reg.kcfg.activity_lower == 50.0
    # the same initial weights: the same test loss (the readout's), a training loss larger by the penalty
    assert plain.evaluate(s0) == reg.evaluate(s1)
    m0, m1 = plain.step(s0), reg.step(s1)
    assert m1["accuracy"] == m0["accuracy"]
    assert m1["loss"] > m0["loss"] + 0.01 * 24 * 30 ** 2 / 4  # every neuron far below 50 spikes in 30 steps


@pytest.mark.parametrize("learning, expected", [
    ("activity_upper_strength: -0.1", "learning.activity_upper_strength: expected a number >= 0, got -0.1"),
    ("activity_lower_strength: -1", "learning.activity_lower_strength: expected a number >= 0, got -1"),
    ("activity_upper: -2", "learning.activity_upper: expected a number >= 0, got -2"),
    ("activity_upper: 2, activity_upper_strength: 1, activity_lower: 3, activity_lower_strength: 1",
     "learning.activity_lower: 3 is above activity_upper (2)"),
    ("rule: eprop, activity_upper_strength: 0.1", "learning.activity_upper_strength: unknown key"),
])
def test_bad_activity_keys_exit_2_naming_the_key(cli, write_spec, tmp_path, learning, expected):
    text = SPEC % ("lif", learning)
    with pytest.raises(SpecError) as info:
        spec_mod.parse(text)
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems
    path = write_spec(text)
    before = tree(tmp_path)
    result = cli("submit", path, "--backend", "inline", "--no-progress")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert any(line.strip().startswith(expected) for line in result.stderr.splitlines()), result.stderr
    assert tree(tmp_path) == before


def test_a_bound_without_its_strength_is_set_but_penalises_nothing():
    def first_loss(learning):
        t = build_trainer(tasks(SPEC % ("lif", learning))[0].config)
        return t.step(initial_state(t))["loss"]

    assert tasks(SPEC % ("lif", "activity_upper: 0"))[0].id != tasks(SPEC % ("lif", "rule: bptt"))[0].id
    assert first_loss("activity_upper: 0") == first_loss("rule: bptt") < first_loss(
        "activity_upper: 0, activity_upper_strength: 1")


def test_several_hidden_layers_take_the_penalty_on_every_layer():
    text = (SPEC % ("alif", "activity_lower: 50, activity_lower_strength: 0.01")).replace("n_hidden: 24",
                                                                                        "n_hidden: [24, 16]")
    t = build_trainer(tasks(text)[0].config)
    assert t.kernel.__name__ == "snnbatch.kernels.deep"
    assert (t.kcfg.activity_lower, t.kcfg.activity_lower_strength) == (50.0, 0.01)
    plain = build_trainer(tasks(text.replace("activity_lower: 50, activity_lower_strength: 0.01", "rule: bptt"))[0]
                          .config)
    s0, s1 = initial_state(plain), initial_state(t)
    assert plain.evaluate(s0) == t.evaluate(s1)
    # every neuron of both layers far below 50 spikes in 30 steps
    assert t.step(s1)["loss"] > plain.step(s0)["loss"] + 0.01 * (24 + 16) * 30 ** 2 / 4
