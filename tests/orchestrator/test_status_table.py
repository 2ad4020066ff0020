"""The status table is laid out exactly as rich's Table lays out the same columns."""
from __future__ import annotations

import io
import time

import pytest
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from snnbatch.jobs.store import TaskStore
from snnbatch.orchestrator.cli import status as st

SPEC = """\
name: table-test
sweep:
  grid: {lr: [1.0e-3, 3.0e-3, 1.0e-2], n_hidden: [64, 128]}
  seeds: 2
"""


def _rich_table(cols, rows) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1), collapse_padding=True,
                  header_style="bold")
    for header, _, cells in cols:
        table.add_column(header, justify="left" if header in ("task", "state", "job") else "right", no_wrap=True,
                         overflow="ellipsis", width=st._width(header, cells))
    for i, r in enumerate(rows):
        table.add_row(*[Text(c[2][i], style=st.STYLE.get(r["state"], "") if c[0] == "state" else "") for c in cols])
    return table


def _plain(obj, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, soft_wrap=True, color_system=None).print(obj)
    return out.getvalue()


@pytest.fixture
def rows(planned_store):
    store, tasks, _, _ = planned_store(SPEC)
    t0 = time.time() - 500
    attempts = [{"n": 1, "started": t0, "ended": t0 + 75, "host": "h"}]
    for i, t in enumerate(tasks[:6]):
        TaskStore(store.path, t.id).update_status(state="done", iteration=100, total=100, loss=0.1 + i, accuracy=0.9,
                                                  test_accuracy=0.85, attempts=attempts * (1 + i % 2))
    TaskStore(store.path, tasks[6].id).update_status(state="failed", iteration=3, total=100, loss=123456.0,
                                                     error_line="MemoryError", attempts=attempts)
    TaskStore(store.path, tasks[7].id).update_status(state="running", iteration=50, total=100, attempts=attempts)
    store.record_submission([tasks[0].id], "local", {tasks[0].id: {"job_id": "77_3"}})
    return store, st.task_rows(store)


def _cols(store, rows):
    return st._columns(rows, st.table_metrics(store, rows))


@pytest.mark.parametrize("width", [40, 60, 80, 120, 200])
def test_same_layout_as_rich_table(rows, width):
    store, rows = rows
    cols = st._fit(_cols(store, rows), width)
    shown = st.render(store, rows, width).renderables[1]
    assert isinstance(shown, Text) == (st._need(cols) <= width)  # too narrow even so: rich shrinks the columns
    assert _plain(shown, width) == _plain(_rich_table(cols, rows), width)


def test_state_cells_keep_their_style(rows):
    store, rows = rows
    cols = st._fit(_cols(store, rows), 200)
    text = st.table_text(cols, rows)
    styled = {text.plain[span.start:span.end].strip(): str(span.style) for span in text.spans}
    assert styled["done"] == st.STYLE["done"] and styled["failed"] == st.STYLE["failed"]
    assert styled["interrupted"] == st.STYLE["interrupted"]  # running without a live lease
