"""snnbatch keys [NAME]"""
from __future__ import annotations

import click

from .app import console, run_command


@click.command("keys")
@click.argument("name", required=False)
@click.option("--markdown", is_flag=True, help="Print markdown tables (the README's, for the built-ins).")
@click.option("--builtin", is_flag=True, help="Only snnbatch's own algorithms and datasets.")
@click.option("--plugin", "plugin_files", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="Also load this plugin file (as a spec's plugins: would).")
@run_command
def keys_command(name, markdown, builtin, plugin_files):
    """Every spec key, its default and meaning, for the installed algorithms and datasets.

    NAME narrows it to the sections whose heading contains it (e.g. lif, eprop, randman, training).
    Plugins installed as packages are included; a plugin file is loaded with --plugin.

    \b
    Examples:
      snnbatch keys lif
      snnbatch keys --plugin mymodel.py izhikevich
    """
    from ...jobs import registry
    from .. import keys

    for path in plugin_files:
        registry.load_file(path)
    if markdown:
        click.echo(keys.markdown(builtin), nl=False)
        return
    shown = [(h, c) for h, c in keys.sections(builtin) if not name or name in h]
    if not shown:
        raise click.UsageError(f"no section matches {name!r}; try 'snnbatch keys' for all of them")
    for heading, cls in shown:
        console.print(f"[bold]{heading.strip('`')}[/]", highlight=False)
        for key, field in cls.model_fields.items():
            console.print(f"  {key:<18} {keys.default_text(cls, key).strip('`'):<12} {field.description or ''}",
                          highlight=False, markup=False)
        console.print()


COMMANDS = [keys_command]
