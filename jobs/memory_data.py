"""The built-in memory task: delayed match-to-sample on spikes, generated from a seed.

A ``dataset`` section and the function that builds the data from it, declared as a
:class:`~snnbatch.jobs.registry.Dataset` (:data:`DELAYED_MATCH`) and registered
through the ``snnbatch.datasets`` entry point. It produces a
:class:`snnbatch.kernels.randman.Dataset` of spike events (kind ``spikes``), so
``lif`` and ``alif`` train on it with ``bptt`` or ``eprop`` unchanged. The task
is described in :mod:`snnbatch.kernels.cues`.
"""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import Field, NonNegativeInt, PositiveInt

from .registry import ID_WHEN_SET, Dataset, Section

Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class DelayedMatchData(Section):
    """Cue, delay, probe: label 1 if the probe shows the cue's pattern, else 0; needs memory across the delay.

    Input units: ``n_patterns`` groups of ``units_per_pattern`` cue units (pattern
    k's is units k·units_per_pattern ...), as many groups of probe units, then
    ``n_noise`` background units; two classes, half of the samples each;
    ``cue_steps + delay_steps + probe_steps`` time steps. Neither cue nor probe
    alone says anything about the label. The readouts hold one number per output
    across the sample (bptt: the maximum over time, eprop: the sum of log softmax
    over time), which lets a network without memory be right in 3 of 4 samples;
    above 3/4 needs memory across the delay (see snnbatch.kernels.cues).
    """

    type: Literal["delayed_match"] = "delayed_match"
    """the dataset"""
    n_patterns: Annotated[int, Field(ge=2)] = 2
    """cue patterns; a non-match probe is one of the others, uniformly"""
    units_per_pattern: PositiveInt = 10
    """input units per pattern, in the cue's group of it and in the probe's"""
    n_noise: NonNegativeInt = 10
    """background input units (spiking at noise_prob throughout)"""
    cue_steps: PositiveInt = 20
    """time steps the cue is shown"""
    delay_steps: NonNegativeInt = 50
    """time steps between the end of the cue and the start of the probe: the memory the task needs"""
    probe_steps: PositiveInt = 20
    """time steps the probe is shown (the sample ends with it)"""
    spike_prob: Probability = 0.1
    """spike probability per time step of each unit of a shown pattern"""
    noise_prob: Probability = 0.01
    """spike probability per time step of each background unit"""
    n_train: Annotated[int, Field(ge=2)] = 2000
    """training samples"""
    n_test: Annotated[int, Field(ge=2)] = 500
    """held-out samples"""
    n_valid: NonNegativeInt = Field(0, json_schema_extra=ID_WHEN_SET)
    """validation samples (half of them matches), drawn after the training and test ones, which stay as without them; used with training.validate_every"""
    seed: NonNegativeInt = 0
    """the dataset's own seed (replicates share the dataset)"""


def build_delayed_match(cfg: DelayedMatchData):
    from ..kernels import cues

    kc = cues.CueConfig(**cfg.model_dump(exclude={"type", "seed"}))
    return cues.make_dataset(kc, np.random.default_rng(cfg.seed))


DELAYED_MATCH = Dataset(DelayedMatchData, build=build_delayed_match, kind="spikes",
                        description="delayed match-to-sample: cue, delay, probe; a task that needs memory")
