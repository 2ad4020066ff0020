"""The built-in spike datasets: Randman (generated from a seed) and the Heidelberg digits (read from disk).

Each is a ``dataset`` section and a function that builds the data from it,
declared as a :class:`~snnbatch.jobs.registry.Dataset` (:data:`DATASETS`) and
registered through the ``snnbatch.datasets`` entry point, as a plugin's would be.
Both produce a :class:`snnbatch.kernels.randman.Dataset` of spike events: the
``spikes`` kind that every spiking classifier accepts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import numpy as np
from pydantic import (Field, NonNegativeInt, PositiveFloat, PositiveInt, ValidationInfo, field_validator,
                      model_validator)

from .registry import ID_WHEN_SET, Dataset, Section

Probability = Annotated[float, Field(gt=0.0, lt=1.0)]


class RandmanData(Section):
    """Smooth random manifolds, one spike per input unit per sample (Zenke & Vogels 2021)."""

    type: Literal["randman"] = "randman"
    """the dataset"""
    n_inputs: PositiveInt = 100
    """input units (one spike each per sample)"""
    n_classes: Annotated[int, Field(ge=2)] = 2
    """classes (one manifold each)"""
    n_train: PositiveInt = 2000
    """training samples"""
    n_test: PositiveInt = 500
    """held-out samples"""
    n_valid: NonNegativeInt = Field(0, json_schema_extra=ID_WHEN_SET)
    """validation samples (n_valid // n_classes per class), drawn after the training and test ones, which stay as without them; used with training.validate_every"""
    dim: PositiveInt = 1
    """manifold dimension"""
    alpha: PositiveFloat = 2.0
    """smoothness (Fourier amplitudes decay as 1/k^alpha)"""
    n_freqs: PositiveInt = 32
    """Fourier terms per dimension"""
    n_steps: PositiveInt = 100
    """time steps per sample"""
    seed: NonNegativeInt = 0
    """the dataset's own seed (replicates share the dataset)"""


class SHDData(Section):
    """The Heidelberg Spiking Digits (Cramer et al. 2020) from local HDF5 files in the published layout.

    Each file holds ``spikes/times`` (per sample, spike times in seconds),
    ``spikes/units`` (per sample, the input channel of each spike) and
    ``labels``. Spikes are binned to steps of ``dt`` seconds; those after
    ``n_steps·dt`` are dropped (the SpyTorch tutorial: 100 steps over 1.4 s).
    Without ``test_path`` a seeded ``test_fraction`` of ``train_path`` is held
    out; ``valid_fraction`` holds out a seeded share of it for validation too
    (drawn as ``spike_files`` draws it, so both read an SHD file the same way). ``max_samples`` takes a seeded random subset of each file. Nothing is
    downloaded: the files must exist where the task runs (paths are checked,
    and made absolute, when the spec is validated).
    """

    type: Literal["shd"] = "shd"
    """the dataset"""
    train_path: str
    """HDF5 file in the published SHD layout (required; relative to where you run snnbatch)"""
    test_path: Optional[str] = None
    """held-out file; none: hold out test_fraction of train_path"""
    test_fraction: Probability = 0.2
    """share of train_path held out without test_path"""
    valid_fraction: Optional[Probability] = Field(None, json_schema_extra=ID_WHEN_SET)
    """share of train_path held out for validation; none: no validation split"""
    n_steps: PositiveInt = 100
    """time bins per sample"""
    dt: PositiveFloat = 14e-3
    """bin width (s)"""
    max_samples: Optional[PositiveInt] = None
    """a seeded random subset of each file"""
    n_inputs: PositiveInt = 700
    """input channels"""
    n_classes: Annotated[int, Field(ge=2)] = 20
    """classes"""
    seed: NonNegativeInt = 0
    """the subset and the split"""

    @field_validator("train_path", "test_path")
    @classmethod
    def _file_exists(cls, value, info: ValidationInfo):
        """With the validation context ``{"check_files": True}`` (the spec's), the file must exist."""
        if value is None or not (info.context or {}).get("check_files"):
            return value
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(
                f"file not found: {value} (looked for {path.resolve()}). snnbatch downloads nothing: get "
                "shd_train.h5.gz and shd_test.h5.gz from the Heidelberg spiking data sets (Cramer et al. 2020; "
                "zenkelab.org/datasets), gunzip them, and set dataset.train_path / dataset.test_path to where "
                "they are, relative to the directory you run snnbatch in")
        return str(path.resolve())

    @model_validator(mode="after")
    def _fractions(self):
        if self.test_path is None and self.valid_fraction is not None and self.test_fraction + self.valid_fraction >= 1:
            raise ValueError(f"test_fraction + valid_fraction must be below 1, got {self.test_fraction} + "
                             f"{self.valid_fraction}")
        return self


def build_randman(cfg: RandmanData):
    from ..kernels import randman

    rc = randman.RandmanConfig(**cfg.model_dump(exclude={"type", "seed"}))
    return randman.make_dataset(rc, np.random.default_rng(cfg.seed))


# ------------------------------------------------------------------ Heidelberg Spiking Digits

SHD_KEYS = ("spikes/times", "spikes/units", "labels")


def read_shd(cfg: SHDData):
    """The SHD samples of ``cfg.train_path`` (and ``cfg.test_path``) as binned spike events.

    Returns a :class:`snnbatch.kernels.randman.Dataset` (the container every
    classification trainer takes). Subsets and the train/test split are drawn
    from ``cfg.seed``; samples keep their order in the file.
    """
    from ..kernels.randman import Dataset

    rng = np.random.default_rng(cfg.seed)
    train = _read_shd_file(cfg.train_path, "dataset.train_path", cfg, rng)
    test = valid = None
    if cfg.test_path is not None:
        test = _read_shd_file(cfg.test_path, "dataset.test_path", cfg, rng)
    if test is None or cfg.valid_fraction is not None:
        n = len(train[2])
        n_test = int(round(cfg.test_fraction * n)) if test is None else 0
        n_valid = int(round(cfg.valid_fraction * n)) if cfg.valid_fraction is not None else 0
        if (test is None and n_test < 1) or (cfg.valid_fraction is not None and n_valid < 1) or n_test + n_valid >= n:
            fractions = " and ".join(f"{k} {v}" for k, v in (("test_fraction", cfg.test_fraction if test is None else None),
                                                           ("valid_fraction", cfg.valid_fraction)) if v is not None)
            raise ValueError(
                f"dataset.train_path: {cfg.train_path}: {n} samples cannot be split with {fractions}; "
                "give more samples" + (" or a test_path" if test is None else "")
            )
        order = rng.permutation(n)
        if test is None:
            test = tuple(part[np.sort(order[:n_test])] for part in train)
        if cfg.valid_fraction is not None:
            valid = tuple(part[np.sort(order[n_test:n_test + n_valid])] for part in train)
        train = tuple(part[np.sort(order[n_test + n_valid:])] for part in train)
    train_events = _bin(train[0], train[1], cfg)
    test_events = _bin(test[0], test[1], cfg)
    split = {} if valid is None else {"valid_events": _bin(valid[0], valid[1], cfg), "valid_labels": valid[2]}
    return Dataset(train_events, train[2], test_events, test[2], cfg.n_inputs, cfg.n_classes, cfg.n_steps, **split)


def _read_shd_file(path, key: str, cfg: SHDData, rng: np.random.Generator):
    """(times, units, labels) of one file: object arrays of per-sample arrays, and int64 labels."""
    import h5py

    if not Path(path).is_file():
        raise FileNotFoundError(f"{key}: file not found: {path}")
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{key}: {path}: cannot read it as HDF5: {exc}") from None
    with fh:
        missing = [k for k in SHD_KEYS if k not in fh]
        if missing:
            raise ValueError(
                f"{key}: {path}: not in the SHD layout: missing {', '.join(missing)} "
                f"(expected {', '.join(SHD_KEYS)})"
            )
        labels = np.asarray(fh["labels"][:]).astype(np.int64)
        n = labels.shape[0]
        if len(fh["spikes/times"]) != n or len(fh["spikes/units"]) != n:
            raise ValueError(f"{key}: {path}: spikes/times, spikes/units and labels have different lengths")
        if cfg.max_samples is not None and cfg.max_samples < n:
            idx = np.sort(rng.choice(n, cfg.max_samples, replace=False))
            times, units, labels = fh["spikes/times"][idx], fh["spikes/units"][idx], labels[idx]
        else:
            times, units = fh["spikes/times"][:], fh["spikes/units"][:]
    times = _ragged(times, None)  # the stored precision, for binning
    units = _ragged(units, np.int64)
    for i, (t, u) in enumerate(zip(times, units)):
        if t.shape != u.shape:
            raise ValueError(f"{key}: {path}: sample {i} has {t.size} spike times but {u.size} units")
        if u.size and (u.min() < 0 or u.max() >= cfg.n_inputs):
            raise ValueError(f"{key}: {path}: sample {i} has units outside [0, {cfg.n_inputs}) (dataset.n_inputs)")
    if n and (labels.min() < 0 or labels.max() >= cfg.n_classes):
        raise ValueError(f"{key}: {path}: labels outside [0, {cfg.n_classes}) (dataset.n_classes)")
    return times, units, labels


def _ragged(values, dtype) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        v = np.asarray(v, dtype=dtype).ravel()
        out[i] = v if v.dtype.kind == "f" or dtype is not None else v.astype(np.float64)
    return out


def _bin(times: np.ndarray, units: np.ndarray, cfg: SHDData):
    """Spike times (seconds) -> events at step floor(t / dt); spikes at or after n_steps·dt are dropped.

    A time on a bin edge, t = k·dt, falls in step k although its stored value
    may lie just below (0.01 in float32 is 0.0099999998): times are taken
    half a unit of their stored precision later, and the division has a
    relative tolerance of 1e-12. Several spikes of one unit in one bin stay
    several events (the kernels add the weight once per event, as a count).
    """
    from ..kernels.events import from_times

    counts = np.array([t.size for t in times], dtype=np.int64)
    flat_t = np.concatenate(list(times)) if len(times) else np.zeros(0)
    flat_u = np.concatenate(list(units)) if len(units) else np.zeros(0, np.int64)
    sample = np.repeat(np.arange(len(times)), counts)
    t = flat_t.astype(np.float64) + 0.5 * np.abs(np.spacing(flat_t)).astype(np.float64)
    steps = np.floor(t / cfg.dt * (1.0 + 1e-12)).astype(np.int64)
    return from_times(steps, flat_u.astype(np.int32), sample, len(times), cfg.n_steps)


RANDMAN = Dataset(RandmanData, build=build_randman, kind="spikes",
                  description="smooth random manifolds, generated from a seed (Zenke & Vogels 2021)")
SHD = Dataset(SHDData, build="snnbatch.jobs.datasets:read_shd", kind="spikes",
              description="the Heidelberg spiking digits, from local HDF5 files (Cramer et al. 2020)")
DATASETS = [RANDMAN, SHD]
