"""The pneumonia notebook's study: baseline, three improvements, ablations, sweep, one
test evaluation.

The three improvements are a class-weighted loss, regularisation (BatchNorm after the
conv, dropout before the dense layer) and hyperparameter optimisation (the sweep's best
values). Every arm below trains `study.num_seeds` seeds (`config.seed`, +1, ...):

    baseline, each improvement alone (the notebook's Option 2), all three together, and
    all three but one (Option 1).

Each arm's config is the study's base config edited by its improvements' changes. The
sweep runs before the arms that use its values. One run is then chosen on validation
only, and evaluated once on the test split.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


from jaxcx import analysis, plots
from jaxcx.config import ConfigDict, with_overrides
from jaxcx.data.builders import phantom_chest_xray_root
from jaxcx.data.folder import KAGGLE_PNEUMONIA_CLASSES, ImageFolderSource
from jaxcx.data.registry import DataCache
from jaxcx.data.resplit import pneumonia_resplit
from jaxcx.evaluation import get_evaluator
from jaxcx.run import run_config
from jaxcx.studies.common import (Clock, Log, Reproducer, Run, evaluate_once, mean_std,
                                  mean_std_table, run_arms, select_on_validation)
from jaxcx.sweep import as_flags, run_sweep, write_sweep_report

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
# The config changes of the two improvements that do not depend on the sweep.
CHANGES = {WEIGHTED: {"loss.name": "weighted_ce"}, REGULARISED: {"model.regularisation": True}}
TABLE_KEYS = ("accuracy", "f1", "roc_auc", "pr_auc", "recall", "specificity")


def arm_changes(improvements: Sequence[str], tuned: Mapping[str, Any]) -> dict[str, Any]:
    """An arm's config changes: its improvements', and the sweep's values under tuning
    (without the dropout rate when the model has no dropout layer, i.e. unregularised)."""
    changes: dict[str, Any] = {}
    for improvement in improvements:
        if improvement != TUNED:
            changes.update(CHANGES[improvement])
    if TUNED in improvements:
        changes.update({field: value for field, value in tuned.items()
                        if REGULARISED in improvements or field != "model.dropout_rate"})
    return changes


def analyze_data(config: ConfigDict, out_dir: Path) -> Path:
    """The notebook's data analysis on the original files of its re-split."""
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
    arms: dict[str, list[Run]]
    sweep_changes: dict[str, Any]
    selected: Run
    selection_reason: str
    test: dict[str, Any]
    seconds: float


def run_study(config: ConfigDict, workdir: str | Path, *, spec: str | None = None,
              log: Log = print) -> StudyResult:
    """Runs (or resumes) the whole study of `config` (configs/pneumonia.py with a
    profile) in `workdir` and writes `workdir/report.md`. `spec` is how the config was
    named on the command line (for the reproduce commands)."""
    workdir = Path(workdir)
    clock = Clock(workdir)
    reproducer = Reproducer(spec)
    cache = DataCache()
    base = run_config(config)
    cache(base)  # a missing or malformed data folder fails here, before any training
    log("data analysis")
    analyze_data(config, workdir / "analysis")
    seeds = [int(config.seed) + k for k in range(config.study.num_seeds)]

    def arm_configs(names: Sequence[str], tuned: Mapping[str, Any]) -> dict[str, ConfigDict]:
        return {arm: with_overrides(base, {"name": f"{config.name}/{arm}",
                                           **arm_changes(ARMS[arm], tuned)}) for arm in names}

    arms = run_arms(arm_configs(("baseline", "weighted_loss", "regularisation", "no_tuning"), {}),
                    seeds, workdir, data=cache, reproducer=reproducer, log=log)
    clock.seconds()
    log("sweep")
    sweep_config = with_overrides(config, {"name": f"{config.name}/sweep",
                                           **CHANGES[WEIGHTED], **CHANGES[REGULARISED]})
    sweep = run_sweep(sweep_config, workdir / "sweep", cache)
    write_sweep_report(sweep_config, workdir / "sweep", sweep)
    clock.seconds()
    arms.update(run_arms(
        arm_configs(("tuned", "all_three", "no_weighted_loss", "no_regularisation"),
                    sweep.best_changes),
        seeds, workdir, data=cache, reproducer=reproducer, log=log))
    arms = {arm: arms[arm] for arm in ARMS}
    selected, reason = select_on_validation(workdir, arms, config.study.select_metric)
    test = evaluate_once(selected.result, data=cache, log=log)
    result = StudyResult(arms, sweep.best_changes, selected, reason, test, clock.seconds())
    write_study_report(config, workdir, result, spec)
    return result


# --------------------------------------------------------------------------- report


def _validation_figures(arms: dict[str, list[Run]], out_dir: Path, name: str) -> list[Path]:
    """Per arm, the first seed's own training curves and validation confusion (drawn by
    its run); the validation ROC/PR of every arm in one figure."""
    figures, curves = [], {}
    for arm, runs in arms.items():
        first = runs[0].result
        figures += [first.workdir / figure for figure in first.figures
                    if Path(figure).name in ("training_curves.png", "val_confusion_05.png")]
        curves[arm] = (first.val.probs, first.val.labels)
    figures.append(plots.roc_pr_curves(curves, out_dir / "val_roc_pr_arms.png",
                                       f"{name}: validation ROC and PR per arm (first seed)"))
    return figures


def _arm_table(arms: dict[str, list[Run]]) -> list[str]:
    reference = {ref: mean_std(arms[ref], "accuracy")[0] for ref in ("baseline", "all_three")}
    deltas = {f"vs {ref.replace('_', ' ')} (acc)": {
        arm: f"{mean_std(runs, 'accuracy')[0] - value:+.4f}" for arm, runs in arms.items()
        if arm != ref} for ref, value in reference.items()}
    improvements = {arm: ", ".join(ARMS[arm]) or "none" for arm in arms}
    return mean_std_table(arms, TABLE_KEYS, {"improvements": improvements, **deltas})


def _targets(arms: dict[str, list[Run]], test: dict[str, Any]) -> list[str]:
    """The targets set for the `cpu` profile on the shared data, met or missed."""
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


def write_study_report(config: ConfigDict, workdir: Path, result: StudyResult,
                       spec: str | None = None) -> Path:
    """`workdir/report.md`: data, arms, sweep, selection, test, figures, targets."""
    figures = _validation_figures(result.arms, workdir / "figures", config.name)
    test = result.test
    selected = result.selected
    test_dir = selected.result.workdir / "test"
    rel = lambda p: Path(p).relative_to(workdir).as_posix()  # noqa: E731
    analysis_summary = (workdir / "analysis" / "data_summary.md").read_text()
    analysis_body = re.sub(r"\]\((?!http)([^)]+\.png)\)", r"](analysis/\1)",
                           analysis_summary.split("\n", 1)[1].replace("\n## ", "\n### "))
    sweep_figs = sorted((workdir / "sweep" / "plots").glob("*.png"))
    test_figs = [test_dir / name for name in test["figures"].values()]
    study_command = (f"python -m experiments.pneumonia_study --config={spec} --workdir={workdir}"
                     if spec else "(run from Python: see the config below)")
    lines = [
        f"# Pneumonia study ({config.name}, profile `{config.profile}`)",
        "",
        f"Data `{config.data.root or 'generated phantoms'}`, "
        f"{config.data.image_size} px, {config.train.num_epochs} epochs per run, "
        f"{config.study.num_seeds} seeds per arm, sweep of {config.sweep.num_trials} trials "
        f"x {config.sweep.num_epochs} epochs. Wall time {result.seconds / 60:.1f} min.",
        "",
        f"Reproduce: `{study_command}` (add the `--config.*` flags it was run with).",
        "",
        "## 1. Data (the notebook's 80/10/10 re-split of the original files)",
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
        "Reproduce one run by hand (first seed of each arm):",
        "",
        *[f"- {arm}: `{runs[0].command}`" for arm, runs in result.arms.items()],
        "",
        "## 3. Sweep",
        "",
        f"{config.sweep.sampler} sampler over `sweep.space` with weighted loss and "
        f"regularisation on (the notebook's combined sweep), {config.sweep.num_epochs} epochs "
        f"per trial, maximising `{config.sweep.metric}`. Best values (the `tuning` "
        f"improvement): `{as_flags(result.sweep_changes)}`. All trials: "
        "[sweep/report.md](sweep/report.md).",
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
        *get_evaluator(test["task"], config.eval).markdown(test),
        "",
        f"Reproduce: `python -m experiments.evaluate --workdir={workdir} --force` "
        "(the study ran it once; --force re-runs it and counts it).",
        "",
        *[f"![{p.stem}]({rel(p)})" for p in test_figs],
        "",
        "## 5. Figures per arm (first seed)",
        "",
        *[f"![{rel(p)}]({rel(p)})" for p in figures],
        "",
        "## 6. Targets",
        "",
        *_targets(result.arms, test),
        "",
    ]
    path = workdir / "report.md"
    path.write_text("\n".join(lines))
    return path
