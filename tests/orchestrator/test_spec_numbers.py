"""Numbers in every YAML float form are numbers: in the plan, the store, the tables and xarray."""
import pytest

from snnbatch import open_run
from snnbatch.jobs.runner import run_task
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore

TINY = """\
name: numbers
dataset: {n_train: 64, n_test: 32, n_inputs: 16, n_steps: 20}
model: {n_hidden: 8}
training: {iterations: 2, batch_size: 32, lr: 1E-3}
sweep:
  grid: {lr: [2e-3, 5e-3, .01]}
"""


@pytest.mark.parametrize("text, value", [("2e-3", 0.002), ("1E5", 1e5), (".5", 0.5), ("-1.5e+2", -150.0),
                                         ("3.0e-3", 0.003), ("12", 12), ("'2e-3'", "2e-3")])
def test_every_float_form_is_a_number(text, value):
    got = spec_mod.load_yaml(f"x: {text}")["x"]
    assert got == value and type(got) is type(value)


def test_swept_exponent_numbers_are_floats_everywhere(tmp_path):
    spec = spec_mod.parse(TINY)
    assert spec.training.lr == 0.001
    tasks = planner.plan(spec)
    assert [t.params["lr"] for t in tasks] == [0.002, 0.005, 0.01]
    assert all(type(t.params["lr"]) is float for t in tasks)
    store, _ = RunStore.create_or_update(tmp_path / "st", spec, TINY, tasks)
    for t in tasks:
        assert run_task(store.path, t.id).state == "done"
    run = open_run(store.path)
    table = run.to_pandas()
    assert table["lr"].dtype.kind == "f"
    assert run.to_xarray().sel(lr=0.002)["test_accuracy"].size == 1  # a KeyError if lr were a string
    table.to_parquet(tmp_path / "t.parquet")
    import pyarrow.parquet as pq

    assert str(pq.read_schema(tmp_path / "t.parquet").field("lr").type) == "double"
