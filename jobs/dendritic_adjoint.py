"""The ``dendritic`` algorithm: two-compartment neurons trained by adjoint sensitivity analysis (seed 000).

The task: reproduce a teacher network's somatic voltage traces under the same
input (``dataset: {type: teacher}``). The student starts from the teacher's
weights perturbed by ``model.init_noise`` (relative), or from a fresh random
network when it is 0. One iteration is one forward solve, one reverse
(adjoint) solve and one optimizer step.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from .registry import Algorithm, Dataset, Metric, Rule, Section
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


class DendriticAdjointTrainer(GradientTrainer):
    def __init__(self, config):
        super().__init__(config)
        from ..kernels import dendritic

        self.kernel = dendritic
        self.kcfg = kernel_config(dendritic.DendriticConfig, config.model)
        self.task = dendritic.make_task(self.kcfg, np.random.default_rng(config.dataset.seed))

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
        Metric("test_loss", "test loss (mV²)", "lower", final=True),
        Metric("correlation", "test correlation", "higher", status=True, final=True),
        Metric("rate_hz", "firing rate (Hz)", "higher", final=True),
    ),
    description="two-compartment dendritic neurons (seed 000), gradients by the adjoint",
)
