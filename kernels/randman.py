"""Randman: spike-timing classification on smooth random manifolds.

After Zenke & Vogels (2021), "The remarkable robustness of surrogate gradient
learning for instilling complex function in spiking neural networks". Each
class is a smooth random manifold: a map from a ``dim``-dimensional latent
cube [0, 1)^dim to R^n_inputs whose components are products (over latent
dimensions) of random Fourier series with amplitudes decaying as
1 / k^alpha (larger alpha: smoother). A sample is a uniform latent point;
its embedding, rescaled per unit to [0, 1), is the time of the single spike
that each input unit emits. The task is to tell which manifold a spike
pattern came from.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .events import SpikeEvents, from_times


class RandmanConfig(NamedTuple):
    n_inputs: int = 100
    n_classes: int = 2
    n_train: int = 2000  # training samples, split evenly across classes
    n_test: int = 500  # held-out samples, from the same manifolds
    dim: int = 1  # latent (manifold) dimension
    alpha: float = 2.0  # smoothness: Fourier amplitudes decay as 1 / k**alpha
    n_freqs: int = 32  # Fourier terms per latent dimension
    n_steps: int = 100  # time steps per sample; spikes fall in [0, n_steps)
    n_valid: int = 0  # validation samples, drawn after the others (train and test stay as without them)


class Dataset(NamedTuple):
    train_events: SpikeEvents
    train_labels: np.ndarray  # int64
    test_events: SpikeEvents
    test_labels: np.ndarray
    n_inputs: int
    n_classes: int
    n_steps: int
    valid_events: SpikeEvents | None = None  # the validation split, when there is one
    valid_labels: np.ndarray | None = None


def _manifold_coefficients(cfg: RandmanConfig, rng: np.random.Generator) -> np.ndarray:
    # (n_classes, dim, n_inputs, n_freqs, 3): amplitude, frequency, phase draws
    return rng.uniform(0.0, 1.0, size=(cfg.n_classes, cfg.dim, cfg.n_inputs, cfg.n_freqs, 3))


def embed(latent: np.ndarray, coeffs: np.ndarray, alpha: float) -> np.ndarray:
    """Evaluate one class's manifold at latent points ``(n, dim)`` -> ``(n, n_inputs)``."""
    dim, n_inputs, n_freqs, _ = coeffs.shape
    k = np.arange(1, n_freqs + 1, dtype=np.float64)
    out = np.ones((latent.shape[0], n_inputs))
    for d in range(dim):
        amp = coeffs[d, :, :, 0] / k**alpha  # (n_inputs, n_freqs)
        freq = coeffs[d, :, :, 1] * k
        phase = coeffs[d, :, :, 2]
        arg = 2.0 * np.pi * (latent[:, d, None, None] * freq[None] + phase[None])
        out *= np.einsum("nif,if->ni", np.sin(arg), amp)
    return out


def make_dataset(cfg: RandmanConfig, rng: np.random.Generator) -> Dataset:
    """Draw the manifolds and the train/test samples from ``rng``.

    The test samples are fresh latent points on the same manifolds. Spike
    times are scaled per class and unit with the range seen over that
    class's samples, then shuffled together with their labels. With
    ``n_valid``, validation samples (``n_valid // n_classes`` per class) are
    drawn after everything else, scaled with the same ranges (and clipped to
    them), so the training and test samples are those of ``n_valid = 0``.
    """
    coeffs = _manifold_coefficients(cfg, rng)
    per_class = [(cfg.n_train + cfg.n_test) // cfg.n_classes] * cfg.n_classes
    times, labels, split, ranges = [], [], [], []
    n_train_c = cfg.n_train // cfg.n_classes
    for c in range(cfg.n_classes):
        latent = rng.uniform(0.0, 1.0, size=(per_class[c], cfg.dim))
        y = embed(latent, coeffs[c], cfg.alpha)
        lo, hi = y.min(axis=0), y.max(axis=0)
        ranges.append((lo, hi))
        y = (y - lo) / np.where(hi > lo, hi - lo, 1.0)
        t = np.minimum((y * cfg.n_steps).astype(np.int64), cfg.n_steps - 1)
        times.append(t)
        labels.append(np.full(per_class[c], c, dtype=np.int64))
        split.append(np.arange(per_class[c]) < n_train_c)
    times = np.concatenate(times)
    labels = np.concatenate(labels)
    split = np.concatenate(split)

    def events(mask, times=times, labels=labels):
        t, lab = times[mask], labels[mask]
        order = rng.permutation(len(lab))
        t, lab = t[order], lab[order]
        n = len(lab)
        sample = np.repeat(np.arange(n), cfg.n_inputs)
        unit = np.tile(np.arange(cfg.n_inputs), n)
        return from_times(t.ravel(), unit, sample, n, cfg.n_steps), lab

    train_ev, train_lab = events(split)
    test_ev, test_lab = events(~split)
    valid = {}
    if cfg.n_valid:
        n_c = cfg.n_valid // cfg.n_classes
        v_times, v_labels = [], []
        for c in range(cfg.n_classes):
            y = embed(rng.uniform(0.0, 1.0, size=(n_c, cfg.dim)), coeffs[c], cfg.alpha)
            lo, hi = ranges[c]
            y = np.clip((y - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0)
            v_times.append(np.minimum((y * cfg.n_steps).astype(np.int64), cfg.n_steps - 1))
            v_labels.append(np.full(n_c, c, dtype=np.int64))
        v_labels = np.concatenate(v_labels)
        ev, lab = events(np.ones(len(v_labels), bool), np.concatenate(v_times), v_labels)
        valid = {"valid_events": ev, "valid_labels": lab}
    return Dataset(train_ev, train_lab, test_ev, test_lab, cfg.n_inputs, cfg.n_classes, cfg.n_steps, **valid)
