"""Exploratory data analysis: figures and `data_summary.md` in --workdir.

    python experiments/analyze_data.py --config=configs/x.py[:variant] --workdir=/tmp/eda
    python experiments/analyze_data.py --data_root=../shared/data/chest_xray_224 \
        --layout=kaggle_pneumonia --workdir=/tmp/eda

With --config the splits come from `jaxcx.data.registry.build_data(config.data)`; with
--data_root they are read from an image folder `ROOT/{split}/{class}/...` whose class
folders follow --layout. Files skipped as bad and entries not read are printed, listed in
`data_summary.md` and written to `bad_inputs.json` in --workdir, as training does.
"""

from __future__ import annotations

from absl import app, flags

from jaxcx import launch
from jaxcx import analysis
from jaxcx.data import folder
from jaxcx.data.errors import BAD_INPUT_POLICIES, BadInputLog, DataError

LAYOUTS = {
    "kaggle_pneumonia": folder.KAGGLE_PNEUMONIA_CLASSES,
    "covid_qu_ex": folder.COVID_QU_EX_CLASSES,
    "folder": None,
}

FLAGS = launch.FLAGS
_DATA_ROOT = flags.DEFINE_string("data_root", None, "image-folder root (instead of --config)")
_LAYOUT = flags.DEFINE_enum("layout", "folder", list(LAYOUTS),
                            "class folders of --data_root ('folder': every subfolder)")
_SPLITS = flags.DEFINE_list("splits", ["train", "val", "test"],
                            "split folders of --data_root; missing ones are skipped")
_MAX_IMAGES = flags.DEFINE_integer("max_images", None,
                                   "decode at most this many images for the statistics")
_SEED = flags.DEFINE_integer("seed", 0, "seed of the sampled images")
_ON_BAD_INPUT = flags.DEFINE_enum("on_bad_input", "skip", list(BAD_INPUT_POLICIES),
                                  "bad images of --data_root: 'skip' analyses the rest, "
                                  "'raise' stops with all of them listed")
_IGNORE_UNKNOWN = flags.DEFINE_bool("ignore_unknown_folders", False,
                                    "list unknown and empty class folders of --data_root "
                                    "instead of stopping")


def _splits_from_folder(root: str, layout: str) -> tuple[dict, BadInputLog]:
    splits, log = {}, BadInputLog(_ON_BAD_INPUT.value)
    for split in _SPLITS.value:
        try:
            folder.find_split_dir(root, split)
        except DataError:
            continue
        splits[split] = folder.image_folder_source(
            root, split, class_map=LAYOUTS[layout], decode=False,
            on_bad_input=_ON_BAD_INPUT.value, ignore_unknown_folders=_IGNORE_UNKNOWN.value,
            log=log)
    if not splits:
        raise DataError(f"no split folder among {_SPLITS.value} under {root}")
    folder.list_unread_root_entries(root, _SPLITS.value, log)
    log.resolve(root)
    return splits, log


def main() -> None:
    if (FLAGS.config is None) == (_DATA_ROOT.value is None):
        raise app.UsageError("give exactly one of --config or --data_root")
    workdir = launch.require_workdir()
    if FLAGS.config is not None:
        from jaxcx.data.registry import build_data  # pylint: disable=import-outside-toplevel

        config = launch.config_from_flags()
        bundle = build_data(config.data, config.seed)
        splits = {name: source for name, source in
                  (("train", bundle.train), ("val", bundle.val), ("test", bundle.test))
                  if source is not None}
        name, class_names, multilabel = config.data.name, bundle.class_names, bundle.multilabel
        bad_inputs = bundle.bad_inputs
    else:
        splits, bad_inputs = _splits_from_folder(_DATA_ROOT.value, _LAYOUT.value)
        name, class_names, multilabel = _DATA_ROOT.value.rstrip("/").split("/")[-1], None, None
    if bad_inputs is not None and bad_inputs.count:
        print(f"{bad_inputs.summary()}\nlisted in {bad_inputs.write(workdir)}")
    summary = analysis.analyze(splits, workdir, class_names=class_names,
                               multilabel=multilabel, dataset_name=name,
                               max_images=_MAX_IMAGES.value, seed=_SEED.value,
                               bad_inputs=bad_inputs)
    print(f"wrote {summary}")


if __name__ == "__main__":
    launch.run(main)
