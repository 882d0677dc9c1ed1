"""Evaluators by task, checked against hand-worked cases and scikit-learn."""

import warnings

import ml_collections
import numpy as np
import pytest
from sklearn import metrics as skm

from jaxcx.config import base_config
from jaxcx.evaluation import Outputs, get_evaluator, task_for
from jaxcx.evaluation.base import bootstrap_seed, table, with_interval
from jaxcx.evaluation.binary import metrics_at
from jaxcx.evaluation.multiclass import summary_metrics
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


def test_outputs_round_trip_through_npz(tmp_path):
    full = Outputs(np.array([[0.2, 0.8]]), np.array([[1, 0]]), ["a", "b"], ids=np.array(["x1"]),
                   label_mask=np.array([[1.0, 0.0]]))
    bare = Outputs(np.array([0.4, 0.6]), np.array([0, 1]), ["n", "p"])
    for outputs, name in ((full, "full.npz"), (bare, "bare.npz")):
        assert outputs.save(tmp_path / name) == tmp_path / name
        loaded = Outputs.load(tmp_path / name)
        for field in ("probs", "labels", "ids", "label_mask"):
            expected = getattr(outputs, field)
            assert (getattr(loaded, field) is None) if expected is None else np.array_equal(
                getattr(loaded, field), expected)
        assert loaded.class_names == outputs.class_names
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.npz", "full.npz"]


def test_markdown_helpers_and_bootstrap_seed():
    assert table(["a", "b"], [["1", "2"]]) == ["| a | b |", "|---|---|", "| 1 | 2 |"]
    assert with_interval({"f1": 0.91234}, "f1") == "0.9123"
    assert with_interval({"f1": 0.5, "ci95": {"f1": [0.25, 0.75]}}, "f1") == "0.5000 [0.2500, 0.7500]"
    assert bootstrap_seed(ml_collections.ConfigDict({})) == 0
    assert bootstrap_seed(ml_collections.ConfigDict({"bootstrap_seed": 7})) == 7


def test_multiclass_macro_over_present_classes_pr_auc_and_intervals():
    rng = np.random.default_rng(4)
    labels = rng.choice([0, 1, 3], size=90)  # class 2 absent
    probs = rng.dirichlet(np.ones(4), size=90)
    probs[np.arange(45), labels[:45]] += 1.0
    probs /= probs.sum(axis=1, keepdims=True)
    predicted = probs.argmax(axis=1)
    record = get_evaluator("multiclass", settings(bootstrap_resamples=50)).metrics(
        Outputs(probs, labels, list("abcd")), {"rule": "argmax"}, intervals=True)
    summary = record["summary"]
    present = [0, 1, 3]
    assert record["task"] == "multiclass" and record["n"] == 90
    assert get_evaluator("multiclass", settings()).operating_points(None) == {"rule": "argmax"}
    assert summary["macro_precision"] == pytest.approx(
        skm.precision_score(labels, predicted, labels=present, average="macro"))
    assert summary["macro_recall"] == pytest.approx(
        skm.recall_score(labels, predicted, labels=present, average="macro"))
    assert summary["macro_f1"] == pytest.approx(
        skm.f1_score(labels, predicted, labels=present, average="macro"))
    pr = []
    for c in range(4):
        if c in present:
            precision, recall, _ = skm.precision_recall_curve(labels == c, probs[:, c])
            pr.append(skm.auc(recall, precision))
    assert summary["pr_auc"] == pytest.approx(np.mean(pr))
    assert set(summary["ci95"]) == {"accuracy", "macro_precision", "macro_recall", "macro_f1",
                                    "roc_auc"}
    low, high = summary["ci95"]["roc_auc"]
    assert low < summary["roc_auc"] < high
    rows = record["per_class"]
    assert rows["b"]["precision"] == pytest.approx(skm.precision_score(labels == 1, predicted == 1))
    assert rows["d"]["f1"] == pytest.approx(skm.f1_score(labels == 3, predicted == 3))
    assert rows["a"]["roc_auc"] == pytest.approx(skm.roc_auc_score(labels == 0, probs[:, 0]))
    assert np.isnan(rows["c"]["roc_auc"])


def test_binary_record_fields_and_interval_keys():
    evaluator = get_evaluator("binary", settings(threshold="f1", bootstrap_resamples=30))
    record = evaluator.metrics(binary(SCORES, LABELS), {"rule": "f1", "thresholds": {"0.5": 0.5}},
                               intervals=True)
    assert (record["task"], record["n"], record["threshold_rule"]) == ("binary", 8, "f1")
    point = record["operating_points"]["0.5"]
    assert point["threshold"] == 0.5
    assert point["pr_auc"] == pytest.approx(skm.auc(*skm.precision_recall_curve(LABELS, SCORES)[1::-1]))
    assert point["average_precision"] == pytest.approx(skm.average_precision_score(LABELS, SCORES))
    assert set(point["ci95"]) == {"accuracy", "f1", "sensitivity", "specificity", "precision",
                                  "roc_auc", "pr_auc", "average_precision"}


def test_multilabel_record_matches_sklearn_with_mask_and_intervals():
    probs = np.array([[0.9, 0.2], [0.4, 0.7], [0.6, 0.6], [0.1, 0.3], [0.8, 0.9], [0.3, 0.1]])
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [1, 1]])
    mask = np.ones((6, 2))
    mask[5, 1] = 0
    evaluator = get_evaluator("multilabel", settings(threshold="f1", bootstrap_resamples=30))
    record = evaluator.metrics(Outputs(probs, labels, ["p", "q"], label_mask=mask),
                               {"rule": "f1", "thresholds": {"0.5": [0.5, 0.5]}}, intervals=True)
    assert (record["task"], record["n"], record["threshold_rule"]) == ("multilabel", 6, "f1")
    point = record["operating_points"]["0.5"]
    predicted = probs >= 0.5
    assert point["thresholds"] == [0.5, 0.5]
    # label p: predicted 1 0 1 0 1 0, true 1 0 1 0 1 1 -> F1 6/7; label q without row 5:
    # predicted 0 1 1 0 1, true 0 1 1 0 0 -> F1 4/5
    assert point["per_label"]["p"]["f1"] == pytest.approx(6 / 7)
    assert point["per_label"]["q"]["f1"] == pytest.approx(4 / 5)
    assert point["macro/f1"] == pytest.approx((6 / 7 + 4 / 5) / 2)
    assert point["per_label"]["q"]["specificity"] == pytest.approx(2 / 3)
    assert point["subset_accuracy"] == pytest.approx(skm.accuracy_score(labels[:5], predicted[:5]) * 5 / 6)
    assert point["per_label"]["p"]["roc_auc"] == pytest.approx(skm.roc_auc_score(labels[:, 0], probs[:, 0]))
    assert set(point["ci95"]) == {"macro/f1", "roc_auc"}
    low, high = point["ci95"]["macro/f1"]
    assert low <= point["macro/f1"] <= high


def test_operating_points_keys_target_recall_default_and_a_score_at_the_threshold():
    confusion = metrics_at(np.array([0.5, 0.2]), np.array([1.0, 0.0]), 0.5)["confusion"]
    assert confusion == [[1, 0], [0, 1]] and type(confusion[0][0]) is int
    val = binary(SCORES, LABELS)
    half = get_evaluator("binary", settings(threshold="recall", target_recall=0.5))
    # recall >= 0.5 (2 of 4 positives) first at 0.7; the default 0.9 needs all four: 0.3
    assert half.operating_points(val)["thresholds"] == {"0.5": 0.5, "validation": 0.7}
    bare = ml_collections.ConfigDict({"threshold": "recall"})
    assert get_evaluator("binary", bare).operating_points(val)["thresholds"]["validation"] == 0.3


@pytest.mark.parametrize("task", ["binary", "multiclass", "multilabel"])
def test_intervals_use_the_configured_resamples_and_seed(task):
    if task == "binary":
        outputs, operating = binary(SCORES, LABELS), {"rule": "x", "thresholds": {"0.5": 0.5}}
    elif task == "multiclass":
        outputs, operating = Outputs(np.eye(3)[[0, 1, 2, 0, 1, 1]] * 0.5 + 0.1,
                                     np.array([0, 1, 2, 1, 1, 0]), list("abc")), {"rule": "argmax"}
    else:  # no label mask
        outputs = Outputs(np.stack([SCORES, SCORES[::-1]], 1), np.stack([LABELS, LABELS], 1),
                          ["x", "y"])
        operating = {"rule": "x", "thresholds": {"0.5": [0.5, 0.5]}}
    key = "macro/f1" if task == "multilabel" else "roc_auc"

    def ci(**changes):
        record = get_evaluator(task, settings(**changes)).metrics(outputs, operating,
                                                                  intervals=True)
        point = record["summary"] if task == "multiclass" else record["operating_points"]["0.5"]
        return point["ci95"][key]

    low, high = ci(bootstrap_resamples=1)  # one resample: both quantiles are its value
    assert low == high
    seeded = ci(bootstrap_resamples=3, bootstrap_seed=5)
    assert seeded == ci(bootstrap_resamples=3, bootstrap_seed=5) != ci(bootstrap_resamples=3)


def test_multiclass_summary_by_hand_with_an_unpredicted_and_a_single_example_class():
    labels = np.array([0, 0, 1, 2, 2])
    predicted = np.array([0, 1, 1, 0, 0])
    probs = np.full((5, 3), 0.1) + 0.8 * np.eye(3)[predicted]
    # recall 1/2, 1, 0; precision 1/3, 1/2, 0 (class 2 never predicted); F1 0.4, 2/3, 0;
    # a fourth class, absent and never predicted, is left out of the averages
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = summary_metrics(np.c_[probs, np.zeros(5)], labels, 4, areas=False)
    assert out["accuracy"] == pytest.approx(2 / 5)
    assert out["macro_recall"] == pytest.approx(0.5)
    assert out["macro_precision"] == pytest.approx(5 / 18)
    assert out["macro_f1"] == pytest.approx((0.4 + 2 / 3) / 3)
    assert out["macro_f1"] == pytest.approx(skm.f1_score(labels, predicted, average="macro"))
    assert summary_metrics(probs[:1], labels[:1], 3, areas=False)["accuracy"] == 1.0
    from_floats = summary_metrics(probs, labels.astype(float), 3, areas=False)  # as loaded
    assert (from_floats["accuracy"], from_floats["macro_recall"]) == pytest.approx((2 / 5, 0.5))
    record = get_evaluator("multiclass", settings()).metrics(
        Outputs(probs, labels, list("abc")), {"rule": "argmax"}, intervals=False)
    assert record["confusion"] == [[1, 1, 0], [0, 1, 0], [2, 0, 0]]
    assert all(type(count) is int for row in record["confusion"] for count in row)
    two = get_evaluator("multiclass", settings()).metrics(
        Outputs(probs[:3, :2], labels[:3], ["a", "b"]), {"rule": "argmax"}, intervals=False)
    assert np.isnan(two["per_class"]["a"]["precision"])  # binary summaries have no per-class keys


def test_outputs_ids_are_saved_as_strings(tmp_path):
    path = Outputs(np.zeros(2), np.array([0, 1]), ["n", "p"], ids=np.array([3, 4])).save(
        tmp_path / "o.npz")
    assert Outputs.load(path).ids.tolist() == ["3", "4"]


def test_multilabel_validation_thresholds_use_the_label_mask_and_names():
    probs = np.array([[0.1, 0.1], [0.5, 0.2], [0.6, 0.3], [0.9, 0.4]])
    labels = np.array([[0, 0], [0, 0], [1, 1], [1, 1]])
    mask = np.array([[0, 1], [0, 1], [1, 1], [1, 1]])  # x: only positives kept
    evaluator = get_evaluator("multilabel", settings(threshold="youden"))
    with pytest.warns(UserWarning, match=r"labels \['x'\] have a single class"):
        operating = evaluator.operating_points(Outputs(probs, labels, ["x", "y"], label_mask=mask))
    assert operating["thresholds"]["validation"] == pytest.approx([0.5, 0.3])


def test_multilabel_intervals_leave_out_masked_entries():
    """Kept entries are all right at 0.5 (one positive exactly at 0.5), masked ones all
    wrong: every resample with both classes has macro F1 1 and ROC AUC 1."""
    labels = np.tile([[1, 0], [0, 1]], (8, 1))
    probs = np.where(labels == 1, 0.9, 0.1)
    mask = np.ones_like(probs)
    probs[:4], mask[:4] = 1 - labels[:4] * 0.8 - 0.1, 0  # wrong and masked
    probs[4, 0] = 0.5
    evaluator = get_evaluator("multilabel", settings(bootstrap_resamples=50))
    record = evaluator.metrics(Outputs(probs, labels, ["p", "q"], label_mask=mask),
                               {"rule": "f1", "thresholds": {"0.5": [0.5, 0.5]}}, intervals=True)
    assert record["operating_points"]["0.5"]["ci95"] == {"macro/f1": [1.0, 1.0],
                                                          "roc_auc": [1.0, 1.0]}



def test_multilabel_counts_averages_and_target_recall_thresholds_by_hand():
    """Per label TP and predicted positives, samples-averaged recall/precision, average
    precision from sklearn; 'recall' thresholds honour eval.target_recall per label."""
    probs = np.array([[0.9, 0.2], [0.4, 0.7], [0.6, 0.6], [0.1, 0.3], [0.8, 0.9], [0.3, 0.1]])
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0], [1, 1]])
    evaluator = get_evaluator("multilabel", settings(threshold="recall", target_recall=0.5))
    val = Outputs(probs, labels, ["p", "q"])
    # p's positives score 0.9 0.8 0.6 0.3: recall >= 0.5 first at 0.8; q's 0.7 0.6 0.1: 0.6.
    assert evaluator.operating_points(val)["thresholds"]["validation"] == [0.8, 0.6]
    record = evaluator.metrics(val, {"rule": "recall", "thresholds": {"0.5": [0.5, 0.5]}},
                               intervals=False)
    point = record["operating_points"]["0.5"]
    # p predicted 1 0 1 0 1 0 (TP 3 of 3 predicted); q predicted 0 1 1 0 1 0 (TP 2 of 3).
    assert point["per_label"]["p"]["tp"] == 3 and point["per_label"]["p"]["predicted_positives"] == 3
    assert point["per_label"]["q"]["tp"] == 2 and point["per_label"]["q"]["predicted_positives"] == 3
    predicted = probs >= 0.5
    assert point["samples/recall"] == pytest.approx(
        skm.recall_score(labels, predicted, average="samples", zero_division=0))
    assert point["samples/precision"] == pytest.approx(
        skm.precision_score(labels, predicted, average="samples", zero_division=0))
    assert point["per_label"]["q"]["average_precision"] == pytest.approx(
        skm.average_precision_score(labels[:, 1], probs[:, 1]))


def test_multilabel_config_thresholds_and_included_targets(tmp_path):
    probs = np.array([[0.9, 0.2, 0.5], [0.4, 0.7, 0.2], [0.6, 0.6, 0.8], [0.1, 0.3, 0.4]])
    labels = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 0]])
    outputs = Outputs(probs, labels, ["p", "q", "r"])
    evaluator = get_evaluator("multilabel", settings(
        threshold="f1", label_thresholds=(("q", 0.25),), include_targets=("p", "q")))
    operating = evaluator.operating_points(outputs)
    assert operating["thresholds"]["config"] == [0.5, 0.25, 0.5]
    record = evaluator.metrics(outputs, operating, intervals=False)
    # q at 0.25 predicts 0.7, 0.6, 0.3 positive: TP 2, predicted 3.
    assert record["operating_points"]["config"]["per_label"]["q"]["predicted_positives"] == 3
    lines = evaluator.markdown(record)
    assert any(line.startswith("| p |") for line in lines)
    assert not any(line.startswith("| r |") for line in lines)
    figures = evaluator.figures(outputs, record, tmp_path, "t", "val")
    assert set(figures) == {"roc grid", "pr grid", "per label f1"}
    with pytest.raises(ValueError, match=r"eval.label_thresholds names unknown label\(s\) \['s'\]"):
        get_evaluator("multilabel", settings(label_thresholds={"s": 0.1})).operating_points(outputs)
