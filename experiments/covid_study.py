"""The COVID notebook's study: every arm of `study.arms` over its seeds, Keras' metrics
on train, validation and test (the test split once per arm), saved histories, jittered
scatter, the 3-class task and the convolutional arms, into WORKDIR/report.md.

    python -m experiments.covid_study --workdir=runs/covid
    python -m experiments.covid_study --config=configs/covid_study.py:quick --workdir=/tmp/covid
    python -m experiments.covid_study --workdir=runs/covid --export=docs/results/covid

Re-running the same command resumes: finished runs are read back, an interrupted one
continues from its last checkpoint, a tested run is not tested again.
"""

from absl import flags

from jaxcx import launch
from jaxcx.studies.common import export_report
from jaxcx.studies.covid import run_study

FLAGS = launch.FLAGS
_EXPORT = flags.DEFINE_string("export", None, "copy report.md and its figures to this folder")
FLAGS.set_default("config", "configs/covid_study.py")


def main():
    config = launch.config_from_flags()
    # More seeds or other targets extend the study rather than conflict with it.
    workdir = launch.prepare_run_workdir(config, ("study.seeds", "study.arm_seeds",
                                                  "study.targets"))
    arms = run_study(config, workdir, spec=FLAGS.config)
    print(f"{len(arms)} arms; report: {workdir / 'report.md'}")
    if _EXPORT.value:
        print(f"exported to {export_report(workdir, _EXPORT.value)}")


if __name__ == "__main__":
    launch.run(main)
