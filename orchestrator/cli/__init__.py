"""The ``snnbatch`` command. One module per command; each is a thin function over the library.

A command's module is imported when the command runs (or when ``--help`` lists them all), so
that ``snnbatch status`` and ``snnbatch report`` read a store without importing what planning
and training need: the spec, the config classes, the registry and its plugins.
"""
from __future__ import annotations

import pkgutil

import click

from .app import run_command  # noqa: F401  (re-exported for the commands)

# Each command's module (its COMMANDS list holds the click command of that name).
COMMANDS = {"plan": "plan", "submit": "submit", "resume": "submit", "status": "status", "report": "report",
            "run-task": "run_task", "cancel": "cancel", "keys": "keys", "export": "export"}


class _Commands(click.Group):
    """A group whose commands are imported from their modules when asked for."""

    def list_commands(self, ctx) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx, name: str):
        module = COMMANDS.get(name)
        if module is None:
            return None
        commands = pkgutil.resolve_name(f"{__name__}.{module}:COMMANDS")
        return next(c for c in commands if c.name == name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
