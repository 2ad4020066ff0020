"""plan --estimate: one timing per network shape, extrapolated to each task's length."""
import re

from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.estimate import estimate, shape_key

SPEC = """\
name: est
dataset: {n_train: 64, n_test: 32, n_inputs: 16, n_steps: 20}
model: {n_hidden: 8}
training: {batch_size: 32}
sweep:
  grid: {n_hidden: [8, 32], lr: [1.0e-3, 2.0e-3], iterations: [5, 50]}
"""


def test_one_timing_per_shape_and_longer_tasks_take_longer():
    tasks = planner.plan(spec_mod.parse(SPEC))
    assert len({shape_key(t) for t in tasks}) == 2  # lr and the length do not change an iteration's cost
    shapes = estimate(tasks, cpus=1, min_seconds=0.05)
    assert sorted(len(s.tasks) for s in shapes) == [4, 4]
    for shape in shapes:
        by_length = {t.config.training.iterations: shape.task_seconds(t) for t in shape.tasks}
        assert by_length[50] > by_length[5] > 0
        assert abs((by_length[50] - by_length[5]) - 45 * shape.iteration_s) < 1e-9


def test_validations_are_counted_for_the_tasks_that_validate():
    text = SPEC.replace("n_steps: 20}", "n_steps: 20, n_valid: 32}").replace(
        "grid: {n_hidden: [8, 32], lr: [1.0e-3, 2.0e-3], iterations: [5, 50]}",
        "grid: {validate_every: [null, 10], iterations: [50]}")
    tasks = planner.plan(spec_mod.parse(text))
    shapes = {s.tasks[0].config.training.validate_every: s for s in estimate(tasks, cpus=1, min_seconds=0.05)}
    assert shapes[None].validate_s == 0.0 and shapes[10].validate_s > 0
    shape = shapes[10]
    (task,) = shape.tasks
    plain = shape.build_s + shape.evaluate_s + 50 * shape.iteration_s
    assert abs(shape.task_seconds(task) - plain - 5 * shape.validate_s) < 1e-9  # at 10, 20, ..., 50


def test_plan_estimate_prints_the_shapes_and_the_core_hours(cli, write_spec):
    result = cli("plan", write_spec(SPEC), "--estimate")
    assert result.exit_code == 0, result.output
    assert "n_hidden=8" in result.output and "n_hidden=32" in result.output
    assert re.search(r"estimated: [0-9.]+ core-hours in all; the longest task", result.output)
