"""The ``alif`` algorithm: an adaptive-threshold LIF network, trained by BPTT or e-prop (seed 001)."""
from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeFloat, PositiveFloat

from .lif_bptt import (CLASSIFIER_METRICS, BPTTLearning, EpropLearning, LIFBPTTTrainer, LIFModel, layer_sizes,
                       recurrent_given)
from .registry import Algorithm, Rule
from .trainer import kernel_config


class ALIFModel(LIFModel):
    """LIF hidden layer whose threshold adapts: ϑ + adapt_jump·A, A ← ρA + S, ρ = exp(−dt/tau_adapt) (seed 001).

    Every key of ``lif``'s model, and the adaptation's two.
    """

    type: Literal["alif"] = "alif"
    """the network family"""
    tau_adapt: PositiveFloat = 100e-3
    """adaptation time constant (s): ρ = exp(−dt/tau_adapt)"""
    adapt_jump: NonNegativeFloat = 0.2
    """threshold increase per spike: the threshold is ϑ + adapt_jump·A"""


def alif_config(trainer: LIFBPTTTrainer):
    """The kernel config of an ``alif`` model section."""
    from ..kernels import alif, deep

    cls = deep.DeepALIFConfig if len(layer_sizes(trainer.config.model)) > 1 else alif.ALIFConfig
    return kernel_config(cls, trainer.config.model, trainer.config.learning, **recurrent_given(trainer))


class ALIFBPTTTrainer(LIFBPTTTrainer):
    kernel_name = "alif"

    def kernel_config(self):
        return alif_config(self)


ALGORITHM = Algorithm(
    model=ALIFModel,
    rules=(Rule(BPTTLearning, ALIFBPTTTrainer), Rule(EpropLearning, "snnbatch.jobs.eprop:EpropTrainer")),
    datasets=("randman", "shd"),
    data_kinds=("spikes", "dense"),
    metrics=CLASSIFIER_METRICS,
    description="adaptive LIF network (seed 001), BPTT with surrogate gradients or e-prop",
)
