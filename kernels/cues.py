"""Delayed match-to-sample: a spike task that needs memory across a delay.

A sample has three periods, in time steps::

    | cue: cue_steps | delay: delay_steps | probe: probe_steps |

The input units are ``n_patterns`` groups of ``units_per_pattern`` cue units,
as many groups of probe units, then ``n_noise`` background units. During the
cue one pattern k (drawn uniformly) is shown: each unit of cue group k spikes
with probability ``spike_prob`` at each step. After the delay a probe pattern
is shown the same way on the probe groups: the cue's pattern in half of the
samples (label 1, "match") and another one, drawn uniformly, in the other half
(label 0, "non-match"). The background units spike with probability
``noise_prob`` at every step of every period. Cue and probe have units of
their own, so the network knows which one it sees.

Neither the cue nor the probe alone says anything about the label (each is
uniform whatever the label): the label is whether the probe repeats a cue
seen ``delay_steps`` earlier. What the readouts of the spiking classifiers
see: the BPTT trainers classify by the maximum over time of each output
(:mod:`snnbatch.kernels.lif`), e-prop by the sum over time of each output's log
softmax (:mod:`snnbatch.kernels.eprop`). Either holds one number per output
across the whole sample, a memory outside the network: a network that forgets
the cue can still make output "non-match" large at the cue for some patterns
and output "match" large at the probe for others, and be right in 3 of 4
samples (with patterns ordered k = 0, 1, ...: "match" when the probe's index is
not below the cue's). So 1/2 is chance, 3/4 is what a network without memory
can reach, and only a network that keeps the cue across the delay does better.
LIF neurons forget within a few synaptic and membrane time constants (5 and
10 ms by default); adaptive neurons keep a trace of the cue in their
thresholds for about ``tau_adapt``.

The task is the delayed match-to-sample of working-memory studies, in spikes.
It is not the store-and-recall or evidence-accumulation task of Bellec et al.
(2018, 2020): a max-over-time readout answers a recall at the cue, and the
e-prop readout's sum over time counts cues without any memory in the network.

Everything is drawn from the ``rng`` given to :func:`make_dataset`: the same
seed gives the same samples, bit for bit.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .events import from_times
from .randman import Dataset


class CueConfig(NamedTuple):
    n_patterns: int = 2  # cue patterns (each a group of input units)
    units_per_pattern: int = 10  # input units per pattern
    n_noise: int = 10  # background input units
    cue_steps: int = 20  # time steps the cue is shown
    delay_steps: int = 50  # time steps between the cue's end and the probe's start
    probe_steps: int = 20  # time steps the probe is shown
    spike_prob: float = 0.1  # spike probability per step of each unit of a shown pattern
    noise_prob: float = 0.01  # spike probability per step of each background unit
    n_train: int = 2000
    n_test: int = 500
    n_valid: int = 0  # validation samples, drawn after the others (train and test stay as without them)

    @property
    def n_inputs(self) -> int:
        return 2 * self.n_patterns * self.units_per_pattern + self.n_noise

    @property
    def n_steps(self) -> int:
        return self.cue_steps + self.delay_steps + self.probe_steps


N_CLASSES = 2  # 0: non-match, 1: match


def draw_trials(cfg: CueConfig, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cue, probe, label) of ``n`` samples: half of them matches (exactly, ``n // 2``), in random order."""
    label = rng.permutation(np.arange(n) < n // 2).astype(np.int64)
    cue = rng.integers(0, cfg.n_patterns, n)
    # a non-match probe is any other pattern, uniformly: cue + 1 .. cue + n_patterns - 1 (mod n_patterns)
    shift = rng.integers(1, cfg.n_patterns, n)  # n_patterns >= 2
    probe = np.where(label == 1, cue, (cue + shift) % cfg.n_patterns)
    return cue.astype(np.int64), probe.astype(np.int64), label


def spikes(cfg: CueConfig, cue: np.ndarray, probe: np.ndarray, rng: np.random.Generator):
    """The spike events of samples with these cue and probe patterns."""
    n, upp = len(cue), cfg.units_per_pattern
    times, units, sample = [], [], []

    def add(first_unit, start, steps):
        s, t, j = np.nonzero(rng.random((n, steps, upp)) < cfg.spike_prob)
        times.append(start + t)
        units.append(first_unit[s] + j)
        sample.append(s)

    add(cue * upp, 0, cfg.cue_steps)
    add((cfg.n_patterns + probe) * upp, cfg.cue_steps + cfg.delay_steps, cfg.probe_steps)
    if cfg.n_noise:
        s, t, j = np.nonzero(rng.random((n, cfg.n_steps, cfg.n_noise)) < cfg.noise_prob)
        times.append(t)
        units.append(2 * cfg.n_patterns * upp + j)
        sample.append(s)
    return from_times(np.concatenate(times), np.concatenate(units).astype(np.int32), np.concatenate(sample),
                      n, cfg.n_steps)


def make_dataset(cfg: CueConfig, rng: np.random.Generator) -> Dataset:
    """Training and test samples drawn from ``rng``: the trials, then the spikes, training set first;
    with ``n_valid``, validation samples after them (the training and test ones stay as without)."""
    train = draw_trials(cfg, cfg.n_train, rng)
    test = draw_trials(cfg, cfg.n_test, rng)
    train_events = spikes(cfg, train[0], train[1], rng)
    test_events = spikes(cfg, test[0], test[1], rng)
    valid = {}
    if cfg.n_valid:
        trials = draw_trials(cfg, cfg.n_valid, rng)
        valid = {"valid_events": spikes(cfg, trials[0], trials[1], rng), "valid_labels": trials[2]}
    return Dataset(train_events, train[2], test_events, test[2], cfg.n_inputs, N_CLASSES, cfg.n_steps, **valid)
