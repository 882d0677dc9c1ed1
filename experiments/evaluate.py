"""The single test-split evaluation of a chosen checkpoint; refuses a second one.

    python -m experiments.evaluate --workdir=runs/pneumonia_cpu      # the study's choice
    python -m experiments.evaluate --workdir=runs/one_run             # a train.py run
    python -m experiments.evaluate --workdir=W --run=W/runs/tuned/seed_28 --force

In a study folder the run named by `selection.json` (chosen on validation) is evaluated;
in a run folder, that run's best checkpoint. Results go to WORKDIR/test/ (metrics at 0.5
and at a threshold chosen on validation, bootstrap intervals, figures). A second
evaluation needs --force and is counted in WORKDIR/test/test_metrics.json.
"""

import json
from pathlib import Path

import ml_collections
from absl import flags

from jaxcx import launch
from jaxcx.data.registry import build_data
from jaxcx.studies.pneumonia import evaluate_on_test
from jaxcx.workdir import CONFIG_FILE, WorkdirError

FLAGS = launch.FLAGS
_RUN = flags.DEFINE_string("run", None, "run folder to evaluate (default: the study's choice, "
                           "or --workdir itself when it is a run)")
_FORCE = flags.DEFINE_bool("force", False, "evaluate on the test split again")


def _chosen_run(workdir: Path) -> Path:
    if _RUN.value:
        return Path(_RUN.value)
    selection = workdir / "selection.json"
    if selection.exists():
        return workdir / json.loads(selection.read_text())["run_dir"]
    if (workdir / "checkpoints").is_dir():
        return workdir
    raise WorkdirError(f"{workdir} is neither a study folder (no selection.json: run "
                       "experiments.pneumonia_study first) nor a run folder (no checkpoints/); "
                       "or name the run with --run")


def main():
    workdir = Path(launch.require_workdir())
    run_dir = _chosen_run(workdir)
    if not (run_dir / CONFIG_FILE).exists():
        raise WorkdirError(f"{run_dir} holds no {CONFIG_FILE}: not a run folder")
    config = ml_collections.ConfigDict(json.loads((run_dir / CONFIG_FILE).read_text()))
    study_file = workdir / CONFIG_FILE
    study = json.loads(study_file.read_text()).get("study", {}) if study_file.exists() else {}
    record = evaluate_on_test(
        config, run_dir, workdir / "test", build_data(config.data, config.seed),
        threshold_rule=study.get("threshold", "youden"),
        resamples=study.get("bootstrap_resamples", 1000), most_wrong=study.get("most_wrong", 10),
        force=_FORCE.value)
    for name, point in record["operating_points"].items():
        print(f"threshold {point['threshold']:.4f} ({name}): " + ", ".join(
            f"{k} {point[k]:.4f}" for k in ("accuracy", "f1", "roc_auc", "pr_auc",
                                            "sensitivity", "specificity")))
    print(f"written to {workdir / 'test'} (test evaluations: {record['evaluations']})")


if __name__ == "__main__":
    launch.run(main)
