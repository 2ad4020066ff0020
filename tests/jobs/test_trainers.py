"""Every trainer learns, checkpoints, and resumes to the same bits.

Each case runs one task twice in separate stores: once without a stop, and once
asked to stop mid-epoch (it checkpoints and returns), then run again to the end.
The final checkpoints (parameters, optimizer state, data order, metric history)
and the test metrics must be identical.
"""
import pytest

from snnbatch.jobs.runner import StopFlag, run_task
from snnbatch.jobs.store import TaskStore
from snnbatch.jobs.trainer import build_trainer
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore

DATA = "dataset: {n_inputs: 30, n_classes: 3, dim: 1, n_train: 96, n_test: 60, n_steps: 40}\n"
RUN = "training: {iterations: 10, batch_size: 32, lr: 5.0e-3}\ncheckpoint: {every_iterations: 4}\n"

CASES = {
    "alif-bptt": "model: {type: alif, n_hidden: 24, tau_adapt: 0.05, adapt_jump: 0.5}\nlearning: {rule: bptt}\n",
    "alif-bptt-recurrent": "model: {type: alif, n_hidden: 16, recurrent: true}\nlearning: {rule: bptt}\n",
    "lif-eprop": "model: {type: lif, n_hidden: 24}\nlearning: {rule: eprop}\n",
    "lif-eprop-recurrent": "model: {type: lif, n_hidden: 16, recurrent: true}\nlearning: {rule: eprop, detach_reset: false}\n",
    "alif-eprop": "model: {type: alif, n_hidden: 24, adapt_jump: 0.5}\nlearning: {rule: eprop}\n",
    "lif-eprop-two-layers": "model: {type: lif, n_hidden: [24, 16]}\nlearning: {rule: eprop}\n",
    "alif-eprop-two-layers-random": "model: {type: alif, n_hidden: [16, 12], recurrent: [true, false], adapt_jump: 0.5}\n"
                                    "learning: {rule: eprop, feedback: random}\n",
}


class StopAfter(StopFlag):
    """A stop request that appears after ``reads`` looks at it (the runner looks once per iteration)."""

    def __init__(self, reads: int):
        self._reads_left = reads
        self._reason = None
        super().__init__()

    @property
    def reason(self):
        self._reads_left -= 1
        if self._reads_left < 0 and self._reason is None:
            self._reason = "test stop"
        return self._reason

    @reason.setter
    def reason(self, value):
        self._reason = value


def _store(path, text):
    spec = spec_mod.parse(text)
    tasks = planner.plan(spec)
    store, _ = RunStore.create_or_update(path, spec, text, tasks)
    return store.path, tasks[0]


def _final(store_path, task_id):
    ts = TaskStore(store_path, task_id, mode="r")
    state, problems = ts.latest_checkpoint()
    assert problems == []
    return state, ts.status()


@pytest.mark.parametrize("case", sorted(CASES))
def test_trains_and_resumes_bit_identical(case, tmp_path):
    text = f"name: {case}\n" + CASES[case] + DATA + RUN
    ref_path, task = _store(tmp_path / "reference", text)
    assert run_task(ref_path, task.id).state == "done"

    path, task2 = _store(tmp_path / "stopped", text)
    assert task2.id == task.id  # same spec, same task
    first = run_task(path, task.id, stop=StopAfter(6))
    assert first.state == "interrupted" and 0 < first.iteration < 10
    assert first.iteration % 3 != 0  # mid-epoch: 96 samples / 32 = 3 iterations per epoch
    second = run_task(path, task.id)
    assert second.state == "done" and second.iteration == 10

    ref, ref_status = _final(ref_path, task.id)
    got, status = _final(path, task.id)
    # the second attempt really resumed from the checkpoint the stop wrote
    assert [a["from_iteration"] for a in status["attempts"]] == [0, first.iteration]
    assert got.iteration == ref.iteration == 10
    assert set(got.arrays) == set(ref.arrays)
    assert any(k.startswith("params/") for k in ref.arrays) and "data_order" in ref.arrays
    for k in ref.arrays:
        assert got.arrays[k].dtype == ref.arrays[k].dtype
        assert got.arrays[k].tobytes() == ref.arrays[k].tobytes(), k
    assert got.metrics == ref.metrics
    assert status["test_loss"] == ref_status["test_loss"]
    assert status["test_accuracy"] == ref_status["test_accuracy"]
    assert ref.metrics["loss"][-1] < ref.metrics["loss"][0]


def test_registry_picks_the_kernels():
    from snnbatch.jobs.config import TaskConfig
    from snnbatch.kernels import alif, eprop

    base = {"dataset": {"n_inputs": 10, "n_train": 8, "n_test": 4, "n_steps": 10}, "training": {"iterations": 1}}
    t = build_trainer(TaskConfig.model_validate({**base, "model": {"type": "alif", "tau_adapt": 0.3, "adapt_jump": 0.7}}))
    assert t.kernel is alif and t.kcfg.tau_adapt == 0.3 and t.kcfg.adapt_jump == 0.7 and t.kcfg.n_inputs == 10
    t = build_trainer(TaskConfig.model_validate({**base, "learning": {"rule": "eprop", "surrogate_scale": 20}}))
    assert t.kernel is eprop and type(t.kcfg).__name__ == "LIFConfig" and t.kcfg.surrogate_scale == 20
    t = build_trainer(TaskConfig.model_validate({**base, "model": {"type": "alif"}, "learning": {"rule": "eprop"}}))
    assert t.kernel is eprop and t.kcfg.adapt_jump == 0.2


# Algorithms with their own tasks (not spike-pattern classification): the whole spec per case.
OTHER_CASES = {
    "dendritic-adjoint": (
        "model: {type: dendritic, n_neurons: 4, n_inputs: 3, duration: 50.0, init_noise: 0.05}\n"
        "training: {iterations: 8, lr: 5.0e-4}\ncheckpoint: {every_iterations: 3}\n"
    ),
    "force-rls": (
        "model: {type: force, n_neurons: 60, n_static: 20, n_plastic: 10, duration: 200.0, warmup: 20.0}\n"
        "training: {iterations: 8}\ncheckpoint: {every_iterations: 3}\n"
    ),
}


@pytest.mark.parametrize("case", sorted(OTHER_CASES))
def test_other_algorithms_train_and_resume_bit_identical(case, tmp_path):
    text = f"name: {case}\n" + OTHER_CASES[case]
    ref_path, task = _store(tmp_path / "reference", text)
    assert run_task(ref_path, task.id).state == "done"
    path, _ = _store(tmp_path / "stopped", text)
    first = run_task(path, task.id, stop=StopAfter(4))
    assert first.state == "interrupted" and 0 < first.iteration < 8
    assert run_task(path, task.id).state == "done"
    ref, ref_status = _final(ref_path, task.id)
    got, status = _final(path, task.id)
    assert [a["from_iteration"] for a in status["attempts"]] == [0, first.iteration]
    assert set(got.arrays) == set(ref.arrays)
    for k in ref.arrays:
        assert got.arrays[k].tobytes() == ref.arrays[k].tobytes(), k
    assert got.metrics == ref.metrics
    assert status["test_loss"] == ref_status["test_loss"]
    assert ref.metrics["loss"][-1] < ref.metrics["loss"][0]
