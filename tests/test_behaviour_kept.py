"""Task ids and result bits recorded from an earlier commit are kept, bit for bit.

``tests/golden/behaviour.json`` was written by ``tests/golden/record_behaviour.py``
from a clean checkout of the commit named in its ``recorded_from``. It holds:

* ``plans``: spec texts (every ``examples/*.yaml`` and specs covering each model
  type, learning rule and sweep kind: grid, zip, random, seeds) with the ordered
  task ids and ``params`` the planner gave. Planned again, each text must give
  the same ids in the same order and the same params, values and JSON types
  alike (``1`` is not ``1.0``). ``examples/shd.yaml`` is not among them: its
  ids hash the absolute paths of the data files, so they depend on where the
  files are.
* ``bits``: small runs of every (model, learning rule) pair in float32 and
  float64, each task run inline with ``run_task``. Run again, each must give the
  same sha256 for every checkpoint array and metric history (with the same
  dtype and shape) and exactly the same final metrics of its status record.

Cases marked ``expected_to_change`` (e-prop in float32) are not compared bit for
bit: a planned fix of the e-prop kernel changes their float32 results on
purpose. They must still run to completion, with the same task ids and the same
array names, dtypes and shapes, and finite final metrics. Once the fix is in,
record the file again and drop the mark.

Entries a commit changed on purpose were recorded again (``rerecorded``: why, from which
commit, what they held before). Since recurrent networks got their own defaults
(``recurrent_weight_scale`` and ``recurrent_lr_scale``), a recurrent task planned from a spec
that leaves them out has a new id: in a re-recorded plan exactly the tasks of recurrent networks
changed their ids, and a re-recorded run's ``legacy_text`` (the spec as a stored config from
before reads: ``recurrent_weight_scale: null``) still gives the bits recorded before.

The bits are those of one CPU type and of the NumPy / Numba versions in
``recorded_from`` (the thread count never changes them). The packed RLS kernel
compiles its dot products with reassociation allowed, so on another CPU type
its last bits may differ; re-record on the machine that runs the tests if so.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from snnbatch import open_run
from snnbatch.jobs.runner import run_task
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore

GOLDEN = json.loads((Path(__file__).parent / "golden" / "behaviour.json").read_text(encoding="utf-8"))
RECORDED_FROM = ", ".join(f"{k} {v}" for k, v in GOLDEN["recorded_from"].items())


def _typed(value) -> str:
    """A value with its JSON type: ``1`` and ``1.0``, ``True`` and ``1`` differ."""
    return json.dumps(value, sort_keys=True)


def _digest(array) -> dict:
    a = np.ascontiguousarray(array)
    return {"sha256": hashlib.sha256(a.tobytes()).hexdigest(), "dtype": str(a.dtype), "shape": list(a.shape)}


def _layout(digests: dict) -> dict:
    return {k: (d["dtype"], d["shape"]) for k, d in digests.items()}


@pytest.mark.parametrize("name", list(GOLDEN["plans"]))
def test_planning_gives_the_recorded_task_ids_and_params(name):
    recorded = GOLDEN["plans"][name]
    tasks = planner.plan(spec_mod.parse(recorded["text"]))
    assert [t.id for t in tasks] == [t["id"] for t in recorded["tasks"]], f"{name}: task ids or their order changed"
    assert [_typed(t.params) for t in tasks] == [_typed(t["params"]) for t in recorded["tasks"]], (
        f"{name}: task params changed")


@pytest.mark.parametrize("name", [n for n, p in GOLDEN["plans"].items() if "rerecorded" in p])
def test_rerecorded_plans_changed_the_ids_of_recurrent_tasks_only(name):
    entry = GOLDEN["plans"][name]
    before = [t["id"] for t in entry["rerecorded"]["before"]["tasks"]]
    tasks = planner.plan(spec_mod.parse(entry["text"]))
    assert len(tasks) == len(before)
    changed = [t.id != b for t, b in zip(tasks, before)]
    recurrent = [bool(getattr(t.config.model, "recurrent", False)) for t in tasks]
    assert changed == recurrent, f"{name}: ids changed {changed}, recurrent networks {recurrent}"


def _run_and_compare(name, case, text, recorded_tasks, tmp_path):
    spec = spec_mod.parse(text)
    tasks = planner.plan(spec)
    assert len(tasks) == len(recorded_tasks), f"{name}: number of tasks changed"
    store, _ = RunStore.create_or_update(tmp_path / "store", spec, text, tasks)
    for t, recorded in zip(tasks, recorded_tasks.values()):
        outcome = run_task(store.path, t.id)
        assert outcome.state == "done", f"{name}: task {t.id} ended {outcome.state}: {outcome.error}"
        result = open_run(store.path).task(t.id)
        checkpoint = {k: _digest(v) for k, v in result.checkpoint.items()}
        metrics = {k: _digest(v) for k, v in result.metrics.items()}
        assert set(checkpoint) == set(recorded["checkpoint"]), f"{name}: checkpoint arrays changed"
        assert set(metrics) == set(recorded["metrics"]), f"{name}: metric histories changed"
        assert set(recorded["final"]) <= set(result.status), f"{name}: final metrics missing"
        final = {k: float(result.status[k]) for k in recorded["final"]}
        if case["expected_to_change"]:
            assert _layout(checkpoint) == _layout(recorded["checkpoint"]), f"{name}: checkpoint layout changed"
            assert _layout(metrics) == _layout(recorded["metrics"]), f"{name}: metric layout changed"
            assert all(math.isfinite(v) for v in final.values()), f"{name}: {final}"
            continue
        where = f"{name}, task {t.id} (recorded from {RECORDED_FROM})"
        changed = [k for k in sorted(checkpoint) if checkpoint[k] != recorded["checkpoint"][k]]
        assert not changed, f"{where}: checkpoint arrays with other bits: {changed}"
        changed = [k for k in sorted(metrics) if metrics[k] != recorded["metrics"][k]]
        assert not changed, f"{where}: metric histories with other bits: {changed}"
        changed = {k: (recorded["final"][k], v) for k, v in final.items() if v != recorded["final"][k]}
        assert not changed, f"{where}: final metrics (recorded, now): {changed}"


@pytest.mark.parametrize("name", list(GOLDEN["bits"]))
def test_runs_give_the_recorded_bits(name, tmp_path):
    case = GOLDEN["bits"][name]
    tasks = planner.plan(spec_mod.parse(case["text"]))
    assert [t.id for t in tasks] == list(case["tasks"]), f"{name}: task ids changed"
    _run_and_compare(name, case, case["text"], case["tasks"], tmp_path)


@pytest.mark.parametrize("name", [n for n, c in GOLDEN["bits"].items() if "legacy_text" in c.get("rerecorded", {})])
def test_stored_configs_from_before_a_rerecord_give_the_bits_recorded_before(name, tmp_path):
    case = GOLDEN["bits"][name]
    _run_and_compare(name, case, case["rerecorded"]["legacy_text"], case["rerecorded"]["before"]["tasks"], tmp_path)
