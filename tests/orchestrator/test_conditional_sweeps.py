"""A sweep may be a list of sub-sweeps, each with its own axes and settings; their tasks are united."""
import pytest

from snnbatch.jobs.errors import SpecError
from snnbatch.orchestrator import planner, spec as spec_mod

BASE = """\
name: cond
dataset: {n_train: 64, n_test: 32, n_inputs: 16, n_steps: 20}
model: {n_hidden: 8}
training: {iterations: 2}
"""
LIST = BASE + """\
sweep:
  - grid: {lr: [1.0e-3, 2.0e-3]}
  - set: {model.type: alif}
    grid: {lr: [1.0e-3], tau_adapt: [0.1, 0.5]}
    seeds: 2
  - grid: {lr: [1.0e-3]}
"""


def test_sub_sweeps_are_united_and_a_task_in_two_appears_once():
    tasks = planner.plan(spec_mod.parse(LIST))
    assert len(tasks) == 2 + 4  # the third sub-sweep's only task is the first sub-sweep's first
    assert [t.config.model.type for t in tasks] == ["lif", "lif", "alif", "alif", "alif", "alif"]
    assert [t.params["model.type"] for t in tasks] == ["lif", "lif", "alif", "alif", "alif", "alif"]
    assert [t.params["tau_adapt"] for t in tasks] == [None, None, 0.1, 0.1, 0.5, 0.5]
    assert [t.config.model.tau_adapt for t in tasks[2:]] == [0.1, 0.1, 0.5, 0.5]
    assert len({t.id for t in tasks}) == len(tasks) and [t.index for t in tasks] == list(range(6))


def test_each_sub_sweep_gives_the_ids_it_gives_alone():
    tasks = planner.plan(spec_mod.parse(LIST))
    alone = planner.plan(spec_mod.parse(BASE + "sweep: {grid: {lr: [1.0e-3, 2.0e-3]}}\n"))
    alif = planner.plan(spec_mod.parse(BASE.replace("model: {n_hidden: 8}", "model: {type: alif, n_hidden: 8}")
                                       + "sweep: {grid: {lr: [1.0e-3], tau_adapt: [0.1, 0.5]}, seeds: 2}\n"))
    assert [t.id for t in tasks] == [t.id for t in alone] + [t.id for t in alif]


@pytest.mark.parametrize("sweep, message", [
    ("[{grid: {lr: [1.0e-3]}}, {grid: {tau_adpt: [0.1]}}]", "sweep[1].grid.tau_adpt: unknown parameter 'tau_adpt'"),
    ("[{grid: {lr: [1.0e-3]}}, {set: {model.type: alif}, grid: {tau_adpt: [0.1]}}]",
     "sweep[1].grid.tau_adpt: unknown parameter 'tau_adpt' (did you mean 'tau_adapt'?)"),
    ("[{set: {model.type: hh}}]", "sweep[0].set: model.type: unknown type 'hh'"),
    ("[{set: {modle.type: alif}}]", "sweep[0].set: 'modle.type=alif': unknown key 'modle'"),
    ("[3]", "sweep[0]: expected a mapping (grid, zip, random, seeds, set), got 3"),
    ("[]", "sweep: expected a mapping of axes, or a non-empty list of sub-sweeps"),
])
def test_problems_name_the_sub_sweep(sweep, message):
    with pytest.raises(SpecError) as info:
        spec_mod.parse(BASE + f"sweep: {sweep}\n", "s.yaml")
    assert any(p.startswith(message) for p in info.value.problems), info.value.problems
