"""The run store's index: create a run, add tasks, read every task's status quickly.

See :mod:`snnbatch.jobs.store` for the layout. The driver writes the root
attrs, one plan document per call that adds tasks and one submission document
per submission, never rewriting one; tasks write their own ``status`` and
``checkpoints``. A new store is built under a
temporary name beside its path and renamed into place, so two drivers
creating the same store at once end up sharing one. A task is ``running``
only while a live process holds its lease; one whose status says running
without a live lease holder is shown as ``interrupted``.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zarr

from ..jobs.errors import StoreError, StoreWriteError
from ..jobs.lease import LEASE, LEASE_STALE_SECONDS, lease_alive, read_lease
from ..jobs import store as layout
from ..jobs.store import FORMAT, STATUS, TASKS, is_store_full_or_readonly, open_root
from ..jobs.halving import HALVING, overview
from ..jobs.version import snnbatch_version
from .nogc import without_gc  # noqa: F401  (importable from here as before)

if TYPE_CHECKING:
    from .planner import Task

STALE_SECONDS = LEASE_STALE_SECONDS  # a lease without a heartbeat for this long is taken as abandoned


class RunStore:
    def __init__(self, path: str | os.PathLike, root: zarr.Group):
        self.path = Path(path)
        self.root = root

    # ---------------------------------------------------------------- create / open

    @classmethod
    def create_or_update(cls, path, spec, spec_text: str, tasks: list[Task]) -> tuple["RunStore", list[str]]:
        """Create the store, or add to an existing one the tasks it does not have yet.

        Returns the store and the ids of the tasks that were added.
        """
        path = Path(path)
        try:
            path.exists()
        except (OSError, ValueError) as exc:  # a NUL byte, an unencodable or too long name
            raise StoreError(f"{str(path)!r}: not a usable store path ({exc})") from None
        try:
            return cls._create_or_update(path, spec, spec_text, tasks)
        except OSError as exc:
            error = StoreWriteError if is_store_full_or_readonly(exc) else StoreError
            raise error(f"{path}: cannot write the run store: {exc.strerror or exc}"
                        f"{f' ({exc.filename})' if exc.filename else ''}") from None

    @classmethod
    def _create_or_update(cls, path: Path, spec, spec_text: str, tasks: list[Task]):
        if not (path / "zarr.json").exists():
            occupied = path.exists() and (not path.is_dir() or any(path.iterdir()))
            # looked again: another driver may have renamed its new store into place meanwhile
            if occupied and not (path / "zarr.json").exists():
                raise StoreError(f"{path}: exists and is not a snnbatch run store; choose another --store")
            if not occupied:
                cls._create(path, spec, spec_text)
        store = cls.open(path, mode="r+")
        existing = store.spec_dict()
        if existing.get("name") != spec.name:
            raise StoreError(
                f"{path}: holds run '{existing.get('name')}', not '{spec.name}'; choose another --store"
            )
        have = set(store.task_ids())
        new = {}
        for task in tasks:
            if task.id in have or task.id in new:
                continue
            new[task.id] = {"id": task.id, "config_json": task.config_json(), "params": task.params,
                            "index": len(have) + len(new)}
        if new:
            store._upgrade()
        # one plan document for all of them, committed whole; a task another driver's earlier
        # document holds is that driver's, not added here
        added = layout.add_planned(path, list(new.values()))
        if added:
            history = list(store.root.attrs.get("spec_history", []))
            overrides = list(getattr(spec, "_overrides", None) or [])
            history.append({"time": time.time(), "added": len(added), "spec_yaml": spec_text, "overrides": overrides})
            from .planner import plan_record  # here: reading a store imports no config code

            record = None if HALVING in store.root.attrs else plan_record(spec, tasks)
            halving = {HALVING: record} if record else {}
            store.root.update_attributes({"spec": spec.model_dump(mode="json"), "spec_yaml": spec_text,
                                          "overrides": overrides, **halving,
                                          "spec_history": history, **code_attrs(store.root.attrs, tasks)})
        return store, added

    @staticmethod
    def _create(path: Path, spec, spec_text: str) -> None:
        """Build an empty store beside ``path`` and rename it into place, unless another driver was first."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.creating-{uuid.uuid4().hex[:8]}"
        try:
            root = zarr.open_group(str(tmp), mode="w-")
            root.attrs.put({
                "snnbatch": {"format": FORMAT, "version": snnbatch_version()},
                "name": spec.name,
                "created": time.time(),
                "spec": spec.model_dump(mode="json"),
                "spec_yaml": spec_text,
                "plugins": [],
                "metrics": {},
            })
            root.create_group(TASKS)
            try:
                os.rename(tmp, path)  # replaces an empty directory; fails on a non-empty one
            except OSError:
                if not (path / "zarr.json").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _upgrade(self) -> None:
        """Mark a format 1 store as format 2 before this snnbatch adds plan or submission documents to
        it (a snnbatch that reads only format 1 would not see them: it refuses the store instead)."""
        meta = dict(self.root.attrs.get("snnbatch", {}))
        if meta.get("format") != FORMAT:
            self.root.update_attributes({"snnbatch": {**meta, "format": FORMAT, "upgraded_from": meta.get("format")}})

    def check_writable(self) -> None:
        """Raise :class:`StoreWriteError` naming the store when a file cannot be written into it."""
        probe = self.path / f".snnbatch-write-test-{uuid.uuid4().hex[:8]}"
        try:
            with open(probe, "wb") as fh:
                fh.write(b"\0" * 4096)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise StoreWriteError(f"{self.path}: the run store is not writable: {exc.strerror or exc}; "
                                  "free space or fix its permissions, then try again") from None
        finally:
            try:
                os.unlink(probe)
            except OSError:
                pass

    @classmethod
    def open(cls, path, mode: str = "r") -> "RunStore":
        """Open a store; ``mode="r+"`` also checks that it can be written (:meth:`check_writable`)."""
        store = cls(path, open_root(path, mode=mode))
        if mode != "r":
            store.check_writable()
        return store

    # ---------------------------------------------------------------- reading

    def spec_dict(self) -> dict:
        return dict(self.root.attrs.get("spec", {}))

    @property
    def name(self) -> str:
        return str(self.root.attrs.get("name", self.path.name))

    def metrics(self) -> dict[str, dict[str, Any]]:
        """What the run's algorithms declare of each metric, as recorded when it was planned
        (:func:`code_attrs`): ``{name: {"label": ..., "better": "higher" | "lower", "status": bool,
        "final": bool, "validation": bool}}``, in declaration order (``validation`` is missing from
        the records of a store planned before snnbatch validated). Empty for a store planned before snnbatch recorded it."""
        record = self.root.attrs.get("metrics")
        if not isinstance(record, dict):
            return {}
        return {str(k): dict(v) for k, v in record.items() if isinstance(v, dict)}

    def task_ids(self) -> list[str]:
        return layout.task_ids(self.path)

    def read_many(self, keys: list[str]) -> list[dict | None]:
        """The ``attributes`` of many groups at once (missing groups give None), concurrently."""
        return _read_attrs(self.path, keys)

    def tasks(self, configs: bool = True) -> list[dict[str, Any]]:
        """Every task: id, index, params, config (left out unless ``configs``), status and scheduler
        info, in plan order.

        Reads the plan documents, the submission documents and the status documents of the tasks
        that started (the directories under ``tasks/``, which a pending task does not have), each
        once; a format 1 store's task groups and scheduler records besides.
        """
        if not (self.path / TASKS).is_dir():
            raise StoreError(f"{self.path}: store has no 'tasks' group")
        with without_gc():
            return self._tasks(configs)

    def _tasks(self, configs: bool) -> list[dict[str, Any]]:
        docs = layout.plan_documents(self.path)
        planned = layout.planned_ids(self.path, docs)
        dirs = layout.started_dirs(self.path)
        legacy = layout.legacy_tasks(self.path, [d for d in dirs if d not in planned])
        statuses = read_statuses(self.path, dirs)
        legacy_sched = dict(zip(legacy, self.read_many([f"{TASKS}/{tid}/scheduler" for tid in legacy])))
        sched = layout.submissions(self.path)
        config_of = layout.planned_configs(self.path, docs) if configs else {}
        now = time.time()
        entries = ((tid, index, params) for _, doc in docs
                   for tid, index, params in zip(layout._doc_ids(doc), doc["index"], doc["params"]))
        legacy_entries = ((tid, meta.get("index", 0), meta.get("params", {})) for tid, meta in legacy.items())
        out = []
        seen: set[str] = set()
        for tid, index, params in itertools.chain(entries, legacy_entries):
            if tid in seen:  # a later plan document holding a task an earlier one has
                continue
            seen.add(tid)
            status = statuses.get(tid) or {"state": "pending"}
            state = status.get("state", "pending")
            if state == "running" and not _lease_held(self.path / TASKS / tid, now):
                state = "interrupted"
            record = sched.get(tid, {})
            if tid in legacy_sched:  # submissions after format 1 continue the task's record
                old = legacy_sched[tid] or {}
                record = {**old, **record, "submissions": list(old.get("submissions", [])) + record.get("submissions", [])}
            task = {"id": tid, "index": index, "params": params, "status": status, "state": state,
                    "scheduler": record}
            if configs:
                task["config"] = config_of[tid] if tid in config_of else legacy[tid].get("config", {})
            out.append(task)
        out.sort(key=lambda t: t["index"])
        rungs = overview(self.path, [t["id"] for t in out])  # a halving sweep: each task's rung, promoted or pruned
        for t in out:
            if t["id"] in rungs:
                t["halving"] = rungs[t["id"]]
                if rungs[t["id"]]["halving"] == "pruned" and t["state"] not in ("running", "failed"):
                    t["state"] = "pruned"
        return out

    # ---------------------------------------------------------------- scheduler records

    def record_submission(self, task_ids: list[str], backend: str, jobs: dict[str, dict]) -> None:
        """Append a submission (backend, job id per task) to each task's ``scheduler`` group."""
        known = set(self.task_ids())  # (the plan's ids: no record per task is built)
        for tid in task_ids:
            if tid not in known:
                raise StoreError(f"{self.path}/{TASKS}/{tid}: task metadata is missing or unreadable")
        self._upgrade()
        layout.add_submission(self.path, task_ids, backend, jobs)


def code_attrs(attrs, tasks: list[Task]) -> dict:
    """The root attrs that record the code behind ``tasks``, merged with what the store records already.

    ``plugins``: where each plugin algorithm and dataset came from (:func:`snnbatch.jobs.plugins.record`);
    ``metrics``: each metric's label, which way is better and whether status shows it, so that
    ``status`` and ``report`` read them from the store without importing any plugin.
    """
    from ..jobs import plugins, registry

    models = {t.section("model").type for t in tasks}
    data = {t.section("dataset").type for t in tasks}
    recorded = {(r["what"], r["id"]): r for r in attrs.get("plugins", [])}
    for r in plugins.record(models, data):
        recorded.setdefault((r["what"], r["id"]), r)
    metrics = dict(attrs.get("metrics", {}))
    for name in sorted(models):
        for m in registry.algorithm(name).metrics:
            metrics.setdefault(m.name, m.as_record())
    return {"plugins": list(recorded.values()), "metrics": metrics}


def record_code_change(store: "RunStore", records: list[dict], changes: list[str]) -> None:
    """Record that the run goes on with changed plugin code: the new records, and what changed when."""
    history = list(store.root.attrs.get("plugin_changes", []))
    history.append({"time": time.time(), "changes": changes, "before": list(store.root.attrs.get("plugins", []))})
    store.root.update_attributes({"plugins": records, "plugin_changes": history})


def _lease_held(task_dir: Path, now: float) -> bool:
    """Whether a live process holds the task's lease (see :mod:`snnbatch.jobs.store`)."""
    try:
        info, _ = read_lease(task_dir / LEASE)
    except OSError:
        return True  # cannot tell: keep what the status says
    return info is not None and lease_alive(info, now)


# ---------------------------------------------------------------- the cache of status records
#
# ``cache/statuses.json`` holds status records read before, each with the stat (inode, size, time) of
# the document it was read from: a reader takes a record from it only when the task's status
# document still has that stat (one stat a task instead of opening and parsing its document), and
# reads the document otherwise. Only a hint: a task never reads or writes it, whoever reads the
# store may rewrite it (whole, renamed into place; a reader that finds it missing, torn or foreign
# reads every document), and a copied store's documents have other inodes, so the copy's first
# reader reads them all and caches them anew. A document is only cached once it is CACHE_AGE_NS old
# and not running, so one rewritten within the same tick of the clock is never mistaken for it (and
# a rewrite is a new file beside the old one, so another inode).

STATUS_CACHE = "cache/statuses.json"
CACHE_FORMAT = 1
CACHE_AGE_NS = 2_000_000_000
CACHE_MIN_NEW = 64  # cacheable records read from their documents before the cache is rewritten


def read_statuses(path: Path, tids: list[str]) -> dict[str, dict | None]:
    """The status record of each task of ``tids`` (None where it has none or it is unreadable), from the
    cache where the task's status document is the one cached, else from the document (then cached)."""
    cache = _read_status_cache(path)
    base = str(path)
    out: dict[str, dict | None] = {}
    misses = []
    for tid in tids:
        hit = cache.get(tid)
        if hit is not None:
            try:
                st = os.stat(os.path.join(base, TASKS, tid, STATUS, "zarr.json"))
            except OSError:
                st = None
            if st is not None and (st.st_ino, st.st_size, st.st_mtime_ns) == (hit[0], hit[1], hit[2]):
                out[tid] = hit[3]
                continue
        misses.append(tid)
    read = _read_attrs(path, [f"{TASKS}/{tid}/{STATUS}" for tid in misses], with_stat=True)
    now_ns = time.time_ns()
    fresh = {}
    for tid, (attrs, st) in zip(misses, read):
        out[tid] = attrs
        if (attrs is not None and st is not None and attrs.get("state") != "running"
                and now_ns - st.st_mtime_ns >= CACHE_AGE_NS):
            fresh[tid] = [st.st_ino, st.st_size, st.st_mtime_ns, attrs]
    if len(fresh) >= CACHE_MIN_NEW:
        missed = set(misses)
        kept = {tid: cache[tid] for tid in out if tid in cache and tid not in missed}
        _write_status_cache(path, {**kept, **fresh})
    return {tid: out[tid] for tid in tids}


def _read_status_cache(path: Path) -> dict[str, list]:
    try:
        with open(path / STATUS_CACHE, "rb") as fh:
            doc = json.loads(fh.read())
        entries = doc["entries"] if doc.get("format") == CACHE_FORMAT else {}
        return {tid: e for tid, e in entries.items()
                if isinstance(e, list) and len(e) == 4 and all(type(x) is int for x in e[:3]) and isinstance(e[3], dict)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _write_status_cache(path: Path, entries: dict[str, list]) -> None:
    try:
        (path / STATUS_CACHE).parent.mkdir(exist_ok=True)
        layout.write_whole(path / STATUS_CACHE, json.dumps({"format": CACHE_FORMAT, "entries": entries}).encode())
    except OSError:  # a store this reader cannot write (read-only, full): it reads the documents next time too
        pass


def _read_attrs(path: Path, keys: list[str], with_stat: bool = False) -> list:
    """The ``attributes`` of each group ``key`` under ``path`` (None where missing or unreadable), read
    in chunks by a few threads: one thread per chunk, not an event-loop task per file, so that the
    reading costs about what reading the files does, and a shared file system's latency overlaps.
    ``with_stat``: each as ``(attributes, stat of the file read)``."""
    base = str(path)

    def chunk(part: list[str]) -> list:
        out = []
        for key in part:
            try:
                with open(os.path.join(base, key, "zarr.json"), "rb") as fh:
                    st = os.fstat(fh.fileno()) if with_stat else None  # the stat of the file read (of its inode)
                    attrs = json.loads(fh.read()).get("attributes", {})
                out.append((attrs, st) if with_stat else attrs)
            except (OSError, ValueError, AttributeError):
                out.append((None, None) if with_stat else None)
        return out

    size = 512
    parts = [keys[i : i + size] for i in range(0, len(keys), size)]
    if len(parts) <= 1:
        return chunk(keys)
    with ThreadPoolExecutor(max_workers=min(8, len(parts))) as pool:
        return [doc for part in pool.map(chunk, parts) for doc in part]
