"""The ``alif`` algorithm: an adaptive-threshold LIF network, trained by BPTT or e-prop (seed 001)."""
from __future__ import annotations

from typing import Literal

from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt

from .lif_bptt import CLASSIFIER_METRICS, BPTTLearning, EpropLearning, LIFBPTTTrainer
from .registry import Algorithm, Rule, Section
from .trainer import kernel_config


class ALIFModel(Section):
    """LIF hidden layer whose threshold adapts: ϑ + adapt_jump·A, A ← ρA + S, ρ = exp(−dt/tau_adapt) (seed 001)."""

    type: Literal["alif"] = "alif"
    n_hidden: PositiveInt = 128
    recurrent: bool = False
    dt: PositiveFloat = 1e-3
    tau_syn: PositiveFloat = 5e-3
    tau_mem: PositiveFloat = 10e-3
    tau_adapt: PositiveFloat = 100e-3
    adapt_jump: NonNegativeFloat = 0.2
    threshold: PositiveFloat = 1.0
    weight_scale: PositiveFloat = 7.0
    dtype: Literal["float32", "float64"] = "float32"


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
