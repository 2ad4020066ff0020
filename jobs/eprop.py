"""LIF or adaptive LIF network trained online by e-prop on a spike dataset.

The network is the one of the ``lif`` / ``alif`` model sections; the loss is
the per-time-step readout loss of :mod:`snnbatch.kernels.eprop` (for the
training metrics and ``test_loss``), and ``test_accuracy`` classifies by
``argmax_o Σ_n log softmax(Uo[n+1])_o``. The rule is declared by the ``lif``
and ``alif`` algorithms (:mod:`snnbatch.jobs.lif_bptt`, :mod:`snnbatch.jobs.alif_bptt`).

One hidden layer with ``feedback: symmetric`` (the default) runs on
:mod:`snnbatch.kernels.eprop`; several hidden layers, or ``feedback: random``,
on :mod:`snnbatch.kernels.eprop_deep` (the output error broadcast to every
layer; for one layer and symmetric feedback the two give the same bits).
"""
from __future__ import annotations

import numpy as np

from .alif_bptt import alif_config
from .lif_bptt import LIFBPTTTrainer, layer_recurrent, layer_sizes, recurrent_given
from .trainer import kernel_config


class EpropTrainer(LIFBPTTTrainer):
    kernel_name = "eprop"
    deep_kernel_name = "eprop_deep"

    def __init__(self, config):
        if config.learning.feedback != "symmetric":  # eprop.py has the symmetric feedback only
            self.kernel_name = self.deep_kernel_name
        super().__init__(config)

    def kernel_config(self):
        if self.kernel_name == self.deep_kernel_name or self.deep:
            from ..kernels import eprop_deep

            m = self.config.model
            given = {**recurrent_given(self), "n_hidden": layer_sizes(m), "recurrent": layer_recurrent(m),
                     "feedback_seed": self.feedback_seed()}
            return kernel_config(eprop_deep.EpropDeepConfig, m, self.config.learning, **given)
        if self.config.model.type == "alif":
            return alif_config(self)
        return LIFBPTTTrainer.kernel_config(self)

    def feedback_seed(self) -> int:
        """The seed of the fixed random feedback matrices: a third stream of the task seed, apart from
        :meth:`seeds`' two (the weights' initialisation and the rest)."""
        return int(np.random.SeedSequence(self.config.seed).spawn(3)[2].generate_state(1)[0])
