"""The CheXpert notebook's multi-label framework: one config with defaults, overridden one
field at a time.

    --config=configs/chest_multilabel.py                 generated CheXpert-format data,
                                                         tiny DenseNet, 32 px (seconds)
    --config=configs/chest_multilabel.py:nih,densenet121 the shared NIH ChestX-ray14
                                                         sample at 64 px, DenseNet-121
    --config=configs/chest_multilabel.py:nih,resnet18,oversample,positive_weights

Data (`data.name`): `chexpert` (a CheXpert CSV, cleaned as the notebook: frontal AP/PA
views of the first 4 studies, 12 labels, `uncertain` policy, patient split),
`nih_chestxray14` (the Data_Entry_2017 table, 14 findings, official split lists) or
`multilabel_csv` (variant `labelled_csv`: your images with one 0/1 column per label).
Models: `densenet` (121/169/201), `resnet` (18/34/50, 1 channel, optional spatial
dropout), `chest_cnn`. Loss: sigmoid BCE with optional per-label positive weights and
`sum` or `mean` reduction; Adam with coupled L2 (`optim.weight_decay`, PyTorch's
semantics with `optim.decay_all`) or AdamW. Thresholds per label are chosen on
validation (`eval.threshold`: f1, or 'recall' reaching `eval.target_recall`).

The study (`experiments.chest_multilabel_study`) trains each arm of `study.arms` (config
changes against this base) over `study.seeds`.
"""

from jaxcx.config import base_config, parse_arg
from jaxcx.data.chexpert import COMPETITION_LABELS

AUGMENT = {"enabled": False, "p": 0.2, "rotation_degrees": 5.0, "translate_fraction": 0.05,
           "shear_degrees": 5.0, "brightness": 0.2, "contrast": 0.1, "hflip": False}
IMAGE_FIELDS = {"image_size": 32, "channels": 1, "resize_mode": "stretch",
                "normalization": "standardize", "augment": AUGMENT, "oversample_min_count": 0,
                "on_bad_input": "raise", "encoding": "utf-8", "cache_dir": "",
                "worker_count": 0, "labels": (), "split_seed": 0}
TINY_DENSENET = {"name": "densenet", "num_classes": 12, "blocks": (2, 2), "growth": 8,
                 "bottleneck": 2, "dropout_rate": 0.0}


def _chexpert_data():
    return {"name": "chexpert", "csv": "", "root": "", "uncertain": "zeros", "max_studies": 4,
            "subset_size": 0, "val_fraction": 0.2, "test_fraction": 0.2,
            "generated": {"num_patients": 80, "seed": 0, "image_size": 48}, **IMAGE_FIELDS}


def _nih(config):
    """The NIH ChestX-ray14 sample (../shared/data, or data.root) at 64 px, official split."""
    config.data = {"name": "nih_chestxray14", "root": "", "csv": "", "split": "official",
                   "val_fraction": 0.1, "test_fraction": 0.2, **IMAGE_FIELDS}
    config.data.image_size = 64
    config.model.num_classes = 14
    config.train.num_epochs = 15
    config.train.batch_size = 32


def _labelled_csv(config):
    """Your own images with one 0/1 column per label: set data.csv and data.label_columns
    (and model.num_classes to their count)."""
    config.data = {"name": "multilabel_csv", "csv": "", "root": "", "path_column": "path",
                   "label_columns": (), "group_column": "", "uncertain": "zeros",
                   "val_fraction": 0.2, "test_fraction": 0.2, **IMAGE_FIELDS}


def _densenet121(config):
    config.model = {"name": "densenet", "num_classes": config.model.num_classes, "depth": 121,
                    "dropout_rate": 0.0}


def _resnet(depth):
    def variant(config):
        config.model = {"name": "resnet", "num_classes": config.model.num_classes,
                        "depth": depth, "dropout_rate": 0.0}
    variant.__doc__ = f"ResNet-{depth} on 1-channel input."
    return variant


def _chest_cnn(config):
    config.model = {"name": "chest_cnn", "num_classes": config.model.num_classes}


def _competition(config):
    """The 5 CheXpert competition labels."""
    config.data.labels = COMPETITION_LABELS
    config.model.num_classes = len(COMPETITION_LABELS)


def _oversample(config):
    config.data.oversample_min_count = 150


def _positive_weights(config):
    config.loss.positive_weights = True


def _augment(config):
    config.data.augment.enabled = True


def _l2(config):
    """The notebook's `l2_reg` 0.1 on every parameter, coupled to Adam (PyTorch's)."""
    config.optim.weight_decay = 0.1
    config.optim.decay_all = True


VARIANTS = {"nih": _nih, "labelled_csv": _labelled_csv, "densenet121": _densenet121, "resnet18": _resnet(18),
            "resnet34": _resnet(34), "resnet50": _resnet(50), "chest_cnn": _chest_cnn,
            "competition": _competition, "oversample": _oversample,
            "positive_weights": _positive_weights, "augment": _augment, "l2": _l2}


def get_config(arg=None):
    config = base_config()
    config.name = "chest_multilabel"
    config.data = _chexpert_data()
    config.model = dict(TINY_DENSENET)
    config.loss = {"name": "sigmoid_bce", "label_smoothing": 0.0, "positive_weights": False,
                   "pos_weight": (), "reduction": "mean"}
    config.optim.name = "adam"
    config.optim.learning_rate = 1e-3
    config.optim.decay_all = False
    config.train.num_epochs = 3
    config.train.batch_size = 16
    config.train.eval_batch_size = 64
    config.train.log_every_steps = 10
    config.train.best_metric = "val/roc_auc"
    config.eval.threshold = "f1"
    config.eval.target_recall = 0.8
    # (label, threshold) pairs (the notebook's target thresholds; 0.5 for labels not
    # named), e.g. "(('Edema', 0.2),)", and the labels the per-label tables and figures
    # show (empty: all).
    config.eval.label_thresholds = ()
    config.eval.include_targets = ()
    # Arms: config changes against this base, each trained at every seed; labels with
    # fewer positives than `min_positives` in a split are left out of its mean AUC.
    config.study = {"seeds": (0,), "min_positives": 20, "arms": {
        "densenet": {},
        "resnet": {"model": {"name": "resnet", "num_classes": 12, "depth": 18,
                             "stages": (1, 1), "stage_widths": (8, 16), "stem_width": 8}},
    }}
    return parse_arg(arg, VARIANTS, config)
