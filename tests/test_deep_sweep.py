"""A sweep over the number of hidden layers, ``n_hidden: [[32, 32], 64]``, end to end: planned, run by the
inline and by the local Dask backend (the same bits), read back, with one layer on the one-layer kernel."""
import subprocess
import sys

import pytest

from snnbatch import open_run
from snnbatch.orchestrator import planner, spec as spec_mod

SPEC = """
name: deep-sweep
dataset: {n_inputs: 30, n_classes: 3, n_train: 192, n_test: 60, n_steps: 40}
model: {recurrent: true}
training: {iterations: 6, batch_size: 64, lr: 2.0e-3}
checkpoint: {every_iterations: 3}
sweep:
  grid: {n_hidden: [[32, 32], 64]}
"""

CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]


def _submit(spec_file, store, backend):
    r = subprocess.run(CLI + ["submit", str(spec_file), "--store", str(store), "--backend", backend, "--no-progress"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return open_run(store)


def test_the_sweep_plans_one_task_per_depth():
    tasks = planner.plan(spec_mod.parse(SPEC))
    assert [t.params["n_hidden"] for t in tasks] == [[32, 32], 64]
    assert [t.config.model.n_hidden for t in tasks] == [[32, 32], 64]


@pytest.mark.dask
def test_inline_and_dask_run_the_sweep_to_the_same_bits(tmp_path):
    spec_file = tmp_path / "deep.yaml"
    spec_file.write_text(SPEC)
    inline = _submit(spec_file, tmp_path / "inline", "inline")
    dask = _submit(spec_file, tmp_path / "dask", "local")
    assert [t.id for t in inline] == [t.id for t in dask]
    deep, shallow = (inline.task(t.id) for t in inline)
    assert {k for k in deep.checkpoint if k.startswith("params/")} == {
        "params/w_in", "params/w_rec", "params/w_in1", "params/w_rec1", "params/w_out"}
    assert deep.checkpoint["params/w_in1"].shape == (32, 32)
    assert {k for k in shallow.checkpoint if k.startswith("params/")} == {"params/w_in", "params/w_rec", "params/w_out"}
    for t in inline:
        a, b = inline.task(t.id), dask.task(t.id)
        assert a.status["state"] == b.status["state"] == "done"
        assert set(a.checkpoint) == set(b.checkpoint)
        for k, v in a.checkpoint.items():
            assert b.checkpoint[k].tobytes() == v.tobytes(), (t.id, k)
        assert a.status["test_loss"] == b.status["test_loss"]
    table = inline.to_pandas()
    assert sorted(map(str, table["n_hidden"])) == ["64", "[32, 32]"]
    r = subprocess.run(CLI + ["status", str(tmp_path / "inline")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "done" in r.stdout, r.stdout + r.stderr
