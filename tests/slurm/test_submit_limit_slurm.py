"""A sweep larger than the queue's limit (MaxSubmitJobs 4, enforced by accounting) on the live SLURM: the
submit queues as many tasks as the limit takes and says so, and the last element of each array to end
submits the next chunk, until every task is done, with nobody logged in."""
import json

from snnbatch import open_run

from test_slurm import TINY, all_ended, cli, wait_until, write


def test_a_sweep_larger_than_max_submit_jobs_is_submitted_in_chunks_by_its_own_elements(cluster, tmp_path):
    cluster.start(accounting="on", max_submit_jobs=4)
    spec = write(tmp_path, "limited", TINY.format(name="limited", iterations=3, time="00:05:00", seeds=10))
    store = tmp_path / "limited"
    r = cli("submit", str(spec), "--store", str(store), "--backend", "slurm")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "submitted 4 of 10 tasks, as many as the queue takes now (MaxSubmitJobs 4, 0 queued)" in r.stdout, r.stdout
    d = wait_until(lambda: all_ended(store), 600, 2, "10 tasks in chunks of at most 4")
    assert d["summary"]["done"] == 10
    chain = sorted((store / "slurm" / "chain").glob("*.submitted.json"))
    notes = [json.loads(p.read_text()) for p in chain]
    assert notes and all("error" not in n for n in notes), notes
    # each chunk was submitted from inside an element (SLURM_JOB_ID set), never more than the limit at once
    claims = [json.loads(p.read_text()) for p in sorted((store / "slurm" / "chain").glob("*.claim"))]
    assert all(c["by"] for c in claims), claims
    jobs = {t["job_id"].split("_")[0] for t in d["tasks"]}
    assert len(jobs) == 1 + len(notes)
    by_array = {}
    for t in d["tasks"]:
        by_array.setdefault(t["job_id"].split("_")[0], []).append(t["id"])
    assert max(len(v) for v in by_array.values()) <= 4
    for t in open_run(store):
        assert len(t.status["attempts"]) == 1  # no task submitted twice
