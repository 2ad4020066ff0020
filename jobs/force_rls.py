"""The ``force`` algorithm: a recurrent LIF network whose plastic synapses are trained by RLS / FORCE (seed 002).

Each neuron's synaptic current is trained to follow its own target (seed 002's
benchmark: sinusoids of one frequency with random phases). One iteration is
one pass over the target interval with RLS updates; the quality figure is the
correlation between target and learned currents without learning.
"""
from __future__ import annotations

from typing import Literal, Optional

import numpy as np
from pydantic import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from .registry import Algorithm, Dataset, Metric, Rule, Section
from .trainer import Trainer, TrainState, kernel_config


class ForceModel(Section):
    """Recurrent LIF network, static balanced connections plus plastic ones trained by RLS (seed 002).

    Times in ms. ``packed`` stores each neuron's inverse covariance as a packed symmetric matrix.
    """

    type: Literal["force"] = "force"
    """the network family"""
    n_neurons: PositiveInt = 200
    """LIF neurons"""
    n_static: PositiveInt = 80
    """static presynaptic partners per neuron (balanced, half excitatory)"""
    n_plastic: PositiveInt = 40
    """plastic presynaptic partners per neuron, trained by RLS"""
    dt: PositiveFloat = 0.1
    """time step (ms)"""
    duration: PositiveFloat = 1000.0
    """the target interval (ms)"""
    warmup: NonNegativeFloat = 100.0
    """teacher-forced start of each interval (ms)"""
    tau_mem: PositiveFloat = 10.0
    """membrane time constant (ms)"""
    tau_syn: PositiveFloat = 3.0
    """static synapses' time constant (ms)"""
    tau_plastic: PositiveFloat = 150.0
    """plastic synapses' and the RLS traces' time constant (ms)"""
    packed: bool = True
    """store each neuron's inverse covariance as a packed symmetric matrix (half the memory)"""
    dtype: Literal["float32", "float64"] = "float32"
    """float32 or float64"""


class RLSLearning(Section):
    """Recursive least squares on each neuron's own inverse covariance (FORCE)."""

    rule: Literal["rls"] = "rls"
    """how the plastic weights are trained"""
    lam: PositiveFloat = 0.1
    """RLS regulariser: P starts as I/lam"""
    learn_every: PositiveInt = 100
    """steps between RLS updates"""


class SinusoidData(Section):
    """Target currents offset_i + amp·sin(2π·freq·t + φ_i), random phases φ_i (seed 002's benchmark).

    ``offset``: one value for every neuron, or (the default) each neuron's mean current in the
    untrained network.
    """

    type: Literal["sinusoids"] = "sinusoids"
    """the dataset"""
    freq: PositiveFloat = 1.0
    """target frequency (Hz)"""
    amp: PositiveFloat = 0.5
    """target amplitude"""
    offset: Optional[float] = None
    """one offset for every neuron; none: each neuron's mean current in the untrained network"""
    seed: NonNegativeInt = 0
    """the targets' random phases"""


class ForceRLSTrainer(Trainer):
    def __init__(self, config):
        super().__init__(config)
        from ..kernels import force

        self.kernel = force
        d = config.dataset
        self.kcfg = kernel_config(force.ForceConfig, config.model, config.learning,
                                  target_freq=d.freq, target_amp=d.amp)
        # targets: random phases from the dataset seed; offsets from the untrained network's mean
        # currents (a function of the task seed), so a resumed task rebuilds the very same targets
        offset = force.innate_current(self._initial_network(), self.kcfg) if d.offset is None else d.offset
        self.targets = force.make_targets(self.kcfg, np.random.default_rng(d.seed), offset=offset)

    def _initial_network(self) -> dict[str, np.ndarray]:
        return self.kernel.init_state(self.kcfg, np.random.default_rng(self.seeds()[0]))

    def init_state(self) -> TrainState:
        net = self._initial_network()
        return TrainState(0, {f"net/{k}": v for k, v in net.items()}, np.random.default_rng(self.seeds()[1]))

    def _net(self, state):
        return {k[4:]: v for k, v in state.arrays.items() if k.startswith("net/")}

    def step(self, state: TrainState) -> dict[str, float]:
        metrics = self.kernel.train_iteration(self._net(state), self.targets, self.kcfg)
        return {"loss": metrics["mse"], "train_correlation": metrics["correlation"], "rate_hz_train": metrics["rate_hz"]}

    def evaluate(self, state: TrainState) -> dict[str, float]:
        res = self.kernel.evaluate(self._net(state), self.targets, self.kcfg)
        return {"test_loss": res["mse"], "correlation": res["correlation"], "rate_hz": res["rate_hz"]}


# The targets depend on the network (its untrained mean currents): the trainer builds them.
SINUSOIDS = Dataset(SinusoidData, build=None, kind="targets",
                    description="sinusoidal target currents with random phases, one per neuron")

ALGORITHM = Algorithm(
    model=ForceModel,
    rules=(Rule(RLSLearning, ForceRLSTrainer),),
    datasets=("sinusoids",),
    metrics=(
        Metric("loss", "training loss (MSE)", "lower", status=True),
        Metric("train_correlation", "training correlation", "higher"),
        Metric("rate_hz_train", "training firing rate (Hz)", "higher"),
        Metric("test_loss", "test loss (MSE)", "lower", final=True),
        Metric("correlation", "test correlation", "higher", status=True, final=True),
        Metric("rate_hz", "firing rate (Hz)", "higher", final=True),
    ),
    description="recurrent LIF network trained by recursive least squares (FORCE, seed 002)",
)
