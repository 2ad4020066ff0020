"""Spike trains as events: a compact CSR layout the kernels consume.

``SpikeEvents.ptr[s, n] : ptr[s, n + 1]`` indexes into ``units`` the input
units that spike at time step ``n`` of sample ``s``. Input spikes are sparse
(Randman: one spike per unit per sample, about 1% of the bins), so the
kernels add one weight row per event instead of multiplying dense matrices.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np


class SpikeEvents(NamedTuple):
    ptr: np.ndarray  # (n_samples, n_steps + 1) int64, offsets into ``units``
    units: np.ndarray  # (n_events,) int32, the unit of each event

    @property
    def n_samples(self) -> int:
        return self.ptr.shape[0]

    @property
    def n_steps(self) -> int:
        return self.ptr.shape[1] - 1

    def take(self, index: np.ndarray) -> "SpikeEvents":
        """The events of the samples ``index``, in that order, as a new compact set."""
        index = np.asarray(index, dtype=np.int64)
        starts = self.ptr[index, 0]
        counts = self.ptr[index, -1] - starts
        offsets = np.concatenate([[0], np.cumsum(counts)])
        units = np.concatenate([self.units[s : s + c] for s, c in zip(starts, counts)]) if len(index) else self.units[:0]
        ptr = self.ptr[index] - starts[:, None] + offsets[:-1, None]
        return SpikeEvents(ptr.astype(np.int64), units.astype(np.int32))

    def to_dense(self, n_units: int) -> np.ndarray:
        """A (n_samples, n_steps, n_units) float array of spike counts."""
        out = np.zeros((self.n_samples * self.n_steps, n_units))
        starts = self.ptr[:, :-1].ravel()
        counts = (self.ptr[:, 1:] - self.ptr[:, :-1]).ravel()
        rows = np.repeat(np.arange(starts.size), counts)
        within = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
        np.add.at(out, (rows, self.units[np.repeat(starts, counts) + within]), 1.0)
        return out.reshape(self.n_samples, self.n_steps, n_units)


def from_times(times: np.ndarray, units: np.ndarray, sample: np.ndarray, n_samples: int, n_steps: int) -> SpikeEvents:
    """Events from flat (sample, time step, unit) triples; steps outside [0, n_steps) are dropped."""
    times = np.asarray(times, dtype=np.int64)
    keep = (times >= 0) & (times < n_steps)
    times, units, sample = times[keep], np.asarray(units)[keep], np.asarray(sample, dtype=np.int64)[keep]
    order = np.lexsort((units, times, sample))
    times, units, sample = times[order], units[order], sample[order]
    flat = sample * n_steps + times
    counts = np.bincount(flat, minlength=n_samples * n_steps)
    ptr = np.concatenate([[0], np.cumsum(counts)])
    ptr2 = np.empty((n_samples, n_steps + 1), dtype=np.int64)
    ptr2[:, :n_steps] = ptr[:-1].reshape(n_samples, n_steps)
    ptr2[:, n_steps] = ptr[n_steps::n_steps]
    return SpikeEvents(ptr2, units.astype(np.int32))


def from_dense(spikes: np.ndarray) -> SpikeEvents:
    """Events from a dense (n_samples, n_steps, n_units) 0/1 array."""
    sample, times, units = np.nonzero(spikes)
    return from_times(times, units, sample, spikes.shape[0], spikes.shape[1])
