"""The CheXpert notebook's run comparison on multi-label chest X-rays: every arm of
`study.arms` over `study.seeds`, per-label validation AUC side by side, one run chosen on
validation and tested once, into WORKDIR/report.md.

    python -m experiments.chest_multilabel_study --workdir=runs/chest_multilabel
    python -m experiments.chest_multilabel_study \
        --config=configs/chest_multilabel_study.py:quick --workdir=/tmp/chest_quick
    python -m experiments.chest_multilabel_study --workdir=W --train_only

The default config trains DenseNet-121 and ResNet-18 (3 seeds each) on the shared NIH
ChestX-ray14 sample at 64 px. Re-running the same command resumes (finished runs are read
back). `--train_only` stops before the selection and the test evaluation; `--export=DIR`
copies report.md and its figures to DIR (e.g. docs/results/chest_multilabel).
"""

from absl import flags

from jaxcx import launch
from jaxcx.studies.chest_multilabel import run_study
from jaxcx.studies.common import export_report

FLAGS = launch.FLAGS
_TRAIN_ONLY = flags.DEFINE_bool("train_only", False,
                                "train every run, then stop before selection and the test split")
_EXPORT = flags.DEFINE_string("export", None, "copy report.md and its figures to this folder")
FLAGS.set_default("config", "configs/chest_multilabel_study.py")


def main():
    config = launch.config_from_flags()
    # More seeds later extend the study rather than conflict with it.
    workdir = launch.prepare_run_workdir(config, ("study.seeds",))
    result = run_study(config, workdir, spec=FLAGS.config, train_only=_TRAIN_ONLY.value)
    if result.selected is None:
        print(f"trained {sum(len(r) for r in result.runs.values())} runs "
              f"({result.seconds / 60:.1f} min); run again without --train_only to select "
              "and test")
        return
    print(f"selected {result.selected.key}; report: {workdir / 'report.md'} "
          f"({result.seconds / 60:.1f} min)")
    if _EXPORT.value:
        print(f"exported to {export_report(workdir, _EXPORT.value)}")


if __name__ == "__main__":
    launch.run(main)
