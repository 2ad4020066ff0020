"""The one registry of algorithms and datasets: the seam every network, built in or not, goes through.

An :class:`Algorithm` declares, in one place, everything snnbatch needs to
know about a network: its ``model`` section (a pydantic :class:`Section` whose
``type`` names it), the learning rules that train it (each a :class:`Rule`:
a section whose ``rule`` names it, and the trainer class), the datasets it
accepts (by name, or by the ``kind`` of data a dataset produces) and its
metrics (:class:`Metric`: name, label with unit, which way is better, whether
``snnbatch status`` shows it). A :class:`Dataset` declares a ``dataset``
section and the function that builds the data from it.

Two ways in, one mechanism behind them (:func:`ensure_loaded`):

* an installed package names its declarations under the entry-point groups
  ``snnbatch.algorithms`` and ``snnbatch.datasets`` (an entry point's object is
  an :class:`Algorithm` / :class:`Dataset` or a list of them). snnbatch's own
  five algorithms and four datasets arrive exactly this way, from its own
  ``pyproject.toml``;
* a spec lists local files, ``plugins: [mymodel.py]``: each file is imported
  and its module-level ``ALGORITHMS`` and ``DATASETS`` lists are registered
  (:func:`load_file`).

Each declaration remembers where it came from (:class:`Source`: the
distribution and version, or the file and its SHA-256), which the run store
records so that ``resume`` can tell when the code behind a sweep changed.

This module imports nothing else of snnbatch but its errors: it is the leaf the rest builds on.
Nothing here imports numerics; a trainer is named as ``"module:Class"`` (or
given as a class) and imported only when a task trains.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Union

from pydantic import BaseModel, ConfigDict

from .errors import PluginError

GROUPS = {"algorithm": "snnbatch.algorithms", "dataset": "snnbatch.datasets"}


class Section(BaseModel):
    """Base of every spec section: unknown keys are errors, values are immutable.

    A model section has ``type: Literal["name"] = "name"``, a learning rule
    ``rule: Literal["name"] = "name"``, a dataset ``type: Literal["name"] = "name"``.
    Each field is declared once, here, with its default and (in its docstring or a
    ``Field(description=...)``) its meaning; kernel configs are built from it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


# ``json_schema_extra`` of a key added to a section after sweeps were run with it: at its default
# it stays out of the task id (see snnbatch.jobs.config.task_id), so every existing task keeps its id.
ID_WHEN_SET = {"in_task_id": "when set"}


class RegistryError(PluginError):
    """A declaration snnbatch cannot use, or one that clashes with another; names the plugin."""


@dataclass(frozen=True)
class Metric:
    """A number a trainer reports: per iteration from ``step`` or once from ``evaluate``.

    ``label`` is what axes and tables call it, with its unit (``"firing rate (Hz)"``);
    ``better`` says which way is better (``"higher"`` or ``"lower"``), for choosing the
    best task and for early stopping; ``status`` puts it in the ``snnbatch status`` table;
    ``final``: reported by ``evaluate`` once at the end (held-out metrics), not by ``step``;
    ``validation``: reported by the trainer's ``validate`` on the validation split, named
    ``valid_<x>``, every ``training.validate_every`` iterations (NaN in its history at the
    iterations between; see :mod:`snnbatch.jobs.validation`).
    """

    name: str
    label: str
    better: Literal["higher", "lower"] = "lower"
    status: bool = False
    final: bool = False
    validation: bool = False

    def as_record(self) -> dict[str, Any]:
        return {"label": self.label, "better": self.better, "status": self.status, "final": self.final,
                "validation": self.validation}


@dataclass(frozen=True)
class Rule:
    """A learning rule of one algorithm: its ``learning`` section and the trainer that runs it."""

    section: type[Section]
    trainer: Union[str, type]  # "package.module:Class", imported when a task trains, or the class

    @property
    def name(self) -> str:
        return _tag(self.section, "rule")

    def trainer_class(self) -> type:
        return _resolve(self.trainer)


@dataclass(frozen=True)
class Algorithm:
    """A network: its ``model`` section, the rules that train it, the data it takes, its metrics.

    ``datasets``: dataset names this network accepts; the first is the default
    when a spec gives none. ``data_kinds``: it also accepts every dataset of these
    kinds (``"spikes"``: spike events per sample and a class label). The first rule
    is the default rule.
    """

    model: type[Section]
    rules: tuple[Rule, ...]
    datasets: tuple[str, ...]
    metrics: tuple[Metric, ...]
    data_kinds: tuple[str, ...] = ()
    description: str = ""

    @property
    def name(self) -> str:
        return _tag(self.model, "type")

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)


@dataclass(frozen=True)
class Dataset:
    """A dataset: its ``dataset`` section and ``build(section) -> data``.

    ``kind`` says what the data is, so that algorithms can accept every dataset of a
    kind (``"spikes"``: a :class:`snnbatch.kernels.randman.Dataset` of spike events and
    labels; ``"dense"``: arrays of inputs and labels or target trajectories).
    """

    section: type[Section]
    build: Union[str, Callable[[Any], Any], None]  # "package.module:function", the function, or None
    # (None: the trainer builds the data itself, e.g. when it depends on the model section)
    kind: str = ""
    description: str = ""

    @property
    def name(self) -> str:
        return _tag(self.section, "type")

    def builder(self) -> Callable[[Any], Any]:
        if self.build is None:
            raise TypeError(f"dataset {self.name!r} is built by the trainers that accept it, not on its own")
        return _resolve(self.build)


@dataclass(frozen=True)
class Source:
    """Where declarations came from: ``entry point`` of an installed distribution, or a ``file``."""

    kind: Literal["entry point", "file"]
    name: str  # the distribution's name, or the file's path
    version: str = ""  # the distribution's version
    sha256: str = ""  # a file plugin's content hash
    entry_point: str = ""  # "group:name = value"

    def as_record(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}

    def describe(self) -> str:
        if self.kind == "file":
            return f"plugin file {self.name}"
        return f"{self.name} {self.version}".strip() + (f" (entry point {self.entry_point})" if self.entry_point else "")


@dataclass
class _Registry:
    algorithms: dict[str, Algorithm] = field(default_factory=dict)
    datasets: dict[str, Dataset] = field(default_factory=dict)
    rules: dict[str, type[Section]] = field(default_factory=dict)  # rule name -> its section (shared by algorithms)
    sources: dict[tuple[str, str], Source] = field(default_factory=dict)  # (what, name) -> source
    files: dict[str, Source] = field(default_factory=dict)  # resolved path -> source
    entry_points_loaded: bool = False
    generation: int = 0


_REGISTRY = _Registry()
_LOCK = threading.RLock()
_LISTENERS: list[Callable[[], None]] = []


# ------------------------------------------------------------------ reading the registry


def algorithms() -> dict[str, Algorithm]:
    ensure_loaded()
    return dict(_REGISTRY.algorithms)


def datasets() -> dict[str, Dataset]:
    ensure_loaded()
    return dict(_REGISTRY.datasets)


def rule_sections() -> dict[str, type[Section]]:
    """Every learning rule's section by name (rules shared by several algorithms appear once)."""
    ensure_loaded()
    return dict(_REGISTRY.rules)


def algorithm(name: str) -> Algorithm:
    found = algorithms().get(name)
    if found is None:
        raise KeyError(f"unknown model type {name!r}; installed: {', '.join(sorted(_REGISTRY.algorithms))}")
    return found


def dataset(name: str) -> Dataset:
    found = datasets().get(name)
    if found is None:
        raise KeyError(f"unknown dataset type {name!r}; installed: {', '.join(sorted(_REGISTRY.datasets))}")
    return found


def accepted_datasets(alg: Algorithm) -> list[str]:
    """The names of every dataset ``alg`` takes: its own list, then every dataset of its kinds."""
    names = list(alg.datasets)
    names += [n for n, d in datasets().items() if d.kind and d.kind in alg.data_kinds and n not in names]
    return names


def source(what: str, name: str) -> Source | None:
    return _REGISTRY.sources.get((what, name))


def metrics(alg: Algorithm) -> dict[str, Metric]:
    return {m.name: m for m in alg.metrics}


def generation() -> int:
    """A number that changes whenever something is registered (for caches built from the registry)."""
    ensure_loaded()
    return _REGISTRY.generation


def on_change(callback: Callable[[], None]) -> None:
    """Call ``callback()`` after each batch of registrations (config classes rebuild their unions)."""
    _LISTENERS.append(callback)


# ------------------------------------------------------------------ registering


def register(*items: Algorithm | Dataset, source: Source | None = None) -> None:
    """Register declarations (all or none); the registry's public seam for built-ins and plugins alike."""
    with _LOCK:
        _register(items, source)
        _changed()


def _register(items, source: Source | None) -> None:
    origin = source.describe() if source else "snnbatch.jobs.registry.register()"
    staged_alg, staged_data, staged_rules = {}, {}, {}
    for item in items:
        if isinstance(item, Algorithm):
            _check_section(item.model, "type", "model", origin)
            name = item.name
            _check_new("algorithm", name, item, _REGISTRY.algorithms, origin)
            if not item.rules:
                raise RegistryError(f"{origin}: algorithm {name!r} declares no learning rule")
            if not item.datasets and not item.data_kinds:
                raise RegistryError(f"{origin}: algorithm {name!r} declares no dataset")
            for r in item.rules:
                if not isinstance(r, Rule):
                    raise RegistryError(f"{origin}: algorithm {name!r}: rules must be snnbatch Rule(...) objects, "
                                        f"got {type(r).__name__}")
                _check_section(r.section, "rule", "learning", origin)
                known = _REGISTRY.rules.get(r.name, staged_rules.get(r.name))
                if known is not None and known is not r.section:
                    raise RegistryError(f"{origin}: learning rule {r.name!r} of algorithm {name!r} has a section "
                                        f"of its own, but {r.name!r} is already declared with another one "
                                        f"({known.__module__}.{known.__qualname__}); reuse it or choose another name")
                staged_rules[r.name] = r.section
            for m in item.metrics:
                if not isinstance(m, Metric):
                    raise RegistryError(f"{origin}: algorithm {name!r}: metrics must be snnbatch Metric(...) objects")
                if m.better not in ("higher", "lower"):
                    raise RegistryError(f"{origin}: metric {m.name!r}: better must be 'higher' or 'lower'")
                if m.validation and m.final:
                    raise RegistryError(f"{origin}: metric {m.name!r}: a validation metric is reported during "
                                        "training, by validate, not once at the end: it cannot be final")
            staged_alg[name] = item
        elif isinstance(item, Dataset):
            _check_section(item.section, "type", "dataset", origin)
            _check_new("dataset", item.name, item, _REGISTRY.datasets, origin)
            staged_data[item.name] = item
        else:
            raise RegistryError(f"{origin}: expected snnbatch Algorithm(...) or Dataset(...) objects, "
                                f"got {type(item).__name__}")
    for what, staged, table in (("algorithm", staged_alg, _REGISTRY.algorithms),
                                ("dataset", staged_data, _REGISTRY.datasets)):
        for name, item in staged.items():
            table[name] = item
            if source is not None:
                _REGISTRY.sources[(what, name)] = source
    _REGISTRY.rules.update(staged_rules)


def _check_new(what: str, name: str, item, table: dict, origin: str) -> None:
    old = table.get(name)
    if old is not None and old is not item:
        before = _REGISTRY.sources.get((what, name))
        where = before.describe() if before else "an earlier registration"
        raise RegistryError(f"{origin}: {what} {name!r} is already declared by {where}; choose another name")


def _check_section(cls, tag: str, section: str, origin: str) -> None:
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        raise RegistryError(f"{origin}: the {section} section must be a snnbatch Section (pydantic model) class, "
                            f"got {cls!r}")
    field_ = cls.model_fields.get(tag)
    if field_ is None or not isinstance(field_.default, str):
        raise RegistryError(f"{origin}: {cls.__qualname__}: a {section} section needs "
                            f"`{tag}: Literal[\"name\"] = \"name\"` naming it")
    if cls.model_config.get("extra") != "forbid":
        raise RegistryError(f"{origin}: {cls.__qualname__} must forbid unknown keys: subclass snnbatch Section")


def _tag(cls, tag: str) -> str:
    return cls.model_fields[tag].default


def _changed() -> None:
    _REGISTRY.generation += 1
    for callback in list(_LISTENERS):
        callback()


# ------------------------------------------------------------------ the two ways in


def ensure_loaded() -> None:
    """Register what installed packages declare under the entry-point groups (once per process)."""
    if _REGISTRY.entry_points_loaded:
        return
    with _LOCK:
        if _REGISTRY.entry_points_loaded:
            return
        _REGISTRY.entry_points_loaded = True  # set first: a plugin that reads the registry must not recurse
        try:
            for group in (GROUPS["dataset"], GROUPS["algorithm"]):
                for ep in sorted(importlib.metadata.entry_points(group=group), key=_builtin_first):
                    src = _entry_point_source(ep)
                    where = f"plugin {src.describe()}"
                    try:
                        obj = ep.load()
                    except Exception as exc:  # a broken plugin: say which one, never a bare traceback
                        raise RegistryError(f"{where}: cannot be imported: {type(exc).__name__}: {exc}") from exc
                    _register(_as_items(obj, where), src)
        except BaseException:
            _REGISTRY.entry_points_loaded = False
            raise
        finally:
            _changed()


def _builtin_first(ep) -> tuple[int, str, str]:
    """snnbatch's own first, then by name: the same order in every process."""
    dist = getattr(ep, "dist", None)
    return (0 if dist is not None and dist.name == "snnbatch" else 1, ep.name, ep.value)


def _entry_point_source(ep) -> Source:
    dist = getattr(ep, "dist", None)
    return Source("entry point", dist.name if dist else ep.module, dist.version if dist else "",
                  entry_point=f"{ep.group}:{ep.name} = {ep.value}")


def _as_items(obj, where: str) -> list:
    items = list(obj) if isinstance(obj, (list, tuple)) else [obj]
    for item in items:
        if not isinstance(item, (Algorithm, Dataset)):
            raise RegistryError(f"{where}: expected an snnbatch Algorithm(...) or Dataset(...) (or a list), "
                                f"got {type(item).__name__}")
    return items


def file_hash(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_file(path: str | Path) -> Source:
    """Import a plugin file and register its module-level ``ALGORITHMS`` and ``DATASETS`` lists.

    A file already loaded (same resolved path and content) is not imported again.
    """
    ensure_loaded()
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise RegistryError(f"plugin file not found: {path}")
    digest = file_hash(path)
    with _LOCK:
        known = _REGISTRY.files.get(str(path))
        if known is not None:
            if known.sha256 != digest:
                raise RegistryError(f"plugin file {path} changed since this process loaded it; "
                                    "start a new process to load the new code")
            return known
        src = Source("file", str(path), sha256=digest)
        name = f"snnbatch_plugin_{path.stem}_{digest[:12]}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise RegistryError(f"plugin file {path}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[name]
            raise RegistryError(f"plugin file {path}: cannot be imported: {type(exc).__name__}: {exc}") from exc
        items = list(getattr(module, "DATASETS", [])) + list(getattr(module, "ALGORITHMS", []))
        if not items:
            del sys.modules[name]
            raise RegistryError(f"plugin file {path}: declares nothing: define ALGORITHMS = [Algorithm(...)] "
                                "and/or DATASETS = [Dataset(...)] at module level")
        _register(_as_items(items, f"plugin file {path}"), src)
        _REGISTRY.files[str(path)] = src
        _changed()
        return src


def loaded_sources() -> list[Source]:
    """The source of every plugin in use: installed distributions other than snnbatch, and files."""
    ensure_loaded()
    seen: dict[tuple, Source] = {}
    for src in _REGISTRY.sources.values():
        if src.kind == "entry point" and src.name == "snnbatch":
            continue
        seen[(src.kind, src.name)] = src
    return list(seen.values())


def sources_for(names: dict[str, set[str]]) -> list[Source]:
    """The sources behind the named algorithms and datasets (``{"algorithm": {...}, "dataset": {...}}``)."""
    found: dict[tuple, Source] = {}
    for what, wanted in names.items():
        for name in sorted(wanted):
            src = _REGISTRY.sources.get((what, name))
            if src is not None:
                found[(src.kind, src.name)] = src
    return list(found.values())


def _resolve(ref):
    """A class or function given as itself or as ``"package.module:attribute"``."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj
