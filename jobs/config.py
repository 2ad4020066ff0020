"""The typed configuration of one task, and its defaults.

A task's config has the sections that decide its result (``model``,
``dataset``, ``learning``, ``training``, ``seed``) and the sections that
decide only how it runs (``checkpoint``, ``resources``). The task id hashes
the first group only, so changing a time limit or a checkpoint interval
never renames a task (resume is bit-identical whatever the interval).

Every section is a pydantic model that forbids unknown keys; the sweep spec
(``snnbatch.orchestrator.spec``) validates a whole file against these
models. Adding an algorithm means adding its model / dataset / learning
class to the unions below and a trainer to ``snnbatch.jobs.trainers``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

Probability = Annotated[float, Field(gt=0.0, lt=1.0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ------------------------------------------------------------------ models


class LIFModel(Section):
    """Discrete-time LIF hidden layer with current synapses and a leaky readout (seed 004)."""

    type: Literal["lif"] = "lif"
    n_hidden: PositiveInt = 128
    recurrent: bool = False
    dt: PositiveFloat = 1e-3
    tau_syn: PositiveFloat = 5e-3
    tau_mem: PositiveFloat = 10e-3
    threshold: PositiveFloat = 1.0
    weight_scale: PositiveFloat = 7.0
    dtype: Literal["float32", "float64"] = "float32"


class ALIFModel(Section):
    """LIF hidden layer whose threshold adapts: ϑ + adapt_jump·A, A ← ρA + S, ρ = exp(−dt/tau_adapt) (seed 001)."""

    type: Literal["alif"] = "alif"
    n_hidden: PositiveInt = 128
    recurrent: bool = False
    dt: PositiveFloat = 1e-3
    tau_syn: PositiveFloat = 5e-3
    tau_mem: PositiveFloat = 10e-3
    tau_adapt: PositiveFloat = 100e-3
    adapt_jump: NonNegativeFloat = 0.2
    threshold: PositiveFloat = 1.0
    weight_scale: PositiveFloat = 7.0
    dtype: Literal["float32", "float64"] = "float32"


class DendriticModel(Section):
    """Two-compartment (soma + dendrite) neurons, three coupled ODEs per compartment (seed 000).

    Times in ms. The model constants are those documented in ``snnbatch.kernels.dendritic``.
    """

    type: Literal["dendritic"] = "dendritic"
    n_neurons: PositiveInt = 20
    n_inputs: PositiveInt = 10
    dt: PositiveFloat = 0.1
    duration: PositiveFloat = 200.0
    recurrent: bool = True
    train_sigma: bool = False
    init_noise: NonNegativeFloat = 0.05  # student = teacher weights × (1 + init_noise·N(0,1)); 0: random init
    dtype: Literal["float32", "float64"] = "float64"


class ForceModel(Section):
    """Recurrent LIF network, static balanced connections plus plastic ones trained by RLS (seed 002).

    Times in ms. ``packed`` stores each neuron's inverse covariance as a packed symmetric matrix.
    """

    type: Literal["force"] = "force"
    n_neurons: PositiveInt = 200
    n_static: PositiveInt = 80
    n_plastic: PositiveInt = 40
    dt: PositiveFloat = 0.1
    duration: PositiveFloat = 1000.0
    warmup: NonNegativeFloat = 100.0
    tau_mem: PositiveFloat = 10.0
    tau_syn: PositiveFloat = 3.0
    tau_plastic: PositiveFloat = 150.0
    packed: bool = True
    dtype: Literal["float32", "float64"] = "float32"


ModelSection = Annotated[Union[LIFModel, ALIFModel, DendriticModel, ForceModel], Field(discriminator="type")]


# ------------------------------------------------------------------ datasets


class RandmanData(Section):
    """Smooth random manifolds, one spike per input unit per sample (Zenke & Vogels 2021)."""

    type: Literal["randman"] = "randman"
    n_inputs: PositiveInt = 100
    n_classes: Annotated[int, Field(ge=2)] = 2
    n_train: PositiveInt = 2000
    n_test: PositiveInt = 500
    dim: PositiveInt = 1
    alpha: PositiveFloat = 2.0
    n_freqs: PositiveInt = 32
    n_steps: PositiveInt = 100
    seed: NonNegativeInt = 0


class SHDData(Section):
    """The Heidelberg Spiking Digits (Cramer et al. 2020) from local HDF5 files in the published layout.

    Each file holds ``spikes/times`` (per sample, spike times in seconds),
    ``spikes/units`` (per sample, the input channel of each spike) and
    ``labels``. Spikes are binned to steps of ``dt`` seconds; those after
    ``n_steps·dt`` are dropped (the SpyTorch tutorial: 100 steps over 1.4 s).
    Without ``test_path`` a seeded ``test_fraction`` of ``train_path`` is held
    out. ``max_samples`` takes a seeded random subset of each file. Nothing is
    downloaded: the files must exist where the task runs (paths are checked,
    and made absolute, when the spec is validated).
    """

    type: Literal["shd"] = "shd"
    train_path: str
    test_path: Optional[str] = None
    test_fraction: Probability = 0.2
    n_steps: PositiveInt = 100
    dt: PositiveFloat = 14e-3
    max_samples: Optional[PositiveInt] = None
    n_inputs: PositiveInt = 700
    n_classes: Annotated[int, Field(ge=2)] = 20
    seed: NonNegativeInt = 0

    @field_validator("train_path", "test_path")
    @classmethod
    def _file_exists(cls, value, info: ValidationInfo):
        """With the validation context ``{"check_files": True}`` (the spec's), the file must exist."""
        if value is None or not (info.context or {}).get("check_files"):
            return value
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"file not found: {value}")
        return str(path.resolve())


class TeacherData(Section):
    """Somatic voltage traces of a teacher network with its own random weights, under random smooth inputs."""

    type: Literal["teacher"] = "teacher"
    seed: NonNegativeInt = 0


class SinusoidData(Section):
    """Target currents offset_i + amp·sin(2π·freq·t + φ_i), random phases φ_i (seed 002's benchmark).

    ``offset``: one value for every neuron, or (the default) each neuron's mean current in the
    untrained network.
    """

    type: Literal["sinusoids"] = "sinusoids"
    freq: PositiveFloat = 1.0
    amp: PositiveFloat = 0.5
    offset: Optional[float] = None
    seed: NonNegativeInt = 0


DatasetSection = Annotated[Union[RandmanData, SHDData, TeacherData, SinusoidData], Field(discriminator="type")]


# ------------------------------------------------------------------ learning


class BPTTLearning(Section):
    """Surrogate-gradient backpropagation through time."""

    rule: Literal["bptt"] = "bptt"
    surrogate_scale: PositiveFloat = 100.0
    detach_reset: bool = True


class EpropLearning(Section):
    """Online e-prop (diagonal RTRL): eligibility traces forward in time, memory independent of T.

    Trains on a per-time-step readout loss (see ``snnbatch.kernels.eprop``);
    exact for networks without recurrent weights, an approximation (explicit
    recurrence ignored) with them.
    """

    rule: Literal["eprop"] = "eprop"
    surrogate_scale: PositiveFloat = 100.0
    detach_reset: bool = True


class AdjointLearning(Section):
    """Gradients by the discrete adjoint of the forward-Euler solve (a reverse-time solve)."""

    rule: Literal["adjoint"] = "adjoint"


class RLSLearning(Section):
    """Recursive least squares on each neuron's own inverse covariance (FORCE)."""

    rule: Literal["rls"] = "rls"
    lam: PositiveFloat = 0.1
    learn_every: PositiveInt = 100


LearningSection = Annotated[Union[BPTTLearning, EpropLearning, AdjointLearning, RLSLearning],
                            Field(discriminator="rule")]


class Training(Section):
    iterations: Optional[PositiveInt] = None
    epochs: Optional[PositiveInt] = None
    batch_size: PositiveInt = 256
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: PositiveFloat = 2e-3
    beta1: Probability = 0.9
    beta2: Probability = 0.999

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
    every_minutes: PositiveFloat = 10.0
    max_overhead: Annotated[float, Field(gt=0.0, le=1.0)] = 0.01
    keep: Annotated[int, Field(ge=1, le=100)] = 2

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
    memory: Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?[KMGT]?B?$")] = "2G"
    time: Annotated[str, Field(pattern=DURATION)] = "01:00:00"
    partition: Optional[str] = None
    account: Optional[str] = None
    qos: Optional[str] = None
    constraint: Optional[str] = None
    sbatch_extra: dict[str, str] = {}
    deadline_margin: Optional[Annotated[str, Field(pattern=DURATION)]] = None
    max_requeues: NonNegativeInt = 20
    retries: NonNegativeInt = 0

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


class TaskConfig(Section):
    """Everything one task needs, fully resolved."""

    model: ModelSection = LIFModel()
    dataset: DatasetSection = RandmanData()
    learning: LearningSection = BPTTLearning()
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

# What trains what: per model type, the learning rules and datasets it works with (the first is
# the default when the spec leaves that section out or gives it without its ``rule`` / ``type``).
ALGORITHMS = {
    "lif": {"learning": ("bptt", "eprop"), "dataset": ("randman", "shd", )},
    "alif": {"learning": ("bptt", "eprop"), "dataset": ("randman", "shd")},
    "dendritic": {"learning": ("adjoint",), "dataset": ("teacher",)},
    "force": {"learning": ("rls",), "dataset": ("sinusoids",)},
}
UNION_TAGS = {"model": "type", "dataset": "type", "learning": "rule"}


def fill_union_tags(data):
    """Fill in the ``type`` / ``rule`` a spec leaves out, from the model type (default ``lif``)."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    model = data.get("model")
    if isinstance(model, dict) and "type" not in model:
        data["model"] = model = {"type": "lif", **model}
    model_type = model.get("type", "lif") if isinstance(model, dict) else "lif"
    defaults = ALGORITHMS.get(model_type if isinstance(model_type, str) else "", ALGORITHMS["lif"])
    for section in ("dataset", "learning"):
        value = data.get(section, {})
        if value is None:
            value = {}
        tag = UNION_TAGS[section]
        if isinstance(value, dict) and tag not in value:
            data[section] = {tag: defaults[section][0], **value}
    return data


def compatibility_problems(config: "TaskConfig") -> list[tuple[str, str]]:
    """(key path, message) for a learning rule or dataset the model type cannot use."""
    allowed = ALGORITHMS[config.model.type]
    problems = []
    if config.learning.rule not in allowed["learning"]:
        problems.append(("learning.rule", f"'{config.learning.rule}' does not train model '{config.model.type}' "
                                          f"(choose from: {', '.join(allowed['learning'])})"))
    if config.dataset.type not in allowed["dataset"]:
        problems.append(("dataset.type", f"'{config.dataset.type}' is not a task for model '{config.model.type}' "
                                         f"(choose from: {', '.join(allowed['dataset'])})"))
    return problems


def task_id(config: TaskConfig) -> str:
    """A stable content hash of the sections that decide the task's result."""
    payload = config.model_dump(mode="json", include=set(RESULT_SECTIONS))
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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
