"""Multi-label classification: one decision per label, thresholds per label (chosen on
validation, or given in the config), per-label and averaged metrics."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jaxcx import metrics as metrics_lib
from jaxcx import plots
from jaxcx.evaluation.base import (Evaluator, ImageLookup, Outputs, bootstrap_seed,
                                   register_evaluator, table, with_interval)

SUMMARY_KEYS = ("macro/f1", "micro/f1", "samples/recall", "samples/precision", "samples/f1",
                "subset_accuracy", "hamming_loss", "roc_auc", "pr_auc")
LABEL_KEYS = ("tp", "predicted_positives", "recall", "precision", "f1", "specificity",
              "roc_auc", "average_precision")
COUNT_KEYS = ("tp", "predicted_positives")


@register_evaluator("multilabel")
class MultilabelEvaluator(Evaluator):
    """Each label is its own binary problem. Operating points: 0.5 for every label;
    per-label thresholds chosen on validation by `eval.threshold` ('youden', 'f1', or
    'recall': the highest threshold whose validation recall reaches `eval.target_recall`;
    a label with one class present in validation keeps 0.5); and, when
    `eval.label_thresholds` names labels ((label, threshold) pairs or a mapping), those
    thresholds with 0.5 for the others (the CheXpert notebook's target thresholds).
    `eval.include_targets` limits the per-label tables and figures to the named labels
    (metrics cover all)."""

    def operating_points(self, val: Outputs) -> dict[str, Any]:
        names = list(val.class_names)
        chosen = metrics_lib.best_thresholds(
            val.probs, val.labels, self.settings.threshold, val.label_mask, names,
            target_recall=float(self.settings.get("target_recall", 0.9)))
        thresholds = {"0.5": [0.5] * len(names), "validation": [float(t) for t in chosen]}
        given = dict(self.settings.get("label_thresholds", {}) or {})
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise ValueError(f"eval.label_thresholds names unknown label(s) {unknown}; "
                             f"labels: {names}")
        if given:
            thresholds["config"] = [float(given.get(name, 0.5)) for name in names]
        return {"rule": self.settings.threshold, "thresholds": thresholds}

    def _shown(self, names) -> list[str]:
        wanted = list(self.settings.get("include_targets", ()) or ())
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise ValueError(f"eval.include_targets names unknown label(s) {unknown}; "
                             f"labels: {list(names)}")
        return wanted or list(names)

    def metrics(self, outputs: Outputs, operating: Mapping[str, Any], *,
                intervals: bool) -> dict[str, Any]:
        probs = np.asarray(outputs.probs, np.float64)
        labels = np.asarray(outputs.labels)
        mask = outputs.label_mask
        names = outputs.class_names
        points = {}
        for name, thresholds in operating["thresholds"].items():
            report = metrics_lib.multilabel_report(probs, labels, np.asarray(thresholds), mask,
                                                   names)
            point = {"thresholds": list(thresholds),
                     **{key: report[key] for key in SUMMARY_KEYS},
                     "per_label": {label: {key: report[f"{key}/{label}"] for key in LABEL_KEYS}
                                   for label in names}}
            if intervals:
                point["ci95"] = self._intervals(probs, labels, mask, np.asarray(thresholds))
            points[name] = point
        return {"task": self.task, "n": int(len(labels)), "threshold_rule": operating["rule"],
                "operating_points": points}

    def _intervals(self, probs, labels, mask, thresholds) -> dict[str, list[float]]:
        kept = np.ones(labels.shape) if mask is None else np.asarray(mask, np.float64)
        width = labels.shape[1]

        def summary(p, y):
            """Macro F1 at `thresholds` and macro ROC AUC; y holds labels then their mask."""
            actual, keep = y[:, :width] > 0.5, y[:, width:] > 0
            predicted = p >= thresholds
            tp = (predicted & actual & keep).sum(axis=0)
            wrong = ((predicted != actual) & keep).sum(axis=0)
            f1 = np.divide(2 * tp, 2 * tp + wrong, out=np.zeros(width), where=2 * tp + wrong > 0)
            return {"macro/f1": float(f1.mean()),
                    "roc_auc": metrics_lib.macro_roc_auc(p, y[:, :width], keep)}

        # Resample examples: labels and their mask travel together in one array.
        both = np.concatenate([labels, kept], axis=1)
        return {key: list(interval) for key, interval in metrics_lib.bootstrap_intervals(
            summary, probs, both, n_resamples=self.settings.bootstrap_resamples,
            seed=bootstrap_seed(self.settings)).items()}

    def figures(self, outputs: Outputs, record: Mapping[str, Any], out_dir: Path, title: str,
                split: str, image_of: ImageLookup | None = None) -> dict[str, Path]:
        probs = np.asarray(outputs.probs, np.float64)
        labels = np.asarray(outputs.labels) > 0.5
        kept = (np.ones(labels.shape, bool) if outputs.label_mask is None
                else np.asarray(outputs.label_mask) > 0)
        shown = self._shown(outputs.class_names)
        columns = {name: j for j, name in enumerate(outputs.class_names) if name in shown}
        curves = {name: (probs[kept[:, j], j], labels[kept[:, j], j])
                  for name, j in columns.items()
                  if 0 < labels[kept[:, j], j].sum() < kept[:, j].sum()}
        figures = {}
        if curves:
            for kind, words in (("roc", "ROC curve"), ("pr", "precision-recall curve")):
                figures[f"{kind} grid"] = plots.curve_grid(
                    curves, out_dir / f"{split}_{kind}_grid.png",
                    f"{title}: {split} {words} of each label", kind=kind)
        point = record["operating_points"].get("validation",
                                               record["operating_points"]["0.5"])
        f1 = {f"class_accuracy/{name}": row["f1"] for name, row in point["per_label"].items()
              if name in shown}
        figures["per label f1"] = plots.per_class_accuracy(
            f1, out_dir / f"{split}_per_label_f1.png",
            f"{title}: {split} F1 per label (thresholds chosen on validation)", split=None)
        return figures

    def markdown(self, record: Mapping[str, Any]) -> list[str]:
        lines = table(["thresholds", *SUMMARY_KEYS], [
            [name, *[with_interval(point, k) for k in SUMMARY_KEYS]]
            for name, point in record["operating_points"].items()])
        point = record["operating_points"].get("validation", record["operating_points"]["0.5"])
        shown = self._shown(list(point["per_label"]))

        def cell(row, key):
            return f"{row[key]:.0f}" if key in COUNT_KEYS else f"{row[key]:.4f}"

        lines += ["", *table(["label", "threshold", *LABEL_KEYS], [
            [label, f"{threshold:.3f}", *[cell(row, k) for k in LABEL_KEYS]]
            for (label, row), threshold in zip(point["per_label"].items(), point["thresholds"])
            if label in shown])]
        return lines
