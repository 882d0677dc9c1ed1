"""The CheXpert notebook's run comparison on the NIH ChestX-ray14 sample: DenseNet-121
versus ResNet-18, 3 seeds each, at 64 px (CPU-sized: DenseNet-121 trains at about 30
images/s there), Adam 1e-3, 12 epochs, the notebook's augmentation (p = 0.2); selection
on validation, one test evaluation.

    --config=configs/chest_multilabel_study.py          the NIH sample (../shared/data)
    --config=configs/chest_multilabel_study.py:quick    generated CheXpert-format data and
                                                        tiny models (about a minute)

Every run's config is the base (`configs/chest_multilabel.py:nih`) with its arm's
changes (`study.arms`); `study.seeds` are the seeds of each arm.
"""

from pathlib import Path

from jaxcx.config import load_config, parse_arg

BASE = Path(__file__).with_name("chest_multilabel.py")

NIH_ARMS = {
    "densenet121": {"model": {"name": "densenet", "num_classes": 14, "depth": 121,
                              "dropout_rate": 0.0}},
    "resnet18": {"model": {"name": "resnet", "num_classes": 14, "depth": 18,
                           "dropout_rate": 0.0}},
}


def _quick(config):
    """Generated CheXpert-format data, tiny DenseNet and ResNet, 2 seeds, 2 epochs."""
    quick = load_config(str(BASE))
    quick.unlock()
    config.data = quick.data
    config.model = quick.model
    config.train.num_epochs = 2
    config.train.batch_size = 16
    config.study.seeds = (0, 1)
    config.study.arms = quick.study.arms


VARIANTS = {"quick": _quick}


def get_config(arg=None):
    config = load_config(f"{BASE}:nih,densenet121")
    config.unlock()
    config.name = "chest_multilabel_study"
    config.train.num_epochs = 12
    config.data.augment.enabled = True  # the notebook's default: p = 0.2 per image
    config.study.seeds = (0, 1, 2)
    config.study.arms = NIH_ARMS
    return parse_arg(arg, VARIANTS, config)
