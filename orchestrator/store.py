"""The run store's index: create a run, add tasks, read every task's status quickly.

See :mod:`snnbatch.jobs.store` for the layout. The driver writes the root
attrs, each task's config group (once) and the ``scheduler`` group; tasks
write their own ``status`` and ``checkpoints``.
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import LocalStore

from ..jobs.errors import StoreError
from ..jobs.store import FORMAT, TASKS, open_root
from .planner import Task

STALE_SECONDS = 120.0  # a "running" task without a heartbeat for this long is taken as interrupted


def _version() -> str:
    from .. import __version__

    return __version__


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
        if path.exists() and (path / "zarr.json").exists():
            store = cls.open(path, mode="r+")
            existing = store.spec_dict()
            if existing.get("name") != spec.name:
                raise StoreError(
                    f"{path}: holds run '{existing.get('name')}', not '{spec.name}'; choose another --store"
                )
        elif path.exists() and any(path.iterdir()):
            raise StoreError(f"{path}: exists and is not a snnbatch run store; choose another --store")
        else:
            root = zarr.open_group(str(path), mode="w")
            root.attrs.put({
                "snnbatch": {"format": FORMAT, "version": _version()},
                "name": spec.name,
                "created": time.time(),
                "spec": spec.model_dump(mode="json"),
                "spec_yaml": spec_text,
            })
            root.create_group(TASKS)
            store = cls(path, root)
        have = set(store.task_ids())
        added = []
        tasks_group = store.root[TASKS]
        offset = len(have)
        for task in tasks:
            if task.id in have:
                continue
            tasks_group.create_group(task.id, attributes={
                "config": task.config_dict(),
                "params": task.params,
                "index": offset + len(added),
            })
            added.append(task.id)
        if added:
            history = list(store.root.attrs.get("spec_history", []))
            history.append({"time": time.time(), "added": len(added), "spec_yaml": spec_text})
            store.root.update_attributes({"spec": spec.model_dump(mode="json"), "spec_yaml": spec_text,
                                          "spec_history": history})
        return store, added

    @classmethod
    def open(cls, path, mode: str = "r") -> "RunStore":
        return cls(path, open_root(path, mode=mode))

    # ---------------------------------------------------------------- reading

    def spec_dict(self) -> dict:
        return dict(self.root.attrs.get("spec", {}))

    @property
    def name(self) -> str:
        return str(self.root.attrs.get("name", self.path.name))

    def task_ids(self) -> list[str]:
        try:
            return sorted(self.root[TASKS].group_keys())
        except KeyError:
            raise StoreError(f"{self.path}: store has no 'tasks' group") from None

    def read_many(self, keys: list[str]) -> list[dict | None]:
        """The ``attributes`` of many groups at once (missing groups give None), concurrently."""
        return asyncio.run(_read_attrs(self.path, keys))

    def tasks(self) -> list[dict[str, Any]]:
        """Every task: id, index, params, config, status and scheduler info, in plan order."""
        ids = self.task_ids()
        keys = []
        for tid in ids:
            keys += [f"{TASKS}/{tid}", f"{TASKS}/{tid}/status", f"{TASKS}/{tid}/scheduler"]
        attrs = self.read_many(keys)
        out = []
        now = time.time()
        for i, tid in enumerate(ids):
            meta, status, sched = attrs[3 * i : 3 * i + 3]
            if meta is None:
                raise StoreError(f"{self.path}/{TASKS}/{tid}: task metadata is missing or unreadable")
            status = status or {"state": "pending"}
            state = status.get("state", "pending")
            if state == "running" and _holder_gone(status, now):
                state = "interrupted"
            out.append({
                "id": tid,
                "index": meta.get("index", i),
                "params": meta.get("params", {}),
                "config": meta.get("config", {}),
                "status": status,
                "state": state,
                "scheduler": sched or {},
            })
        out.sort(key=lambda t: t["index"])
        return out

    # ---------------------------------------------------------------- scheduler records

    def record_submission(self, task_ids: list[str], backend: str, jobs: dict[str, dict]) -> None:
        """Append a submission (backend, job id per task) to each task's ``scheduler`` group."""
        tasks = self.root[TASKS]
        for tid in task_ids:
            g = tasks[tid].require_group("scheduler")
            subs = list(g.attrs.get("submissions", []))
            subs.append({"backend": backend, "time": time.time(), **jobs.get(tid, {})})
            g.update_attributes({"backend": backend, "submissions": subs, **jobs.get(tid, {})})


def _holder_gone(status: dict, now: float) -> bool:
    """A "running" task whose process is gone: dead pid on this host, or no heartbeat for long."""
    if now - float(status.get("heartbeat", 0)) > STALE_SECONDS:
        return True
    attempts = status.get("attempts") or [{}]
    last = attempts[-1]
    if last.get("host") == socket.gethostname() and last.get("pid"):
        try:
            os.kill(int(last["pid"]), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
    return False


async def _read_attrs(path: Path, keys: list[str]) -> list[dict | None]:
    store = LocalStore(str(path), read_only=True)
    proto = default_buffer_prototype()
    sem = asyncio.Semaphore(64)

    async def one(key):
        async with sem:
            try:
                buf = await store.get(f"{key}/zarr.json", prototype=proto)
            except OSError:
                return None
            if buf is None:
                return None
            try:
                return json.loads(buf.to_bytes()).get("attributes", {})
            except ValueError:
                return None

    return await asyncio.gather(*(one(k) for k in keys))
