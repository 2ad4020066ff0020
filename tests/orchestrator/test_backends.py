"""Backends: one table, one base class with four hooks, and what a backend without a hook says.

The CLI and the scheduler view reach a backend only through ``backends.get(name)`` and its hooks;
these tests check the table, the base class's defaults as a user meets them, and that the CLI and
scheduler code ask no backend what it has (``hasattr``) and import none by name.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from snnbatch.jobs.config import Resources
from snnbatch.jobs.errors import ExitCode, UserError
from snnbatch.orchestrator import backends, scheduler
from snnbatch.orchestrator.backends.base import Backend, SubmitOptions

from conftest import TINY, tree

ORCHESTRATOR = Path(backends.__file__).resolve().parents[1]
SPEC = TINY + "sweep: {seeds: 2}\n"


def test_every_name_in_the_table_is_a_backend_of_that_name():
    for name in backends.BACKENDS:
        cls = backends.get(name)
        assert issubclass(cls, Backend) and cls.name == name
    assert backends.DEFAULT in backends.BACKENDS


def test_an_unknown_backend_name_lists_the_known_ones():
    with pytest.raises(UserError, match="unknown backend 'kubernetes'; choose from: inline, local, dask, slurm, "
                                        "htcondor"):
        backends.get("kubernetes")


def test_cluster_backends_implement_every_hook_and_the_others_only_submit():
    for hook in ("dry_run", "cancel", "status"):
        assert backends.having(hook) == ["slurm", "htcondor"]
    for name in backends.BACKENDS:
        assert backends.get(name).submit is not Backend.submit


@pytest.mark.parametrize("name", ["inline", "local", "dask"])
def test_the_base_class_defaults_name_the_backend(name):
    backend = backends.get(name)()  # status and cancel need no options
    with pytest.raises(UserError) as info:
        backend.dry_run(Path("runs/x"), "x", Resources(), ["0123456789ab"])
    assert f"--dry-run: the {name} backend runs the tasks itself" in str(info.value)
    assert str(info.value).endswith("backends with a dry run: slurm, htcondor")
    assert info.value.exit_code == ExitCode.BAD_INPUT
    with pytest.raises(UserError, match=f"the {name} backend has no scheduler jobs to cancel.*slurm, htcondor"):
        backend.cancel(["1"])
    assert backend.status(["1"]) == {}


@pytest.mark.parametrize("name", ["inline", "local"])
def test_dry_run_on_a_backend_without_one_is_refused_before_anything_is_written(cli, write_spec, tmp_path, name):
    spec = write_spec(SPEC)
    before = tree(tmp_path)
    result = cli("submit", spec, "--backend", name, "--dry-run")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert f"error: --dry-run: the {name} backend runs the tasks itself" in result.stderr
    assert tree(tmp_path) == before


def test_dask_without_an_address_is_refused_by_the_backend_but_status_and_cancel_build_it():
    with pytest.raises(UserError, match="--backend dask needs --scheduler-address"):
        backends.get("dask")(SubmitOptions())
    assert backends.get("dask")(SubmitOptions(scheduler_address="tcp://h:8786")).options.scheduler_address
    assert backends.get("dask")().status([]) == {}


def test_the_scheduler_view_asks_each_recorded_backend_through_its_status_hook(monkeypatch):
    asked = {}

    def status(self, job_ids):
        asked[self.name] = job_ids
        return {j: "PENDING" for j in job_ids}

    for name in ("slurm", "htcondor"):
        monkeypatch.setattr(backends.get(name), "status", status)
    tasks = [
        {"id": "a" * 12, "state": "pending", "scheduler": {"backend": "slurm", "job_id": "7_0"}},
        {"id": "b" * 12, "state": "pending", "scheduler": {"backend": "htcondor", "job_id": "9.0"}},
        {"id": "c" * 12, "state": "done", "scheduler": {}},  # run by a backend that records no job
        {"id": "d" * 12, "state": "pending", "scheduler": {"backend": "gone", "job_id": "1"}},  # no such backend now
    ]
    merged = scheduler.merge(tasks)
    assert asked == {"slurm": ["7_0"], "htcondor": ["9.0"]}
    assert [t["state"] for t in merged] == ["queued", "queued", "done", "pending"]


def _code(path: Path) -> str:
    """The file's code without its comments and docstrings (what the rules are about)."""
    import ast

    tree_ = ast.parse(path.read_text())
    for node in ast.walk(tree_):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node) is not None:
            node.body = node.body[1:] or [ast.Pass()]
    return ast.unparse(tree_)


def test_cli_and_scheduler_ask_no_backend_what_it_has_and_name_none():
    files = sorted((ORCHESTRATOR / "cli").glob("*.py")) + [ORCHESTRATOR / "scheduler.py"]
    names = "|".join(backends.BACKENDS)
    for path in files:
        code = _code(path)
        assert "hasattr(" not in code, path
        assert "__import__(" not in code and "importlib" not in code, path
        assert not re.search(rf"""['"]({names})['"]""", code), (path, re.findall(rf"""['"]({names})['"]""", code))
