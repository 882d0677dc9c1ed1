"""The CheXpert notebook's run comparison: multi-label arms (e.g. DenseNet-121 versus
ResNet-18) over seeds, per-label validation AUC side by side, one run chosen on
validation and tested once.

Each arm's config is the study's base edited by `study.arms.ARM`; every (arm, seed)
trains with `train_and_evaluate` in `WORKDIR/runs/ARM/seed_N`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxcx import plots
from jaxcx.config import ConfigDict, with_overrides
from jaxcx.data.registry import DataBundle, DataCache
from jaxcx.models import build_model, summary
from jaxcx.run import run_config
from jaxcx.studies.common import (Clock, Log, Reproducer, Run, evaluate_once, mean_std,
                                  run_arms, select_on_validation)
from jaxcx.studies.compare import compare_runs


@dataclasses.dataclass
class ChestStudyResult:
    runs: dict[str, list[Run]]
    selected: Run | None        # None when only training was asked for
    reason: str
    test: dict[str, Any] | None
    seconds: float


def arm_configs(config: ConfigDict) -> dict[str, ConfigDict]:
    """Each arm's run config: the base with the arm's changes."""
    base = run_config(config)
    return {name: with_overrides(base, changes.to_dict())
            for name, changes in config.study.arms.items()}


def run_study(config: ConfigDict, workdir: str | Path, *, spec: str | None = None,
              train_only: bool = False, log: Log = print) -> ChestStudyResult:
    """Trains every arm at every seed, then (unless `train_only`) selects one run on
    validation, tests it once and writes `WORKDIR/report.md`."""
    workdir = Path(workdir)
    clock = Clock(workdir)
    arms = arm_configs(config)
    cache = DataCache()
    runs = run_arms(arms, config.study.seeds, workdir, data=cache,
                    reproducer=Reproducer(spec), log=log)
    if train_only:
        return ChestStudyResult(runs, None, "", None, clock.seconds())
    metric = config.train.best_metric
    selected, reason = select_on_validation(workdir, runs, metric, tie_break="average_precision")
    test = evaluate_once(selected.result, data=cache, log=log)
    result = ChestStudyResult(runs, selected, reason, test, clock.seconds())
    write_report(config, workdir, result, cache(selected.result.config))
    return result


def positives(data: DataBundle, split: str) -> np.ndarray:
    """Positive count per label of a split (known labels only)."""
    source = getattr(data, split)
    labels = np.asarray(source.labels, np.float64)
    masks = getattr(source, "label_masks", None)
    return (labels * (1.0 if masks is None else np.asarray(masks))).sum(axis=0).astype(int)


def mean_auc(per_label: Mapping[str, float], counts: Mapping[str, int],
             min_positives: int) -> tuple[float, list[str]]:
    """Mean ROC AUC over the labels with at least `min_positives` positives (and a
    defined AUC), and those labels."""
    kept = [name for name, value in per_label.items()
            if counts[name] >= min_positives and np.isfinite(value)]
    return (float(np.mean([per_label[n] for n in kept])) if kept else float("nan")), kept


def validation_auc_table(runs: Mapping[str, Sequence[Run]], label_names: Sequence[str],
                         val_positives: Mapping[str, int], min_positives: int) -> list[str]:
    """Markdown: per-label validation ROC AUC, mean +- std over each arm's seeds, and the
    mean over labels with enough positives."""
    arms = list(runs)
    lines = ["| label | val positives | " + " | ".join(arms) + " |",
             "|---|---:|" + "---:|" * len(arms)]
    for name in label_names:
        cells = []
        for arm in arms:
            values = [r.val.get(f"roc_auc/{name}", float("nan")) for r in runs[arm]]
            cells.append("n/a (one class)" if not np.isfinite(values).any() else
                         "{:.3f} +- {:.3f}".format(*mean_std(runs[arm], f"roc_auc/{name}")))
        lines.append(f"| {name} | {val_positives[name]} | " + " | ".join(cells) + " |")
    row = []
    for arm in arms:
        means = np.asarray([mean_auc({n: r.val.get(f"roc_auc/{n}", float("nan"))
                                      for n in label_names}, val_positives, min_positives)[0]
                            for r in runs[arm]])
        spread = means.std(ddof=1) if len(means) > 1 else 0.0
        row.append(f"**{means.mean():.3f} +- {spread:.3f}**" if np.isfinite(means).all()
                   else f"n/a (no label has {min_positives})")
    lines.append(f"| mean over labels with >= {min_positives} positives | | " + " | ".join(row) + " |")
    macro = [f"{m:.3f} +- {s:.3f}" for m, s in (mean_std(runs[arm], "roc_auc") for arm in arms)]
    lines.append("| macro mean over labels with both classes | | " + " | ".join(macro) + " |")
    return lines


def progression_figures(run: Run, label_names: Sequence[str], out_dir: Path,
                        title: str) -> list[tuple[Path, str]]:
    """The CheXpert notebook's epoch-progression plots: a validation metric per label per
    epoch, one figure per metric."""
    history = run.result.history
    figures = []
    for metric in ("roc_auc", "average_precision", "recall", "precision", "f1"):
        path = plots.epoch_progression(history, metric, label_names,
                                       out_dir / f"progression_{metric}.png",
                                       f"{title}: validation {metric} per label by epoch")
        if path is not None:
            figures.append((path, f"validation {metric} of each label after every epoch "
                                  "(threshold 0.5 for recall, precision and F1)"))
    return figures


def write_report(config: ConfigDict, workdir: Path, result: ChestStudyResult,
                 data: DataBundle) -> Path:
    """`report.md` with the data, the validation table, the selection, the test
    evaluation, the comparison of the arms and the figures."""
    label_names = list(data.class_names)
    min_positives = config.study.min_positives
    counts = {split: dict(zip(label_names, positives(data, split).tolist()))
              for split in ("train", "val", "test")}
    sizes = {"train": len(data.train), "val": len(data.val), "test": len(data.test)}
    distinct_train = len(getattr(data.train, "source", data.train))
    selected, test = result.selected, result.test
    point = test["operating_points"]["validation"]
    test_auc = {name: row["roc_auc"] for name, row in point["per_label"].items()}
    test_mean, test_kept = mean_auc(test_auc, counts["test"], min_positives)
    plot_dir = workdir / "plots"
    figures = progression_figures(selected, label_names, plot_dir,
                                  f"{config.name}, {selected.key}")
    figures += [(selected.result.workdir / "test" / name, caption) for name, caption in (
        ("test_roc_grid.png", "test ROC curve of each label, selected run"),
        ("test_pr_grid.png", "test precision-recall curve of each label, selected run"))
        if (selected.result.workdir / "test" / name).exists()]
    params = {arm: summary(build_model(runs[0].result.config.model),
                           (1, *data.input_shape)).total_params
              for arm, runs in result.runs.items()}
    comparison = compare_runs([runs[0].result.workdir for runs in result.runs.values()],
                              labels=list(result.runs))
    data_cfg = config.data
    lines = [
        f"# {config.name}: multi-label chest X-ray arms", "",
        f"Dataset `{data_cfg.name}`"
        + (f" from `{data_cfg.root}`" if data_cfg.get("root") else " (default location)")
        + f", {data_cfg.image_size} px, {data_cfg.channels} channel(s); "
        f"{sizes['train']} training records ({distinct_train} distinct images"
        + (f", oversampled to {sizes['train']}" if sizes["train"] != distinct_train else "")
        + f"), {sizes['val']} validation, {sizes['test']} test.", "",
        *dataset_caveats(data_cfg), "",
        "## Positives per label", "",
        "| label | train | val | test |", "|---|---:|---:|---:|",
        *[f"| {n} | {counts['train'][n]} | {counts['val'][n]} | {counts['test'][n]} |"
          for n in label_names], "",
        "## Validation ROC AUC per label (mean +- std over seeds)", "",
        f"Seeds {', '.join(map(str, config.study.seeds))}; each run's best epoch by "
        f"`{config.train.best_metric}`. A label with one class in validation has no AUC.", "",
        *validation_auc_table(result.runs, label_names, counts["val"], min_positives), "",
        "Parameters: " + ", ".join(f"{arm} {count:,}" for arm, count in params.items()) + ".",
        "", "## Selection and the test evaluation", "",
        result.reason, "",
        f"Test split, used once (evaluations so far: {test.get('evaluations', 1)}), run "
        f"`{selected.key}`, thresholds chosen per label on validation "
        f"(`eval.threshold={config.eval.threshold}`). " + (
            f"Mean test ROC AUC over the {len(test_kept)} label(s) with >= {min_positives} "
            f"test positives ({', '.join(test_kept)}): **{test_mean:.3f}**." if test_kept else
            f"No label has {min_positives} test positives, so there is no mean test AUC."),
        "", *test_table(point, counts["test"]), "",
        f"Its full test section, with bootstrap intervals, is in "
        f"[{selected.key}/report.md](runs/{selected.key}/report.md).", "",
        "## The arms side by side (seed " + str(config.study.seeds[0]) + ")", "",
        comparison.parameters, "", comparison.metrics, "",
        "## Figures", "",
    ]
    for number, (path, caption) in enumerate(figures, start=1):
        link = path.relative_to(workdir).as_posix()
        lines += [f"![{caption}]({link})", "", f"Figure {number}: {caption}.", ""]
    lines += ["## Reproduce", "",
              *[f"- `{run.key}`: `{run.command}`" for runs in result.runs.values() for run in runs],
              "", "Training time of each run (its last training call; a resumed run counts "
              "only the part after the restart): " + ", ".join(
                  f"{run.key} {run.result.train_seconds / 60:.1f} min"
                  for runs in result.runs.values() for run in runs)
              + f". Wall time of the study's own process(es), as timed in `timing.json`: "
              f"{result.seconds / 60:.1f} min.", ""]
    path = workdir / "report.md"
    path.write_text("\n".join(lines))
    return path


def test_table(point: Mapping[str, Any], test_positives: Mapping[str, int]) -> list[str]:
    """Markdown: the selected run's test metrics per label at the validation thresholds."""
    keys = ("threshold", "tp", "predicted_positives", "recall", "precision", "f1", "roc_auc",
            "average_precision")
    lines = ["| label | positives | " + " | ".join(keys) + " |", "|---|" + "---:|" * (len(keys) + 1)]
    for (name, row), threshold in zip(point["per_label"].items(), point["thresholds"]):
        values = {**row, "threshold": threshold}
        cells = [f"{values[k]:.0f}" if k in ("tp", "predicted_positives") else
                 "n/a" if not np.isfinite(values[k]) else f"{values[k]:.3f}" for k in keys]
        lines.append(f"| {name} | {test_positives[name]} | " + " | ".join(cells) + " |")
    return lines


def dataset_caveats(data_cfg: ConfigDict) -> list[str]:
    """What the reader must know about the data before reading the numbers."""
    if data_cfg.name == "nih_chestxray14" and not data_cfg.get("root"):
        return ["The shared NIH ChestX-ray14 sample is small and biased: 1,000 images picked "
                "as 500 `No Finding` + 500 `Pneumonia`, so Pneumonia has a prevalence of 50% "
                "(1.3% in all of ChestX-ray14) and every other finding occurs only beside "
                "Pneumonia. A model can score well on the other labels by detecting "
                "Pneumonia; labels with few positives have wide, unstable AUCs. These numbers "
                "say the pipeline learns, not how a model does on ChestX-ray14."]
    if data_cfg.name == "chexpert" and not data_cfg.get("csv"):
        return ["Generated CheXpert-format phantoms (a pipeline check, not CheXpert)."]
    return []
