"""Seed 000: chest X-ray pneumonia with the FlexModel CNN.

    --config=configs/pneumonia.py:baseline,quick      generated phantoms, minutes (default)
    --config=configs/pneumonia.py:baseline,cpu        real data, 64 px, fits a 2-core CPU
    --config=configs/pneumonia.py:baseline,full       the seed's settings (224 px, 50 epochs)

Variants name a model/loss choice; profiles (quick, cpu, full) set data size and budget.
With no profile, `quick` applies. `--config.data.root=PATH` points at a Kaggle-layout
folder; empty means the generated phantom set.
"""

from jaxcx.config import base_config, parse_arg


def _baseline(config):
    """The seed's baseline: 32 maps, 3x3, ReLU, no regularisation, SGD 1e-3, batch 32."""


def _weighted_loss(config):
    config.loss.name = "weighted_ce"


def _regularisation(config):
    config.model.regularisation = True


def _combined(config):
    _weighted_loss(config)
    _regularisation(config)


def _quick(config):
    config.data.root = ""
    config.data.image_size = 32
    config.train.num_epochs = 3
    config.train.batch_size = 16
    config.optim.name = "adam"


def _cpu(config):
    config.data.image_size = 64
    config.train.num_epochs = 12


def _full(config):
    config.data.image_size = 224
    config.train.num_epochs = 50


VARIANTS = {"baseline": _baseline, "weighted_loss": _weighted_loss,
            "regularisation": _regularisation, "combined": _combined}
PROFILES = {"quick": _quick, "cpu": _cpu, "full": _full}


def get_config(arg=None):
    config = base_config()
    config.name = "pneumonia"
    config.seed = 28
    config.model = {"name": "flex_cnn", "num_classes": 2, "feature_maps": 32, "kernel_size": 3,
                    "activation": "relu", "regularisation": False, "dropout_rate": 0.5,
                    "batch_norm_momentum": 0.9}
    config.data = {
        "name": "chest_xray", "root": "", "split": "seed000", "image_size": 224, "channels": 1,
        "resize_mode": "stretch", "normalization": "standardize", "on_bad_input": "raise",
        "cache_dir": "", "worker_count": 0,
        "augment": {"enabled": False, "p": 0.2, "rotation_degrees": 5.0,
                    "translate_fraction": 0.05, "shear_degrees": 5.0, "brightness": 0.2,
                    "contrast": 0.1, "hflip": False},
        "phantom": {"num_images": 400, "seed": 0, "min_size": 300, "max_size": 400},
    }
    config.loss.name = "softmax_ce"
    config.optim.name = "sgd"
    config.optim.learning_rate = 1e-3
    config.optim.momentum = 0.0
    config.train.batch_size = 32
    config.train.eval_batch_size = 128
    config.train.log_every_steps = 20
    tokens = [t.strip() for t in (arg or "").split(",") if t.strip()]
    if not any(t in PROFILES for t in tokens):
        tokens.append("quick")
    for token in tokens:  # profiles last, so a variant cannot undo the budget
        if token in VARIANTS or "=" in token:
            parse_arg(token, {**VARIANTS, **PROFILES}, config)
    for token in tokens:
        if token in PROFILES:
            PROFILES[token](config)
    unknown = [t for t in tokens if t not in VARIANTS and t not in PROFILES and "=" not in t]
    if unknown:
        parse_arg(unknown[0], {**VARIANTS, **PROFILES}, config)  # raises, listing both
    config.name = "pneumonia_" + "_".join(t for t in tokens if "=" not in t)
    return config
