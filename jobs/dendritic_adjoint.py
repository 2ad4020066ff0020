"""Two-compartment dendritic network trained by adjoint sensitivity analysis (seed 000).

The task: reproduce a teacher network's somatic voltage traces under the same
input (``dataset: {type: teacher}``). The student starts from the teacher's
weights perturbed by ``model.init_noise`` (relative), or from a fresh random
network when it is 0. One iteration is one forward solve, one reverse
(adjoint) solve and one optimizer step.
"""
from __future__ import annotations

import numpy as np

from ..kernels import dendritic
from .trainer import GradientTrainer, TrainState


class DendriticAdjointTrainer(GradientTrainer):
    def __init__(self, config):
        super().__init__(config)
        m = config.model
        self.kcfg = dendritic.DendriticConfig(
            n_neurons=m.n_neurons,
            n_inputs=m.n_inputs,
            dt=m.dt,
            duration=m.duration,
            recurrent=m.recurrent,
            train_sigma=m.train_sigma,
            dtype=m.dtype,
        )
        self.task = dendritic.make_task(self.kcfg, np.random.default_rng(config.dataset.seed))
        t = config.training
        self.total_iterations = t.iterations if t.iterations is not None else (t.epochs or 1)

    def init_state(self) -> TrainState:
        rng = np.random.default_rng(self.seeds()[0])
        noise = self.config.model.init_noise
        if noise > 0:
            params = {}
            for name in dendritic.param_names(self.kcfg):
                w = self.task[f"teacher/{name}"]
                params[name] = (w * (1.0 + noise * rng.standard_normal(w.shape))).astype(w.dtype)
        else:
            params = dendritic.init_params(self.kcfg, rng)
        return self.new_state(params)

    def step(self, state: TrainState) -> dict[str, float]:
        params, _ = self.split(state)
        loss, grads = dendritic.loss_and_grad(params, self.task, self.kcfg)
        self.apply_gradients(state, grads)
        return {"loss": loss}

    def evaluate(self, state: TrainState) -> dict[str, float]:
        params, _ = self.split(state)
        res = dendritic.evaluate(params, self.task, self.kcfg)
        return {"test_loss": res["loss"], "correlation": res["correlation"], "rate_hz": res["rate_hz"]}
