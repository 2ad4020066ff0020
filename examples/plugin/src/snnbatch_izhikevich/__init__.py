"""snnbatch-izhikevich: Izhikevich neurons trained by surrogate-gradient BPTT, as an snnbatch plugin.

Installing this package registers the algorithm ``izhikevich`` through the
``snnbatch.algorithms`` entry point (see ``pyproject.toml``); a sweep then says
``model: {type: izhikevich}``. This module only declares: the ``model`` and
``learning`` sections, the metrics, and where the trainer is. NumPy and the
network are imported when a task trains.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt

from snnbatch.jobs.registry import Algorithm, Metric, Rule, Section

__version__ = "0.1.0"


class IzhikevichModel(Section):
    """A hidden layer of Izhikevich (2003) neurons fed by input spikes, and a leaky readout."""

    type: Literal["izhikevich"] = "izhikevich"
    n_hidden: PositiveInt = Field(48, description="hidden Izhikevich neurons")
    a: PositiveFloat = Field(0.02, description="recovery rate of u (1/ms); 0.02: regular spiking")
    b: float = Field(0.2, description="sensitivity of u to v")
    c: float = Field(-65.0, description="reset potential (mV)")
    d: float = Field(8.0, description="jump of u at a spike")
    dt_ms: PositiveFloat = Field(1.0, description="Euler step (ms); one input time step")
    tau_syn_ms: PositiveFloat = Field(5.0, description="synaptic current time constant (ms)")
    tau_out_ms: PositiveFloat = Field(20.0, description="readout time constant (ms)")
    input_gain: PositiveFloat = Field(10.0, description="mV/ms of membrane drive per unit of synaptic current")
    weight_scale: PositiveFloat = Field(1.0, description="input weights start with std weight_scale / sqrt(n_inputs)")


class SurrogateLearning(Section):
    """Backpropagation through time with a fast-sigmoid surrogate of the spike; no gradient through the reset."""

    rule: Literal["surrogate"] = "surrogate"
    surrogate_scale: PositiveFloat = Field(
        0.5, description="steepness (1/mV) of the surrogate 1 / (scale·|v − 30 mV| + 1)²")


METRICS = (
    Metric("loss", "training loss (cross-entropy)", "lower", status=True),
    Metric("accuracy", "training accuracy", "higher"),
    Metric("rate_hz", "hidden firing rate (Hz)", "lower", status=True),
    Metric("test_loss", "test loss (cross-entropy)", "lower", final=True),
    Metric("test_accuracy", "test accuracy", "higher", status=True, final=True),
    Metric("test_rate_hz", "hidden firing rate on the test set (Hz)", "lower", final=True),
)

ALGORITHM = Algorithm(
    model=IzhikevichModel,
    rules=(Rule(SurrogateLearning, "snnbatch_izhikevich.trainer:IzhikevichTrainer"),),
    datasets=("randman",),
    data_kinds=("spikes",),
    metrics=METRICS,
    description="Izhikevich neurons and a leaky readout, surrogate-gradient BPTT in NumPy (snnbatch-izhikevich)",
)
