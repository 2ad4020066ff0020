"""Record the behaviour that tests/test_behaviour_kept.py holds the code to.

    python tests/golden/record_behaviour.py OUT.json [--package-root DIR]

It records, with whichever ``snnbatch`` it imports:

* ``plans``: for every spec in the package's ``examples/*.yaml`` and for the
  inline specs below, the spec text and the ordered task ids and ``params``
  that ``planner.plan(spec.parse(text))`` gives;
* ``bits``: for small configs of every (model, learning rule) pair, in both
  dtypes, the sha256 of every checkpoint array and metric history of each
  task run inline with ``run_task``, and the final metrics of its status.
  Each case is run twice, in two stores, and must give the same bits both
  times, so only reproducible values are recorded.

Entries whose ids or bits a commit changes on purpose are recorded again, alone, with
``--rerecord NAME ... --why TEXT``: each keeps what it held before (``rerecorded.before``)
and says why it changed. A bits case re-recorded that way also gets ``legacy_text``, its spec
with ``recurrent_weight_scale: null`` (how a stored config of such a task from before the
change reads), which must still give the bits held before::

    .venv/bin/python tests/golden/record_behaviour.py tests/golden/behaviour.json \\
        --rerecord lif-bptt-recurrent-float64 ... --why "..."

To record the behaviour of one commit without the changes in a working tree,
run it from a clean worktree of that commit, named ``snnbatch`` so that it
imports as the package::

    git worktree add /tmp/base/snnbatch HEAD
    PYTHONPATH=/tmp/base .venv/bin/python tests/golden/record_behaviour.py \\
        tests/golden/behaviour.json --package-root /tmp/base
    git worktree remove --force /tmp/base/snnbatch

``--package-root`` makes the script refuse to run unless every ``snnbatch``
module comes from under that directory (an editable install can otherwise
win over ``PYTHONPATH``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FORMAT = 1

# ------------------------------------------------------------------ specs that are only planned

PLAN_SPECS = {
    "defaults": "name: defaults\n",
    "lif-bptt-grid-seeds": """\
name: lif-grid
model: {type: lif, n_hidden: 64, recurrent: true}
dataset: {n_inputs: 50, n_classes: 5, n_train: 500, n_test: 100}
learning: {rule: bptt, surrogate_scale: 50.0}
training: {iterations: 100, batch_size: 64, lr: 2.0e-3}
sweep:
  grid:
    lr: [1.0e-3, 3.0e-3]
    model.n_hidden: [32, 64, 128]
    detach_reset: [true, false]
  seeds: 3
""",
    "alif-eprop-zip-seed-list": """\
name: alif-zip
seed: 4
model: {type: alif, n_hidden: 48, tau_adapt: 0.05}
learning: {rule: eprop}
training: {epochs: 5, batch_size: 128}
sweep:
  zip:
    tau_mem: [0.01, 0.02, 0.04]
    model.tau_syn: [0.005, 0.01, 0.02]
    adapt_jump: [0.0, 0.2, 1.0]
  seeds: [5, 9, 0]
""",
    "lif-eprop-random": """\
name: lif-eprop-random
model: {type: lif, dtype: float64}
learning: {rule: eprop}
sweep:
  random:
    samples: 5
    seed: 7
    params:
      weight_scale: {loguniform: [3.0, 10.0]}
      batch_size: {choice: [64, 128, 256]}
      training.lr: {uniform: [1.0e-4, 1.0e-2]}
      n_hidden: {randint: [16, 64]}
""",
    "dendritic-adjoint-random-seeds": """\
name: dendritic-random
model: {type: dendritic, n_neurons: 8, n_inputs: 5, duration: 50.0}
learning: {rule: adjoint}
dataset: {type: teacher, seed: 3}
training: {iterations: 20, lr: 3.0e-5}
sweep:
  random:
    samples: 3
    seed: 11
    params:
      lr: {loguniform: [1.0e-6, 1.0e-4]}
      init_noise: {uniform: [0.0, 0.1]}
      train_sigma: {choice: [true, false]}
  seeds: 2
""",
    "force-rls-grid-zip": """\
name: force-grid-zip
model: {type: force, n_neurons: 100, n_static: 30, n_plastic: 10, duration: 200.0}
learning: {rule: rls}
dataset: {type: sinusoids, freq: 2.0}
training: {iterations: 4}
sweep:
  grid:
    packed: [true, false]
    model.dtype: [float32, float64]
  zip:
    lam: [0.1, 1.0]
    learn_every: [50, 100]
""",
    "everything-at-once": """\
name: everything
description: grid x zip x random x seeds on one ALIF network trained by BPTT.
seed: 2
model: {type: alif, n_hidden: 32}
dataset: {type: randman, n_inputs: 20, n_classes: 3, n_train: 96, n_test: 30, dim: 2, n_steps: 30}
learning: {surrogate_scale: 80.0}
training: {iterations: 10, batch_size: 32}
checkpoint: {every_iterations: 5}
resources: {cpus: 2, memory: 1G, time: "00:05:00"}
sweep:
  grid:
    training.optimizer: [adam, sgd]
    recurrent: [false, true]
  zip:
    dataset.alpha: [1.0, 3.0]
    n_freqs: [8, 16]
  random:
    samples: 2
    seed: 1
    params:
      tau_adapt: {uniform: [0.02, 0.2]}
      beta1: {choice: [0.8, 0.9]}
  seeds: 2
""",
    "length-from-the-sweep": """\
name: length-swept
model: {n_hidden: 16}
sweep:
  grid:
    iterations: [10, 20]
""",
    "duplicates-kept-once": """\
name: duplicates
model: {type: lif}
sweep:
  grid:
    n_hidden: [128, 64, 128]
    lr: [2.0e-3, 0.002, 1]
  seeds: [1, 0]
""",
}

# ------------------------------------------------------------------ specs that are run

SMALL = "dataset: {n_inputs: 30, n_classes: 3, n_train: 96, n_test: 60, n_steps: 40}\n"
RUN = "training: {iterations: %d, batch_size: 32, lr: 2.0e-3}\ncheckpoint: {every_iterations: %d}\n"
BITS_MODELS = {
    "lif-bptt-feedforward": ("model: {type: lif, n_hidden: 24, recurrent: false, dtype: %s}\n" + SMALL, 12),
    "lif-bptt-recurrent": ("model: {type: lif, n_hidden: 24, recurrent: true, dtype: %s}\n" + SMALL, 12),
    "alif-bptt-feedforward": ("model: {type: alif, n_hidden: 24, recurrent: false, dtype: %s}\n" + SMALL, 12),
    "alif-bptt-recurrent": ("model: {type: alif, n_hidden: 24, recurrent: true, dtype: %s}\n" + SMALL, 12),
    "lif-eprop-feedforward": ("model: {type: lif, n_hidden: 24, dtype: %s}\nlearning: {rule: eprop}\n" + SMALL, 12),
    "lif-eprop-recurrent": ("model: {type: lif, n_hidden: 24, recurrent: true, dtype: %s}\n"
                            "learning: {rule: eprop}\n" + SMALL, 12),
    "alif-eprop": ("model: {type: alif, n_hidden: 24, dtype: %s}\nlearning: {rule: eprop}\n" + SMALL, 12),
    "dendritic-adjoint": ("model: {type: dendritic, n_neurons: 6, n_inputs: 4, duration: 50.0, dtype: %s}\n"
                          "learning: {rule: adjoint}\n", 12),
    "force-rls-packed": ("model: {type: force, n_neurons: 120, n_static: 40, n_plastic: 20, duration: 300.0, "
                         "packed: true, dtype: %s}\nlearning: {rule: rls}\n", 6),
    "force-rls-full": ("model: {type: force, n_neurons: 120, n_static: 40, n_plastic: 20, duration: 300.0, "
                       "packed: false, dtype: %s}\nlearning: {rule: rls}\n", 6),
}
DTYPES = ("float32", "float64")


def expected_to_change(name: str) -> bool:
    """A planned fix of the e-prop kernel changes its float32 results on purpose."""
    return "-eprop" in name and name.endswith("-float32")


def bits_specs() -> dict[str, str]:
    out = {}
    for model, (body, iterations) in BITS_MODELS.items():
        for dtype in DTYPES:
            name = f"{model}-{dtype}"
            out[name] = f"name: {name}\n" + body % dtype + RUN % (iterations, max(1, iterations // 2))
    return out


# ------------------------------------------------------------------ recording


def sha256(array) -> dict:
    import numpy as np

    a = np.ascontiguousarray(array)
    return {"sha256": hashlib.sha256(a.tobytes()).hexdigest(), "dtype": str(a.dtype), "shape": list(a.shape)}


def plan_record(text: str) -> list[dict]:
    from snnbatch.orchestrator import planner, spec as spec_mod

    tasks = planner.plan(spec_mod.parse(text))
    return [{"id": t.id, "params": t.params} for t in tasks]


def run_record(text: str, store: Path) -> dict:
    from snnbatch import open_run
    from snnbatch.jobs.runner import run_task
    from snnbatch.orchestrator import planner, spec as spec_mod
    from snnbatch.orchestrator.store import RunStore

    spec = spec_mod.parse(text)
    tasks = planner.plan(spec)
    rs, _ = RunStore.create_or_update(store, spec, text, tasks)
    out = {}
    for t in tasks:
        outcome = run_task(rs.path, t.id)
        if outcome.state != "done":
            raise RuntimeError(f"task {t.id} ended {outcome.state}: {outcome.error}")
        res = open_run(rs.path).task(t.id)
        final = {k: float(v) for k, v in res.status.items()
                 if k.startswith("test_") or k in ("correlation", "rate_hz", "loss", "accuracy")}
        out[t.id] = {
            "checkpoint": {k: sha256(v) for k, v in sorted(res.checkpoint.items())},
            "metrics": {k: sha256(v) for k, v in sorted(res.metrics.items())},
            "final": dict(sorted(final.items())),
        }
    return out


def write_shd(path: Path, n: int, seed: int) -> None:
    """A small file in the published SHD layout (as tests/jobs/test_shd.py writes them)."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        spikes = f.create_group("spikes")
        t = spikes.create_dataset("times", (n,), dtype=h5py.vlen_dtype(np.dtype("float32")))
        u = spikes.create_dataset("units", (n,), dtype=h5py.vlen_dtype(np.dtype("uint16")))
        for i in range(n):
            t[i] = np.sort(rng.uniform(0.0, 1.0, 30)).astype(np.float32)
            u[i] = rng.integers(0, 700, 30).astype(np.uint16)
        f.create_dataset("labels", data=rng.integers(0, 20, n).astype(np.uint16))


def plan_shd_example(text: str) -> tuple[list[dict] | None, str]:
    """Plan examples/shd.yaml with generated files at its relative paths, in two directories.

    Returns the plan and "" when the ids do not depend on where the files are, else None and why.
    """
    plans = []
    cwd = os.getcwd()
    try:
        for _ in range(2):
            with tempfile.TemporaryDirectory() as d:
                (Path(d) / "data").mkdir()
                write_shd(Path(d) / "data" / "shd_train.h5", 8, 0)
                write_shd(Path(d) / "data" / "shd_test.h5", 4, 1)
                os.chdir(d)
                plans.append(plan_record(text))
                os.chdir(cwd)
    finally:
        os.chdir(cwd)
    if [t["id"] for t in plans[0]] != [t["id"] for t in plans[1]]:
        return None, ("the task ids depend on the absolute paths of the data files "
                      "(dataset.train_path / test_path are stored absolute and hashed into the id)")
    return plans[0], ""


def check_package_root(root: str | None) -> str:
    import snnbatch

    where = str(Path(snnbatch.__file__).resolve().parent)
    if root is not None:
        prefix = str(Path(root).resolve()) + os.sep
        loaded = {name: getattr(m, "__file__", None) for name, m in sys.modules.items()
                  if name == "snnbatch" or name.startswith("snnbatch.")}
        stray = {n: f for n, f in loaded.items() if f is not None and not str(Path(f).resolve()).startswith(prefix)}
        if not where.startswith(prefix) or stray:
            sys.exit(f"snnbatch was imported from {where} (and {sorted(stray)} elsewhere), not from under {root}")
    return where


def source_commit(package_dir: str) -> dict:
    def git(*args):
        r = subprocess.run(["git", "-C", package_dir, *args], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else None

    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "HEAD"), "clean": status == "" if status is not None else None}


def legacy_text(text: str) -> str:
    """A recurrent spec as a stored config from before ``recurrent_weight_scale`` had a default of its own reads."""
    if "recurrent: true" not in text:
        raise ValueError("only the specs of recurrent networks are re-recorded with a legacy text")
    return text.replace("recurrent: true", "recurrent: true, recurrent_weight_scale: null")


def rerecord(out: Path, names: list[str], why: str, package_dir: str) -> int:
    """Record the entries ``names`` of ``out`` again, each keeping what it held before and why it changed."""
    record = json.loads(out.read_text(encoding="utf-8"))
    source = source_commit(package_dir)
    for name in names:
        if name in record["plans"]:
            entry = record["plans"][name]
            before = entry.pop("rerecorded", {}).get("before", {"tasks": entry["tasks"]})
            entry["tasks"] = plan_record(entry["text"])
            entry["rerecorded"] = {"why": why, "from": source, "before": before}
        elif name in record["bits"]:
            entry = record["bits"][name]
            before = entry.pop("rerecorded", {}).get("before", {"tasks": entry["tasks"]})
            with tempfile.TemporaryDirectory() as d:
                first = run_record(entry["text"], Path(d) / "a")
                if first != run_record(entry["text"], Path(d) / "b"):
                    raise RuntimeError(f"{name}: two runs of the same spec gave different results")
            entry["tasks"] = first
            entry["rerecorded"] = {"why": why, "from": source, "before": before,
                                   "legacy_text": legacy_text(entry["text"])}
        else:
            sys.exit(f"{out}: no entry {name!r}")
        print(f"{name}: recorded again", file=sys.stderr)
    out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--package-root", help="refuse to run unless snnbatch is imported from under this directory")
    ap.add_argument("--rerecord", nargs="+", metavar="NAME", help="record only these entries again, in OUT")
    ap.add_argument("--why", help="with --rerecord: why their ids or bits changed (required)")
    args = ap.parse_args(argv)
    if args.rerecord:
        if not args.why:
            ap.error("--rerecord needs --why")
        return rerecord(Path(args.out), args.rerecord, args.why, check_package_root(args.package_root))

    import numba
    import numpy as np

    import snnbatch

    package_dir = check_package_root(args.package_root)
    print(f"snnbatch from {package_dir}", file=sys.stderr)

    plans, skipped = {}, {}
    for path in sorted((Path(package_dir) / "examples").glob("*.yaml")):
        name = f"examples/{path.name}"
        text = path.read_text(encoding="utf-8")
        if "type: shd" in text:
            tasks, why = plan_shd_example(text)
            if tasks is None:
                skipped[name] = why
                continue
        else:
            tasks = plan_record(text)
        plans[name] = {"text": text, "tasks": tasks}
    for name, text in PLAN_SPECS.items():
        plans[name] = {"text": text, "tasks": plan_record(text)}

    bits = {}
    with tempfile.TemporaryDirectory() as d:
        for name, text in bits_specs().items():
            t0 = time.perf_counter()
            first = run_record(text, Path(d) / f"{name}-a")
            again = run_record(text, Path(d) / f"{name}-b")
            if first != again:
                raise RuntimeError(f"{name}: two runs of the same spec gave different results")
            bits[name] = {"text": text, "expected_to_change": expected_to_change(name), "tasks": first}
            print(f"{name}: {len(first)} task(s), {time.perf_counter() - t0:.1f} s for both runs", file=sys.stderr)

    record = {
        "format": FORMAT,
        "recorded_from": {
            **source_commit(package_dir),
            "snnbatch": snnbatch.__version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "machine": platform.machine(),
        },
        "plans": plans,
        "skipped_plans": skipped,
        "bits": bits,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(plans)} plans, {len(bits)} bits cases", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
