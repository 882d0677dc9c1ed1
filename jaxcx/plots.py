"""Figures of runs and studies, written as PNG files.

Figures are drawn on `matplotlib.figure.Figure` with the Agg canvas, so nothing here touches
pyplot's global state or the user's backend. Every function returns the path it wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math
import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np
from sklearn import metrics as skm

from jaxcx.metrics import positive_scores

PathLike = str | os.PathLike


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib figure outside pyplot's global state (no backend change, no leaks)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: PathLike, title: str) -> Path:
    """Titles the figure and writes it as PNG, creating the folder."""
    fig.suptitle(title)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


def _series(history: Sequence[Mapping], key: str, x_key: str) -> tuple[list, list]:
    points = [(row[x_key], row[key]) for row in history
              if key in row and x_key in row and math.isfinite(row[key])]
    return [p[0] for p in points], [p[1] for p in points]


def training_curves(history: Sequence[Mapping], path: PathLike, title: str,
                    metrics: Sequence[str] = ("loss", "accuracy"),
                    splits: Sequence[str] = ("train", "val"),
                    x_key: str | None = None) -> Path:
    """One panel per metric (`train/loss` vs `val/loss`, ...) from metrics.jsonl rows.

    `x_key` defaults to 'epoch' when every row with a plotted metric has it, else 'step'.
    Metrics absent from the history are skipped.
    """
    keys = [f"{s}/{m}" for m in metrics for s in splits]
    rows = [row for row in history if any(k in row for k in keys)]
    present = [m for m in metrics if any(f"{s}/{m}" in row for row in rows for s in splits)]
    if not present:
        raise ValueError(f"history has none of the keys {keys}")
    if x_key is None:
        x_key = "epoch" if all("epoch" in row for row in rows) else "step"
    fig = new_figure(5 * len(present), 4)
    for ax, metric in zip(fig.subplots(1, len(present), squeeze=False)[0], present):
        for split, style in zip(splits, ("o-", "s-", "^-", "d-")):
            xs, ys = _series(rows, f"{split}/{metric}", x_key)
            if xs:
                ax.plot(xs, ys, style, markersize=3, label=split)
        ax.set(xlabel=x_key, ylabel=metric, title=metric)
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path, title)


def per_class_accuracy(source: Mapping | Sequence[Mapping], path: PathLike, title: str,
                       split: str | None = "val", x_key: str = "epoch") -> Path:
    """Per-class accuracy: bars from one summary dict, or lines over `x_key` from a history.

    Reads keys `{split}/class_accuracy/NAME` (`class_accuracy/NAME` when `split` is None,
    as `summarize_confusion` returns them).
    """
    prefix = "class_accuracy/" if split is None else f"{split}/class_accuracy/"
    rows = [source] if isinstance(source, Mapping) else list(source)
    names = list(dict.fromkeys(k[len(prefix):] for row in rows for k in row
                               if k.startswith(prefix)))
    if not names:
        raise ValueError(f"no keys starting with {prefix!r}; pass the split the keys use "
                         "(split=None for an unprefixed summarize_confusion dict)")
    fig = new_figure(max(6, 0.6 * len(names) + 3), 4)
    ax = fig.subplots()
    if isinstance(source, Mapping):
        values = [source[prefix + n] for n in names]
        bars = ax.bar(names, values)
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
        ax.set(xlabel="class", ylim=(0, 1.05))
        ax.tick_params(axis="x", labelrotation=45 if len(names) > 6 else 0)
    else:
        for name in names:
            ax.plot(*_series(rows, prefix + name, x_key), "o-", markersize=3, label=name)
        ax.set(xlabel=x_key)
        ax.legend(fontsize=8, ncols=2 if len(names) > 8 else 1)
    ax.set(ylabel="accuracy (recall)", title=f"{split or ''} per-class accuracy".strip())
    ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, path, title)


def confusion_matrix(cm, class_names: Sequence[str] | None, path: PathLike, title: str,
                     normalize: bool = False) -> Path:
    """Heat map of a confusion matrix (rows true, columns predicted) with counts annotated;
    `normalize` colours and annotates by row fraction, keeping counts in brackets."""
    cm = np.asarray(cm)
    num_classes = cm.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    row_sums = cm.sum(axis=1, keepdims=True)
    fractions = np.divide(cm, row_sums, out=np.zeros(cm.shape), where=row_sums > 0)
    shown = fractions if normalize else cm
    size = max(4.0, 0.6 * num_classes + 2)
    fig = new_figure(size + 1, size)
    ax = fig.subplots()
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, fraction=0.046)
    bright = shown.max() / 2 if shown.max() > 0 else 1
    for i in range(num_classes):
        for j in range(num_classes):
            text = f"{fractions[i, j]:.2f}\n({cm[i, j]})" if normalize else f"{cm[i, j]}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="white" if shown[i, j] > bright else "black")
    ax.set_xticks(range(num_classes), names, rotation=45 if num_classes > 4 else 0)
    ax.set_yticks(range(num_classes), names)
    ax.set(xlabel="predicted", ylabel="true",
           title="confusion matrix" + (" (row-normalised)" if normalize else ""))
    return save_figure(fig, path, title)


def roc_pr_curves(curves: Mapping[str, tuple], path: PathLike, title: str) -> Path:
    """ROC and precision-recall curves side by side, one line per model (or label).

    `curves` maps a name to (probs, labels) of a binary problem; probs [N] or [N, 2].
    The legend shows ROC AUC and average precision.
    """
    fig = new_figure(11, 4.8)
    roc_ax, pr_ax = fig.subplots(1, 2)
    for name, (probs, labels) in curves.items():
        scores = positive_scores(probs)
        targets = np.asarray(labels) > 0.5
        if targets.min() == targets.max():
            raise ValueError(f"curve {name!r}: only one class present in labels")
        fpr, tpr, _ = skm.roc_curve(targets, scores)
        roc_ax.plot(fpr, tpr, label=f"{name} (AUC {skm.roc_auc_score(targets, scores):.3f})")
        precision, recall, _ = skm.precision_recall_curve(targets, scores)
        ap = skm.average_precision_score(targets, scores)
        pr_ax.step(recall, precision, where="post", label=f"{name} (AP {ap:.3f})")
    roc_ax.plot([0, 1], [0, 1], "k--", linewidth=0.8, label="chance")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC",
               xlim=(0, 1), ylim=(0, 1.02))
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall",
              xlim=(0, 1), ylim=(0, 1.02))
    for ax in (roc_ax, pr_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right" if ax is roc_ax else "lower left")
    return save_figure(fig, path, title)


def curve_grid(curves: Mapping[str, tuple], path: PathLike, title: str, kind: str = "roc",
               columns: int = 4) -> Path:
    """One panel per label (`columns` per row): its ROC (`kind='roc'`, with AUC) or
    precision-recall curve (`'pr'`, with average precision and the prevalence line).

    `curves` maps a label to (probs [N], labels [N]) with both classes present.
    """
    if kind not in ("roc", "pr"):
        raise ValueError(f"kind must be 'roc' or 'pr', got {kind!r}")
    if not curves:
        raise ValueError("no curves to draw")
    rows = -(-len(curves) // columns)
    fig = new_figure(3.2 * columns, 3.0 * rows)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (name, (probs, labels)) in zip(axes, curves.items()):
        scores, targets = np.asarray(probs, np.float64), np.asarray(labels) > 0.5
        if targets.min() == targets.max():
            raise ValueError(f"curve {name!r}: only one class present in labels")
        if kind == "roc":
            fpr, tpr, _ = skm.roc_curve(targets, scores)
            ax.plot(fpr, tpr)
            ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
            ax.set(xlabel="false positive rate", ylabel="true positive rate")
            score = f"AUC {skm.roc_auc_score(targets, scores):.3f}"
        else:
            precision, recall, _ = skm.precision_recall_curve(targets, scores)
            ax.step(recall, precision, where="post")
            ax.axhline(targets.mean(), color="k", linestyle="--", linewidth=0.8)
            ax.set(xlabel="recall", ylabel="precision")
            score = f"AP {skm.average_precision_score(targets, scores):.3f}"
        ax.set(title=f"{name}\n{score}, {int(targets.sum())} pos.", xlim=(0, 1), ylim=(0, 1.02))
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
    for ax in axes[len(curves):]:
        ax.set_visible(False)
    return save_figure(fig, path, title)


def epoch_progression(history: Sequence[Mapping], metric: str, labels: Sequence[str],
                      path: PathLike, title: str, split: str = "val",
                      columns: int = 4) -> Path | None:
    """One panel per label: `split/metric/LABEL` after every epoch (the CheXpert notebook's
    epoch progression). None when the history has no such values."""
    present = [name for name in labels
               if _series(history, f"{split}/{metric}/{name}", "epoch")[0]]
    if not present:
        return None
    rows = -(-len(present) // columns)
    fig = new_figure(3.0 * columns, 2.4 * rows)
    axes = fig.subplots(rows, columns, squeeze=False, sharex=True).ravel()
    for ax, name in zip(axes, present):
        xs, ys = _series(history, f"{split}/{metric}/{name}", "epoch")
        ax.plot(xs, ys, "o-", markersize=3)
        ax.set(title=name, ylim=(-0.02, 1.02), xlabel="epoch", ylabel=metric)
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
    for ax in axes[len(present):]:
        ax.set_visible(False)
    return save_figure(fig, path, title)


def _displayable(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.dtype != np.uint8:
        low, high = float(image.min()), float(image.max())
        image = (image - low) / (high - low) if high > low else np.zeros_like(image)
    return image


def image_grid(images, titles: Sequence[str] | None, path: PathLike, title: str,
               ncols: int = 5, cmap: str = "gray") -> Path:
    """Grid of images [N, H, W] or [N, H, W, C] (C 1 or 3) with optional per-image titles,
    e.g. sample batches or the most wrongly classified examples."""
    images = list(images)
    if not images:
        raise ValueError("image_grid needs at least one image")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    ncols = min(ncols, len(images))
    nrows = math.ceil(len(images) / ncols)
    fig = new_figure(2 * ncols, 2 * nrows + 0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for k, ax in enumerate(axes):
        ax.axis("off")
        if k < len(images):
            ax.imshow(_displayable(images[k]), cmap=cmap)
            if titles is not None:
                ax.set_title(titles[k], fontsize=8)
    return save_figure(fig, path, title)


def scatter_jittered_labels(probs, labels, path: PathLike, title: str,
                            class_names: Sequence[str] = ("0", "1"), threshold: float = 0.5,
                            jitter: float = 0.25, seed: int = 0) -> Path:
    """Predicted positive probability against the true label jittered horizontally
    (uniform ±`jitter`, deterministic in `seed`), with the decision threshold drawn."""
    scores = positive_scores(probs)
    labels = np.asarray(labels, np.float64)
    rng = np.random.default_rng(seed)
    jittered = labels + rng.uniform(-jitter, jitter, labels.shape)
    fig = new_figure(7, 5)
    ax = fig.subplots()
    ax.scatter(jittered, scores, s=6, alpha=0.4, c=labels, cmap="coolwarm")
    ax.axhline(threshold, color="k", linestyle="--", linewidth=0.8,
               label=f"threshold {threshold:g}")
    ax.set_xticks(range(len(class_names)), class_names)
    ax.set(xlabel="true label (jittered)", ylabel="predicted probability of class 1",
           ylim=(-0.02, 1.02), title="predictions by true label")
    ax.legend(loc="center")
    return save_figure(fig, path, title)


def history_curves(history: Mapping[str, Sequence[float]], path: PathLike, title: str) -> Path:
    """The COVID notebook's history plots from a Keras-style history (`accuracy`,
    `val_accuracy`, `loss`, `val_loss` per epoch): training as red dots, validation as a
    blue line, accuracy left and loss right."""
    fig = new_figure(10, 4)
    for ax, metric in zip(fig.subplots(1, 2), ("accuracy", "loss")):
        epochs = range(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], "ro", markersize=3, label=f"Training {metric}")
        ax.plot(epochs, history[f"val_{metric}"], "b", label=f"Validation {metric}")
        ax.set(xlabel="epoch", ylabel=metric, title=f"Training and validation {metric}")
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path, title)
