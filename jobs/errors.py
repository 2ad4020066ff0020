"""Errors a user can act on, kept apart from task failures.

``UserError`` and its subclasses carry a message that names the file and the
key or the store path at fault; the CLI prints it without a traceback and
exits with status 2. Anything else that escapes a task is a task failure:
its traceback is kept in the store.
"""


class UserError(Exception):
    """Bad input: a spec, a CLI argument or a store. The message is shown as it is."""

    exit_code = 2


class SpecError(UserError):
    def __init__(self, path, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        n = len(problems)
        super().__init__(f"{self.path}: {n} problem{'s' if n != 1 else ''}\n{lines}")


class StoreError(UserError):
    pass


class BackendError(UserError):
    """A scheduler command failed; the message has the command, its exit code and output."""


class PluginError(UserError):
    """A plugin that cannot be loaded or declares something snnbatch cannot use; names the plugin."""
