"""The COVID notebook: MLPs on 256x256 chest X-rays (COVID-19 vs Normal) with Keras'
metrics on train, validation and test, saved history, jittered-label scatter; beyond it a
3-class task, a small CNN and ResNet-18 on the same split, and a validation threshold.

Each arm of `study.arms` is the base config edited by its changes, trained at each seed
(`study.seeds`, or `study.arm_seeds.ARM`) in `WORKDIR/runs/ARM/seed_N`. Per arm, the seed
with the best validation loss is its representative: scored on train and validation from
its restored checkpoint and tested once. No choice is made on test.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxcx import metrics as metrics_lib
from jaxcx import plots
from jaxcx.config import ConfigDict, with_overrides
from jaxcx.data.registry import DataBundle, DataCache
from jaxcx.evaluation import get_evaluator
from jaxcx.evaluation.binary import metrics_at
from jaxcx.evaluation.multiclass import summary_metrics
from jaxcx.models import build_model, summary
from jaxcx.run import TEST_DIR, TEST_OUTPUTS_FILE, Outputs, run_config, split_outputs
from jaxcx.studies.common import (Clock, Log, Reproducer, Run, evaluate_once, mean_std,
                                  mean_std_table, run_arms)

HISTORY_FILE = "history.json"
KERAS_KEYS = ("loss", "tp", "fp", "tn", "fn", "accuracy", "precision", "recall", "auc")
LOW_CONFIDENCE = (0.3, 0.7)  # a positive probability in this band is an unsure prediction


@dataclasses.dataclass
class ArmResult:
    """One arm: its runs, the representative run and its scores on every split."""

    name: str
    runs: list[Run]
    chosen: Run
    train: Outputs
    train_loss: float
    test: dict[str, Any]          # the test record of `jaxcx.run.evaluate`
    test_outputs: Outputs
    history: dict[str, list[float]]


def arm_changes(arm: Mapping[str, Any]) -> dict[str, Any]:
    """An arm's nested changes as dotted fields; a `model` naming another model replaces
    the whole model section (its fields differ)."""
    changes = {}
    for section, fields in arm.items():
        if not isinstance(fields, Mapping) or (section == "model" and "name" in fields):
            changes[section] = fields
        else:
            changes.update({f"{section}.{key}": value for key, value in fields.items()})
    return changes


def arm_configs(config: ConfigDict) -> dict[str, ConfigDict]:
    """Each arm's run config: the base edited by the arm's changes."""
    base = run_config(config)
    return {name: with_overrides(base, arm_changes(changes.to_dict()))
            for name, changes in config.study.arms.items()}


def keras_history(history: Sequence[Mapping[str, float]]) -> dict[str, list[float]]:
    """Keras' `History.history` from metrics.jsonl evaluation rows: per epoch the training
    loss and accuracy (means over the epoch's steps) and the validation ones."""
    return {"loss": [row["train/loss"] for row in history],
            "accuracy": [row["train/accuracy"] for row in history],
            "val_loss": [row["val/loss"] for row in history],
            "val_accuracy": [row["val/accuracy"] for row in history]}


def save_history(run_dir: Path, history: Mapping[str, list[float]]) -> Path:
    """Writes the history as JSON beside the run's checkpoints (atomically)."""
    path = run_dir / HISTORY_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(history, indent=1) + "\n")
    tmp.replace(path)
    return path


def load_history(run_dir: Path) -> dict[str, list[float]]:
    return json.loads((run_dir / HISTORY_FILE).read_text())


def keras_metrics(scores: np.ndarray, labels: np.ndarray, loss: float,
                  threshold: float = 0.5) -> dict[str, float]:
    """The notebook's `fresh_metrics` of one split: loss, TP, FP, TN, FN, accuracy,
    precision, recall (positive: `score >= threshold`) and ROC AUC."""
    at = metrics_at(scores, labels, threshold)
    (tn, fp), (fn, tp) = at["confusion"]
    return {"loss": loss, "tp": tp, "fp": fp, "tn": tn, "fn": fn, "accuracy": at["accuracy"],
            "precision": at["precision"], "recall": at["sensitivity"],
            "auc": metrics_lib.probability_metrics(scores, labels)["roc_auc"]}


def run_study(config: ConfigDict, workdir: str | Path, *, spec: str | None = None,
              log: Log = print) -> dict[str, ArmResult]:
    """Trains every arm at its seeds, scores each arm's representative on train,
    validation and (once) test, and writes `WORKDIR/report.md`."""
    workdir = Path(workdir)
    clock = Clock(workdir)
    cache = DataCache()
    reproducer = Reproducer(spec)
    arms: dict[str, ArmResult] = {}
    for name, arm_config in arm_configs(config).items():
        seeds = config.study.arm_seeds.get(name, config.study.seeds)
        runs = run_arms({name: arm_config}, seeds, workdir, data=cache,
                        reproducer=reproducer, log=log)[name]
        for run in runs:
            save_history(run.result.workdir, keras_history(run.result.history))
        chosen = min(runs, key=lambda r: (r.val["loss"], r.seed))
        train, train_loss = split_outputs(chosen.result.workdir, "train", data=cache)
        test = evaluate_once(chosen.result, data=cache, log=log)
        test_outputs = Outputs.load(chosen.result.workdir / TEST_DIR / TEST_OUTPUTS_FILE)
        arms[name] = ArmResult(name, runs, chosen, train, train_loss, test, test_outputs,
                               load_history(chosen.result.workdir))
    write_report(config, workdir, arms, cache, clock.seconds())
    return arms


def split_table(arm: ArmResult) -> list[str]:
    """Markdown: Keras' metrics of a binary arm on train, validation and test at 0.5, and
    on test at the threshold chosen on validation."""
    val = arm.chosen.result.val
    threshold = arm.test["operating_points"]["validation"]["threshold"]
    rows = {
        "train": keras_metrics(metrics_lib.positive_scores(arm.train.probs), arm.train.labels,
                               arm.train_loss),
        "validation": keras_metrics(metrics_lib.positive_scores(val.probs), val.labels,
                                    arm.chosen.val["loss"]),
        "test": keras_metrics(metrics_lib.positive_scores(arm.test_outputs.probs),
                              arm.test_outputs.labels, arm.test["loss"]),
        f"test, validation threshold {threshold:.3f}": keras_metrics(
            metrics_lib.positive_scores(arm.test_outputs.probs), arm.test_outputs.labels,
            arm.test["loss"], threshold),
    }
    lines = ["| split | " + " | ".join(KERAS_KEYS) + " |", "|---|" + "---:|" * len(KERAS_KEYS)]
    for split, row in rows.items():
        cells = [f"{row[k]:.0f}" if k in ("tp", "fp", "tn", "fn") else f"{row[k]:.4f}"
                 for k in KERAS_KEYS]
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    return lines


def analysis(arm: ArmResult, class_names: Sequence[str]) -> list[str]:
    """Sentences drawn from a binary arm's test scores and metrics: which class is
    predicted with low confidence, where the validation threshold falls, how train and
    test compare."""
    scores = metrics_lib.positive_scores(arm.test_outputs.probs)
    labels = np.asarray(arm.test_outputs.labels, np.int64)
    low, high = LOW_CONFIDENCE
    unsure = {name: float(np.mean((scores[labels == k] > low) & (scores[labels == k] < high)))
              for k, name in enumerate(class_names)}
    median = {name: float(np.median(scores[labels == k])) for k, name in enumerate(class_names)}
    least = max(unsure, key=unsure.get)
    point = arm.test["operating_points"]
    threshold = point["validation"]["threshold"]
    at_half, at_val = point["0.5"], point["validation"]
    train_acc = keras_metrics(metrics_lib.positive_scores(arm.train.probs), arm.train.labels,
                              arm.train_loss)["accuracy"]
    gap = train_acc - at_half["accuracy"]
    lines = [
        f"- Confidence: {unsure[least]:.0%} of the test {least} images get a "
        f"{class_names[1]} probability between {low} and {high}, against "
        f"{unsure[_other(least, class_names)]:.0%} of the "
        f"{_other(least, class_names)} images; the median probability is "
        + ", ".join(f"{median[n]:.2f} for {n}" for n in class_names)
        + f". {least} is the class predicted with the lower confidence.",
        f"- Threshold: the validation-chosen threshold ({arm.test['threshold_rule']}) is "
        f"{threshold:.3f}, {'below' if threshold < 0.5 else 'above'} 0.5. At 0.5 the test "
        f"recall of {class_names[1]} is {at_half['sensitivity']:.3f} and its specificity "
        f"{at_half['specificity']:.3f}; at {threshold:.3f} they are "
        f"{at_val['sensitivity']:.3f} and {at_val['specificity']:.3f} (accuracy "
        f"{at_half['accuracy']:.3f} -> {at_val['accuracy']:.3f}).",
        f"- Generalisation: training accuracy {train_acc:.3f} against test "
        f"{at_half['accuracy']:.3f} at 0.5 (a gap of {gap:+.3f}); test ROC AUC "
        f"{at_half['roc_auc']:.3f}.",
    ]
    return lines


def _other(name: str, names: Sequence[str]) -> str:
    return next(n for n in names if n != name)


def high_frequency_energy(images: np.ndarray, labels: np.ndarray,
                          class_names: Sequence[str]) -> dict[str, float]:
    """Mean absolute 4-neighbour Laplacian of uint8 images per class (grey levels): a
    sharpness measure that differs between classes when their sources differ in
    resolution or compression."""
    x = images[..., 0].astype(np.float32)
    lap = np.abs(4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1]
                 - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]).mean(axis=(1, 2))
    return {name: float(lap[labels == k].mean()) for k, name in enumerate(class_names)}


def leak_check(config: ConfigDict, cache: DataCache) -> list[str]:
    """Markdown: per-class sharpness of the three-class training images with and without
    the common-source step, from the study's data config."""
    three = with_overrides(run_config(config), {"data.classes": "three"})
    plain = with_overrides(three, {"data.common_size": 0, "data.jpeg_quality": 0})
    rows = []
    for label, cfg in (("straight to the input size", plain),
                       (f"through {three.data.common_size} px and JPEG q"
                        f"{three.data.jpeg_quality} first", three)):
        data = cache(cfg)
        energy = high_frequency_energy(data.train.images, data.train.labels, data.class_names)
        rows.append(f"| {label} | " + " | ".join(f"{energy[n]:.2f}" for n in data.class_names)
                    + " |")
    return ["| resize | " + " | ".join(data.class_names) + " |",
            "|---|" + "---:|" * len(data.class_names), *rows]


def write_report(config: ConfigDict, workdir: Path, arms: Mapping[str, ArmResult],
                 cache: DataCache, seconds: float) -> Path:
    first = next(iter(arms.values()))
    data = cache(first.chosen.result.config)
    plot_dir = workdir / "plots"
    lines = [f"# {config.name}: COVID chest X-ray classifiers", "", *data_section(config, arms,
                                                                                 cache, plot_dir, workdir)]
    lines += targets_section(config, arms)
    lines += ["## Validation over seeds", "",
              "Best epoch of each run by validation loss; mean +- sample std over the seeds.", "",
              *mean_std_table({n: a.runs for n, a in arms.items()},
                              ["loss", "accuracy", "roc_auc"]), ""]
    for name, arm in arms.items():
        lines += arm_section(name, arm, data, plot_dir, workdir)
    lines += ["## Reproduce", "",
              *[f"- `{run.key}`: `{run.command}`" for arm in arms.values() for run in arm.runs],
              "", "Training time of each run: " + ", ".join(
                  f"{run.key} {run.result.train_seconds / 60:.1f} min"
                  for arm in arms.values() for run in arm.runs)
              + f". Wall time of the study (all its processes, `timing.json`): "
              f"{seconds / 60:.1f} min.", ""]
    path = workdir / "report.md"
    path.write_text("\n".join(lines))
    return path


def targets_section(config: ConfigDict, arms: Mapping[str, ArmResult]) -> list[str]:
    """Markdown: each target of `study.targets` (ARM -> {metric: value}) against the arm's
    test metric at threshold 0.5."""
    targets = config.study.get("targets", {})
    rows = []
    for name, wanted in targets.items():
        if name not in arms:
            continue
        point = arms[name].test["operating_points"]["0.5"]
        for metric, target in wanted.items():
            value = point[metric]
            verdict = "met" if value >= target else f"missed by {target - value:.3f}"
            rows.append(f"| {name} | {metric} | {target:.3f} | {value:.4f} | {verdict} |")
    if not rows:
        return []
    return ["## Targets (test split, threshold 0.5)", "",
            "| arm | metric | target | test | |", "|---|---|---:|---:|---|", *rows, ""]


def multiclass_split_table(arm: ArmResult) -> list[str]:
    """Markdown: loss, accuracy, macro F1 and macro ROC AUC on train, validation and test."""
    val = arm.chosen.result.val
    rows = {"train": (arm.train, arm.train_loss), "validation": (val, arm.chosen.val["loss"]),
            "test": (arm.test_outputs, arm.test["loss"])}
    keys = ("accuracy", "macro_f1", "roc_auc")
    lines = ["| split | loss | " + " | ".join(keys) + " |", "|---|---:|" + "---:|" * len(keys)]
    for split, (outputs, loss) in rows.items():
        values = summary_metrics(np.asarray(outputs.probs), np.asarray(outputs.labels),
                                 len(outputs.class_names))
        lines.append(f"| {split} | {loss:.4f} | " + " | ".join(f"{values[k]:.4f}" for k in keys)
                     + " |")
    return lines


def data_section(config, arms, cache, plot_dir: Path, workdir: Path) -> list[str]:
    lines = ["## Data", ""]
    for classes in sorted({a.chosen.result.config.data.classes for a in arms.values()}):
        cfg = next(a.chosen.result.config for a in arms.values()
                   if a.chosen.result.config.data.classes == classes)
        data = cache(cfg)
        counts = {split: np.bincount(getattr(data, split).labels, minlength=data.num_classes)
                  for split in ("train", "val", "test")}
        total = sum(c.sum() for c in counts.values())
        lines += [f"Classes `{classes}`: label counts per split ({total} images; "
                  f"{cfg.data.val_fraction:.0%} validation and {cfg.data.test_fraction:.0%} "
                  f"test per class, `data.split_seed={cfg.data.split_seed}`).", "",
                  "| split | " + " | ".join(data.class_names) + " | total |",
                  "|---|" + "---:|" * (data.num_classes + 1),
                  *[f"| {split} | " + " | ".join(map(str, c)) + f" | {c.sum()} |"
                    for split, c in counts.items()], ""]
        order = np.random.default_rng(0).permutation(len(data.train))[:25]
        grid = plots.image_grid([data.train.images[i] for i in order],
                                [data.class_names[data.train.labels[i]] for i in order],
                                plot_dir / f"samples_{classes}.png",
                                f"25 training images ({classes})")
        lines += [f"![samples]({grid.relative_to(workdir).as_posix()})", ""]
    lines += ["Sharpness per class (mean absolute Laplacian of the training images, grey "
              "levels): the COVID and Normal files are 224 px JPEGs, the viral-pneumonia ones "
              "256 px PNGs. Resized straight to the input they keep a class-specific "
              "sharpness a model could read instead of the lungs; passed through one common "
              "resolution and compression first, they do not.", "",
              *leak_check(config, cache), "",
              "The input pipeline does what the notebook's tf.data chain did: images are "
              "decoded and resized once and kept as arrays (`cache`), the training order is "
              "reshuffled every epoch (`shuffle`), batched with the last partial batch "
              "dropped in training (`batch`), and read ahead by grain (`prefetch`). Pixels "
              "are scaled to [0, 1] (the notebook fed raw 0-255 values).", ""]
    return lines


def arm_section(name: str, arm: ArmResult, data: DataBundle, plot_dir: Path,
                workdir: Path) -> list[str]:
    cfg = arm.chosen.result.config
    input_shape = (cfg.data.image_size, cfg.data.image_size, cfg.data.channels)
    model_summary = summary(build_model(cfg.model), (1, *input_shape))
    history_plot = plots.history_curves(arm.history, plot_dir / f"{name}_history.png",
                                        f"{name} ({arm.chosen.key}): training history")
    lines = [f"## {name}", "",
             f"Representative run `{arm.chosen.key}` (best validation loss of its seeds). "
             f"Input shape (None, {input_shape[0]}, {input_shape[1]}, {input_shape[2]}): "
             f"(batch, height, width, channels), {input_shape[0]}x{input_shape[1]} pixels "
             f"with one grey channel; {model_summary.total_params:,} parameters.", "",
             "```", model_summary.table, "```", "",
             f"![history]({history_plot.relative_to(workdir).as_posix()})", "",
             f"Drawn from `{arm.chosen.key}/{HISTORY_FILE}` as saved by training.", ""]
    test_dir = f"runs/{arm.chosen.key}/{TEST_DIR}"
    if arm.test["task"] == "binary":
        names = list(arm.test_outputs.class_names)
        lines += ["Keras' metrics (positive class " + names[1] + "):", "", *split_table(arm), "",
                  f"![scatter]({test_dir}/test_scores.png)", "",
                  "Test: predicted probability against the jittered true label.", "",
                  *analysis(arm, names), ""]
    else:
        lines += ["The most probable class; train and validation from the restored "
                  "checkpoint:", "", *multiclass_split_table(arm), "",
                  f"Test ({arm.test['n']} images), per class:", "",
                  *_multiclass_lines(arm), "",
                  f"![confusion]({test_dir}/test_confusion.png)", ""]
    return lines


def _multiclass_lines(arm: ArmResult) -> list[str]:
    return get_evaluator("multiclass", arm.chosen.result.config.eval).markdown(arm.test)
