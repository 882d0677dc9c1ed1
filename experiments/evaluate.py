"""The single test-split evaluation of a finished run; refuses a second one.

    python -m experiments.evaluate --workdir=runs/one_run            # an experiments.train run
    python -m experiments.evaluate --workdir=runs/pneumonia_cpu      # a study: its choice
    python -m experiments.evaluate --workdir=W --run=W/runs/tuned/seed_28 --force

In a study folder the run named by `selection.json` (chosen on validation) is evaluated;
in a run folder, that run's best checkpoint. The evaluator of the run's task (binary,
multiclass, multilabel) writes RUN/test/test_metrics.json, its figures, and a test
section in RUN/report.md. A second evaluation needs --force and is counted.
"""

import json
from pathlib import Path

from absl import flags

from jaxcx import launch
from jaxcx.run import RESULT_FILE, evaluate
from jaxcx.workdir import WorkdirError

FLAGS = launch.FLAGS
_RUN = flags.DEFINE_string("run", None, "run folder to evaluate (default: the study's choice, "
                           "or --workdir itself when it is a run)")
_FORCE = flags.DEFINE_bool("force", False, "evaluate on the test split again")


def chosen_run(workdir: Path) -> Path:
    """--run, else the run a study folder selected, else the folder itself."""
    if _RUN.value:
        return Path(_RUN.value)
    selection = workdir / "selection.json"
    if selection.exists():
        return workdir / json.loads(selection.read_text())["run_dir"]
    if (workdir / RESULT_FILE).exists() or (workdir / "checkpoints").is_dir():
        return workdir
    raise WorkdirError(f"{workdir} is neither a study folder (no selection.json: run the "
                       "study first) nor a run folder (no checkpoints/); or name the run "
                       "with --run")


def main():
    run_dir = chosen_run(Path(launch.require_workdir()))
    record = evaluate(run_dir, force=_FORCE.value)
    print("## Test" + (run_dir / "report.md").read_text().split("## Test", 1)[1])
    print(f"written to {run_dir / 'test'} and {run_dir / 'report.md'} "
          f"(test evaluations: {record['evaluations']})")


if __name__ == "__main__":
    launch.run(main)
