"""snnbatch status STORE"""
from __future__ import annotations

import json
import math
import statistics
import time
from collections import defaultdict
from typing import Mapping

import click
from rich import box
from rich.console import Group
from rich.segment import Segment
from rich.table import Table
from rich.text import Span, Text

from ...jobs.status import TaskStatus
from ..results import format_duration
from .. import halving
from ..store import RunStore, without_gc
from .app import console, run_command

STATES = ("pending", "queued", "running", "interrupted", "done", "failed")
FINAL = {"done", "failed", "pruned"}
STYLE = {"done": "green", "failed": "bold red", "running": "cyan", "queued": "blue", "interrupted": "yellow",
         "pending": "dim", "parked": "magenta", "pruned": "dim"}
ID_CHARS = 8  # task ids in the table; --json has them whole
MAX_ERROR_LINES = 20  # more failed tasks than this: their errors are grouped by message


# The fields of a task's --json record besides its metrics (which follow "total").
FIELDS = ("id", "index", "state", "params", "iteration", "total", "attempts", "elapsed_s", "job_id",
          "scheduler_state", "error", "stopped_early", "best_iteration", "selected_on", "rung",
          "halving")


PENDING = TaskStatus()  # the record of every task that never started (read, never changed)


def _never_started(status: dict) -> bool:
    return len(status) == 1 and status.get("state") == "pending"


def task_rows(store: RunStore, tasks: list[dict] | None = None) -> list[dict]:
    """One plain record per task: the stable form behind ``--json``; ``tasks``: the store's
    :meth:`~RunStore.tasks`, when the caller has read them already.

    Besides :data:`FIELDS`, a record has one field per metric the run's algorithms declare
    (:func:`metric_names`): its latest value, or None.
    """
    from ..scheduler import merge

    tasks = merge(store.tasks(configs=False) if tasks is None else tasks)
    records = [PENDING if _never_started(t["status"]) else TaskStatus.from_attrs(t["status"]) for t in tasks]
    metrics = [m for m in metric_names(store, records) if m not in FIELDS]
    rows = []
    now = time.time()
    unstarted = {m: None for m in metrics}  # the middle of a row of a task that never started
    unstarted.update({"attempts": 0, "elapsed_s": 0.0})
    for t, st in zip(tasks, records):
        sched = t["scheduler"]
        if st is PENDING and "halving" not in t:  # the same as below, without the work
            row = {"id": t["id"], "index": t["index"], "state": t["state"], "params": t["params"], "iteration": 0,
                   "total": None, **unstarted, "job_id": sched.get("job_id"),
                   "scheduler_state": t.get("scheduler_state") or sched.get("scheduler_state"), "error": None,
                   "stopped_early": None, "best_iteration": None, "selected_on": None}
            rows.append(row)
            continue
        row = {
            "id": t["id"],
            "index": t["index"],
            "state": t["state"],
            "params": t["params"],
            "iteration": st.iterations_done,
            "total": st.total,
        }
        row.update({m: st.metrics.get(m) for m in metrics})
        row.update({
            "attempts": len(st.attempts),
            "elapsed_s": round(st.elapsed(t["state"], now), 1),
            "job_id": sched.get("job_id"),
            "scheduler_state": t.get("scheduler_state") or sched.get("scheduler_state"),
            "error": st.error_summary if t["state"] == "failed" else None,
            "stopped_early": st.stopped_early,
            "best_iteration": st.best_iteration,
            "selected_on": st.selected_on,
        })
        if "halving" in t:  # a halving sweep: the task's rung, and promoted or pruned
            row.update(rung=t["halving"]["rung"], halving=t["halving"]["halving"])
        rows.append(row)
    return rows


def json_document(head: dict, rows: list[dict]) -> str:
    """``head`` and ``"tasks": rows`` as one JSON document, indented, each task on one line (json
    indents only in Python: about a second for 10,000 tasks; one line per task is its C encoder's)."""
    text = json.dumps({**head, "tasks": []}, indent=2)
    assert text.endswith("[]\n}")
    if not rows:
        return text
    encode = _row_encoder()
    return text[: -len("[]\n}")] + "[\n" + ",\n".join(["    " + encode(r) for r in rows]) + "\n  ]\n}"


def _row_encoder():
    """``json.dumps`` of a row: json's C encoder made once for all of them (json.dumps makes one per call,
    a third of the time for 100,000 rows), which writes the same text."""
    from json.encoder import JSONEncoder, c_make_encoder, encode_basestring_ascii

    if c_make_encoder is None:
        return json.dumps
    encoder = c_make_encoder({}, JSONEncoder().default, encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return lambda row: "".join(encoder(row, 0))


def _state(row: dict) -> str:
    if row["state"] == "done" and row.get("stopped_early"):
        return f"done (stopped early at iteration {row['stopped_early']})"
    return row["state"]


def metric_names(store: RunStore, records: list[TaskStatus]) -> list[str]:
    """Every metric the run's algorithms declare, in declaration order, as the store records them;
    for a store planned before snnbatch recorded them, every metric its tasks reported."""
    declared = store.metrics()
    if declared:
        return list(declared)
    return list(dict.fromkeys(k for r in records for k in r.metrics))


def table_metrics(store: RunStore, rows: list[dict]) -> dict[str, bool]:
    """The metrics of the table, each with whether it is held out (reported once, at the end):
    those the run's algorithms declare for status (``Metric(status=True)``); for a store without
    that record, every metric of the rows."""
    declared = store.metrics()
    if declared:
        return {m: bool(record.get("final")) for m, record in declared.items()
                if record.get("status") and m not in FIELDS}
    return dict.fromkeys((k for r in rows for k in r if k not in FIELDS), False)


def validation_metrics(store: RunStore) -> set[str]:
    """The metrics the run's algorithms declare as validation metrics (``Metric(validation=True)``)."""
    return {m for m, record in store.metrics().items() if record.get("validation")}


def _header(metric: str, held_out: bool) -> str:
    """A metric column's header: its name, and "test" before a held-out metric whose name does not say so
    (the dendritic and FORCE ``correlation``), so that validation and test columns are told apart."""
    name = metric.replace("_", " ")
    return f"test {name}" if held_out and not metric.startswith("test_") else name


def summary(rows: list[dict]) -> dict[str, int]:
    counts = {s: 0 for s in STATES}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    return counts


def _places(values: list) -> int:
    """As many decimals as show 3 significant digits of the typical value (0.910, 2.31, 41.7)."""
    sizes = [abs(v) for v in values if v is not None and math.isfinite(v) and v != 0]
    return 3 if not sizes else min(6, max(0, 2 - math.floor(math.log10(statistics.median(sizes)))))


def _metric_cells(values: list, places: int | None = None) -> list[str]:
    """A metric column with ``places`` decimals (default :func:`_places` of its values), the same in
    every row; very large values in exponent form."""
    places = _places(values) if places is None else places
    return ["" if v is None else f"{v:.4g}" if abs(v) >= 1e5 else f"{v:.{places}f}" for v in values]


def _kind(metric: str) -> str:
    """What a metric measures whichever split it is of (training, valid_, test_): columns of one
    kind get the same decimals, so that training and test accuracy read alike."""
    return metric.split("_", 1)[1] if metric.startswith(("valid_", "test_")) else metric


def _param(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _columns(rows: list[dict], metrics: Mapping[str, bool] | None = None,
             validation: set[str] | frozenset = frozenset()) -> list[tuple[str, int, list[str]]]:
    """(header, priority, cells) of every column worth showing; a higher priority number is dropped first.

    ``metrics``: the metric columns (:func:`table_metrics`), headed by their names (a held-out one
    "test ..." when its name does not say so), each shown when a task has a value; ``validation``:
    those of them that are validation metrics (:func:`validation_metrics`, "valid ..."). When the
    table is too wide, the held-out metrics stay longest (when none is marked, the last declared: by
    convention the held-out one), the first training metric (the objective) and the validation
    metrics next; the others go first.
    """
    varying = [k for k in (rows[0]["params"] if rows else {}) if len({repr(r["params"].get(k)) for r in rows}) > 1]
    cols = [("task", 0, [r["id"][:ID_CHARS] for r in rows])]
    cols += [(k.rsplit(".", 1)[-1], 1, [_param(r["params"].get(k)) for r in rows]) for k in varying]
    cols.append(("state", 0, [_state(r) for r in rows]))
    cols.append(("iter", 0, [f"{r['iteration']}/{r['total']}" if r["total"] else "" for r in rows]))
    if [r.get("rung") for r in rows].count(None) != len(rows):  # (a list's count: 100,000 rows in milliseconds)
        cols.append(("rung", 1, [f"{r['rung']} {r['halving'] or ''}".rstrip() for r in rows]))
    metrics = metrics or {}
    values = {m: [r.get(m) for r in rows] for m in metrics}
    shown = [m for m in metrics if values[m].count(None) != len(rows)]
    held_out = {m for m in shown if metrics[m]} or set(shown[-1:])
    training = [m for m in shown if m not in held_out and m not in validation]
    kinds: dict[str, list] = {}
    for m in shown:
        kinds.setdefault(_kind(m), []).extend(values[m])
    for m in shown:
        priority = 2 if m in held_out else 3 if m in validation or training[:1] == [m] else 6
        cells = _metric_cells(values[m], _places(kinds[_kind(m)]))
        cols.append((_header(m, m in held_out and bool(metrics[m])), priority, cells))
    if any([r.get("selected_on") for r in rows]):  # validating tasks: the iteration their result comes from
        cols.append(("best at", 4, [str(r["best_iteration"]) if r.get("selected_on") else "" for r in rows]))
    if max([r["attempts"] for r in rows], default=0) > 1:
        cols.append(("tries", 7, [str(r["attempts"]) for r in rows]))
    cols.append(("time", 5, [format_duration(r["elapsed_s"]) if r["attempts"] else "" for r in rows]))
    if any([r["job_id"] or r["scheduler_state"] for r in rows]):
        cols.append(("job", 4, [f"{r['job_id'] or ''} {r['scheduler_state'] or ''}".strip() for r in rows]))
    return cols


def _width(header: str, cells: list[str]) -> int:
    return max(len(header), max(map(len, cells), default=0))


def _need(cols) -> int:
    """The table's width: its columns and two spaces between each two."""
    return sum(_width(h, cells) for h, _, cells in cols) + 2 * (len(cols) - 1)


def _fit(cols, width: int):
    """Drop the least important columns until the table fits ``width`` terminal columns."""
    cols = list(cols)
    while _need(cols) > width:
        worst = max(cols, key=lambda c: c[1])
        if worst[1] <= 1:
            break
        cols.remove(worst)
    return cols


def _wrapping(text: Text) -> Text:
    """Wrap at the terminal's width, also on a console that leaves long lines to the terminal."""
    text.no_wrap, text.overflow = False, "fold"
    return text


def _errors(rows: list[dict]) -> list:
    """The failed tasks' error lines, wrapped beside their ids; grouped by message when there are many."""
    failed = [r for r in rows if r["state"] == "failed"]
    if not failed:
        return []
    grid = Table.grid(padding=(0, 2), pad_edge=False)
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(overflow="fold")
    if len(failed) <= MAX_ERROR_LINES:
        for r in failed:
            grid.add_row(f"  {r['id'][:ID_CHARS]}", r["error"] or "(no error recorded)")
    else:
        by_line = defaultdict(list)
        for r in failed:
            by_line[r["error"] or "(no error recorded)"].append(r["id"][:ID_CHARS])
        for line, ids in sorted(by_line.items(), key=lambda kv: -len(kv[1])):
            more = f" +{len(ids) - 3} more" if len(ids) > 3 else ""
            grid.add_row(f"  {len(ids)} tasks", f"{line} ({', '.join(ids[:3])}{more})")
    return [_wrapping(Text(f"{len(failed)} failed:", style="bold red")), grid]


def render(store: RunStore, rows: list[dict], width: int | None = None) -> Group:
    """The summary line, the task table (columns fitted to ``width``) and the failed tasks' errors."""
    width = width or console.width
    counts = summary(rows)
    head = Text.assemble((store.name, "bold"), f" ({store.path}): {len(rows)} tasks: ")
    parts = [(f"{n} {s}", STYLE.get(s, "")) for s, n in counts.items() if n]
    for i, p in enumerate(parts):
        head.append_text(Text(p[0], style=p[1]))
        if i < len(parts) - 1:
            head.append(", ")
    cols = _fit(_columns(rows, table_metrics(store, rows), validation_metrics(store)), width)
    table = table_text(cols, rows) if _need(cols) <= width else _rich_table(cols, rows)
    return Group(_wrapping(head), table, *_errors(rows))


def _rich_table(cols, rows: list[dict]) -> Table:
    """The table for a terminal too narrow even for the columns never dropped: rich shrinks them."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1), collapse_padding=True,
                  header_style="bold")
    for header, _, cells in cols:
        left = header in ("task", "state", "job")
        table.add_column(header, justify="left" if left else "right", no_wrap=True, overflow="ellipsis",
                         width=_width(header, cells))
    for i, r in enumerate(rows):
        table.add_row(*[Text(c[2][i], style=STYLE.get(r["state"], "") if c[0] == "state" else "") for c in cols])
    return table


class LaidOut(Text):
    """A text laid out already in lines that fit the width: rendered as it is, without rich's wrapping
    line by line (which costs seconds for 100,000 lines); on a console without colour (a pipe, a file)
    as one segment of plain text, which is what its styles come to there."""

    def __rich_console__(self, console, options):
        if console.color_system is None and not console.record:
            yield Segment(self.plain + self.end)
            return
        yield from self.render(console, end=self.end)


def table_text(cols, rows: list[dict]) -> Text:
    """The task table as one :class:`Text`, laid out as rich's ``Table`` lays it out with these fixed
    column widths (box SIMPLE_HEAD without edges, padding collapsed to two spaces between columns).

    Built directly because rich lays out a table cell by cell: about a second for 1,000 tasks. Every
    cell is padded to its column's width, so each row is its cells joined (column by column: 100,000
    rows in a fraction of a second) and the state cell of every row starts at the same place: its colour
    is a span there.
    """
    widths = [_width(header, cells) for header, _, cells in cols]
    left = [header in ("task", "state", "job") for header, _, _ in cols]
    padded = [[c.ljust(w) for c in cells] if lj else [c.rjust(w) for c in cells]
              for (_, _, cells), w, lj in zip(cols, widths, left)]
    head = "  ".join(h.ljust(w) if lj else h.rjust(w) for (h, _, _), w, lj in zip(cols, widths, left))
    rule = "─" * (sum(widths) + 2 * (len(cols) - 1))
    lines = ["  ".join(cells) for cells in zip(*padded)] if cols else ["" for _ in rows]
    text = LaidOut("\n".join([head, rule, *lines]), no_wrap=True, end="\n")
    text.stylize("bold", 0, len(head))
    state_col = next((i for i, (header, _, _) in enumerate(cols) if header == "state"), None)
    if state_col is not None:
        offset = sum(widths[:state_col]) + 2 * state_col
        at = len(head) + 1 + len(rule) + 1
        length = len(lines[0]) if lines else 0  # every row has the same length
        spans = text.spans
        for r in rows:
            style = STYLE.get(r["state"])
            if style:
                spans.append(Span(at + offset, at + offset + widths[state_col], style))
            at += length + 1
    return text


@click.command("status")
@click.argument("store_path", metavar="STORE", type=click.Path(file_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print a stable JSON document, for scripts (fields below).")
@click.option("--watch", is_flag=True, help="Refresh until every task is done or failed (Ctrl-C stops watching).")
@click.option("--interval", type=click.FloatRange(min=0.2), default=2.0, show_default=True,
              help="Seconds between refreshes with --watch.")
@click.option("--view", type=click.Choice(["compact", "table"]), default="compact", show_default=True,
              help="With --watch: compact (a line per state with its count, then the slowest and fastest running "
                   "tasks by iterations per second, with their ETA) or table (the whole table).")
@run_command
def status_command(store_path, as_json, watch, interval, view):
    """Show each task's state, progress and metrics, read from STORE.

    The table shows the first 8 characters of each task id, the swept parameters that
    vary, the state, iterations done/total, the metrics the run's algorithms show in status
    (lif: loss, accuracy, test_accuracy; force: loss, correlation), attempts (when a task was
    retried), wall time and the scheduler's job id and state; failed tasks' errors follow it.
    Columns that do not fit the terminal are left out.

    \b
    --json prints {"store", "name", "summary", "tasks"}:
      summary   tasks per state: pending, queued, running, interrupted, done, failed
      tasks     one record per task, in plan order:
        id               the task id (12 hex digits)
        index            its place in the plan
        state            pending | queued | running | interrupted | done | failed
        params           the swept values, by axis name, and "seed"
        iteration        iterations done; total: iterations planned (null before the start)
        <metric>         one field per metric the run's algorithms declare (lif: loss, accuracy,
                         test_loss, test_accuracy): the latest value, null before the first
                         report; held-out ones once done
        attempts         how many times it started; elapsed_s: wall time over all attempts
        job_id, scheduler_state    the cluster job and what the scheduler says (null locally)
        error            a failed task's last error line (else null)
        rung, halving    only in a halving sweep: the rung the task stands in (0 first) and "promoted" or
                         "pruned" once a rung decided on it (null while its rung is open)

    \b
    Examples:
      snnbatch status runs/quickstart
      snnbatch status runs/quickstart --json | jq '.summary'
      snnbatch status runs/quickstart --watch
      snnbatch status runs/quickstart --watch --view table
    """
    store = RunStore.open(store_path)
    halving.decide(store, by="status")  # a halving rung every task of which has parked, left undecided
    if as_json:
        with without_gc():
            rows = task_rows(store)
        click.echo(json_document({"store": str(store.path), "name": store.name, "summary": summary(rows)}, rows))
        return
    if not watch:
        with without_gc():
            shown = render(store, task_rows(store))
        console.print(shown)
        return
    from .. import watch as live
    from ..progress import Counts

    def read():
        tasks = store.tasks(configs=False)  # read once for both: about a second for 1,000 tasks
        return task_rows(store, tasks), Counts(tasks)

    if view == "table":
        show = lambda rows, counts: render(store, rows)  # noqa: E731
    else:
        show = lambda rows, counts: live.compact(store.name, str(store.path), rows, counts)  # noqa: E731
    live.watch(read, show, console, interval)


COMMANDS = [status_command]
