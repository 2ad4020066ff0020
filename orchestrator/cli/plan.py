"""snnbatch plan SPEC"""
from __future__ import annotations

import json

import click
from rich.table import Table

from .. import planner, spec as spec_mod
from .app import console, run_command


def _fmt(v):
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@click.command("plan")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, path_type=str))
@click.argument("overrides", metavar="[KEY=VALUE]...", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the tasks and summary as JSON, for scripts.")
@click.option("--show-spec", is_flag=True, help="Print the resolved spec (overrides and defaults applied).")
@run_command
def plan_command(spec_path, overrides, as_json, show_spec):
    """Show the tasks SPEC expands to, and what they ask for. Writes nothing.

    Overrides change the spec from the command line: KEY=VALUE sets a key (VALUE is YAML),
    +KEY=VALUE adds one, ~KEY removes one; keys as in the spec.

    \b
    Examples:
      snnbatch plan examples/quickstart.yaml
      snnbatch plan examples/quickstart.yaml training.lr=0.01 'sweep.grid.n_hidden=[64,256]'
      snnbatch plan examples/quickstart.yaml --json | jq '.tasks[].id'
    """
    spec = spec_mod.load(spec_path, overrides)
    if show_spec:
        click.echo(spec_mod.dump_resolved(spec), nl=False)
        return
    tasks = planner.plan(spec)
    summary = planner.summarize(spec, tasks)
    if as_json:
        click.echo(json.dumps({
            "name": spec.name,
            "summary": summary.__dict__,
            "tasks": [{"id": t.id, "index": t.index, "params": t.params, "config": t.config_dict()} for t in tasks],
        }, indent=2))
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


COMMANDS = [plan_command]
