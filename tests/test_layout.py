"""Imports point one way: orchestrator -> jobs -> kernels; heavy imports wait until they are needed."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # the repository root is the package `snnbatch`
STDLIB = set(sys.stdlib_module_names)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, also those inside functions.

    ``from X import y`` gives ``X`` and ``X.y`` (``y`` may be a module); relative imports are
    resolved against the file's package.
    """
    package = ["snnbatch", *path.relative_to(ROOT).parent.parts]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def sources(folder: str) -> list[Path]:
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, folder
    return files


def test_the_resolver_sees_relative_and_nested_imports():
    sample = ROOT / "jobs" / "store.py"
    names = {name for _, name in imported_modules(sample)}
    assert {"snnbatch.jobs.errors", "snnbatch.jobs.trainer.TrainState", "zarr", "snnbatch"} <= names


@pytest.mark.parametrize("path", sources("kernels"), ids=lambda p: p.name)
def test_kernels_import_only_numpy_numba_and_the_standard_library(path):
    bad = []
    for line, name in imported_modules(path):
        top = name.split(".")[0]
        if top == "snnbatch":
            if not (name == "snnbatch.kernels" or name.startswith("snnbatch.kernels.")):
                bad.append((line, name))
        elif top not in {"numpy", "numba"} | STDLIB:
            bad.append((line, name))
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


@pytest.mark.parametrize("path", sources("jobs"), ids=lambda p: p.name)
def test_jobs_never_import_the_orchestrator_or_the_schedulers(path):
    forbidden = ("snnbatch.orchestrator", "dask", "distributed", "submitit")
    bad = [(line, name) for line, name in imported_modules(path)
           if any(name == f or name.startswith(f + ".") for f in forbidden)]
    assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


def _modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return set(out.stdout.split())


def test_importing_jobs_does_not_import_numba():
    """Thread counts (NUMBA_NUM_THREADS, ...) must be set from the task's allocation before Numba loads."""
    modules = _modules_after("import snnbatch.jobs, snnbatch.jobs.runner, snnbatch.jobs.store")
    assert "snnbatch.jobs.runner" in modules
    assert not {m for m in modules if m == "numba" or m.startswith("numba.")}


def test_importing_the_cli_does_not_import_dask_or_the_cluster_libraries():
    modules = _modules_after("import snnbatch.orchestrator.cli")
    assert "snnbatch.orchestrator.cli.submit" in modules
    heavy = {"dask", "distributed", "submitit", "htcondor", "htcondor2", "matplotlib", "numba"}
    assert {m.split(".")[0] for m in modules} & heavy == set()
