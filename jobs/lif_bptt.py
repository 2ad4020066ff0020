"""The ``lif`` algorithm: a LIF network trained by surrogate-gradient BPTT (or e-prop) on spikes.

Its declaration (:data:`ALGORITHM`) is registered through the ``snnbatch.algorithms``
entry point in snnbatch's own ``pyproject.toml``, exactly as a plugin's would be.
"""
from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Literal, Optional, Union

import numpy as np
from pydantic import (Field, NonNegativeFloat, PositiveFloat, PositiveInt, TypeAdapter, ValidationError,
                      ValidationInfo, field_validator, model_validator)

from .registry import ID_WHEN_SET, Algorithm, Metric, Rule, Section
from .trainer import GradientTrainer, TrainState, build_dataset, epoch_order, iterations_per_epoch, kernel_config


# The defaults of a recurrent network (``auto``), chosen by measurement: README, Recurrent networks
RECURRENT_WEIGHT_SCALE = 0.5
RECURRENT_LR_SCALE = 0.1


_BOOL = TypeAdapter(bool)  # built once: planning validates one config per task
_POSITIVE_INT = TypeAdapter(PositiveInt)


def _layers_of(value, adapter: TypeAdapter, what: str):
    """A per-layer key's value checked and normalised: a scalar, or a list of two or more (``[x]`` is ``x``)."""
    def one(v, where=""):
        try:
            return adapter.validate_python(v)
        except ValidationError:
            raise ValueError(f"{where}expected {what}, got {v!r}") from None

    if not isinstance(value, (list, tuple)):
        return one(value)
    if not value:
        raise ValueError(f"expected {what} or a list of them (one per layer), got []")
    out = [one(v, f"entry {i}: " if len(value) > 1 else "") for i, v in enumerate(value)]
    return out[0] if len(out) == 1 else out


def layer_sizes(model) -> tuple[int, ...]:
    """The hidden layers' sizes, input side first: ``(128,)`` for ``n_hidden: 128``."""
    n = model.n_hidden
    return tuple(int(h) for h in n) if isinstance(n, (list, tuple)) else (int(n),)


def layer_recurrent(model) -> tuple[bool, ...]:
    """Per hidden layer, whether it has recurrent weights (as long as :func:`layer_sizes`)."""
    r = model.recurrent
    if isinstance(r, (list, tuple)):
        return tuple(bool(v) for v in r)
    return (bool(r),) * len(layer_sizes(model))


def recurrent_names(model) -> tuple[str, ...]:
    """The names of the recurrent weight matrices: ``w_rec`` (layer 0), ``w_rec1``, ``w_rec2``, ..."""
    return tuple("w_rec" if k == 0 else f"w_rec{k}" for k, rec in enumerate(layer_recurrent(model)) if rec)


class LIFModel(Section):
    """Discrete-time LIF hidden layer with current synapses and a leaky readout (seed 004)."""

    type: Literal["lif"] = "lif"
    """the network family"""
    n_hidden: Union[PositiveInt, list[PositiveInt]] = 128
    """hidden neurons; a list: one hidden layer each, input side first ([256, 256]: two layers)"""
    recurrent: Union[bool, list[bool]] = False
    """add recurrent hidden→hidden weights; a list: per hidden layer (one entry per layer of n_hidden)"""
    dt: PositiveFloat = 1e-3
    """time step (s)"""
    tau_syn: PositiveFloat = 5e-3
    """synaptic time constant (s)"""
    tau_mem: PositiveFloat = 10e-3
    """membrane time constant (s)"""
    threshold: PositiveFloat = 1.0
    """firing threshold ϑ"""
    weight_scale: PositiveFloat = 7.0
    """initial weight std = weight_scale·(1−β)/√fan-in"""
    recurrent_weight_scale: Union[Literal["auto"], NonNegativeFloat, None] = Field("auto", json_schema_extra=ID_WHEN_SET)
    """initial recurrent weight std = recurrent_weight_scale·(1−β)/√n_hidden; auto: 0.5 in a recurrent network; none: weight_scale (7), the initialisation before the key existed"""
    recurrent_lr_scale: Union[Literal["auto"], NonNegativeFloat] = Field("auto", json_schema_extra=ID_WHEN_SET)
    """the recurrent weights' learning rate, relative to training.lr; auto: 0.1 in a recurrent network, 1 where recurrent_weight_scale is none (as before the key existed)"""
    dtype: Literal["float32", "float64"] = "float32"
    """float32 or float64 (the arithmetic of the whole network)"""

    @field_validator("n_hidden", mode="before")
    @classmethod
    def _layer_sizes(cls, value):
        """``[128]`` is ``128`` (before the task id is computed, so it keeps the id and bits of ``128``)."""
        return _layers_of(value, _POSITIVE_INT, "a positive integer")

    @field_validator("recurrent", mode="before")
    @classmethod
    def _layer_recurrent(cls, value, info: ValidationInfo):
        """``[true]`` is ``true``; a list has one entry per hidden layer."""
        value = _layers_of(value, _BOOL, "true or false")
        sizes = info.data.get("n_hidden")
        if isinstance(value, list) and sizes is not None:
            n = len(sizes) if isinstance(sizes, list) else 1
            if len(value) != n:
                raise ValueError(f"expected one entry per hidden layer: n_hidden has {n} layer"
                                 f"{'s' if n > 1 else ''}, recurrent has {len(value)} entries (a single "
                                 "true or false applies to every layer; where a sweep sets n_hidden, "
                                 "model.n_hidden needs a value of that depth too)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _recurrent_defaults(cls, data):
        """A recurrent network's ``auto`` keys become numbers, so that the task id names them.

        Specs written before these keys existed mean, for a recurrent network, the old
        initialisation and learning rate; written again now they mean the new defaults,
        and the numbers in the id give them new ids (README: Recurrent networks). A stored
        config of such a task holds ``recurrent_weight_scale: null``, which keeps the old
        learning rate: the task resumes with the bits it started with.
        """
        if not isinstance(data, dict):
            return data
        try:
            given = data.get("recurrent", False)
            layers = given if isinstance(given, (list, tuple)) else [given]
            if not any(_BOOL.validate_python(v) for v in layers):
                return data  # no layer is recurrent
        except ValidationError:
            return data  # the field's own validation names the error
        data = dict(data)
        if data.get("recurrent_weight_scale", "auto") == "auto":
            data["recurrent_weight_scale"] = RECURRENT_WEIGHT_SCALE
        if data.get("recurrent_lr_scale", "auto") == "auto":
            data["recurrent_lr_scale"] = 1.0 if data["recurrent_weight_scale"] is None else RECURRENT_LR_SCALE
        return data


class BPTTLearning(Section):
    """Surrogate-gradient backpropagation through time."""

    rule: Literal["bptt"] = "bptt"
    """how gradients are computed"""
    surrogate_scale: PositiveFloat = 100.0
    """steepness of the fast-sigmoid surrogate 1/(scale·|U−ϑ|+1)²"""
    detach_reset: bool = True
    """no gradient through the reset"""
    readout: Literal["max", "mean", "last", "per_step", "count", "mse"] = Field("max", json_schema_extra=ID_WHEN_SET)
    """what the cross-entropy loss and the prediction see of the output voltages: max, mean or last over time, per_step (the loss of every step), count (the hidden spike counts weighted by w_out); mse: regression to the target trajectories of an array_files dataset"""
    surrogate_cutoff: NonNegativeFloat = Field(0.0, le=1.0, json_schema_extra=ID_WHEN_SET)
    """sparse backward (Perez-Nieves & Goodman 2021): surrogate derivatives below this count as zero, so dL/dS is computed only for neurons near threshold; 0: the exact gradient (σ' is at most 1)"""

    activity_upper: NonNegativeFloat = Field(10.0, json_schema_extra=ID_WHEN_SET)
    """activity penalty, upper bound θ_u: a hidden neuron's spike count per sample above which the training loss adds activity_upper_strength·(count − θ_u)²"""
    activity_upper_strength: NonNegativeFloat = Field(0.0, json_schema_extra=ID_WHEN_SET)
    """λ_u of the upper activity penalty, per neuron and sample (mean over samples, sum over hidden neurons); 0: off"""
    activity_lower: NonNegativeFloat = Field(1.0, json_schema_extra=ID_WHEN_SET)
    """activity penalty, lower bound θ_l: a hidden neuron's spike count per sample below which the training loss adds activity_lower_strength·(θ_l − count)²"""
    activity_lower_strength: NonNegativeFloat = Field(0.0, json_schema_extra=ID_WHEN_SET)
    """λ_l of the lower activity penalty, per neuron and sample (mean over samples, sum over hidden neurons); 0: off"""

    def config_problems(self, config) -> list[tuple[str, str]]:
        """(key path, message): what of the model this rule cannot train."""
        problems = []
        if self.activity_upper_strength > 0 and self.activity_lower_strength > 0 \
                and self.activity_lower > self.activity_upper:
            problems.append(("learning.activity_lower", f"{self.activity_lower:g} is above activity_upper "
                                                        f"({self.activity_upper:g}): no spike count is within both "
                                                        "bounds"))
        return problems


class EpropLearning(Section):
    """Online e-prop (diagonal RTRL): eligibility traces forward in time, memory independent of T.

    Trains on a per-time-step readout loss (see ``snnbatch.kernels.eprop``);
    exact for networks without recurrent weights, an approximation (explicit
    recurrence ignored) with them. A network of several hidden layers learns
    with the output error broadcast to every layer (``snnbatch.kernels.eprop_deep``).
    """

    rule: Literal["eprop"] = "eprop"
    """how gradients are computed"""
    surrogate_scale: PositiveFloat = 100.0
    """steepness of the fast-sigmoid surrogate 1/(scale·|U−ϑ|+1)²"""
    detach_reset: bool = True
    """no gradient through the reset"""
    feedback: Literal["symmetric", "random"] = Field("symmetric", json_schema_extra=ID_WHEN_SET)
    """how the output error reaches the hidden neurons: symmetric: through w_out to the last hidden layer and through fixed random matrices (drawn from the task seed) to the layers below it; random: fixed random matrices for every layer"""


# What a spiking classifier reports: the training metrics of each step, the test metrics at the end.
CLASSIFIER_METRICS = (
    Metric("loss", "training loss (cross-entropy; readout mse: mean squared error; plus BPTT's activity "
           "penalty when it is on)", "lower", status=True),
    Metric("accuracy", "training accuracy (none with readout mse)", "higher", status=True),
    Metric("valid_loss", "validation loss (cross-entropy; readout mse: mean squared error)", "lower", validation=True),
    Metric("valid_accuracy", "validation accuracy", "higher", status=True, validation=True),
    Metric("test_loss", "test loss (cross-entropy; readout mse: mean squared error)", "lower", final=True),
    Metric("test_accuracy", "test accuracy", "higher", status=True, final=True),
)


class LIFBPTTTrainer(GradientTrainer):
    """Minibatch training of a network kernel; subclasses change ``kernel_name`` and :meth:`kernel_config`.

    The kernel (``snnbatch.kernels.<kernel_name>``) is a module with ``init_params``,
    ``loss_acc_grad`` and ``evaluate`` (lif, alif, eprop); it is imported when the
    trainer is built, after the runner set the thread counts.
    """

    kernel_name = "lif"
    deep_kernel_name = "deep"
    """the kernel of a network of more than one hidden layer (one layer: ``kernel_name``)"""

    def __init__(self, config):
        super().__init__(config)
        self.deep = len(layer_sizes(config.model)) > 1
        name = self.deep_kernel_name if self.deep else self.kernel_name
        self.kernel = importlib.import_module(f"snnbatch.kernels.{name}")
        self.data = spike_data(build_dataset(config.dataset), config)
        self.regression = getattr(config.learning, "readout", "max") == "mse"
        self.kcfg = self.kernel_config()
        t = config.training
        self.n_train = len(self.data.train_labels)
        self.batch_size = min(t.batch_size, self.n_train)
        self.iterations_per_epoch = iterations_per_epoch(self.n_train, self.batch_size)
        m = config.model
        if any(layer_recurrent(m)) and m.recurrent_lr_scale not in ("auto", 1.0):  # "auto" only where it means 1
            self.lr_scale = {name: float(m.recurrent_lr_scale) for name in recurrent_names(m)}

    def kernel_config(self):
        from ..kernels import deep, lif

        cls = deep.DeepLIFConfig if self.deep else lif.LIFConfig
        return kernel_config(cls, self.config.model, self.config.learning, **recurrent_given(self))

    def init_state(self) -> TrainState:
        return self.new_state(self.kernel.init_params(self.kcfg, np.random.default_rng(self.seeds()[0])))

    def step(self, state: TrainState) -> dict[str, float]:
        index = epoch_order(state, self.n_train, self.batch_size)
        params, _ = self.split(state)
        loss, acc, grads = self.kernel.loss_acc_grad(params, self.data.train_events, self.data.train_labels,
                                                     self.kcfg, index)
        self.apply_gradients(state, grads)
        return self.named(loss, acc)

    def validate(self, state: TrainState) -> dict[str, float]:
        events = getattr(self.data, "valid_events", None)
        if events is None:
            raise ValueError(f"dataset '{self.config.dataset.type}' built no validation split")
        params, _ = self.split(state)
        res = self.kernel.evaluate(params, events, self.data.valid_labels, self.kcfg)
        return self.named(res["loss"], res["accuracy"], "valid_")

    def evaluate(self, state: TrainState) -> dict[str, float]:
        params, _ = self.split(state)
        res = self.kernel.evaluate(params, self.data.test_events, self.data.test_labels, self.kcfg)
        return self.named(res["loss"], res["accuracy"], "test_")

    def named(self, loss, accuracy, prefix="") -> dict[str, float]:
        """The metrics: loss and accuracy, or the loss alone for a regression (readout mse)."""
        if self.regression:
            return {f"{prefix}loss": loss}
        return {f"{prefix}loss": loss, f"{prefix}accuracy": accuracy}


def spike_data(data, config):
    """The trainer's view of a dataset: spike events with labels, or with target trajectories (readout mse).

    A dense dataset (``array_files``) is made into spike events: its inputs must be 0/1 (a spike
    raster, steps × channels per sample), each 1 an input spike. Its target trajectories are the
    labels of readout ``mse``, which takes nothing else.
    """
    from ..kernels import events
    from .file_datasets import DenseData

    readout = getattr(config.learning, "readout", "max")
    if not isinstance(data, DenseData):
        if readout == "mse":
            raise ValueError(f"learning.readout: mse needs target trajectories; dataset '{config.dataset.type}' "
                             "has class labels (use dataset array_files with targets)")
        return data
    targets = data.n_outputs is not None
    if targets and "readout" not in type(config.learning).model_fields:
        raise ValueError(f"dataset.train_path: the files hold target trajectories, which rule "
                         f"'{config.learning.rule}' does not learn (regression is learning.readout: mse of rule bptt)")
    if targets != (readout == "mse"):
        raise ValueError("learning.readout: mse trains on target trajectories and only on them: the dataset's "
                         + ("files hold targets, set learning.readout: mse" if targets else
                            "files hold class labels, choose another readout"))
    splits = {"train": data.train, "test": data.test, "valid": data.valid}
    out = {"n_inputs": data.n_inputs, "n_steps": data.n_steps,
           "n_classes": data.n_outputs if targets else data.n_classes}
    for part, split in splits.items():
        if split is None:
            out[f"{part}_events"] = out[f"{part}_labels"] = None
            continue
        x = np.asarray(split.inputs)
        if not np.isin(x, (0, 1)).all():
            raise ValueError(f"dataset.{part}_path: model '{config.model.type}' takes spikes: the inputs must be "
                             "0/1 (a spike raster, samples × steps × channels)")
        out[f"{part}_events"] = events.from_dense(x)
        out[f"{part}_labels"] = split.targets if targets else split.labels
    return SimpleNamespace(**out)


def recurrent_given(trainer) -> dict:
    """The kernel config's data sizes and recurrent scale (``auto`` stays only in a network without recurrence);
    for more than one hidden layer, the layers' sizes and recurrent flags as tuples."""
    m = trainer.config.model
    scale = m.recurrent_weight_scale
    given = {"n_inputs": trainer.data.n_inputs, "n_outputs": trainer.data.n_classes,
             "recurrent_weight_scale": None if scale == "auto" else scale}
    if len(layer_sizes(m)) > 1:
        given.update(n_hidden=layer_sizes(m), recurrent=layer_recurrent(m))
    return given


ALGORITHM = Algorithm(
    model=LIFModel,
    rules=(Rule(BPTTLearning, LIFBPTTTrainer), Rule(EpropLearning, "snnbatch.jobs.eprop:EpropTrainer")),
    datasets=("randman", "shd"),
    data_kinds=("spikes", "dense"),
    metrics=CLASSIFIER_METRICS,
    description="LIF network with current synapses (seed 004), BPTT with surrogate gradients or e-prop",
)
