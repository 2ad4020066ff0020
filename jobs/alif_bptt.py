"""Adaptive LIF network trained by surrogate-gradient BPTT on a spike dataset."""
from __future__ import annotations

from ..kernels import alif
from .lif_bptt import LIFBPTTTrainer


def alif_config(trainer: LIFBPTTTrainer) -> alif.ALIFConfig:
    """The kernel config of an ``alif`` model section: the LIF fields plus the adaptation."""
    m = trainer.config.model
    base = LIFBPTTTrainer.kernel_config(trainer)
    return alif.ALIFConfig(**base._asdict(), tau_adapt=m.tau_adapt, adapt_jump=m.adapt_jump)


class ALIFBPTTTrainer(LIFBPTTTrainer):
    kernel = alif

    def kernel_config(self) -> alif.ALIFConfig:
        return alif_config(self)
