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


def test_summarize_confusion_rejects_a_non_square_matrix():
    for bad in (np.zeros((2, 3), int), np.zeros(4, int)):
        shape = bad.shape
        with pytest.raises(ValueError) as info:
            metrics.summarize_confusion(bad)
        assert str(info.value) == f"confusion matrix must be square [C, C], got shape {shape}"


def test_all_undefined_areas_are_nan_without_warnings():
    labels = np.array([[1, 0], [1, 0], [1, 0]])
    probs = np.array([[0.2, 0.3], [0.7, 0.1], [0.9, 0.8]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = metrics.probability_metrics(probs, labels)
        fast = metrics.macro_roc_auc(probs, labels)
    assert np.isnan(out["roc_auc"]) and np.isnan(out["pr_auc"]) and out["auc_undefined"] == 2.0
    assert np.isnan(fast)


def test_macro_roc_auc_keeps_a_single_positive_and_skips_an_all_positive_label():
    labels = np.array([[1, 1, 1], [0, 1, 0], [0, 1, 1], [0, 1, 0]])
    probs = np.array([[0.9, 0.5, 0.6], [0.2, 0.4, 0.7], [0.5, 0.3, 0.1], [0.4, 0.2, 0.3]])
    # label 0: its one positive (0.9) beats all three negatives: 1; label 2: 0.6 and 0.1
    # against 0.7 and 0.3 win 1 of 4 pairs: 0.25; label 1 (all positive) is left out.
    assert metrics.macro_roc_auc(probs, labels) == pytest.approx((1 + 0.25) / 2)


def test_a_probability_equal_to_the_threshold_is_positive_and_mask_drops_examples():
    probs = np.array([[0.5, 0.25], [0.25, 0.75], [0.75, 0.5], [0.5, 0.5]])
    labels = np.array([[1, 0], [0, 1], [0, 1], [1, 1]])
    mask = np.array([1.0, 1.0, 1.0, 0.0])  # the last example is padding
    counts = jax.jit(metrics.multilabel_counts)(probs, labels, np.array([0.5, 0.5]), mask=mask)
    # label 0 predicted 1 0 1 (true 1 0 0): tp 1 fp 1 tn 1 fn 0; label 1 predicted 0 1 1
    # (true 0 1 1): tp 2 tn 1.
    assert {k: np.asarray(v).tolist() for k, v in counts.items()} == {
        "tp": [1, 2], "fp": [1, 0], "tn": [1, 1], "fn": [0, 0]}
    report = metrics.multilabel_report(probs[:3], labels[:3], 0.5)
    assert report["predicted_positives/0"] == 2 and report["specificity/0"] == 0.5
    assert report["accuracy/0"] == pytest.approx(2 / 3)


def test_multilabel_report_samples_recall_specificity_and_accuracy_with_mask(rng):
    labels = rng.integers(0, 2, (90, 3))
    probs = np.clip(0.3 * labels + rng.uniform(0, 0.7, (90, 3)), 0, 1)
    label_mask = rng.uniform(size=(90, 3)) > 0.25
    predicted = probs >= 0.5
    report = metrics.multilabel_report(probs, labels, 0.5, label_mask)
    for j in range(3):
        keep = label_mask[:, j]
        tn, fp, fn, tp = skm.confusion_matrix(labels[keep, j], predicted[keep, j]).ravel()
        assert report[f"specificity/{j}"] == pytest.approx(tn / (tn + fp))
        assert report[f"accuracy/{j}"] == pytest.approx((tp + tn) / keep.sum())
        assert report[f"predicted_positives/{j}"] == tp + fp
    unmasked = metrics.multilabel_report(probs, labels, 0.5)
    assert unmasked["samples/recall"] == pytest.approx(
        skm.recall_score(labels, predicted, average="samples", zero_division=0))


def test_binary_threshold_rules_by_hand():
    # youden is the default; inverted scores never beat J = 0 at the top: clipped to 1.0
    assert metrics.binary_threshold([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 1.0
    # f1: the single positive on top is found by the highest threshold
    assert metrics.binary_threshold([0.1, 0.2, 0.9], [0, 0, 1], "f1") == 0.9
    # recall: the highest threshold with 2 of 4 positives at or above it (tpr exactly 0.5);
    # 0.9 (one positive) at the default target 0.9 needs all four: 0.6; target 0 -> 1.0
    scores, labels = [0.9, 0.8, 0.7, 0.6, 0.1], [1, 1, 1, 1, 0]
    assert metrics.binary_threshold(scores, labels, "recall", target_recall=0.5) == 0.8
    assert metrics.binary_threshold(scores, labels, "recall") == 0.6
    assert metrics.binary_threshold(scores, labels, "recall", target_recall=0.0) == 1.0
    with pytest.raises(ValueError, match=r"^cannot choose a threshold: only one class present in labels$"):
        metrics.binary_threshold(np.array([]), np.array([]))
    with pytest.raises(ValueError) as info:
        metrics.binary_threshold(scores, labels, "accuracy")
    assert str(info.value) == "unknown threshold criterion 'accuracy'; use 'youden', 'f1' or 'recall'"


def test_best_thresholds_default_f1_label_mask_and_fallback_names():
    probs = np.array([[0.1, 0.9, 0.3], [0.2, 0.8, 0.6], [0.9, 0.7, 0.5], [0.6, 0.1, 0.2]])
    labels = np.array([[0, 1, 0], [0, 1, 1], [1, 0, 1], [1, 1, 0]])
    mask = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 0], [0, 1, 0]])  # label c: nothing kept
    with pytest.warns(UserWarning) as record:
        chosen = metrics.best_thresholds(probs, labels, label_mask=mask, names=["a", "b", "c"])
    # a (kept 0.1, 0.2, 0.9: one positive on top): F1 1 at 0.9; b: all kept positive -> 0.5
    np.testing.assert_array_equal(chosen, [0.9, 0.5, 0.5])
    assert [str(w.message) for w in record] == [
        "labels ['b', 'c'] have a single class present; threshold 0.5 used"]


def test_bootstrap_ci_defaults_and_a_single_class_sample():
    sample = np.random.default_rng(1).normal(size=50)
    labels = np.arange(50) % 2
    mean = lambda p, y: float(np.mean(p))  # noqa: E731
    assert metrics.bootstrap_ci(mean, sample, labels) == metrics.bootstrap_ci(
        mean, sample, labels, n_resamples=1000, seed=0)
    point, low, high = metrics.bootstrap_ci(mean, sample, np.ones(50), n_resamples=20)
    assert point == pytest.approx(sample.mean()) and np.isnan(low) and np.isnan(high)


def test_positive_scores_and_shape_errors():
    np.testing.assert_array_equal(metrics.positive_scores([0.2, 0.7]), [0.2, 0.7])
    np.testing.assert_array_equal(metrics.positive_scores([[0.8, 0.2], [0.3, 0.7]]), [0.2, 0.7])
    with pytest.raises(ValueError) as info:
        metrics.positive_scores(np.zeros((2, 3)))
    assert str(info.value) == "binary probabilities must be [N] or [N, 2], got shape (2, 3)"
    with pytest.raises(ValueError) as info:
        metrics.probability_metrics(np.zeros((4, 2)), np.zeros((4, 3)))
    assert str(info.value) == "multi-label probs (4, 2) and labels (4, 3) differ"


def test_probability_metrics_multiclass_names_and_areas_match_sklearn(rng):
    labels = rng.integers(0, 3, 90)
    probs = rng.dirichlet(np.ones(3), size=90) + 0.5 * np.eye(3)[labels]
    out = metrics.probability_metrics(probs, labels, names=["x", "y", "z"])
    for c, name in enumerate("xyz"):
        precision, recall, _ = skm.precision_recall_curve(labels == c, probs[:, c])
        assert out[f"pr_auc/{name}"] == pytest.approx(skm.auc(recall, precision))
        assert out[f"average_precision/{name}"] == pytest.approx(
            skm.average_precision_score(labels == c, probs[:, c]))
    assert out["average_precision"] == pytest.approx(
        skm.average_precision_score(np.eye(3)[labels], probs, average="macro"))
    assert out["auc_undefined"] == 0.0
    empty = metrics.probability_metrics(np.array([0.3, 0.6]), np.array([0, 1]), mask=[0, 0])
    assert np.isnan(empty["roc_auc"]) and np.isnan(empty["average_precision"])


def test_bootstrap_intervals_skip_single_class_resamples_of_1d_labels_only():
    probs = np.zeros(2)
    classes = lambda p, y: {"classes": np.unique(y).size, "nan": float("nan")}  # noqa: E731
    out = metrics.bootstrap_intervals(classes, probs, np.array([0, 1]), n_resamples=50)
    assert out["classes"] == (2.0, 2.0)  # the single-class resamples were left out
    assert np.isnan(out["nan"][0]) and np.isnan(out["nan"][1])
    two_d = metrics.bootstrap_intervals(classes, probs, np.zeros((2, 3)), n_resamples=5)
    assert two_d["classes"] == (1.0, 1.0)
    calls = []
    metrics.bootstrap_intervals(lambda p, y: calls.append(1) or {}, probs, np.array([0, 1]),
                                n_resamples=60)
    assert 15 < len(calls) < 45  # about half the resamples of two examples draw both


def test_bootstrap_intervals_defaults_and_every_example_drawn():
    values, labels = np.arange(10.0), np.arange(10) % 2
    lowest = lambda p, y: {"min": float(p.min()), "sum": float(p.sum())}  # noqa: E731
    assert metrics.bootstrap_intervals(lowest, values, labels) == metrics.bootstrap_intervals(
        lowest, values, labels, n_resamples=1000, seed=0)
    # a resample of 10 misses example 0 with probability 0.9 ** 10 = 0.35: the 2.5%
    # quantile of the minimum is 0
    assert metrics.bootstrap_intervals(lowest, values, labels, n_resamples=200)["min"][0] == 0.0


def test_a_wrong_number_of_names_is_an_error():
    with pytest.raises(ValueError) as info:
        metrics.summarize_confusion(np.eye(2), ["a"])
    assert str(info.value) == "got 1 names ['a'] for 2 classes/labels"
