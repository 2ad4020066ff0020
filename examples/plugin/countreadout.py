"""A single-file snnbatch plugin: a fixed random LIF layer and a softmax readout of its spike counts.

List this file in a spec (``plugins: [countreadout.py]``, relative to the spec)
and the spec can say ``model: {type: count_readout}`` and
``dataset: {type: poisson_rates}``. snnbatch imports the file and registers the
module-level lists ``ALGORITHMS`` and ``DATASETS``; the run store records the
file's path and SHA-256, and a task refuses to run if the file changed.

The network: input spikes drive a layer of discrete-time LIF neurons through
fixed random weights (drawn from the task's seed, never trained)::

    I[n+1] = α I[n] + W·x[n]          U[n+1] = β U[n] + I[n+1] − ϑ S[n]          S[n] = Θ(U[n] − ϑ)

Each neuron's spikes are counted in ``time_bins`` equal windows; the counts,
standardised with the training set's mean and deviation, are the features of
a softmax regression trained by minibatch SGD with momentum. The features
depend only on the config, so they are computed once when the trainer is
built; what evolves (readout weights, velocities, the epoch's order) lives in
the arrays that ``init_state`` returns, and the runner checkpoints them.
"""
from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

from snnbatch.jobs.registry import Algorithm, Dataset, Metric, Rule, Section
from snnbatch.jobs.trainer import Trainer, build_dataset, epoch_order, iterations_per_epoch


# ------------------------------------------------------------------ the sections


class CountReadoutModel(Section):
    """A fixed random LIF layer; its spike counts per time bin feed a trained softmax readout."""

    type: Literal["count_readout"] = "count_readout"
    n_hidden: PositiveInt = 128
    time_bins: PositiveInt = Field(1, description="count each neuron's spikes in this many equal windows")
    dt_ms: PositiveFloat = 1.0
    tau_syn_ms: PositiveFloat = 5.0
    tau_mem_ms: PositiveFloat = 10.0
    input_scale: PositiveFloat = Field(3.0, description="fixed input weights: std input_scale / sqrt(n_inputs)")


class ReadoutSGD(Section):
    """Minibatch SGD with momentum on the softmax readout (learning rate: ``training.lr``)."""

    rule: Literal["readout_sgd"] = "readout_sgd"
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    weight_decay: NonNegativeFloat = 0.0


class PoissonRates(Section):
    """Each class a random firing rate per input unit; samples are Bernoulli spike trains at those rates."""

    type: Literal["poisson_rates"] = "poisson_rates"
    n_inputs: PositiveInt = 40
    n_classes: Annotated[int, Field(ge=2)] = 3
    n_train: PositiveInt = 600
    n_test: PositiveInt = 300
    n_steps: PositiveInt = 100
    dt_ms: PositiveFloat = 1.0
    mean_rate_hz: PositiveFloat = 40.0
    contrast: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        0.5, description="class rates are mean_rate_hz · (1 + contrast · z), z uniform in [-1, 1]")
    seed: NonNegativeInt = 0


# ------------------------------------------------------------------ the dataset


def build_poisson(cfg: PoissonRates):
    """A ``spikes`` dataset (snnbatch's :class:`~snnbatch.kernels.randman.Dataset` of spike events)."""
    from snnbatch.kernels.events import from_dense
    from snnbatch.kernels.randman import Dataset as SpikeData

    rng = np.random.default_rng(cfg.seed)
    z = rng.uniform(-1.0, 1.0, (cfg.n_classes, cfg.n_inputs))
    p = np.clip(cfg.mean_rate_hz * (1.0 + cfg.contrast * z) * cfg.dt_ms / 1000.0, 0.0, 1.0)

    def draw(n):
        labels = rng.integers(0, cfg.n_classes, n)
        spikes = rng.random((n, cfg.n_steps, cfg.n_inputs)) < p[labels][:, None, :]
        return from_dense(spikes), labels.astype(np.int64)

    train, train_labels = draw(cfg.n_train)
    test, test_labels = draw(cfg.n_test)
    return SpikeData(train, train_labels, test, test_labels, cfg.n_inputs, cfg.n_classes, cfg.n_steps)


# ------------------------------------------------------------------ the network and its trainer


def dense(events, n_inputs: int) -> np.ndarray:
    """Spike events (CSR ``ptr`` of shape (samples, steps + 1), ``units``) as (samples, steps, inputs) counts."""
    ptr = np.asarray(events.ptr)
    S, T = ptr.shape[0], ptr.shape[1] - 1
    counts = np.diff(ptr, axis=1).ravel()
    cell = np.repeat(np.arange(S * T), counts)
    first = np.repeat(ptr[:, :-1].ravel(), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    out = np.zeros((S * T, n_inputs))
    np.add.at(out, (cell, np.asarray(events.units)[first + offset]), 1.0)
    return out.reshape(S, T, n_inputs)


def lif_counts(x: np.ndarray, w: np.ndarray, m: CountReadoutModel) -> np.ndarray:
    """Spike counts (samples, n_hidden · time_bins) of the fixed LIF layer driven by dense inputs ``x``."""
    S, T, _ = x.shape
    alpha, beta = math.exp(-m.dt_ms / m.tau_syn_ms), math.exp(-m.dt_ms / m.tau_mem_ms)
    drive = x @ w  # (S, T, H)
    i_syn = np.zeros((S, m.n_hidden))
    u = np.zeros((S, m.n_hidden))
    s = np.zeros((S, m.n_hidden))
    counts = np.zeros((S, m.time_bins, m.n_hidden))
    edges = np.linspace(0, T, m.time_bins + 1).astype(int)
    bin_of = np.searchsorted(edges, np.arange(T), side="right") - 1
    for n in range(T):
        i_syn = alpha * i_syn + drive[:, n]
        u = beta * u + i_syn - s
        s = (u > 1.0).astype(np.float64)
        counts[:, bin_of[n]] += s
    return counts.reshape(S, -1)


class CountReadoutTrainer(Trainer):
    """The trainer contract in full: ``__init__(config)``, ``init_state``, ``step``, ``evaluate``."""

    def __init__(self, config):
        super().__init__(config)
        m = config.model
        data = build_dataset(config.dataset)
        layer_seed, self.state_seed = self.seeds()
        w = np.random.default_rng(layer_seed).normal(0.0, m.input_scale / math.sqrt(data.n_inputs),
                                                     (data.n_inputs, m.n_hidden))
        train = lif_counts(dense(data.train_events, data.n_inputs), w, m)
        test = lif_counts(dense(data.test_events, data.n_inputs), w, m)
        mean, std = train.mean(axis=0), train.std(axis=0)
        std[std == 0] = 1.0
        self.train_f, self.test_f = (train - mean) / std, (test - mean) / std
        self.train_y, self.test_y = np.asarray(data.train_labels), np.asarray(data.test_labels)
        self.active = float((train.sum(axis=0).reshape(m.time_bins, m.n_hidden).sum(axis=0) > 0).mean())
        self.n_classes = data.n_classes
        self.batch_size = min(config.training.batch_size, len(self.train_y))
        self.iterations_per_epoch = iterations_per_epoch(len(self.train_y), self.batch_size)

    def init_state(self):
        n_features = self.train_f.shape[1]
        arrays = {"w": np.zeros((n_features, self.n_classes)), "bias": np.zeros(self.n_classes),
                  "velocity/w": np.zeros((n_features, self.n_classes)), "velocity/bias": np.zeros(self.n_classes)}
        return arrays, np.random.default_rng(self.state_seed)

    @staticmethod
    def _forward(a, f, y):
        logits = f @ a["w"] + a["bias"]
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = float(-np.log(p[rows, y]).mean())
        others = logits.copy()
        others[rows, y] = -np.inf
        margin = float((logits[rows, y] - others.max(axis=1)).mean())
        return p, loss, float((logits.argmax(axis=1) == y).mean()), margin

    def step(self, state):
        index = epoch_order(state, len(self.train_y), self.batch_size)
        f, y, a = self.train_f[index], self.train_y[index], state.arrays
        p, loss, acc, margin = self._forward(a, f, y)
        p[np.arange(len(y)), y] -= 1.0
        p /= len(y)
        learning, lr = self.config.learning, self.config.training.lr
        grads = {"w": f.T @ p + learning.weight_decay * a["w"], "bias": p.sum(axis=0)}
        for name, g in grads.items():
            v = a[f"velocity/{name}"]
            v *= learning.momentum
            v += g
            a[name] -= lr * v
        return {"loss": loss, "accuracy": acc, "margin": margin}

    def evaluate(self, state):
        _, loss, acc, margin = self._forward(state.arrays, self.test_f, self.test_y)
        return {"test_loss": loss, "test_accuracy": acc, "test_margin": margin, "active_fraction": self.active}


ALGORITHMS = [
    Algorithm(
        model=CountReadoutModel,
        rules=(Rule(ReadoutSGD, CountReadoutTrainer),),
        datasets=("poisson_rates", "randman"),
        data_kinds=("spikes",),
        metrics=(
            Metric("loss", "training loss (cross-entropy)", "lower", status=True),
            Metric("accuracy", "training accuracy", "higher"),
            Metric("margin", "logit margin of the true class", "higher", status=True),
            Metric("test_loss", "test loss (cross-entropy)", "lower", final=True),
            Metric("test_accuracy", "test accuracy", "higher", status=True, final=True),
            Metric("test_margin", "logit margin of the true class on the test set", "higher", final=True),
            Metric("active_fraction", "fraction of the fixed layer's neurons that ever spike", "higher"),
        ),
        description="softmax readout of a fixed random LIF layer's spike counts, SGD with momentum (countreadout.py)",
    )
]

DATASETS = [
    Dataset(PoissonRates, build=build_poisson, kind="spikes",
            description="a random firing rate per class and input unit, Bernoulli spike trains (countreadout.py)"),
]
