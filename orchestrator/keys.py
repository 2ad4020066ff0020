"""Every spec key with its default and meaning, read from the sections that declare them.

Each key is declared once: a field of a pydantic section, its default, and its
meaning as the docstring under it. ``snnbatch keys`` prints them for the
installed algorithms (plugins included); the README's key tables are this
module's output for the built-ins (``snnbatch keys --markdown``), and a test
holds the two together.
"""
from __future__ import annotations

from typing import Any

from ..jobs import registry
from ..jobs.config import Checkpoint, EarlyStopping, LRSchedule, Resources, Training

TAGS = ("type", "rule")


def default_text(cls, name: str) -> str:
    """A field's default as a spec would write it (``required`` when it has none)."""
    field = cls.model_fields[name]
    if field.is_required():
        return "required"
    try:
        value: Any = cls().model_dump(mode="json")[name]  # the serialized default (e.g. 'auto')
    except Exception:  # a section with a required key: its raw defaults
        value = field.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return f"`{value}`"
    if isinstance(value, (dict, list)) and not value:
        return "{}" if isinstance(value, dict) else "[]"
    return str(value)


def table(cls) -> str:
    """The markdown key table of a section."""
    rows = ["| key | default | meaning |", "| --- | --- | --- |"]
    for name, field in cls.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name}` | {default_text(cls, name)} | {meaning} |")
    return "\n".join(rows)


def sections(builtin_only: bool = False) -> list[tuple[str, type]]:
    """(heading, section class) of every registered section, then training (and its two sub-sections),
    checkpoint, resources."""
    out = []

    def mine(what: str, name: str) -> bool:
        src = registry.source(what, name)
        return not builtin_only or (src is not None and src.kind == "entry point" and src.name == "snnbatch")

    for name, alg in registry.algorithms().items():
        if mine("algorithm", name):
            out.append((f"`model: {{type: {name}}}`", alg.model))
    rules_done = set()
    for name, alg in registry.algorithms().items():
        for rule in alg.rules:
            if rule.name not in rules_done and mine("algorithm", name):
                rules_done.add(rule.name)
                out.append((f"`learning: {{rule: {rule.name}}}`", rule.section))
    for name, data in registry.datasets().items():
        if mine("dataset", name):
            out.append((f"`dataset: {{type: {name}}}`", data.section))
    out += [("`training`", Training), ("`training.lr_schedule`", LRSchedule),
            ("`training.early_stopping`", EarlyStopping), ("`checkpoint`", Checkpoint), ("`resources`", Resources)]
    return out


def markdown(builtin_only: bool = False) -> str:
    return "\n\n".join(f"#### {heading}\n\n{table(cls)}" for heading, cls in sections(builtin_only)) + "\n"
