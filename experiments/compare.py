"""Finished runs side by side: the config fields that set them apart and their metrics
per label (validation, and test where a run was tested).

    python -m experiments.compare --workdirs=W/runs/densenet121/seed_0,W/runs/resnet18/seed_0
    python -m experiments.compare --workdirs=runs/a,runs/b --labels=DenseNet,ResNet

Reads each folder's config.json, result.json and test/test_metrics.json; trains nothing.
"""

from absl import flags

from jaxcx import launch
from jaxcx.studies.compare import compare_runs

_WORKDIRS = flags.DEFINE_list("workdirs", None, "run folders to compare, comma separated")
_LABELS = flags.DEFINE_list("labels", None, "column names (default: the folder names)")


def main():
    if not _WORKDIRS.value:
        raise launch.ConfigError("--workdirs is required: run folders, comma separated")
    print(compare_runs(_WORKDIRS.value, _LABELS.value))


if __name__ == "__main__":
    launch.run(main)
