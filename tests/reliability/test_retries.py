"""Retries: a failing task is tried again up to ``resources.retries`` times; the sweep goes on.

A real failure from a valid spec: a learning rate of 1e38 makes the float32 weights
overflow within a few iterations, and the runner refuses to go on with (or
checkpoint) a state that is not finite. A passing failure is made by a
trainer that raises once, in this process.
"""
from __future__ import annotations

import pytest

from snnbatch.jobs.runner import run_task

from .conftest import SMALL, assert_same_as, make_store, snnbatch, spec_text, status_of

TEXT = spec_text(SMALL, checkpoint={"every_iterations": 5, "keep": 2}, resources={"retries": 2},
                 sweep={"grid": {"lr": [1.0e38, 2.0e-3]}})


def test_diverging_task_is_retried_then_failed_and_the_sweep_finishes(tmp_path, references):
    spec = tmp_path / "sweep.yaml"
    spec.write_text(TEXT)
    store = tmp_path / "store"
    r = snnbatch("submit", spec, "--store", store, "--backend", "inline", "--no-progress")
    assert r.returncode == 1, r.stdout + r.stderr  # one task failed
    assert "finished: 1 done, 1 failed" in r.stdout and "Traceback" not in r.stderr
    ids = sorted((p.name for p in (store / "tasks").iterdir() if p.is_dir()),
                 key=lambda tid: status_of(store, tid)["state"] != "failed")
    bad, good = (status_of(store, tid) for tid in ids)
    assert bad["state"] == "failed"
    assert len(bad["attempts"]) == 3  # the first try and two retries
    for a in bad["attempts"]:
        assert a["reason"] == "error"
        assert a["error_line"].startswith("FloatingPointError: ") and "is not finite at iteration" in a["error_line"]
    assert bad["attempts"][1]["started"] - bad["attempts"][0]["ended"] >= 1.0  # a pause before retrying
    assert bad["error_line"] == bad["attempts"][-1]["error_line"]
    assert bad["error"].startswith("Traceback") and "FloatingPointError" in bad["error"]
    assert good["state"] == "done" and len(good["attempts"]) == 1
    # the other task is untouched by its neighbour's failures (lr 2e-3 is SMALL's own)
    good_id = next(tid for tid in ids if status_of(store, tid)["state"] == "done")
    assert_same_as(store, references(SMALL), good_id)


@pytest.mark.parametrize("retries", [0, 1])
def test_a_passing_failure_is_retried_from_the_last_checkpoint(tmp_path, references, monkeypatch, retries):
    text = spec_text(SMALL, checkpoint={"every_iterations": 5, "keep": 2}, resources={"retries": retries})
    store, (tid,) = make_store(tmp_path / "store", text)
    # imported here, not at collection: Numba must load after the runner set its thread count
    from snnbatch.jobs import lif_bptt

    step = lif_bptt.LIFBPTTTrainer.step
    failed = []

    def flaky_step(self, state):
        if state.iteration == 12 and not failed:
            failed.append(state.iteration)
            raise OSError("the dataset server went away")
        return step(self, state)

    monkeypatch.setattr(lif_bptt.LIFBPTTTrainer, "step", flaky_step)
    outcome = run_task(store.path, tid)
    st = status_of(store.path, tid)
    first = st["attempts"][0]
    assert (first["reason"], first["error_line"]) == ("error", "OSError: the dataset server went away")
    if retries == 0:
        assert outcome.state == "failed" and st["state"] == "failed" and len(st["attempts"]) == 1
        assert "the dataset server went away" in outcome.error
        return
    assert outcome.state == "done" and len(st["attempts"]) == 2
    assert st["attempts"][1]["from_iteration"] == 10  # the last checkpoint before the failure
    assert st["error"] is None
    assert_same_as(store.path, references(text), tid)
