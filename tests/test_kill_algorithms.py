"""Every algorithm survives SIGKILL: kill `run-task` after a checkpoint, run it again, compare bits.

The reference is the same task run without interruption in another store.
"""
import signal
import subprocess
import sys
import time

import pytest

from snnbatch import open_run
from snnbatch.orchestrator import planner, spec as spec_mod
from snnbatch.orchestrator.store import RunStore

CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]
SMALL = "dataset: {n_inputs: 30, n_classes: 3, n_train: 192, n_test: 60, n_steps: 40}\n"
MEMORY = ("dataset: {type: delayed_match, cue_steps: 5, delay_steps: 12, probe_steps: 5, units_per_pattern: 4, "
          "n_noise: 4, spike_prob: 0.3, n_train: 96, n_test: 32}\n")
SPECS = {
    "lif-bptt-recurrent": "model: {type: lif, n_hidden: 32, recurrent: true}\n" + SMALL,
    "alif-bptt": "model: {type: alif, n_hidden: 32}\n" + SMALL,
    # two hidden layers (kernels/deep.py), the second recurrent
    "lif-bptt-two-layers": "model: {type: lif, n_hidden: [32, 24], recurrent: [false, true]}\n" + SMALL,
    "alif-bptt-two-layers": "model: {type: alif, n_hidden: [24, 24], recurrent: true}\n" + SMALL,
    # the sparse backward (surrogate cut-off) of the recurrent network
    "lif-bptt-recurrent-sparse": "model: {type: lif, n_hidden: 32, recurrent: true}\n"
                                 "learning: {surrogate_cutoff: 0.01}\n" + SMALL,
    # the sparse backward of two hidden layers (kernels/deep.py), the first recurrent
    "alif-bptt-two-layers-sparse": "model: {type: alif, n_hidden: [24, 24], recurrent: [true, false]}\n"
                                   "learning: {surrogate_cutoff: 0.01}\n" + SMALL,
    # the activity penalty, both bounds, in the training loss of the recurrent network
    "lif-bptt-recurrent-activity": "model: {type: lif, n_hidden: 32, recurrent: true}\n"
                                   "learning: {activity_upper: 4, activity_upper_strength: 0.01, activity_lower: 1, "
                                   "activity_lower_strength: 0.01}\n" + SMALL,
    "alif-bptt-two-layers-activity": "model: {type: alif, n_hidden: [24, 24], recurrent: [true, false]}\n"
                                     "learning: {activity_upper: 4, activity_upper_strength: 0.01, "
                                     "activity_lower: 1, activity_lower_strength: 0.01}\n" + SMALL,
    "lif-eprop": "model: {type: lif, n_hidden: 32}\nlearning: {rule: eprop}\n" + SMALL,
    # two hidden layers (kernels/eprop_deep.py), the second recurrent, the random feedback of the first layer
    "alif-eprop-two-layers": "model: {type: alif, n_hidden: [32, 24], recurrent: [false, true]}\n"
                             "learning: {rule: eprop}\n" + SMALL,
    "dendritic-adjoint": "model: {type: dendritic, n_neurons: 6, n_inputs: 4, duration: 100.0}\n",
    "force-rls": "model: {type: force, n_neurons: 80, n_static: 20, n_plastic: 10, duration: 300.0}\n",
    # the memory task with the recurrent defaults (recurrent_weight_scale, recurrent_lr_scale: auto)
    "lif-eprop-recurrent-memory": "model: {type: lif, n_hidden: 16, recurrent: true}\nlearning: {rule: eprop}\n"
                                  + MEMORY,
    "alif-bptt-recurrent-memory": "model: {type: alif, n_hidden: 16, recurrent: true, tau_adapt: 0.2, "
                                  "adapt_jump: 0.5}\n" + MEMORY,
}
RUN = "training: {iterations: %d, batch_size: 32, lr: 2.0e-3}\ncheckpoint: {every_iterations: 2}\n"
ITERATIONS = {"force-rls": 12, "dendritic-adjoint": 40, "lif-eprop-recurrent-memory": 20,
              "alif-bptt-recurrent-memory": 20}


def _make(path, name):
    text = f"name: {name}\n" + SPECS[name] + RUN % ITERATIONS.get(name, 60)
    spec = spec_mod.parse(text)
    tasks = planner.plan(spec)
    store, _ = RunStore.create_or_update(path, spec, text, tasks)
    return store.path, tasks[0].id


def _run(path, tid):
    r = subprocess.run(CLI + ["run-task", str(path), tid], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("name", sorted(SPECS))
def test_sigkill_then_resume_is_bit_identical(name, tmp_path):
    ref_path, tid = _make(tmp_path / "ref", name)
    _run(ref_path, tid)
    path, tid2 = _make(tmp_path / "run", name)
    assert tid2 == tid
    proc = subprocess.Popen(CLI + ["run-task", str(path), tid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            st = RunStore.open(path).tasks()[0]["status"]
            if (st.get("iteration") or 0) >= 2 and st.get("state") == "running":
                break
            assert proc.poll() is None, "the task ended before it could be killed"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    _run(path, tid)
    got, ref = open_run(path).task(tid), open_run(ref_path).task(tid)
    assert len(got.status["attempts"]) == 2 and got.status["attempts"][1]["from_iteration"] >= 2
    assert set(got.checkpoint) == set(ref.checkpoint)
    for k, v in ref.checkpoint.items():
        assert got.checkpoint[k].tobytes() == v.tobytes(), k
    for k, v in ref.metrics.items():
        assert got.metrics[k].tobytes() == v.tobytes(), k
    assert got.status["test_loss"] == ref.status["test_loss"]
