"""Optuna sweep over a config's `sweep.space`; each trial is a short training run.

    python -m experiments.sweep --config=configs/pneumonia.py:sweep --workdir=runs/sweep
    python -m experiments.sweep --config=configs/pneumonia.py:sweep,cpu \
        --config.data.root=../shared/data/chest_xray_224 --config.sweep.sampler=tpe \
        --config.sweep.num_trials=30 --workdir=runs/sweep_cpu

Re-running adds trials until `sweep.num_trials` have finished (an interrupted trial
resumes from its checkpoint). `--config.sweep.storage=postgresql://...` shares one study
between machines. Writes WORKDIR/{sweep.db, trials/, plots/, best.json, report.md}.
"""

from jaxcx import launch
from jaxcx.sweep import run_sweep, write_sweep_report
from jaxcx.workdir import prepare_workdir

FLAGS = launch.FLAGS


def main():
    config = launch.config_from_flags()
    if "sweep" not in config:
        raise launch.ConfigError(f"{FLAGS.config} has no `sweep` section to search over")
    fingerprint = config.copy_and_resolve_references()
    with fingerprint.unlocked():
        del fingerprint.sweep["num_trials"]  # asking for more trials later resumes the study
    workdir = prepare_workdir(launch.require_workdir(), fingerprint, overwrite=FLAGS.overwrite)
    result = run_sweep(config, workdir)
    report = write_sweep_report(config, workdir, result)
    print(f"best {config.sweep.metric} = {result.best_value:.4f} with "
          f"{' '.join('--config.' + o for o in result.best_overrides)}; report: {report}")


if __name__ == "__main__":
    launch.run(main)
