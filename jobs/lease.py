"""Who runs a task now: the lease file ``tasks/<id>/lease`` of the run store.

Only the holder of a task's lease runs the task. The lease is created with an
exclusive hard link (atomic, also on NFS) and holds the holder's host, pid and
a heartbeat time its owner refreshes every ``LEASE_HEARTBEAT_SECONDS`` by
rewriting its own file in place. A lease is *stale*, and may be taken over,
when its holder is on this host (same pid namespace) and its process is gone,
or when its heartbeat is older than ``LEASE_STALE_SECONDS``. Taking over moves
the stale file aside and checks that the file moved is the one judged stale,
so two takers never both win; a holder whose file was taken over sees it at
its next heartbeat (:meth:`Lease.held` is false) and stops without writing.

The file is plain JSON, apart from the task's Zarr groups, so that reading who
holds a task never touches its checkpoints.
"""
from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path

LEASE = "lease"
LEASE_HEARTBEAT_SECONDS = 10.0
LEASE_STALE_SECONDS = 120.0


class Lease:
    """This process's hold on one task. Refresh it at least every ``LEASE_HEARTBEAT_SECONDS``."""

    SIZE = 1024  # the file is rewritten in place at this fixed size, padded with spaces

    def __init__(self, path: Path, fd: int, info: dict):
        self.path = path
        self.fd = fd
        self.info = info
        self._ino = os.fstat(fd).st_ino

    def _write(self) -> None:
        data = json.dumps(self.info).encode()
        os.pwrite(self.fd, data.ljust(self.SIZE), 0)
        if len(data) > self.SIZE:
            os.ftruncate(self.fd, len(data))

    def held(self) -> bool:
        """Whether the lease file is still this one (it may have been taken over as stale)."""
        try:
            return os.stat(self.path).st_ino == self._ino
        except OSError:
            return False

    def refresh(self) -> bool:
        """Write a new heartbeat into this lease's own file; False when the lease was lost."""
        if self.fd < 0 or not self.held():
            return False
        self.info["heartbeat"] = time.time()
        self._write()
        return True

    def release(self) -> None:
        if self.fd >= 0 and self.held():
            _unlink(self.path)
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def acquire(path: Path, wait: float | None = None) -> tuple[Lease | None, dict | None]:
    """Take the lease at ``path``: ``(lease, None)``, or ``(None, holder)`` when a live holder has it.

    ``wait``: seconds to wait for a holder on another host that missed heartbeats to
    become stale; ``None`` waits up to ``LEASE_STALE_SECONDS`` for such a holder and not
    at all for one whose heartbeat is recent. A file system that refuses the writes
    raises its ``OSError``; nothing of this attempt is left behind.
    """
    path = Path(path)
    token = uuid.uuid4().hex
    info = _lease_info(token)
    tmp = path.with_name(f"{LEASE}.{token}.new")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    lease = Lease(path, fd, info)
    holder = None
    try:
        lease._write()
        limit = time.monotonic() + (LEASE_STALE_SECONDS if wait is None else wait)
        for _ in range(10_000):
            try:
                os.link(tmp, path)
                os.unlink(tmp)
                _remove_old_lease_files(path.parent, token)
                return lease, None
            except FileExistsError:
                pass
            holder, ino = read_lease(path)
            if holder is None:
                continue  # released meanwhile: try again
            if lease_alive(holder):
                age = time.time() - float(holder.get("heartbeat", 0))
                missing = holder.get("where") != info["where"] and age > 3 * LEASE_HEARTBEAT_SECONDS
                if missing and time.monotonic() < limit:
                    time.sleep(min(1.0, max(0.05, limit - time.monotonic())))
                    continue
                break
            _take_aside(path, holder, ino, token)
    except BaseException:
        lease.close()
        _unlink(tmp)
        raise
    lease.close()
    _unlink(tmp)
    return None, holder


def live_holder(path: Path) -> dict | None:
    """The live holder of the lease at ``path``, or None."""
    info, _ = read_lease(path)
    return info if info is not None and lease_alive(info) else None


def read_lease(path) -> tuple[dict | None, int | None]:
    """A lease file's content and inode; ``(None, None)`` if there is none.

    An unreadable file (torn by a concurrent rewrite, or damaged) is read again a few
    times, then described by its modification time alone.
    """
    for attempt in range(5):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None, None
        try:
            st = os.fstat(fd)
            data = os.read(fd, 65536)
        finally:
            os.close(fd)
        try:
            info = json.loads(data)
            if isinstance(info, dict) and "token" in info:
                return info, st.st_ino
        except ValueError:
            pass
        time.sleep(0.01 * (attempt + 1))
    return {"token": None, "where": None, "heartbeat": st.st_mtime, "unreadable": True}, st.st_ino


def lease_alive(info: dict, at: float | None = None) -> bool:
    """Whether the holder described by ``info`` may still be running (see the module docstring)."""
    at = time.time() if at is None else at
    if info.get("where") == f"{socket.gethostname()} {_pid_namespace()}" and info.get("pid"):
        pid = int(info["pid"])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        started, found = info.get("start"), _process_start(pid)
        return found != "zombie" and (started is None or found in (None, started))
    return at - float(info.get("heartbeat") or 0) <= LEASE_STALE_SECONDS


def describe_holder(info: dict | None) -> str:
    if not info:
        return "unknown holder"
    if info.get("unreadable"):
        return "a holder whose lease file is unreadable"
    age = time.time() - float(info.get("heartbeat") or 0)
    return f"host {info.get('host')} pid {info.get('pid')}, heartbeat {age:.0f}s ago"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), to tell a reused pid apart;
    ``"zombie"`` for a process that exited but was not reaped yet."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    if fields[0] in (b"Z", b"X"):
        return "zombie"
    return fields[19].decode() if len(fields) > 19 else None


def _lease_info(token: str) -> dict:
    host = socket.gethostname()
    t = time.time()
    return {"host": host, "where": f"{host} {_pid_namespace()}", "pid": os.getpid(),
            "start": _process_start(os.getpid()), "token": token, "acquired": t, "heartbeat": t}


def _take_aside(path: Path, judged: dict, ino: int | None, token: str) -> None:
    """Remove the stale lease ``judged``; if what was moved is a newer lease, put it back."""
    aside = path.with_name(f"{LEASE}.{token}.stale")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    moved, moved_ino = read_lease(aside)
    same = moved is not None and (moved.get("token") == judged.get("token") if judged.get("token")
                                  else moved_ino == ino)
    if not same:
        try:
            os.link(aside, path)
        except FileExistsError:
            pass  # a third process leased it meanwhile; the moved holder sees its loss at its heartbeat
    _unlink(aside)


def _remove_old_lease_files(task_dir: Path, token: str) -> None:
    """Temporary lease files of crashed acquirers (older than a heartbeat period)."""
    for p in task_dir.glob(f"{LEASE}.*"):
        try:
            if token not in p.name and time.time() - p.stat().st_mtime > LEASE_HEARTBEAT_SECONDS:
                p.unlink()
        except OSError:
            pass


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
