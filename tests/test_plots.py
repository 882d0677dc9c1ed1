"""Tests for jaxcx.plots: each figure kind writes a non-empty PNG."""

import numpy as np
from PIL import Image
import pytest

from jaxcx import plots


def _check_png(path, expected):
    assert path == expected and path.exists()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 200 and image.height > 200
        pixels = np.asarray(image.convert("L"))
    assert pixels.min() < pixels.max()  # something was drawn


@pytest.fixture
def binary():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 100)
    return np.clip(0.3 * labels + rng.uniform(0, 0.7, 100), 0, 1), labels


def test_training_curves(tmp_path):
    history = [{"step": 10 * e + s, "epoch": e, "train/loss": 1.0 / (e + 1),
                "train/accuracy": 0.5 + 0.1 * e} for e in range(3) for s in range(2)]
    history += [{"step": 10 * e + 9, "epoch": e, "val/loss": 1.1 / (e + 1),
                 "val/accuracy": 0.45 + 0.1 * e} for e in range(3)]
    path = tmp_path / "plots" / "curves.png"
    _check_png(plots.training_curves(history, path, "run-a"), path)
    with pytest.raises(ValueError, match="none of the keys"):
        plots.training_curves([{"step": 1}], tmp_path / "x.png", "run-a")


def test_per_class_accuracy_summary_and_history(tmp_path):
    summary = {"accuracy": 0.8, "class_accuracy/NORMAL": 0.7, "class_accuracy/PNEUMONIA": 0.9}
    path = tmp_path / "bars.png"
    _check_png(plots.per_class_accuracy(summary, path, "run-a", split=None), path)
    history = [{"step": e, "epoch": e, "val/class_accuracy/0": 0.5 + 0.1 * e,
                "val/class_accuracy/1": 0.6} for e in range(3)]
    path = tmp_path / "lines.png"
    _check_png(plots.per_class_accuracy(history, path, "run-a"), path)
    with pytest.raises(ValueError, match="split=None"):
        plots.per_class_accuracy(summary, tmp_path / "x.png", "run-a")


@pytest.mark.parametrize("normalize", [False, True])
def test_confusion_matrix(tmp_path, normalize):
    path = tmp_path / "cm.png"
    cm = np.array([[50, 10, 0], [5, 35, 2], [0, 0, 0]])
    _check_png(plots.confusion_matrix(cm, ["a", "b", "c"], path, "run-a", normalize), path)


def test_roc_pr_curves(tmp_path, binary):
    probs, labels = binary
    path = tmp_path / "roc.png"
    curves = {"model-a": (probs, labels), "model-b": (np.stack([1 - probs, probs], 1) ** 2,
                                                      labels)}
    _check_png(plots.roc_pr_curves(curves, path, "compare"), path)


def test_image_grid(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "grid.png"
    gray = rng.uniform(size=(7, 8, 8, 1)).astype(np.float32)
    _check_png(plots.image_grid(gray, [f"p={i}" for i in range(7)], path, "wrong", 4), path)
    rgb = rng.integers(0, 255, (2, 8, 8, 3), dtype=np.uint8)
    _check_png(plots.image_grid(rgb, None, path, "samples"), path)
    with pytest.raises(ValueError, match="titles"):
        plots.image_grid(rgb, ["one"], path, "samples")


def test_scatter_jittered_labels(tmp_path, binary):
    probs, labels = binary
    path = tmp_path / "scatter.png"
    _check_png(plots.scatter_jittered_labels(probs, labels, path, "run-a",
                                             class_names=("normal", "covid")), path)
