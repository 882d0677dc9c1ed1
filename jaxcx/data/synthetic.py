"""Synthetic datasets written in the real on-disk formats, for tests and the built-in demo.

Everything is deterministic given `seed` (each item draws from its own generator, so an
item does not depend on how many came before it).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from jaxcx.data.chexpert import CHEXPERT_FINDINGS, REQUIRED_COLUMNS
from jaxcx.data.folder import COVID_QU_EX_CLASSES, KAGGLE_PNEUMONIA_CLASSES, LabelledFile
from jaxcx.data.idx import MNIST_FILES, write_idx

Layout = Literal["kaggle", "covid"]
KAGGLE_SPLITS = ("train", "val", "test")
COVID_SPLITS = ("Train", "Val", "Test")
COVID_FILE_PREFIX = {"COVID-19": "covid_", "Non-COVID": "non_COVID (", "Normal": "Normal ("}


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Column u and row v coordinates in [-1, 1] (open grids, broadcast on use)."""
    v = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    u = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    return u, v


def _soft_ellipse(u, v, cu, cv, ru, rv, edge=0.08) -> np.ndarray:
    r = np.sqrt(((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2)
    return np.clip((1 - r) / edge, 0, 1)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int = 6) -> np.ndarray:
    """Blotchy low-frequency texture in [0, 1]."""
    coarse = (rng.random((cells, cells)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR), np.float32) / 255


def _blobs(rng, u, v, lungs_centres, count, amplitude, sigma) -> np.ndarray:
    """Sum of Gaussian opacities placed inside the lungs."""
    out = np.zeros(np.broadcast_shapes(u.shape, v.shape), np.float32)
    for _ in range(count):
        cu, cv, ru, rv = lungs_centres[rng.integers(len(lungs_centres))]
        bu = cu + rng.uniform(-0.6, 0.6) * ru
        bv = cv + rng.uniform(-0.6, 0.6) * rv
        s = rng.uniform(*sigma)
        out += rng.uniform(*amplitude) * np.exp(-((u - bu) ** 2 + (v - bv) ** 2) / (2 * s * s))
    return out


def phantom_chest_xray(
    rng: np.random.Generator, height: int, width: int, finding: str = "normal"
) -> tuple[np.ndarray, np.ndarray]:
    """One phantom frontal chest X-ray as float32 [H, W] in [0, 1] and its lung mask (bool).

    Dark lungs in a brighter body with spine, heart shadow and ribs; `finding`
    'pneumonia' adds bright blotchy opacities in the lungs, 'covid' a hazy peripheral
    lower-zone opacity, 'cardiomegaly' a larger heart, 'normal' nothing.
    """
    u, v = _grid(height, width)
    side = rng.uniform(0.34, 0.42)
    lungs = [
        (-side + rng.normal(0, 0.02), -0.08 + rng.normal(0, 0.03), rng.uniform(0.24, 0.3), rng.uniform(0.5, 0.6)),
        (side + rng.normal(0, 0.02), -0.08 + rng.normal(0, 0.03), rng.uniform(0.22, 0.28), rng.uniform(0.48, 0.58)),
    ]
    body = _soft_ellipse(u, v, 0, 0.15, rng.uniform(0.8, 0.92), 1.05, edge=0.06)
    lung_soft = np.maximum(*(_soft_ellipse(u, v, *lung) for lung in lungs))
    heart_size = 0.32 if finding == "cardiomegaly" else 0.22
    heart = _soft_ellipse(u, v, 0.08, 0.32, heart_size + rng.uniform(-0.02, 0.02), 0.2, edge=0.2)
    spine = np.clip(1 - np.abs(u) / 0.07, 0, 1)
    ribs = np.cos(np.pi * (v * rng.uniform(5.5, 7) + 1.2 * u**2 + rng.uniform(0, 1))) ** 8
    image = 0.06 + 0.55 * body + 0.12 * spine * body
    image = image - 0.38 * lung_soft + 0.1 * ribs * lung_soft + 0.3 * heart * lung_soft
    if finding in ("pneumonia", "covid"):
        texture = 0.4 + 0.6 * _smooth_noise(rng, height, width)
        if finding == "pneumonia":
            opacity = _blobs(rng, u, v, lungs, rng.integers(2, 6), (0.2, 0.4), (0.06, 0.14))
        else:
            peripheral = np.clip(np.abs(u) - 0.25, 0, 1) * 2.5 * np.clip(v + 0.1, 0, 1)
            opacity = 0.5 * peripheral
        image = image + np.minimum(opacity, 0.45) * texture * lung_soft
    contrast = rng.uniform(0.85, 1.15)
    image = (image - 0.3) * contrast + 0.3 + rng.uniform(-0.05, 0.05)
    image = image + rng.normal(0, 0.015, image.shape).astype(np.float32)
    return np.clip(image, 0, 1).astype(np.float32), lung_soft > 0.5


def _random_size(rng: np.random.Generator, size_range: tuple[int, int]) -> tuple[int, int]:
    low, high = size_range
    height = int(rng.integers(low, high + 1))
    width = int(np.clip(height * rng.uniform(0.8, 1.25), low, high))
    return height, width


def _save(path: Path, image: np.ndarray, kind: str, jpeg_quality: int) -> None:
    """Writes gray 8-bit (kind 'gray'), 3-channel 8-bit ('rgb') or 16-bit PNG ('gray16')."""
    if kind == "gray16":
        Image.fromarray((image * 65535).round().astype(np.uint16)).save(path)
        return
    pixels = Image.fromarray((image * 255).round().astype(np.uint8))
    if kind == "rgb":
        pixels = pixels.convert("RGB")
    if path.suffix.lower() in (".jpeg", ".jpg"):
        pixels.save(path, quality=jpeg_quality)
    else:
        pixels.save(path)


def _split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    cuts = [int(n * sum(fractions[: i + 1])) for i in range(len(fractions) - 1)]
    edges = [0, *cuts, n]
    return [b - a for a, b in zip(edges, edges[1:])]


def write_phantom_chest_xrays(
    root: str | Path,
    n: int = 200,
    *,
    seed: int = 0,
    layout: Layout = "kaggle",
    size_range: tuple[int, int] = (300, 2000),
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    class_fractions: Sequence[float] | None = None,
    rgb_fraction: float = 0.03,
    png16_fraction: float = 0.03,
    masks: bool = False,
    jpeg_quality: int = 90,
) -> dict[str, list[LabelledFile]]:
    """Writes `n` phantom chest X-rays in the Kaggle or COVID-QU-Ex folder layout.

    kaggle: `{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg`, about 27/73 normal/pneumonia
    (a `rgb_fraction` of 3-channel JPEGs and a `png16_fraction` of 16-bit `.png` files);
    covid: `{Train,Val,Test}/{COVID-19,Non-COVID,Normal}/images/*.png`, equal thirds, with
    `lung masks/` beside `images/` when `masks`. Image sides are drawn from `size_range`.
    Each class is split by `split_fractions`. Returns {split: [(path, label)]}.
    """
    if layout == "kaggle":
        class_map, splits = KAGGLE_PNEUMONIA_CLASSES, KAGGLE_SPLITS
        findings = {"NORMAL": "normal", "PNEUMONIA": "pneumonia"}
        class_fractions = class_fractions or (0.27, 0.73)
    elif layout == "covid":
        class_map, splits = COVID_QU_EX_CLASSES, COVID_SPLITS
        findings = {"COVID-19": "covid", "Non-COVID": "pneumonia", "Normal": "normal"}
        class_fractions = class_fractions or (1 / 3, 1 / 3, 1 / 3)
    else:
        raise ValueError(f"layout must be 'kaggle' or 'covid', got {layout!r}")
    if masks and layout != "covid":
        raise ValueError("lung masks are written in the covid layout only")
    if len(class_fractions) != len(class_map) or len(split_fractions) != len(splits):
        raise ValueError(f"need {len(class_map)} class_fractions and {len(splits)} split_fractions")
    root = Path(root)
    written: dict[str, list[LabelledFile]] = {split: [] for split in splits}
    item = 0
    for cls, class_count in zip(class_map, _split_counts(n, class_fractions)):
        label = class_map[cls]
        number = 0
        for split, count in zip(splits, _split_counts(class_count, split_fractions)):
            folder = root / split / cls / ("images" if layout == "covid" else "")
            if count:  # an empty class folder is a data error
                folder.mkdir(parents=True, exist_ok=True)
            for _ in range(count):
                rng = np.random.default_rng([seed, item])
                item, number = item + 1, number + 1
                kind = "gray"
                if layout == "kaggle":
                    draw = rng.random()
                    kind = "gray16" if draw < png16_fraction else "rgb" if draw < png16_fraction + rgb_fraction else "gray"
                height, width = _random_size(rng, size_range)
                image, lung_mask = phantom_chest_xray(rng, height, width, findings[cls])
                name = _file_name(layout, cls, number, rng, png=kind == "gray16")
                path = folder / name
                _save(path, image, kind, jpeg_quality)
                if masks:
                    mask_dir = root / split / cls / "lung masks"
                    mask_dir.mkdir(exist_ok=True)
                    Image.fromarray(lung_mask.astype(np.uint8) * 255).save(mask_dir / name)
                written[split].append((str(path), label))
    return written


def write_covid_radiography_like(root: str | Path, per_class: int = 40, *,
                                 seed: int = 0) -> dict[str, list[str]]:
    """Writes the shared COVID data's layout with phantoms: `radiography/COVID/COVID-N.jpg`
    and `radiography/Normal/Normal-N.jpg` (224 px 8-bit JPEG, quality 90) and
    `viral/images/Viral Pneumonia-N.png` (256 px PNG, as the lung-segmentation folder),
    `per_class` each; the last viral image is a byte-identical copy of the first (as in
    the real folder). Returns {class: paths}."""
    root = Path(root)
    kinds = {"COVID": ("covid", 224, ".jpg"), "Normal": ("normal", 224, ".jpg"),
             "Viral Pneumonia": ("pneumonia", 256, ".png")}
    written: dict[str, list[str]] = {}
    for offset, (cls, (finding, size, suffix)) in enumerate(kinds.items()):
        folder = root / ("viral/images" if cls == "Viral Pneumonia" else f"radiography/{cls}")
        folder.mkdir(parents=True, exist_ok=True)
        written[cls] = []
        for number in range(1, per_class + 1):
            path = folder / f"{cls}-{number}{suffix}"
            if cls == "Viral Pneumonia" and number == per_class > 1:
                path.write_bytes(Path(written[cls][0]).read_bytes())
            else:
                image, _ = phantom_chest_xray(np.random.default_rng([seed, offset, number]),
                                              size, size, finding)
                _save(path, image, "gray", jpeg_quality=90)
            written[cls].append(str(path))
    return written


def _file_name(layout: Layout, cls: str, number: int, rng: np.random.Generator, png: bool) -> str:
    if layout == "covid":
        prefix = COVID_FILE_PREFIX[cls]
        return f"{prefix}{number}{')' if prefix.endswith('(') else ''}.png"
    extension = "png" if png else "jpeg"
    if cls == "NORMAL":
        return f"IM-{number:04d}-0001.{extension}"
    return f"person{number}_{'bacteria' if rng.random() < 0.65 else 'virus'}_{number + 1000}.{extension}"


def write_chexpert_like(
    root: str | Path,
    n_patients: int = 20,
    *,
    seed: int = 0,
    max_studies: int = 6,
    image_size: int = 48,
    positive_rate: float = 0.15,
    uncertain_rate: float = 0.08,
    blank_rate: float = 0.55,
    lateral_rate: float = 0.3,
) -> Path:
    """Writes `root/CheXpert-v1.0-small/train.csv` plus small JPEGs at the CSV's paths.

    Rows are views of studies of patients, findings valued 1.0/0.0/-1.0/blank; images
    show a bigger heart for Cardiomegaly and opacities for Lung Opacity/Pneumonia/
    Consolidation. Returns the CSV path.
    """
    base = Path(root) / "CheXpert-v1.0-small"
    lines = []
    for patient in range(1, n_patients + 1):
        rng = np.random.default_rng([seed, patient])
        sex = str(rng.choice(["Male", "Female", "Unknown"], p=[0.5, 0.48, 0.02]))
        age = int(rng.integers(18, 90))
        for study in range(1, int(rng.integers(1, max_studies + 1)) + 1):
            views = ["frontal"] + (["lateral"] if rng.random() < lateral_rate else [])
            draw = rng.random(len(CHEXPERT_FINDINGS))
            values = np.where(
                draw < positive_rate, "1.0",
                np.where(draw < positive_rate + uncertain_rate, "-1.0",
                         np.where(draw < 1 - blank_rate, "0.0", "")),
            )
            finding = dict(zip(CHEXPERT_FINDINGS, values))
            drawn = "cardiomegaly" if finding["Cardiomegaly"] == "1.0" else "normal"
            if any(finding[f] == "1.0" for f in ("Lung Opacity", "Pneumonia", "Consolidation")):
                drawn = "pneumonia"
            for view_number, view in enumerate(views, start=1):
                rel = f"CheXpert-v1.0-small/train/patient{patient:05d}/study{study}/view{view_number}_{view}.jpg"
                image, _ = phantom_chest_xray(rng, image_size, image_size, drawn)
                path = Path(root) / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                _save(path, image, "gray", 90)
                projection = str(rng.choice(["AP", "PA"])) if view == "frontal" else "LL"
                lines.append([rel, sex, str(age), view.capitalize(), projection, *values])
    base.mkdir(parents=True, exist_ok=True)
    csv_path = base / "train.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(REQUIRED_COLUMNS)
        writer.writerows(lines)
    return csv_path


def _class_pattern(label_rng: np.random.Generator, size: int) -> np.ndarray:
    """A fixed smooth random pattern in [0, 1] for one class or label."""
    coarse = label_rng.random((5, 5)).astype(np.float32)
    return np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((size, size), Image.BICUBIC), np.float32) / 255


def _pattern_images(
    rng: np.random.Generator, patterns: np.ndarray, weights: np.ndarray, noise: float
) -> np.ndarray:
    """uint8 images: weighted means of class patterns [K, H, W(, C)] plus Gaussian noise; weights [N, K]."""
    mix = np.tensordot(weights / weights.sum(axis=1, keepdims=True), patterns, axes=1)
    mix = mix + noise * rng.standard_normal(mix.shape)
    return (np.clip(mix, 0, 1) * 255).astype(np.uint8)


def write_medmnist_like(
    path: str | Path,
    *,
    sizes: tuple[int, int, int] = (200, 50, 50),
    image_size: int = 28,
    channels: int = 1,
    task: Literal["binary", "multiclass", "multilabel"] = "multiclass",
    num_classes: int = 4,
    noise: float = 0.15,
    seed: int = 0,
) -> Path:
    """Writes a MedMNIST-style `.npz` (`{train,val,test}_{images,labels}`).

    Images are noisy mixtures of one fixed pattern per class (multi-label: of each
    positive label), so a small model can learn them. Labels: (N, 1) int for
    binary/multiclass, (N, num_classes) 0/1 for multilabel.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    num_classes = 2 if task == "binary" else num_classes
    rng = np.random.default_rng(seed)
    patterns = np.stack([_class_pattern(np.random.default_rng([seed, 1000 + k]), image_size) for k in range(num_classes)])
    if channels == 3:
        tints = rng.uniform(0.5, 1.0, (num_classes, 1, 1, 3)).astype(np.float32)
        patterns = patterns[..., None] * tints
    arrays = {}
    for split, n in zip(("train", "val", "test"), sizes):
        if task == "multilabel":
            labels = (rng.random((n, num_classes)) < 0.35).astype(np.uint8)
            weights = labels.astype(np.float32) + 0.05
        else:
            classes = rng.integers(0, num_classes, n)
            labels = classes[:, None].astype(np.uint8)
            weights = np.eye(num_classes, dtype=np.float32)[classes]
        arrays[f"{split}_images"] = _pattern_images(rng, patterns, weights, noise)
        arrays[f"{split}_labels"] = labels
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def write_mnist_like_idx(
    root: str | Path,
    *,
    n_train: int = 600,
    n_test: int = 100,
    num_classes: int = 10,
    noise: float = 0.15,
    seed: int = 0,
    gz: bool = True,
) -> dict[str, Path]:
    """Writes the four MNIST IDX files (28x28 uint8, labels 0..num_classes-1) into `root`."""
    rng = np.random.default_rng(seed)
    patterns = np.stack([_class_pattern(np.random.default_rng([seed, k]), 28) for k in range(num_classes)])
    written = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, num_classes, n).astype(np.uint8)
        images = _pattern_images(rng, patterns, np.eye(num_classes, dtype=np.float32)[labels], noise)
        for stem, array in zip(MNIST_FILES[split], (images, labels)):
            written[stem] = write_idx(Path(root) / (stem + (".gz" if gz else "")), array)
    return written
