"""The trainer of ``izhikevich``: minibatches of a spike dataset, BPTT, the optimizer of ``training``.

All evolving state is in the arrays of :meth:`init_state` (``params/*``, the
optimizer's ``opt/*``, the epoch's ``data_order``) and its Generator, so the
runner checkpoints and resumes it bit for bit without a line of code here.
"""
from __future__ import annotations

import numpy as np

from snnbatch.jobs.trainer import GradientTrainer, build_dataset, epoch_order, iterations_per_epoch, kernel_config

from . import network


class IzhikevichTrainer(GradientTrainer):
    def __init__(self, config):
        super().__init__(config)
        data = build_dataset(config.dataset)  # every dataset of kind "spikes": events and labels
        self.train_x = network.dense(data.train_events, data.n_inputs)
        self.train_y = np.asarray(data.train_labels)
        self.test_x = network.dense(data.test_events, data.n_inputs)
        self.test_y = np.asarray(data.test_labels)
        self.net = kernel_config(network.NetworkConfig, config.model, config.learning,
                                 n_inputs=data.n_inputs, n_outputs=data.n_classes)
        self.n_train = len(self.train_y)
        self.batch_size = min(config.training.batch_size, self.n_train)
        self.iterations_per_epoch = iterations_per_epoch(self.n_train, self.batch_size)

    def init_state(self):
        return self.new_state(network.init_params(self.net, np.random.default_rng(self.seeds()[0])))

    def step(self, state):
        index = epoch_order(state, self.n_train, self.batch_size)
        params, _ = self.split(state)
        loss, acc, rate, grads = network.loss_and_grad(params, self.train_x[index], self.train_y[index], self.net)
        self.apply_gradients(state, grads)
        return {"loss": loss, "accuracy": acc, "rate_hz": rate}

    def evaluate(self, state):
        params, _ = self.split(state)
        res = network.evaluate(params, self.test_x, self.test_y, self.net)
        return {"test_loss": res["loss"], "test_accuracy": res["accuracy"], "test_rate_hz": res["rate_hz"]}
