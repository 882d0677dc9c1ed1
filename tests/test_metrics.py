"""Tests for jaxcx.metrics: cross-checked against numpy and scikit-learn."""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

from jaxcx import metrics


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _binary_data(rng, n=200):
    labels = rng.integers(0, 2, n)
    probs = np.clip(0.35 * labels + rng.uniform(0, 0.65, n), 0, 1)
    return probs, labels


def test_confusion_matrix_under_jit_with_mask_matches_numpy(rng):
    num_classes = 4
    preds = rng.integers(0, num_classes, 64)
    labels = rng.integers(0, num_classes, 64)
    mask = (rng.uniform(size=64) > 0.3).astype(np.float32)
    fn = jax.jit(functools.partial(metrics.confusion_matrix, num_classes=num_classes))
    halves = [fn(preds[s], labels[s], mask[s]) for s in (slice(0, 32), slice(32, 64))]
    cm = np.asarray(halves[0] + halves[1])
    expected = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(expected, (labels[mask > 0], preds[mask > 0]), 1)
    assert halves[0].dtype == jnp.int32
    np.testing.assert_array_equal(cm, expected)


def test_summarize_binary_hand_computed():
    # rows true, cols predicted: tn=50 fp=10 / fn=5 tp=35
    out = metrics.summarize_confusion(np.array([[50, 10], [5, 35]]), ["NORMAL", "PNEUMONIA"])
    assert out["accuracy"] == pytest.approx(85 / 100)
    assert out["precision"] == pytest.approx(35 / 45)
    assert out["recall"] == pytest.approx(35 / 40)
    assert out["specificity"] == pytest.approx(50 / 60)
    assert out["f1"] == pytest.approx(2 * 35 / (2 * 35 + 10 + 5))
    assert out["class_accuracy/NORMAL"] == pytest.approx(50 / 60)
    assert out["class_accuracy/PNEUMONIA"] == pytest.approx(35 / 40)
    assert (out["tp"], out["fp"], out["tn"], out["fn"]) == (35, 10, 50, 5)


def test_summarize_covid_all_positive_predictions():
    # the COVID notebook: tp 1903 fp 1712 tn 0 fn 0 -> accuracy = precision 0.5264, recall 1.
    out = metrics.summarize_confusion(np.array([[0, 1712], [0, 1903]]))
    assert out["accuracy"] == pytest.approx(0.5264177)
    assert out["precision"] == pytest.approx(0.5264177)
    assert out["recall"] == 1.0
    assert out["specificity"] == 0.0


def test_summarize_zero_division_gives_zero_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = metrics.summarize_confusion(np.array([[10, 0], [0, 0]]))
        empty = metrics.summarize_confusion(np.zeros((3, 3), int))
    assert out["precision"] == 0.0 and out["recall"] == 0.0 and out["f1"] == 0.0
    assert out["accuracy"] == 1.0 and out["specificity"] == 1.0
    assert all(v == 0.0 for v in empty.values())


def test_summarize_multiclass_macro_matches_sklearn(rng):
    labels = rng.integers(0, 3, 300)
    preds = np.where(rng.uniform(size=300) < 0.6, labels, rng.integers(0, 3, 300))
    cm = skm.confusion_matrix(labels, preds)
    out = metrics.summarize_confusion(cm, ["a", "b", "c"])
    for key, fn in (("precision", skm.precision_score), ("recall", skm.recall_score),
                    ("f1", skm.f1_score)):
        assert out[key] == pytest.approx(fn(labels, preds, average="macro"))
        per_class = fn(labels, preds, average=None)
        assert [out[f"{key}/{n}"] for n in "abc"] == pytest.approx(per_class)
    assert out["class_accuracy/b"] == pytest.approx(out["recall/b"])
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(labels, preds))


def test_probability_metrics_binary_matches_sklearn(rng):
    probs, labels = _binary_data(rng)
    out = metrics.probability_metrics(probs, labels)
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(labels, probs))
    assert out["average_precision"] == pytest.approx(skm.average_precision_score(labels, probs))
    precision, recall, _ = skm.precision_recall_curve(labels, probs)
    assert out["pr_auc"] == pytest.approx(skm.auc(recall, precision))
    two_column = metrics.probability_metrics(np.stack([1 - probs, probs], 1), labels)
    assert two_column["roc_auc"] == pytest.approx(out["roc_auc"])
    mask = np.r_[np.ones(150), np.zeros(50)]
    masked = metrics.probability_metrics(probs, labels, mask=mask)
    assert masked["roc_auc"] == pytest.approx(skm.roc_auc_score(labels[:150], probs[:150]))


def test_probability_metrics_multiclass_ovr_matches_sklearn(rng):
    labels = rng.integers(0, 3, 150)
    logits = rng.normal(size=(150, 3)) + 1.5 * np.eye(3)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    out = metrics.probability_metrics(probs, labels)
    assert out["roc_auc"] == pytest.approx(
        skm.roc_auc_score(labels, probs, multi_class="ovr", average="macro"))
    assert out["roc_auc/1"] == pytest.approx(skm.roc_auc_score(labels == 1, probs[:, 1]))


def test_probability_metrics_single_class_is_nan_not_crash():
    out = metrics.probability_metrics(np.array([0.2, 0.7, 0.9]), np.array([1, 1, 1]))
    assert np.isnan(out["roc_auc"]) and np.isnan(out["pr_auc"])
    assert out["auc_undefined"] == 1.0


def test_multilabel_with_label_mask(rng):
    n, num_labels = 120, 3
    labels = rng.integers(0, 2, (n, num_labels)).astype(np.float32)
    probs = np.clip(0.3 * labels + rng.uniform(0, 0.7, (n, num_labels)), 0, 1)
    label_mask = (rng.uniform(size=(n, num_labels)) > 0.2).astype(np.float32)
    label_mask[:, 2] = labels[:, 2] == 0  # label 2: only negatives kept -> undefined AUC
    names = ["Atelectasis", "Edema", "Effusion"]

    out = metrics.probability_metrics(probs, labels, label_mask=label_mask, names=names)
    kept = label_mask[:, 0] > 0
    assert out["roc_auc/Atelectasis"] == pytest.approx(
        skm.roc_auc_score(labels[kept, 0], probs[kept, 0]))
    assert np.isnan(out["roc_auc/Effusion"]) and out["auc_undefined"] == 1.0
    assert out["roc_auc"] == pytest.approx(
        np.mean([out["roc_auc/Atelectasis"], out["roc_auc/Edema"]]))

    thresholds = np.array([0.4, 0.5, 0.6], np.float32)
    counts = jax.jit(metrics.multilabel_counts)(probs, labels, thresholds, label_mask)
    predicted = probs >= thresholds
    for j in range(num_labels):
        keep = label_mask[:, j] > 0
        tn, fp, fn, tp = skm.confusion_matrix(labels[keep, j], predicted[keep, j],
                                              labels=[0, 1]).ravel()
        assert [int(counts[k][j]) for k in ("tp", "fp", "tn", "fn")] == [tp, fp, tn, fn]

    report = metrics.multilabel_report(probs, labels, thresholds, label_mask, names)
    keep = label_mask[:, 1] > 0
    assert report["recall/Edema"] == pytest.approx(
        skm.recall_score(labels[keep, 1], predicted[keep, 1]))
    assert report["roc_auc/Edema"] == out["roc_auc/Edema"]


def test_multilabel_report_without_mask_matches_sklearn(rng):
    labels = rng.integers(0, 2, (80, 4))
    probs = np.clip(0.3 * labels + rng.uniform(0, 0.7, (80, 4)), 0, 1)
    predicted = probs >= 0.5
    report = metrics.multilabel_report(probs, labels)
    for avg in ("micro", "macro", "samples"):
        assert report[f"{avg}/precision"] == pytest.approx(
            skm.precision_score(labels, predicted, average=avg, zero_division=0))
        assert report[f"{avg}/f1"] == pytest.approx(
            skm.f1_score(labels, predicted, average=avg, zero_division=0))
    assert report["subset_accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    assert report["hamming_loss"] == pytest.approx(skm.hamming_loss(labels, predicted))
    assert report["positives/0"] == labels[:, 0].sum()


def test_thresholds(rng):
    probs, labels = _binary_data(rng)
    fpr, tpr, thr = skm.roc_curve(labels, probs)
    assert metrics.binary_threshold(probs, labels, "youden") == thr[np.argmax(tpr - fpr)]
    best_f1 = metrics.binary_threshold(probs, labels, "f1")
    candidates = np.unique(probs)
    f1s = [skm.f1_score(labels, probs >= t) for t in candidates]
    assert skm.f1_score(labels, probs >= best_f1) == pytest.approx(max(f1s))
    with pytest.raises(ValueError, match="only one class"):
        metrics.binary_threshold(probs, np.ones_like(labels))
    with pytest.raises(ValueError, match="criterion"):
        metrics.binary_threshold(probs, labels, "accuracy")

    multi_labels = np.stack([labels, np.zeros_like(labels)], 1)
    multi_probs = np.stack([probs, probs], 1)
    with pytest.warns(UserWarning, match="single class"):
        per_label = metrics.best_thresholds(multi_probs, multi_labels, "f1")
    np.testing.assert_allclose(per_label, [best_f1, 0.5])


def test_bootstrap_ci_deterministic_and_contains_point(rng):
    probs, labels = _binary_data(rng, 100)
    auc = lambda p, y: metrics.probability_metrics(p, y)["roc_auc"]  # noqa: E731
    first = metrics.bootstrap_ci(auc, probs, labels, n_resamples=200, seed=3)
    second = metrics.bootstrap_ci(auc, probs, labels, n_resamples=200, seed=3)
    assert first == second
    point, low, high = first
    assert point == pytest.approx(skm.roc_auc_score(labels, probs))
    assert low < point < high
    assert metrics.bootstrap_ci(auc, probs, labels, n_resamples=200, seed=4) != first


@pytest.mark.parametrize("alpha, z", [(0.05, 1.959964), (0.2, 1.281552)])
def test_bootstrap_ci_of_a_mean_matches_the_normal_interval(alpha, z):
    """Percentile bootstrap of a sample mean: mean +- z * sd / sqrt(n) (sd with ddof=0,
    as the bootstrap resamples the empirical distribution)."""
    n = 400
    sample = np.random.default_rng(7).normal(2.0, 1.5, n)
    labels = np.arange(n) % 2  # two classes present: no resample is left out
    mean = lambda p, y: float(np.mean(p))  # noqa: E731
    point, low, high = metrics.bootstrap_ci(mean, sample, labels, n_resamples=2000, seed=0,
                                            alpha=alpha)
    se = sample.std() / np.sqrt(n)
    assert point == pytest.approx(sample.mean())
    assert (high - low) / 2 == pytest.approx(z * se, rel=0.07)
    assert (low + high) / 2 == pytest.approx(sample.mean(), abs=0.15 * se)


def test_dice_jit():
    pred = np.zeros((3, 4, 4, 1), np.float32)
    target = np.zeros((3, 4, 4, 1), np.float32)
    pred[0, :2] = 1
    target[0, 1:3] = 1  # overlap 4 of 8 + 8 -> 0.5
    pred[1], target[1] = 1, 1  # perfect
    # example 2: both empty -> 1
    out = jax.jit(metrics.dice)(pred, target)
    np.testing.assert_allclose(out, [0.5, 1.0, 1.0], rtol=1e-5)
