"""A 100,000-task sweep on the live SLURM with the queue's limit set low (MaxSubmitJobs 4, enforced by
accounting): it plans, shows its dry run without writing anything, submits as many packed elements as the
limit takes and says so, its own elements submit the next chunk, `cancel` stops it (no element submits
more after it), and `status` and `resume --dry-run` account for every one of the 100,000 tasks. How long
each of these takes at this size is measured in benchmarks/bench_scale.py, not here."""
import json
import subprocess

from test_slurm import cli, wait_until, write

N = 100_000
PACK = 25
LIMIT = 4
SPEC = f"""
name: scale
dataset: {{n_train: 64, n_test: 32}}
model: {{n_hidden: 4}}
training: {{iterations: 1, batch_size: 32}}
resources: {{time: "00:05:00", memory: 200M, pack: {PACK}}}
sweep: {{seeds: {N}}}
"""


def queued():
    r = subprocess.run(["squeue", "-h", "-r", "-n", "snnbatch-scale", "-o", "%i"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def status(store):
    r = cli("status", str(store), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_100000_task_sweep_is_submitted_within_the_queue_limit_cancelled_and_accounted_for(cluster, tmp_path):
    cluster.start(accounting="on", max_submit_jobs=LIMIT)
    spec = write(tmp_path, "scale", SPEC)
    store = tmp_path / "scale"

    r = cli("plan", str(spec), "--json")
    assert r.returncode == 0, r.stderr
    ids = [t["id"] for t in json.loads(r.stdout)["tasks"]]
    assert len(ids) == len(set(ids)) == N

    r = cli("submit", str(spec), "--store", str(store), "--backend", "slurm", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"array(s) for {N} tasks" in r.stdout, r.stdout
    assert f"packed: {PACK} tasks per element ({N // PACK} elements)" in r.stdout, r.stdout
    assert f"{LIMIT} element(s) now, the rest submitted by the last element of each chunk" in r.stdout, r.stdout
    assert not store.exists() and queued() == []  # a dry run writes and submits nothing

    r = cli("submit", str(spec), "--store", str(store), "--backend", "slurm")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"submitted {LIMIT * PACK} of {N} tasks, as many as the queue takes now" in r.stdout, r.stdout
    assert len(queued()) <= LIMIT

    # the first chunk's last element to end submits the next one: the sweep goes on by itself
    chain = store / "slurm" / "chain"
    wait_until(lambda: len(list(chain.glob("*.submitted.json"))) >= 1, 600, 1, "the second chunk's submission")
    assert all("error" not in json.loads(p.read_text()) for p in chain.glob("*.submitted.json"))

    r = cli("cancel", str(store))
    assert r.returncode == 0, r.stdout + r.stderr
    wait_until(lambda: queued() == [], 300, 1, "the cancelled elements to leave the queue")
    submitted = sorted(p.name for p in chain.glob("*.submitted.json"))
    # an element that ended with the cancel submitted nothing more: the queue stays empty, and a later
    # look at the chain finds the same submissions
    d = status(store)
    assert queued() == [] and sorted(p.name for p in chain.glob("*.submitted.json")) == submitted

    summary = d["summary"]
    assert len(d["tasks"]) == N and sum(summary.values()) == N, summary
    assert summary.get("failed", 0) == 0, summary
    done = summary["done"]
    assert LIMIT * PACK <= done < N, summary  # the first chunk ended, most of the sweep never ran

    # resume would run every task that is not done, in arrays within the limit again
    r = cli("resume", str(store), "--backend", "slurm", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"array(s) for {N - done} tasks" in r.stdout, r.stdout
    assert queued() == []
