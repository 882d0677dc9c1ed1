"""Optuna sweep over a config's `sweep.space`; each trial is a short training run.

    python -m experiments.sweep --config=configs/pneumonia.py:sweep --workdir=runs/sweep
    python -m experiments.sweep --config=configs/pneumonia.py:sweep,cpu \
        --config.data.root=../shared/data/chest_xray_224 --config.sweep.sampler=tpe \
        --config.sweep.num_trials=30 --workdir=runs/sweep_cpu

Re-running adds trials until `sweep.num_trials` are complete (an interrupted trial
resumes from its checkpoint). With `--config.sweep.storage=postgresql://USER@HOST/DB` the
same command started on several machines (WORKDIR on a file system they share) makes
them workers of one study. Writes WORKDIR/{sweep.db, trials/, plots/, best.json, report.md}.
"""

import sys

from jaxcx import launch
from jaxcx.run import run_config, validate
from jaxcx.sweep import SweepStorageError, as_flags, run_sweep, write_sweep_report

FLAGS = launch.FLAGS


def main():
    config = launch.config_from_flags()
    if "sweep" not in config:
        raise launch.ConfigError(f"{FLAGS.config} has no `sweep` section to search over")
    validate(run_config(config))
    # Asking for more trials later resumes the study.
    workdir = launch.prepare_run_workdir(config, ("sweep.num_trials",))
    try:
        result = run_sweep(config, workdir)
    except SweepStorageError as error:
        sys.exit(f"error: {error}")
    report = write_sweep_report(config, workdir, result)
    print(f"best {config.sweep.metric} = {result.best_value:.4f} with "
          f"{as_flags(result.best_changes)}; report: {report}")


if __name__ == "__main__":
    launch.run(main)
