"""What the commands share: the console, and the one path for user errors."""
from __future__ import annotations

import functools
import sys

import click
from rich.console import Console

from ...jobs.errors import UserError

console = Console(soft_wrap=True)
err_console = Console(stderr=True)


def abort(message: str, code: int = 2) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    sys.exit(code)


def run_command(fn):
    """Turn :class:`UserError` into a message and exit status 2, and Ctrl-C into 130, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            err_console.print("[bold red]error:[/] ", end="")
            err_console.print(str(exc), markup=False, highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            err_console.print("\ninterrupted: every task keeps its last checkpoint; continue with 'snnbatch resume STORE'")
            sys.exit(130)

    return wrapper


def store_argument(fn):
    return click.argument("store", type=click.Path(file_okay=False, path_type=str))(fn)
