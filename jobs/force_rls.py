"""Recurrent LIF network whose plastic synapses are trained by RLS / FORCE (seed 002).

Each neuron's synaptic current is trained to follow its own target (seed 002's
benchmark: sinusoids of one frequency with random phases). One iteration is
one pass over the target interval with RLS updates; the quality figure is the
correlation between target and learned currents without learning.
"""
from __future__ import annotations

import numpy as np

from ..kernels import force
from .trainer import Trainer, TrainState


class ForceRLSTrainer(Trainer):
    def __init__(self, config):
        super().__init__(config)
        m, lr, d = config.model, config.learning, config.dataset
        self.kcfg = force.ForceConfig(
            n_neurons=m.n_neurons, n_static=m.n_static, n_plastic=m.n_plastic, dt=m.dt, duration=m.duration,
            warmup=m.warmup, tau_mem=m.tau_mem, tau_syn=m.tau_syn, tau_plastic=m.tau_plastic, packed=m.packed,
            dtype=m.dtype, lam=lr.lam, learn_every=lr.learn_every, target_freq=d.freq, target_amp=d.amp,
        )
        t = config.training
        self.total_iterations = t.iterations if t.iterations is not None else (t.epochs or 1)
        # targets: random phases from the dataset seed; offsets from the untrained network's mean
        # currents (a function of the task seed), so a resumed task rebuilds the very same targets
        offset = force.innate_current(self._initial_network(), self.kcfg) if d.offset is None else d.offset
        self.targets = force.make_targets(self.kcfg, np.random.default_rng(d.seed), offset=offset)

    def _seeds(self):
        return np.random.SeedSequence(self.config.seed).spawn(2)

    def _initial_network(self) -> dict[str, np.ndarray]:
        return force.init_state(self.kcfg, np.random.default_rng(self._seeds()[0]))

    def init_state(self) -> TrainState:
        net = self._initial_network()
        return TrainState(0, {f"net/{k}": v for k, v in net.items()}, np.random.default_rng(self._seeds()[1]))

    def _net(self, state):
        return {k[4:]: v for k, v in state.arrays.items() if k.startswith("net/")}

    def step(self, state: TrainState) -> dict[str, float]:
        metrics = force.train_iteration(self._net(state), self.targets, self.kcfg)
        state.iteration += 1
        return {"loss": metrics["mse"], "train_correlation": metrics["correlation"], "rate_hz_train": metrics["rate_hz"]}

    def evaluate(self, state: TrainState) -> dict[str, float]:
        res = force.evaluate(self._net(state), self.targets, self.kcfg)
        return {"test_loss": res["mse"], "correlation": res["correlation"], "rate_hz": res["rate_hz"]}
