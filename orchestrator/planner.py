"""Turn a validated spec into tasks: pure, no I/O.

The sweep is expanded into configs by :mod:`snnbatch.orchestrator.expand`
(order of expansion, random draws); each config is validated into a
:class:`~snnbatch.jobs.config.TaskConfig`, and a task's id is the hash of its
resolved config (``snnbatch.jobs.config.task_id``). :func:`plan_record` is the
successive-halving plan a store records for the tasks (:mod:`snnbatch.jobs.halving`).

How, for 100,000 tasks in seconds: a config's sections are validated each on its
own (:func:`~snnbatch.jobs.config.validate_section`), so a section is validated
once per distinct input, not once per task: a sweep over the learning rate
validates ``model`` and ``dataset`` once and ``training`` once per rate. Each
distinct section is dumped once too (its JSON forms and its part of the task id,
:func:`~snnbatch.jobs.config.id_part`), and the checks across sections
(:func:`~snnbatch.jobs.config.compatibility_problems`) run once per distinct
combination of sections. A task's id is then the hash of its sections' parts and
its seed, and its config is built only when asked for. The ids and configs are
those of validating every config whole (tests/orchestrator/test_plan_fast.py).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from ..jobs import halving
from ..jobs.config import RESULT_SECTIONS, TaskConfig, compatibility_problems, fill_union_tags, id_part, validate_section
from .expand import config_of, expand_values
from .nogc import without_gc
from .spec import Spec, resolve_key

# The fields of a task config, in its order; the sections among them (all but the seed).
FIELDS = tuple(TaskConfig.model_fields)
SECTIONS = tuple(f for f in FIELDS if f != "seed")


class _Section:
    """One validated section and its forms: the dump, its JSON (compact and indented) and its part of the id."""

    __slots__ = ("value", "dump", "compact", "_indented", "id_part")

    def __init__(self, name: str, value):
        self.value = value
        self.dump = value.model_dump(mode="json")
        self.compact = json.dumps(self.dump, separators=(",", ":"))
        self.id_part = id_part(value, self.dump) if name in RESULT_SECTIONS else None
        self._indented = None

    @property
    def indented(self) -> str:
        """``json.dumps(dump, indent=2)`` as a key's value at depth 1 (each line after the first indented)."""
        if self._indented is None:
            self._indented = json.dumps(self.dump, indent=2).replace("\n", "\n  ")
        return self._indented


class _Form:
    """The sections of one or more tasks (all but their seed), checked together once."""

    __slots__ = ("sections", "id_head", "id_tail", "_texts")

    def __init__(self, sections: tuple[_Section, ...]):
        self.sections = sections
        self._texts: dict = {}
        part = dict(zip(SECTIONS, sections))
        # task_id's text around the seed: its keys sorted (dataset, learning, model, seed, training)
        self.id_head = (f'{{"dataset":{part["dataset"].id_part},"learning":{part["learning"].id_part},'
                        f'"model":{part["model"].id_part},"seed":')
        self.id_tail = f',"training":{part["training"].id_part}}}'

    def json_around_seed(self, indent: int | None, pad: str) -> tuple[str, str]:
        """The JSON of a config of these sections before and after its seed (see :meth:`Task.config_json`)."""
        texts = self._texts.get((indent, pad))
        if texts is None:
            if indent is None:
                parts = [f'"{name}":{s.compact}' for name, s in zip(SECTIONS, self.sections)]
                head, tail = "{" + ",".join(parts[:4]) + ',"seed":', "," + ",".join(parts[4:]) + "}"
            else:
                parts = [f'  "{name}": {s.indented}' for name, s in zip(SECTIONS, self.sections)]
                head, tail = "{\n" + ",\n".join(parts[:4]) + ',\n  "seed": ', ",\n" + ",\n".join(parts[4:]) + "\n}"
            texts = self._texts[indent, pad] = (head.replace("\n", "\n" + pad), tail.replace("\n", "\n" + pad))
        return texts

    def config(self, seed: int) -> TaskConfig:
        return TaskConfig.model_construct(**dict(zip(SECTIONS, (s.value for s in self.sections))), seed=seed)


class Task:
    """One planned task: its id, its place in the plan, its swept values and its config.

    ``config`` (a :class:`~snnbatch.jobs.config.TaskConfig`) is built when first read; the JSON forms
    (:meth:`config_dict`, :meth:`config_json`) are made from the sections' forms, without it.
    """

    __slots__ = ("id", "index", "params", "_form", "_seed", "_config")

    def __init__(self, id: str, index: int, form: _Form, seed: int, params: dict[str, Any]):
        self.id, self.index, self.params = id, index, params  # params: the swept values, by axis key, plus "seed"
        self._form, self._seed, self._config = form, seed, None

    @property
    def config(self) -> TaskConfig:
        if self._config is None:
            self._config = self._form.config(self._seed)
        return self._config

    def section(self, name: str):
        """One section of the config (``model``, ``training``, ...), without building the config."""
        return self._form.sections[SECTIONS.index(name)].value

    def config_dict(self) -> dict:
        """The config as plain data (``config.model_dump(mode="json")``), a new copy each call."""
        out = {}
        for name, section in zip(SECTIONS, self._form.sections):
            out[name] = _copy(section.dump)
            if name == "training":
                out["seed"] = self._seed
        return out

    def config_json(self, indent: int | None = None, pad: str = "") -> str:
        """``json.dumps(config_dict())`` compact (``separators=(",", ":")``), or with ``indent=2``; ``pad``
        is put after each line break (the config's text as a value deeper in a document)."""
        if indent not in (None, 2):
            return json.dumps(self.config_dict(), indent=indent).replace("\n", "\n" + pad)
        head, tail = self._form.json_around_seed(indent, pad)
        return f"{head}{self._seed}{tail}"  # (an int: its JSON is its digits)

    def __eq__(self, other):
        if not isinstance(other, Task):
            return NotImplemented
        return (self.id, self.index, self.params, self.config_json()) == (other.id, other.index, other.params,
                                                                          other.config_json())

    __hash__ = None

    def __repr__(self) -> str:
        return f"Task(id={self.id!r}, index={self.index}, params={self.params!r})"


def _copy(value):
    """A copy of JSON data (dicts, lists and scalars), nothing shared."""
    if type(value) is dict:
        return {k: _copy(v) if type(v) in (dict, list) else v for k, v in value.items()}
    if type(value) is list:
        return [_copy(v) if type(v) in (dict, list) else v for v in value]
    return value


def _key(value):
    """A value as a key that tells apart what validates differently (1, 1.0 and True are equal keys in Python)."""
    return value if type(value) is str else repr(value)


class _Builder:
    """Validated sections by their input, and their combinations checked together, for one plan."""

    def __init__(self):
        self.sections: dict = {}
        self.forms: dict = {}

    def form(self, config: dict, key: tuple, touched: tuple[str, ...]) -> _Form:
        """The form of ``config``: ``key`` is its sub-sweep's number and, for each section in ``touched``
        (those the sub-sweep's axes set), the keys of its axes' values; any other section is the
        sub-sweep's base section. Raises ValueError (ValidationError is one) for a config that is not valid."""
        config = fill_union_tags(config)  # (what TaskConfig does first; the same for every task of a sub-sweep)
        sections = []
        for name in SECTIONS:
            section_key = (key[0], name, key[1 + touched.index(name)] if name in touched else ())
            section = self.sections.get(section_key)
            if section is None:
                section = self.sections[section_key] = _Section(name, validate_section(name, config[name]))
            sections.append(section)
        form = _Form(tuple(sections))
        if compatibility_problems(form.config(0)):
            raise ValueError("incompatible sections")  # validated whole, the config's error says which
        self.forms[key] = form
        return form


def plan(spec: Spec) -> list[Task]:
    """The tasks of ``spec``; duplicates (the same resolved config twice) are kept once."""
    with without_gc():
        return _plan(spec)


def _plan(spec: Spec) -> list[Task]:
    tasks: dict[str, Task] = {}
    builder = _Builder()
    forms = builder.forms
    for p, part in enumerate(spec._parts or [spec]):
        base, paths = part.base_config(), part.axes()
        touched = tuple(s for s in SECTIONS if any(path[0] == s for path in paths.values()))
        axes = [tuple(a for a, path in paths.items() if path[0] == s) for s in touched]
        extra = part._set if spec._parts else None
        plain = set(base) == set(FIELDS)
        for values in expand_values(part):
            seed = values["seed"]
            key = (p, *[tuple([_key(values[a]) for a in names]) for names in axes])
            form = forms.get(key)
            if form is None or type(seed) is not int or seed < 0:
                config = config_of(base, paths, values)
                try:
                    if not plain or type(seed) is not int or seed < 0:
                        raise ValueError("not a config of plain data")
                    form = builder.form(config, key, touched)
                except ValueError:  # validated whole: its error (pydantic's ValidationError), as planning gave
                    form, seed = _validated_form(config)
            tid = sha256(f"{form.id_head}{seed}{form.id_tail}".encode()).hexdigest()[:12]
            if tid not in tasks:
                tasks[tid] = Task(tid, len(tasks), form, seed, {**extra, **values} if extra is not None else values)
    out = list(tasks.values())
    if spec._parts:  # sub-sweeps vary different keys: every task names all of them (None where it has none)
        keys = list(dict.fromkeys(k for t in out for k in t.params if k != "seed")) + ["seed"]
        for t in out:
            t.params = {k: t.params[k] if k in t.params else _value_at(t, k) for k in keys}
    return out


def _validated_form(config: dict) -> tuple[_Form, int]:
    """``config`` validated whole (raising its ValidationError, as planning always did), as a form."""
    cfg = TaskConfig.model_validate(config)
    return _Form(tuple(_Section(name, getattr(cfg, name)) for name in SECTIONS)), cfg.seed


def _value_at(task: Task, key: str):
    """The value of a swept key in a task's config, or None when the config has no such key."""
    data = {name: s.dump for name, s in zip(SECTIONS, task._form.sections)}
    data["seed"] = task._seed
    if "." in key:
        node = data
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return _copy(node)
    try:
        path = resolve_key(key, data)
    except KeyError:
        return None
    return _copy(data[path[0]][path[1]])


@dataclass
class Summary:
    n_tasks: int
    cpus_per_task: int
    time_limit_s: int
    core_hours: float
    varying: list[str]


def summarize(spec: Spec, tasks: list[Task]) -> Summary:
    res = spec.resources
    varying = [k for k in (tasks[0].params if tasks else {}) if len({repr(t.params[k]) for t in tasks}) > 1]
    return Summary(
        n_tasks=len(tasks),
        cpus_per_task=res.cpus,
        time_limit_s=res.time_seconds,
        core_hours=len(tasks) * res.cpus * res.time_seconds / 3600.0,
        varying=varying,
    )


def plan_record(spec, tasks: list[Task]) -> dict | None:
    """The halving plan the store records for ``spec`` (None without ``sweep.halving``)."""
    rule = None if spec._parts else spec.sweep.halving
    if rule is None or not tasks:
        return None
    from ..jobs import registry

    length = min(t.section("training").iterations for t in tasks)
    first = tasks[0].config
    alg = registry.algorithm(first.model.type)
    name = rule.metric_for(alg, first.training.model_dump())
    metric = next(m for m in alg.metrics if m.name == name)
    validation = bool(getattr(metric, "validation", False))
    plan = halving.Plan(metric=name, better=metric.better, eta=rule.eta, rungs=tuple(rule.rungs(length)),
                        window=rule.window_iterations, validation=validation)
    return plan.record()
