"""Imports point one way: orchestrator -> jobs -> kernels; heavy imports wait until they are needed."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]  # the repository root is the package `snnbatch`
STDLIB = set(sys.stdlib_module_names)


def imported_modules(path: Path, run_time: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, also those inside functions.

    ``from X import y`` gives ``X`` and ``X.y`` (``y`` may be a module); relative imports are
    resolved against the file's package. ``run_time``: leave out the imports under
    ``if TYPE_CHECKING:``, which never run.
    """
    package = ["snnbatch", *path.relative_to(ROOT).parent.parts]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skipped = set()
    if run_time:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
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


def module_name(path: Path) -> str:
    parts = ["snnbatch", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


# The package's own modules: the root's files and the three subpackages (as pyproject installs them).
PACKAGE = sorted([p for p in ROOT.glob("*.py")] + [p for d in ("kernels", "jobs", "orchestrator")
                                                     for p in (ROOT / d).rglob("*.py")])
MODULES = {module_name(p): p for p in PACKAGE}


def import_graph() -> dict[str, dict[str, int]]:
    """Module -> {module of the package it imports: the line}, from the imports that can run
    (inside functions too; not those under ``if TYPE_CHECKING:``)."""
    graph = {}
    for name, path in MODULES.items():
        edges: dict[str, int] = {}
        for line, target in imported_modules(path, run_time=True):
            if target in MODULES and target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_resolver_sees_relative_and_nested_imports():
    sample = ROOT / "jobs" / "store.py"
    names = {name for _, name in imported_modules(sample)}
    assert {"snnbatch.jobs.errors", "snnbatch.jobs.state.TrainState", "zarr", "snnbatch.jobs.config"} <= names
    typed = ROOT / "orchestrator" / "backends" / "base.py"  # imports the config classes for its annotations only
    assert "snnbatch.jobs.config.Resources" in {name for _, name in imported_modules(typed)}
    assert "snnbatch.jobs.config.Resources" not in {name for _, name in imported_modules(typed, run_time=True)}
    assert "snnbatch.jobs.errors.UserError" in {name for _, name in imported_modules(typed, run_time=True)}


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1, "d": 1}, "d": {}, "e": {"e": 1}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycles_between_the_modules_of_the_package():
    """Every import that can run counts, also one inside a function: a cycle is a design to untangle."""
    graph = import_graph()
    assert len(graph) > 40 and graph["snnbatch.orchestrator.planner"]  # the package was read
    found = []
    for component in cycles(graph):
        members = set(component)
        edges = [f"{a} -> {b} (line {line})" for a in component for b, line in graph[a].items() if b in members]
        found.append(" · ".join(component) + ":\n    " + "\n    ".join(edges))
    assert not found, "import cycles:\n  " + "\n  ".join(found)


@pytest.mark.parametrize("path", [p for p in PACKAGE if p.parent != ROOT], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_below_the_root_imports_the_root(path):
    """The root (snnbatch/__init__.py) is the package's front door: open_run, __version__; nothing in
    kernels/, jobs/ or orchestrator/ goes through it (jobs.version has the version)."""
    bad = [(line, name) for line, name in imported_modules(path) if name == "snnbatch"]
    assert bad == [], f"{path.relative_to(ROOT)} imports the package root: {bad}"


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
    modules = _modules_after("from snnbatch.orchestrator.cli import main\n"
                             "for name in main.list_commands(None): main.get_command(None, name)")
    assert "snnbatch.orchestrator.cli.submit" in modules and "snnbatch.orchestrator.cli.status" in modules
    heavy = {"dask", "distributed", "submitit", "htcondor", "htcondor2", "matplotlib", "numba"}
    assert {m.split(".")[0] for m in modules} & heavy == set()
