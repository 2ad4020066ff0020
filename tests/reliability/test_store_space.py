"""A store that runs out of space or cannot be written: a clear error, nothing lost, resumable.

Out of space is made two ways: a small tmpfs filled up with a file (a real
ENOSPC; needs ``mount``, which works as root here), and a file-size limit
(``RLIMIT_FSIZE`` in the child process, SIGXFSZ ignored: EFBIG; works
anywhere). A read-only store is a tmpfs remounted read-only when we are root
(root ignores permission bits), or ``chmod -R a-w`` otherwise.

In every case the commands that cannot write say so naming the store and
exit with status 5 (the file system failed, not the input) before changing
anything; a task that meets the problem mid-run stops as ``interrupted`` with
the reason, its last good checkpoint untouched; once the store is writable again the task resumes and ends
bit-identical to an uninterrupted run.
"""
from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
from pathlib import Path

import pytest

from snnbatch.jobs.runner import run_task
from snnbatch.orchestrator.store import RunStore

from .conftest import SMALL, StopAfter, assert_same_as, make_store, snnbatch, snnbatch_parallel, spec_text, tree_digest

# n_train 1024: the data order (8 KB) is the largest file, larger than any metadata file.
TEXT = spec_text(SMALL, dataset={"n_train": 1024, "n_test": 128, "n_inputs": 20, "n_steps": 50},
                 training={"iterations": 30, "batch_size": 64}, checkpoint={"every_iterations": 2, "keep": 3})
PAGE = 4096


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


class Space:
    """Where a store lives, and a way to take its space away: ``fill(leave)`` / ``free()``.

    ``preexec`` goes to the subprocesses that must meet the limit (None for a tmpfs,
    which limits everyone).
    """

    def __init__(self, root: Path, kind: str):
        self.root, self.kind = root, kind
        self.limit: int | None = None
        self.filler = root / "filler"

    def fill(self, leave: int) -> None:
        if self.kind == "rlimit":
            self.limit = leave
            return
        with open(self.filler, "ab", buffering=0) as fh:  # grow until the file system is full, give back `leave`
            try:
                while True:
                    fh.write(b"\0" * PAGE)
                    fh.flush()
            except OSError:
                pass
        size = self.filler.stat().st_size
        os.truncate(self.filler, max(0, size - leave))

    def free(self) -> None:
        self.limit = None
        self.filler.unlink(missing_ok=True)

    @property
    def preexec(self):
        if self.limit is None:
            return None
        limit = self.limit

        def apply():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        return apply


@pytest.fixture(params=["tmpfs", "rlimit"])
def space(request, tmp_path):
    root = tmp_path / "space"
    kind = request.param
    mounted = kind == "tmpfs" and _mount_tmpfs(root, "4m")
    if kind == "tmpfs" and not mounted:
        kind = "rlimit"  # no mount here: the file-size limit stands in for the full disk
    root.mkdir(exist_ok=True)
    yield Space(root, kind)
    if mounted:
        _umount(root)


def _digest_without(path: Path, skip: str) -> dict:
    return {k: v for k, v in tree_digest(path).items() if not k.startswith(skip)}


def test_out_of_space_mid_run_then_resume(space, references):
    store, (tid,) = make_store(space.root / "store", TEXT)
    assert run_task(store.path, tid, stop=StopAfter(10)).state == "interrupted"
    ckdir = store.path / "tasks" / tid / "checkpoints"
    newest = ckdir / "00000004"  # the checkpoint at iteration 10
    good = tree_digest(newest)
    # room for the lease and the status, not for a checkpoint
    space.fill(6 * PAGE if space.kind == "tmpfs" else 6000)
    r = snnbatch("run-task", store.path, tid, preexec_fn=space.preexec)
    why = "No space left on device" if space.kind == "tmpfs" else "File too large"
    # a store that cannot be written: one message naming the store, exit 5 (a file system failure)
    assert r.returncode == 5, r.stdout + r.stderr
    assert f"error: {store.path}: cannot write a checkpoint" in r.stderr, r.stderr
    assert why in r.stderr and "Traceback" not in r.stderr
    assert tree_digest(newest) == good
    assert not any("partial" in p.name for p in ckdir.iterdir())
    assert RunStore.open(store.path).tasks()[0]["state"] == "interrupted"

    # completely full: the driver and the task refuse to start, change nothing, exit 5
    space.fill(0)
    before = _digest_without(space.root, "filler")
    for code, out, err in snnbatch_parallel(["resume", store.path, "--backend", "inline", "--no-progress"],
                                            ["run-task", store.path, tid], preexec_fn=space.preexec):
        assert code == 5, out + err
        assert str(store.path) in err and why in err and "Traceback" not in err, err
    assert _digest_without(space.root, "filler") == before

    space.free()
    r = snnbatch("run-task", store.path, tid)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_same_as(store.path, references(TEXT), tid)


@contextlib.contextmanager
def read_only(path: Path):
    """Make the store at ``path`` read-only: remount its tmpfs (root), or remove write permissions."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "-o", "remount,ro", str(path.parent)], check=True)
        try:
            yield "Read-only file system"
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(path.parent)], check=True)
    else:
        subprocess.run(["chmod", "-R", "a-w", str(path)], check=True)
        try:
            yield "Permission denied"
        finally:
            subprocess.run(["chmod", "-R", "u+w", str(path)], check=True)


@pytest.fixture
def ro_root(tmp_path):
    root = tmp_path / "ro"
    mounted = os.geteuid() == 0 and _mount_tmpfs(root, "8m")
    assert mounted or os.geteuid() != 0, "as root, a read-only store needs a tmpfs (mount failed)"
    root.mkdir(exist_ok=True)
    yield root
    if mounted:
        _umount(root)


def test_read_only_store(ro_root, references, tmp_path):
    store, (tid,) = make_store(ro_root / "store", TEXT)
    assert run_task(store.path, tid, stop=StopAfter(10)).state == "interrupted"
    spec = tmp_path / "spec.yaml"
    spec.write_text(TEXT)
    before = tree_digest(store.path)
    new = ro_root / "new" if os.geteuid() == 0 else store.path / "new"
    with read_only(store.path) as why:
        status, *refused, created = snnbatch_parallel(
            ["status", store.path],  # reading still works
            ["resume", store.path, "--backend", "inline", "--no-progress"],
            ["run-task", store.path, tid],
            ["submit", spec, "--store", store.path, "--backend", "inline", "--no-progress"],
            ["submit", spec, "--store", new, "--backend", "inline", "--no-progress"])
        assert status[0] == 0, status
        for code, out, err in refused:
            assert code == 5, out + err
            assert str(store.path) in err and why in err and "Traceback" not in err, err
        code, out, err = created
        assert code == 5 and f"{new}: cannot write the run store: {why}" in err, out + err
    assert tree_digest(store.path) == before
    r = snnbatch("resume", store.path, "--backend", "inline", "--no-progress")
    assert r.returncode == 0, r.stdout + r.stderr
    assert_same_as(store.path, references(TEXT), tid)
