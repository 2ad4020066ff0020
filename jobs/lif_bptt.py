"""LIF network trained by surrogate-gradient BPTT on a spike dataset."""
from __future__ import annotations

import numpy as np

from ..kernels import lif
from . import datasets
from .trainer import GradientTrainer, TrainState, epoch_order, iterations_per_epoch


class LIFBPTTTrainer(GradientTrainer):
    """Minibatch training of a network kernel; subclasses change ``kernel`` and :meth:`kernel_config`.

    ``kernel`` is a module with ``init_params``, ``loss_acc_grad`` and ``evaluate``
    (lif, alif, eprop).
    """

    kernel = lif

    def __init__(self, config):
        super().__init__(config)
        self.data = datasets.build(config.dataset)
        self.kcfg = self.kernel_config()
        t = config.training
        self.n_train = len(self.data.train_labels)
        self.batch_size = min(t.batch_size, self.n_train)
        per_epoch = iterations_per_epoch(self.n_train, self.batch_size)
        self.total_iterations = t.iterations if t.iterations is not None else (t.epochs or 1) * per_epoch

    def kernel_config(self) -> lif.LIFConfig:
        m, lr = self.config.model, self.config.learning
        return lif.LIFConfig(
            n_inputs=self.data.n_inputs,
            n_hidden=m.n_hidden,
            n_outputs=self.data.n_classes,
            dt=m.dt,
            tau_syn=m.tau_syn,
            tau_mem=m.tau_mem,
            threshold=m.threshold,
            recurrent=m.recurrent,
            surrogate_scale=lr.surrogate_scale,
            detach_reset=lr.detach_reset,
            weight_scale=m.weight_scale,
            dtype=m.dtype,
        )

    def init_state(self) -> TrainState:
        return self.new_state(self.kernel.init_params(self.kcfg, np.random.default_rng(self.seeds()[0])))

    def step(self, state: TrainState) -> dict[str, float]:
        index = epoch_order(state, self.n_train, self.batch_size)
        params, _ = self.split(state)
        loss, acc, grads = self.kernel.loss_acc_grad(params, self.data.train_events, self.data.train_labels, self.kcfg, index)
        self.apply_gradients(state, grads)
        return {"loss": loss, "accuracy": acc}

    def evaluate(self, state: TrainState) -> dict[str, float]:
        params, _ = self.split(state)
        res = self.kernel.evaluate(params, self.data.test_events, self.data.test_labels, self.kcfg)
        return {"test_loss": res["loss"], "test_accuracy": res["accuracy"]}
