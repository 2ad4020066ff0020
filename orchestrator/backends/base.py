"""What every backend provides: four hooks, and what a backend without one of them says.

A backend is a subclass of :class:`Backend` listed in :data:`snnbatch.orchestrator.backends.BACKENDS`.
It overrides ``submit`` and, if it can, ``dry_run``, ``cancel`` and ``status``:

* ``submit(store, task_ids)`` runs the tasks, or hands them to a scheduler and returns;
* ``dry_run(store_path, name, resources, task_ids)`` says what ``submit`` would ask the scheduler for,
  writing nothing;
* ``cancel(job_ids)`` cancels the scheduler jobs recorded for unfinished tasks;
* ``status(job_ids)`` is the scheduler's word on each recorded job.

A backend that runs its tasks itself (inline, local, Dask) has nothing to show before it runs and no
jobs to cancel: the defaults of ``dry_run`` and ``cancel`` raise a :class:`UserError` naming the
backend, and ``status`` knows no jobs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ...jobs.errors import UserError

if TYPE_CHECKING:  # reading a store (status) imports no config classes
    from ...jobs.config import Resources
    from ..store import RunStore


@dataclass
class SubmitOptions:
    max_parallel: int | None = None
    scheduler_address: str | None = None
    progress: bool = True
    extra: dict = field(default_factory=dict)


@dataclass
class SubmitResult:
    """``waited``: the tasks ran to an end before ``submit`` returned (outcomes by task id)."""

    waited: bool
    outcomes: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, dict] = field(default_factory=dict)
    text: str = ""


class Backend:
    name: ClassVar[str]
    # The names of the backends that implement a hook themselves: set by the backends package, which
    # holds the table of them (so this module need not import it back).
    having: ClassVar = staticmethod(lambda hook: [])

    def __init__(self, options: SubmitOptions | None = None):
        self.options = options or SubmitOptions()

    def submit(self, store: RunStore, task_ids: list[str]) -> SubmitResult:  # pragma: no cover - interface
        """Run ``task_ids`` of ``store``, or submit them to the scheduler and record the job ids."""
        raise NotImplementedError

    def dry_run(self, store_path: Path, name: str, resources: Resources, task_ids: list[str]) -> str:
        """What ``submit`` would hand the scheduler for these tasks, as text. Writes nothing."""
        raise UserError(f"--dry-run: the {self.name} backend runs the tasks itself, so there is no scheduler "
                        f"request to show; backends with a dry run: {', '.join(self.having('dry_run'))}")

    def cancel(self, job_ids: list[str]) -> str:
        """Cancel these scheduler jobs; returns what was done, in a line."""
        raise UserError(f"the {self.name} backend has no scheduler jobs to cancel: its tasks run under the process "
                        f"that submitted them, so stop that process (Ctrl-C); backends that cancel: "
                        f"{', '.join(self.having('cancel'))}")

    def status(self, job_ids: list[str]) -> dict[str, str]:
        """Job id -> the scheduler's state, for the jobs it still knows. Quick, and never raises."""
        return {}
