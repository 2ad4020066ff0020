"""LIF network trained by surrogate-gradient BPTT on a spike dataset."""
from __future__ import annotations

import numpy as np

from ..kernels import lif, optim
from . import datasets
from .trainer import Trainer, TrainState, epoch_order, iterations_per_epoch


class LIFBPTTTrainer(Trainer):
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
        self.opt_init, self.opt_step = optim.OPTIMIZERS[t.optimizer]

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
        seeds = np.random.SeedSequence(self.config.seed).spawn(2)
        params = self.kernel.init_params(self.kcfg, np.random.default_rng(seeds[0]))
        opt = self.opt_init(params)
        arrays = {f"params/{k}": v for k, v in params.items()}
        arrays.update({f"opt/{k}": v for k, v in opt.items()})
        return TrainState(0, arrays, np.random.default_rng(seeds[1]))

    def _split(self, state):
        params = {k[7:]: v for k, v in state.arrays.items() if k.startswith("params/")}
        opt = {k[4:]: v for k, v in state.arrays.items() if k.startswith("opt/")}
        return params, opt

    def step(self, state: TrainState) -> dict[str, float]:
        index = epoch_order(state, self.n_train, self.batch_size)
        params, opt = self._split(state)
        loss, acc, grads = self.kernel.loss_acc_grad(params, self.data.train_events, self.data.train_labels, self.kcfg, index)
        t = self.config.training
        if t.optimizer == "adam":
            self.opt_step(params, grads, opt, t.lr, t.beta1, t.beta2)
        else:
            self.opt_step(params, grads, opt, t.lr)
        state.iteration += 1
        return {"loss": loss, "accuracy": acc}

    def evaluate(self, state: TrainState) -> dict[str, float]:
        params, _ = self._split(state)
        res = self.kernel.evaluate(params, self.data.test_events, self.data.test_labels, self.kcfg)
        return {"test_loss": res["loss"], "test_accuracy": res["accuracy"]}
