"""A run's report: the validation ROC/PR figure for binary and multi-class runs."""

import numpy as np

from jaxcx import plots
from jaxcx.report import roc_pr_inputs


def test_binary_run_gets_one_curve():
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    curves, suffix = roc_pr_inputs("run", probs, np.array([0, 1, 1]), ("NORMAL", "PNEUMONIA"))
    assert list(curves) == ["run"] and suffix == ""


def test_multiclass_run_gets_one_curve_per_class_present(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1])  # class 3 never appears in validation
    probs = rng.dirichlet(np.ones(4), size=len(labels))
    curves, suffix = roc_pr_inputs("run", probs, labels, ("a", "b", "c", "d"))
    assert list(curves) == ["a", "b", "c"] and "rest" in suffix
    np.testing.assert_array_equal(curves["b"][0], probs[:, 1])
    np.testing.assert_array_equal(curves["b"][1], labels == 1)
    path = plots.roc_pr_curves(curves, tmp_path / "roc.png", "one against the rest")
    assert path.stat().st_size > 0
