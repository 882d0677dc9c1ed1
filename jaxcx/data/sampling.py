"""Class weights, oversampling and weighted sampling as index lists over a source.

Resampling returns index arrays; wrap them with `IndexedSource(source, indices)` and pass
that to `train_loader`, which then shuffles the resampled list afresh each epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def source_labels(source) -> np.ndarray:
    """Labels of a source without decoding images when it has a `labels` attribute:
    [N] int (class index) or [N, L] float (label vectors)."""
    labels = getattr(source, "labels", None)
    if labels is None:
        labels = [source[i]["label"] for i in range(len(source))]
    return np.asarray(labels)


def class_counts(labels: Sequence[int] | np.ndarray, num_classes: int | None = None
                 ) -> np.ndarray:
    """Examples per class index."""
    labels = np.asarray(labels)
    return np.bincount(labels, minlength=num_classes or 0)


def class_weights(counts: Sequence[int] | np.ndarray) -> np.ndarray:
    """The pneumonia notebook's normalised inverse frequency:
    w_c = (1 / n_c) / sum_k (1 / n_k).

    `counts` are the training examples per class (e.g. `class_counts(labels)`); the
    weights sum to 1. A class without examples is an error (its weight is undefined).
    """
    counts = np.asarray(counts, np.float64)
    if np.any(counts <= 0):
        raise ValueError(f"class_weights needs every class present, got counts {counts.tolist()}")
    inverse = 1.0 / counts
    return (inverse / inverse.sum()).astype(np.float32)


def positive_weights(label_vectors: np.ndarray) -> np.ndarray:
    """Per-label negatives / positives of [N, L] 0/1 labels (BCE `pos_weight`); labels
    with no positive get weight 1."""
    labels = np.asarray(label_vectors, np.float64)
    positives = labels.sum(axis=0)
    negatives = labels.shape[0] - positives
    return np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0).astype(np.float32)


def _group_ids(labels: np.ndarray) -> np.ndarray:
    """Group index per example: the class (1-D labels) or the unique label vector (2-D)."""
    keys = labels.reshape(len(labels), -1)
    return np.unique(keys, axis=0, return_inverse=True)[1].reshape(-1)


def oversample_indices(labels: Sequence | np.ndarray, min_count: int, seed: int) -> np.ndarray:
    """The CheXpert notebook's oversampling: every label group (class, or for [N, L]
    labels each distinct label vector) with fewer than `min_count` examples is topped up
    to `min_count` by drawing its members with replacement.

    Returns all original indices, in order, followed by the drawn duplicates.
    """
    labels = np.asarray(labels)
    groups = _group_ids(labels)
    rng = np.random.default_rng(seed)
    extra = []
    for group in range(groups.max(initial=-1) + 1):
        members = np.flatnonzero(groups == group)
        if 0 < len(members) < min_count:
            extra.append(rng.choice(members, size=min_count - len(members), replace=True))
    return np.concatenate([np.arange(len(labels)), *extra]).astype(np.int64)


def weighted_sample_indices(weights: Sequence[float] | np.ndarray, num_samples: int,
                            seed: int) -> np.ndarray:
    """`num_samples` indices drawn with replacement with probability proportional to
    `weights` (PyTorch's WeightedRandomSampler), deterministic in `seed`."""
    weights = np.asarray(weights, np.float64)
    if weights.ndim != 1 or np.any(weights < 0) or not weights.sum() > 0:
        raise ValueError("weights must be a 1-D array of non-negative numbers with a positive sum")
    rng = np.random.default_rng(seed)
    return rng.choice(len(weights), size=num_samples, replace=True, p=weights / weights.sum())


def balanced_example_weights(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """Per-example weight = its class weight, so weighted sampling balances the classes."""
    labels = np.asarray(labels)
    return class_weights(class_counts(labels))[labels]


class IndexedSource:
    """A source viewed through an index list (resampled, subset or reordered)."""

    def __init__(self, source, indices: Sequence[int] | np.ndarray):
        self.source = source
        self.indices = np.asarray(indices, np.int64)
        if len(self.indices) and not 0 <= self.indices.min() <= self.indices.max() < len(source):
            raise ValueError(f"indices must lie in [0, {len(source)})")
        labels = getattr(source, "labels", None)
        self.labels = None if labels is None else np.asarray(labels)[self.indices]
        paths = getattr(source, "paths", None)
        self.paths = None if paths is None else [paths[i] for i in self.indices]
        self.class_names = getattr(source, "class_names", None)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        return self.source[int(self.indices[index])]
