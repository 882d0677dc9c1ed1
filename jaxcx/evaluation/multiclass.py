"""Multi-class classification: the arg-max decision, per-class and averaged metrics."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxcx import metrics as metrics_lib
from jaxcx import plots
from jaxcx.evaluation.base import (Evaluator, ImageLookup, Outputs, bootstrap_seed,
                                   register_evaluator, table, with_interval)

SUMMARY_KEYS = ("accuracy", "macro_f1", "macro_recall", "macro_precision", "roc_auc", "pr_auc")


def confusion(probs: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """[C, C] counts, rows true class, columns the arg-max prediction."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (np.asarray(labels, np.int64), np.argmax(probs, axis=1)), 1)
    return cm


def summary_metrics(probs: np.ndarray, labels: np.ndarray, num_classes: int,
                    areas: bool = True) -> dict[str, float]:
    """Accuracy, macro precision/recall/F1 from the arg-max confusion; the macro
    one-vs-rest ROC AUC, and with `areas` also the PR AUC (per-class curves: slower)."""
    cm = confusion(probs, labels, num_classes)
    diagonal = np.diag(cm).astype(np.float64)
    true_counts, predicted_counts = cm.sum(axis=1), cm.sum(axis=0)
    recall = np.divide(diagonal, true_counts, out=np.zeros(num_classes), where=true_counts > 0)
    precision = np.divide(diagonal, predicted_counts, out=np.zeros(num_classes),
                          where=predicted_counts > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(num_classes),
                   where=precision + recall > 0)
    present = true_counts > 0
    out = {"accuracy": float(diagonal.sum() / max(cm.sum(), 1)),
           "macro_precision": float(precision[present].mean()),
           "macro_recall": float(recall[present].mean()),
           "macro_f1": float(f1[present].mean())}
    if areas:
        curves = metrics_lib.probability_metrics(probs, labels)
        out.update(roc_auc=curves["roc_auc"], pr_auc=curves["pr_auc"])
    else:
        out["roc_auc"] = metrics_lib.macro_roc_auc(probs, labels)
    return out


@register_evaluator("multiclass")
class MulticlassEvaluator(Evaluator):
    """C > 2 exclusive classes; the prediction is the most probable class. Macro averages
    are over the classes present in the split."""

    def operating_points(self, val: Outputs) -> dict[str, Any]:
        return {"rule": "argmax"}

    def metrics(self, outputs: Outputs, operating: Mapping[str, Any], *,
                intervals: bool) -> dict[str, Any]:
        probs = np.asarray(outputs.probs, np.float64)
        labels = np.asarray(outputs.labels, np.int64)
        num_classes = len(outputs.class_names)
        cm = confusion(probs, labels, num_classes)
        summary = summary_metrics(probs, labels, num_classes)
        per_class = metrics_lib.summarize_confusion(cm, outputs.class_names)
        per_class.update(metrics_lib.probability_metrics(probs, labels, names=outputs.class_names))
        if intervals:
            summary["ci95"] = {key: list(interval) for key, interval in
                               metrics_lib.bootstrap_intervals(
                                   lambda p, y: summary_metrics(p, y, num_classes, areas=False),
                                   probs, labels, n_resamples=self.settings.bootstrap_resamples,
                                   seed=bootstrap_seed(self.settings)).items()}
        per_class_rows = {name: {key: per_class.get(f"{key}/{name}", float("nan"))
                                 for key in ("precision", "recall", "f1", "roc_auc")}
                          for name in outputs.class_names}
        return {"task": self.task, "n": int(len(labels)), "summary": summary,
                "per_class": per_class_rows, "confusion": cm.tolist()}

    def figures(self, outputs: Outputs, record: Mapping[str, Any], out_dir: Path, title: str,
                split: str, image_of: ImageLookup | None = None) -> dict[str, Path]:
        probs = np.asarray(outputs.probs, np.float64)
        labels = np.asarray(outputs.labels, np.int64)
        names = outputs.class_names
        figures = {"confusion": plots.confusion_matrix(
            np.asarray(record["confusion"]), names, out_dir / f"{split}_confusion.png",
            f"{title}: {split} confusion (rows true class)")}
        recalls = {f"class_accuracy/{name}": row["recall"]
                   for name, row in record["per_class"].items()}
        figures["per class"] = plots.per_class_accuracy(
            recalls, out_dir / f"{split}_per_class_accuracy.png",
            f"{title}: {split} accuracy (recall) per class", split=None)
        curves = {name: (probs[:, k], labels == k) for k, name in enumerate(names)
                  if 0 < np.sum(labels == k) < len(labels)}
        if curves:
            figures["roc pr"] = plots.roc_pr_curves(
                curves, out_dir / f"{split}_roc_pr.png",
                f"{title}: {split} ROC and PR, each class against the rest")
        count = int(self.settings.get("most_wrong", 0))
        if image_of is not None and outputs.ids is not None and count:
            true_prob = probs[np.arange(len(labels)), labels]
            wrong = np.flatnonzero(np.argmax(probs, axis=1) != labels)
            order = wrong[np.argsort(true_prob[wrong], kind="stable")][:count]
            if len(order):
                predicted = np.argmax(probs, axis=1)
                figures["most wrong"] = plots.image_grid(
                    [image_of(str(outputs.ids[k])) for k in order],
                    [f"true {names[labels[k]]} ({true_prob[k]:.2f})\npredicted "
                     f"{names[predicted[k]]}" for k in order],
                    out_dir / f"{split}_most_wrong.png",
                    f"{title}: most wrong {split} images (probability of the true class)")
        return figures

    def markdown(self, record: Mapping[str, Any]) -> list[str]:
        summary = record["summary"]
        lines = table(list(SUMMARY_KEYS), [[with_interval(summary, k) for k in SUMMARY_KEYS]])
        lines += ["", *table(["class", "precision", "recall", "f1", "roc_auc"], [
            [name, *[f"{row[k]:.4f}" for k in ("precision", "recall", "f1", "roc_auc")]]
            for name, row in record["per_class"].items()])]
        return lines
