"""Class weights, oversampling and weighted sampling."""

import numpy as np
import pytest

from jaxcx.data import pipeline, sampling


def test_class_weights_are_pneumonia_normalised_inverse_frequency():
    weights = sampling.class_weights([1341, 3875])
    inverse = np.array([1 / 1341, 1 / 3875])
    np.testing.assert_allclose(weights, inverse / inverse.sum(), rtol=1e-6)
    assert weights.sum() == pytest.approx(1.0) and weights[0] > weights[1]
    np.testing.assert_array_equal(sampling.class_counts([0, 2, 2], num_classes=4), [1, 0, 2, 0])
    with pytest.raises(ValueError, match="every class"):
        sampling.class_weights([3, 0])


def test_positive_weights():
    labels = np.array([[1, 0], [0, 0], [0, 0], [1, 0]], np.float32)
    np.testing.assert_allclose(sampling.positive_weights(labels), [1.0, 1.0])
    np.testing.assert_allclose(sampling.positive_weights(labels[1:]), [2.0, 1.0])


def test_oversampling_tops_up_rare_classes():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 1)
    indices = sampling.oversample_indices(labels, min_count=5, seed=0)
    np.testing.assert_array_equal(indices[:14], np.arange(14))
    np.testing.assert_array_equal(np.bincount(labels[indices]), [10, 5, 5])
    np.testing.assert_array_equal(indices, sampling.oversample_indices(labels, 5, seed=0))


def test_oversampling_groups_multilabel_vectors():
    labels = np.array([[0, 0]] * 6 + [[1, 0]] * 2 + [[1, 1]] * 1 + [[0, 1]] * 4, np.float32)
    indices = sampling.oversample_indices(labels, min_count=4, seed=1)
    vectors, counts = np.unique(labels[indices], axis=0, return_counts=True)
    assert dict(zip(map(tuple, vectors.astype(int)), counts)) == {
        (0, 0): 6, (0, 1): 4, (1, 0): 4, (1, 1): 4}


def test_weighted_sampling_is_deterministic_and_balances():
    labels = np.array([0] * 90 + [1] * 10)
    weights = sampling.balanced_example_weights(labels)
    drawn = sampling.weighted_sample_indices(weights, 4000, seed=0)
    np.testing.assert_array_equal(drawn, sampling.weighted_sample_indices(weights, 4000, seed=0))
    assert abs(labels[drawn].mean() - 0.5) < 0.05
    with pytest.raises(ValueError, match="non-negative"):
        sampling.weighted_sample_indices([-1.0, 2.0], 3, seed=0)


class LabelledSource:
    def __init__(self, labels):
        self.labels = np.asarray(labels)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return {"image": np.full((1,), index, np.float32), "label": int(self.labels[index])}


def test_indexed_source_composes_with_train_loader():
    source = LabelledSource([0] * 6 + [1] * 2)
    indices = sampling.oversample_indices(sampling.source_labels(source), min_count=6, seed=0)
    resampled = sampling.IndexedSource(source, indices)
    assert len(resampled) == 12 and np.bincount(resampled.labels).tolist() == [6, 6]
    iterator = iter(pipeline.train_loader(resampled, batch_size=4, seed=0))
    epoch = np.concatenate([next(iterator)["label"] for _ in range(3)])
    assert np.bincount(epoch).tolist() == [6, 6]
    with pytest.raises(ValueError, match="indices"):
        sampling.IndexedSource(source, [8])
