"""Finished runs side by side, read back from their folders (the CheXpert notebook's saved
runs and `displayRunParameters`): the config fields that set them apart, and their
validation (and, once tested, test) metrics per label."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxcx.config import config_diff, format_value
from jaxcx.run import TEST_DIR, TEST_FILE, RunResult, load_result
from jaxcx.workdir import WorkdirError

# Shown for every comparison, whether or not the runs differ in them.
KEY_FIELDS = ("model.name", "data.name", "data.image_size", "optim.name",
              "optim.learning_rate", "train.num_epochs", "train.batch_size", "seed")
PER_LABEL_METRICS = ("roc_auc", "average_precision")


class CompareError(WorkdirError):
    """A folder that holds no finished run, or labels that do not fit the runs."""


@dataclasses.dataclass
class Comparison:
    """Markdown tables: `parameters` (one column per run) and `metrics` (per label)."""

    labels: list[str]
    results: list[RunResult]
    parameters: str
    metrics: str

    def __str__(self) -> str:
        return f"{self.parameters}\n\n{self.metrics}"


def load_runs(workdirs: Sequence[str | Path]) -> list[RunResult]:
    """The finished run of each folder; a folder without one is an error naming it."""
    results = []
    for workdir in workdirs:
        result = load_result(workdir)
        if result is None:
            raise CompareError(f"{workdir} holds no finished run (no result.json): train it "
                               "first, or check the path")
        results.append(result)
    return results


def _test_record(result: RunResult) -> dict[str, Any] | None:
    path = result.workdir / TEST_DIR / TEST_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not np.isfinite(value) else f"{value:.4f}"
    return format_value(value) if value is not None else ""


def parameter_table(results: Sequence[RunResult], labels: Sequence[str]) -> str:
    """Rows: `KEY_FIELDS` and every other field in which the runs differ."""
    configs = [r.config for r in results]
    differing = set()
    for config in configs[1:]:
        differing |= set(config_diff(configs[0], config))
    fields = [*KEY_FIELDS, *sorted(differing - set(KEY_FIELDS))]
    flat = [json.loads(json.dumps(c.to_dict(), default=str)) for c in configs]

    def lookup(tree, field):
        for part in field.split("."):
            if not isinstance(tree, dict) or part not in tree:
                return None
            tree = tree[part]
        return tree

    lines = ["| parameter | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for field in fields:
        values = [lookup(tree, field) for tree in flat]
        marker = " *" if field in differing else ""
        lines.append(f"| `{field}`{marker} | " + " | ".join(_cell(v) for v in values) + " |")
    return "\n".join(lines + ["", "`*`: the runs differ in this field."])


def metric_table(results: Sequence[RunResult], labels: Sequence[str]) -> str:
    """Rows: best step, validation loss and macro areas, then each label's validation
    ROC AUC and average precision, and its test ROC AUC where the run was tested."""
    tests = [_test_record(r) for r in results]
    names = list(dict.fromkeys(n for r in results if r.val is not None for n in r.val.class_names))
    rows: list[tuple[str, list[Any]]] = [
        ("best step", [r.best_step for r in results]),
        ("val loss", [r.val_metrics.get("val/loss") for r in results]),
        ("val macro roc_auc", [r.val_metrics.get("val/roc_auc") for r in results]),
        ("val macro average_precision",
         [r.val_metrics.get("val/average_precision") for r in results])]
    for name in names:
        for metric in PER_LABEL_METRICS:
            rows.append((f"{name}: val {metric}",
                         [r.val_metrics.get(f"val/{metric}/{name}") for r in results]))
        if any(t and t.get("task") == "multilabel" for t in tests):
            rows.append((f"{name}: test roc_auc", [
                t["operating_points"]["validation"]["per_label"].get(name, {}).get("roc_auc")
                if t and t.get("task") == "multilabel" else None for t in tests]))
    lines = ["| metric | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    lines += [f"| {name} | " + " | ".join(_cell(v) for v in values) + " |"
              for name, values in rows]
    return "\n".join(lines)


def compare_runs(workdirs: Sequence[str | Path],
                 labels: Sequence[str] | None = None) -> Comparison:
    """Reads the finished runs in `workdirs` and tabulates them (columns named by
    `labels`, default the folder names)."""
    results = load_runs(workdirs)
    labels = list(labels) if labels else [Path(w).name for w in workdirs]
    if len(labels) != len(results):
        raise CompareError(f"{len(labels)} labels for {len(results)} runs")
    return Comparison(labels, results, parameter_table(results, labels),
                      metric_table(results, labels))
