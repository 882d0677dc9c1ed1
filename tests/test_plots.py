"""Tests for jaxcx.plots: each figure kind writes a PNG of the expected size that shows
what it was given (matplotlib's default colours C0/C1 for the first two series)."""

import numpy as np
from PIL import Image
import pytest

from jaxcx import plots

C0, C1 = (31, 119, 180), (255, 127, 14)  # matplotlib's first two cycle colours


def _check_png(path, expected, size):
    """Decoded RGB pixels of the PNG at `expected`: `size` = figsize x 100 dpi (width,
    height), and not blank (2-90% of the pixels inked, not near-white)."""
    assert path == expected and path.exists()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == size
        rgb = np.asarray(image.convert("RGB")).astype(int)
    inked = (rgb < 250).any(axis=2).mean()
    assert 0.02 < inked < 0.9, inked
    return rgb


def _pixels(rgb, colour):
    return int((rgb == colour).all(axis=2).sum())


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
    rgb = _check_png(plots.training_curves(history, path, "run-a"), path, (1000, 400))
    assert _pixels(rgb, C0) > 300 and _pixels(rgb, C1) > 300  # train and val lines
    with pytest.raises(ValueError, match="none of the keys"):
        plots.training_curves([{"step": 1}], tmp_path / "x.png", "run-a")


def test_per_class_accuracy_summary_and_history(tmp_path):
    summary = {"accuracy": 0.8, "class_accuracy/NORMAL": 0.7, "class_accuracy/PNEUMONIA": 0.9}
    path = tmp_path / "bars.png"
    rgb = _check_png(plots.per_class_accuracy(summary, path, "run-a", split=None), path,
                     (600, 400))
    bars = (rgb == C0).all(axis=2)
    columns = np.flatnonzero(bars.any(axis=0))
    middle = (columns.min() + columns.max()) // 2
    left, right = bars[:, :middle].sum(axis=0).max(), bars[:, middle:].sum(axis=0).max()
    assert right / left == pytest.approx(0.9 / 0.7, rel=0.02)  # bar heights follow values
    history = [{"step": e, "epoch": e, "val/class_accuracy/0": 0.5 + 0.1 * e,
                "val/class_accuracy/1": 0.6} for e in range(3)]
    path = tmp_path / "lines.png"
    rgb = _check_png(plots.per_class_accuracy(history, path, "run-a"), path, (600, 400))
    assert _pixels(rgb, C0) > 200 and _pixels(rgb, C1) > 200  # one line per class
    with pytest.raises(ValueError, match="split=None"):
        plots.per_class_accuracy(summary, tmp_path / "x.png", "run-a")


@pytest.mark.parametrize("normalize", [False, True])
def test_confusion_matrix(tmp_path, normalize):
    path = tmp_path / "cm.png"
    cm = np.array([[50, 10, 0], [5, 35, 2], [0, 0, 0]])
    rgb = _check_png(plots.confusion_matrix(cm, ["a", "b", "c"], path, "run-a", normalize),
                     path, (500, 400))
    blue = (rgb[..., 2] - rgb[..., 0] > 60).mean()  # the 'Blues' heat map cells
    assert blue > 0.05


def test_roc_pr_curves(tmp_path, binary):
    probs, labels = binary
    path = tmp_path / "roc.png"
    curves = {"model-a": (probs, labels), "model-b": (np.stack([1 - probs, probs], 1) ** 2,
                                                      labels)}
    rgb = _check_png(plots.roc_pr_curves(curves, path, "compare"), path, (1100, 480))
    assert _pixels(rgb, C0) > 50 and _pixels(rgb, C1) > 50  # model-a and model-b


def test_image_grid(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "grid.png"
    gray = rng.uniform(size=(7, 8, 8, 1)).astype(np.float32)
    # 7 images in 4 columns: 2 rows of 2-inch cells plus 0.5 inch for the title.
    drawn = _check_png(plots.image_grid(gray, [f"p={i}" for i in range(7)], path, "wrong", 4),
                       path, (800, 450))
    grey = drawn[(drawn[..., 0] == drawn[..., 1]) & (drawn[..., 1] == drawn[..., 2])]
    assert len(np.unique(grey[:, 0])) > 100  # the noise images, not blank cells
    rgb = rng.integers(0, 255, (2, 8, 8, 3), dtype=np.uint8)
    drawn = _check_png(plots.image_grid(rgb, None, path, "samples"), path, (400, 250))
    assert len(np.unique(drawn.reshape(-1, 3), axis=0)) > 100
    with pytest.raises(ValueError, match="titles"):
        plots.image_grid(rgb, ["one"], path, "samples")


def test_scatter_jittered_labels(tmp_path, binary):
    probs, labels = binary
    path = tmp_path / "scatter.png"
    rgb = _check_png(plots.scatter_jittered_labels(probs, labels, path, "run-a",
                                                   class_names=("normal", "covid")),
                     path, (700, 500))
    red = (rgb[..., 0] - rgb[..., 2] > 40).sum()  # coolwarm: class 1 red, class 0 blue
    blue = (rgb[..., 2] - rgb[..., 0] > 40).sum()
    assert red > 200 and blue > 200


@pytest.mark.parametrize("kind", ["roc", "pr"])
def test_curve_grid_draws_one_panel_per_label(tmp_path, kind):
    rng = np.random.default_rng(0)
    curves = {f"label {k}": (rng.random(40), rng.random(40) < 0.3) for k in range(6)}
    path = plots.curve_grid(curves, tmp_path / f"{kind}.png", "grid", kind=kind)
    with Image.open(path) as image:
        assert image.size == (1280, 600)  # 4 columns x 2 rows of 3.2 x 3.0 inches at 100 dpi
    with pytest.raises(ValueError, match="only one class"):
        plots.curve_grid({"x": (rng.random(5), np.zeros(5))}, tmp_path / "x.png", "x", kind=kind)


def test_epoch_progression_reads_per_label_history(tmp_path):
    history = [{"epoch": e, "val/roc_auc/a": 0.5 + 0.1 * e, "val/roc_auc/b": 0.6} for e in (1, 2, 3)]
    path = plots.epoch_progression(history, "roc_auc", ["a", "b"], tmp_path / "p.png", "p")
    assert path is not None and path.exists()
    assert plots.epoch_progression(history, "f1", ["a"], tmp_path / "q.png", "q") is None
