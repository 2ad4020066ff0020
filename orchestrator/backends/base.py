"""What every backend provides."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ..store import RunStore


@dataclass
class SubmitOptions:
    max_parallel: int | None = None
    dry_run: bool = False
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

    def __init__(self, options: SubmitOptions):
        self.options = options

    def submit(self, store: RunStore, task_ids: list[str]) -> SubmitResult:  # pragma: no cover - interface
        raise NotImplementedError
