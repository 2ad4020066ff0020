"""What the results, the report and the plots call each parameter, metric and dimension.

A metric's label (with its unit) and which way is better come from the run
store's record of the algorithms' declarations (the root attr ``metrics``,
see :meth:`snnbatch.orchestrator.store.RunStore.metrics`), never from a table
here: a plugin's metrics are labelled as the built-ins' are. :data:`LABELS`
names the parameters of the spec and the dimensions of the results.
Everything here is data: no plugin, config class or registry is imported.
"""
from __future__ import annotations

from typing import Any, Mapping

# Swept parameters (by the last part of their path: training.lr -> lr) and the results' dimensions.
LABELS = {
    "lr": "learning rate",
    "n_hidden": "hidden neurons",
    "iteration": "training iteration",
    "iterations": "training iterations",
    "epochs": "epochs",
    "seed": "seed",
    "batch_size": "batch size",
    "optimizer": "optimizer",
    "beta1": "Adam β₁",
    "beta2": "Adam β₂",
    "recurrent": "recurrent connections",
    "dt": "time step (s)",
    "tau_mem": "membrane time constant (s)",
    "tau_syn": "synaptic time constant (s)",
    "tau_adapt": "adaptation time constant (s)",
    "adapt_jump": "threshold adaptation jump",
    "threshold": "firing threshold",
    "weight_scale": "initial weight scale",
    "surrogate_scale": "surrogate gradient slope",
    "n_train": "training samples",
    "n_test": "test samples",
    "n_steps": "time steps per sample",
    "n_inputs": "input channels",
    "n_classes": "classes",
    "dim": "manifold dimension",
    "alpha": "manifold smoothness α",
    "elapsed_s": "wall time (s)",
}
FINAL = "final_"  # the results table's name for a training metric's last value: loss -> final_loss


class Labels:
    """Labels and better-directions from a store's metric record (``{name: {"label", "better", ...}}``).

    ``final_<name>`` is the last value of the metric ``<name>``: "final " and its label. A metric
    the record does not have (a store planned before snnbatch recorded it) is called by its name.
    """

    def __init__(self, metrics: Mapping[str, Mapping[str, Any]] | None = None):
        self.metrics = dict(metrics or {})

    def _record(self, name: str) -> tuple[Mapping[str, Any] | None, bool]:
        """The record of metric ``name`` and whether ``name`` is its ``final_`` form."""
        if name in self.metrics:
            return self.metrics[name], False
        if name.startswith(FINAL) and name[len(FINAL):] in self.metrics:
            return self.metrics[name[len(FINAL):]], True
        return None, False

    def __call__(self, name: str) -> str:
        """The axis label of a parameter, metric or dimension: ``lr`` -> ``learning rate``."""
        record, final = self._record(name)
        if record is not None and record.get("label"):
            return f"final {record['label']}" if final else str(record["label"])
        return LABELS.get(name) or LABELS.get(name.rsplit(".", 1)[-1]) or name

    def higher_is_better(self, metric: str) -> bool:
        """Whether a higher value of ``metric`` is better, as its algorithm declares it; for a metric
        the record does not have, unless its name says it is a loss."""
        record, _ = self._record(metric)
        if record is not None and record.get("better") in ("higher", "lower"):
            return record["better"] == "higher"
        return "loss" not in metric

    def base(self, name: str) -> str:
        """What a metric measures, whichever split it is of: ``final_accuracy``, ``valid_accuracy`` and
        ``test_accuracy`` are all ``accuracy``. Tables give metrics of one base the same decimals."""
        for prefix in (FINAL, "valid_", "test_"):
            if name.startswith(prefix):
                return name[len(prefix):]
        return name

    def is_accuracy(self, name: str) -> bool:
        """Whether ``name`` is a fraction correct, between 0 and 1 (its axes are clipped to [0, 1]):
        by its name or its label."""
        record, _ = self._record(name)
        words = f"{name} {record.get('label', '') if record else ''}".lower()
        return "accuracy" in words
