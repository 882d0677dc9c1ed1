"""The Fashion-MNIST notebook's class-split protocol for (Fashion-)MNIST.

Two disjoint 5-class tasks ({0,1,4,5,8} "FMNIST1" and {2,3,6,7,9} "FMNIST2"), labels
renumbered 0..4 in ascending order, 25000/5000 train/val drawn from the training pool
and the test pool's examples of those classes as test (5000 for Fashion-MNIST), plus
nested training fractions (5%, 10%, ..., 100%) for the transfer-learning study.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jaxcx.data.errors import DataError

FMNIST1_CLASSES = (0, 1, 4, 5, 8)
FMNIST2_CLASSES = (2, 3, 6, 7, 9)
FASHION_MNIST_NAMES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
FASHION_SPLIT_FRACTIONS = tuple(percent / 100 for percent in range(5, 101, 5))


def relabel(labels: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Maps original labels to their position in `classes` (e.g. 4 -> 2 for FMNIST1)."""
    lookup = np.full(max(max(classes), int(labels.max(initial=0))) + 1, -1, np.int32)
    lookup[list(classes)] = np.arange(len(classes), dtype=np.int32)
    mapped = lookup[labels]
    if (mapped < 0).any():
        raise DataError(f"labels outside classes {tuple(classes)}: {np.unique(labels[mapped < 0])}")
    return mapped


def _per_class_counts(total: int, num_classes: int) -> list[int]:
    base, extra = divmod(total, num_classes)
    return [base + (c < extra) for c in range(num_classes)]


def _class_members(labels: np.ndarray, classes: Sequence[int], rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.permutation(np.flatnonzero(labels == c)) for c in classes]


def make_class_split(
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    classes: Sequence[int] = FMNIST1_CLASSES,
    *,
    train_size: int = 25000,
    val_size: int = 5000,
    test_size: int | None = None,
    balanced: bool = True,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Indices {'train', 'val'} into the training pool and {'test'} into the test pool.

    `balanced=True` draws equal counts per class (remainders to the lowest classes) and
    fails with `DataError` when a class is too small; `balanced=False` is the notebook's
    `random_split` of the pooled examples. `test_size=None` keeps every test example of
    `classes`. Indices are sorted; equal arguments give equal splits.
    """
    rng = np.random.default_rng(seed)
    if balanced:
        train_counts = _per_class_counts(train_size, len(classes))
        val_counts = _per_class_counts(val_size, len(classes))
        members = _class_members(train_labels, classes, rng)
        for c, idx, n_train, n_val in zip(classes, members, train_counts, val_counts):
            if n_train + n_val > len(idx):
                raise DataError(
                    f"class {c} has {len(idx)} training examples, {n_train + n_val} needed "
                    f"for a balanced {train_size}/{val_size} split; lower the sizes or pass balanced=False"
                )
        train = np.concatenate([idx[:n] for idx, n in zip(members, train_counts)])
        val = np.concatenate([idx[n : n + m] for idx, n, m in zip(members, train_counts, val_counts)])
    else:
        pool = rng.permutation(np.flatnonzero(np.isin(train_labels, classes)))
        if train_size + val_size > len(pool):
            raise DataError(f"{len(pool)} training examples of {tuple(classes)}, {train_size + val_size} requested")
        train, val = pool[:train_size], pool[train_size : train_size + val_size]
    test = np.flatnonzero(np.isin(test_labels, classes))
    if test_size is not None:
        if balanced:
            members = _class_members(test_labels, classes, rng)
            counts = _per_class_counts(test_size, len(classes))
            short = [(c, len(idx)) for c, idx, n in zip(classes, members, counts) if n > len(idx)]
            if short:
                raise DataError(f"test classes too small for {test_size} balanced examples: {short}")
            test = np.concatenate([idx[:n] for idx, n in zip(members, counts)])
        else:
            test = rng.permutation(test)[:test_size]
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def nested_fractions(
    indices: np.ndarray,
    labels: np.ndarray,
    fractions: Sequence[float] = FASHION_SPLIT_FRACTIONS,
    *,
    balanced: bool = True,
    seed: int = 0,
) -> dict[float, np.ndarray]:
    """Subsets of `indices` per fraction, each contained in every larger one.

    `labels` are the labels of `indices` (same length). One fixed order (per class when
    `balanced`) is drawn; a fraction takes its first `round(f * n)` entries, so the
    subsets are nested and, when balanced, keep the class proportions.
    """
    indices, labels = np.asarray(indices), np.asarray(labels)
    if len(indices) != len(labels):
        raise ValueError(f"{len(indices)} indices but {len(labels)} labels")
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad:
        raise ValueError(f"fractions must be in (0, 1], got {bad}")
    rng = np.random.default_rng(seed)
    if balanced:
        groups = [rng.permutation(indices[labels == c]) for c in np.unique(labels)]
    else:
        groups = [rng.permutation(indices)]
    return {
        f: np.sort(np.concatenate([group[: round(f * len(group))] for group in groups]))
        for f in sorted(fractions)
    }


class SubsetSource:
    """Records of `source` at `indices`, labels renumbered by position in `classes`."""

    def __init__(self, source, indices: np.ndarray, classes: Sequence[int] | None = None):
        self.source = source
        self.indices = np.asarray(indices, dtype=np.int64)
        self.classes = None if classes is None else tuple(classes)
        self._new_label = None if classes is None else {c: i for i, c in enumerate(classes)}

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        record = dict(self.source[int(self.indices[index])])
        if self._new_label is not None:
            record["label"] = self._new_label[record["label"]]
        return record
