"""snnbatch report STORE"""
from __future__ import annotations

from pathlib import Path

import click

from .app import console, run_command


@click.command("report")
@click.argument("store_path", metavar="STORE", type=click.Path(file_okay=False, path_type=str))
@click.option("--out", "out", type=click.Path(path_type=str), default=None,
              help="Directory for the report. Default: STORE-report beside the store.")
@click.option("--metric", default=None,
              help="The final metric to plot. Default: test_accuracy if any task has it, else test_loss, "
                   "else final_loss.")
@click.option("--x", "x", metavar="AXIS", default=None,
              help="Plot the final metric against this swept parameter only, and use it for the heatmap's "
                   "columns. Default: one panel per swept parameter.")
@click.option("--group", metavar="AXIS", default=None,
              help="Colour the curves and points by this swept parameter, and use it for the heatmap's rows. "
                   "Default: the first swept parameter.")
@click.option("--curves-x", type=click.Choice(["iteration", "epoch", "wall-time"]), default="iteration",
              show_default=True,
              help="The training curves' x axis. iteration: with an epoch axis on top when the tasks share their "
                   "iterations per epoch; wall-time: seconds of training over all attempts.")
@click.option("--heatmap-scale", type=click.Choice(["anchored", "min-max"]), default="anchored", show_default=True,
              help="The heatmap's colours. anchored: an accuracy's span chance level (1/classes, else 0) to 1, "
                   "any other metric's its cells' range; min-max: always the cells' range. The figure states it.")
@run_command
def report_command(store_path, out, metric, x, group, curves_x, heatmap_scale):
    """Write the results table, plots and one HTML page for the run in STORE.

    \b
    Files written into --out:
      report.html      everything below on one page, images embedded: open it anywhere
      results.csv      one row per task: id, state, the swept parameters and seed, test_accuracy,
      results.parquet    test_loss, final_loss, final_accuracy, iterations, attempts, elapsed_s
      curves.png       training loss and accuracy against the iteration (epochs on top), and the
                         validation metrics beside them (dashed) when the tasks validate
      final.png        the final metric against each swept parameter, seeds as spread
      heatmap.png      the final metric over two swept parameters, mean over seeds, its colour
                         scale stated under it (an accuracy's from chance level to 1)

    \b
    Examples:
      snnbatch report runs/quickstart
      snnbatch report runs/quickstart --out slides/ --metric test_loss --x lr --group n_hidden
      snnbatch report runs/quickstart --curves-x wall-time --heatmap-scale min-max
    """
    from ..report import write_report
    from ..results import Run

    run = Run(store_path)
    out_dir = Path(out) if out else Path(str(run.path).rstrip("/") + "-report")
    files = write_report(run, out_dir, metric=metric, x=x, group=group, curves_x=curves_x,
                         heatmap_scale=heatmap_scale)
    console.print(f"{run.name}: report of {len(run)} tasks in {out_dir}/", highlight=False)
    for f in files:
        console.print(f"  {f.name}", highlight=False)
    console.print(f"open {out_dir / 'report.html'}", highlight=False)


COMMANDS = [report_command]
