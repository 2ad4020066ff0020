"""One task's part of the run store: its config, status and checkpoints.

Layout (Zarr v3, one directory per run)::

    RUN/zarr.json                       root attrs: format, snnbatch version, resolved spec
    RUN/tasks/<id>/zarr.json            attrs: config, swept parameters, index   (written once, by the planner)
    RUN/tasks/<id>/status/zarr.json     attrs: state, iteration, metrics, attempts, error  (the task's own writer)
    RUN/tasks/<id>/scheduler/zarr.json  attrs: backend and job ids                (the submitting driver)
    RUN/tasks/<id>/checkpoints/<seq>/   one group per checkpoint: every state array, the metric
                                        history, and attrs with the iteration, the RNG state and
                                        a SHA-256 of every array

Each file is written to a temporary name and renamed into place (Zarr's
LocalStore does this for every key), so a reader sees a whole file or the
previous one. A checkpoint is committed by writing its attrs last
(``complete: true`` with the checksums); a crash before that leaves an
incomplete group that loading skips. Loading verifies the checksums and
falls back to the previous checkpoint when one does not match; older
checkpoints beyond ``keep`` are deleted only after a newer one committed.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from .errors import StoreError
from .trainer import TrainState

FORMAT = 1
TASKS = "tasks"


def now() -> float:
    return time.time()


def digest(a: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _encode_name(name: str) -> str:
    return name.replace("/", ".")


def _decode_name(name: str) -> str:
    return name.replace(".", "/")


def open_root(path: str | os.PathLike, mode: str = "r") -> zarr.Group:
    """Open a run store's root group, refusing what is not a snnbatch store of this format."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        raise StoreError(f"{path}: not a snnbatch run store (no zarr.json)")
    try:
        root = zarr.open_group(str(path), mode=mode)
        meta = root.attrs.get("snnbatch")
    except Exception as exc:  # unreadable metadata
        raise StoreError(f"{path}: cannot read the store's metadata: {exc}") from None
    if not isinstance(meta, dict) or "format" not in meta:
        raise StoreError(f"{path}: a Zarr store, but not one written by snnbatch (no 'snnbatch' attribute)")
    if meta["format"] != FORMAT:
        raise StoreError(
            f"{path}: store format {meta['format']} (written by snnbatch {meta.get('version', '?')}); "
            f"this snnbatch reads format {FORMAT}"
        )
    return root


class TaskStore:
    """Read and write one task's groups. Only this task's process writes ``status`` and ``checkpoints``."""

    def __init__(self, path: str | os.PathLike, task_id: str, mode: str = "r+"):
        self.path = Path(path)
        self.task_id = task_id
        root = open_root(self.path, mode="r" if mode == "r" else "r+")
        try:
            self.group = root[f"{TASKS}/{task_id}"]
        except KeyError:
            raise StoreError(f"{self.path}: no task {task_id!r} in this store") from None
        self._status = None

    # -------------------------------------------------------------- config and status

    @property
    def config_dict(self) -> dict:
        return dict(self.group.attrs["config"])

    def config(self):
        from .config import TaskConfig

        return TaskConfig.model_validate(self.config_dict)

    def status(self) -> dict[str, Any]:
        try:
            return dict(self.group["status"].attrs)
        except KeyError:
            return {"state": "pending"}

    def update_status(self, **values) -> None:
        if self._status is None:
            self._status = self.group.require_group("status")
        values["updated"] = now()
        self._status.update_attributes(values)

    # -------------------------------------------------------------- checkpoints

    def _checkpoints(self) -> zarr.Group:
        return self.group.require_group("checkpoints")

    def checkpoint_names(self) -> list[str]:
        try:
            ck = self.group["checkpoints"]
        except KeyError:
            return []
        return sorted(ck.group_keys())

    def save_checkpoint(self, state: TrainState, keep: int, extra: dict | None = None) -> str:
        """Commit ``state`` as a new checkpoint; returns its name. Old ones beyond ``keep`` are removed after."""
        ckroot = self._checkpoints()
        names = self.checkpoint_names()
        seq = int(names[-1]) + 1 if names else 0
        name = f"{seq:08d}"
        ck = ckroot.create_group(name)
        arrays = dict(state.arrays)
        for k, v in state.metrics.items():
            arrays[f"metrics/{k}"] = np.asarray(v, dtype=np.float64)
        checksums = {}
        for key, value in arrays.items():
            value = np.asarray(value)
            ck.create_array(_encode_name(key), data=value, chunks=value.shape if value.ndim else "auto",
                            compressors=None)
            checksums[key] = digest(value)
        ck.attrs.put({
            "complete": True,
            "iteration": state.iteration,
            "rng": json.dumps(state.rng.bit_generator.state),
            "metrics": sorted(state.metrics),
            "checksums": checksums,
            "created": now(),
            "host": socket.gethostname(),
            **(extra or {}),
        })
        for old in names[: max(0, len(names) + 1 - keep)]:
            self._delete_checkpoint(old)
        return name

    def _delete_checkpoint(self, name: str) -> None:
        shutil.rmtree(self.path / TASKS / self.task_id / "checkpoints" / name, ignore_errors=True)

    def load_checkpoint(self, name: str) -> TrainState:
        """Load and verify one checkpoint; raises ``CorruptCheckpoint`` when it is incomplete or altered."""
        try:
            ck = self.group[f"checkpoints/{name}"]
            attrs = dict(ck.attrs)
            if not attrs.get("complete"):
                raise CorruptCheckpoint(f"checkpoint {name} was never committed")
            arrays = {}
            for key, expected in attrs["checksums"].items():
                value = np.asarray(ck[_encode_name(key)][...])
                if digest(value) != expected:
                    raise CorruptCheckpoint(f"checkpoint {name}: array {key!r} does not match its checksum")
                arrays[key] = value
            rng_state = json.loads(attrs["rng"])
        except CorruptCheckpoint:
            raise
        except Exception as exc:  # truncated or unreadable files
            raise CorruptCheckpoint(f"checkpoint {name} is unreadable: {type(exc).__name__}: {exc}") from None
        bitgen = getattr(np.random, rng_state["bit_generator"])()
        bitgen.state = rng_state
        metrics = {k: arrays.pop(f"metrics/{k}").tolist() for k in attrs["metrics"]}
        return TrainState(int(attrs["iteration"]), arrays, np.random.Generator(bitgen), metrics)

    def latest_checkpoint(self) -> tuple[TrainState | None, list[str]]:
        """The newest good checkpoint and the problems met on the way to it (newer, bad ones)."""
        problems = []
        for name in reversed(self.checkpoint_names()):
            try:
                return self.load_checkpoint(name), problems
            except CorruptCheckpoint as exc:
                problems.append(str(exc))
        return None, problems


class CorruptCheckpoint(Exception):
    """A checkpoint that was not committed, or whose arrays changed on disk."""
