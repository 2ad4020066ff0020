"""The sweep spec: defaults, safe YAML, every problem reported at once with its key path."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from snnbatch.jobs.config import Resources, TaskConfig
from snnbatch.jobs.errors import SpecError
from snnbatch.orchestrator import planner, spec as spec_mod

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _sweepable_of_lif() -> set[str]:
    """Every key of the default spec's sections (lif, bptt, randman, training) but the tags: what a sweep may set."""
    from snnbatch.jobs.config import Training
    from snnbatch.jobs.datasets import RandmanData
    from snnbatch.jobs.lif_bptt import BPTTLearning, LIFModel

    keys = set(LIFModel.model_fields) | set(BPTTLearning.model_fields) | set(RandmanData.model_fields)
    return (keys | set(Training.model_fields)) - {"type", "rule"}


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        spec_mod.parse(text, "s.yaml")
    assert str(info.value).startswith("s.yaml: ")
    return info.value.problems


# ------------------------------------------------------------------ defaults


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n", "---\n"])
def test_an_empty_file_is_an_error(text):
    with pytest.raises(SpecError, match=r"s.yaml: 1 problem\n  the file is empty \(or only comments\)"):
        spec_mod.parse(text, "s.yaml")


def test_an_empty_mapping_is_one_task_with_every_default():
    spec = spec_mod.parse("{}")
    (task,) = planner.plan(spec)
    assert task.config == TaskConfig.model_validate({})
    assert spec.name == "sweep" and task.params == {"seed": 0}


def test_a_section_left_empty_takes_its_defaults():
    spec = spec_mod.parse("model:\ntraining:\nsweep:\n")
    assert planner.plan(spec)[0].config == TaskConfig.model_validate({})


# The examples that need no data files on this machine (SHD needs its HDF5 files).
SELF_CONTAINED = sorted(p for p in EXAMPLES.glob("*.yaml") if "train_path" not in p.read_text())


@pytest.mark.parametrize("path", SELF_CONTAINED, ids=lambda p: p.name)
def test_the_examples_are_valid(path):
    spec = spec_mod.load(path)
    assert len(planner.plan(spec)) >= 1


def test_the_quickstart_is_lr_by_hidden_size_by_two_seeds():
    tasks = planner.plan(spec_mod.load(EXAMPLES / "quickstart.yaml"))
    assert len(tasks) == 8 and len({t.id for t in tasks}) == 8


def test_a_section_without_its_type_gets_the_default_type():
    spec = spec_mod.parse("model: {n_hidden: 64}\nlearning: {surrogate_scale: 10}")
    config = planner.plan(spec)[0].config
    assert (config.model.type, config.model.n_hidden, config.learning.rule) == ("lif", 64, "bptt")


def test_sweeping_iterations_replaces_the_default_length_in_epochs():
    tasks = planner.plan(spec_mod.parse("sweep: {grid: {iterations: [10, 20]}}"))
    assert [(t.config.training.iterations, t.config.training.epochs) for t in tasks] == [(10, None), (20, None)]
    # and leaving the length alone keeps the default one, in epochs
    assert planner.plan(spec_mod.parse("{}"))[0].config.training.epochs == 20


@pytest.mark.parametrize("text, where", [
    ("training: {epochs: 3}\nsweep: {grid: {iterations: [10, 20]}}", "sweep.grid.iterations: training.epochs"),
    ("training: {iterations: 3}\nsweep: {zip: {epochs: [1, 2]}}", "sweep.zip.epochs: training.iterations"),
    ("sweep: {grid: {epochs: [1]}, random: {samples: 2, params: {iterations: {randint: [1, 9]}}}}",
     "sweep.grid.epochs: training.iterations is swept too (by sweep.random.params.iterations)"),
])
def test_a_swept_length_with_the_other_length_given_is_one_precise_problem(text, where):
    (problem,) = problems(text)
    assert problem.startswith(where) and "give either 'iterations' or 'epochs', not both" in problem


# ------------------------------------------------------------------ YAML


def test_python_tags_are_invalid_yaml_and_never_executed(tmp_path):
    marker = tmp_path / "executed"
    text = f"name: !!python/object/apply:os.system ['touch {marker}']\n"
    (problem,) = problems(text)
    assert problem.startswith("line 1, column 7: not valid YAML:") and "python/object/apply" in problem
    assert not marker.exists()
    (problem,) = problems("!!python/object:snnbatch.jobs.config.TaskConfig {}\n")
    assert "not valid YAML" in problem


def test_yaml_syntax_errors_give_the_line():
    (problem,) = problems("name: x\nmodel:\n  n_hidden: [1, 2\ntraining: {}\n")
    assert problem.startswith("line 4, column 9: not valid YAML:"), problem


def test_duplicated_keys_are_reported_not_silently_overwritten():
    text = "training:\n  lr: 0.1\n  lr: 0.2\nsweep:\n  grid: {lr: [1]}\n  grid: {n_hidden: [2]}\n"
    assert problems(text) == ["line 3: duplicate key 'lr' (first given on line 2)",
                              "line 6: duplicate key 'grid' (first given on line 5)"]


def test_yaml_merge_keys_may_override_what_they_merge():
    spec = spec_mod.parse("training: {<<: {lr: 0.1, batch_size: 8}, lr: 0.2}\n")
    assert (spec.training.lr, spec.training.batch_size) == (0.2, 8)


# ------------------------------------------------------------------ messages


def test_the_message_of_the_issue():
    assert problems("sweep: {grid: {lr: [1.0e-3, -2, fast]}}") == [
        "sweep.grid.lr[1]: expected a positive number, got -2",
        "sweep.grid.lr[2]: expected a positive number, got 'fast'",
    ]


def test_every_problem_is_reported_at_once():
    text = """\
modle: {n_hidden: 3}
training: {lr: fast, epochs: 0}
resources: {time: 10 minutes}
checkpoint: {keep: 0}
sweep:
  grid: {lr: [x], n_hiden: [1, 2]}
"""
    assert sorted(problems(text)) == sorted([
        "modle: unknown key 'modle' (did you mean 'model'?); valid keys: checkpoint, dataset, description, "
        "learning, model, name, plugins, resources, seed, sweep, training",
        "training.lr: expected a positive number, got 'fast'",
        "training.epochs: expected a positive integer, got 0",
        "resources.time: expected a time limit [D-]HH:MM:SS or MM:SS, quoted (e.g. \"01:30:00\", \"2-00:00:00\"), "
        "got '10 minutes'",
        "checkpoint.keep: expected an integer >= 1 and <= 100, got 0",
        "sweep.grid.lr[0]: expected a positive number, got 'x'",
        "sweep.grid.n_hiden: unknown parameter 'n_hiden' (did you mean 'n_hidden'?); sweepable: " +
        ", ".join(sorted(_sweepable_of_lif())),
    ])


@pytest.mark.parametrize("text, expected", [
    ("training: {learning_rate: 0.1}",
     "training.learning_rate: unknown key 'learning_rate'; valid keys: batch_size, beta1, beta2, clip_grad_norm, "
     "early_stopping, epochs, iterations, lr, lr_schedule, optimizer"),
    ("training: {optimiser: sgd}", "training.optimiser: unknown key 'optimiser' (did you mean 'optimizer'?)"),
    ("model: {type: alif, tau_adap: 0.1}", "model.tau_adap: unknown key 'tau_adap' (did you mean 'tau_adapt'?)"),
    ("model: {type: izh}", "model.type: unknown type 'izh'; choose from: 'alif', 'dendritic', 'force', 'lif'"),
    ("learning: {rule: hebb}", "learning.rule: unknown rule 'hebb'; choose from: 'bptt', 'eprop' (those that fit "
     "model 'lif')"),
    ("model: {type: alif}\nlearning: {rule: hebb}", "learning.rule: unknown rule 'hebb'; choose from: 'bptt', "
     "'eprop' (those that fit model 'alif')"),
    ("training: {beta1: 1.5}", "training.beta1: expected a number > 0.0 and < 1.0, got 1.5"),
    ("model: {dtype: float16}", "model.dtype: expected one of: 'float32', 'float64', got 'float16'"),
    ("model: 3", "model: expected a mapping of keys, got 3"),
    ("resources: {time: 10:00:00}", "resources.time: expected a time limit [D-]HH:MM:SS or MM:SS, quoted "
     "(e.g. \"01:30:00\", \"2-00:00:00\"), got the number 36000 (YAML reads an unquoted 1:00:00 or 10:00 as a number)"),
    ("resources: {time: \"00:01:00\", deadline_margin: \"01:30\"}",
     "resources: deadline_margin 01:30 must be shorter than time 00:01:00"),
    ("resources: {deadline_margin: 5 min}", "resources.deadline_margin: expected a duration MM:SS or HH:MM:SS"),
    ("resources: {memory: lots}", "resources.memory: expected a memory size such as \"2G\", \"500M\" or \"2048\" (MB), "
     "got 'lots'"),
    ("name: a b", "name: expected a name of letters, digits"),
    ("sweep: {grid: {lr: 0.1}}", "sweep.grid.lr: expected a list of values, got 0.1"),
    ("sweep: {seeds: 0}", "sweep.seeds: expected a positive number of replicates or a list of seeds, got 0"),
    ("sweep: {seeds: [3, -1]}", "sweep.seeds[1]: expected an integer >= 0, got -1"),
    ("sweep: {seeds: [3, 3]}", "sweep.seeds: seeds must be distinct"),
    ("sweep: {gird: {lr: [1]}}", "sweep.gird: unknown key 'gird' (did you mean 'grid'?); valid keys: grid, halving, "
     "random, seeds, zip"),
    ("sweep: {random: {samples: 2, params: {lr: {normal: [0, 1]}}}}",
     "sweep.random.params.lr.normal: unknown key 'normal' (did you mean 'uniform'?); valid keys: choice, loguniform, "
     "randint, uniform"),
    ("sweep: {random: {samples: 2, params: {lr: {uniform: 0.1}}}}",
     "sweep.random.params.lr.uniform: expected [low, high] (two numbers), got 0.1"),
    ("sweep: {random: {samples: 2, params: {n_hidden: {uniform: [8, 64]}}}}",
     "sweep.random.params.n_hidden.uniform: draws real numbers, but model.n_hidden takes integers; use randint or "
     "choice"),
    ("sweep: {random: {samples: 2, params: {n_hidden: {randint: [1.5, 3]}}}}",
     "sweep.random.params.n_hidden.randint[0]: input should be a valid integer, got a number with a fractional part "
     "(1.5)"),
    ("sweep: {grid: {seed: [1, 2]}}", "sweep.grid.seed: 'seed' is ambiguous: write dataset.seed for the data set's "
     "seed; the task's seed is set by sweep.seeds"),
    ("sweep: {grid: {model.type: [lif, alif]}}", "sweep.grid.model.type: unknown parameter 'model.type' "
     "(did you mean 'model.dtype'?); sweepable: model.n_hidden, "),
])
def test_messages_name_the_key_and_what_is_expected(text, expected):
    (problem,) = problems(text)
    assert problem.startswith(expected), problem


def test_an_ambiguous_axis_lists_the_full_paths(tmp_path):
    data = tmp_path / "shd.h5"
    data.write_bytes(b"")
    text = f"dataset: {{type: shd, train_path: '{data}'}}\nsweep: {{grid: {{dt: [0.001, 0.002]}}}}"
    assert problems(text) == ["sweep.grid.dt: 'dt' is ambiguous: write one of model.dt, dataset.dt"]
    tasks = planner.plan(spec_mod.parse(text.replace("{dt:", "{dataset.dt:")))
    assert [t.config.dataset.dt for t in tasks] == [0.001, 0.002]


# ------------------------------------------------------------------ robustness

KEYS = ["name", "seed", "model", "dataset", "training", "resources", "checkpoint", "sweep", "grid", "zip", "random",
        "seeds", "samples", "params", "lr", "n_hidden", "type", "epochs", "iterations", "time", "memory", "uniform",
        "loguniform", "choice", "randint", "modle", "tau_adapt", "dataset.seed"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.floats(allow_nan=False, width=32),
                    st.sampled_from(["lif", "alif", "shd", "fast", "01:00:00", "2G", "", "x"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)), max_leaves=12)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5))
def test_any_mapping_is_a_spec_or_a_spec_error(data):
    """Whatever the file holds, validation ends in a spec or a SpecError listing problems, never a crash."""
    try:
        spec = spec_mod.parse(yaml.safe_dump(data), "f.yaml")
    except SpecError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        assert str(exc).startswith("f.yaml: ")
    else:
        assert len(planner.plan(spec)) >= 1


@pytest.mark.parametrize("resources, margin", [
    ({"time": "00:01:00"}, 30.0),                                # auto: at least 30 s
    ({"time": "02:00:00"}, 360.0),                               # auto: 5 % of the limit
    ({"time": "2-00:00:00"}, 600.0),                             # auto: at most 10 minutes
    ({"time": "00:01:00", "deadline_margin": "00:50"}, 50.0),    # given
])
def test_the_deadline_margin_is_automatic_unless_given(resources, margin):
    assert Resources(**resources).deadline_margin_seconds == margin


@pytest.mark.parametrize("section, fault", [
    ("model: {type: alif, n_hidden: -3}\ntraining: {lr: fast}", ["model.n_hidden: expected a positive integer, got -3",
                                                               "training.lr: expected a positive number, got 'fast'"]),
    ("model: {type: alif}\ndataset: {type: shd, train_path: nothere.h5}", ["dataset.train_path: file not found: nothere.h5"]),
    ("model: {type: alif}\nlearning: {rule: rls}", ["learning.rule: 'rls' does not train model 'alif' "
                                                    "(choose from: bptt, eprop)"]),
])
def test_a_typo_in_a_sweep_axis_is_reported_with_the_other_problems(section, fault):
    found = problems(f"{section}\nsweep:\n  grid: {{adapt_jmp: [0.1, 0.2]}}\n")
    assert any(p.startswith("sweep.grid.adapt_jmp: unknown parameter 'adapt_jmp' (did you mean 'adapt_jump'?)")
               for p in found), found
    for expected in fault:
        assert any(p.startswith(expected) for p in found), (expected, found)
    assert len(found) == len(fault) + 1, found
