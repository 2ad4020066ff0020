"""What the commands share: the console, and the one path for errors and exit codes."""
from __future__ import annotations

import functools
import sys

import click
from rich.console import Console

from ...jobs.errors import Error, ExitCode

console = Console(soft_wrap=True)
err_console = Console(stderr=True)


def abort(message: str, code: int = ExitCode.BAD_INPUT) -> None:
    """Print ``error: message`` on stderr, as it is, and exit with ``code``."""
    err_console.print("[bold red]error:[/] ", end="")
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)
    sys.exit(int(code))


_CURRENT_STORE: list[str] = []  # the store the running command works on, for the Ctrl-C message


def using_store(path) -> None:
    """Name the store this command works on (Ctrl-C then says how to resume it)."""
    import shlex
    from pathlib import Path

    _CURRENT_STORE[:] = [shlex.quote(str(Path(path).resolve()))]


def run_command(fn):
    """Turn an :class:`~snnbatch.jobs.errors.Error` into its message and its exit status, and Ctrl-C into
    status 3 (:attr:`ExitCode.INTERRUPTED`), never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Error as exc:
            abort(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            store = f"'snnbatch resume {_CURRENT_STORE[0]}'" if _CURRENT_STORE else "'snnbatch resume STORE'"
            err_console.print(f"\ninterrupted: every task keeps its last checkpoint; continue with {store}",
                              markup=False, highlight=False, soft_wrap=True)
            sys.exit(int(ExitCode.INTERRUPTED))

    return wrapper


def store_argument(fn):
    return click.argument("store", type=click.Path(file_okay=False, path_type=str))(fn)
