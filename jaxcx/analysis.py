"""Exploratory data analysis of image-classification splits, as the pneumonia notebook's
Q1 and the CheXpert notebook's EDA do it.

`analyze(splits, out_dir, ...)` writes PNG figures and `data_summary.md`: label counts per
split; per-class histograms of height, width, aspect ratio, channels and min/max
intensity; a 5x5 grid of samples with class names (as the COVID notebook); the smallest,
largest, darkest and brightest images; the count of 3-channel images; and for multi-label
data the per-label prevalence, the label co-occurrence matrix and the positive findings
per image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jaxcx import plots
from jaxcx.data.errors import BadInputLog
from jaxcx.tracking import progress_bar
from jaxcx.data.sampling import source_labels

PROPERTIES = ("height", "width", "aspect_ratio", "channels", "min_value", "max_value")
GRID_SIZE = 5


@dataclasses.dataclass
class ImageStats:
    """Per-image facts of one split (aspect ratio = width / height, as the pneumonia notebook)."""

    ids: list[str]
    indices: np.ndarray
    height: np.ndarray
    width: np.ndarray
    channels: np.ndarray
    min_value: np.ndarray
    max_value: np.ndarray
    mean_value: np.ndarray

    @property
    def aspect_ratio(self) -> np.ndarray:
        return self.width / self.height

    def property(self, name: str) -> np.ndarray:
        return getattr(self, name)


def record_image(record: Mapping) -> np.ndarray:
    """The image as stored: decoded from 'path' when the record has one (a source may hold
    resized copies), else the record's 'image'."""
    if record.get("path"):
        from jaxcx.data.imageio import decode_image  # pylint: disable=import-outside-toplevel

        image = decode_image(record["path"])
    else:
        image = record["image"]
    image = np.asarray(image)
    return image[:, :, None] if image.ndim == 2 else image


def collect_image_stats(source, *, max_images: int | None = None, seed: int = 0,
                        description: str = "images") -> ImageStats:
    """Decodes every image (or a seeded sample of `max_images`) once and records its facts."""
    indices = np.arange(len(source))
    if max_images is not None and max_images < len(source):
        indices = np.sort(np.random.default_rng(seed).choice(indices, max_images, replace=False))
    columns: dict[str, list] = {key: [] for key in
                                ("ids", "height", "width", "channels", "min", "max", "mean")}
    for index in progress_bar(indices, desc=description, unit="img", leave=False):
        record = source[int(index)]
        image = record_image(record)
        columns["ids"].append(str(record.get("id", index)))
        columns["height"].append(image.shape[0])
        columns["width"].append(image.shape[1])
        columns["channels"].append(image.shape[2])
        columns["min"].append(float(image.min()))
        columns["max"].append(float(image.max()))
        columns["mean"].append(float(image.mean()))
    return ImageStats(
        ids=columns["ids"], indices=indices,
        height=np.asarray(columns["height"], np.float64),
        width=np.asarray(columns["width"], np.float64),
        channels=np.asarray(columns["channels"], np.int64),
        min_value=np.asarray(columns["min"]), max_value=np.asarray(columns["max"]),
        mean_value=np.asarray(columns["mean"]),
    )


def label_count_table(split_labels: Mapping[str, np.ndarray], names: Sequence[str],
                      multilabel: bool) -> dict[str, np.ndarray]:
    """Per split: examples per class, or positives per label for [N, L] labels."""
    if multilabel:
        return {split: labels.sum(axis=0).astype(np.int64)
                for split, labels in split_labels.items()}
    return {split: np.bincount(labels.astype(np.int64), minlength=len(names))
            for split, labels in split_labels.items()}


def plot_label_counts(counts: Mapping[str, np.ndarray], names: Sequence[str], path: Path,
                      title: str, ylabel: str) -> Path:
    """Stacked bars of counts per class (or label), one colour per split."""
    fig = plots.new_figure(max(5.0, 0.6 * len(names) + 2), 4)
    ax = fig.subplots()
    bottom = np.zeros(len(names))
    for split, values in counts.items():
        ax.bar(names, values, bottom=bottom, label=split)
        bottom = bottom + values
    ax.set_ylabel(ylabel)
    ax.set_xlabel("class" if "example" in ylabel else "label")
    ax.tick_params(axis="x", rotation=45 if len(names) > 4 else 0)
    ax.legend()
    return plots.save_figure(fig, path, title)


def plot_property_histograms(stats: ImageStats, groups: Mapping[str, np.ndarray], path: Path,
                             title: str) -> Path:
    """2x3 histograms of height, width, aspect ratio, channels, min and max, per group."""
    fig = plots.new_figure(13, 7)
    axes = fig.subplots(2, 3).ravel()
    for ax, name in zip(axes, PROPERTIES):
        values = stats.property(name)
        bins = np.histogram_bin_edges(values, bins=20)
        for group, member in groups.items():
            if member.any():
                ax.hist(values[member], bins=bins, alpha=0.5, label=group)
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel(name.replace("_", " "))
        ax.set_ylabel("images")
        ax.legend(fontsize=8)
    return plots.save_figure(fig, path, title)


def plot_prevalence(split_labels: Mapping[str, np.ndarray], names: Sequence[str], path: Path,
                    title: str) -> Path:
    """Fraction of positive images per label, one bar group per split."""
    fig = plots.new_figure(max(6.0, 0.7 * len(names) + 2), 4)
    ax = fig.subplots()
    width = 0.8 / max(len(split_labels), 1)
    positions = np.arange(len(names))
    for k, (split, labels) in enumerate(split_labels.items()):
        ax.bar(positions + k * width, labels.mean(axis=0), width=width, label=split)
    ax.set_xticks(positions + width * (len(split_labels) - 1) / 2, names, rotation=45, ha="right")
    ax.set_ylabel("prevalence (fraction positive)")
    ax.set_xlabel("label")
    ax.legend()
    return plots.save_figure(fig, path, title)


def cooccurrence(labels: np.ndarray) -> np.ndarray:
    """[L, L] counts of images positive for both labels (diagonal: positives per label)."""
    positive = (np.asarray(labels) > 0.5).astype(np.int64)
    return positive.T @ positive


def plot_cooccurrence(matrix: np.ndarray, names: Sequence[str], path: Path, title: str) -> Path:
    """Heatmap of label co-occurrence counts with the counts written in the cells."""
    fig = plots.new_figure(0.6 * len(names) + 3, 0.6 * len(names) + 2.5)
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="viridis")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, col), value in np.ndenumerate(matrix):
        ax.text(col, row, str(value), ha="center", va="center", fontsize=7,
                color="black" if value > threshold else "white")
    ax.set_xlabel("label")
    ax.set_ylabel("label")
    fig.colorbar(image, ax=ax, label="images positive for both")
    return plots.save_figure(fig, path, title)


def plot_positive_findings(labels: np.ndarray, path: Path, title: str) -> Path:
    """Histogram of the number of positive labels per image (as the CheXpert notebook)."""
    findings = (np.asarray(labels) > 0.5).sum(axis=1)
    fig = plots.new_figure(6, 4)
    ax = fig.subplots()
    ax.hist(findings, bins=np.arange(findings.max() + 2) - 0.5, rwidth=0.9)
    ax.set_xlabel("number of positive findings")
    ax.set_ylabel("images")
    return plots.save_figure(fig, path, title)


def _label_title(label, names: Sequence[str], multilabel: bool) -> str:
    if not multilabel:
        return names[int(label)]
    positives = [names[k] for k in np.flatnonzero(np.asarray(label) > 0.5)]
    return ", ".join(positives)[:40] or "no finding"


def _extremes(stats: ImageStats) -> list[tuple[str, int]]:
    """(caption, position in stats) of the smallest, largest, darkest and brightest images."""
    area = stats.height * stats.width
    return [
        ("smallest", int(np.argmin(area))),
        ("largest", int(np.argmax(area))),
        ("darkest", int(np.argmin(stats.mean_value))),
        ("brightest", int(np.argmax(stats.mean_value))),
    ]


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines + [""]


def _describe(values: np.ndarray) -> str:
    return (f"{values.min():.4g} / {np.median(values):.4g} / {values.max():.4g} "
            f"(mean {values.mean():.4g}, std {values.std():.4g})")


def analyze(
    splits: Mapping[str, object],
    out_dir: str | Path,
    *,
    class_names: Sequence[str] | None = None,
    multilabel: bool | None = None,
    dataset_name: str = "dataset",
    stats_split: str | None = None,
    max_images: int | None = None,
    seed: int = 0,
    bad_inputs: BadInputLog | None = None,
) -> Path:
    """Writes the figures and `data_summary.md` for `splits` ({name: source}) into `out_dir`.

    Image properties, samples and extremes come from `stats_split` (default: the first
    split), at most `max_images` of them (seeded sample). Names default to the source's
    `class_names`/`label_names`; `multilabel` defaults to labels being [N, L] vectors.
    The inputs left out (`bad_inputs`: skipped and ignored files) are listed in a section.
    Returns the path of `data_summary.md`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    split_labels = {name: source_labels(source) for name, source in splits.items()}
    stats_split = stats_split or next(iter(splits))
    source = splits[stats_split]
    first_labels = split_labels[stats_split]
    if multilabel is None:
        multilabel = first_labels.ndim == 2
    if class_names is None:
        class_names = (getattr(source, "label_names", None)
                       or getattr(source, "class_names", None))
    if class_names is None:
        count = first_labels.shape[1] if multilabel else int(
            max(labels.max() for labels in split_labels.values())) + 1
        class_names = [str(k) for k in range(count)]
    class_names = list(class_names)
    title = dataset_name
    figures: dict[str, Path] = {}
    lines = [f"# Data summary: {dataset_name}", ""]

    counts = label_count_table(split_labels, class_names, multilabel)
    unit = "positive images" if multilabel else "examples"
    figures["label counts"] = plot_label_counts(
        counts, class_names, out_dir / "label_counts.png",
        f"{title}: {'positives per label' if multilabel else 'label counts'} per split",
        ylabel=f"number of {unit}")
    lines += [f"## Label counts ({unit})", ""]
    lines += _markdown_table(
        ["split", "size", *class_names],
        [[split, len(split_labels[split]), *values.tolist()] for split, values in counts.items()])
    if not multilabel:
        lines += [f"Class fractions per split (in {', '.join(class_names)} order):", ""]
        lines += [f"- {split}: " + ", ".join(f"{v / max(values.sum(), 1):.2%}" for v in values)
                  for split, values in counts.items()]
        lines.append("")

    if multilabel:
        figures["prevalence"] = plot_prevalence(
            split_labels, class_names, out_dir / "label_prevalence.png",
            f"{title}: label prevalence per split")
        matrix = cooccurrence(first_labels)
        figures["co-occurrence"] = plot_cooccurrence(
            matrix, class_names, out_dir / "label_cooccurrence.png",
            f"{title}: label co-occurrence ({stats_split})")
        figures["positive findings"] = plot_positive_findings(
            first_labels, out_dir / "positive_findings.png",
            f"{title}: positive findings per image ({stats_split})")
        findings = (first_labels > 0.5).sum(axis=1)
        lines += ["## Multi-label structure", ""]
        lines += _markdown_table(["label", *[f"prevalence {s}" for s in split_labels]],
                                 [[name, *[f"{labels[:, k].mean():.3f}"
                                           for labels in split_labels.values()]]
                                  for k, name in enumerate(class_names)])
        distinct = len(np.unique(first_labels > 0.5, axis=0))
        lines += [f"- Positive findings per image ({stats_split}): "
                  f"{_describe(findings.astype(np.float64))}",
                  f"- Images with no positive finding: {int((findings == 0).sum())}",
                  f"- Distinct label vectors: {distinct}", ""]

    stats = collect_image_stats(source, max_images=max_images, seed=seed,
                                description=f"{stats_split} images")
    labels_of_stats = first_labels[stats.indices]
    if multilabel:
        any_positive = (labels_of_stats > 0.5).any(axis=1)
        groups = {"no finding": ~any_positive, "any finding": any_positive}
    else:
        groups = {name: labels_of_stats == k for k, name in enumerate(class_names)}
    figures["image properties"] = plot_property_histograms(
        stats, groups, out_dir / "image_properties.png",
        f"{title}: image properties by class ({stats_split}, {len(stats.ids)} images)")
    lines += [f"## Image properties ({stats_split}, {len(stats.ids)} images)", "",
              "min / median / max (mean, std):", ""]
    lines += _markdown_table(
        ["group", "images", *PROPERTIES],
        [[group, int(member.sum()), *[_describe(stats.property(p)[member]) for p in PROPERTIES]]
         for group, member in groups.items() if member.any()])
    three_channel = int((stats.channels == 3).sum())
    lines += [f"- 3-channel images: {three_channel} of {len(stats.ids)}",
              "- Channel counts: " + ", ".join(
                  f"{c}: {n}" for c, n in zip(*np.unique(stats.channels, return_counts=True))),
              ""]

    sample_count = min(GRID_SIZE * GRID_SIZE, len(stats.ids))
    rng = np.random.default_rng(seed)
    sample_positions = np.sort(rng.choice(len(stats.ids), sample_count, replace=False))
    sample_images = [record_image(source[int(stats.indices[p])]) for p in sample_positions]
    sample_titles = [_label_title(labels_of_stats[p], class_names, multilabel)
                     for p in sample_positions]
    figures["samples"] = plots.image_grid(
        sample_images, sample_titles, out_dir / "samples_grid.png",
        f"{title}: {sample_count} random {stats_split} images", ncols=GRID_SIZE)

    extremes = _extremes(stats)
    extreme_images = [record_image(source[int(stats.indices[p])]) for _, p in extremes]
    extreme_titles = [
        f"{caption}: {_label_title(labels_of_stats[p], class_names, multilabel)}\n"
        f"{int(stats.height[p])}x{int(stats.width[p])}x{stats.channels[p]}, "
        f"mean {stats.mean_value[p]:.3g}"
        for caption, p in extremes
    ]
    figures["extremes"] = plots.image_grid(
        extreme_images, extreme_titles, out_dir / "extreme_images.png",
        f"{title}: extreme images ({stats_split})", ncols=len(extremes))
    lines += ["## Extreme images", ""]
    lines += _markdown_table(["which", "id", "size (HxWxC)", "mean intensity"], [
        [caption, stats.ids[p], f"{int(stats.height[p])}x{int(stats.width[p])}x"
         f"{stats.channels[p]}", f"{stats.mean_value[p]:.4g}"] for caption, p in extremes])

    if bad_inputs is not None and bad_inputs.count:
        lines += [f"## Inputs not used ({len(bad_inputs.bad())} bad and skipped, "
                  f"{len(bad_inputs.ignored())} ignored)", ""]
        lines += _markdown_table(["kind", "file or folder", "reason"],
                                 [[b.kind, f"`{b.item}`", b.reason] for b in bad_inputs.items])

    lines += ["## Figures", ""]
    lines += [f"- {name}: ![{name}]({path.name})" for name, path in figures.items()]
    summary = out_dir / "data_summary.md"
    summary.write_text("\n".join(lines) + "\n")
    return summary

