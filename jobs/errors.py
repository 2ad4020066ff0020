"""The errors snnbatch reports to a user, and the exit status of every command.

An :class:`Error` carries a message that names what is at fault (the file and
the key, the store path, the scheduler command) and the exit status it ends a
command with; the CLI prints the message without a traceback. Bad input
(:class:`UserError` and its subclasses, exit status 2) is kept apart from a
scheduler or a file system that fails (:class:`BackendError`, and
:class:`StoreWriteError`, the one store error that is not bad input; exit
status 5): the first is fixed by changing the input, the second by waiting,
freeing space or asking an administrator. Anything else that escapes a task is a task failure: its
traceback is kept in the store.
"""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """How every ``snnbatch`` command ends."""

    DONE = 0  # every task done, or nothing to do
    TASKS_FAILED = 1  # a task failed; its traceback is in the store
    BAD_INPUT = 2  # a spec, an override, a CLI argument, a plugin or a store that cannot be used as it is
    INTERRUPTED = 3  # stopped after a checkpoint (a signal, Ctrl-C, a deadline); resume continues
    LEASED = 4  # run-task: another live process holds the task
    SYSTEM = 5  # the scheduler or the file system failed: sbatch missing or refusing, a store that cannot be written


class Error(Exception):
    """An error shown as its message alone; the command exits with ``exit_code``."""

    exit_code: ExitCode = ExitCode.BAD_INPUT


class UserError(Error):
    """Bad input: a spec, a CLI argument, a plugin or a store. The message is shown as it is."""

    exit_code = ExitCode.BAD_INPUT


class SpecError(UserError):
    def __init__(self, path, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        n = len(problems)
        super().__init__(f"{self.path}: {n} problem{'s' if n != 1 else ''}\n{lines}")


class StoreError(UserError):
    """A store that is not one, of another format, or a path or task id that names nothing in it."""


class StoreWriteError(StoreError):
    """The file system refused a write to the store (full, quota, size limit, read-only, permission)."""

    exit_code = ExitCode.SYSTEM


class PluginError(UserError):
    """A plugin that cannot be loaded or declares something snnbatch cannot use; names the plugin."""


class BackendError(Error):
    """A scheduler command failed; the message has the command, its exit code and output."""

    exit_code = ExitCode.SYSTEM
