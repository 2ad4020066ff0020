"""Command-line overrides: KEY=VALUE, +KEY=VALUE, ~KEY, read as YAML, recorded in the store."""
import subprocess
import sys

import pytest
import zarr

from snnbatch.jobs.errors import SpecError
from snnbatch.orchestrator import planner, spec as spec_mod

CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]
SPEC = """\
name: ov
dataset: {n_train: 64, n_test: 32, n_inputs: 16, n_steps: 20}
model: {n_hidden: 8, recurrent: true}
training: {iterations: 2, batch_size: 32}
sweep:
  grid: {lr: [1.0e-3, 2.0e-3]}
"""


def test_overrides_set_add_and_remove_keys():
    spec = spec_mod.parse(SPEC, "s.yaml", ["training.lr=0.01", "model.n_hidden=16", "~model.recurrent",
                                           "sweep.grid.lr=[1e-3,3e-3,1e-2]", "+sweep.seeds=2",
                                           "sweep.grid.training.batch_size=[16]"])
    assert spec.training.lr == 0.01 and spec.model.n_hidden == 16 and spec.model.recurrent is False
    tasks = planner.plan(spec)
    assert len(tasks) == 6 and sorted({t.params["lr"] for t in tasks}) == [0.001, 0.003, 0.01]
    assert {t.params["training.batch_size"] for t in tasks} == {16}
    # the same spec written in the file plans the same task ids
    written = SPEC.replace("n_hidden: 8, recurrent: true", "n_hidden: 16").replace(
        "grid: {lr: [1.0e-3, 2.0e-3]}", "grid: {lr: [1.0e-3, 3.0e-3, 1.0e-2], training.batch_size: [16]}\n  seeds: 2"
    ).replace("batch_size: 32}", "batch_size: 32, lr: 0.01}")
    assert [t.id for t in planner.plan(spec_mod.parse(written))] == [t.id for t in tasks]


@pytest.mark.parametrize("override, message", [
    ("lr", "override 'lr': expected KEY=VALUE"),
    ("=3", "override '=3': expected KEY=VALUE"),
    ("trainig.lr=1", "override 'trainig.lr=1': unknown key 'trainig' (did you mean 'training'?)"),
    ("~model.tau", "override '~model.tau': model.tau is not in the spec"),
    ("sweep.grid.lr=[1,", "override 'sweep.grid.lr=[1,': the value is not valid YAML"),
    ("model.n_hidden.x=1", "override 'model.n_hidden.x=1': model.n_hidden is 8 in the spec, not a mapping"),
])
def test_malformed_overrides_name_the_override(override, message):
    with pytest.raises(SpecError) as info:
        spec_mod.parse(SPEC, "s.yaml", [override])
    assert message in str(info.value)


def test_a_bad_value_names_its_override_and_the_cli_writes_nothing(tmp_path):
    (tmp_path / "s.yaml").write_text(SPEC)
    r = subprocess.run(CLI + ["submit", "s.yaml", "--store", "st", "training.lr=fast", "model.n_hiden=3"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "training.lr: expected a positive number, got 'fast' (from the override 'training.lr=fast')" in r.stderr
    assert "model.n_hiden: unknown key 'n_hiden' (did you mean 'n_hidden'?)" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "st").exists()


def test_the_store_records_the_overrides_and_plan_shows_the_resolved_spec(tmp_path):
    (tmp_path / "s.yaml").write_text(SPEC)
    shown = subprocess.run(CLI + ["plan", "s.yaml", "model.n_hidden=24", "--show-spec"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and spec_mod.load_yaml(shown.stdout)["model"]["n_hidden"] == 24
    r = subprocess.run(CLI + ["submit", "s.yaml", "--store", "st", "--backend", "inline", "--no-progress",
                              "model.n_hidden=24"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    attrs = zarr.open_group(str(tmp_path / "st"), mode="r").attrs
    assert attrs["overrides"] == ["model.n_hidden=24"] and attrs["spec"]["model"]["n_hidden"] == 24
    assert attrs["spec_history"][-1]["overrides"] == ["model.n_hidden=24"]
