"""The ``snnbatch`` command. One module per command; each is a thin function over the library."""
from __future__ import annotations

import click

from .app import run_command  # noqa: F401  (re-exported for the commands)
from . import cancel, keys, plan, report, run_task, status, submit


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="snnbatch")
def main():
    """Train sweeps of spiking neural networks, locally or on a cluster, and lose none of them.

    \b
    Typical use:
      snnbatch plan examples/quickstart.yaml
      snnbatch submit examples/quickstart.yaml --store runs/quickstart
      snnbatch status runs/quickstart
      snnbatch resume runs/quickstart
    """


for module in (plan, submit, status, report, run_task, cancel, keys):
    for command in module.COMMANDS:
        main.add_command(command)
