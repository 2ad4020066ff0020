"""The status table gives training, validation and test accuracy (and the losses) the same decimals."""
from __future__ import annotations

import time

from snnbatch.jobs.store import TaskStore
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.cli.status import _columns, table_metrics, task_rows, validation_metrics
from snnbatch.orchestrator.store import RunStore


def test_accuracy_columns_share_their_decimals(tmp_path):
    text = "name: decimals\nsweep: {seeds: 3}\n"
    (tmp_path / "spec.yaml").write_text(text)
    spec = spec_mod.load(tmp_path / "spec.yaml")
    store, _ = RunStore.create_or_update(tmp_path / "store", spec, text, planner.plan(spec))
    now = time.time()
    for t, test in zip(store.tasks(), (0.953, 0.961, 0.948)):
        # the training accuracy is 1 (alone it would take 2 decimals), the test accuracy below it (3)
        TaskStore(store.path, t["id"]).update_status(
            state="done", iteration=10, total=10, loss=0.0123, accuracy=1.0, test_accuracy=test, test_loss=0.21,
            attempts=[{"n": 1, "started": now - 5, "ended": now}])
    rows = task_rows(store)
    cols = {h: cells for h, _, cells in _columns(rows, table_metrics(store, rows), validation_metrics(store))}
    assert cols["accuracy"] == ["1.000"] * 3 and cols["test accuracy"] == ["0.953", "0.961", "0.948"]
    assert cols["loss"] == ["0.0123"] * 3  # another kind: its own decimals
