"""The example plugins of examples/plugin, end to end: an installed package and a single file.

``snnbatch-izhikevich`` (``pip install -e examples/plugin``; the Makefile's venv has it) registers the
algorithm ``izhikevich`` through the ``snnbatch.algorithms`` entry point; ``countreadout.py`` is listed
under a spec's ``plugins:`` and declares ``count_readout`` and the dataset ``poisson_rates``. Both go
through plan, submit, status, report and resume as real CLI processes on the local backend; a
``run-task`` SIGKILLed mid-run (``SNNBATCH_KILL_AT_ITERATION``) and resumed ends with the same bits as
an uninterrupted run. Bad plugin files are refused with exit status 2 before anything is written, and
``check_trainer`` catches a trainer that keeps state outside its arrays.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
import zarr

from snnbatch import open_run
from snnbatch.testing import check_trainer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "plugin"
CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]

network = pytest.importorskip("snnbatch_izhikevich.network", reason="pip install -e examples/plugin (make does)")

# name: (example spec, its own per-iteration metric, its label, what the store records as its source)
PLUGINS = {
    "izhikevich": ("sweep.yaml", "rate_hz", "hidden firing rate (Hz)", "entry point"),
    "count_readout": ("file_sweep.yaml", "margin", "logit margin of the true class", "file"),
}


def cli(*args, env=None, timeout=600):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def ok(r) -> str:
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def example(name: str, tmp_path: Path, **changes) -> Path:
    """The example spec of plugin ``name``, written into ``tmp_path`` with its sections updated by
    ``changes`` (``sweep`` replaced whole). Its plugin files stay where they are (absolute paths): a
    process registers one file per algorithm name, and ``check_trainer`` loads them in this one."""
    spec_file, *_ = PLUGINS[name]
    data = yaml.safe_load((EXAMPLES / spec_file).read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and key != "sweep":
            data[key] = {**data.get(key, {}), **value}
        else:
            data[key] = value
    data["plugins"] = [str(EXAMPLES / p) for p in data.get("plugins", [])]
    path = tmp_path / spec_file
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def short(name: str, tmp_path: Path, iterations: int, sweep: dict) -> Path:
    """A short version of the example (``iterations`` per task, checkpoints every 5, ``sweep``)."""
    return example(name, tmp_path, training={"iterations": iterations, "epochs": None},
                   checkpoint={"every_iterations": 5, "every_minutes": 60}, sweep=sweep)


def assert_same_bits(ref_store: Path, store: Path) -> None:
    """Every task of ``ref_store`` done in ``store`` with the same arrays, metric histories and final metrics."""
    ref, got = open_run(ref_store), open_run(store)
    assert {t.id for t in ref.tasks} == {t.id for t in got.tasks}
    for t in ref.tasks:
        mine = got.task(t.id)
        assert mine.state == "done" and t.state == "done"
        assert set(mine.checkpoint) == set(t.checkpoint)
        for k, v in t.checkpoint.items():
            w = mine.checkpoint[k]
            assert (w.dtype, w.shape) == (v.dtype, v.shape) and w.tobytes() == v.tobytes(), f"{t.id}: {k} differs"
        assert set(mine.metrics) == set(t.metrics)
        for k, v in t.metrics.items():
            assert mine.metrics[k].tobytes() == v.tobytes(), f"{t.id}: metric history {k} differs"
        assert mine.final == t.final


# ------------------------------------------------------------------ the Izhikevich network itself


def test_izhikevich_gradient_matches_finite_differences():
    """In float64, with the spike the readout sees made smooth (the function whose derivative is the
    surrogate) and the reset kept hard, the hand-written BPTT is the exact gradient of the loss."""
    rng = np.random.default_rng(3)
    cfg = network.NetworkConfig(n_inputs=6, n_hidden=5, n_outputs=3, weight_scale=3.0, surrogate_scale=0.5,
                                smooth=True)
    params = network.init_params(cfg, rng)
    x = (rng.random((4, 40, 6)) < 0.1).astype(np.float64)
    y = rng.integers(0, 3, 4)
    tr = network.forward(params, x, cfg)
    assert tr.spikes.any() and (~tr.spikes).any()  # resets happen: the hard reset is in the test
    _, _, _, grads = network.loss_and_grad(params, x, y, cfg)
    eps = 1e-6
    for name, p in params.items():
        fd = np.empty_like(p)
        for idx in np.ndindex(p.shape):
            q_plus = {k: v.copy() for k, v in params.items()}
            q_minus = {k: v.copy() for k, v in params.items()}
            q_plus[name][idx] += eps
            q_minus[name][idx] -= eps
            fd[idx] = (network.loss_and_grad(q_plus, x, y, cfg)[0]
                       - network.loss_and_grad(q_minus, x, y, cfg)[0]) / (2 * eps)
        # central differences carry O(eps²) truncation error from the quadratic dynamics: 1e-8 of the
        # gradient's norm here, a few 1e-6 in the worst single element
        assert np.linalg.norm(grads[name] - fd) <= 1e-6 * np.linalg.norm(fd), name
        np.testing.assert_allclose(grads[name], fd, rtol=1e-4, err_msg=name)


def test_izhikevich_neuron_follows_the_equations():
    """One neuron under a constant current, against a plain scalar Euler loop of the Izhikevich equations."""
    cfg = network.NetworkConfig(n_inputs=1, n_hidden=1, n_outputs=1, input_gain=1.0, tau_syn_ms=1e9)
    params = {"w_in": np.array([[10.0]]), "w_out": np.array([[1.0]])}
    x = np.zeros((1, 200, 1))
    x[0, 0, 0] = 1.0  # one input spike: I = 10 for the whole run (tau_syn ~ infinite)
    tr = network.forward(params, x, cfg)
    v, u, spikes = cfg.v_rest, cfg.b * cfg.v_rest, []
    for n in range(200):
        vt = v + (0.04 * v * v + 5 * v + 140 - u + 10.0 * np.exp(-1e-9) ** n)
        ut = u + cfg.a * (cfg.b * v - u)
        spikes.append(vt >= 30.0)
        v, u = (cfg.c, ut + cfg.d) if vt >= 30.0 else (vt, ut)
    np.testing.assert_array_equal(tr.spikes[:, 0, 0], spikes)
    assert 5 <= sum(spikes) <= 30  # regular spiking at I = 10: tens of Hz
    assert abs(cfg.v_rest - -70.0) < 1e-12  # the stable fixed point for b = 0.2


def test_the_package_imports_in_a_fresh_process():
    r = subprocess.run([sys.executable, "-c", "import snnbatch_izhikevich.network"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_dense_inputs_match_the_events():
    from snnbatch.kernels.randman import RandmanConfig, make_dataset

    data = make_dataset(RandmanConfig(n_inputs=7, n_classes=2, n_train=10, n_test=4, n_steps=12),
                        np.random.default_rng(0))
    index = np.array([3, 0, 7])
    events = data.train_events.take(index)
    np.testing.assert_array_equal(network.dense(events, 7), events.to_dense(7))
    np.testing.assert_array_equal(network.dense(data.train_events, 7)[index], events.to_dense(7))


# ------------------------------------------------------------------ the examples through the CLI


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_example_sweep_plan_submit_status_report(name, tmp_path):
    """The example sweep as shipped: plan lists its tasks, submit runs them on the local backend, status
    shows them done with the plugin's metrics recorded, report writes its files."""
    spec_file, metric, label, kind = PLUGINS[name]
    spec = EXAMPLES / spec_file
    plan = json.loads(ok(cli("plan", spec, "--json")))
    ids = [t["id"] for t in plan["tasks"]]
    assert len(ids) == 4 and plan["summary"]["n_tasks"] == 4
    assert {t["config"]["model"]["type"] for t in plan["tasks"]} == {name}
    assert all(i in ok(cli("plan", spec)) for i in ids)

    store = tmp_path / "store"
    out = ok(cli("submit", spec, "--store", store, "--backend", "local", "--no-progress"))
    assert "finished: 4 done" in out

    status = json.loads(ok(cli("status", store, "--json")))
    assert status["summary"]["done"] == 4
    rows = {r["id"]: r for r in status["tasks"]}
    assert set(rows) == set(ids)
    for r in rows.values():
        assert r["state"] == "done" and r["iteration"] == r["total"] > 0
        assert r["test_accuracy"] > 0.6  # 3 classes: chance is 1/3
    # status --json shows the metrics an algorithm declares with status=True once it shows any beyond
    # the fixed columns; then the plugin's own is among them
    shown = {k for r in rows.values() for k in [*r, *(r.get("metrics") or {})]}
    declared = set(zarr.open_group(str(store), mode="r").attrs["metrics"])
    if (shown - {"loss", "accuracy", "test_loss", "test_accuracy"}) & declared:
        assert metric in shown
    # the plugin's own metrics, declared once, recorded in the store for status and report
    attrs = zarr.open_group(str(store), mode="r").attrs
    recorded = attrs["metrics"][metric]
    assert (recorded["label"], recorded["better"], recorded["status"]) == (
        label, "higher" if metric == "margin" else "lower", True)
    assert {r["kind"] for r in attrs["plugins"]} == {kind}
    assert name in {r["id"] for r in attrs["plugins"] if r["what"] == "algorithm"}
    run = open_run(store)
    for t in run.tasks:
        history = t.metrics[metric]
        assert len(history) == t.status["total"] and np.isfinite(history).all()
        row = rows[t.id]
        shown_value = row.get(metric, (row.get("metrics") or {}).get(metric))
        assert shown_value in (None, history[-1])  # status shows the last iteration's value

    report = tmp_path / "report"
    ok(cli("report", store, "--out", report))
    assert {"report.html", "results.csv", "curves.png"} <= {p.name for p in report.iterdir()}
    csv = (report / "results.csv").read_text()
    assert all(i in csv for i in ids)

    # submitting again finds every task done
    assert "nothing to run" in ok(cli("submit", spec, "--store", store, "--no-progress"))


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_sigkilled_run_task_resumes_bit_identical(name, tmp_path):
    """submit killed in its first task, run-task killed again, resume on the local backend: the same
    bits as a sweep that ran without a stop."""
    spec = short(name, tmp_path, 40, {"grid": {"lr": [2.0e-3, 5.0e-3]} if name == "izhikevich"
                                      else {"n_hidden": [32, 64]}})
    ref = tmp_path / "reference"
    assert "finished: 2 done" in ok(cli("submit", spec, "--store", ref, "--backend", "local", "--no-progress"))

    store = tmp_path / "store"
    # the driver running the first task inline dies after iteration 13 (last checkpoint: 10) ...
    r = cli("submit", spec, "--store", store, "--backend", "inline", "--no-progress",
            env={"SNNBATCH_KILL_AT_ITERATION": "13"})
    assert r.returncode == -9, r.stdout + r.stderr
    first = open_run(store).tasks[0]
    assert first.state == "interrupted" and first.status["iteration"] == 10
    # ... then `run-task` dies after iteration 27 (last checkpoint: 25)
    r = cli("run-task", store, first.id, env={"SNNBATCH_KILL_AT_ITERATION": "27"})
    assert r.returncode == -9, r.stdout + r.stderr
    assert open_run(store).task(first.id).status["iteration"] == 25
    status = json.loads(ok(cli("status", store, "--json")))
    assert sorted(r["state"] for r in status["tasks"]) == ["interrupted", "pending"]

    out = ok(cli("resume", store, "--backend", "local", "--no-progress"))
    assert "finished: 2 done" in out
    attempts = open_run(store).task(first.id).status["attempts"]
    assert [a["from_iteration"] for a in attempts] == [0, 10, 25]
    assert [a["reason"] for a in attempts][-1] == "done"
    assert_same_bits(ref, store)
    assert "nothing to run" in ok(cli("resume", store, "--no-progress"))


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_check_trainer_passes(name, tmp_path):
    spec = short(name, tmp_path, 30, {})
    result = check_trainer(spec, workdir=tmp_path / "check")
    assert result.iterations == 30 and len(result.kills) == 2 and result.attempts >= 4


def test_the_file_plugins_dataset_serves_the_installed_plugins_network(tmp_path):
    """poisson_rates (from countreadout.py) is of kind "spikes", so izhikevich (installed) accepts it."""
    spec = tmp_path / "mixed.yaml"
    spec.write_text(textwrap.dedent("""\
        name: mixed
        plugins: [PLUGIN]
        model: {type: izhikevich, n_hidden: 16}
        dataset: {type: poisson_rates, n_inputs: 20, n_train: 128, n_test: 64, n_steps: 40}
        training: {iterations: 6, batch_size: 32, lr: 5.0e-3}
    """).replace("PLUGIN", str(EXAMPLES / "countreadout.py")))
    store = tmp_path / "store"
    ok(cli("submit", spec, "--store", store, "--backend", "inline", "--no-progress"))
    attrs = zarr.open_group(str(store), mode="r").attrs
    kinds = {(r["what"], r["id"]): r["kind"] for r in attrs["plugins"]}
    assert kinds == {("algorithm", "izhikevich"): "entry point", ("dataset", "poisson_rates"): "file"}
    (task,) = open_run(store).tasks
    assert task.state == "done" and len(task.metrics["rate_hz"]) == 6


# ------------------------------------------------------------------ plugins that cannot be used

BAD_PLUGINS = {
    "syntax error": ("def broken(:\n    pass\n", "SyntaxError"),
    "declares nothing": ("import numpy\n\nVALUE = 1\n", "declares nothing"),
    "model section without type": (textwrap.dedent("""\
        from snnbatch.jobs.registry import Algorithm, Metric, Rule, Section


        class Model(Section):
            n_hidden: int = 8


        class Learning(Section):
            rule: str = "untyped_rule"


        class T:
            pass


        ALGORITHMS = [Algorithm(model=Model, rules=(Rule(Learning, T),), datasets=("randman",),
                                metrics=(Metric("loss", "loss"),))]
    """), "needs `type"),
}


@pytest.mark.parametrize("case", sorted(BAD_PLUGINS))
@pytest.mark.parametrize("command", ["plan", "submit"])
def test_a_bad_plugin_file_is_exit_2_naming_it_and_writes_nothing(case, command, tmp_path):
    source, words = BAD_PLUGINS[case]
    plugin = tmp_path / "badplugin.py"
    plugin.write_text(source)
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: bad\nplugins: [badplugin.py]\nmodel: {type: lif, n_hidden: 8}\n"
                    "training: {iterations: 2}\n")
    store = tmp_path / "store"
    args = ["plan", spec] if command == "plan" else ["submit", spec, "--store", store, "--backend", "inline"]
    r = cli(*args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert str(plugin) in r.stderr and words in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not store.exists()
    assert not (tmp_path / "runs").exists()


STATEFUL = textwrap.dedent('''\
    """A trainer that counts its steps on self: the count restarts at 0 after a resume."""
    from typing import Literal

    import numpy as np

    from snnbatch.jobs.registry import Algorithm, Metric, Rule, Section
    from snnbatch.jobs.trainer import Trainer


    class Model(Section):
        type: Literal["forgetful"] = "forgetful"


    class Learning(Section):
        rule: Literal["forgetful_sgd"] = "forgetful_sgd"


    class Forgetful(Trainer):
        total_iterations = 20

        def __init__(self, config):
            super().__init__(config)
            self.calls = 0  # state outside the arrays

        def init_state(self):
            return {"w": np.zeros(3)}, np.random.default_rng(self.config.seed)

        def step(self, state):
            self.calls += 1
            state.arrays["w"] += 0.1 * self.calls * state.rng.normal(size=3)
            return {"loss": float(state.arrays["w"] @ state.arrays["w"])}

        def evaluate(self, state):
            return {"test_loss": float(state.arrays["w"] @ state.arrays["w"])}


    ALGORITHMS = [Algorithm(model=Model, rules=(Rule(Learning, Forgetful),), datasets=("randman",),
                            metrics=(Metric("loss", "loss"), Metric("test_loss", "test loss")))]
''')


def _stateful_plugin(tmp_path: Path, name: str, source: str) -> Path:
    """A spec training the algorithm of ``source`` renamed ``name`` (one file and one name per process)."""
    (tmp_path / f"{name}.py").write_text(source.replace("forgetful", name))
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(f"name: {name}\nplugins: [{name}.py]\nmodel: {{type: {name}}}\n")
    return spec


def test_check_trainer_catches_state_kept_outside_the_arrays(tmp_path):
    spec = _stateful_plugin(tmp_path, "forgetful", STATEFUL)
    with pytest.raises(AssertionError, match="state array 'w' differs after kill and resume"):
        check_trainer(spec, workdir=tmp_path / "check")
    # the same trainer with its count kept in the arrays passes
    fixed = (STATEFUL.replace("self.calls += 1\n", "state.arrays[\"calls\"] += 1\n")
             .replace("0.1 * self.calls", "0.1 * state.arrays[\"calls\"][()]")
             .replace('return {"w": np.zeros(3)}', 'return {"w": np.zeros(3), "calls": np.zeros((), np.int64)}'))
    assert fixed.count("calls") == STATEFUL.count("calls") + 1
    spec = _stateful_plugin(tmp_path, "remembering", fixed)
    assert check_trainer(spec, workdir=tmp_path / "check-fixed").iterations == 20
