"""snnbatch plan SPEC"""
from __future__ import annotations

import json
import math
from json.encoder import encode_basestring_ascii

import click
from rich.table import Table

from .. import planner, spec as spec_mod
from .app import console, run_command


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def plan_json(name: str, summary, tasks) -> str:
    """``json.dumps({"name", "summary", "tasks": [{"id", "index", "params", "config"}, ...]}, indent=2)``, the
    same text, with each task's config put together from its sections' JSON (json indents only in Python:
    most of 20 s for 100,000 tasks)."""
    text = json.dumps({"name": name, "summary": summary.__dict__, "tasks": []}, indent=2)
    assert text.endswith("[]\n}")
    if not tasks:
        return text
    pad = "\n" + " " * 6
    items = [f'    {{{pad}"id": "{t.id}",{pad}"index": {t.index},'
             f'{pad}"params": {_indented(t.params, pad)},'
             f'{pad}"config": {t.config_json(indent=2, pad=pad[1:])}\n    }}' for t in tasks]
    return text[: -len("[]\n}")] + "[\n" + ",\n".join(items) + "\n  ]\n}"


_NAMED = {True: "true", False: "false", None: "null"}


def _indented(params: dict, pad: str) -> str:
    """``json.dumps(params, indent=2)`` with each line after the first starting with ``pad``: a mapping of
    numbers and strings (the usual swept values) without json's Python encoder."""
    items = []
    for k, v in params.items():
        kind = type(v)
        if kind is float and math.isfinite(v):
            text = float.__repr__(v)
        elif kind is int:
            text = int.__repr__(v)
        elif kind is str:
            text = encode_basestring_ascii(v)
        elif kind is bool or v is None:
            text = _NAMED[v]
        else:
            text = json.dumps(v, indent=2).replace("\n", pad + "  ")
        items.append(f"{pad}  {encode_basestring_ascii(k) if type(k) is str else json.dumps({k: 0})[1:-4]}: {text}")
    return "{" + ",".join(items) + pad + "}" if items else "{}"


@click.command("plan")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, path_type=str))
@click.argument("overrides", metavar="[KEY=VALUE]...", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the tasks and summary as JSON, for scripts.")
@click.option("--show-spec", is_flag=True, help="Print the resolved spec (overrides and defaults applied).")
@click.option("--estimate", is_flag=True,
              help="Time a few iterations of one task per network shape on this machine and extrapolate each "
              "task's run time and the sweep's core-hours (trains briefly; writes nothing).")
@run_command
def plan_command(spec_path, overrides, as_json, show_spec, estimate):
    """Show the tasks SPEC expands to, and what they ask for. Writes nothing.

    Overrides change the spec from the command line: KEY=VALUE sets a key (VALUE is YAML),
    +KEY=VALUE adds one, ~KEY removes one; keys as in the spec.

    \b
    Examples:
      snnbatch plan examples/quickstart.yaml
      snnbatch plan examples/quickstart.yaml training.lr=0.01 'sweep.grid.n_hidden=[64,256]'
      snnbatch plan examples/quickstart.yaml --json | jq '.tasks[].id'
      snnbatch plan examples/quickstart.yaml --estimate
    """
    spec = spec_mod.load(spec_path, overrides)
    if show_spec:
        click.echo(spec_mod.dump_resolved(spec), nl=False)
        return
    tasks = planner.plan(spec)
    summary = planner.summarize(spec, tasks)
    if as_json:
        click.echo(plan_json(spec.name, summary, tasks))
        return
    table = Table(title=f"{spec.name}: {summary.n_tasks} tasks", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("task id")
    for key in summary.varying:
        table.add_column(key, justify="right")
    for t in tasks:
        table.add_row(str(t.index), t.id, *(_fmt(t.params[k]) for k in summary.varying))
    console.print(table)
    console.print(
        f"{summary.n_tasks} tasks × {summary.cpus_per_task} cpu × {spec.resources.time} "
        f"= {summary.core_hours:.1f} core-hours requested"
    )
    from ..halving import describe

    rungs = describe(spec, tasks)
    if rungs:
        console.print(rungs)
    if estimate:
        _print_estimate(spec, tasks)


def _print_estimate(spec, tasks) -> None:
    from ...jobs.config import parse_duration
    from ..estimate import estimate
    from ..results import format_duration

    console.print(f"timing each network shape on this machine ({spec.resources.cpus} cpu per task) ...")
    shapes = estimate(tasks, spec.resources.cpus)
    table = Table(title="estimated run time", title_justify="left")
    for col in ("shape", "tasks", "s / iteration", "iterations", "per task"):
        table.add_column(col, justify="right")
    total_s, longest = 0.0, 0.0
    for i, shape in enumerate(shapes):
        seconds = [shape.task_seconds(t) for t in shape.tasks]
        total_s += sum(seconds)
        longest = max(longest, max(seconds))
        its = sorted({shape.iterations(t) for t in shape.tasks})
        label = ", ".join(f"{k}={_fmt(v)}" for k, v in shape.tasks[0].params.items()
                          if k.rsplit(".", 1)[-1] not in ("lr", "beta1", "beta2", "seed", "iterations", "epochs"))
        table.add_row(label or "every task", str(len(shape.tasks)), f"{shape.iteration_s:.3g}",
                      "-".join(map(str, (its[0], its[-1]))) if len(its) > 1 else str(its[0]),
                      format_duration(max(seconds)))
    console.print(table)
    core_hours = total_s * spec.resources.cpus / 3600
    limit = parse_duration(spec.resources.time)
    console.print(f"estimated: {core_hours:.2f} core-hours in all; the longest task {format_duration(longest)} "
                  f"(resources.time is {spec.resources.time})")
    if longest > limit:
        console.print(f"[yellow]the longest task needs more than resources.time: it will checkpoint and continue "
                      f"in a requeued job; set resources.time to about {format_duration(1.2 * longest)} to avoid "
                      "that[/]")


COMMANDS = [plan_command]
