"""The pneumonia notebook's whole study: data analysis, baseline, improvements, ablations
over seeds, the sweep, selection on validation and the one test evaluation, into
WORKDIR/report.md.

    python -m experiments.pneumonia_study --workdir=runs/pneumonia_quick
    python -m experiments.pneumonia_study --config=configs/pneumonia.py:cpu \
        --config.data.root=../shared/data/chest_xray_224 --workdir=runs/pneumonia_cpu

`--config` names the profile (quick by default, cpu, full); `--config.a.b=value` applies
to every run. Re-running the same command resumes: finished runs and trials are kept, an
interrupted run continues from its checkpoint. `--export=DIR` copies report.md and its
figures to DIR (e.g. docs/results/pneumonia).
"""

from absl import flags

from jaxcx import launch
from jaxcx.studies.common import export_report
from jaxcx.studies.pneumonia import run_study

FLAGS = launch.FLAGS
_EXPORT = flags.DEFINE_string("export", None, "copy report.md and its figures to this folder")
FLAGS.set_default("config", "configs/pneumonia.py:quick")


def main():
    config = launch.config_from_flags()
    # More seeds or trials later extend the study rather than conflict with it.
    workdir = launch.prepare_run_workdir(config, ("study.num_seeds", "sweep.num_trials"))
    result = run_study(config, workdir, spec=FLAGS.config)
    print(f"selected {result.selected.key}; report: {workdir / 'report.md'} "
          f"({result.seconds / 60:.1f} min)")
    if _EXPORT.value:
        print(f"exported to {export_report(workdir, _EXPORT.value)}")


if __name__ == "__main__":
    launch.run(main)
