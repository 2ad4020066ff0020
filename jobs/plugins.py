"""The code behind a sweep: which plugins a run uses, recorded in its store, and checked again later.

A run store records, for every algorithm and dataset its tasks use that does
not ship with snnbatch, where it came from (:func:`record`): an installed
distribution's name and version and the SHA-256 of the module that declares
it (of every ``.py`` file of its package), or a plugin file's path and SHA-256. A compute node loads the recorded
files before it reads a task's config (:func:`load_recorded`) and refuses a
file whose content changed; ``snnbatch resume`` compares the record with the
code it would run now (:func:`changes`) and stops unless told to go on.

Reading a store never runs its code: only the commands that train call
:func:`load_recorded`.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
from pathlib import Path

from . import registry
from .errors import PluginError


def record(model_types: set[str], dataset_types: set[str]) -> list[dict]:
    """The source record of every plugin behind these algorithms and datasets (snnbatch's own omitted).

    Each record: ``what`` (algorithm or dataset), ``id`` (its name in specs), ``kind`` (``entry point``
    or ``file``), ``name`` (the distribution, or the file's path), ``version``, ``sha256`` (of the
    file, or of the module the entry point names) and ``entry_point``.
    """
    out = []
    for what, names in (("algorithm", model_types), ("dataset", dataset_types)):
        for name in sorted(names):
            src = registry.source(what, name)
            if src is None or (src.kind == "entry point" and src.name == "snnbatch"):
                continue
            rec = {"what": what, "id": name, **src.as_record()}
            if src.kind == "entry point":
                rec["sha256"] = _module_hash(src.entry_point)
            out.append(rec)
    return out


def load_recorded(records: list[dict]) -> None:
    """Load the plugin files a store records, refusing any whose content is not the recorded one."""
    for path in sorted({r["name"] for r in records if r.get("kind") == "file"}):
        want = next(r.get("sha256") for r in records if r.get("kind") == "file" and r["name"] == path)
        if not Path(path).is_file():
            raise PluginError(f"plugin file {path}, recorded in the run store, is not there: "
                              "put it back (or run where it is)")
        have = registry.file_hash(path)
        if want and have != want:
            raise PluginError(f"plugin file {path} changed since the sweep was planned "
                              f"(sha256 {want[:12]} recorded, {have[:12]} now); "
                              "'snnbatch resume --allow-changed-code' continues with the new code")
        registry.load_file(path)


def changes(records: list[dict]) -> list[str]:
    """How the code that would run now differs from the recorded code (empty: unchanged)."""
    found = []
    for r in records:
        what = f"{r['what']} {r['id']!r}"
        if r.get("kind") == "file":
            path = Path(r["name"])
            if not path.is_file():
                found.append(f"{what}: plugin file {path} is missing")
            elif r.get("sha256") and registry.file_hash(path) != r["sha256"]:
                found.append(f"{what}: plugin file {path} changed (sha256 {r['sha256'][:12]} recorded, "
                             f"{registry.file_hash(path)[:12]} now)")
            continue
        try:
            version = importlib.metadata.version(r["name"])
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{what}: package {r['name']} is not installed (was {r.get('version', '?')})")
            continue
        if r.get("version") and version != r["version"]:
            found.append(f"{what}: package {r['name']} is version {version} now (was {r['version']})")
        elif r.get("sha256") and r.get("entry_point") and _module_hash(r["entry_point"]) != r["sha256"]:
            found.append(f"{what}: the code of package {r['name']} {version} changed "
                         f"({r['entry_point'].split(' = ')[-1].split(':')[0]})")
    return found


def _module_hash(entry_point: str) -> str:
    """SHA-256 of the code of the package an entry point names (``group:name = module:attr``): every
    ``.py`` file of its top-level package (or the one module), so an edit anywhere in it is seen."""
    module = entry_point.split(" = ", 1)[-1].split(":", 1)[0].strip()
    try:
        spec = importlib.util.find_spec(module.split(".")[0])
    except (ImportError, ValueError):
        return ""
    if spec is None:
        return ""
    if spec.submodule_search_locations:
        files = sorted(f for d in spec.submodule_search_locations for f in Path(d).rglob("*.py"))
    elif spec.origin and Path(spec.origin).is_file():
        files = [Path(spec.origin)]
    else:
        return ""
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()


def current(records: list[dict]) -> list[dict]:
    """The records as they would be written now: each file's and module's present hash and version."""
    out = []
    for r in records:
        r = dict(r)
        if r.get("kind") == "file":
            if Path(r["name"]).is_file():
                r["sha256"] = registry.file_hash(r["name"])
        else:
            try:
                r["version"] = importlib.metadata.version(r["name"])
            except importlib.metadata.PackageNotFoundError:
                pass
            if r.get("entry_point"):
                r["sha256"] = _module_hash(r["entry_point"])
        out.append(r)
    return out


def describe(records: list[dict]) -> list[str]:
    """One line per plugin, saying where its code comes from (for the commands that run it)."""
    lines = []
    for r in records:
        if r.get("kind") == "file":
            where = f"file {r['name']} (sha256 {r.get('sha256', '')[:12]})"
        else:
            where = f"package {r['name']} {r.get('version', '')}".rstrip()
            if r.get("entry_point"):
                where += f", entry point {r['entry_point'].split(' = ')[-1]}"
        lines.append(f"{r['what']} {r['id']!r} from {where}")
    return lines
