"""snnbatch submit SPEC / snnbatch resume STORE"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import backends, halving, planner, spec as spec_mod
from ..backends.base import Backend, SubmitOptions
from ..store import RunStore
from ...jobs.config import Resources
from ...jobs.errors import ExitCode, UserError
from .app import console, run_command, using_store

backend_option = click.option(
    "--backend", type=click.Choice(sorted(backends.BACKENDS)), default=backends.DEFAULT, show_default=True,
    help="Where tasks run: local (Dask LocalCluster), inline (this process), dask (--scheduler-address), "
    "slurm (job arrays), htcondor (one cluster of jobs).",
)
parallel_option = click.option(
    "--max-parallel", type=click.IntRange(min=1), default=None,
    help="At most this many tasks at once (default: cores / cpus per task).",
)
address_option = click.option("--scheduler-address", default=None, help="Dask scheduler for --backend dask.")
progress_option = click.option("--progress/--no-progress", default=True, help="Show a live progress bar.")
dry_run_option = click.option("--dry-run", is_flag=True,
                              help="Cluster backends: show the jobs, resources and script it would submit; write nothing.")


def _backend(name: str, max_parallel, scheduler_address, progress) -> Backend:
    """The backend called ``name`` with these options; options it cannot use are refused here, before
    anything is written."""
    options = SubmitOptions(max_parallel=max_parallel, scheduler_address=scheduler_address, progress=progress)
    return backends.get(name)(options)


def _dry_run(backend: Backend, path, name: str, resources: Resources, ids: list[str]) -> None:
    """Print what the backend would ask its scheduler for; write nothing."""
    click.echo(backend.dry_run(Path(path), name, resources, ids).rstrip("\n"))


def _run(store: RunStore, ids: list[str], backend: Backend) -> None:
    """Submit ``ids``; when the backend waits for them, exit 0 if all are done, 1 if any failed, 3 if any
    was interrupted (tasks another driver runs count as done here)."""
    if not ids:
        console.print(f"{store.path}: nothing to run, every task is done.")
        return
    console.print(f"{store.path}: running {len(ids)} task{'s' * (len(ids) != 1)} on the {backend.name} backend")
    result = halving.drive(store, ids, backend)  # without sweep.halving: backend.submit
    if result.text:
        console.print(result.text, highlight=False)
    if not result.waited:
        return
    tasks = {t["id"]: t for t in store.tasks(configs=False)}
    counts: dict[str, int] = {}
    for tid in ids:
        counts[tasks[tid]["state"]] = counts.get(tasks[tid]["state"], 0) + 1
    console.print("finished: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    failed = [tid for tid in ids if tasks[tid]["state"] == "failed"]
    for tid in failed:
        console.print(f"  [red]failed[/] {tid}: {tasks[tid]['status'].get('error_line', '')}", highlight=False)
    # held by another driver when we came to them, and not done by it yet
    elsewhere = [tid for tid in ids if tasks[tid]["state"] not in ("done", "failed", "pruned")
                 and (result.outcomes.get(tid) == "leased" or tasks[tid]["state"] == "running")]
    if elsewhere:
        console.print(f"{len(elsewhere)} task(s) running elsewhere (another driver holds them): "
                      + ", ".join(elsewhere[:10]) + (" ..." if len(elsewhere) > 10 else ""))
    if failed or counts.get("done", 0) + counts.get("pruned", 0) + len(elsewhere) != len(ids):
        console.print(f"see 'snnbatch status {store.path}'; unfinished tasks continue with 'snnbatch resume {store.path}'")
        sys.exit(int(ExitCode.TASKS_FAILED if failed else ExitCode.INTERRUPTED))


@click.command("submit")
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, path_type=str))
@click.argument("overrides", metavar="[KEY=VALUE]...", nargs=-1)
@click.option("--store", "store_path", type=click.Path(file_okay=False, path_type=str), default=None,
              help="The run store (a directory). Default: runs/<spec name>.")
@backend_option
@parallel_option
@address_option
@progress_option
@dry_run_option
@run_command
def submit_command(spec_path, overrides, store_path, backend, max_parallel, scheduler_address, progress, dry_run):
    """Run the sweep in SPEC. Tasks already done in the store are not run again.

    Re-submitting a spec with one more axis value adds only the new tasks.

    \b
    Examples:
      snnbatch submit examples/quickstart.yaml
      snnbatch submit examples/quickstart.yaml --store runs/qs --backend inline
      snnbatch submit examples/quickstart.yaml training.lr=0.01 model.n_hidden=256
      snnbatch submit sweep.yaml --backend dask --scheduler-address tcp://10.0.0.5:8786
      snnbatch submit sweep.yaml --backend slurm --max-parallel 100 --dry-run
    """
    runner = _backend(backend, max_parallel, scheduler_address, progress)
    spec = spec_mod.load(spec_path, overrides)
    text = Path(spec_path).read_text(encoding="utf-8")
    tasks = planner.plan(spec)
    store_path = store_path or str(Path("runs") / spec.name)
    if dry_run:
        _dry_run(runner, store_path, spec.name, spec.resources, [t.id for t in tasks])
        return
    halving.check_resubmission(store_path, spec, tasks)
    store, added = RunStore.create_or_update(store_path, spec, text, tasks)
    using_store(store.path)
    _announce_plugins(store)
    if len(added) != len(tasks):
        console.print(f"{store.path}: {len(added)} new task(s) added to the {len(tasks) - len(added)} it had")
    wanted = {t.id for t in tasks}
    halving.decide(store, by="submit")
    ids = [tid for tid in halving.runnable(store, include_failed=True) if tid in wanted]
    _run(store, ids, runner)


@click.command("resume")
@click.argument("store_path", metavar="STORE", type=click.Path(file_okay=False, path_type=str))
@backend_option
@parallel_option
@address_option
@progress_option
@dry_run_option
@click.option("--include-failed", is_flag=True, help="Also run again the tasks that failed.")
@click.option("--allow-changed-code", is_flag=True,
              help="Go on although a plugin's code changed since the sweep was planned (recorded in the store).")
@run_command
def resume_command(store_path, backend, max_parallel, scheduler_address, progress, dry_run, include_failed,
                   allow_changed_code):
    """Run the unfinished tasks of STORE, each from its newest good checkpoint.

    \b
    Examples:
      snnbatch resume runs/quickstart
      snnbatch resume runs/quickstart --include-failed --backend inline
      snnbatch resume runs/sweep --backend slurm      # only the unfinished tasks, in compact new arrays
    """
    runner = _backend(backend, max_parallel, scheduler_address, progress)
    store = RunStore.open(store_path, mode="r" if dry_run else "r+")
    using_store(store.path)
    _check_plugin_code(store, allow_changed_code, dry_run)
    if not dry_run:
        halving.decide(store, by="resume")
    ids = halving.runnable(store, include_failed=include_failed)
    if dry_run and ids:
        res = Resources.model_validate(store.spec_dict().get("resources", {}))
        _dry_run(runner, store.path, store.name, res, ids)
        return
    _run(store, ids, runner)


def _announce_plugins(store: RunStore) -> None:
    """Commands that train say whose code they run (``resume`` in :func:`_check_plugin_code`)."""
    from ...jobs import plugins

    for line in plugins.describe(list(store.root.attrs.get("plugins", []))):
        console.print(f"plugin: {line}", highlight=False)


def _check_plugin_code(store: RunStore, allow: bool, dry_run: bool) -> None:
    """Refuse to resume with plugin code other than the recorded one, unless ``allow``; then load it."""
    from ...jobs import plugins
    from ..store import record_code_change

    records = list(store.root.attrs.get("plugins", []))
    changed = plugins.changes(records)
    if changed and not allow:
        raise UserError(f"{store.path}: the plugin code changed since this sweep was planned:\n"
                        + "\n".join(f"  {c}" for c in changed)
                        + "\nresults trained with the new code would not be one experiment with the old ones; "
                        "restore the code, or pass --allow-changed-code to go on with it (recorded in the store)")
    if changed:
        console.print("[yellow]going on with changed plugin code:[/]\n" + "\n".join(f"  {c}" for c in changed))
        records = plugins.current(records)
        if not dry_run:
            record_code_change(store, records, changed)
    plugins.load_recorded(records)
    for line in plugins.describe(records):
        console.print(f"plugin: {line}", highlight=False)


COMMANDS = [submit_command, resume_command]
