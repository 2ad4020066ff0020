"""LIF or adaptive LIF network trained online by e-prop on a spike dataset.

The network is the one of the ``lif`` / ``alif`` model sections; the loss is
the per-time-step readout loss of :mod:`snnbatch.kernels.eprop` (for the
training metrics and ``test_loss``), and ``test_accuracy`` classifies by
``argmax_o Σ_n log softmax(Uo[n+1])_o``. The rule is declared by the ``lif``
and ``alif`` algorithms (:mod:`snnbatch.jobs.lif_bptt`, :mod:`snnbatch.jobs.alif_bptt`).
"""
from __future__ import annotations

from .alif_bptt import alif_config
from .lif_bptt import LIFBPTTTrainer


class EpropTrainer(LIFBPTTTrainer):
    kernel_name = "eprop"
    deep_kernel_name = "eprop_deep"

    def kernel_config(self):
        if self.config.model.type == "alif":
            return alif_config(self)
        return LIFBPTTTrainer.kernel_config(self)
