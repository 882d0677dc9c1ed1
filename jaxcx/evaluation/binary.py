"""Binary classification: metrics at 0.5 and at a threshold chosen on validation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxcx import metrics as metrics_lib
from jaxcx import plots
from jaxcx.evaluation.base import (Evaluator, ImageLookup, Outputs, bootstrap_seed,
                                   register_evaluator, table, with_interval)

THRESHOLD_KEYS = ("accuracy", "f1", "sensitivity", "specificity", "precision")
AREA_KEYS = ("roc_auc", "pr_auc", "average_precision")
TABLE_KEYS = ("accuracy", "f1", "roc_auc", "pr_auc", "sensitivity", "specificity")


def metrics_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    """Accuracy, F1, sensitivity, specificity, precision and the confusion matrix
    [[TN, FP], [FN, TP]] of predicting positive when `score >= threshold`."""
    predicted = (np.asarray(scores) >= threshold).astype(np.int64)
    cm = np.zeros((2, 2), np.int64)
    np.add.at(cm, (np.asarray(labels, np.int64), predicted), 1)
    summary = metrics_lib.summarize_confusion(cm)
    return {"accuracy": summary["accuracy"], "f1": summary["f1"],
            "sensitivity": summary["recall"], "specificity": summary["specificity"],
            "precision": summary["precision"], "confusion": cm.tolist()}


@register_evaluator("binary")
class BinaryEvaluator(Evaluator):
    """Two classes; class 1 is the positive one. Operating points: 0.5 and the threshold
    chosen on validation by `eval.threshold` ('youden', 'f1' or 'recall', the last the
    highest threshold reaching `eval.target_recall`)."""

    def operating_points(self, val: Outputs) -> dict[str, Any]:
        threshold = metrics_lib.binary_threshold(
            val.probs, val.labels, self.settings.threshold,
            target_recall=self.settings.get("target_recall", 0.9))
        return {"rule": self.settings.threshold, "thresholds": {"0.5": 0.5, "validation": threshold}}

    def metrics(self, outputs: Outputs, operating: Mapping[str, Any], *,
                intervals: bool) -> dict[str, Any]:
        scores = metrics_lib.positive_scores(outputs.probs)
        labels = np.asarray(outputs.labels, np.int64)
        areas = metrics_lib.probability_metrics(scores, labels)
        points = {}
        for name, threshold in operating["thresholds"].items():
            point = {"threshold": float(threshold), **metrics_at(scores, labels, threshold),
                     **{k: areas[k] for k in AREA_KEYS}}
            if intervals:
                point["ci95"] = self._intervals(scores, labels, threshold)
            points[name] = point
        return {"task": self.task, "n": int(len(labels)), "threshold_rule": operating["rule"],
                "operating_points": points}

    def _intervals(self, scores, labels, threshold: float) -> dict[str, list[float]]:
        def point_metrics(s, y):
            at = metrics_at(s, y, threshold)
            areas = metrics_lib.probability_metrics(s, y)
            return {**{k: at[k] for k in THRESHOLD_KEYS}, **{k: areas[k] for k in AREA_KEYS}}

        return {key: list(interval) for key, interval in metrics_lib.bootstrap_intervals(
            point_metrics, scores, labels, n_resamples=self.settings.bootstrap_resamples,
            seed=bootstrap_seed(self.settings)).items()}

    def figures(self, outputs: Outputs, record: Mapping[str, Any], out_dir: Path, title: str,
                split: str, image_of: ImageLookup | None = None) -> dict[str, Path]:
        scores = metrics_lib.positive_scores(outputs.probs)
        labels = np.asarray(outputs.labels, np.int64)
        positive = outputs.class_names[1]
        figures = {}
        for name, point in record["operating_points"].items():
            slug = "05" if name == "0.5" else name
            figures[f"confusion {name}"] = plots.confusion_matrix(
                np.asarray(point["confusion"]), outputs.class_names,
                out_dir / f"{split}_confusion_{slug}.png",
                f"{title}: {split} confusion, threshold {point['threshold']:.3f} ({name})")
        if 0 < labels.sum() < len(labels):
            figures["roc pr"] = plots.roc_pr_curves(
                {title: (scores, labels)}, out_dir / f"{split}_roc_pr.png",
                f"{title}: {split} ROC and PR (from probabilities)")
        chosen = record["operating_points"].get("validation", record["operating_points"]["0.5"])
        figures["scores"] = plots.scatter_jittered_labels(
            scores, labels, out_dir / f"{split}_scores.png",
            f"{title}: {split} p({positive}) by true class", class_names=outputs.class_names,
            threshold=chosen["threshold"])
        count = int(self.settings.get("most_wrong", 0))
        if image_of is not None and outputs.ids is not None and count:
            figures["most wrong"] = self._most_wrong(
                outputs, scores, labels, chosen["threshold"], count, image_of,
                out_dir / f"{split}_most_wrong.png", f"{title}: most wrong {split} images")
        return figures

    @staticmethod
    def _most_wrong(outputs, scores, labels, threshold, count, image_of, path, title) -> Path:
        """The misclassified images furthest from their label (any, if none is wrong)."""
        error = np.abs(labels - scores)
        wrong = np.flatnonzero((scores >= threshold) != (labels == 1))
        order = wrong[np.argsort(-error[wrong], kind="stable")][:count]
        if not len(order):
            order = np.argsort(-error, kind="stable")[:count]
        positive = outputs.class_names[1]
        images = [image_of(str(outputs.ids[k])) for k in order]
        titles = [f"true {outputs.class_names[labels[k]]}\np({positive})={scores[k]:.3f}"
                  for k in order]
        return plots.image_grid(images, titles, path, f"{title} (threshold {threshold:.3f})")

    def markdown(self, record: Mapping[str, Any]) -> list[str]:
        rows = []
        for name, point in record["operating_points"].items():
            rows.append([f"{point['threshold']:.4f} ({name})",
                         *[with_interval(point, k) for k in TABLE_KEYS], str(point["confusion"])])
        return table(["threshold", *TABLE_KEYS, "confusion [[TN, FP], [FN, TP]]"], rows)
