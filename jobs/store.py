"""One task's part of the run store: its config, status, checkpoints and lease.

Layout (Zarr v3, one directory per run; format 2)::

    RUN/zarr.json                       root attrs: format, snnbatch version, resolved spec
    RUN/plan/<seq>.json                 the tasks one driver added: ids, plan index, swept parameters
    RUN/plan/<token>.configs.jsonl      their configs, one a line, and <token>.lookup: where each
                                        one starts          (all three written once, by the planner)
    RUN/submissions/<ns>-<token>.json   one submission: backend, tasks, job ids  (the submitting driver)
    RUN/tasks/<id>/status/zarr.json     attrs: state, iteration, metrics, attempts, warnings, error
                                        (the task's own writer)
    RUN/tasks/<id>/checkpoints/<seq>/   one group per checkpoint: every state array, the metric
                                        history, and attrs with the iteration, the RNG state and
                                        a SHA-256 of every array
    RUN/tasks/<id>/lease                who runs the task now: host, pid, heartbeat (plain JSON)
    RUN/cache/statuses.json             a readers' hint: status records read before, with their documents'
                                        stat (:func:`snnbatch.orchestrator.store.read_statuses`)

A pending task has no file of its own: ``tasks/<id>/`` is made when the task starts. The plan and
submission documents are described below ("the plan and submission index"); format 1 stores, where
each task was a group ``tasks/<id>/zarr.json`` holding its config and ``tasks/<id>/scheduler``
its submissions, read as before.

Task ids are 12 lowercase hex digits and nothing else (:func:`check_task_id`),
so no id can name a path outside the store.

Writing. Each file is written to a temporary name and renamed into place
(Zarr's LocalStore does this for every key), so a reader sees a whole file
or the previous one. A checkpoint is written whole under a temporary name
(``<seq>.partial-<token>``), committed by writing its attrs last
(``complete: true`` with the checksums), then renamed to ``<seq>``: a crash
at any instant leaves either no checkpoint ``<seq>`` or a complete one.
Loading verifies the checksums and falls back to the previous checkpoint
when one does not match; older checkpoints beyond ``keep`` are deleted only
after a newer one committed (renamed aside first, then removed, in a background
thread the runner waits for before it releases the lease). Leftovers
of a crash (partial checkpoints, half-deleted ones, temporary files) are
removed by the next holder of the task's lease (:meth:`TaskStore.clean_leftovers`).
A write the file system refuses (no space, quota, file size limit,
read-only, permission) raises :class:`StoreWriteError` naming the store.

Reading. This module is the one that knows the layout: the checkpoint reader
(:func:`read_checkpoint`, :func:`read_metric_history`) serves both the runner
and the results API, and the status record is read and written as a
:class:`~snnbatch.jobs.status.TaskStatus`. Leases (``tasks/<id>/lease``) are
:mod:`snnbatch.jobs.lease`. Nothing here imports a task's code: only
:meth:`TaskStore.config` does, when a task is about to train.
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import socket
import threading
import time
import warnings
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from . import lease as _lease
from .errors import StoreError, StoreWriteError
from .lease import (  # noqa: F401  (importable from here as before)
    LEASE, LEASE_HEARTBEAT_SECONDS, LEASE_STALE_SECONDS, Lease, _lease_info, describe_holder, lease_alive, read_lease,
)
from .state import TrainState
from .status import TaskStatus, flat_metrics
from .version import snnbatch_version


# Zarr writes each file under a temporary ``<name>.<random>.partial`` name and renames it into
# place; a reader listing a group at that instant sees the temporary name and warns about it.
warnings.filterwarnings("ignore", message=r"Object at .*\.partial is not recognized", category=UserWarning)

FORMAT = 2  # what this snnbatch writes (see "the plan and submission index" below)
READS = (1, 2)  # the formats it reads
TASKS = "tasks"
STATUS = "status"
CHECKPOINTS = "checkpoints"
METRICS = "metrics"  # a checkpoint's metric histories are its arrays metrics/<name>

TASK_ID = re.compile(r"[0-9a-f]{12}")
CHECKPOINT_NAME = re.compile(r"[0-9]{8}")  # a committed checkpoint; others are being written or deleted
# What a full, over-quota, size-limited, read-only or forbidden store raises.
STORE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
# Test hook, read by save_checkpoint: seconds to sleep before each array write and before the
# commit, to widen the window in which the kill campaign (tests/reliability) lands a SIGKILL.
SLOW_CHECKPOINT_ENV = "SNNBATCH_TEST_SLOW_CHECKPOINT"


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


def check_task_id(task_id, store=None) -> str:
    """``task_id`` if it is 12 lowercase hex digits; a :class:`StoreError` otherwise."""
    if not isinstance(task_id, str) or not TASK_ID.fullmatch(task_id):
        where = f"{store}: " if store is not None else ""
        raise StoreError(f"{where}{task_id!r} is not a task id: expected 12 lowercase hex digits, "
                         "as 'snnbatch status STORE' lists them")
    return task_id


TASK_PREFIX = re.compile(r"[0-9a-f]{1,12}")
SHOWN_CANDIDATES = 10  # an ambiguous prefix names this many of the tasks it matches


def resolve_task_id(store, prefix, ids=None) -> str:
    """The id of the one task of the run store at ``store`` whose id starts with ``prefix``, as git
    takes a commit's (any unique prefix, the whole id included); a :class:`StoreError` naming the
    candidates when several match, or saying that none does. ``ids``: the store's task ids, when
    the caller has them (else the ``tasks`` directory is listed)."""
    text = prefix
    if not isinstance(text, str) or not TASK_PREFIX.fullmatch(text):
        raise StoreError(f"{store}: {prefix!r} is not a task id: expected lowercase hex digits (the whole 12 or a prefix), "
                         "as 'snnbatch status STORE' lists them")
    if ids is None:
        open_root(store)  # a store of this format, or a clear error
        try:
            ids = task_ids(store)
        except OSError:
            ids = []
    found = sorted(i for i in ids if i.startswith(text))
    if len(found) == 1:
        return found[0]
    if not found:
        raise StoreError(f"{store}: no task {text!r} in this store ({len(ids)} tasks; "
                         f"'snnbatch status {store}' lists them)")
    shown = ", ".join(found[:SHOWN_CANDIDATES]) + (f" and {len(found) - SHOWN_CANDIDATES} more"
                                                   if len(found) > SHOWN_CANDIDATES else "")
    raise StoreError(f"{store}: task id {text!r} is ambiguous: {len(found)} tasks start with it ({shown}); "
                     "give more of its characters")


def is_store_full_or_readonly(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in STORE_ERRNOS


def _write_error(path, exc: OSError, doing: str) -> StoreWriteError:
    why = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return StoreWriteError(f"{path}: cannot {doing}: {why}{where}. "
                           "Nothing already committed was changed; free space or fix permissions, "
                           f"then run 'snnbatch resume {path}'")


def open_root(path: str | os.PathLike, mode: str = "r") -> zarr.Group:
    """Open a run store's root group, refusing what is not a snnbatch store of this format."""
    try:
        path = Path(path)
        found = (path / "zarr.json").is_file()
    except (OSError, ValueError) as exc:  # a name too long, a NUL byte, an unencodable name
        raise StoreError(f"{str(path)!r}: not a usable store path ({exc})") from None
    if not found:
        raise StoreError(f"{path}: not a snnbatch run store (no zarr.json)")
    try:
        root = zarr.open_group(str(path), mode=mode)
        meta = root.attrs.get("snnbatch")
    except Exception as exc:  # unreadable metadata
        raise StoreError(f"{path}: cannot read the store's metadata: {exc}") from None
    if not isinstance(meta, dict) or "format" not in meta:
        raise StoreError(f"{path}: a Zarr store, but not one written by snnbatch (no 'snnbatch' attribute)")
    if meta["format"] not in READS:
        newer = isinstance(meta["format"], int) and meta["format"] > FORMAT
        advice = ("upgrade snnbatch to read it" if newer else
                  "read it with the snnbatch version that wrote it, or start a new store")
        raise StoreError(
            f"{path}: store format {meta['format']!r} (written by snnbatch {meta.get('version', '?')}); "
            f"this snnbatch {snnbatch_version()} reads format {' and '.join(map(str, READS))}: {advice}. Nothing was changed."
        )
    return root


class TaskStore:
    """Read and write one task's groups. Only the lease holder writes ``status`` and ``checkpoints``."""

    def __init__(self, path: str | os.PathLike, task_id: str, mode: str = "r+"):
        self.path = Path(path)
        self.task_id = check_task_id(task_id, self.path)
        self.root = open_root(self.path, mode="r" if mode == "r" else "r+")
        self.dir = self.path / TASKS / task_id
        self._config = planned_config(self.path, task_id)
        if self._config is None:  # a format 1 task group
            doc = _read_json(self.dir / "zarr.json")
            if doc is None:
                raise StoreError(f"{self.path}: no task {task_id!r} in this store")
            try:
                self._config = dict(doc["attributes"]["config"])
            except (KeyError, TypeError, ValueError) as exc:
                raise StoreError(f"{self.path}: task {task_id}: unreadable metadata: {exc}") from None
        if mode != "r":
            self.dir.mkdir(parents=True, exist_ok=True)  # the task's own directory, made when it starts
        self._status: dict | None = None
        self._removals: list[threading.Thread] = []

    # -------------------------------------------------------------- config and status

    @property
    def config_dict(self) -> dict:
        return dict(self._config)

    def config(self):
        """The task's typed config; first loads the plugin files the run records (this runs their code)."""
        from pydantic import ValidationError

        from . import plugins
        from .config import TaskConfig

        plugins.load_recorded(list(self.root.attrs.get("plugins", [])))
        try:
            return TaskConfig.model_validate(self.config_dict)
        except (KeyError, ValidationError) as exc:
            raise StoreError(f"{self.dir}: the task's config is missing or not valid for this snnbatch: "
                             f"{exc}") from None

    def status(self) -> dict[str, Any]:
        """The status record as stored (plain data); :meth:`read_status` reads it typed."""
        return stored_status(self.path, self.task_id)

    def read_status(self) -> TaskStatus:
        return TaskStatus.from_attrs(self.status())

    def update_status(self, metrics: dict[str, float] | None = None, **values) -> None:
        """Merge ``values`` (fields of :class:`~snnbatch.jobs.status.TaskStatus`) and the latest
        ``metrics`` into the status record, in one write."""
        values.update(flat_metrics(metrics))
        values["updated"] = now()
        try:
            if self._status is None:
                (self.dir / STATUS).mkdir(parents=True, exist_ok=True)
                doc = _read_json(self.dir / STATUS / "zarr.json")
                self._status = dict(doc.get("attributes", {})) if doc is not None else {}
            self._status.update(values)
            # the task's own document, written whole: a reader sees this record or the one before
            write_whole(self.dir / STATUS / "zarr.json", group_document(self._status))
        except OSError as exc:
            if is_store_full_or_readonly(exc):
                raise _write_error(self.path, exc, f"write the status of task {self.task_id}") from None
            raise

    # -------------------------------------------------------------- lease

    def acquire_lease(self, wait: float | None = None) -> tuple[Lease | None, dict | None]:
        """Take this task's lease: ``(lease, None)``, or ``(None, holder)`` when a live holder has it.

        ``wait``: see :func:`snnbatch.jobs.lease.acquire`. Raises :class:`StoreWriteError`
        when the store cannot be written.
        """
        try:
            return _lease.acquire(self.dir / LEASE, wait)
        except OSError as exc:
            raise _write_error(self.path, exc, f"take the lease of task {self.task_id}") from None

    def lease_holder(self) -> dict | None:
        """The live holder of this task's lease, or None."""
        return _lease.live_holder(self.dir / LEASE)

    def clean_leftovers(self) -> list[str]:
        """Remove what a crashed holder left: partial or half-deleted checkpoints, temporary files.

        Call only while holding the lease. Returns the names removed.
        """
        removed = []
        ckdir = self.dir / CHECKPOINTS
        for sub in (ckdir, self.dir / STATUS):
            try:
                entries = list(os.scandir(sub))
            except OSError:
                continue
            for e in entries:
                if e.name.endswith(".partial") or ".partial-" in e.name or ".deleted-" in e.name:
                    if e.is_dir(follow_symlinks=False):
                        shutil.rmtree(e.path, ignore_errors=True)
                    else:
                        _unlink(e.path)
                    removed.append(e.name)
        return removed

    # -------------------------------------------------------------- checkpoints

    def _checkpoints(self) -> None:
        ckdir = self.dir / CHECKPOINTS
        if not (ckdir / "zarr.json").exists():
            ckdir.mkdir(parents=True, exist_ok=True)
            write_whole(ckdir / "zarr.json", group_document({}))

    def checkpoint_names(self) -> list[str]:
        """The committed checkpoints' names, oldest first."""
        return checkpoint_names(self.dir)

    def save_checkpoint(self, state: TrainState, keep: int, extra: dict | None = None) -> str:
        """Commit ``state`` as a new checkpoint; returns its name. Old ones beyond ``keep`` are removed after."""
        try:
            return self._save_checkpoint(state, keep, extra)
        except OSError as exc:
            if is_store_full_or_readonly(exc):
                raise _write_error(self.path, exc, f"write a checkpoint of task {self.task_id}") from None
            raise

    def _save_checkpoint(self, state, keep, extra):
        self._checkpoints()  # the checkpoints group exists
        ckdir = self.dir / CHECKPOINTS
        names = self.checkpoint_names()
        seq = int(names[-1]) + 1 if names else 0
        name = f"{seq:08d}"
        partial = f"{name}.partial-{uuid.uuid4().hex[:8]}"
        pause = _env_seconds(SLOW_CHECKPOINT_ENV)
        try:
            # the new checkpoint's group opened as a Zarr root of its own: creating its arrays then
            # writes nothing outside it (a child group makes Zarr re-assert every parent's metadata
            # for each array, up to the run's root: dozens of writes a checkpoint, shared by all tasks)
            ck = zarr.open_group(str(ckdir / partial), mode="w-")
            arrays = dict(state.arrays)
            for k, v in state.metrics.items():
                arrays[f"{METRICS}/{k}"] = np.asarray(v, dtype=np.float64)
            checksums = {}
            for key, value in arrays.items():
                value = np.asarray(value)
                if pause:
                    time.sleep(pause)
                ck.create_array(_encode_name(key), data=value, chunks=value.shape if value.ndim else "auto",
                                compressors=None)
                checksums[key] = digest(value)
            if pause:
                time.sleep(pause)
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
            os.rename(ckdir / partial, ckdir / name)  # the commit
        except BaseException:
            shutil.rmtree(ckdir / partial, ignore_errors=True)
            # a write that failed (no space, say) may leave a Zarr temporary file beside it
            for e in os.scandir(ckdir):
                if e.name.endswith(".partial") and e.is_file(follow_symlinks=False):
                    _unlink(e.path)
            raise
        for old in names[: max(0, len(names) + 1 - keep)]:
            self._delete_checkpoint(old, background=True)
        return name

    def _delete_checkpoint(self, name: str, background: bool = False) -> None:
        """Rename aside first, so a crash mid-delete never leaves a damaged checkpoint under its name.

        ``background``: remove the renamed directory in a thread (unlinking a few dozen files can
        take longer than writing them, e.g. on file systems mounted with ``discard`` or on network
        file systems); :meth:`finish_removals` waits for it. What a crash leaves is a ``.deleted-``
        directory, removed by the next holder of the lease (:meth:`clean_leftovers`).
        """
        ckdir = self.dir / CHECKPOINTS
        aside = ckdir / f"{name}.deleted-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(ckdir / name, aside)
        except OSError:
            return
        if not background:
            shutil.rmtree(aside, ignore_errors=True)
            return
        self._removals = [t for t in self._removals if t.is_alive()]
        thread = threading.Thread(target=shutil.rmtree, args=(aside,), kwargs={"ignore_errors": True},
                                  name=f"snnbatch-remove-{self.task_id}-{name}", daemon=True)
        thread.start()
        self._removals.append(thread)

    def finish_removals(self) -> None:
        """Wait until the old checkpoints :meth:`save_checkpoint` set aside are removed."""
        for thread in self._removals:
            thread.join()
        self._removals = []

    def discard_checkpoint(self, name: str) -> None:
        """Remove a bad checkpoint (lease holders only: the runner does it after reporting it)."""
        self._delete_checkpoint(name)

    def load_checkpoint(self, name: str) -> TrainState:
        """Load and verify one checkpoint; raises ``CorruptCheckpoint`` when it is incomplete or altered."""
        attrs, arrays = read_checkpoint(self.dir / CHECKPOINTS / name)
        try:
            rng_state = json.loads(attrs["rng"])
            bitgen = getattr(np.random, rng_state["bit_generator"])()
            bitgen.state = rng_state
            metrics = {k: arrays.pop(f"{METRICS}/{k}").tolist() for k in attrs["metrics"]}
            iteration = int(attrs["iteration"])
        except Exception as exc:  # a damaged record
            raise CorruptCheckpoint(f"checkpoint {name} is unreadable: {type(exc).__name__}: {exc}") from None
        return TrainState(iteration, arrays, np.random.Generator(bitgen), metrics)

    def newest_good_checkpoint(self) -> tuple[TrainState | None, str | None, list[tuple[str, str]]]:
        """The newest good checkpoint, its name, and the bad ones met on the way: ``(name, problem)``."""
        bad = []
        for name in reversed(self.checkpoint_names()):
            try:
                return self.load_checkpoint(name), name, bad
            except CorruptCheckpoint as exc:
                bad.append((name, str(exc)))
        return None, None, bad

    def latest_checkpoint(self) -> tuple[TrainState | None, list[str]]:
        """The newest good checkpoint and the problems met on the way to it (newer, bad ones)."""
        state, _, bad = self.newest_good_checkpoint()
        return state, [problem for _, problem in bad]


class CorruptCheckpoint(Exception):
    """A checkpoint that was not committed, or whose arrays changed on disk."""


# ------------------------------------------------------------------ reading checkpoints


def checkpoint_names(task_dir: str | os.PathLike) -> list[str]:
    """The names of a task's committed checkpoints, oldest first."""
    try:
        entries = os.listdir(Path(task_dir) / CHECKPOINTS)
    except OSError:
        return []
    return sorted(n for n in entries if CHECKPOINT_NAME.fullmatch(n))


def read_checkpoint(path: str | os.PathLike, prefix: str = "") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A committed checkpoint's attrs and its arrays whose names start with ``prefix`` (all by
    default), each verified against its checksum; the other arrays are not read.

    Raises :class:`CorruptCheckpoint` for a checkpoint never committed, an array that does
    not match its checksum, or files that are missing, truncated or unreadable.
    """
    name = Path(path).name
    try:
        # each checkpoint is written as a Zarr root of its own (see TaskStore.save_checkpoint); its
        # attrs read from its group document, zarr opened only for an array in another form
        with open(Path(path) / "zarr.json", "rb") as fh:
            attrs = dict(json.loads(fh.read())["attributes"])
        ck = None
        if not attrs.get("complete"):
            raise CorruptCheckpoint(f"checkpoint {name} was never committed")
        arrays = {}
        for key, expected in attrs["checksums"].items():
            if not key.startswith(prefix):
                continue
            value = _read_plain_array(Path(path) / _encode_name(key))
            if value is None or digest(value) != expected:  # not the form written here, or altered: zarr reads it
                ck = zarr.open_group(str(path), mode="r") if ck is None else ck
                value = np.asarray(ck[_encode_name(key)][...])
            if digest(value) != expected:
                raise CorruptCheckpoint(f"checkpoint {name}: array {key!r} does not match its checksum")
            arrays[key] = value
    except CorruptCheckpoint:
        raise
    except Exception as exc:  # truncated, deleted or unreadable files
        raise CorruptCheckpoint(f"checkpoint {name} is unreadable: {type(exc).__name__}: {exc}") from None
    return attrs, arrays


_PLAIN_CODECS = ([{"name": "bytes", "configuration": {"endian": "little"}}], [{"name": "bytes"}])


def _read_plain_array(path: Path) -> np.ndarray | None:
    """An array as :meth:`TaskStore.save_checkpoint` writes it (one chunk, uncompressed, little-endian
    bytes), read from its two files without zarr's machinery (a few milliseconds less per array,
    which is most of reading a checkpoint's metric histories); None for any other form, which zarr
    reads. The caller checks the result against the array's checksum either way."""
    try:
        with open(path / "zarr.json", "rb") as fh:
            meta = json.loads(fh.read())
        shape = tuple(meta["shape"])
        dtype = np.dtype(meta["data_type"])
        if (meta.get("node_type") != "array" or meta.get("codecs") not in _PLAIN_CODECS
                or meta.get("storage_transformers") or dtype.byteorder == ">" or dtype.kind not in "biuf"
                or tuple(meta["chunk_grid"]["configuration"]["chunk_shape"]) != shape
                or meta["chunk_key_encoding"] != {"name": "default", "configuration": {"separator": "/"}}):
            return None
        chunk = path.joinpath("c", *["0"] * len(shape))
        try:
            with open(chunk, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:  # a chunk equal to the fill value is not written
            fill = meta["fill_value"]
            return np.full(shape, fill, dtype=dtype) if isinstance(fill, (int, float)) else None
        value = np.frombuffer(data, dtype=dtype.newbyteorder("<"))
        return value.reshape(shape).astype(dtype, copy=True) if value.size == math.prod(shape) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_metric_history(task_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """The metric histories of a task's newest committed checkpoint whose metric arrays match their
    checksums (element ``i`` belongs to training iteration ``i + 1``); empty when there is none."""
    for name in reversed(checkpoint_names(task_dir)):
        try:
            attrs, arrays = read_checkpoint(Path(task_dir) / CHECKPOINTS / name, prefix=f"{METRICS}/")
            return {k: arrays[f"{METRICS}/{k}"] for k in attrs["metrics"]}
        except (CorruptCheckpoint, KeyError):  # deleted meanwhile, truncated or altered: the previous one
            continue
    return {}


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _env_seconds(name: str) -> float:
    try:
        return max(0.0, float(os.environ.get(name) or 0))
    except ValueError:
        return 0.0


# ------------------------------------------------------------------ the plan and submission index
#
# Format 2 (this snnbatch writes it). A task pending has no file of its own: the driver that plans
# tasks writes them as one plan document per call that adds tasks, and each submission as one
# submission document; a task's directory ``tasks/<id>/`` is made by the task when it starts
# (lease, status, checkpoints)::
#
#     RUN/plan/<seq>.json              the tasks one driver added: ids (one string, 12 characters
#                                      each), plan index and swept parameters of each, and the name
#                                      of the configs file with each config's byte offsets
#     RUN/plan/<token>.configs.jsonl   one config a line (JSON), in the order of the ids
#     RUN/plan/<token>.lookup          fixed-width records: each id and its config's byte offsets
#                                      (how a starting task finds its config alone)
#     RUN/submissions/<ns>-<token>.json  one submission: backend, time, the tasks and their job ids
#
# Every one of these documents is written whole under a temporary name and then renamed (configs,
# submissions) or hard-linked (a plan document, under the next free ``<seq>``) into place; none is
# ever changed afterwards. A plan document is committed at ``<seq>`` only once ``<seq> - 1`` is
# there (a driver takes the lowest free number), so the documents before a driver's own are all
# complete when it commits: a task that an earlier document holds is that earlier driver's
# (:func:`add_planned` does not count it as added), and readers take each task from the first
# document that holds it. Nothing names an absolute path or depends on a file's time or inode, so a
# copied store (cp -r, rsync) reads the same. Format 1 stores (every task a group
# ``tasks/<id>/zarr.json`` with its config, and ``tasks/<id>/scheduler/zarr.json``) read as before,
# and tasks added to one later go to plan documents.

PLAN = "plan"
SUBMISSIONS = "submissions"
PLAN_DOC = re.compile(r"[0-9]{8}\.json")
SUBMISSION_DOC = re.compile(r"[0-9]{20}-[0-9a-f]{8}\.json")


def write_whole(path: Path, data: bytes, exclusive: bool = False) -> bool:
    """Write ``path`` whole: a temporary file beside it, renamed over it (or, with ``exclusive``,
    hard-linked into place: False, and nothing changed, when ``path`` exists already)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        if not exclusive:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        _unlink(tmp)


def stored_status(store_path, task_id: str) -> dict[str, Any]:
    """A task's status record as stored (plain data; ``{"state": "pending"}`` before it starts), read
    without opening the store or the task: it creates nothing, so a look at the 100,000 tasks of a sweep
    (which tasks are left) costs a file open each and leaves ``tasks/`` holding only the tasks that started."""
    doc = _read_json(Path(store_path) / TASKS / task_id / STATUS / "zarr.json")
    return dict(doc.get("attributes", {})) if doc is not None else {"state": "pending"}


def _read_json(path) -> Any:
    try:
        with open(path, "rb") as fh:
            return json.loads(fh.read())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable store document: {exc}") from None


def plan_documents(store_path) -> list[tuple[int, dict]]:
    """``(seq, document)`` of every committed plan document, in order."""
    base = Path(store_path) / PLAN
    try:
        names = sorted(n for n in os.listdir(base) if PLAN_DOC.fullmatch(n))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        doc = _read_json(base / name)
        if doc is not None:
            out.append((int(name[:8]), doc))
    return out


def _doc_ids(doc: dict) -> list[str]:
    ids = doc["ids"]
    return [ids[i : i + 12] for i in range(0, len(ids), 12)]


def planned_tasks(store_path, docs: list[tuple[int, dict]] | None = None) -> dict[str, dict]:
    """Every task of the plan documents: ``{id: {"index", "params"}}``, each from the first
    document holding it, in document order."""
    docs = plan_documents(store_path) if docs is None else docs
    out: dict[str, dict] = {}
    for _, doc in docs:
        for tid, index, params in zip(_doc_ids(doc), doc["index"], doc["params"]):
            if tid not in out:
                out[tid] = {"index": index, "params": params}
    return out


def planned_ids(store_path, docs: list[tuple[int, dict]] | None = None) -> set[str]:
    """The ids of every task of the plan documents."""
    docs = plan_documents(store_path) if docs is None else docs
    return {tid for _, doc in docs for tid in _doc_ids(doc)}


def planned_configs(store_path, docs: list[tuple[int, dict]] | None = None) -> dict[str, dict]:
    """Every planned task's config, ``{id: config}`` (each configs file read once)."""
    docs = plan_documents(store_path) if docs is None else docs
    out: dict[str, dict] = {}
    for _, doc in docs:
        with open(Path(store_path) / PLAN / doc["configs"], "rb") as fh:
            lines = fh.read().splitlines()
        for tid, line in zip(_doc_ids(doc), lines):
            if tid not in out:
                out[tid] = json.loads(line)
    return out


LOOKUP_RECORD = 37  # a lookup file's record: the id (12), its config's start and end offsets (12 hex each), "\n"
_CONFIGS_NAME = re.compile(rb'\{"configs": "([0-9a-f]{16})\.configs\.jsonl"')


def planned_config(store_path, task_id: str) -> dict | None:
    """One planned task's config, reading only its own line of the configs file (found in the plan
    document's lookup file: fixed-width records of id and offsets); None when no plan document holds
    the task. A few milliseconds whatever the size of the plan, for each task's start."""
    base = Path(store_path) / PLAN
    try:
        names = sorted(n for n in os.listdir(base) if PLAN_DOC.fullmatch(n))
    except FileNotFoundError:
        return None
    key = task_id.encode()
    for name in names:
        with open(base / name, "rb") as fh:
            found = _CONFIGS_NAME.match(fh.read(64))  # the document's first key names its files
        if found is None:  # another form of document: read it whole
            return _config_by_document(base, _read_json(base / name), task_id)
        token = found.group(1).decode()
        try:
            with open(base / f"{token}.lookup", "rb") as fh:
                table = fh.read()
        except FileNotFoundError:
            return _config_by_document(base, _read_json(base / name), task_id)
        at = -1
        while True:
            at = table.find(key, at + 1)
            if at < 0 or at % LOOKUP_RECORD == 0:
                break
        if at < 0:
            continue
        start, end = int(table[at + 12 : at + 24], 16), int(table[at + 24 : at + 36], 16)
        with open(base / f"{token}.configs.jsonl", "rb") as fh:
            fh.seek(start)
            return json.loads(fh.read(end - start))
    return None


def _config_by_document(base: Path, doc: dict | None, task_id: str) -> dict | None:
    if doc is None:
        return None
    ids = _doc_ids(doc)
    if task_id not in ids:
        return None
    k = ids.index(task_id)
    with open(base / doc["configs"], "rb") as fh:
        fh.seek(doc["offsets"][k])
        return json.loads(fh.read(doc["offsets"][k + 1] - doc["offsets"][k]))


def add_planned(store_path, tasks: list[dict]) -> list[str]:
    """Add ``tasks`` (``{"id", "index", "params", "config"}`` each; or, for ``config``, ``config_json``: its
    JSON, compact) as one plan document; returns the ids this call added (not those an earlier document
    holds, another driver's)."""
    if not tasks:
        return []
    base = Path(store_path) / PLAN
    base.mkdir(exist_ok=True)
    lines, offsets = [], [0]
    for t in tasks:
        text = t["config_json"] if "config_json" in t else json.dumps(t["config"], separators=(",", ":"))
        line = text.encode() + b"\n"
        lines.append(line)
        offsets.append(offsets[-1] + len(line))
    token = uuid.uuid4().hex[:16]
    configs = f"{token}.configs.jsonl"
    write_whole(base / configs, b"".join(lines))
    lookup = "".join(f"{t['id']}{offsets[k]:012x}{offsets[k + 1]:012x}\n" for k, t in enumerate(tasks))
    write_whole(base / f"{token}.lookup", lookup.encode())
    # "configs" first: a task finds its files from the document's first bytes (planned_config)
    doc = json.dumps({"configs": configs, "ids": "".join(t["id"] for t in tasks), "index": [t["index"] for t in tasks],
                      "params": [t["params"] for t in tasks], "offsets": offsets,
                      "created": now(), "host": socket.gethostname()}).encode()
    docs = plan_documents(store_path)
    seq = docs[-1][0] + 1 if docs else 0
    while not write_whole(base / f"{seq:08d}.json", doc, exclusive=True):
        seq += 1
    earlier = planned_tasks(store_path, [(s, d) for s, d in plan_documents(store_path) if s < seq])
    return [t["id"] for t in tasks if t["id"] not in earlier]


def add_submission(store_path, task_ids: list[str], backend: str, jobs: dict[str, dict]) -> None:
    """Record one submission of ``task_ids`` (``jobs``: each task's job ids) as one document."""
    base = Path(store_path) / SUBMISSIONS
    base.mkdir(exist_ok=True)
    t = now()
    doc = {"backend": backend, "time": t, "tasks": list(task_ids),
           "jobs": {tid: jobs[tid] for tid in task_ids if tid in jobs}}
    write_whole(base / f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.json", json.dumps(doc).encode())


def submissions(store_path) -> dict[str, dict]:
    """Each submitted task's scheduler record, folded from the submission documents in time order:
    ``{"backend", "submissions": [...], **the last job ids}``, the form format 1 stored per task."""
    base = Path(store_path) / SUBMISSIONS
    try:
        names = sorted(n for n in os.listdir(base) if SUBMISSION_DOC.fullmatch(n))
    except FileNotFoundError:
        return {}
    out: dict[str, dict] = {}
    for name in names:
        doc = _read_json(base / name)
        if doc is None:
            continue
        fold_submission(out, doc)
    return out


def fold_submission(records: dict[str, dict], doc: dict) -> None:
    backend, jobs = doc["backend"], doc.get("jobs", {})
    for tid in doc["tasks"]:
        old = records.get(tid, {})
        job = jobs.get(tid, {})
        subs = list(old.get("submissions", []))
        subs.append({"backend": backend, "time": doc["time"], **job})
        records[tid] = {**old, "backend": backend, "submissions": subs, **job}


def started_dirs(store_path) -> list[str]:
    """The task directories under ``tasks/``: the tasks that started (and, in a format 1 store, all)."""
    try:
        return sorted(e.name for e in os.scandir(Path(store_path) / TASKS)
                      if TASK_ID.fullmatch(e.name) and e.is_dir())
    except FileNotFoundError:
        return []


def legacy_tasks(store_path, dirs: list[str]) -> dict[str, dict]:
    """The format 1 task groups among ``dirs``: ``{id: attrs}`` (config, params, index)."""
    out = {}
    for tid in dirs:
        doc = _read_json(Path(store_path) / TASKS / tid / "zarr.json")
        if doc is not None:
            out[tid] = doc.get("attributes", {})
    return out


def task_ids(store_path) -> list[str]:
    """Every task id of the store, sorted: planned ones and format 1 groups."""
    planned = planned_ids(store_path)
    extra = [d for d in started_dirs(store_path) if d not in planned]
    return sorted([*planned, *legacy_tasks(store_path, extra)])


def group_document(attrs: dict) -> bytes:
    """A Zarr v3 group's ``zarr.json`` holding ``attrs``."""
    return json.dumps({"attributes": attrs, "zarr_format": 3, "node_type": "group"}, indent=2).encode()
