"""The ``dendritic`` algorithm: two-compartment neurons trained by adjoint sensitivity analysis (seed 000).

The task: reproduce a teacher network's somatic voltage traces under the same
input (``dataset: {type: teacher}``). The student starts from the teacher's
weights perturbed by ``model.init_noise`` (relative), or from a fresh random
network when it is 0. One iteration is one forward solve, one reverse
(adjoint) solve and one optimizer step. With ``dataset.n_valid``, held-out
inputs (fresh smooth random inputs and the teacher's traces under them) are the
validation split: ``valid_loss`` and ``valid_correlation``, their means over
the held-out inputs, tell how well the student generalises beyond the input it
is trained on (which ``test_loss`` and ``correlation`` measure).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from .registry import ID_WHEN_SET, Algorithm, Dataset, Metric, Rule, Section
from .trainer import GradientTrainer, TrainState, kernel_config


class DendriticModel(Section):
    """Two-compartment (soma + dendrite) neurons, three coupled ODEs per compartment (seed 000).

    Times in ms. The model constants are those documented in ``snnbatch.kernels.dendritic``.
    """

    type: Literal["dendritic"] = "dendritic"
    """the network family"""
    n_neurons: PositiveInt = 20
    """two-compartment neurons"""
    n_inputs: PositiveInt = 10
    """input channels (smooth random currents)"""
    dt: PositiveFloat = 0.1
    """Euler time step (ms)"""
    duration: PositiveFloat = 200.0
    """simulated time per iteration (ms)"""
    recurrent: bool = True
    """neuron→neuron weights besides the input weights"""
    train_sigma: bool = False
    """also train the soma–dendrite couplings σ"""
    init_noise: NonNegativeFloat = 0.05
    """the student starts from the teacher's weights × (1 + init_noise·N(0,1)); 0: random weights"""
    dtype: Literal["float32", "float64"] = "float64"
    """float32 or float64"""


class AdjointLearning(Section):
    """Gradients by the discrete adjoint of the forward-Euler solve (a reverse-time solve)."""

    rule: Literal["adjoint"] = "adjoint"
    """how gradients are computed"""


class TeacherData(Section):
    """Somatic voltage traces of a teacher network with its own random weights, under random smooth inputs."""

    type: Literal["teacher"] = "teacher"
    """the dataset"""
    seed: NonNegativeInt = 0
    """the teacher's weights and inputs"""
    n_valid: NonNegativeInt = Field(0, json_schema_extra=ID_WHEN_SET)
    """held-out inputs for validation, drawn after the task (which stays as without them), each as long as model.duration, with the teacher's traces under them; used with training.validate_every"""


class DendriticAdjointTrainer(GradientTrainer):
    def __init__(self, config):
        super().__init__(config)
        from ..kernels import dendritic

        self.kernel = dendritic
        self.kcfg = kernel_config(dendritic.DendriticConfig, config.model)
        rng = np.random.default_rng(config.dataset.seed)
        self.task = dendritic.make_task(self.kcfg, rng)
        teacher = {k[8:]: v for k, v in self.task.items() if k.startswith("teacher/")}
        self.valid = []
        for _ in range(config.dataset.n_valid):
            inputs = dendritic.make_inputs(self.kcfg, rng)
            v_soma = dendritic.forward(teacher, {"inputs": inputs}, self.kcfg).v_soma
            self.valid.append({**self.task, "inputs": inputs, "targets": np.ascontiguousarray(v_soma)})

    def init_state(self) -> TrainState:
        rng = np.random.default_rng(self.seeds()[0])
        noise = self.config.model.init_noise
        if noise > 0:
            params = {}
            for name in self.kernel.param_names(self.kcfg):
                w = self.task[f"teacher/{name}"]
                params[name] = (w * (1.0 + noise * rng.standard_normal(w.shape))).astype(w.dtype)
        else:
            params = self.kernel.init_params(self.kcfg, rng)
        return self.new_state(params)

    def step(self, state: TrainState) -> dict[str, float]:
        params, _ = self.split(state)
        loss, grads = self.kernel.loss_and_grad(params, self.task, self.kcfg)
        self.apply_gradients(state, grads)
        return {"loss": loss}

    def validate(self, state: TrainState) -> dict[str, float]:
        if not self.valid:
            raise ValueError("dataset 'teacher' has no held-out inputs: set dataset.n_valid")
        params, _ = self.split(state)
        res = [self.kernel.evaluate(params, task, self.kcfg) for task in self.valid]
        return {"valid_loss": float(np.mean([r["loss"] for r in res])),
                "valid_correlation": float(np.mean([r["correlation"] for r in res]))}

    def evaluate(self, state: TrainState) -> dict[str, float]:
        params, _ = self.split(state)
        res = self.kernel.evaluate(params, self.task, self.kcfg)
        return {"test_loss": res["loss"], "correlation": res["correlation"], "rate_hz": res["rate_hz"]}


# The teacher's traces depend on the student's model section too: the trainer builds them.
TEACHER = Dataset(TeacherData, build=None, kind="teacher",
                  description="voltage traces of a random teacher network of the model's own shape")

ALGORITHM = Algorithm(
    model=DendriticModel,
    rules=(Rule(AdjointLearning, DendriticAdjointTrainer),),
    datasets=("teacher",),
    metrics=(
        Metric("loss", "training loss (mV²)", "lower", status=True),
        Metric("valid_loss", "validation loss (mV², held-out inputs)", "lower", validation=True),
        Metric("valid_correlation", "validation correlation (held-out inputs)", "higher", status=True,
               validation=True),
        Metric("test_loss", "test loss (mV²)", "lower", final=True),
        Metric("correlation", "test correlation", "higher", status=True, final=True),
        Metric("rate_hz", "firing rate (Hz)", "higher", final=True),
    ),
    description="two-compartment dendritic neurons (seed 000), gradients by the adjoint",
)
