"""The typed configuration of one task, and its defaults.

A task's config has the sections that decide its result (``model``,
``dataset``, ``learning``, ``training``, ``seed``) and the sections that
decide only how it runs (``checkpoint``, ``resources``). The task id hashes
the first group only, so changing a time limit or a checkpoint interval
never renames a task (resume is bit-identical whatever the interval).

Every section is a pydantic model that forbids unknown keys. ``model``,
``dataset`` and ``learning`` are whatever the algorithm registry
(:mod:`snnbatch.jobs.registry`) holds: built-ins and plugins alike, chosen by
their ``type`` / ``rule`` tag. The sweep spec (``snnbatch.orchestrator.spec``)
validates a whole file against these models.
"""
from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal, Optional, Union

from pydantic import (
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_serializer,
    field_validator,
    model_validator,
)

from . import registry
from .registry import ID_WHEN_SET, Section

Probability = Annotated[float, Field(gt=0.0, lt=1.0)]
DEFAULT_MODEL = "lif"  # what a spec without ``model.type`` trains
UNION_TAGS = {"model": "type", "dataset": "type", "learning": "rule"}


def section_classes(section: str) -> dict[str, type[Section]]:
    """The registered classes of a ``model``, ``dataset`` or ``learning`` section, by tag."""
    if section == "model":
        return {name: alg.model for name, alg in registry.algorithms().items()}
    if section == "dataset":
        return {name: d.section for name, d in registry.datasets().items()}
    return registry.rule_sections()


class Registered:
    """Pydantic type of a ``model``, ``dataset`` or ``learning`` field: the union of the registered sections.

    The union is made whenever the schema is built; :func:`_rebuild` builds it anew
    after a plugin registers, so plugin sections get the same validation as ours.
    """

    def __init__(self, section: str):
        self.section = section

    def __get_pydantic_core_schema__(self, source, handler):
        members = tuple(section_classes(self.section).values())
        union = Union[members] if len(members) > 1 else Union[members + members]
        return handler.generate_schema(Annotated[union, Field(discriminator=UNION_TAGS[self.section])])


ModelSection = Annotated[Section, Registered("model")]
DatasetSection = Annotated[Section, Registered("dataset")]
LearningSection = Annotated[Section, Registered("learning")]


class EarlyStopping(Section):
    """Stop a task whose metric has not improved for ``patience`` evaluations; it keeps its best state."""

    metric: str
    """a metric the algorithm reports at each iteration, or a validation metric (valid_*, with training.validate_every: evaluated at validations only); its declared direction says which way is better"""
    patience: PositiveInt
    """evaluations without an improvement before the task stops"""
    min_delta: NonNegativeFloat = 0.0
    """the least change that counts as an improvement"""
    every: PositiveInt = 1
    """iterations per evaluation: the metric's mean over them is compared"""


class LRSchedule(Section):
    """How the learning rate changes with the iteration i (0-based), a function of i alone.

    A linear warm-up over the first ``warmup`` iterations (``lr·(i+1)/warmup``), then
    ``constant``: ``lr``; ``step``: ``lr·factor^⌊(i−warmup)/every⌋``; ``cosine``: from ``lr``
    down to ``to·lr`` along a half cosine over the remaining iterations. A bare name
    (``lr_schedule: cosine``) is the schedule with its defaults.
    """

    type: Literal["constant", "step", "cosine"] = "constant"
    """constant, step or cosine (after the warm-up)"""
    warmup: NonNegativeInt = 0
    """iterations of linear warm-up from lr/warmup to lr (0: none)"""
    every: Optional[PositiveInt] = None
    """step: iterations between two drops (required by step)"""
    factor: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1
    """step: the learning rate is multiplied by this at each drop"""
    to: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    """cosine: the final learning rate, as a fraction of lr"""

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, data):
        return {"type": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _keys_of_type(self):
        if self.type == "step" and self.every is None:
            raise ValueError("'every' is required by type step (iterations between two drops)")
        own = {"every": "step", "factor": "step", "to": "cosine"}  # set away from its default: of that type only
        fields = type(self).model_fields
        wrong = [k for k, kind in own.items() if kind != self.type and getattr(self, k) != fields[k].default]
        if wrong:
            raise ValueError(", ".join(f"'{k}' is a key of type {own[k]}" for k in wrong)
                             + f", not of type {self.type}")
        return self

    def lr(self, lr: float, iteration: int, total: int) -> float:
        """The learning rate of ``iteration`` of ``total`` for the base rate ``lr``."""
        from ..kernels.optim import scheduled_lr

        return scheduled_lr(lr, iteration, total, self.type, self.warmup, self.every, self.factor, self.to)


class Training(Section):
    iterations: Optional[PositiveInt] = None
    """training length in iterations (give this or epochs)"""
    epochs: Optional[PositiveInt] = None
    """training length in epochs (20 when neither is given)"""
    batch_size: PositiveInt = 256
    """samples per iteration"""
    optimizer: Literal["adam", "sgd"] = "adam"
    """adam or sgd"""
    lr: PositiveFloat = 2e-3
    """learning rate"""
    beta1: Probability = 0.9
    """Adam's first-moment decay rate"""
    beta2: Probability = 0.999
    """Adam's second-moment decay rate"""
    lr_schedule: Optional[LRSchedule] = Field(None, json_schema_extra=ID_WHEN_SET)
    """learning rate by iteration: {type: constant|step|cosine, warmup, every, factor, to}; none: lr throughout"""
    weight_decay: NonNegativeFloat = Field(0.0, json_schema_extra=ID_WHEN_SET)
    """decoupled weight decay (AdamW): each step first multiplies every parameter by 1 − lr·weight_decay"""
    clip_grad_norm: Optional[PositiveFloat] = Field(None, json_schema_extra=ID_WHEN_SET)
    """scale the gradients down to this global norm (over all parameters) when it is larger; none: no clipping"""
    early_stopping: Optional[EarlyStopping] = Field(None, json_schema_extra=ID_WHEN_SET)
    """stop when a metric stops improving: {metric, patience, min_delta, every}; none: train to the end"""
    validate_every: Optional[PositiveInt] = Field(None, json_schema_extra=ID_WHEN_SET)
    """validate every N iterations and at the end; the task ends with the state of the best validation, and its test metrics are that state's (needs a validation split: dataset.n_valid, valid_fraction or valid_path); none: no validation, the last state"""
    select_on: Optional[str] = Field(None, json_schema_extra=ID_WHEN_SET)
    """the validation metric that selects the state a task ends with; none: the algorithm's first validation metric shown by status (valid_accuracy for the classifiers)"""

    @model_validator(mode="before")
    @classmethod
    def _default_length(cls, data):
        if isinstance(data, dict) and data.get("iterations") is None and data.get("epochs") is None:
            data = {**data, "epochs": 20}
        return data

    @model_validator(mode="after")
    def _one_length(self):
        if self.iterations is not None and self.epochs is not None:
            raise ValueError("give either 'iterations' or 'epochs', not both")
        return self

    @field_validator("lr_schedule", mode="after")
    @classmethod
    def _constant_is_none(cls, value):
        # a constant schedule without warm-up is no schedule: the same task, the same id
        return None if value is not None and value.type == "constant" and value.warmup == 0 else value

    @model_validator(mode="after")
    def _schedule_fits(self):
        if self.lr * self.weight_decay >= 1.0:
            raise ValueError(f"weight_decay × lr must be below 1 (got {self.weight_decay:g} × {self.lr:g}): "
                             "each step multiplies the parameters by 1 − lr·weight_decay")
        s = self.lr_schedule
        if s is not None and self.iterations is not None and s.warmup >= self.iterations:
            raise ValueError(f"lr_schedule.warmup ({s.warmup}) must be shorter than iterations ({self.iterations})")
        return self


# ------------------------------------------------------------------ how it runs


AUTO_EVERY_ITERATIONS = 200  # what ``every_iterations: auto`` starts from


class Checkpoint(Section):
    """When a task checkpoints: every ``every_iterations`` iterations or ``every_minutes`` of wall time.

    ``every_iterations: auto`` (the default, also ``null``): every 200 iterations, but never so
    often that checkpoints take more than ``max_overhead`` of the time (a checkpoint waits until
    the time since the previous one is at least the previous one's cost / ``max_overhead``). A
    number is kept exactly. ``every_minutes`` is always kept.
    """

    every_iterations: Optional[PositiveInt] = None
    """checkpoint every N iterations (auto: every 200, but never so often that checkpoints take more than max_overhead of the time)"""
    every_minutes: PositiveFloat = 10.0
    """... or every M minutes of wall time, whichever comes first"""
    max_overhead: Annotated[float, Field(gt=0.0, le=1.0)] = 0.01
    """with auto: the largest fraction of the time spent on checkpoints"""
    keep: Annotated[int, Field(ge=1, le=100)] = 2
    """checkpoints kept per task"""

    @field_validator("every_iterations", mode="before")
    @classmethod
    def _auto(cls, value):
        return None if value == "auto" else value

    @field_serializer("every_iterations")
    def _show_auto(self, value):
        return "auto" if value is None else value


DURATION = r"^([0-9]+-)?([0-9]{1,2}:)?[0-9]{1,2}:[0-9]{2}$"  # SLURM's [D-][HH:]MM:SS


class Resources(Section):
    cpus: PositiveInt = 1
    """cores per task (sets the task's thread counts)"""
    memory: Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?[KMGT]?B?$")] = "2G"
    """memory per task"""
    time: Annotated[str, Field(pattern=DURATION)] = "01:00:00"
    """time limit per job ([D-]HH:MM:SS)"""
    partition: Optional[str] = None
    """passed to the scheduler"""
    account: Optional[str] = None
    """passed to the scheduler"""
    qos: Optional[str] = None
    """passed to the scheduler"""
    constraint: Optional[str] = None
    """passed to the scheduler"""
    sbatch_extra: dict[str, str] = {}
    """more #SBATCH options, e.g. {gres: "gpu:0"}"""
    deadline_margin: Optional[Annotated[str, Field(pattern=DURATION)]] = None
    """on SLURM, how long before time a task checkpoints and requeues itself if no signal came (MM:SS; none: 5 % of time, at least 30 s, at most 10 min)"""
    max_requeues: NonNegativeInt = 20
    """requeue budget per task on a cluster"""
    retries: NonNegativeInt = 0
    """times a task that raised is run again"""
    pack: Optional[PositiveInt] = Field(None, json_schema_extra=ID_WHEN_SET)
    """on SLURM, tasks per array element, node_cpus // cpus of them at a time, the others one after another; each keeps its own lease, checkpoints, attempts and status (none: node_cpus // cpus, or 1)"""
    node_cpus: Optional[PositiveInt] = Field(None, json_schema_extra=ID_WHEN_SET)
    """on SLURM, cores per array element (a whole node, say): node_cpus // cpus of its tasks run side by side, each with cpus threads (none: cpus)"""

    @field_validator("node_cpus", mode="after")
    @classmethod
    def _node_holds_a_task(cls, value, info):
        cpus = info.data.get("cpus")
        if value is not None and cpus is not None and value < cpus:
            raise ValueError(f"{value} cores cannot hold one task of cpus: {cpus}; give at least {cpus}")
        return value

    @model_validator(mode="after")
    def _margin_within_limit(self):
        if self.deadline_margin is not None and parse_duration(self.deadline_margin) >= self.time_seconds:
            raise ValueError(f"deadline_margin {self.deadline_margin} must be shorter than time {self.time}")
        return self

    @property
    def time_seconds(self) -> int:
        return parse_duration(self.time)

    @property
    def deadline_margin_seconds(self) -> float:
        """How long before the time limit a task checkpoints and stops on its own."""
        if self.deadline_margin is not None:
            return float(parse_duration(self.deadline_margin))
        return min(max(30.0, 0.05 * self.time_seconds), 600.0)

    @property
    def memory_mb(self) -> int:
        return parse_memory_mb(self.memory)

    @property
    def side_by_side(self) -> int:
        """Tasks an array element runs at once: node_cpus // cpus (1 without node_cpus)."""
        return self.node_cpus // self.cpus if self.node_cpus else 1

    @property
    def per_element(self) -> int:
        """Tasks per array element: ``pack``, or without it as many as run side by side."""
        return self.pack if self.pack is not None else self.side_by_side

    @property
    def packed(self) -> bool:
        return self.per_element > 1


class TaskConfig(Section):
    """Everything one task needs, fully resolved.

    Its schema is built when a config is first validated, not when this module is imported, so
    that importing it (for ``Resources``, say) loads no plugin.
    """

    model_config = ConfigDict(**Section.model_config, defer_build=True)

    model: ModelSection
    dataset: DatasetSection
    learning: LearningSection
    training: Training = Training()
    seed: NonNegativeInt = 0
    checkpoint: Checkpoint = Checkpoint()
    resources: Resources = Resources()

    @model_validator(mode="before")
    @classmethod
    def _tags(cls, data):
        return fill_union_tags(data)

    @model_validator(mode="after")
    def _compatible(self):
        problems = compatibility_problems(self)
        if problems:
            raise ValueError("; ".join(f"{k}: {m}" for k, m in problems))
        return self


RESULT_SECTIONS = ("model", "dataset", "learning", "training", "seed")
_REBUILD: list = [TaskConfig]  # classes with registered sections, rebuilt when the registry changes


def rebuild_with_registry(cls) -> None:
    """Keep ``cls`` (a model with registered-section fields) in step with the registry."""
    _REBUILD.append(cls)


def _rebuild() -> None:
    _SECTION_ADAPTERS.clear()
    for cls in _REBUILD:
        cls.model_rebuild(force=True)


_SECTION_ADAPTERS: dict = {}  # field name of TaskConfig -> its TypeAdapter (made anew when the registry changes)


def validate_section(name: str, data, context: dict | None = None):
    """``data`` validated as the ``name`` field of a :class:`TaskConfig` (``model``, ``training``, ``seed``...)
    alone: the same value, and the same errors (located in the section), as a whole config gives it.

    A config's fields are validated each on its own; only :class:`TaskConfig`'s own validators (the
    union tags filled in before, :func:`compatibility_problems` after) see several at once.
    """
    adapter = _SECTION_ADAPTERS.get(name)
    if adapter is None:
        from pydantic import TypeAdapter

        field = TaskConfig.model_fields[name]
        kind = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        adapter = _SECTION_ADAPTERS[name] = TypeAdapter(kind)
    return adapter.validate_python(data, context=context)


registry.on_change(_rebuild)


def fill_union_tags(data):
    """Fill in the ``type`` / ``rule`` a spec leaves out: the model's from :data:`DEFAULT_MODEL`, the
    others from the model's algorithm (its first dataset and rule)."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    model = data.get("model")
    if model is None:
        data["model"] = model = {"type": DEFAULT_MODEL}
    elif isinstance(model, dict) and "type" not in model:
        data["model"] = model = {"type": DEFAULT_MODEL, **model}
    model_type = model.get("type", DEFAULT_MODEL) if isinstance(model, dict) else getattr(model, "type", None)
    algorithms = registry.algorithms()
    alg = algorithms.get(model_type if isinstance(model_type, str) else "") or algorithms[DEFAULT_MODEL]
    defaults = {"dataset": alg.datasets[0] if alg.datasets else registry.accepted_datasets(alg)[0],
                "learning": alg.rules[0].name}
    for section in ("dataset", "learning"):
        value = data.get(section, {})
        if value is None:
            value = {}
        tag = UNION_TAGS[section]
        if isinstance(value, dict) and tag not in value:
            data[section] = {tag: defaults[section], **value}
    return data


def compatibility_problems(config) -> list[tuple[str, str]]:
    """(key path, message) for a learning rule or dataset the model type cannot use."""
    alg = registry.algorithm(config.model.type)
    rules = [r.name for r in alg.rules]
    data = registry.accepted_datasets(alg)
    problems = []
    if config.learning.rule not in rules:
        problems.append(("learning.rule", f"'{config.learning.rule}' does not train model '{config.model.type}' "
                                          f"(choose from: {', '.join(rules)})"))
    stop = config.training.early_stopping
    if stop is not None:
        during = [m.name for m in alg.metrics if not m.final and not m.validation]
        valid = [m.name for m in alg.metrics if m.validation]
        if stop.metric not in during + valid:
            also = f"; with training.validate_every: {', '.join(valid)}" if valid else ""
            problems.append(("training.early_stopping.metric",
                             f"unknown metric {stop.metric!r} for model '{config.model.type}' "
                             f"(choose from the metrics of each iteration: {', '.join(during)}{also})"))
    from .validation import config_problems

    problems += config_problems(config, alg)
    problems += optimizer_problems(config, alg)
    problems += readout_problems(config)
    own = getattr(config.learning, "config_problems", None)  # a rule's own checks of the other sections
    if own is not None:
        problems += own(config)
    if config.dataset.type not in data:
        problems.append(("dataset.type", f"'{config.dataset.type}' is not a task for model '{config.model.type}' "
                                         f"(choose from: {', '.join(data)})"))
    return problems


GRADIENT_KEYS = ("lr_schedule", "weight_decay", "clip_grad_norm")  # what only a GradientTrainer applies


def optimizer_problems(config, alg) -> list[tuple[str, str]]:
    """The optimizer keys set for a rule whose trainer takes no gradient steps (FORCE's RLS, say)."""
    t = config.training
    given = [k for k in GRADIENT_KEYS if getattr(t, k) != type(t).model_fields[k].default]
    rule = alg.rule(config.learning.rule)
    if not given or rule is None:
        return []
    from .trainer import GradientTrainer

    if issubclass(rule.trainer_class(), GradientTrainer):
        return []
    return [(f"training.{k}", f"rule '{config.learning.rule}' of model '{config.model.type}' takes no gradient "
                              "steps, so it has no optimizer to apply this to") for k in given]


def readout_problems(config) -> list[tuple[str, str]]:
    """A regression readout (``learning.readout: mse``) without target trajectories, or targets without it;
    a metric a regression does not report (accuracy) asked for by early stopping or validation."""
    if "readout" not in type(config.learning).model_fields:
        return []
    mse = config.learning.readout == "mse"
    kind = registry.dataset(config.dataset.type).kind
    target = getattr(config.dataset, "target", None)
    if mse and (kind != "dense" or target == "labels"):
        return [("learning.readout", "mse regresses on target trajectories: it needs a dense dataset with "
                                     f"targets (array_files), not '{config.dataset.type}'"
                                     + (" with target: labels" if target == "labels" else ""))]
    if not mse and target == "targets":
        return [("dataset.target", "target trajectories are learnt by regression: set learning.readout: mse")]
    problems = []
    t = config.training
    if mse and t.early_stopping is not None and t.early_stopping.metric.endswith("accuracy"):
        problems.append(("training.early_stopping.metric", "a regression (readout mse) reports no accuracy: "
                                                           "stop on loss or valid_loss"))
    if mse and t.validate_every is not None and not (t.select_on or "").endswith("loss"):
        problems.append(("training.select_on", "a regression (readout mse) reports no accuracy: "
                                               "set select_on: valid_loss"))
    return problems


def algorithm_of(config) -> "registry.Algorithm":
    return registry.algorithm(config.model.type)

def task_id(config: TaskConfig) -> str:
    """A stable content hash of the sections that decide the task's result.

    A key added to a section after sweeps were run with it is declared with
    ``json_schema_extra=ID_WHEN_SET``: at its default it is left out of the hash, so every
    existing task keeps its id, and it renames a task only when a spec sets it.
    """
    payload = config.model_dump(mode="json", include=set(RESULT_SECTIONS))
    for name in RESULT_SECTIONS:
        section = getattr(config, name)
        if isinstance(section, Section):
            _drop_new_defaults(section, payload[name])
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def id_part(section: Section, dumped: dict) -> str:
    """A result section's part of the text :func:`task_id` hashes (``dumped``: its JSON-mode dump).

    :func:`task_id` hashes ``{"dataset":D,"learning":L,"model":M,"seed":S,"training":T}`` (its keys
    sorted, compact): a planner that holds each section's part can hash a config without dumping it.
    """
    payload = json.loads(json.dumps(dumped))  # a copy: the drop reaches into nested sections
    _drop_new_defaults(section, payload)
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def _drop_new_defaults(section: Section, dumped: dict) -> None:
    for fname, field in type(section).model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        value = getattr(section, fname)
        if extra.get("in_task_id") == "when set" and value == field.get_default(call_default_factory=True):
            dumped.pop(fname, None)
        elif isinstance(value, Section) and isinstance(dumped.get(fname), dict):
            _drop_new_defaults(value, dumped[fname])


def parse_duration(text: str) -> int:
    """SLURM time ``[D-]HH:MM:SS`` / ``MM:SS`` -> seconds."""
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
    parts = [int(p) for p in text.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    h, m, s = parts
    return ((days * 24 + h) * 60 + m) * 60 + s


def parse_memory_mb(text: str) -> int:
    text = text.upper().rstrip("B")
    factor = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
    if text and text[-1] in factor:
        return max(1, int(float(text[:-1]) * factor[text[-1]]))
    return max(1, int(float(text)))
