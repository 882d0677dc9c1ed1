"""What every evaluator shares: the outputs it reads, its interface and the registry.

An evaluator turns a split's model outputs (probabilities with their labels) into
metrics, figures and a markdown section. Operating points (decision thresholds) are
chosen on validation outputs only and then applied to the test outputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from jaxcx.registry import Registry

TASKS_FROM_DATA = "auto"
ImageLookup = Callable[[str], np.ndarray]


@dataclasses.dataclass
class Outputs:
    """A split's model outputs: probabilities [N] / [N, C] / [N, L], labels [N] or
    [N, L], record ids (may be None) and, for multi-label data, the mask of kept labels."""

    probs: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    ids: np.ndarray | None = None
    label_mask: np.ndarray | None = None

    def save(self, path: str | Path) -> Path:
        arrays = {"probs": self.probs, "labels": self.labels,
                  "class_names": np.asarray(self.class_names, dtype=str)}
        if self.ids is not None:
            arrays["ids"] = np.asarray(self.ids, dtype=str)
        if self.label_mask is not None:
            arrays["label_mask"] = self.label_mask
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Outputs:
        with np.load(path) as saved:
            return cls(saved["probs"], saved["labels"], [str(c) for c in saved["class_names"]],
                       saved["ids"] if "ids" in saved else None,
                       saved["label_mask"] if "label_mask" in saved else None)


class Evaluator:
    """Metrics, operating points, figures and markdown for one task.

    `settings` is the config's `eval` section (threshold rule, bootstrap resamples...).
    """

    task = ""

    def __init__(self, settings: ml_collections.ConfigDict):
        self.settings = settings

    def operating_points(self, val: Outputs) -> dict[str, Any]:
        """Decision rules chosen on validation outputs (JSON-serialisable)."""
        raise NotImplementedError

    def metrics(self, outputs: Outputs, operating: Mapping[str, Any], *,
                intervals: bool) -> dict[str, Any]:
        """Metrics of `outputs` at each operating point; bootstrap 95% intervals if asked."""
        raise NotImplementedError

    def figures(self, outputs: Outputs, record: Mapping[str, Any], out_dir: Path, title: str,
                split: str, image_of: ImageLookup | None = None) -> dict[str, Path]:
        """The task's figures of one split, drawn into `out_dir`."""
        raise NotImplementedError

    def markdown(self, record: Mapping[str, Any]) -> list[str]:
        """Markdown lines (tables) of a `metrics` record."""
        raise NotImplementedError


EVALUATORS: Registry = Registry("eval.task")
available_evaluators = EVALUATORS.names


def register_evaluator(task: str) -> Callable[[type[Evaluator]], type[Evaluator]]:
    """Class decorator registering an evaluator under a task name."""
    def decorate(cls: type[Evaluator]) -> type[Evaluator]:
        cls.task = task
        return EVALUATORS.register(task)(cls)
    return decorate


def task_for(task: str, *, multilabel: bool, num_classes: int) -> str:
    """The configured task, or under 'auto' the one the data implies."""
    if task != TASKS_FROM_DATA:
        return task
    if multilabel:
        return "multilabel"
    return "binary" if num_classes == 2 else "multiclass"


def get_evaluator(task: str, settings: ml_collections.ConfigDict) -> Evaluator:
    """The evaluator of `task` (not 'auto': see `task_for`), set up with `settings`."""
    return EVALUATORS.get(task)(settings)


def bootstrap_seed(settings: ml_collections.ConfigDict) -> int:
    return int(settings.get("bootstrap_seed", 0))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(row) + " |" for row in rows]]


def with_interval(point: Mapping[str, Any], key: str) -> str:
    """`0.9123 [0.8801, 0.9402]`, or the bare value without an interval."""
    value = point[key]
    interval = point.get("ci95", {}).get(key)
    if interval is None:
        return f"{value:.4f}"
    return f"{value:.4f} [{interval[0]:.4f}, {interval[1]:.4f}]"
