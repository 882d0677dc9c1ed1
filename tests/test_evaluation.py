"""Evaluators by task, checked against hand-worked cases and scikit-learn."""

import ml_collections
import numpy as np
import pytest
from sklearn import metrics as skm

from jaxcx.config import base_config
from jaxcx.evaluation import Outputs, get_evaluator, task_for
from jaxcx.evaluation.binary import metrics_at
from jaxcx import metrics
from jaxcx.metrics import macro_roc_auc

# Eight validation examples, hand-worked: sorted by score, labels 0 0 1 0 1 1 0 1.
SCORES = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
LABELS = np.array([0, 0, 1, 0, 1, 1, 0, 1])


def settings(**changes) -> ml_collections.ConfigDict:
    config = base_config().eval
    config.update({"bootstrap_resamples": 200, **changes})
    return config


def binary(scores, labels, names=("neg", "pos")) -> Outputs:
    return Outputs(np.stack([1 - scores, scores], axis=1), labels, list(names))


def test_metrics_at_a_threshold_by_hand():
    point = metrics_at(SCORES, LABELS, 0.5)
    # predicted positive: 0.6 0.7 0.8 0.9 -> TP 3 (0.6, 0.7, 0.9), FP 1 (0.8);
    # predicted negative: 0.1 0.2 0.3 0.4 -> TN 3, FN 1 (0.3).
    assert point["confusion"] == [[3, 1], [1, 3]]
    assert point["sensitivity"] == 3 / 4 and point["specificity"] == 3 / 4
    point = metrics_at(SCORES, LABELS, 0.35)  # adds 0.4 (a negative) as positive
    assert point["confusion"] == [[2, 2], [1, 3]]
    assert point["sensitivity"] == 3 / 4 and point["specificity"] == 2 / 4
    assert point["precision"] == 3 / 5 and point["f1"] == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))


def test_binary_areas_and_thresholds_by_hand():
    evaluator = get_evaluator("binary", settings(threshold="youden"))
    val = binary(SCORES, LABELS)
    # Of the 16 positive/negative pairs the positive scores higher in 12: ROC AUC 0.75.
    record = evaluator.metrics(val, {"rule": "x", "thresholds": {"0.5": 0.5}}, intervals=False)
    assert record["operating_points"]["0.5"]["roc_auc"] == pytest.approx(12 / 16)
    # Youden's J per threshold: 0.9 -> 1/4, 0.6 -> 3/4 - 1/4 = 1/2, 0.3 -> 1 - 1/2 = 1/2;
    # the first maximum along the ROC curve (highest threshold) is 0.6.
    assert evaluator.operating_points(val)["thresholds"]["validation"] == pytest.approx(0.6)
    # Recall >= 0.9 first reached at 0.3 (all four positives at or above it).
    recall_rule = get_evaluator("binary", settings(threshold="recall", target_recall=0.9))
    assert recall_rule.operating_points(val)["thresholds"]["validation"] == pytest.approx(0.3)
    # F1 = 2tp / (2tp + fp + fn): 0.6 -> 6/8, 0.3 -> 8/10 (tp 4, fp 2), 0.9 -> 2/5: best 0.3.
    f1_rule = get_evaluator("binary", settings(threshold="f1"))
    assert f1_rule.operating_points(val)["thresholds"]["validation"] == pytest.approx(0.3)


def test_binary_test_metrics_use_the_validation_threshold():
    """The threshold comes from validation outputs, never from the test split."""
    evaluator = get_evaluator("binary", settings(threshold="youden"))
    val = binary(SCORES, LABELS)
    test_scores = np.array([0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.95])
    test_labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])  # Youden on test alone would pick 0.45
    test = binary(test_scores, test_labels)
    record = evaluator.metrics(test, evaluator.operating_points(val), intervals=True)
    chosen = record["operating_points"]["validation"]
    assert chosen["threshold"] == pytest.approx(0.6)
    assert chosen["confusion"] == [[4, 0], [2, 2]]
    assert chosen["sensitivity"] == 0.5 and chosen["specificity"] == 1.0
    low, high = chosen["ci95"]["accuracy"]
    assert low < chosen["accuracy"] < high


def test_bootstrap_interval_is_a_95_percent_interval():
    """Accuracy of n=400 predictions, 300 right: the 95% interval of a proportion is about
    p +- 1.96 sqrt(p(1-p)/n) = 0.75 +- 0.042, a 50% interval would be +- 0.015."""
    labels = np.tile([0, 1], 200)
    scores = np.where(np.arange(400) < 300, labels * 0.8 + 0.1, 0.9 - labels * 0.8)
    evaluator = get_evaluator("binary", settings(bootstrap_resamples=1000))
    record = evaluator.metrics(binary(scores, labels), {"rule": "x", "thresholds": {"0.5": 0.5}},
                               intervals=True)
    point = record["operating_points"]["0.5"]
    assert point["accuracy"] == 0.75
    low, high = point["ci95"]["accuracy"]
    half_width = 1.96 * np.sqrt(0.75 * 0.25 / 400)
    assert low == pytest.approx(0.75 - half_width, abs=0.01)
    assert high == pytest.approx(0.75 + half_width, abs=0.01)


def test_multiclass_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 120)
    probs = rng.dirichlet(np.ones(4), size=120)
    probs[np.arange(60), labels[:60]] += 1.0  # half of them made right
    probs /= probs.sum(axis=1, keepdims=True)
    evaluator = get_evaluator("multiclass", settings())
    record = evaluator.metrics(Outputs(probs, labels, list("abcd")), {"rule": "argmax"},
                               intervals=False)
    predicted = probs.argmax(axis=1)
    summary = record["summary"]
    assert summary["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    assert summary["macro_f1"] == pytest.approx(skm.f1_score(labels, predicted, average="macro"))
    assert summary["macro_recall"] == pytest.approx(
        skm.recall_score(labels, predicted, average="macro"))
    assert summary["roc_auc"] == pytest.approx(
        skm.roc_auc_score(labels, probs, multi_class="ovr", average="macro"))
    assert record["confusion"] == skm.confusion_matrix(labels, predicted).tolist()
    per_class_recall = skm.recall_score(labels, predicted, average=None)
    assert [row["recall"] for row in record["per_class"].values()] == pytest.approx(
        per_class_recall)


def test_multilabel_thresholds_are_chosen_per_label_on_validation():
    # Label 0 is separated at 0.6 on validation, label 1 at 0.3.
    val_probs = np.array([[0.1, 0.1], [0.5, 0.2], [0.6, 0.3], [0.9, 0.4]])
    val_labels = np.array([[0, 0], [0, 0], [1, 1], [1, 1]])
    test_probs = np.array([[0.55, 0.25], [0.65, 0.35], [0.2, 0.9], [0.7, 0.1]])
    test_labels = np.array([[0, 0], [1, 1], [0, 1], [1, 0]])
    evaluator = get_evaluator("multilabel", settings(threshold="youden"))
    operating = evaluator.operating_points(Outputs(val_probs, val_labels, ["x", "y"]))
    assert operating["thresholds"]["validation"] == pytest.approx([0.6, 0.3])
    record = evaluator.metrics(Outputs(test_probs, test_labels, ["x", "y"]), operating,
                               intervals=False)
    chosen = record["operating_points"]["validation"]["per_label"]
    # x at 0.6: predicted 0 1 0 1, true 0 1 0 1 -> recall 1, specificity 1.
    assert chosen["x"]["recall"] == 1.0 and chosen["x"]["specificity"] == 1.0
    # y at 0.3: predicted 0 1 1 0, true 0 1 1 0.
    assert chosen["y"]["f1"] == 1.0
    at_half = record["operating_points"]["0.5"]["per_label"]
    assert at_half["y"]["recall"] == 0.5  # only 0.9 reaches 0.5


def test_task_comes_from_the_data_unless_configured():
    assert task_for("auto", multilabel=False, num_classes=2) == "binary"
    assert task_for("auto", multilabel=False, num_classes=10) == "multiclass"
    assert task_for("auto", multilabel=True, num_classes=14) == "multilabel"
    assert task_for("multiclass", multilabel=False, num_classes=2) == "multiclass"


def test_unknown_task_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid: binary, multiclass, multilabel"):
        get_evaluator("segmantation", settings())


def test_figures_of_each_task_are_written(tmp_path):
    rng = np.random.default_rng(1)
    labels = np.arange(40) % 3
    probs = rng.dirichlet(np.ones(3), size=40)
    outputs = Outputs(probs, labels, ["a", "b", "c"], ids=np.array([str(i) for i in range(40)]))
    evaluator = get_evaluator("multiclass", settings(most_wrong=4))
    record = evaluator.metrics(outputs, {"rule": "argmax"}, intervals=False)
    figures = evaluator.figures(outputs, record, tmp_path, "run", "test",
                                image_of=lambda _: rng.random((8, 8, 1)))
    assert set(figures) == {"confusion", "per class", "roc pr", "most wrong"}
    assert all(path.stat().st_size > 1000 for path in figures.values())
    assert "| a |" in "\n".join(evaluator.markdown(record))


def test_fast_macro_roc_auc_matches_sklearn():
    """Ties in the scores and a class absent from the labels included."""
    rng = np.random.default_rng(2)
    labels = rng.choice([0, 1, 3], size=150)
    probs = rng.dirichlet(np.ones(4), size=150)
    probs[:, 1] = np.round(probs[:, 1], 1)
    expected = np.mean([skm.roc_auc_score(labels == c, probs[:, c]) for c in (0, 1, 3)])
    assert macro_roc_auc(probs, labels) == pytest.approx(expected, abs=1e-12)


def test_multilabel_bootstrap_summary_matches_the_full_report():
    """The fast per-resample summary equals multilabel_report on the whole sample."""
    rng = np.random.default_rng(3)
    labels = (rng.random((60, 3)) < 0.4).astype(np.float32)
    probs = np.clip(labels * 0.5 + rng.random((60, 3)) * 0.6, 0, 1)
    mask = (rng.random((60, 3)) < 0.9).astype(np.float32)
    thresholds = np.array([0.4, 0.5, 0.6])
    full = metrics.multilabel_report(probs, labels, thresholds, mask)
    macro_f1 = np.mean([skm.f1_score(labels[mask[:, j] > 0, j], probs[mask[:, j] > 0, j]
                                     >= thresholds[j]) for j in range(3)])
    assert full["macro/f1"] == pytest.approx(macro_f1)
    assert macro_roc_auc(probs, labels, mask) == pytest.approx(full["roc_auc"], abs=1e-12)
    evaluator = get_evaluator("multilabel", settings(bootstrap_resamples=300))
    low, high = evaluator._intervals(probs, labels, mask, thresholds)["macro/f1"]
    assert low < macro_f1 < high
