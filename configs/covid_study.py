"""The COVID notebook as one study: its sample and modified MLPs (COVID-19 vs Normal,
256 px), the 3-class MLP, a small CNN and ResNet-18 (128 px) on the same split.

    --config=configs/covid_study.py          the shared COVID-19 Radiography data
    --config=configs/covid_study.py:quick    generated phantom folders, tiny models (CI)

Each arm is `configs/covid.py`'s base with the arm's changes; `study.seeds` are every
arm's seeds unless `study.arm_seeds.ARM` names its own.
"""

from pathlib import Path

from jaxcx.config import load_config, parse_arg

BASE = Path(__file__).with_name("covid.py")
CNN_DATA = {"image_size": 128}
ADAM = {"name": "adam", "learning_rate": 1e-3}
ARMS = {
    "sample_mlp": {},
    "modified_mlp": {"model": {"hidden": (1024, 256)}, "optim": {"learning_rate": 1e-3},
                     "train": {"num_epochs": 40}},
    "three_class_mlp": {"data": {"classes": "three"}, "loss": {"name": "softmax_ce"},
                        "model": {"hidden": (1024, 256), "num_outputs": 3},
                        "optim": {"learning_rate": 1e-3}, "train": {"num_epochs": 40}},
    "cnn": {"data": CNN_DATA, "optim": ADAM, "train": {"num_epochs": 10, "batch_size": 32},
            "model": {"name": "chest_cnn", "num_classes": 1, "conv_features": (16, 32, 64, 128),
                      "hidden_features": 128, "dropout_rate": 0.5}},
    "resnet18": {"data": CNN_DATA, "optim": ADAM, "train": {"num_epochs": 6, "batch_size": 32},
                 "model": {"name": "resnet", "num_classes": 1, "depth": 18,
                           "dropout_rate": 0.0}},
}


def _quick(config):
    """Generated phantom folders at 32 px, tiny models, 2 epochs, one seed."""
    config.data.generated.enabled = True
    config.data.image_size = 32
    config.train.batch_size = 8
    config.study.seeds = (0,)
    config.study.arm_seeds = {}
    small = {"sample_mlp": {"model": {"hidden": (32,)}, "train": {"num_epochs": 2}},
             "modified_mlp": {"model": {"hidden": (32, 8)}, "train": {"num_epochs": 2}},
             "three_class_mlp": {**ARMS["three_class_mlp"], "model": {
                 "hidden": (32, 8), "num_outputs": 3}, "train": {"num_epochs": 2}},
             "cnn": {**ARMS["cnn"], "data": {"image_size": 32},
                     "train": {"num_epochs": 2, "batch_size": 8},
                     "model": {**ARMS["cnn"]["model"], "conv_features": (4, 8),
                               "hidden_features": 8}},
             "resnet18": {**ARMS["resnet18"], "data": {"image_size": 32},
                          "train": {"num_epochs": 1, "batch_size": 8}, "model": {
                              **ARMS["resnet18"]["model"], "stages": (1, 1),
                              "stage_widths": (8, 16), "stem_width": 8}}}
    config.study.arms = small


VARIANTS = {"quick": _quick}


def get_config(arg=None):
    config = load_config(str(BASE))
    config.unlock()
    config.name = "covid_study"
    # Test targets at threshold 0.5: the notebook's modified MLP, and the CNN arm.
    config.study = {"seeds": (0, 1), "arm_seeds": {"resnet18": (0,)}, "arms": ARMS,
                    "targets": {"modified_mlp": {"accuracy": 0.750, "roc_auc": 0.842},
                                "cnn": {"roc_auc": 0.98}}}
    return parse_arg(arg, VARIANTS, config)
