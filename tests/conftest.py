"""Fixtures shared by the test folders: a tiny sweep, spec files, the CLI driven in-process."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from snnbatch.orchestrator.cli import main

# Seconds per task: 64 training samples, 8 hidden neurons, 2 iterations.
TINY = """\
name: tiny
dataset: {n_train: 64, n_test: 32, n_inputs: 16, n_steps: 20}
model: {n_hidden: 8}
training: {iterations: 2, batch_size: 32}
"""


@pytest.fixture
def write_spec(tmp_path):
    """``write_spec(text, name="spec.yaml")``: the path of a new spec file holding ``text`` (str or bytes)."""

    def write(text: str | bytes, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def planned_store(tmp_path, write_spec):
    """``planned_store(text) -> (store, tasks, added, spec)``: the spec ``text`` planned into a new run store."""
    from snnbatch.orchestrator import planner, spec as spec_mod
    from snnbatch.orchestrator.store import RunStore

    def make(text: str):
        spec = spec_mod.load(write_spec(text))
        tasks = planner.plan(spec)
        store, added = RunStore.create_or_update(tmp_path / "store", spec, text, tasks)
        return store, tasks, added, spec

    return make


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """``cli(*args)``: run ``snnbatch ARGS`` in-process, in ``tmp_path``; returns click's Result
    (``exit_code``, ``output`` = stdout and stderr, ``stderr``, ``exception``)."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args])

    return invoke


def tree(path: Path) -> list[str]:
    """Every file and directory under ``path``, relative: to show that a command wrote nothing."""
    return sorted(str(p.relative_to(path)) for p in Path(path).rglob("*"))
