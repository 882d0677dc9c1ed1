"""Data analysis writes its figures and summary for single- and multi-label data."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from jaxcx import analysis
from jaxcx.data.folder import KAGGLE_PNEUMONIA_CLASSES, image_folder_source
from jaxcx.data.synthetic import write_phantom_chest_xrays

REPO = Path(__file__).resolve().parents[1]


def test_phantom_folder_analysis(tmp_path):
    root = tmp_path / "phantom"
    write_phantom_chest_xrays(root, 24, seed=0, size_range=(20, 60), rgb_fraction=0.3,
                              split_fractions=(0.6, 0.2, 0.2))
    splits = {split: image_folder_source(root, split, class_map=KAGGLE_PNEUMONIA_CLASSES,
                                         decode=False) for split in ("train", "val", "test")}
    summary = analysis.analyze(splits, tmp_path / "eda", dataset_name="phantom")
    written = {path.name for path in (tmp_path / "eda").iterdir()}
    assert written == {"data_summary.md", "label_counts.png", "image_properties.png",
                       "samples_grid.png", "extreme_images.png"}
    text = summary.read_text()
    stats = analysis.collect_image_stats(splits["train"])
    assert f"3-channel images: {int((stats.channels == 3).sum())} of {len(splits['train'])}" in text
    assert f"| train | {len(splits['train'])} |" in text and "smallest" in text and "brightest" in text
    assert stats.height.min() >= 20 and np.allclose(stats.aspect_ratio, stats.width / stats.height)


class MultiLabelSource:
    """Twelve 6x6 images with three findings."""

    label_names = ("Edema", "Effusion", "Opacity")

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        self.labels = (rng.random((12, 3)) < 0.4).astype(np.float32)
        self.images = rng.integers(0, 255, (12, 6, 6, 1), np.uint8)

    def __len__(self):
        return 12

    def __getitem__(self, index):
        return {"image": self.images[index], "label": self.labels[index], "id": f"m{index}",
                "path": ""}


def test_multilabel_analysis(tmp_path):
    splits = {"train": MultiLabelSource(0), "val": MultiLabelSource(1)}
    summary = analysis.analyze(splits, tmp_path, dataset_name="tiny multi-label")
    for name in ("label_prevalence.png", "label_cooccurrence.png", "positive_findings.png",
                 "label_counts.png", "samples_grid.png"):
        assert (tmp_path / name).stat().st_size > 0
    matrix = analysis.cooccurrence(splits["train"].labels)
    np.testing.assert_array_equal(np.diag(matrix), splits["train"].labels.sum(axis=0))
    assert "Positive findings per image" in summary.read_text()
    assert "Edema" in summary.read_text()


def test_analyze_data_script(tmp_path):
    root = tmp_path / "phantom"
    write_phantom_chest_xrays(root, 12, seed=2, size_range=(16, 24),
                              split_fractions=(0.5, 0.25, 0.25))
    result = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "analyze_data.py"), f"--data_root={root}",
         "--layout=kaggle_pneumonia", f"--workdir={tmp_path / 'eda'}"],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "eda" / "data_summary.md").is_file()
