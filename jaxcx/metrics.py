"""Classification and segmentation metrics.

Counts (confusion matrices, multi-label TP/FP/TN/FN, Dice) are jit-safe and add up across
batches and devices. Curve areas (ROC AUC, average precision, PR AUC) and thresholds are
computed on host with scikit-learn, always from probabilities, never from hard predictions.
A prediction is positive when ``prob >= threshold``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats
from sklearn import metrics as skm

Names = Sequence[str] | None


def _names(names: Names, n: int) -> list[str]:
    if names is None:
        return [str(i) for i in range(n)]
    if len(names) != n:
        raise ValueError(f"got {len(names)} names {list(names)} for {n} classes/labels")
    return [str(name) for name in names]


def _safe_div(num, den) -> np.ndarray:
    """Elementwise num / den with 0.0 where den == 0 (no warnings)."""
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def _nanmean(values) -> float:
    values = np.asarray(values, np.float64)
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


# --------------------------------------------------------------------------- single label


def confusion_matrix(predictions: jax.Array, labels: jax.Array, mask: jax.Array | None,
                     num_classes: int) -> jax.Array:
    """[C, C] int32 counts, rows = true class, columns = predicted class; jit-safe.

    `predictions` and `labels` are int [B]; examples with `mask == 0` (padding) are excluded.
    Matrices from different batches or devices add up.
    """
    true_onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.int32)
    if mask is not None:
        true_onehot = true_onehot * (jnp.asarray(mask) > 0).astype(jnp.int32)[:, None]
    pred_onehot = jax.nn.one_hot(predictions, num_classes, dtype=jnp.int32)
    return jnp.einsum("bt,bp->tp", true_onehot, pred_onehot)


def _rates(tp, fp, tn, fn) -> dict[str, np.ndarray]:
    return {
        "precision": _safe_div(tp, tp + fp),
        "recall": _safe_div(tp, tp + fn),
        "specificity": _safe_div(tn, tn + fp),
        "f1": _safe_div(2 * tp, 2 * tp + fp + fn),
        "accuracy": _safe_div(tp + tn, tp + fp + tn + fn),
    }


def summarize_confusion(cm, class_names: Names = None) -> dict[str, float]:
    """Scalar metrics from a confusion matrix (rows true, columns predicted).

    Keys: `accuracy`, `class_accuracy/NAME` (recall of each class), `precision`, `recall`
    (sensitivity), `specificity`, `f1`. Binary (C == 2): class 1 is positive, and `tp`, `fp`,
    `tn`, `fn` are added. Multi-class: the four rates are macro averages, with per-class
    values under `precision/NAME`, `recall/NAME`, `specificity/NAME`, `f1/NAME`.
    NAME is the class name or its index. Zero divisions give 0.0.
    """
    cm = np.asarray(cm, np.int64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"confusion matrix must be square [C, C], got shape {cm.shape}")
    num_classes = cm.shape[0]
    names = _names(class_names, num_classes)
    total = cm.sum()
    tp = np.diag(cm)
    fn = cm.sum(axis=1) - tp
    fp = cm.sum(axis=0) - tp
    tn = total - tp - fn - fp
    per_class = _rates(tp, fp, tn, fn)

    out = {"accuracy": float(_safe_div(tp.sum(), total))}
    out.update({f"class_accuracy/{n}": float(v) for n, v in zip(names, per_class["recall"])})
    rate_keys = ("precision", "recall", "specificity", "f1")
    if num_classes == 2:
        out.update({k: float(per_class[k][1]) for k in rate_keys})
        out.update(tp=float(tp[1]), fp=float(fp[1]), tn=float(tn[1]), fn=float(fn[1]))
    else:
        for k in rate_keys:
            out[k] = float(per_class[k].mean())
            out.update({f"{k}/{n}": float(v) for n, v in zip(names, per_class[k])})
    return out


# --------------------------------------------------------------------------- probabilities


def _curve_areas(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """ROC AUC, average precision and PR AUC of one binary problem (nan if one class)."""
    if targets.size == 0 or targets.min() == targets.max():
        return {"roc_auc": float("nan"), "average_precision": float("nan"),
                "pr_auc": float("nan")}
    precision, recall, _ = skm.precision_recall_curve(targets, scores)
    return {
        "roc_auc": float(skm.roc_auc_score(targets, scores)),
        "average_precision": float(skm.average_precision_score(targets, scores)),
        "pr_auc": float(skm.auc(recall, precision)),
    }


def macro_roc_auc(probs, labels, label_mask=None) -> float:
    """Mean ROC AUC over classes (labels [N], one against the rest) or labels ([N, L]
    0/1, entries outside `label_mask` left out) with both outcomes present, from the
    Mann-Whitney rank identity (ties share their average rank): the same value as
    `probability_metrics(...)['roc_auc']`, fast enough to bootstrap."""
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels)
    targets = labels > 0.5 if labels.ndim == 2 else labels[:, None] == np.arange(probs.shape[1])
    kept = np.ones(targets.shape, bool) if label_mask is None else np.asarray(label_mask) > 0
    areas = []
    for column in range(targets.shape[1]):
        scores, positive = probs[kept[:, column], column], targets[kept[:, column], column]
        count = positive.sum()
        if 0 < count < len(positive):
            rank_sum = stats.rankdata(scores)[positive].sum()
            areas.append((rank_sum - count * (count + 1) / 2) / (count * (len(positive) - count)))
    return float(np.mean(areas)) if areas else float("nan")


def positive_scores(probs) -> np.ndarray:
    """Binary positive-class probabilities [N] from probs [N] or [N, 2]."""
    probs = np.asarray(probs, np.float64)
    if probs.ndim == 2 and probs.shape[1] == 2:
        return probs[:, 1]
    if probs.ndim == 1:
        return probs
    raise ValueError(f"binary probabilities must be [N] or [N, 2], got shape {probs.shape}")


def probability_metrics(probs, labels, mask=None, label_mask=None,
                        names: Names = None) -> dict[str, float]:
    """ROC AUC, average precision and PR AUC (trapezoid under the PR curve) from probabilities.

    - binary: probs [N] (class 1) or [N, 2], labels int [N];
    - multi-class: probs [N, C], labels int [N]; one-vs-rest per class (`roc_auc/NAME`, ...)
      and their macro average (`roc_auc`, ...);
    - multi-label: probs and labels [N, L]; per label and macro; `label_mask` [N, L] drops
      ignored (e.g. uncertain) entries.

    `mask` [N] drops padded examples. A problem with a single class present has nan areas;
    `auc_undefined` counts such problems and macro averages skip them.
    """
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels)
    keep = np.ones(len(labels), bool) if mask is None else np.asarray(mask) > 0
    probs, labels = probs[keep], labels[keep]

    if labels.ndim == 2:
        if probs.shape != labels.shape:
            raise ValueError(f"multi-label probs {probs.shape} and labels {labels.shape} differ")
        entry_mask = (np.ones(labels.shape, bool) if label_mask is None
                      else np.asarray(label_mask)[keep] > 0)
        per = [_curve_areas(probs[entry_mask[:, j], j], labels[entry_mask[:, j], j] > 0.5)
               for j in range(labels.shape[1])]
    elif probs.ndim == 1 or probs.shape[1] == 2:
        areas = _curve_areas(positive_scores(probs), labels == 1)
        return {**areas, "auc_undefined": float(np.isnan(areas["roc_auc"]))}
    else:
        per = [_curve_areas(probs[:, c], labels == c) for c in range(probs.shape[1])]

    out = {}
    for key in ("roc_auc", "average_precision", "pr_auc"):
        values = [p[key] for p in per]
        out[key] = _nanmean(values)
        out.update({f"{key}/{n}": v for n, v in zip(_names(names, len(per)), values)})
    out["auc_undefined"] = float(sum(np.isnan(p["roc_auc"]) for p in per))
    return out


# --------------------------------------------------------------------------- multi-label


def multilabel_counts(probs: jax.Array, labels: jax.Array, thresholds, label_mask=None,
                      mask=None) -> dict[str, jax.Array]:
    """Per-label int32 counts {'tp','fp','tn','fn'} of shape [L]; jit-safe, add up.

    probs, labels [N, L]; thresholds scalar or [L]; `label_mask` [N, L] and `mask` [N]
    exclude ignored entries and padded examples.
    """
    predicted = jnp.asarray(probs) >= jnp.asarray(thresholds)
    actual = jnp.asarray(labels) > 0.5
    weight = jnp.ones(predicted.shape, jnp.int32)
    if label_mask is not None:
        weight = weight * (jnp.asarray(label_mask) > 0)
    if mask is not None:
        weight = weight * (jnp.asarray(mask) > 0)[:, None]

    def count(pred_value, actual_value):
        hit = (predicted == pred_value) & (actual == actual_value)
        return jnp.sum(hit * weight, axis=0, dtype=jnp.int32)

    return {"tp": count(True, True), "fp": count(True, False),
            "tn": count(False, False), "fn": count(False, True)}


def summarize_multilabel_counts(counts, names: Names = None) -> dict[str, float]:
    """Per-label and averaged rates from (accumulated) `multilabel_counts`.

    Keys: `precision/NAME`, `recall/NAME`, `f1/NAME`, `accuracy/NAME`, `specificity/NAME`,
    `positives/NAME` (true positives present), `predicted_positives/NAME`, `tp/NAME`
    (true positives found), and micro and
    macro averages `micro/precision`, `macro/recall`, ... .
    """
    tp, fp, tn, fn = (np.asarray(counts[k], np.int64) for k in ("tp", "fp", "tn", "fn"))
    names = _names(names, tp.shape[0])
    per_label = _rates(tp, fp, tn, fn)
    micro = _rates(tp.sum(), fp.sum(), tn.sum(), fn.sum())
    out = {}
    for key, values in per_label.items():
        out.update({f"{key}/{n}": float(v) for n, v in zip(names, values)})
        out[f"micro/{key}"] = float(micro[key])
        out[f"macro/{key}"] = float(values.mean())
    out.update({f"positives/{n}": float(v) for n, v in zip(names, tp + fn)})
    out.update({f"predicted_positives/{n}": float(v) for n, v in zip(names, tp + fp)})
    out.update({f"tp/{n}": float(v) for n, v in zip(names, tp)})
    return out


def multilabel_report(probs, labels, thresholds=0.5, label_mask=None,
                      names: Names = None) -> dict[str, float]:
    """Full multi-label evaluation of one split.

    `summarize_multilabel_counts` at `thresholds`, plus `samples/{precision,recall,f1}`
    (averaged over examples), `subset_accuracy` (every kept label right), `hamming_loss`,
    and the per-label and macro areas of `probability_metrics`.
    """
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels)
    kept = np.ones(labels.shape, bool) if label_mask is None else np.asarray(label_mask) > 0
    predicted = probs >= np.asarray(thresholds)
    actual = labels > 0.5
    hits = {"tp": predicted & actual & kept, "fp": predicted & ~actual & kept,
            "tn": ~predicted & ~actual & kept, "fn": ~predicted & actual & kept}
    out = summarize_multilabel_counts({k: v.sum(axis=0) for k, v in hits.items()}, names)

    tp, fp, fn = (hits[k].sum(axis=1) for k in ("tp", "fp", "fn"))
    out["samples/precision"] = float(_safe_div(tp, tp + fp).mean())
    out["samples/recall"] = float(_safe_div(tp, tp + fn).mean())
    out["samples/f1"] = float(_safe_div(2 * tp, 2 * tp + fp + fn).mean())
    wrong = (predicted != actual) & kept
    out["subset_accuracy"] = float((~wrong.any(axis=1)).mean())
    out["hamming_loss"] = float(_safe_div(wrong.sum(), kept.sum()))
    out.update(probability_metrics(probs, labels, label_mask=kept, names=names))
    return out


# --------------------------------------------------------------------------- thresholds


def binary_threshold(probs, labels, criterion: str = "youden",
                     target_recall: float = 0.9) -> float:
    """Threshold maximising Youden's J (tpr - fpr) or F1, or ('recall') the highest
    threshold whose recall reaches `target_recall`; chosen on validation data."""
    scores = positive_scores(probs)
    targets = np.asarray(labels) > 0.5
    if targets.size == 0 or targets.min() == targets.max():
        raise ValueError("cannot choose a threshold: only one class present in labels")
    if criterion == "youden":
        fpr, tpr, thresholds = skm.roc_curve(targets, scores)
        best = thresholds[np.argmax(tpr - fpr)]
        return float(min(best, 1.0))
    if criterion == "f1":
        precision, recall, thresholds = skm.precision_recall_curve(targets, scores)
        f1 = _safe_div(2 * precision * recall, precision + recall)[:-1]
        return float(thresholds[np.argmax(f1)])
    if criterion == "recall":
        _, tpr, thresholds = skm.roc_curve(targets, scores, drop_intermediate=False)
        return float(min(thresholds[tpr >= target_recall].max(), 1.0))
    raise ValueError(f"unknown threshold criterion {criterion!r}; use 'youden', 'f1' or "
                     "'recall'")


def best_thresholds(probs, labels, criterion: str = "f1", label_mask=None,
                    names: Names = None, target_recall: float = 0.9) -> np.ndarray:
    """Per-label thresholds [L] by `binary_threshold`; 0.5 (with a warning) where a label
    has a single class present."""
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels)
    kept = np.ones(labels.shape, bool) if label_mask is None else np.asarray(label_mask) > 0
    label_names = _names(names, labels.shape[1])
    thresholds, fallback = [], []
    for j, name in enumerate(label_names):
        targets = labels[kept[:, j], j] > 0.5
        if targets.size == 0 or targets.min() == targets.max():
            thresholds.append(0.5)
            fallback.append(name)
        else:
            thresholds.append(binary_threshold(probs[kept[:, j], j], targets, criterion,
                                               target_recall))
    if fallback:
        warnings.warn(f"labels {fallback} have a single class present; threshold 0.5 used",
                      stacklevel=2)
    return np.asarray(thresholds, np.float64)


# --------------------------------------------------------------------------- uncertainty


def bootstrap_intervals(metrics_fn: Callable[[np.ndarray, np.ndarray], dict[str, float]],
                        probs, labels, n_resamples: int = 1000, seed: int = 0,
                        alpha: float = 0.05) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals {key: (low, high)} of every metric `metrics_fn`
    returns, all from the same resamples.

    Examples are resampled with replacement (deterministic in `seed`). Resamples that draw a
    single class of 1-D labels are left out, and so is a metric's nan value.
    """
    probs = np.asarray(probs)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    n = len(labels)
    draws: dict[str, list[float]] = {}
    for _ in range(n_resamples):
        idx = rng.integers(0, n, n)
        sample_labels = labels[idx]
        if sample_labels.ndim == 1 and np.unique(sample_labels).size < 2:
            continue
        for key, value in metrics_fn(probs[idx], sample_labels).items():
            draws.setdefault(key, []).append(float(value))
    intervals = {}
    for key, values in draws.items():
        values = np.asarray(values)
        values = values[~np.isnan(values)]
        intervals[key] = ((float("nan"), float("nan")) if values.size == 0 else
                          tuple(float(q) for q in np.quantile(values, [alpha / 2, 1 - alpha / 2])))
    return intervals


def bootstrap_ci(metric_fn: Callable[[np.ndarray, np.ndarray], float], probs, labels,
                 n_resamples: int = 1000, seed: int = 0,
                 alpha: float = 0.05) -> tuple[float, float, float]:
    """(point, low, high): percentile bootstrap interval of `metric_fn(probs, labels)`
    (see `bootstrap_intervals`)."""
    point = float(metric_fn(np.asarray(probs), np.asarray(labels)))
    low, high = bootstrap_intervals(lambda p, y: {"value": metric_fn(p, y)}, probs, labels,
                                    n_resamples, seed, alpha).get("value", (float("nan"),) * 2)
    return point, low, high


# --------------------------------------------------------------------------- segmentation


def dice(pred_masks: jax.Array, target_masks: jax.Array, eps: float = 1e-6) -> jax.Array:
    """Per-example Dice [B] over all non-batch axes; jit-safe.

    Hard Dice for binary masks (threshold predictions first), soft Dice for probabilities.
    Both masks empty gives 1.0.
    """
    pred = jnp.asarray(pred_masks, jnp.float32).reshape(pred_masks.shape[0], -1)
    target = jnp.asarray(target_masks, jnp.float32).reshape(target_masks.shape[0], -1)
    overlap = jnp.sum(pred * target, axis=1)
    return (2.0 * overlap + eps) / (pred.sum(axis=1) + target.sum(axis=1) + eps)
