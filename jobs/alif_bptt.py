"""The ``alif`` algorithm: an adaptive-threshold LIF network, trained by BPTT or e-prop (seed 001)."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt

from .lif_bptt import CLASSIFIER_METRICS, BPTTLearning, EpropLearning, LIFBPTTTrainer
from .registry import ID_WHEN_SET, Algorithm, Rule, Section
from .trainer import kernel_config


class ALIFModel(Section):
    """LIF hidden layer whose threshold adapts: ϑ + adapt_jump·A, A ← ρA + S, ρ = exp(−dt/tau_adapt) (seed 001)."""

    type: Literal["alif"] = "alif"
    """the network family"""
    n_hidden: PositiveInt = 128
    """hidden neurons"""
    recurrent: bool = False
    """add recurrent hidden→hidden weights"""
    dt: PositiveFloat = 1e-3
    """time step (s)"""
    tau_syn: PositiveFloat = 5e-3
    """synaptic time constant (s)"""
    tau_mem: PositiveFloat = 10e-3
    """membrane time constant (s)"""
    tau_adapt: PositiveFloat = 100e-3
    """adaptation time constant (s): ρ = exp(−dt/tau_adapt)"""
    adapt_jump: NonNegativeFloat = 0.2
    """threshold increase per spike: the threshold is ϑ + adapt_jump·A"""
    threshold: PositiveFloat = 1.0
    """firing threshold ϑ"""
    weight_scale: PositiveFloat = 7.0
    """initial weight std = weight_scale·(1−β)/√fan-in"""
    recurrent_weight_scale: Optional[NonNegativeFloat] = Field(None, json_schema_extra=ID_WHEN_SET)
    """initial recurrent weight std = recurrent_weight_scale·(1−β)/√n_hidden; none: weight_scale, as before the key existed (0.5 recommended, see Algorithms)"""
    dtype: Literal["float32", "float64"] = "float32"
    """float32 or float64 (the arithmetic of the whole network)"""


def alif_config(trainer: LIFBPTTTrainer):
    """The kernel config of an ``alif`` model section."""
    from ..kernels import alif

    return kernel_config(alif.ALIFConfig, trainer.config.model, trainer.config.learning,
                         n_inputs=trainer.data.n_inputs, n_outputs=trainer.data.n_classes)


class ALIFBPTTTrainer(LIFBPTTTrainer):
    kernel_name = "alif"

    def kernel_config(self):
        return alif_config(self)


ALGORITHM = Algorithm(
    model=ALIFModel,
    rules=(Rule(BPTTLearning, ALIFBPTTTrainer), Rule(EpropLearning, "snnbatch.jobs.eprop:EpropTrainer")),
    datasets=("randman", "shd"),
    data_kinds=("spikes",),
    metrics=CLASSIFIER_METRICS,
    description="adaptive LIF network (seed 001), BPTT with surrogate gradients or e-prop",
)
