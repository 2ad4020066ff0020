"""Bad stores, bad task ids, bad paths: exit status 2 with a message, never a traceback, nothing changed.

The CLI is run as a real process where exit codes matter, and in-process
(click's CliRunner) for the property-based tests, which try thousands of
task ids and store paths.
"""
from __future__ import annotations

import json
import signal
import string

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from snnbatch import __version__
from snnbatch.jobs.errors import StoreError
from snnbatch.jobs.store import TaskStore
from snnbatch.orchestrator.cli import main

from .conftest import SMALL, make_store, snnbatch_parallel, tree_digest


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    store, (tid,) = make_store(tmp_path_factory.mktemp("bad") / "store", SMALL)
    return store.path, tid


def _set_format(path, meta):
    doc = json.loads((path / "zarr.json").read_text())
    doc["attributes"]["snnbatch"] = meta
    (path / "zarr.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("meta, words", [
    ({"format": 3, "version": "9.1.0"},
     ["store format 3", "snnbatch 9.1.0", f"this snnbatch {__version__} reads format 1 and 2", "upgrade snnbatch"]),
    ({"format": 0, "version": "0.0.3"}, ["store format 0", "snnbatch 0.0.3", "reads format 1 and 2",
                                         "the snnbatch version that wrote it"]),
    (None, ["not one written by snnbatch"]),
])
def test_store_of_another_format_is_refused_and_left_alone(tmp_path, meta, words):
    store, (tid,) = make_store(tmp_path / "store", SMALL)
    _set_format(store.path, meta)
    before = tree_digest(store.path)
    for args in (["status", store.path], ["status", store.path, "--json"], ["run-task", store.path, tid],
                 ["resume", store.path, "--backend", "inline", "--no-progress"]):
        r = _invoke([str(a) for a in args])
        _exit_2_no_traceback(r)
        assert str(store.path) in r.output
        for w in words:
            assert w in " ".join(r.output.split()), (w, r.output)  # the console may wrap lines
    (code, out, err), = snnbatch_parallel(["resume", store.path, "--backend", "inline", "--no-progress"])
    assert code == 2 and words[0] in " ".join(err.split()), err  # and as a real process
    assert tree_digest(store.path) == before


@pytest.mark.parametrize("task_id", ["../../etc", "../..", "..", "/etc/passwd", "ABCDEF012345", "abcdef01234",
                                     "abcdef0123456", "abcdef01234g", "tasks/../abc", "", " abcdef012345",
                                     "abcdef012345\n", "abcdef012345/.."])
def test_task_ids_that_are_not_ids_are_refused(store, task_id):
    path, _ = store
    with pytest.raises(StoreError, match="is not a task id"):
        TaskStore(path, task_id)
    r = _invoke(["run-task", "--", str(path), task_id])
    # a prefix of an id (here of none) is looked up, as git looks up a commit's
    expected = f"no task {task_id!r} in this store" if task_id == "abcdef01234" else "is not a task id"
    assert r.exit_code == 2 and expected in r.output, r.output


def test_path_escape_via_the_command_line(store):
    path, _ = store
    before = tree_digest(path.parent)
    (code, out, err), = snnbatch_parallel(["run-task", path, "../../../../etc"])
    assert code == 2 and "'../../../../etc' is not a task id" in err and "Traceback" not in err, err
    assert tree_digest(path.parent) == before


def _invoke(args):
    """The CLI in this process, restoring the signal handlers that run-task installs."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)}
    try:
        return CliRunner().invoke(main, args)
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


def _exit_2_no_traceback(result):
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


PROPERTY = settings(max_examples=100, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROPERTY
@given(task_id=st.one_of(st.text(), st.text(alphabet=string.hexdigits + "./-", min_size=10, max_size=14)))
def test_any_task_id_string_exits_2(store, task_id):
    path, real = store
    if task_id == real:
        return
    before = tree_digest(path.parent)
    _exit_2_no_traceback(_invoke(["run-task", "--", str(path), task_id]))
    assert tree_digest(path.parent) == before


# What a command line can carry: no NUL byte, and only the surrogates that undecodable bytes become.
ARGV_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=20)
segments = st.one_of(st.sampled_from(["..", ".", "store", "tasks", "zarr.json", "", "x" * 300, "\udcff", "\udc80x",
                                      "~", "-", "--help"]), ARGV_TEXT)


@PROPERTY
@given(parts=st.lists(segments, min_size=1, max_size=5), command=st.sampled_from(["status", "resume", "run-task"]))
def test_any_store_path_exits_2(store, tmp_path, parts, command):
    """A store path made of anything (relative to a directory next to a real store) is refused cleanly."""
    path, tid = store
    where = path.parent / "/".join(parts)
    if where.resolve() == path.resolve():
        return  # the real store
    args = {"status": ["status", "--", str(where)],
            "resume": ["resume", "--backend", "inline", "--no-progress", "--", str(where)],
            "run-task": ["run-task", "--", str(where), tid]}[command]
    before = tree_digest(path.parent)
    _exit_2_no_traceback(_invoke(args))
    assert tree_digest(path.parent) == before
