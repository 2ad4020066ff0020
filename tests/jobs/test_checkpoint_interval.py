"""When the runner checkpoints: a given ``every_iterations`` exactly; ``auto`` never costs more than ``max_overhead``."""
from __future__ import annotations

import pytest

from snnbatch.jobs.runner import run_task
from snnbatch.jobs.store import SLOW_CHECKPOINT_ENV, TaskStore
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore

SPEC = """
name: interval
dataset: {n_train: 128, n_test: 64, n_inputs: 10, n_steps: 20}
model: {n_hidden: 8}
training: {iterations: 1000, batch_size: 32}
checkpoint: {every_iterations: %s, max_overhead: 0.01, every_minutes: 60}
"""


def _checkpointed(tmp_path, monkeypatch, every) -> list[int]:
    text = SPEC % every
    spec = spec_mod.parse(text)
    (task,) = planner.plan(spec)
    store, _ = RunStore.create_or_update(tmp_path / "store", spec, text, [task])
    saved = []
    save = TaskStore.save_checkpoint

    def recording(self, state, keep, extra=None):
        saved.append(state.iteration)
        return save(self, state, keep, extra)

    monkeypatch.setattr(TaskStore, "save_checkpoint", recording)
    # each of a checkpoint's arrays takes 20 ms more: a checkpoint costs well over 0.1 s, so 1 % of
    # the time allows one every 10 s or more, far longer than 1000 iterations of this network take
    monkeypatch.setenv(SLOW_CHECKPOINT_ENV, "0.02")
    assert run_task(store.path, task.id).state == "done"
    return saved


@pytest.mark.parametrize("every", [200, 300])
def test_a_given_interval_is_kept_exactly(tmp_path, monkeypatch, every):
    assert _checkpointed(tmp_path, monkeypatch, every) == [*range(every, 1000, every), 1000]


def test_auto_defers_checkpoints_that_would_cost_more_than_max_overhead(tmp_path, monkeypatch):
    # the first at 200 iterations (nothing is known of the cost yet), then only the final one
    assert _checkpointed(tmp_path, monkeypatch, "auto") == [200, 1000]
