"""Numba's on-disk cache of kernels/ notices a change in any kernels/ file, not only in the cached function's own.

Each run is a fresh interpreter importing a copy of the package from a
temporary directory, with ``NUMBA_CACHE_DIR`` of its own; the real sources
are never touched.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository root is the package `snnbatch`

# a helper in one module and a cached function in another that calls it (the way lif.py calls _network.py)
HELPER = '''
from ._jit import njit


@njit()
def helper(x):
    return x + 1.0
'''
CALLER = '''
from ._jit import njit
from ._cache_probe_helper import helper


@njit()
def caller(x):
    return 2.0 * helper(x)
'''
RUN = """
import json, sys
from snnbatch.kernels import _cache_probe_caller as m
assert m.__file__.startswith(sys.argv[1]), m.__file__
value = m.caller(1.0)
print(json.dumps({"value": value, "hits": sum(m.caller.stats.cache_hits.values()),
                  "path": m.caller.stats.cache_path}))
"""


def _copy_package(tmp_path: Path) -> Path:
    pkg = tmp_path / "src" / "snnbatch"
    (pkg / "kernels").mkdir(parents=True)
    shutil.copy(ROOT / "__init__.py", pkg / "__init__.py")
    for source in (ROOT / "kernels").glob("*.py"):
        shutil.copy(source, pkg / "kernels" / source.name)
    (pkg / "kernels" / "_cache_probe_helper.py").write_text(HELPER)
    (pkg / "kernels" / "_cache_probe_caller.py").write_text(CALLER)
    return pkg


def _run(pkg: Path, cache: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(pkg.parent), "NUMBA_CACHE_DIR": str(cache)}
    env.pop("NUMBA_CACHE_LOCATOR_CLASSES", None)
    proc = subprocess.run([sys.executable, "-c", RUN, str(pkg)], env=env, cwd=pkg.parent, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_changed_helper_in_another_module_is_recompiled(tmp_path):
    pkg = _copy_package(tmp_path)
    cache = tmp_path / "cache"
    first = _run(pkg, cache)
    assert (first["value"], first["hits"]) == (4.0, 0)
    again = _run(pkg, cache)
    assert (again["value"], again["hits"], again["path"]) == (4.0, 1, first["path"])  # loaded, not compiled
    # only the helper's module changes; the caller's file (Numba's own freshness check) stays as it was
    helper = pkg / "kernels" / "_cache_probe_helper.py"
    helper.write_text(HELPER.replace("x + 1.0", "x + 2.0"))
    changed = _run(pkg, cache)
    assert (changed["value"], changed["hits"]) == (6.0, 0)
    again = _run(pkg, cache)
    assert (again["value"], again["hits"], again["path"]) == (6.0, 1, changed["path"])
    # both caches are below the user's NUMBA_CACHE_DIR, in directories named by the sources
    old, new = Path(first["path"]), Path(changed["path"])
    assert old.parent.parent == cache and old.parent == new.parent and old != new
    assert old.name.startswith("snnbatch-") and new.name.startswith("snnbatch-")
