"""The registry: built-ins arrive through the entry points, plugin files through a spec, both checked."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
import zarr

from snnbatch.jobs import plugins, registry
from snnbatch.jobs.errors import PluginError, SpecError
from snnbatch.jobs.runner import run_task
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore

PLUGIN = '''
from typing import Literal
import numpy as np
from snnbatch.jobs.registry import Algorithm, Metric, Rule, Section
from snnbatch.jobs.trainer import Trainer, build_dataset


class Model(Section):
    type: Literal["{name}"] = "{name}"
    scale: float = 0.1


class Decay(Section):
    rule: Literal["{name}_decay"] = "{name}_decay"
    rate: float = 0.9


class DecayTrainer(Trainer):
    def __init__(self, config):
        super().__init__(config)
        self.data = build_dataset(config.dataset)

    def init_state(self):
        rng = np.random.default_rng(self.seeds()[0])
        return {{"w": rng.normal(0.0, self.config.model.scale, (self.data.n_inputs, self.data.n_classes))}}, rng

    def step(self, state):
        {step}
        return {{"loss": float(np.sum(state.arrays["w"] ** 2)), "noise": float(state.rng.normal())}}

    def evaluate(self, state):
        return {{"test_loss": float(np.sum(state.arrays["w"] ** 2))}}


ALGORITHMS = [Algorithm(model=Model, rules=(Rule(Decay, DecayTrainer),), datasets=("randman",),
                        metrics=(Metric("loss", "squared weight norm", "lower", status=True),
                                 Metric("noise", "a draw from the task's generator", "higher", status=True)))]
'''
GOOD_STEP = 'state.arrays["w"] *= self.config.learning.rate'
DATA = "dataset: {n_inputs: 6, n_classes: 2, n_train: 32, n_test: 8, n_steps: 5}\n"


def write_plugin(path, name, step=GOOD_STEP):
    path.write_text(PLUGIN.format(name=name, step=step))
    return path


def spec_text(name, **extra):
    lines = [f"name: {name}", f"plugins: [{name}.py]", f"model: {{type: {name}}}", DATA.rstrip(),
             "training: {iterations: 6}"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


def test_the_builtins_arrive_through_the_entry_points():
    algs = registry.algorithms()
    assert {"lif", "alif", "dendritic", "force"} <= set(algs)
    for name in ("lif", "alif", "dendritic", "force"):
        src = registry.source("algorithm", name)
        assert src.kind == "entry point" and src.name == "snnbatch", src
    assert {"randman", "shd", "teacher", "sinusoids"} <= set(registry.datasets())
    assert [r.name for r in algs["lif"].rules] == ["bptt", "eprop"]


def test_a_plugin_file_beside_the_spec_trains_and_records_its_code(tmp_path):
    write_plugin(tmp_path / "decay.py", "decay")
    (tmp_path / "s.yaml").write_text(spec_text("decay", sweep="{grid: {rate: [0.5, 0.9]}}"))
    spec = spec_mod.load(tmp_path / "s.yaml")
    assert spec.plugins == [str((tmp_path / "decay.py").resolve())]
    tasks = planner.plan(spec)
    assert [t.params["rate"] for t in tasks] == [0.5, 0.9]
    store, _ = RunStore.create_or_update(tmp_path / "st", spec, (tmp_path / "s.yaml").read_text(), tasks)
    attrs = zarr.open_group(str(store.path), mode="r").attrs
    (rec,) = attrs["plugins"]
    assert rec["kind"] == "file" and rec["id"] == "decay" and rec["name"] == str((tmp_path / "decay.py").resolve())
    assert rec["sha256"] == registry.file_hash(tmp_path / "decay.py")
    assert attrs["metrics"]["noise"] == {"label": "a draw from the task's generator", "better": "higher",
                                         "status": True, "final": False, "validation": False}
    for t in tasks:
        assert run_task(store.path, t.id).state == "done"
    w = {t.params["rate"]: RunStore.open(store.path).tasks()[i]["status"]["loss"] for i, t in enumerate(tasks)}
    assert w[0.5] < w[0.9]  # the swept key of the plugin's own section reached its trainer


def test_changed_plugin_code_is_seen_and_refused_on_the_node(tmp_path):
    path = write_plugin(tmp_path / "decay2.py", "decay2")
    (tmp_path / "s.yaml").write_text(spec_text("decay2"))
    spec = spec_mod.load(tmp_path / "s.yaml")
    store, _ = RunStore.create_or_update(tmp_path / "st", spec, "", planner.plan(spec))
    records = list(store.root.attrs["plugins"])
    assert plugins.changes(records) == []
    path.write_text(path.read_text() + "\n# edited\n")
    (change,) = plugins.changes(records)
    assert "decay2" in change and "changed" in change and str(path) in change
    with pytest.raises(PluginError, match="changed since the sweep was planned"):
        plugins.load_recorded(records)
    path.unlink()
    assert "missing" in plugins.changes(records)[0]


@pytest.mark.parametrize("text, message", [
    ("plugins: [nothere.py]\n", r"plugins\[0\]: file not found: nothere.py"),
    ("plugins: nothere.py\n", r"plugins: expected a list of Python files"),
    ("plugins: [broken.py]\n", r"plugins\[0\]: plugin file .*broken.py: cannot be imported: SyntaxError"),
    ("plugins: [empty.py]\n", r"plugins\[0\]: plugin file .*empty.py: declares nothing"),
    ("plugins: [untagged.py]\n", r"plugins\[0\]: plugin file .*untagged.py: Model: a model section needs `type"),
    ("model: {type: hodgkin_huxley}\n", r"model.type: unknown type 'hodgkin_huxley'; choose from: .*plugin"),
])
def test_bad_plugins_are_spec_errors_naming_the_key(tmp_path, text, message):
    (tmp_path / "broken.py").write_text("def f(:\n")
    (tmp_path / "empty.py").write_text("X = 1\n")
    (tmp_path / "untagged.py").write_text(textwrap.dedent("""
        from snnbatch.jobs.registry import Algorithm, Rule, Section
        class Model(Section):
            n: int = 1
        class R(Section):
            rule: str = "r"
        ALGORITHMS = [Algorithm(model=Model, rules=(Rule(R, "x:y"),), datasets=("randman",), metrics=())]
    """))
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(SpecError, match=message):
        spec_mod.load(tmp_path / "s.yaml")


def test_a_name_taken_by_another_plugin_is_refused(tmp_path):
    write_plugin(tmp_path / "a.py", "clash")
    registry.load_file(tmp_path / "a.py")
    write_plugin(tmp_path / "b.py", "clash")
    with pytest.raises(PluginError, match=r"algorithm 'clash' is already declared by plugin file .*a.py"):
        registry.load_file(tmp_path / "b.py")
    registry.load_file(tmp_path / "a.py")  # the same file again: nothing new, no error


def test_the_runner_counts_iterations_and_a_trainer_that_does_is_stopped(tmp_path):
    write_plugin(tmp_path / "counting.py", "counting", step="state.iteration += 1")
    (tmp_path / "s.yaml").write_text(spec_text("counting"))
    spec = spec_mod.load(tmp_path / "s.yaml")
    (task,) = planner.plan(spec)
    store, _ = RunStore.create_or_update(tmp_path / "st", spec, "", [task])
    out = run_task(store.path, task.id)
    assert out.state == "failed"
    assert "step changed state.iteration (0 -> 1): the runner counts iterations" in out.error


def test_a_plugin_trainer_resumes_bit_for_bit_and_one_with_hidden_state_does_not(tmp_path, monkeypatch):
    from snnbatch.testing import check_trainer

    monkeypatch.chdir(tmp_path)
    write_plugin(tmp_path / "fine.py", "fine")
    spec = {"plugins": ["fine.py"], "model": {"type": "fine"},
            "dataset": {"n_inputs": 6, "n_classes": 2, "n_train": 32, "n_test": 8, "n_steps": 5},
            "training": {"iterations": 10}}
    result = check_trainer(spec, kills=2, seed=1, workdir=tmp_path / "fine-run")
    assert len(result.kills) == 2 and result.attempts >= 4
    # state on self: every resume starts the counter again, so the weights differ
    write_plugin(tmp_path / "hidden.py", "hidden",
                 step='self.n = getattr(self, "n", 0) + 1; state.arrays["w"] *= 0.9 ** self.n')
    spec = {**spec, "plugins": ["hidden.py"], "model": {"type": "hidden"}}
    with pytest.raises(AssertionError, match="state array 'w' differs after kill and resume"):
        check_trainer(spec, kills=2, seed=1, workdir=tmp_path / "hidden-run")


def test_init_state_must_return_arrays_and_one_generator(tmp_path):
    from snnbatch.jobs.trainer import initial_state

    class Bad:
        def init_state(self):
            return {"w": [1, 2]}, np.random.default_rng(0)

    with pytest.raises(TypeError, match="every state array must be a NumPy array"):
        initial_state(Bad())

    class Good:
        def init_state(self):
            return {"w": np.zeros(2)}, np.random.default_rng(0)

    state = initial_state(Good())
    assert state.iteration == 0 and set(state.arrays) == {"w"}


def test_an_installed_plugin_s_code_hash_covers_its_whole_package(tmp_path, monkeypatch):
    pkg = tmp_path / "mynet"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .model import ALGORITHM\n")
    (pkg / "model.py").write_text("ALGORITHM = None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = "snnbatch.algorithms:mynet = mynet:ALGORITHM"
    before = plugins._module_hash(ep)
    assert before and before == plugins._module_hash(ep)
    (pkg / "model.py").write_text("ALGORITHM = None  # edited\n")
    assert plugins._module_hash(ep) != before  # an edit beside the entry point's module is seen too


def test_importing_the_config_and_the_backends_loads_no_plugin():
    import subprocess
    import sys

    code = ("import sys\n"
            "import snnbatch.jobs.config, snnbatch.orchestrator.spec\n"
            "import snnbatch.orchestrator.backends.slurm, snnbatch.orchestrator.backends.htcondor\n"
            "from snnbatch.jobs import registry\n"
            "assert not registry._REGISTRY.entry_points_loaded\n"
            "assert 'snnbatch.jobs.lif_bptt' not in sys.modules and 'snnbatch_izhikevich' not in sys.modules\n"
            "from snnbatch.jobs.config import TaskConfig\n"
            "assert TaskConfig.model_validate({}).model.type == 'lif' and registry._REGISTRY.entry_points_loaded\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
