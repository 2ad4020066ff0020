"""Task ids as git takes commits: any unique prefix, in every command and in the Python API; an
ambiguous prefix names its candidates, an unknown one says so (exit status 2, no traceback)."""
from __future__ import annotations

from collections import Counter

import pytest

import snnbatch
from snnbatch.jobs.errors import StoreError
from snnbatch.jobs.store import resolve_task_id

from conftest import TINY

SEEDS = TINY + "sweep: {seeds: 40}\n"  # 40 ids of 12 hex digits: some share their first digit


def _prefixes(ids):
    """A first digit that several ids share (with them), and an 8-digit prefix of one id."""
    shared, _ = Counter(i[0] for i in ids).most_common(1)[0]
    return shared, sorted(i for i in ids if i[0] == shared), ids[0][:8]


def test_a_unique_prefix_names_its_task_and_an_ambiguous_one_names_the_candidates(planned_store):
    store, tasks, _, _ = planned_store(SEEDS)
    ids = [t.id for t in tasks]
    shared, candidates, short = _prefixes(ids)
    assert len(candidates) >= 2
    assert resolve_task_id(store.path, short) == ids[0]
    assert resolve_task_id(store.path, ids[5]) == ids[5]
    with pytest.raises(StoreError) as info:
        resolve_task_id(store.path, shared)
    message = str(info.value)
    assert f"task id {shared!r} is ambiguous: {len(candidates)} tasks start with it" in message
    assert all(c in message for c in candidates[:10])
    missing = next(f"{d}" * 6 for d in "0123456789abcdef" if not any(i.startswith(d * 6) for i in ids))
    with pytest.raises(StoreError, match=rf"no task '{missing}' in this store \(40 tasks; 'snnbatch status "):
        resolve_task_id(store.path, missing)
    for bad in ("", "xyz", "3fa2c1d09b7e0", "../x", "ABCDEF", " abc", "abc\n"):
        with pytest.raises(StoreError, match="is not a task id: expected lowercase hex digits"):
            resolve_task_id(store.path, bad)


def test_run_task_takes_a_prefix_and_refuses_an_ambiguous_one(planned_store, cli):
    store, tasks, _, _ = planned_store(SEEDS)
    ids = [t.id for t in tasks]
    shared, candidates, short = _prefixes(ids)
    result = cli("run-task", store.path, short)
    assert result.exit_code == 0, result.output
    assert f"{ids[0]}: done at iteration 2" in result.output
    run = snnbatch.open_run(store.path)
    assert run.task(short).state == "done" and run.task(ids[0]).id == ids[0]

    result = cli("run-task", store.path, shared)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert f"task id {shared!r} is ambiguous" in result.stderr and candidates[1] in result.stderr
    assert all(snnbatch.open_run(store.path).task(c).state == "pending" for c in candidates if c != ids[0])
    with pytest.raises(StoreError, match="is ambiguous"):
        run.task(shared)


def test_cancel_takes_prefixes_and_refuses_an_unknown_id(planned_store, cli):
    store, tasks, _, _ = planned_store(SEEDS)
    result = cli("cancel", store.path, "--task", tasks[3].id[:7])
    assert result.exit_code == 0, result.output
    assert "no cluster jobs to cancel" in result.output
    result = cli("cancel", store.path, "--task", tasks[3].id[:7], "--task", "zz")
    assert result.exit_code == 2 and "'zz' is not a task id" in result.stderr, result.output
    assert "Traceback" not in result.output
