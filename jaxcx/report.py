"""A finished run's figures and `report.md`: curves, and the best checkpoint on validation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import ml_collections
import numpy as np

from jaxcx import plots, tracking
from jaxcx.data.registry import DataBundle
from jaxcx.train.loop import FitResult, evaluate_best

REPORT_KEYS = ("loss", "accuracy", "precision", "recall", "specificity", "f1", "roc_auc",
               "pr_auc")


def metrics_table(rows: dict[str, dict[str, float]], keys=REPORT_KEYS) -> str:
    """A markdown table: one row per named run, one column per metric present."""
    columns = [k for k in keys if any(k in r for r in rows.values())]
    lines = ["| run | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, row in rows.items():
        cells = [f"{row[k]:.4f}" if k in row else "" for k in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def roc_pr_inputs(name: str, probs: np.ndarray, labels: np.ndarray,
                  class_names: Sequence[str]) -> tuple[dict[str, tuple], str]:
    """`plots.roc_pr_curves` input and a title suffix: the run's curve for two classes,
    one-vs-rest curves per class present for more."""
    probs, labels = np.asarray(probs), np.asarray(labels)
    if probs.ndim == 1 or probs.shape[1] == 2:
        return {name: (probs, labels)}, ""
    curves = {class_name: (probs[:, k], labels == k) for k, class_name in enumerate(class_names)
              if 0 < np.sum(labels == k) < len(labels)}
    return curves, " (one class against the rest)"


def write_run_report(config: ml_collections.ConfigDict, workdir: str | Path, data: DataBundle,
                     result: FitResult) -> Path:
    """Draws the run's figures into `workdir/plots` and writes `workdir/report.md`."""
    workdir = Path(workdir)
    plot_dir = workdir / "plots"
    evals = [row for row in tracking.read_metrics(workdir) if "val/loss" in row]
    figures = [plots.training_curves(evals, plot_dir / "training_curves.png",
                                     f"{config.name}: training curves")]
    best, best_step = evaluate_best(config, workdir, data, data.val, "val")
    if best.confusion is not None:
        figures.append(plots.confusion_matrix(
            best.confusion, data.class_names, plot_dir / "val_confusion.png",
            f"{config.name}: validation confusion (best step {best_step})"))
        figures.append(plots.per_class_accuracy(
            evals, plot_dir / "val_per_class_accuracy.png", f"{config.name}: per-class accuracy"))
    if best.probs is not None and not data.multilabel:
        curves, kind = roc_pr_inputs(config.name, best.probs, best.labels, data.class_names)
        figures.append(plots.roc_pr_curves(curves, plot_dir / "val_roc_pr.png",
                                           f"{config.name}: validation ROC and PR{kind}"))
    val = {k.removeprefix("val/"): v for k, v in best.metrics.items()}
    lines = [
        f"# {config.name}",
        "",
        f"Best checkpoint: step {best_step} of {evals[-1]['step'] if evals else 0} "
        f"(by `{config.train.best_metric}`, {config.train.best_mode})"
        + ("; stopped early." if result.stopped_early else "."),
        "",
        "## Validation metrics of the best checkpoint",
        "",
        metrics_table({config.name: val}),
        "",
        "## Figures",
        "",
        *[f"![{f.stem}](plots/{f.name})" for f in figures],
        "",
    ]
    path = workdir / "report.md"
    path.write_text("\n".join(lines))
    return path
