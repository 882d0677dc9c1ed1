"""Data analysis writes its figures and a summary whose numbers match counts made here,
independently, from the files and labels."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from jaxcx import analysis
from jaxcx.data.folder import KAGGLE_PNEUMONIA_CLASSES, image_folder_source
from jaxcx.data.synthetic import write_phantom_chest_xrays

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("NORMAL", "PNEUMONIA")


def _kaggle_files(root):
    """{split: {class: [file, ...]}} by listing the folders."""
    return {split: {cls: sorted(p for p in (root / split / cls).iterdir() if p.is_file())
                    for cls in CLASSES} for split in ("train", "val", "test")}


def _count_rows(files):
    """The summary's label-count rows: | split | size | NORMAL | PNEUMONIA |."""
    return [f"| {split} | {sum(len(v) for v in per_class.values())} | "
            f"{len(per_class['NORMAL'])} | {len(per_class['PNEUMONIA'])} |"
            for split, per_class in files.items()]


def _table_row(text, first_cell):
    [row] = [line for line in text.splitlines() if line.startswith(f"| {first_cell} |")]
    return [cell.strip() for cell in row.strip("|").split("|")]


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
    files = _kaggle_files(root)
    for row in _count_rows(files):
        assert row in text.splitlines()
    train = files["train"]
    total = len(train["NORMAL"]) + len(train["PNEUMONIA"])
    assert (f"- train: {len(train['NORMAL']) / total:.2%}, "
            f"{len(train['PNEUMONIA']) / total:.2%}") in text
    # Per-image facts straight from PIL, keyed by the id the summary uses (ROOT-relative).
    facts = {}
    for path in train["NORMAL"] + train["PNEUMONIA"]:
        with Image.open(path) as image:
            pixels = np.asarray(image)
            facts[str(path.relative_to(root))] = (image.width * image.height,
                                                  3 if image.mode == "RGB" else 1,
                                                  float(pixels.mean()))
    rgb = sum(channels == 3 for _, channels, _ in facts.values())
    assert 0 < rgb < total and f"3-channel images: {rgb} of {total}" in text
    for group in CLASSES:  # images per class in the image-properties table
        assert _table_row(text, group)[1] == str(len(train[group]))
    areas = [area for area, _, _ in facts.values()]
    means = [mean for _, _, mean in facts.values()]
    for which, column, pick in (("smallest", 0, min), ("largest", 0, max),
                                ("darkest", 2, min), ("brightest", 2, max)):
        image_id = _table_row(text, which)[1]
        expected = pick(areas if column == 0 else means)
        assert facts[image_id][column] == (expected if column == 0 else
                                           np.float64(expected)), which


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
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and min(image.size) > 100
    train, val = splits["train"].labels, splits["val"].labels
    matrix = analysis.cooccurrence(train)
    for i in range(3):
        for j in range(3):
            assert matrix[i, j] == sum(1 for row in train if row[i] == 1 and row[j] == 1)
    text = summary.read_text()
    lines = text.splitlines()
    for split, labels in (("train", train), ("val", val)):
        positives = [int(sum(row[k] for row in labels)) for k in range(3)]
        assert f"| {split} | 12 | {positives[0]} | {positives[1]} | {positives[2]} |" in lines
    for k, name in enumerate(MultiLabelSource.label_names):
        prevalence = [sum(row[k] for row in labels) / 12 for labels in (train, val)]
        assert f"| {name} | {prevalence[0]:.3f} | {prevalence[1]:.3f} |" in lines
    no_finding = sum(1 for row in train if not row.any())
    distinct = len({tuple(row) for row in train})
    assert f"- Images with no positive finding: {no_finding}" in lines
    assert f"- Distinct label vectors: {distinct}" in lines
    assert "Positive findings per image" in text


def test_analyze_data_script(tmp_path):
    root = tmp_path / "phantom"
    write_phantom_chest_xrays(root, 12, seed=2, size_range=(16, 24),
                              split_fractions=(0.5, 0.25, 0.25))
    result = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "analyze_data.py"), f"--data_root={root}",
         "--layout=kaggle_pneumonia", f"--workdir={tmp_path / 'eda'}"],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "eda" / "data_summary.md").read_text().splitlines()
    for row in _count_rows(_kaggle_files(root)):
        assert row in lines
    with Image.open(tmp_path / "eda" / "label_counts.png") as image:
        assert image.format == "PNG"
