"""Datasets from your own files: spike events (``spike_files``) and dense arrays (``array_files``).

A file is NPZ, a directory of .npy files or HDF5 (``format``, from the name
unless given), read through :mod:`snnbatch.jobs.named_arrays`, which
memory-maps what the storage allows.

Spike events are stored per sample either *ragged* (an array of times and one
of units per sample: HDF5 variable-length datasets, as in the published
Heidelberg digits, or NPZ object arrays, which need ``allow_pickle``) or
*flat*: ``times`` and ``units`` of every spike, sample after sample, and
``offsets`` (samples + 1 of them) so that sample ``i``'s spikes are
``offsets[i]:offsets[i + 1]``. Times are binned to steps of ``dt`` exactly as
the ``shd`` dataset bins them, into the :class:`snnbatch.kernels.randman.Dataset`
every spiking classifier trains on. Dense arrays are ``inputs`` (samples × steps
× channels) with ``labels`` or ``targets`` (samples × steps × outputs), built into
a :class:`DenseData`.

Every problem with a file (missing, unreadable, a missing array, a wrong shape,
dtype or value range) names the file and the array: when a spec is validated
(context ``{"check_files": True}``) it is a spec error under the path's key;
when a task reads the file, an error starting with ``dataset.<part>_path``.
Validation reads headers, labels, offsets and units, never spike times or
inputs, once per file and process (kept while the file is unchanged: a sweep
validates each combination).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated, Literal, NamedTuple, Optional

import numpy as np
from pydantic import Field, NonNegativeInt, PositiveFloat, PositiveInt, ValidationInfo, field_validator, model_validator

from ..kernels.randman import Dataset as SpikeDataset
from .datasets import Probability, _bin
from .named_arrays import ArrayInfo, FileProblem, reading
from .registry import Dataset, Section

PARTS = ("train", "test", "valid")  # read in this order: the random draws of shd
Format = Literal["auto", "npz", "npy", "hdf5"]
# The names of the spike arrays when the spec gives none, by format: NPZ and .npy directories use
# plain names, HDF5 the published Heidelberg-digits layout.
SPIKE_NAMES = {
    "npz": {"times": "times", "units": "units", "offsets": "offsets"},
    "npy": {"times": "times", "units": "units", "offsets": "offsets"},
    "hdf5": {"times": "spikes/times", "units": "spikes/units", "offsets": "spikes/offsets"},
}


# ------------------------------------------------------------------ the sections


class SpikeFiles(Section):
    """Spike events of your own from NPZ, .npy or HDF5 files (the SHD layout is one case of it)."""

    type: Literal["spike_files"] = "spike_files"
    """the dataset"""
    n_inputs: PositiveInt
    """input channels (every unit must be below it)"""
    n_classes: Annotated[int, Field(ge=2)]
    """classes (every label must be below it)"""
    n_steps: PositiveInt = 100
    """time bins per sample"""
    dt: PositiveFloat = 1e-3
    """bin width, in the unit of the stored times (spikes at or after n_steps·dt are dropped)"""
    format: Format = "auto"
    """npz, npy (a directory of .npy files) or hdf5; auto: from the name"""
    times_key: Optional[str] = None
    """the spike times; none: times (npz, npy) or spikes/times (hdf5)"""
    units_key: Optional[str] = None
    """the spike units; none: units (npz, npy) or spikes/units (hdf5)"""
    offsets_key: Optional[str] = None
    """the flat layout's sample offsets (samples + 1); none: offsets (npz, npy) or spikes/offsets (hdf5)"""
    labels_key: str = "labels"
    """the class labels"""
    allow_pickle: bool = False
    """read ragged NPZ object arrays (stored with pickle: only files you trust)"""
    max_samples: Optional[PositiveInt] = None
    """a seeded random subset of each file"""
    test_fraction: Probability = 0.2
    """share of train_path held out without test_path"""
    valid_fraction: Optional[Probability] = None
    """share of train_path held out for validation without valid_path; none: no validation split"""
    seed: NonNegativeInt = 0
    """the subsets and the splits"""
    # The paths come last: their validators read the files with the keys above.
    train_path: str
    """training file (required; relative to where you run snnbatch)"""
    test_path: Optional[str] = None
    """held-out file; none: hold out test_fraction of train_path"""
    valid_path: Optional[str] = None
    """validation file; none: valid_fraction of train_path, or no validation split"""

    @field_validator("train_path", "test_path", "valid_path")
    @classmethod
    def _check_file(cls, value, info: ValidationInfo):
        """With the validation context ``{"check_files": True}`` (the spec's): the file holds spikes that fit."""
        if value is None or not (info.context or {}).get("check_files"):
            return value
        path = _existing(value)
        keys = _settings(cls, info.data)
        summary = _cached(path, _spike_names(keys), lambda: _inspect_spikes(path, value, keys))
        _check_spike_ranges(summary, value, keys)
        return str(path)

    @model_validator(mode="after")
    def _splits(self, info: ValidationInfo):
        _check_splits(self, info, _spike_names(self))
        return self


class ArrayFiles(Section):
    """Dense arrays of your own (inputs, and class labels or target trajectories) from NPZ, .npy or HDF5 files."""

    type: Literal["array_files"] = "array_files"
    """the dataset"""
    format: Format = "auto"
    """npz, npy (a directory of .npy files) or hdf5; auto: from the name"""
    inputs_key: str = "inputs"
    """the inputs: samples × steps × channels, floating point"""
    labels_key: str = "labels"
    """the class labels: one integer per sample"""
    targets_key: str = "targets"
    """the target trajectories: samples × steps × outputs, floating point"""
    target: Literal["auto", "labels", "targets"] = "auto"
    """what the inputs are paired with; auto: whichever of the two the training file holds"""
    n_classes: Optional[Annotated[int, Field(ge=2)]] = None
    """with labels: the classes (every label must be below it); none: 1 + the largest label read"""
    max_samples: Optional[PositiveInt] = None
    """a seeded random subset of each file"""
    test_fraction: Probability = 0.2
    """share of train_path held out without test_path"""
    valid_fraction: Optional[Probability] = None
    """share of train_path held out for validation without valid_path; none: no validation split"""
    seed: NonNegativeInt = 0
    """the subsets and the splits"""
    # The paths come last: their validators read the files with the keys above.
    train_path: str
    """training file (required; relative to where you run snnbatch)"""
    test_path: Optional[str] = None
    """held-out file; none: hold out test_fraction of train_path"""
    valid_path: Optional[str] = None
    """validation file; none: valid_fraction of train_path, or no validation split"""

    @field_validator("train_path", "test_path", "valid_path")
    @classmethod
    def _check_file(cls, value, info: ValidationInfo):
        """With the validation context ``{"check_files": True}`` (the spec's): the file's arrays agree."""
        if value is None or not (info.context or {}).get("check_files"):
            return value
        path = _existing(value)
        keys = _settings(cls, info.data)
        train = info.data.get("train_path") if info.field_name != "train_path" else None
        first = _cached(Path(train), _dense_names(keys)) if train is not None else None
        if first is not None and keys.target == "auto":
            keys.target = first.layout.target  # a test or validation file pairs its inputs as the training file
        summary = _cached(path, _dense_names(keys), lambda: _inspect_dense(path, value, keys))
        _check_labels(summary.labels, summary.layout.labels, getattr(keys, "n_classes", None), value)
        if first is not None:
            _check_agrees(summary.layout, first.layout, value)
        return str(path)

    @model_validator(mode="after")
    def _splits(self, info: ValidationInfo):
        _check_splits(self, info, _dense_names(self))
        return self


# ------------------------------------------------------------------ what they build


# What spike_files builds: a snnbatch.kernels.randman.Dataset (what lif and alif train on) with its
# validation split in ``valid_events`` and ``valid_labels`` (``None`` without one).
SpikeFileData = SpikeDataset


@dataclass(frozen=True, eq=False)
class DenseSplit:
    """One part of a dense dataset. Read from a whole file, its arrays stay memory-mapped where the format allows."""

    inputs: np.ndarray  # (samples, steps, channels), the file's floating-point dtype
    labels: Optional[np.ndarray] = None  # (samples,) int64, when the inputs are paired with classes
    targets: Optional[np.ndarray] = None  # (samples, steps, outputs), when paired with trajectories

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def take(self, index: np.ndarray) -> "DenseSplit":
        """The samples ``index``, in that order (a copy in memory)."""
        return DenseSplit(np.asarray(self.inputs[index]), None if self.labels is None else self.labels[index],
                          None if self.targets is None else np.asarray(self.targets[index]))


@dataclass(frozen=True, eq=False)
class DenseData:
    """What ``array_files`` builds (kind ``"dense"``): train, test and an optional validation part."""

    train: DenseSplit
    test: DenseSplit
    valid: Optional[DenseSplit]
    n_inputs: int  # channels
    n_steps: int
    n_classes: Optional[int]  # with labels
    n_outputs: Optional[int]  # with targets


def read_spike_files(cfg: SpikeFiles) -> SpikeFileData:
    """The spike events of ``cfg``'s files, binned as ``shd`` bins them; subsets and splits drawn from ``cfg.seed``.

    The random draws come in the order of the ``shd`` dataset (each file's subset, then the
    split), so an SHD file read either way gives the same events.
    """
    rng = np.random.default_rng(cfg.seed)
    parts = {}
    for part in PARTS:
        path = getattr(cfg, f"{part}_path")
        if path is not None:
            parts[part] = _load(path, part, cfg.format, lambda f, shown: _read_spikes(f, shown, cfg, rng))
    parts = _split(parts, cfg, rng, lambda p: len(p[2]), lambda p, index: tuple(a[index] for a in p))
    events = {part: _bin(times, units, cfg) for part, (times, units, _) in parts.items()}
    valid = parts.get("valid")
    return SpikeFileData(events["train"], parts["train"][2], events["test"], parts["test"][2],
                         cfg.n_inputs, cfg.n_classes, cfg.n_steps,
                         valid_events=events.get("valid"), valid_labels=None if valid is None else valid[2])


def read_array_files(cfg: ArrayFiles) -> DenseData:
    """The arrays of ``cfg``'s files; subsets and splits drawn from ``cfg.seed``, in the order ``shd`` draws them."""
    rng = np.random.default_rng(cfg.seed)
    keys = SimpleNamespace(**dict(cfg))
    parts, layouts = {}, {}
    for part in PARTS:
        path = getattr(cfg, f"{part}_path")
        if path is not None:
            parts[part], layouts[part] = _load(path, part, cfg.format,
                                               lambda f, shown: _read_dense(f, shown, keys, rng))
            keys.target = layouts["train"].target  # the other files pair their inputs as the training file
    train = layouts["train"]
    for part, layout in layouts.items():
        if part != "train":
            try:
                _check_agrees(layout, train, getattr(cfg, f"{part}_path"))
            except FileProblem as exc:
                raise ValueError(f"dataset.{part}_path: {exc}") from None
    parts = _split(parts, cfg, rng, len, lambda p, index: p.take(index))
    n_classes = None
    if train.target == "labels":
        n_classes = cfg.n_classes or 1 + max(int(p.labels.max()) for p in parts.values() if len(p))
    return DenseData(parts["train"], parts["test"], parts.get("valid"), n_inputs=train.channels,
                     n_steps=train.steps, n_classes=n_classes, n_outputs=train.outputs)


SPIKE_FILES = Dataset(SpikeFiles, build="snnbatch.jobs.file_datasets:read_spike_files", kind="spikes",
                      description="spike events from your own NPZ, .npy or HDF5 files")
ARRAY_FILES = Dataset(ArrayFiles, build="snnbatch.jobs.file_datasets:read_array_files", kind="dense",
                      description="dense inputs with labels or target trajectories from your own files")
DATASETS = [SPIKE_FILES, ARRAY_FILES]


# ------------------------------------------------------------------ reading a file


def _existing(value: str) -> Path:
    path = Path(value).expanduser()
    if not path.exists():
        raise ValueError(f"file not found: {value}")
    return path.resolve()


def _load(path: str, part: str, fmt: str, read):
    """``read(container, path)`` on the file of ``part``; every problem starts with ``dataset.<part>_path``."""
    key = f"dataset.{part}_path"
    if not Path(path).exists():
        raise FileNotFoundError(f"{key}: file not found: {path}")
    try:
        with reading(Path(path), fmt, path) as container:
            return read(container, path)
    except FileProblem as exc:
        raise ValueError(f"{key}: {exc}") from None


# ------------------------------------------------------------------ what validation keeps per file

_SUMMARIES: dict[tuple, object] = {}  # (path, its stamp, the keys that read it) -> what the checks need


def _stamp(path: Path) -> tuple:
    """Changes when the file (or a .npy file of the directory) changes."""
    files = sorted(path.rglob("*.npy")) if path.is_dir() else [path]
    return tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)


def _cached(path: Path, names: tuple, inspect=None):
    """The summary of ``path`` read with ``names`` (computed by ``inspect()`` unless known; without
    ``inspect``: the known one or ``None``). A sweep validates the same files once per combination."""
    try:
        key = (str(path), _stamp(path), names)
    except OSError:
        return None
    if key not in _SUMMARIES and inspect is not None:
        if len(_SUMMARIES) > 64:
            _SUMMARIES.clear()
        _SUMMARIES[key] = inspect()
    return _SUMMARIES.get(key)


def _settings(cls, values) -> SimpleNamespace:
    """The keys of a section as validated so far, the defaults for those not (yet) validated."""
    data = {k: f.default for k, f in cls.model_fields.items() if not f.is_required()}
    data.update(values if isinstance(values, dict) else dict(values))
    return SimpleNamespace(**data)


def _spike_names(keys) -> tuple:
    return ("spikes", keys.format, keys.times_key, keys.units_key, keys.offsets_key, keys.labels_key,
            keys.allow_pickle)


def _dense_names(keys) -> tuple:
    return ("dense", keys.format, keys.inputs_key, keys.labels_key, keys.targets_key, keys.target)


# ------------------------------------------------------------------ spike layouts


class _SpikeLayout(NamedTuple):
    times: str
    units: str
    offsets: Optional[str]  # None: ragged (one array per sample)
    labels: str
    n: int


class _SpikeSummary(NamedTuple):
    layout: _SpikeLayout
    labels: Optional[tuple[int, int]]  # smallest and largest label (None: no samples)
    units: Optional[tuple[int, int]]  # smallest and largest unit (None: no spikes)


def _listing(names) -> str:
    return ", ".join(sorted(names)) or "nothing"


def _need(f, name: str, key: str, shown: str, why: str = "") -> None:
    if name not in f.names():
        raise FileProblem(f"{shown}: no array {name!r} (has: {_listing(f.names())}){why}; "
                          f"name it with dataset.{key}")


def _kind(info: ArrayInfo, name: str, kinds: str, what: str, shown: str) -> None:
    if info.dtype.kind not in kinds:
        raise FileProblem(f"{shown}: {name!r} holds {info.dtype}, expected {what}")


def _spike_layout(f, keys, shown: str) -> _SpikeLayout:
    """Which arrays hold the spikes, checked against their headers (nothing is read)."""
    default = SPIKE_NAMES[f.format]
    times, units = keys.times_key or default["times"], keys.units_key or default["units"]
    offsets, labels = keys.offsets_key or default["offsets"], keys.labels_key
    _need(f, labels, "labels_key", shown)
    _need(f, times, "times_key", shown)
    _need(f, units, "units_key", shown)
    li, ti, ui = f.info(labels), f.info(times), f.info(units)
    if len(li.shape) != 1:
        raise FileProblem(f"{shown}: {labels!r} has shape {li.shape}, expected (samples,)")
    _kind(li, labels, "iu", "integer class labels", shown)
    n = li.shape[0]
    if ti.ragged or ui.ragged:
        if not (ti.ragged and ui.ragged):
            raise FileProblem(f"{shown}: {times!r} and {units!r} must both be ragged (one array per sample) "
                              "or both flat (with offsets)")
        for name, info in ((times, ti), (units, ui)):
            if info.shape != (n,):
                raise FileProblem(f"{shown}: {name!r} has shape {info.shape}, expected one row per sample "
                                  f"of {labels!r}: ({n},)")
        if (ti.dtype.hasobject or ui.dtype.hasobject) and not keys.allow_pickle:
            raise FileProblem(f"{shown}: {times!r} is an object array (stored with pickle): set "
                              "dataset.allow_pickle: true to read a file you trust, or store the flat layout "
                              "(times, units, offsets)")
        if not ti.dtype.hasobject:
            _kind(ti, times, "iuf", "numbers (spike times)", shown)
            _kind(ui, units, "iu", "integers (input units)", shown)
        return _SpikeLayout(times, units, None, labels, n)
    _need(f, offsets, "offsets_key", shown,
          f": {times!r} is flat (every spike of every sample), which needs the offsets of each sample's "
          f"spikes, length samples + 1")
    oi = f.info(offsets)
    if len(ti.shape) != 1 or ui.shape != ti.shape:
        raise FileProblem(f"{shown}: {times!r} has shape {ti.shape} and {units!r} {ui.shape}: expected one "
                          "shape (spikes,)")
    if oi.shape != (n + 1,):
        raise FileProblem(f"{shown}: {offsets!r} has shape {oi.shape}, expected ({n + 1},): one more than "
                          f"the {n} samples of {labels!r}")
    _kind(oi, offsets, "iu", "integers (offsets)", shown)
    _kind(ti, times, "iuf", "numbers (spike times)", shown)
    _kind(ui, units, "iu", "integers (input units)", shown)
    return _SpikeLayout(times, units, offsets, labels, n)


def _offsets(f, layout: _SpikeLayout, n_spikes: int, shown: str) -> np.ndarray:
    offsets = np.asarray(f.read(layout.offsets), dtype=np.int64)
    if offsets[0] != 0 or offsets[-1] != n_spikes or np.any(np.diff(offsets) < 0):
        raise FileProblem(f"{shown}: {layout.offsets!r} must start at 0, never decrease and end at the "
                          f"number of spikes ({n_spikes})")
    return offsets


def _span(values) -> Optional[tuple[int, int]]:
    return (int(values.min()), int(values.max())) if values.size else None


def _check_labels(span, name: str, n_classes, shown: str) -> None:
    if span is not None and n_classes is not None and (span[0] < 0 or span[1] >= n_classes):
        raise FileProblem(f"{shown}: {name!r} has values outside [0, {n_classes}) (dataset.n_classes): "
                          f"from {span[0]} to {span[1]}")


def _check_spike_ranges(summary: _SpikeSummary, shown: str, keys) -> None:
    _check_labels(summary.labels, summary.layout.labels, getattr(keys, "n_classes", None), shown)
    n_inputs, span = getattr(keys, "n_inputs", None), summary.units
    if span is not None and n_inputs is not None and (span[0] < 0 or span[1] >= n_inputs):
        raise FileProblem(f"{shown}: {summary.layout.units!r} has values outside [0, {n_inputs}) "
                          f"(dataset.n_inputs): from {span[0]} to {span[1]}")


def _inspect_spikes(path: Path, shown: str, keys) -> _SpikeSummary:
    """The layout, label and unit ranges of a spike file (its spike times are not read)."""
    with reading(path, keys.format, shown) as f:
        layout = _spike_layout(f, keys, shown)
        labels = _span(np.asarray(f.read(layout.labels)))
        if layout.offsets is not None:
            units = f.read(layout.units)
            _offsets(f, layout, units.shape[0], shown)
        else:
            rows = f.rows(layout.units, None, keys.allow_pickle)
            units = np.concatenate([np.asarray(r).ravel() for r in rows]) if len(rows) else np.zeros(0, int)
            if units.dtype.kind not in "iu" and units.size:
                raise FileProblem(f"{shown}: {layout.units!r} holds {units.dtype}, expected integers (input units)")
        return _SpikeSummary(layout, labels, _span(units))


def _subset(n: int, max_samples, rng: np.random.Generator) -> Optional[np.ndarray]:
    """A seeded random subset of ``max_samples`` of ``n`` samples, in file order (None: all)."""
    if max_samples is not None and max_samples < n:
        return np.sort(rng.choice(n, max_samples, replace=False))
    return None


def _objects(arrays) -> np.ndarray:
    out = np.empty(len(arrays), dtype=object)
    for i, a in enumerate(arrays):
        out[i] = a
    return out


def _read_spikes(f, shown: str, cfg: SpikeFiles, rng: np.random.Generator):
    """(times, units, labels) of a file's samples: object arrays of per-sample arrays, and int64 labels."""
    layout = _spike_layout(f, cfg, shown)
    index = _subset(layout.n, cfg.max_samples, rng)
    rows = np.arange(layout.n) if index is None else index
    labels = np.asarray(f.read(layout.labels))[rows].astype(np.int64)
    if layout.offsets is not None:
        times, units = f.read(layout.times), f.read(layout.units)  # memory-mapped where the format allows
        offsets = _offsets(f, layout, units.shape[0], shown)
        times = _objects([times[offsets[i]:offsets[i + 1]] for i in rows])
        units = _objects([units[offsets[i]:offsets[i + 1]] for i in rows])
    else:
        times = _objects([np.asarray(t).ravel() for t in f.rows(layout.times, index, cfg.allow_pickle)])
        units = _objects([np.asarray(u).ravel() for u in f.rows(layout.units, index, cfg.allow_pickle)])
    for i, (t, u) in enumerate(zip(times, units)):
        if t.shape != u.shape:
            raise FileProblem(f"{shown}: sample {rows[i]} has {t.size} spike times but {u.size} units")
        if t.size and (t.dtype.kind not in "iuf" or u.dtype.kind not in "iu"):
            raise FileProblem(f"{shown}: sample {rows[i]}: spike times must be numbers and units integers, "
                              f"got {t.dtype} and {u.dtype}")
    flat = np.concatenate(list(units)) if len(units) else np.zeros(0, np.int64)
    _check_spike_ranges(_SpikeSummary(layout, _span(labels), _span(flat)), shown, cfg)
    return times, units, labels


# ------------------------------------------------------------------ dense layouts


class _DenseLayout(NamedTuple):
    inputs: str
    labels: Optional[str]  # the labels, or None when paired with targets
    targets: Optional[str]
    target: str  # "labels" or "targets"
    n: int
    steps: int
    channels: int
    outputs: Optional[int]


class _DenseSummary(NamedTuple):
    layout: _DenseLayout
    labels: Optional[tuple[int, int]]


def _dense_layout(f, keys, shown: str) -> _DenseLayout:
    """Which arrays hold the inputs and what they are paired with, checked against their headers."""
    inputs = keys.inputs_key
    _need(f, inputs, "inputs_key", shown)
    ii = f.info(inputs)
    if len(ii.shape) != 3:
        raise FileProblem(f"{shown}: {inputs!r} has shape {ii.shape}, expected (samples, steps, channels)")
    _kind(ii, inputs, "f", "floating point", shown)
    n, steps, channels = ii.shape
    target = keys.target
    if target == "auto":
        found = [t for t, name in (("labels", keys.labels_key), ("targets", keys.targets_key)) if name in f.names()]
        if len(found) == 2:
            raise FileProblem(f"{shown}: holds both {keys.labels_key!r} and {keys.targets_key!r}: set "
                              "dataset.target to labels or targets")
        if not found:
            raise FileProblem(f"{shown}: no array {keys.labels_key!r} or {keys.targets_key!r} (has: "
                              f"{_listing(f.names())}); name one with dataset.labels_key or dataset.targets_key")
        target = found[0]
    if target == "labels":
        labels = keys.labels_key
        _need(f, labels, "labels_key", shown)
        li = f.info(labels)
        if li.shape != (n,):
            raise FileProblem(f"{shown}: {labels!r} has shape {li.shape}, expected one label per sample of "
                              f"{inputs!r}: ({n},)")
        _kind(li, labels, "iu", "integer class labels", shown)
        return _DenseLayout(inputs, labels, None, "labels", n, steps, channels, None)
    targets = keys.targets_key
    _need(f, targets, "targets_key", shown)
    oi = f.info(targets)
    if len(oi.shape) != 3 or oi.shape[:2] != (n, steps):
        raise FileProblem(f"{shown}: {targets!r} has shape {oi.shape}, expected (samples, steps, outputs) "
                          f"with the samples and steps of {inputs!r}: ({n}, {steps}, outputs)")
    _kind(oi, targets, "f", "floating point", shown)
    return _DenseLayout(inputs, None, targets, "targets", n, steps, channels, oi.shape[2])


def _check_agrees(layout: _DenseLayout, train: _DenseLayout, shown: str) -> None:
    """A test or validation file holds what the training file holds, with the same steps and channels."""
    if layout.target != train.target:
        raise FileProblem(f"{shown}: pairs its inputs with {layout.target}, but the training file with "
                          f"{train.target}")
    if (layout.steps, layout.channels, layout.outputs) != (train.steps, train.channels, train.outputs):
        what = lambda x: f"{x.steps} steps × {x.channels} channels" + (f" → {x.outputs} outputs" if x.outputs else "")
        raise FileProblem(f"{shown}: samples of {what(layout)}, but the training file's are {what(train)}")


def _inspect_dense(path: Path, shown: str, keys) -> _DenseSummary:
    with reading(path, keys.format, shown) as f:
        layout = _dense_layout(f, keys, shown)
        labels = _span(np.asarray(f.read(layout.labels))) if layout.labels else None
        return _DenseSummary(layout, labels)


def _read_dense(f, shown: str, cfg, rng: np.random.Generator):
    """(the file's samples, its layout); a whole file's arrays stay memory-mapped where the format allows."""
    layout = _dense_layout(f, cfg, shown)
    index = _subset(layout.n, cfg.max_samples, rng)
    pick = (lambda a: a) if index is None else (lambda a: np.asarray(a[index]))
    labels = targets = None
    if layout.labels:
        labels = np.asarray(f.read(layout.labels))
        labels = (labels if index is None else labels[index]).astype(np.int64)
        _check_labels(_span(labels), layout.labels, cfg.n_classes, shown)
    else:
        targets = pick(f.read(layout.targets))
    return DenseSplit(pick(f.read(layout.inputs)), labels, targets), layout


# ------------------------------------------------------------------ splits


def _check_fractions(cfg) -> None:
    if (cfg.test_path is None and cfg.valid_path is None and cfg.valid_fraction is not None
            and cfg.test_fraction + cfg.valid_fraction >= 1):
        raise ValueError(f"test_fraction + valid_fraction must be below 1, got {cfg.test_fraction} + "
                         f"{cfg.valid_fraction}")


def _check_splits(section, info: ValidationInfo, names: tuple) -> None:
    """The fractions leave samples in every part: with the files checked, of the training file's samples."""
    _check_fractions(section)
    if (info.context or {}).get("check_files"):
        summary = _cached(Path(section.train_path), names)
        if summary is not None:
            n = summary.layout.n
            _split_sizes(min(n, section.max_samples or n), section)


def _split_sizes(n: int, cfg) -> tuple[int, int]:
    """How many of the training file's ``n`` samples are held out for testing and for validation."""
    n_test = int(round(cfg.test_fraction * n)) if cfg.test_path is None else 0
    n_valid = int(round(cfg.valid_fraction * n)) if cfg.valid_path is None and cfg.valid_fraction else 0
    short = [what for what, need, got in (("test", cfg.test_path is None, n_test),
                                          ("validation", cfg.valid_path is None and cfg.valid_fraction, n_valid))
             if need and got < 1]
    if short or n - n_test - n_valid < 1:
        fractions = f"test_fraction {cfg.test_fraction}" if cfg.test_path is None else ""
        if cfg.valid_path is None and cfg.valid_fraction:
            fractions += (" and " if fractions else "") + f"valid_fraction {cfg.valid_fraction}"
        raise ValueError(f"{n} samples of {cfg.train_path} cannot be split with {fractions} "
                         f"(no {short[0] if short else 'training'} sample left); give more samples"
                         + (" or a test_path" if cfg.test_path is None else " or a valid_path"))
    return n_test, n_valid


def _split(parts: dict, cfg, rng: np.random.Generator, length, take) -> dict:
    """Hold out test and validation samples of the training part where no file gives them (one permutation)."""
    need_test, need_valid = "test" not in parts, "valid" not in parts and cfg.valid_fraction is not None
    if not (need_test or need_valid):
        return parts
    train = parts["train"]
    n = length(train)
    try:
        n_test, n_valid = _split_sizes(n, cfg)
    except ValueError as exc:
        raise ValueError(f"dataset.train_path: {exc}") from None
    order = rng.permutation(n)
    out = dict(parts)
    if need_test:
        out["test"] = take(train, np.sort(order[:n_test]))
    if need_valid:
        out["valid"] = take(train, np.sort(order[n_test:n_test + n_valid]))
    out["train"] = take(train, np.sort(order[n_test + n_valid:]))
    return out
