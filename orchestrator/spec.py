"""The sweep spec: one YAML file, validated whole before anything runs.

A spec holds the base task config (sections of
:class:`snnbatch.jobs.config.TaskConfig`), a ``name``, a base ``seed`` and a
``sweep`` section::

    sweep:
      grid:   {lr: [1e-3, 3e-3], n_hidden: [64, 128]}   # every combination
      zip:    {tau_mem: [0.01, 0.02], tau_syn: [0.005, 0.01]}  # taken together, index by index
      random:                                            # drawn from their own seed
        samples: 4
        seed: 7
        params: {weight_scale: {loguniform: [3, 10]}, batch_size: {choice: [128, 256]}}
      seeds: 3                                           # replicates (or a list of seeds)

Axis keys are dotted paths (``training.lr``) or, when unambiguous, a field
name alone (``lr``). Every problem is reported at once, each with its key
path, e.g. ``sweep.grid.lr[2]: expected a positive number, got 'fast'``.
"""
from __future__ import annotations

import copy
import difflib
import itertools
import os
import re
import typing
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from ..jobs import registry
from ..jobs.config import (
    UNION_TAGS,
    Checkpoint,
    DatasetSection,
    LearningSection,
    ModelSection,
    Resources,
    TaskConfig,
    Training,
    compatibility_problems,
    fill_union_tags,
    rebuild_with_registry,
    section_classes,
    validate_section,
)
from ..jobs.errors import PluginError, SpecError

SECTIONS = ("model", "dataset", "learning", "training", "checkpoint", "resources")
# Validation context of a spec: checks that need this machine (data files exist) run here, once,
# and not when a stored task config is read back on a compute node or by `snnbatch status`.
CHECK = {"check_files": True}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Distribution(_Strict):
    uniform: Optional[tuple[float, float]] = None
    loguniform: Optional[tuple[float, float]] = None
    choice: Optional[list[Any]] = None
    randint: Optional[tuple[int, int]] = None


class RandomSweep(_Strict):
    samples: PositiveInt
    seed: NonNegativeInt = 0
    params: dict[str, Distribution]


class Halving(_Strict):
    """Successive halving: every task trains to a rung's budget and parks; the best 1/eta go on."""

    metric: Optional[str] = None
    """the metric tasks are ranked by at each rung (its declared direction says which way is better); default:
    the validation metric that selects the kept state when the tasks validate (training.validate_every),
    else the training metric of that name (valid_accuracy -> accuracy)"""
    min_iterations: PositiveInt
    """the first rung's budget, in iterations"""
    eta: int = Field(3, ge=2)
    """rung budgets grow by this factor, and 1/eta of a rung's tasks go on to the next"""
    max_iterations: Optional[PositiveInt] = None
    """no rung beyond this budget (default: the training length); the tasks promoted from the last rung
    train to the end"""
    window: Optional[PositiveInt] = None
    """a training metric's value at a rung is its mean over this many iterations before the budget
    (default: a quarter of min_iterations); a validation metric's is its last validated value"""

    def rungs(self, length: int) -> list[int]:
        """The rung budgets for tasks of ``length`` iterations: min_iterations·eta^k below the end."""
        top = min(self.max_iterations or length, length)
        out, budget = [], self.min_iterations
        while budget <= top and budget < length:
            out.append(budget)
            budget *= self.eta
        return out

    def metric_for(self, alg, training: dict) -> str:
        """The metric a task of algorithm ``alg`` with this ``training`` section is ranked by."""
        if self.metric is not None:
            return self.metric
        validated = [m for m in alg.metrics if getattr(m, "validation", False)]
        if not validated:
            return next((m.name for m in alg.metrics if m.status and not m.final), alg.metrics[0].name)
        chosen = training.get("select_on") or next((m for m in validated if m.status), validated[0]).name
        if training.get("validate_every"):
            return chosen
        plain = chosen.removeprefix("valid_")
        names = [m.name for m in alg.metrics if not m.final and not getattr(m, "validation", False)]
        return plain if plain in names else names[0]

    @property
    def window_iterations(self) -> int:
        return self.window or max(1, self.min_iterations // 4)


class Sweep(_Strict):
    grid: dict[str, list[Any]] = {}
    zip: dict[str, list[Any]] = {}
    random: Optional[RandomSweep] = None
    seeds: Union[PositiveInt, list[NonNegativeInt]] = 1
    halving: Optional[Halving] = None


class SubSweep(Sweep):
    """One sweep of a list: its own axes, and ``set`` (dotted keys) changing the base config for it."""

    set: dict[str, Any] = {}


class Spec(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # no plugin loads at import
    name: str = Field(default="sweep", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    description: str = ""
    seed: NonNegativeInt = 0
    plugins: list[str] = []  # plugin files, relative to the spec (made absolute when it is loaded)
    model: ModelSection
    dataset: DatasetSection
    learning: LearningSection
    training: Training = Training()
    checkpoint: Checkpoint = Checkpoint()
    resources: Resources = Resources()
    sweep: Union[Sweep, list[SubSweep]] = Sweep()
    # Whether the file gave training.iterations or training.epochs; if not, the default length
    # (epochs) yields to a sweep over either.
    _length_given: bool = PrivateAttr(default=True)
    _overrides: list = PrivateAttr(default_factory=list)  # the command-line overrides applied
    _parts: list = PrivateAttr(default_factory=list)  # a list sweep: one validated Spec per sub-sweep
    _set: dict = PrivateAttr(default_factory=dict)  # a sub-sweep's own settings (its ``set``)

    @model_validator(mode="before")
    @classmethod
    def _tags(cls, data):
        if isinstance(data, dict):  # a section left empty (`model:` with nothing under it) takes its defaults
            data = {k: v for k, v in data.items() if not (v is None and k in (*SECTIONS, "sweep"))}
        return fill_union_tags(data)

    @model_validator(mode="wrap")
    @classmethod
    def _remember_length(cls, data, handler):
        spec = handler(data)
        training = data.get("training") if isinstance(data, dict) else None
        if isinstance(training, dict):
            spec._length_given = training.get("iterations") is not None or training.get("epochs") is not None
        elif training is None:
            spec._length_given = False
        return spec

    def base_config(self) -> dict:
        """The base task config as plain data (the sweep applies on top of it)."""
        data = self.model_dump(mode="json", include=set(SECTIONS))
        data["seed"] = self.seed
        if not self._length_given:  # TaskConfig fills in the default again unless a sweep sets one
            data["training"]["epochs"] = None
        return data

    def axes(self) -> dict[str, tuple[str, ...]]:
        """Every swept key, resolved to its full path (of every sub-sweep, for a list)."""
        if self._parts:
            return {k: v for part in self._parts for k, v in part.axes().items()}
        keys = list(self.sweep.grid) + list(self.sweep.zip)
        if self.sweep.random:
            keys += list(self.sweep.random.params)
        return {k: resolve_key(k, self.base_config()) for k in keys}


rebuild_with_registry(Spec)


# ------------------------------------------------------------------ loading


def load(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Spec:
    """Read and validate ``path`` with command-line ``overrides``; raises :class:`SpecError` listing every problem."""
    path = str(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise SpecError(path, ["file not found"]) from None
    except IsADirectoryError:
        raise SpecError(path, ["is a directory, not a spec file"]) from None
    except OSError as exc:
        raise SpecError(path, [f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(path, [f"line {line}: not UTF-8 text (byte {raw[exc.start]:#04x}); save the file as UTF-8"]) from None
    return parse(text, path, overrides)


class _Duplicates:
    """A YAML loader that also records duplicated keys, which PyYAML would otherwise resolve silently by
    keeping the last."""

    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            try:
                key = self.construct_object(key_node, deep=True)
                hash(key)
            except (TypeError, yaml.YAMLError):
                continue  # an unhashable key: SafeLoader reports it below
            line = key_node.start_mark.line + 1
            if key in seen:
                self.duplicates.append(f"line {line}: duplicate key {key!r} (first given on line {seen[key]})")
            else:
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


class _Loader(_Duplicates, yaml.SafeLoader):
    """``yaml.SafeLoader`` (plain data only: no ``!!python`` tags) that records duplicated keys."""


# The same on libyaml's parser when PyYAML has it (a spec with a list of 10,000 values: 0.05 s, not 2 s);
# a text it refuses is read again by _Loader, whose messages are the ones a spec error shows.
_FastLoader = type("_FastLoader", (_Duplicates, yaml.CSafeLoader), {}) if hasattr(yaml, "CSafeLoader") else _Loader

# YAML 1.1 (PyYAML) reads a float only with a dot: 2e-3 and 1E5 would be strings. Read every float
# form as a number, as YAML 1.2 does; integers stay integers (their resolver is tried first).
for _loader in {_Loader, _FastLoader}:
    _loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"""^(?:
     [-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X), list("-+0123456789."))


def load_yaml(text: str):
    """The data of a YAML text as a spec reads it (numbers in every float form); raises yaml.YAMLError."""
    data, _ = _load_yaml(text)
    return data


def _load_yaml(text: str):
    for kind in (_FastLoader, _Loader) if _FastLoader is not _Loader else (_Loader,):
        loader = kind(text)
        try:
            return loader.get_single_data(), loader.duplicates
        except yaml.YAMLError:
            if kind is _Loader:
                raise
        finally:
            loader.dispose()


def parse(text: str, path: str = "<spec>", overrides: Sequence[str] = ()) -> Spec:
    """Validate a spec's text, with command-line ``overrides`` (``KEY=VALUE``, ``+KEY=VALUE``, ``~KEY``) applied."""
    try:
        data, duplicates = _load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(path, [f"{where}not valid YAML: {problem}"]) from None
    if duplicates:
        raise SpecError(path, duplicates)
    if data is None:
        raise SpecError(path, ["the file is empty (or only comments): write at least one section, e.g. "
                               "'model: {n_hidden: 64}', or '{}' for a single task with every default"])
    if not isinstance(data, dict):
        raise SpecError(path, [f"(top level): expected a mapping of sections, got {type(data).__name__}"])
    data, origins = apply_overrides(data, overrides, path)
    spec = validate(data, path, origins)
    spec._overrides = list(overrides)
    return spec


# ------------------------------------------------------------------ command-line overrides

TOP_LEVEL = ("name", "description", "seed", "plugins", *SECTIONS, "sweep")
_AXIS_PARENTS = (("sweep", "grid"), ("sweep", "zip"), ("sweep", "random", "params"))


def _override_path(key: str) -> list[str]:
    """``sweep.grid.training.lr`` -> [sweep, grid, training.lr]: an axis key is one key, dots and all."""
    parts = key.split(".")
    for parent in _AXIS_PARENTS:
        n = len(parent)
        if tuple(parts[:n]) == parent and len(parts) > n:
            rest = parts[n:]
            if parent[-1] == "params" and len(rest) > 1 and rest[-1] in ("uniform", "loguniform", "choice", "randint"):
                return [*parent, ".".join(rest[:-1]), rest[-1]]
            return [*parent, ".".join(rest)]
    return parts


def apply_overrides(data: dict, overrides: Sequence[str], path: str = "<spec>") -> tuple[dict, dict[str, str]]:
    """The spec's data with Hydra-style overrides applied, and which override set each key path.

    ``KEY=VALUE`` sets a key (VALUE is read as YAML: ``0.01``, ``[1e-3, 3e-3]``, ``{a: 1}``);
    ``+KEY=VALUE`` adds one; ``~KEY`` removes one from the file (it takes its default). Keys are
    dotted paths as in the spec (``training.lr``, ``sweep.grid.lr``). Every malformed override
    is reported at once, each naming the override; nothing is written.
    """
    data = copy.deepcopy(data)
    origins: dict[str, str] = {}
    problems = []
    for text in overrides:
        where = f"override '{text}'"
        delete = text.startswith("~")
        body = text[1:] if text[:1] in "~+" else text
        key, sep, raw = body.partition("=")
        if not key or (not sep and not delete) or key.startswith(".") or key.endswith(".") or ".." in key:
            problems.append(f"{where}: expected KEY=VALUE (e.g. training.lr=0.01), +KEY=VALUE or ~KEY")
            continue
        parts = _override_path(key)
        if parts[0] not in TOP_LEVEL:
            close = difflib.get_close_matches(parts[0], TOP_LEVEL, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"{where}: unknown key '{parts[0]}'{hint}; the spec's keys: {', '.join(TOP_LEVEL)}")
            continue
        if delete:
            node = data
            for part in parts[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict) or parts[-1] not in node:
                problems.append(f"{where}: {key} is not in the spec, nothing to remove")
                continue
            del node[parts[-1]]
            origins[key] = text
            continue
        try:
            value = load_yaml(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            problems.append(f"{where}: the value is not valid YAML: {getattr(exc, 'problem', None) or exc}")
            continue
        node = data
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                problems.append(f"{where}: {'.'.join(parts[:i + 1])} is {nxt!r} in the spec, not a mapping of keys")
                break
            node = nxt
        else:
            node[parts[-1]] = value
            origins[key] = text
    if problems:
        raise SpecError("command line", problems)
    return data, origins


def _name_overrides(problems: list[str], origins: dict[str, str]) -> list[str]:
    """Say which override a problem comes from: ``training.lr: ... (from the override 'training.lr=x')``."""
    if not origins:
        return problems
    out = []
    for p in problems:
        key = p.split(":", 1)[0]
        hit = next((o for k, o in sorted(origins.items(), key=lambda kv: -len(kv[0]))
                    if key == k or key.startswith(k + ".") or key.startswith(k + "[")), None)
        out.append(f"{p} (from the override '{hit}')" if hit else p)
    return out


def validate(data: dict, path: str = "<spec>", origins: dict[str, str] | None = None) -> Spec:
    try:
        registry.ensure_loaded()
    except PluginError as exc:
        raise SpecError(path, [f"(installed plugins): {exc}"]) from None
    data = {**data, "plugins": load_plugins(data.get("plugins"), path)} if "plugins" in data else data
    if isinstance(data.get("sweep"), list):
        return _validate_list_sweep(data, path, origins or {})
    problems: list[str] = []
    try:
        spec = Spec.model_validate(data, context=CHECK)
    except ValidationError as exc:
        errors = _merge_seed_errors(_one_sweep_form(exc.errors()), data)
        problems = [_format(err, Spec, data) for err in errors]
        problems += _sweep_problems_beside(data, errors)
        raise SpecError(path, _name_overrides(_unique(problems), origins or {})) from None
    problems += _check_sweep(spec)
    if problems:
        raise SpecError(path, _name_overrides(_unique(problems), origins or {}))
    return spec


def _validate_list_sweep(data: dict, path: str, origins: dict[str, str]) -> Spec:
    """A ``sweep`` that is a list: each sub-sweep is the spec with its ``set`` applied and its own axes.

    Every sub-sweep is validated whole (problems named ``sweep[i]...``); the spec keeps them as its
    parts, and the planner unites their tasks (a task in two sub-sweeps appears once).
    """
    subs = data["sweep"]
    problems, parts = [], []
    if not subs:
        raise SpecError(path, ["sweep: expected a mapping of axes, or a non-empty list of sub-sweeps"])
    halving = [f"sweep[{i}].halving: halving ranks the whole sweep; give it with a single sweep (a mapping), "
               "not in a list of sub-sweeps" for i, sub in enumerate(subs) if isinstance(sub, dict) and "halving" in sub]
    if halving:
        raise SpecError(path, _name_overrides(halving, origins))
    for i, sub in enumerate(subs):
        where = f"sweep[{i}]"
        if not isinstance(sub, dict):
            problems.append(f"{where}: expected a mapping (grid, zip, random, seeds, set), got {sub!r}")
            continue
        sub = dict(sub)
        settings = sub.pop("set", None) or {}
        if not isinstance(settings, dict):
            problems.append(f"{where}.set: expected a mapping of dotted keys to values, got {settings!r}")
            continue
        part = {k: v for k, v in data.items() if k != "sweep"}
        try:
            part, _ = apply_overrides(part, [f"{k}={_yaml_value(v)}" for k, v in settings.items()], path)
        except SpecError as exc:
            problems += [p.replace("override '", f"{where}.set: '", 1) for p in exc.problems]
            continue
        part["sweep"] = sub
        try:
            spec = validate(part, path, origins)
        except SpecError as exc:
            problems += [_in_sub_sweep(p, i, settings) for p in exc.problems]
            continue
        spec._set = dict(settings)
        parts.append(spec)
    if problems:
        raise SpecError(path, _unique(problems))
    first = parts[0]
    spec = Spec.model_validate({**{k: v for k, v in data.items() if k != "sweep"},
                                "sweep": [dict(s) for s in subs]}, context=CHECK)
    spec._length_given = first._length_given
    spec._parts = parts
    return spec


def _yaml_value(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**9).strip().removesuffix("...").strip()


def _in_sub_sweep(problem: str, i: int, settings: dict) -> str:
    """A sub-sweep's problem, named by its place: ``sweep.grid.x`` -> ``sweep[1].grid.x``."""
    if problem.startswith("sweep"):
        return f"sweep[{i}]" + problem[len("sweep"):]
    key = problem.split(":", 1)[0]
    if any(key == k or key.startswith(k + ".") for k in settings):
        return f"sweep[{i}].set: {problem}"
    return problem


def load_plugins(files, path: str) -> list[str]:
    """Import the spec's ``plugins`` files (paths relative to the spec) and return their absolute paths.

    Every problem (not a list, a missing file, a file that does not import or declares
    nothing snnbatch can use) is a spec error naming ``plugins[i]``.
    """
    if files is None:
        return []
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise SpecError(path, [f"plugins: expected a list of Python files, got {files!r}"])
    base = Path(path).resolve().parent if path != "<spec>" else Path.cwd()
    resolved, problems = [], []
    for i, name in enumerate(files):
        file = (base / Path(name).expanduser()).resolve()
        if not file.is_file():
            problems.append(f"plugins[{i}]: file not found: {name} (looked for {file}; "
                            "paths are relative to the spec)")
            continue
        if file.suffix != ".py":
            problems.append(f"plugins[{i}]: {name}: expected a Python file (.py)")
            continue
        try:
            registry.load_file(file)
        except PluginError as exc:
            problems.append(f"plugins[{i}]: {exc}")
            continue
        resolved.append(str(file))
    if problems:
        raise SpecError(path, problems)
    return resolved


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _one_sweep_form(errors: list) -> list:
    """``sweep`` is one sweep or a list (validated apart): drop the list form's errors and the form's name."""
    out = []
    for err in errors:
        loc = tuple(err["loc"])
        if loc[:1] == ("sweep",) and len(loc) > 1 and loc[1] in ("Sweep", "list[SubSweep]"):
            if loc[1] != "Sweep":
                continue
            err = {**err, "loc": ("sweep", *loc[2:])}
        out.append(err)
    return out


def _merge_seed_errors(errors: list, data: dict) -> list:
    """``sweep.seeds`` is a count or a list: one error in the words of the form given, not one per form."""
    out, seeds_msg = [], None
    given = data.get("sweep", {}).get("seeds") if isinstance(data.get("sweep"), dict) else None
    for err in errors:
        loc = err["loc"]
        if tuple(loc[:2]) != ("sweep", "seeds") or len(loc) < 3:
            out.append(err)
            continue
        member = str(loc[2])
        if isinstance(given, list) and member.startswith("list") and len(loc) > 3:
            out.append({"type": "seeds", "loc": ("sweep", "seeds", *loc[3:]), "input": err["input"],
                        "msg": "expected an integer >= 0"})
        elif not isinstance(given, list) and seeds_msg is None:
            seeds_msg = {"type": "seeds", "loc": ("sweep", "seeds"), "input": given,
                         "msg": "expected a positive number of replicates or a list of seeds"}
            out.append(seeds_msg)
    return out


def _sweep_problems_beside(data: dict, errors: list) -> list[str]:
    """The sweep's problems when other keys have problems too, so that all are reported at once.

    The sweep is checked against the file with the faulty keys left out (so at their defaults);
    not when the sweep itself, a whole section or a section's type is at fault, where the
    defaults could make up problems that are not there. When the only faults are files that
    the spec names and this machine lacks, the sweep is checked against the file as it is.
    """
    try:  # the same file, without the checks that need this machine (data files that exist)
        return [p for p in _check_sweep(Spec.model_validate(data)) if not p.startswith("sweep (combination")]
    except ValidationError:
        pass
    repaired = copy.deepcopy(data)
    for err in errors:
        loc = list(err["loc"])
        if not loc or loc[0] == "sweep" or err["type"].startswith("union_tag"):
            return []
        if len(loc) == 1:
            if loc[0] in SECTIONS:
                return []
            repaired.pop(loc[0], None)
            continue
        loc = _strip_tags(loc, data)
        section = repaired.get(loc[0])
        if not isinstance(section, dict) or len(loc) < 2:
            return []
        section.pop(loc[1], None)
    try:
        spec = Spec.model_validate(repaired, context=CHECK)
    except ValidationError:
        return []
    return [p for p in _check_sweep(spec) if not p.startswith("sweep (combination")]


# ------------------------------------------------------------------ the sweep section


def leaf_paths(config: dict) -> list[tuple[str, ...]]:
    """Every settable field of a base task config, as paths (union tags excluded)."""
    paths = []
    for section in SECTIONS:
        if section == "resources" or section == "checkpoint":
            continue
        for key in config[section]:
            if key != UNION_TAGS.get(section):
                paths.append((section, key))
    return paths


def resolve_key(key: str, config: dict) -> tuple[str, ...]:
    paths = leaf_paths(config)
    if "." in key:
        path = tuple(key.split("."))
        if path in paths:
            return path
        raise KeyError(_unknown_axis(key, [".".join(p) for p in paths]))
    matches = [p for p in paths if p[-1] == key]
    if key == "seed":  # a bare `seed` reads as the task's seed, which only sweep.seeds sets
        raise KeyError("'seed' is ambiguous: write dataset.seed for the data set's seed; "
                       "the task's seed is set by sweep.seeds")
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise KeyError(f"'{key}' is ambiguous: write one of {', '.join('.'.join(m) for m in matches)}")
    raise KeyError(_unknown_axis(key, sorted({p[-1] for p in paths})))


def _unknown_axis(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown parameter '{key}'{hint}; sweepable: {', '.join(valid)}"


def _check_sweep(spec: Spec) -> list[str]:
    problems = []
    sweep = spec.sweep
    base = spec.base_config()
    axes: list[tuple[str, str, list[Any]]] = [("grid", k, v) for k, v in sweep.grid.items()]
    axes += [("zip", k, v) for k, v in sweep.zip.items()]
    seen: dict[tuple[str, ...], str] = {}
    for kind, key, values in axes:
        where = f"sweep.{kind}.{key}"
        try:
            path = resolve_key(key, base)
        except KeyError as exc:
            problems.append(f"{where}: {exc.args[0]}")
            continue
        if path in seen:
            problems.append(f"{where}: sets {'.'.join(path)} already set by {seen[path]}")
        seen[path] = where
        if not values:
            problems.append(f"{where}: expected a non-empty list of values")
        for i, value in enumerate(values):
            msg = _check_value(base, path, value)
            if msg:
                problems.append(f"{where}[{i}]: {msg}")
    lengths = {k: len(v) for k, v in sweep.zip.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        problems.append(f"sweep.zip: all zipped axes need the same number of values ({detail})")
    if sweep.random:
        for key, dist in sweep.random.params.items():
            where = f"sweep.random.params.{key}"
            try:
                path = resolve_key(key, base)
            except KeyError as exc:
                problems.append(f"{where}: {exc.args[0]}")
                continue
            if path in seen:
                problems.append(f"{where}: sets {'.'.join(path)} already set by {seen[path]}")
            seen[path] = where
            kinds = [k for k in ("uniform", "loguniform", "choice", "randint") if getattr(dist, k) is not None]
            if len(kinds) != 1:
                problems.append(f"{where}: give exactly one of uniform, loguniform, choice, randint")
                continue
            k = kinds[0]
            bounds = getattr(dist, k)
            if k in ("uniform", "loguniform", "randint") and not bounds[0] < bounds[1]:
                problems.append(f"{where}.{k}: expected [low, high] with low < high, got {list(bounds)}")
            elif k == "loguniform" and bounds[0] <= 0:
                problems.append(f"{where}.loguniform: bounds must be positive, got {list(bounds)}")
            elif k == "choice" and not bounds:
                problems.append(f"{where}.choice: expected a non-empty list")
            elif k in ("uniform", "loguniform") and "integer" in (_describe(_model_at(TaskConfig, list(path), base),
                                                                          path[-1]) or ""):
                problems.append(f"{where}.{k}: draws real numbers, but {'.'.join(path)} takes integers; "
                                "use randint or choice")
            else:
                samples = list(bounds) if k == "choice" else [bounds[0], bounds[1]]
                for i, value in enumerate(samples):
                    if k == "loguniform" or k == "uniform":
                        value = float(value)
                    msg = _check_value(base, path, value)
                    if msg:
                        problems.append(f"{where}.{k}[{i}]: {msg}")
    problems += _check_length_axes(base, seen)
    if isinstance(sweep.seeds, list) and len(set(sweep.seeds)) != len(sweep.seeds):
        problems.append("sweep.seeds: seeds must be distinct")
    # the base config's rule, data and metrics fit the model or not, whatever the axes' faults
    problems += [f"{key}: {msg}" for key, msg in compatibility_problems(spec)]
    if not problems:
        problems += _check_halving(spec)
    if not problems:
        for i, config in enumerate(_sample_configs(spec)):
            try:
                TaskConfig.model_validate(config, context=CHECK)
            except ValidationError as exc:
                for err in exc.errors():
                    problems.append(f"sweep (combination {i}): {_format(err, TaskConfig, config)}")
                break
    return problems


def _check_halving(spec: Spec) -> list[str]:
    """``sweep.halving`` against every task of the sweep: a metric each task reports, rungs within the
    training length, and early stopping that cannot end a task between rungs."""
    rule = spec.sweep.halving
    if rule is None:
        return []
    problems = []
    for config in _sample_configs(spec):
        training, model = config["training"], config["model"].get("type", "lif")
        alg = registry.algorithms().get(model)
        if alg is None:
            continue
        during = [m.name for m in alg.metrics if not m.final]
        metric = rule.metric_for(alg, training)
        validated = {m.name for m in alg.metrics if getattr(m, "validation", False)}
        every = training.get("validate_every")
        if metric not in during:
            problems.append(f"sweep.halving.metric: unknown metric {metric!r} for model '{model}' (choose from "
                            f"the metrics of each iteration and the validation metrics: {', '.join(during)})")
        elif metric in validated and not every:
            problems.append(f"sweep.halving.metric: {metric!r} is measured only when validating: set "
                            "training.validate_every, or rank by a training metric")
        elif metric in validated and rule.min_iterations % every:
            problems.append(f"sweep.halving.min_iterations: {rule.min_iterations} is not a multiple of "
                            f"training.validate_every ({every}): every rung's budget must fall on a validation")
        length = training.get("iterations")
        if length is None:
            problems.append("sweep.halving: rung budgets are iterations: give the training length as "
                            "training.iterations, not training.epochs")
            break
        if rule.min_iterations >= length:
            problems.append(f"sweep.halving.min_iterations: {rule.min_iterations} is not below the training length "
                            f"(training.iterations = {length}): no rung to rank at")
        if rule.max_iterations is not None and rule.max_iterations > length:
            problems.append(f"sweep.halving.max_iterations: {rule.max_iterations} is beyond the training length "
                            f"(training.iterations = {length})")
        if rule.window_iterations > rule.min_iterations:
            problems.append(f"sweep.halving.window: {rule.window_iterations} iterations, more than the first rung's "
                            f"budget (min_iterations = {rule.min_iterations})")
        stop = training.get("early_stopping")
        rungs = rule.rungs(length)
        if stop and rungs:
            earliest = stop["every"] * (stop["patience"] + 1)
            if earliest <= rungs[-1]:
                problems.append(
                    f"training.early_stopping: could stop a task at iteration {earliest}, before the last rung "
                    f"of sweep.halving ({rungs[-1]}); a task stopped between rungs is neither ranked nor pruned: "
                    f"make early_stopping.every × (patience + 1) exceed {rungs[-1]}, or leave early stopping out")
        if problems:
            break
    return _unique(problems)


def _check_length_axes(base: dict, swept: dict[tuple[str, ...], str]) -> list[str]:
    """A swept training.iterations (or epochs) with the other one given too, in the file or the sweep."""
    its, eps = ("training", "iterations"), ("training", "epochs")
    if its in swept and eps in swept:
        return [f"{swept[eps]}: training.iterations is swept too (by {swept[its]}); "
                "give either 'iterations' or 'epochs', not both"]
    for axis, other in ((its, eps), (eps, its)):
        if axis in swept and base["training"].get(other[1]) is not None:
            return [f"{swept[axis]}: training.{other[1]} is also given ({base['training'][other[1]]}); "
                    "give either 'iterations' or 'epochs', not both"]
    return []


def _sample_configs(spec):
    from .expand import expand_configs

    return [c for c, _ in itertools.islice(expand_configs(spec), 1000)]


def _check_value(base: dict, path: tuple[str, ...], value) -> str | None:
    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    config[path[0]][path[1]] = value
    try:  # its section alone first: a section that validates has no error at the key (a sweep of 10,000
        # learning rates checks 10,000 training sections, not 10,000 whole configs)
        validate_section(path[0], fill_union_tags(config)[path[0]], context=CHECK)
        return None
    except ValidationError:
        pass
    try:
        TaskConfig.model_validate(config, context=CHECK)
    except ValidationError as exc:
        for err in exc.errors():
            loc = _strip_tags(err["loc"], config)
            if tuple(loc) == path:
                return _message(err, TaskConfig, config, loc)
    return None


# ------------------------------------------------------------------ error messages


def _strip_tags(loc, data) -> list:
    """Drop the union tag pydantic inserts in locations (``model.lif.n_hidden`` -> ``model.n_hidden``)."""
    loc = list(loc)
    if len(loc) >= 2 and loc[0] in UNION_TAGS and isinstance(data, dict):
        section = data.get(loc[0])
        tag = section.get(UNION_TAGS[loc[0]]) if isinstance(section, dict) else None
        if tag is None:
            tag = _default_tag(loc[0], data)
        if loc[1] == tag:
            del loc[1]
    return loc


def _default_tag(section, data=None):
    """The ``type`` / ``rule`` a section gets when the spec leaves it out (it depends on the model type)."""
    filled = fill_union_tags(data if isinstance(data, dict) else {})
    value = filled.get(section)
    return value.get(UNION_TAGS[section]) if isinstance(value, dict) else "lif"


def _union_members(section: str):
    return list(section_classes(section).values())


def _model_at(root: type[BaseModel], loc: list, data) -> type[BaseModel] | None:
    """The pydantic model class that owns the last key of ``loc``."""
    model = root
    dict_values = False
    for i, key in enumerate(loc[:-1]):
        if model is None:
            return None
        if key in UNION_TAGS and i == 0:
            section = data.get(key) if isinstance(data, dict) else None
            tag = section.get(UNION_TAGS[key], _default_tag(key, data)) if isinstance(section, dict) else _default_tag(key, data)
            members = {m.model_fields[UNION_TAGS[key]].default: m for m in _union_members(key)}
            model = members.get(tag)
            continue
        if dict_values:  # ``key`` is a key of a dict[str, Model] field: the next model is its value type
            dict_values = False
            continue
        field = model.model_fields.get(key) if isinstance(key, str) else None
        if field is None:
            return None
        ann = field.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else _first_model(ann)
        dict_values = typing.get_origin(ann) is dict
    return model


def _first_model(ann):
    for arg in getattr(ann, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


# Strings with a format: what to write instead of "a string".
FORMATS = {
    ("Resources", "time"): "a time limit [D-]HH:MM:SS or MM:SS, quoted (e.g. \"01:30:00\", \"2-00:00:00\")",
    ("Resources", "deadline_margin"): "a duration MM:SS or HH:MM:SS, quoted (e.g. \"05:00\")",
    ("Resources", "memory"): "a memory size such as \"2G\", \"500M\" or \"2048\" (MB)",
    ("Spec", "name"): "a name of letters, digits, '.', '_' and '-' (at most 64, starting with a letter or digit)",
    ("Distribution", "uniform"): "[low, high] (two numbers)",
    ("Distribution", "loguniform"): "[low, high] (two positive numbers)",
    ("Distribution", "randint"): "[low, high] (two integers, both included)",
    ("Distribution", "choice"): "a list of values",
    ("Checkpoint", "every_iterations"): "a positive integer or 'auto'",
}


def _describe(model: type[BaseModel] | None, name) -> str | None:
    if model is None or not isinstance(name, str) or name not in model.model_fields:
        return None
    field = model.model_fields[name]
    ann = field.annotation
    text = repr(ann)
    if (model.__name__, name) in FORMATS:
        return FORMATS[model.__name__, name]
    metadata = list(field.metadata)
    for arg in typing.get_args(ann):  # Optional[PositiveInt]: the constraints sit on the inner type
        metadata += getattr(arg, "__metadata__", ())
    bound = {k: next((getattr(m, k) for m in metadata if getattr(m, k, None) is not None), None)
             for k in ("gt", "ge", "lt", "le")}
    if "Literal" in text:
        return "one of: " + ", ".join(repr(a) for a in ann.__args__)
    if ann is bool:
        return "true or false"
    if ann is int or "int" in text and "float" not in text:
        return _ranged("an integer", "a positive integer", **bound)
    if ann is float or "float" in text:
        return _ranged("a number", "a positive number", **bound)
    if ann is str:
        return "a string"
    return None


def _ranged(kind: str, positive: str, gt=None, ge=None, lt=None, le=None) -> str:
    """``a number``, ``a positive integer``, ``a number > 0 and < 1``, ``an integer >= 1 and <= 100``."""
    if gt == 0 and lt is None and le is None:
        return positive
    limits = [f"{op} {v}" for op, v in ((">", gt), (">=", ge), ("<", lt), ("<=", le)) if v is not None]
    return f"{kind} {' and '.join(limits)}" if limits else kind


def _message(err: dict, root, data, loc) -> str:
    typ = err["type"]
    got = err.get("input")
    model = _model_at(root, list(loc), data)
    name = loc[-1] if loc else None
    if typ == "extra_forbidden":
        valid = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(name), valid, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key '{name}'{hint}; valid keys: {', '.join(valid)}"
    if typ in ("union_tag_invalid", "union_tag_not_found"):
        ctx = err.get("ctx", {})
        tags = ctx.get("expected_tags", "")
        if isinstance(got, dict):
            got = got.get(str(ctx.get("discriminator", "")).strip("'"))
        if typ != "union_tag_invalid":
            return f"missing '{ctx.get('discriminator')}'"
        fitting = _fitting_tags(loc[0] if loc else None, data)
        if fitting is not None:
            model_type = _default_tag("model", data)
            return (f"unknown {ctx.get('discriminator', 'type').strip(chr(39))} {got!r}; choose from: "
                    f"{', '.join(map(repr, fitting))} (those that fit model '{model_type}')")
        return (f"unknown {ctx.get('discriminator', 'type').strip(chr(39))} {got!r}; choose from: {tags} "
                "(another one comes from a plugin: list its file under 'plugins:' or install its package)")
    if typ == "missing":
        return "required key is missing"
    if typ == "value_error":
        return str(err.get("ctx", {}).get("error", err["msg"]))
    if typ == "seeds":
        return f"{err['msg']}, got {got!r}"
    desc = _describe(model, name)
    if typ in ("model_type", "dict_type", "model_attributes_type") and isinstance(got, (int, float, str, list, type(None))):
        return f"expected a mapping of keys, got {got!r}"
    if desc:
        if model is Resources and name == "time" and isinstance(got, int):
            return f"expected {desc}, got the number {got} (YAML reads an unquoted 1:00:00 or 10:00 as a number)"
        return f"expected {desc}, got {got!r}"
    if typ == "list_type":
        return f"expected a list of values, got {got!r}"
    msg = f"{err['msg'][0].lower()}{err['msg'][1:]}"
    return f"{msg} ({got!r})" if ", got " in msg else f"{msg}, got {got!r}"


def _fitting_tags(section, data) -> list[str] | None:
    """The learning rules or datasets the spec's model takes (None for another section or an unknown model)."""
    if section not in ("dataset", "learning"):
        return None
    alg = registry.algorithms().get(_default_tag("model", data))
    if alg is None:
        return None
    return [r.name for r in alg.rules] if section == "learning" else registry.accepted_datasets(alg)


def _format(err: dict, root, data) -> str:
    loc = _strip_tags(err["loc"], data)
    # pydantic puts list indices and dict keys in loc; render them as a.b[2]
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        text += f".{UNION_TAGS.get(loc[0], 'type')}" if loc else ""
    message = _message(err, root, data, loc)
    if not text and re.match(r"^[a-z_]+\.[a-z_]+: ", message):
        return message  # a cross-section check that names its own key path
    return f"{text or '(top level)'}: {message}"


def dump_resolved(spec: Spec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)


def config_adapter():
    return TypeAdapter(TaskConfig)
