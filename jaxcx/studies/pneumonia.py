"""Seed 000's study: baseline, three improvements, ablations, sweep, one test evaluation.

The seed's three improvements are a class-weighted loss, regularisation (BatchNorm after
the conv, dropout before the dense layer) and hyperparameter optimisation (its sweep's
best values). Every arm below trains `study.num_seeds` seeds (`config.seed`, +1, ...):

    baseline, each improvement alone (the seed's Option 2), all three together, and all
    three but one (Option 1).

The sweep runs before the arms that use its values. One run is then chosen on
validation only, and evaluated once on the test split (`evaluate_on_test`). Every run
lives in its own folder under WORKDIR and is skipped when its `summary.json` exists;
a run cut short resumes from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
from PIL import Image

from jaxcx import metrics as metrics_lib
from jaxcx import plots, tracking
from jaxcx.config import load_config
from jaxcx import analysis
from jaxcx.data.builders import phantom_chest_xray_root
from jaxcx.data.folder import KAGGLE_PNEUMONIA_CLASSES, ImageFolderSource, class_names_from_map
from jaxcx.data.imageio import decode_image
from jaxcx.data.registry import DataBundle
from jaxcx.data.resplit import pneumonia_resplit
from jaxcx.sweep import DataCache, run_config, run_sweep, write_sweep_report
from jaxcx.train.loop import evaluate_best, fit
from jaxcx.workdir import WorkdirError, prepare_workdir

WEIGHTED, REGULARISED, TUNED = "weighted loss", "regularisation", "tuning"
ARMS: dict[str, tuple[str, ...]] = {
    "baseline": (),
    "weighted_loss": (WEIGHTED,),
    "regularisation": (REGULARISED,),
    "tuned": (TUNED,),
    "all_three": (WEIGHTED, REGULARISED, TUNED),
    "no_weighted_loss": (REGULARISED, TUNED),
    "no_regularisation": (WEIGHTED, TUNED),
    "no_tuning": (WEIGHTED, REGULARISED),
}
TABLE_KEYS = ("accuracy", "f1", "roc_auc", "pr_auc", "recall", "specificity")
TEST_FILE = "test_metrics.json"


class AlreadyEvaluatedError(WorkdirError):
    """The test split of this study was evaluated already."""


def config_variant(improvements: Sequence[str]) -> str:
    """The `configs/pneumonia.py` variant holding the loss and model improvements."""
    weighted, regularised = WEIGHTED in improvements, REGULARISED in improvements
    if weighted and regularised:
        return "combined"
    return "weighted_loss" if weighted else "regularisation" if regularised else "baseline"


def tuned_overrides(sweep_overrides: Sequence[str], improvements: Sequence[str]) -> list[str]:
    """The sweep's values an arm takes: none without tuning; no dropout without
    regularisation (the model has no dropout layer then)."""
    if TUNED not in improvements:
        return []
    return [o for o in sweep_overrides
            if REGULARISED in improvements or not o.startswith("model.dropout_rate=")]


@dataclasses.dataclass
class RunSummary:
    """A finished run: validation metrics of its best checkpoint, and where it lives."""

    arm: str
    seed: int
    run_dir: Path
    val: dict[str, float]
    best_step: int
    command: str

    @property
    def key(self) -> str:
        return f"{self.arm}/seed_{self.seed}"


@dataclasses.dataclass
class Launcher:
    """Loads the study's run configs the way the shell would, and spells the commands.

    `config_file` (configs/pneumonia.py) and `profile` (its argument, e.g. 'cpu') name the
    config; `overrides` are the user's `a.b=value` overrides, applied to every run.
    """

    config_file: str
    profile: str
    overrides: Sequence[str] = ()

    def spec(self, variant: str) -> str:
        return f"{self.config_file}:{','.join(t for t in (variant, self.profile) if t)}"

    def config(self, variant: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
        """A variant's config with the user's and then `overrides` applied."""
        return load_config(self.spec(variant), [*self.overrides, *overrides])

    def _flags(self, overrides: Sequence[str]) -> str:
        return "".join(f" --config.{o}" for o in [*self.overrides, *overrides])

    def train(self, variant: str, overrides: Sequence[str], workdir: str | Path) -> str:
        return (f"python -m experiments.train --config={self.spec(variant)}"
                f"{self._flags(overrides)} --workdir={workdir}")

    def sweep(self, workdir: str | Path) -> str:
        return (f"python -m experiments.sweep --config={self.spec('sweep')}"
                f"{self._flags([])} --workdir={workdir}")

    def study(self, workdir: str | Path) -> str:
        return (f"python -m experiments.pneumonia_study --config={self.spec('')}"
                f"{self._flags([])} --workdir={workdir}")


class Clock:
    """Wall time of a study across resumptions, kept in WORKDIR/timing.json."""

    def __init__(self, workdir: Path):
        self._path = workdir / "timing.json"
        self._previous = (json.loads(self._path.read_text())["seconds"]
                          if self._path.exists() else 0.0)
        self._start = time.time()

    def seconds(self) -> float:
        total = self._previous + time.time() - self._start
        self._path.write_text(json.dumps({"seconds": total}) + "\n")
        return total


def train_run(config: ml_collections.ConfigDict, run_dir: Path, data: DataBundle, *,
              arm: str, command: str) -> RunSummary:
    """Trains (or resumes, or reads back) one run and records its best validation metrics."""
    summary_path = run_dir / "summary.json"
    if not summary_path.exists():
        prepare_workdir(run_dir, config)
        start = time.time()
        fit(config, run_dir, data)
        best, best_step = evaluate_best(config, run_dir, data, data.val, "val")
        np.savez(run_dir / "val_outputs.npz", probs=best.probs, labels=best.labels)
        summary_path.write_text(json.dumps({
            "arm": arm, "seed": int(config.seed), "best_step": best_step, "command": command,
            "val": {k.removeprefix("val/"): v for k, v in best.metrics.items()},
            "confusion": np.asarray(best.confusion).tolist(),
            "seconds": time.time() - start}, indent=2) + "\n")
    saved = json.loads(summary_path.read_text())
    return RunSummary(arm, saved["seed"], run_dir, saved["val"], saved["best_step"],
                      saved["command"])


def mean_std(runs: Sequence[RunSummary], key: str) -> tuple[float, float]:
    values = np.asarray([r.val[key] for r in runs if key in r.val], np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def select_run(arms: dict[str, list[RunSummary]], metric: str) -> tuple[RunSummary, str]:
    """The arm with the best mean validation `metric` (ties: mean ROC AUC), then its
    seed with the best `metric` (ties: ROC AUC). Validation only: the test split is unseen."""
    key = metric.removeprefix("val/")

    def score(runs):
        return mean_std(runs, key)[0], mean_std(runs, "roc_auc")[0]

    arm = max(arms, key=lambda name: score(arms[name]))
    run = max(arms[arm], key=lambda r: (r.val[key], r.val.get("roc_auc", 0.0)))
    mean, std = mean_std(arms[arm], key)
    reason = (f"arm `{arm}` has the best mean validation {key} ({mean:.4f} +- {std:.4f} over "
              f"{len(arms[arm])} seeds); its seed {run.seed} has the best validation {key} "
              f"({run.val[key]:.4f}).")
    return run, reason


# --------------------------------------------------------------------------- test split


def _metrics_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = (scores >= threshold).astype(np.int64)
    cm = np.zeros((2, 2), np.int64)
    np.add.at(cm, (labels.astype(np.int64), predicted), 1)
    summary = metrics_lib.summarize_confusion(cm)
    return {"accuracy": summary["accuracy"], "f1": summary["f1"],
            "sensitivity": summary["recall"], "specificity": summary["specificity"],
            "precision": summary["precision"], "confusion": cm.tolist()}


def _intervals(scores, labels, threshold: float, resamples: int) -> dict[str, list[float]]:
    """Bootstrap 95% intervals of the thresholded metrics and the two curve areas."""
    fns = {key: (lambda s, y, k=key: _metrics_at(s, y, threshold)[k])
           for key in ("accuracy", "f1", "sensitivity", "specificity")}
    fns["roc_auc"] = lambda s, y: metrics_lib.probability_metrics(s, y)["roc_auc"]
    fns["pr_auc"] = lambda s, y: metrics_lib.probability_metrics(s, y)["pr_auc"]
    return {key: list(metrics_lib.bootstrap_ci(fn, scores, labels, n_resamples=resamples)[1:])
            for key, fn in fns.items()}


def evaluate_on_test(config: ml_collections.ConfigDict, run_dir: str | Path,
                     out_dir: str | Path, data: DataBundle, *, threshold_rule: str = "youden",
                     resamples: int = 1000, most_wrong: int = 10,
                     force: bool = False) -> dict[str, Any]:
    """The one test evaluation of a run's best checkpoint, into `out_dir`.

    Reports accuracy, F1, sensitivity, specificity and the confusion matrix at 0.5 and
    at a threshold chosen on validation (`threshold_rule`: 'youden' or 'f1'), ROC AUC and
    PR AUC from probabilities, bootstrap 95% intervals, and figures (confusion matrices,
    ROC/PR curves, the test images the model gets most wrong). Refuses to run again once
    `out_dir/test_metrics.json` exists, unless `force`.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    record_path = out_dir / TEST_FILE
    previous = json.loads(record_path.read_text()) if record_path.exists() else None
    if previous is not None and not force:
        raise AlreadyEvaluatedError(
            f"the test split was already evaluated for {previous['run']} on {previous['when']} "
            f"({record_path}); the test set is for one final evaluation. Pass --force to "
            "evaluate again (the count of evaluations is kept in the record).")
    val, best_step = evaluate_best(config, run_dir, data, data.val, "val")
    threshold = metrics_lib.binary_threshold(val.probs, val.labels, threshold_rule)
    test, _ = evaluate_best(config, run_dir, data, data.test, "test", keep_ids=True)
    scores = metrics_lib.positive_scores(test.probs)
    labels = np.asarray(test.labels, np.int64)
    areas = metrics_lib.probability_metrics(scores, labels)
    operating = {}
    for name, value in (("0.5", 0.5), ("validation", threshold)):
        operating[name] = {"threshold": value, **_metrics_at(scores, labels, value),
                           "roc_auc": areas["roc_auc"], "pr_auc": areas["pr_auc"],
                           "ci95": _intervals(scores, labels, value, resamples)}
    name = config.name
    figures = {}
    for key, point in operating.items():
        figures[f"confusion {key}"] = plots.confusion_matrix(
            np.asarray(point["confusion"]), data.class_names,
            out_dir / f"test_confusion_{'05' if key == '0.5' else 'val_threshold'}.png",
            f"{name}: test confusion, threshold {point['threshold']:.3f}")
    figures["roc pr"] = plots.roc_pr_curves({name: (scores, labels)}, out_dir / "test_roc_pr.png",
                                            f"{name}: test ROC and PR (from probabilities)")
    figures["most wrong"] = _most_wrong_grid(data, test.ids, scores, labels, threshold,
                                             most_wrong, out_dir / "test_most_wrong.png")
    record = {"run": str(run_dir), "best_step": best_step, "when": datetime.datetime.now()
              .isoformat(timespec="seconds"), "evaluations": 1 + (previous or {}).get(
                  "evaluations", 0), "threshold_rule": threshold_rule, "n": int(len(labels)),
              "operating_points": operating,
              "figures": {k: v.name for k, v in figures.items()}}
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return record


def _most_wrong_grid(data: DataBundle, ids, scores, labels, threshold: float, count: int,
                     path: Path) -> Path:
    """The misclassified test images furthest from their label, shown as stored on disk."""
    error = np.abs(labels - scores)
    wrong = np.flatnonzero((scores >= threshold) != (labels == 1))
    order = wrong[np.argsort(-error[wrong])][:count]
    if not len(order):
        order = np.argsort(-error)[:count]
    index_of = {record_id: i for i, record_id in enumerate(data.test.ids)}
    images, titles = [], []
    for k in order:
        record = data.test[index_of[str(ids[k])]]
        images.append(decode_image(record["path"]) if record["path"] else record["image"])
        titles.append(f"true {data.class_names[labels[k]]}\np(pneumonia)={scores[k]:.3f}")
    return plots.image_grid(images, titles, path,
                            f"most wrong test images (threshold {threshold:.3f})")


# --------------------------------------------------------------------------- the study


def analyze_data(config: ml_collections.ConfigDict, out_dir: Path) -> Path:
    """Seed 000's data analysis on the original files of its re-split."""
    summary = out_dir / "data_summary.md"
    if summary.exists():
        return summary
    root = (Path(config.data.root).expanduser() if config.data.root
            else phantom_chest_xray_root(config.data))
    files = pneumonia_resplit(root, classes=tuple(KAGGLE_PNEUMONIA_CLASSES))
    class_names = list(KAGGLE_PNEUMONIA_CLASSES)
    splits = {name: ImageFolderSource(split_files, root=root, class_names=class_names,
                                      decode=False) for name, split_files in files.items()}
    return analysis.analyze(splits, out_dir, class_names=class_names,
                            dataset_name=root.name, stats_split="train",
                            max_images=config.study.analysis_max_images or None)


@dataclasses.dataclass
class StudyResult:
    arms: dict[str, list[RunSummary]]
    sweep_overrides: list[str]
    selected: RunSummary
    selection_reason: str
    test: dict[str, Any]
    seconds: float


def run_study(launcher: Launcher, workdir: str | Path, *,
              log: Callable[[str], None] = print) -> StudyResult:
    """Runs (or resumes) the whole study in `workdir` and writes `workdir/report.md`."""
    workdir = Path(workdir)
    clock = Clock(workdir)
    config = launcher.config("")
    study_cfg = config.study
    cache = DataCache()
    cache(config)  # a missing or malformed data folder fails here, before any training
    log("data analysis")
    analyze_data(config, workdir / "analysis")

    seeds = [int(config.seed) + k for k in range(study_cfg.num_seeds)]
    arms: dict[str, list[RunSummary]] = {}
    sweep_overrides: list[str] = []

    def train_arm(arm: str) -> None:
        improvements = ARMS[arm]
        variant = config_variant(improvements)
        overrides = tuned_overrides(sweep_overrides, improvements)
        arms[arm] = []
        for seed in seeds:
            run_overrides = [*overrides, f"seed={seed}"]
            run_dir = workdir / "runs" / arm / f"seed_{seed}"
            log(f"{arm} seed {seed}")
            run_cfg = run_config(launcher.config(variant, run_overrides))
            command = launcher.train(variant, run_overrides, f"runs/pneumonia/{arm}_seed{seed}")
            arms[arm].append(train_run(run_cfg, run_dir, cache(run_cfg), arm=arm,
                                       command=command))
        clock.seconds()

    for arm in ("baseline", "weighted_loss", "regularisation", "no_tuning"):
        train_arm(arm)
    log("sweep")
    sweep_cfg = launcher.config("sweep")
    sweep_dir = workdir / "sweep"
    sweep_dir.mkdir(parents=True, exist_ok=True)
    sweep = run_sweep(sweep_cfg, sweep_dir, cache)
    write_sweep_report(sweep_cfg, sweep_dir, sweep)
    sweep_overrides = list(sweep.best_overrides)
    clock.seconds()
    for arm in ("tuned", "all_three", "no_weighted_loss", "no_regularisation"):
        train_arm(arm)
    arms = {arm: arms[arm] for arm in ARMS}

    selection_path = workdir / "selection.json"
    selected, reason = select_run(arms, study_cfg.select_metric)
    if selection_path.exists():  # a choice made once stays made (the test may have seen it)
        saved = json.loads(selection_path.read_text())
        selected = next(r for runs in arms.values() for r in runs if r.key == saved["run"])
        reason = saved["reason"]
    else:
        selection_path.write_text(json.dumps(
            {"run": selected.key, "run_dir": selected.run_dir.relative_to(workdir).as_posix(),
             "reason": reason}, indent=2) + "\n")
    test_dir = workdir / "test"
    if (test_dir / TEST_FILE).exists():
        test = json.loads((test_dir / TEST_FILE).read_text())
    else:
        log(f"test evaluation of {selected.key}")
        run_cfg = ml_collections.ConfigDict(
            json.loads((selected.run_dir / "config.json").read_text()))
        test = evaluate_on_test(run_cfg, selected.run_dir, test_dir, cache(run_cfg),
                                threshold_rule=study_cfg.threshold,
                                resamples=study_cfg.bootstrap_resamples,
                                most_wrong=study_cfg.most_wrong)
    result = StudyResult(arms, sweep_overrides, selected, reason, test, clock.seconds())
    write_study_report(config, workdir, result, launcher)
    return result


# --------------------------------------------------------------------------- report


def _validation_figures(arms: dict[str, list[RunSummary]], out_dir: Path, name: str,
                        class_names: Sequence[str]) -> list[Path]:
    figures, curves = [], {}
    for arm, runs in arms.items():
        first = runs[0]
        history = [row for row in tracking.read_metrics(first.run_dir) if "val/loss" in row]
        figures.append(plots.training_curves(history, out_dir / f"curves_{arm}.png",
                                             f"{name}: {arm} (seed {first.seed}) training curves"))
        summary = json.loads((first.run_dir / "summary.json").read_text())
        figures.append(plots.confusion_matrix(
            np.asarray(summary["confusion"]), class_names, out_dir / f"val_confusion_{arm}.png",
            f"{name}: {arm} (seed {first.seed}) validation confusion"))
        with np.load(first.run_dir / "val_outputs.npz") as outputs:
            curves[arm] = (outputs["probs"], outputs["labels"])
    figures.append(plots.roc_pr_curves(curves, out_dir / "val_roc_pr_arms.png",
                                       f"{name}: validation ROC and PR per arm (first seed)"))
    return figures


def _arm_table(arms: dict[str, list[RunSummary]]) -> list[str]:
    header = ["arm", "improvements", "seeds", *TABLE_KEYS, "vs baseline (acc)",
              "vs all three (acc)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    reference = {ref: mean_std(arms[ref], "accuracy")[0] for ref in ("baseline", "all_three")}
    for arm, runs in arms.items():
        cells = [f"{m:.4f} +- {s:.4f}" for m, s in (mean_std(runs, k) for k in TABLE_KEYS)]
        accuracy = mean_std(runs, "accuracy")[0]
        deltas = [f"{accuracy - reference[ref]:+.4f}" if arm != ref else "" for ref in reference]
        lines.append(f"| {arm} | {', '.join(ARMS[arm]) or 'none'} | {len(runs)} | "
                     + " | ".join(cells + deltas) + " |")
    return lines


def _test_table(test: dict[str, Any]) -> list[str]:
    keys = ("accuracy", "f1", "roc_auc", "pr_auc", "sensitivity", "specificity")
    lines = ["| threshold | " + " | ".join(keys) + " | confusion [[TN, FP], [FN, TP]] |",
             "|---|" + "---|" * (len(keys) + 1)]
    for name, point in test["operating_points"].items():
        cells = [f"{point[k]:.4f} [{point['ci95'][k][0]:.4f}, {point['ci95'][k][1]:.4f}]"
                 for k in keys]
        lines.append(f"| {point['threshold']:.4f} ({name}) | " + " | ".join(cells)
                     + f" | {point['confusion']} |")
    return lines


def _targets(config, arms, test) -> list[str]:
    """The issue's targets for the `cpu` profile on the shared data, met or missed."""
    at_half = test["operating_points"]["0.5"]
    checks = [("baseline validation accuracy (mean over seeds)",
               mean_std(arms["baseline"], "accuracy")[0], 0.95),
              ("final model test accuracy (threshold 0.5)", at_half["accuracy"], 0.97),
              ("final model test ROC AUC", at_half["roc_auc"], 0.99)]
    lines = []
    for label, value, target in checks:
        verdict = "met" if value >= target else f"missed by {target - value:.4f}"
        lines.append(f"- {label}: {value:.4f} (target >= {target}): {verdict}")
    return lines


def write_study_report(config: ml_collections.ConfigDict, workdir: Path, result: StudyResult,
                       launcher: Launcher) -> Path:
    """`workdir/report.md`: data, arms, sweep, selection, test, figures, targets."""
    figures = _validation_figures(result.arms, workdir / "figures", config.name,
                                  class_names_from_map(KAGGLE_PNEUMONIA_CLASSES))
    test = result.test
    rel = lambda p: Path(p).relative_to(workdir).as_posix()  # noqa: E731
    analysis_summary = (workdir / "analysis" / "data_summary.md").read_text()
    analysis_body = re.sub(r"\]\((?!http)([^)]+\.png)\)", r"](analysis/\1)",
                           analysis_summary.split("\n", 1)[1].replace("\n## ", "\n### "))
    sweep_figs = sorted((workdir / "sweep" / "plots").glob("*.png"))
    test_figs = [workdir / "test" / name for name in test["figures"].values()]
    selected = result.selected
    lines = [
        f"# Pneumonia study ({config.name})",
        "",
        f"Profile `{profile_of(config.name)}`, data `{config.data.root or 'generated phantoms'}`, "
        f"{config.data.image_size} px, {config.train.num_epochs} epochs per run, "
        f"{config.study.num_seeds} seeds per arm, sweep of {config.sweep.num_trials} trials "
        f"x {config.sweep.num_epochs} epochs. Wall time {result.seconds / 60:.1f} min.",
        "",
        f"Reproduce: `{launcher.study(workdir)}`",
        "",
        "## 1. Data (seed 000 re-split of the original files)",
        analysis_body,
        "## 2. Validation: baseline, improvements alone, all three, leave-one-out",
        "",
        "Best-checkpoint validation metrics, mean +- std over seeds. Improvements: "
        "class-weighted loss, regularisation (BatchNorm after the conv, dropout before the "
        "dense layer), tuning (the sweep's best values). Option 2 compares each arm with one "
        "improvement to the baseline; Option 1 compares each `no_*` arm to `all_three`.",
        "",
        *_arm_table(result.arms),
        "",
        "Each run: " + ", ".join(f"`{r.key}` {r.val['accuracy']:.4f}"
                                 for runs in result.arms.values() for r in runs) + ".",
        "",
        "Commands (one per arm, first seed):",
        "",
        *[f"- {arm}: `{runs[0].command}`" for arm, runs in result.arms.items()],
        "",
        "## 3. Sweep",
        "",
        f"{config.sweep.sampler} sampler over `sweep.space` with weighted loss and "
        f"regularisation on (the seed's combined sweep), {config.sweep.num_epochs} epochs "
        f"per trial, maximising `{config.sweep.metric}`. Best values (the `tuning` "
        f"improvement): `{' '.join(result.sweep_overrides)}`. All trials: "
        "[sweep/report.md](sweep/report.md).",
        "",
        f"Reproduce: `{launcher.sweep(workdir / 'sweep')}`",
        "",
        *[f"![{p.stem}]({rel(p)})" for p in sweep_figs],
        "",
        "## 4. Selection (validation only) and the one test evaluation",
        "",
        f"Selected `{selected.key}`: {result.selection_reason}",
        "",
        f"Test split ({test['n']} images), best checkpoint (step {test['best_step']}); "
        f"threshold chosen on validation by `{test['threshold_rule']}`, beside 0.5. "
        "Bootstrap 95% intervals in brackets. Test evaluations so far: "
        f"{test['evaluations']}.",
        "",
        *_test_table(test),
        "",
        f"Reproduce: `python -m experiments.evaluate --workdir={workdir} --force` "
        "(the study ran it once; --force re-runs it).",
        "",
        *[f"![{p.stem}]({rel(p)})" for p in test_figs],
        "",
        "## 5. Figures per arm (first seed)",
        "",
        *[f"![{p.stem}]({rel(p)})" for p in figures],
        "",
        "## 6. Targets",
        "",
        *_targets(config, result.arms, test),
        "",
    ]
    path = workdir / "report.md"
    path.write_text("\n".join(lines))
    return path


def profile_of(name: str) -> str:
    return next((p for p in ("quick", "cpu", "full") if name.endswith("_" + p)), "custom")


def export_report(workdir: str | Path, dest: str | Path, max_png_bytes: int = 200_000) -> Path:
    """Copies `report.md` and every PNG it links (same relative paths) into `dest`; PNGs
    over `max_png_bytes` are scaled down (256 colours) until they fit."""
    workdir, dest = Path(workdir), Path(dest)
    text = (workdir / "report.md").read_text()
    for link in sorted(set(re.findall(r"\]\(([^)]+\.png)\)", text))):
        target = dest / link
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(workdir / link, target)
        with Image.open(target) as image:
            image.load()
        while target.stat().st_size > max_png_bytes and image.width > 400:
            image = image.convert("RGB").resize((image.width * 3 // 4, image.height * 3 // 4),
                                                Image.Resampling.LANCZOS)
            image.quantize(256).save(target, optimize=True)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "report.md").write_text(text)
    return dest / "report.md"
