"""Chest X-ray pneumonia with the pneumonia notebook's FlexModel CNN.

    --config=configs/pneumonia.py:baseline,quick      generated phantoms, minutes (default)
    --config=configs/pneumonia.py:baseline,cpu        real data, 64 px, fits a 2-core CPU
    --config=configs/pneumonia.py:baseline,full       the notebook's settings (224 px, 50 epochs)
    --config=configs/pneumonia.py:sweep,cpu           the sweep (experiments/sweep.py)

Variants name a model/loss choice (`sweep` is the notebook's combined sweep: weighted loss
and regularisation on, the search space in `config.sweep.space`); profiles (quick, cpu,
full) set data size and budget, of training runs, the sweep and the study
(`config.study`), and are recorded in `config.profile`. With no profile, `quick` applies. `--config.data.root=PATH` points at a Kaggle-layout
folder; empty means the generated phantom set.
"""

from jaxcx.config import base_config, parse_arg


def _baseline(config):
    """The notebook's baseline: 32 maps, 3x3, ReLU, no regularisation, SGD 1e-3, batch 32."""


def _weighted_loss(config):
    config.loss.name = "weighted_ce"


def _regularisation(config):
    config.model.regularisation = True


def _combined(config):
    _weighted_loss(config)
    _regularisation(config)


def _notebook_final(config):
    """The notebook's final model (`finetuned_improved`): both improvements and its sweep's
    best values."""
    _combined(config)
    config.data.image_size = 300
    config.train.batch_size = 64
    config.model.update(feature_maps=16, kernel_size=5, activation="leaky_relu",
                        dropout_rate=0.6978)
    config.optim.update(name="adam", learning_rate=3.588e-4)


def _quick(config):
    config.data.root = ""
    config.data.image_size = 32
    config.train.num_epochs = 3
    config.train.batch_size = 16
    config.optim.name = "adam"
    config.sweep.num_trials = 3
    config.sweep.num_epochs = 1
    config.sweep.space.image_size.choices = (24, 32)
    config.sweep.space.batch_size.choices = (16, 32)
    config.study.num_seeds = 2
    config.eval.bootstrap_resamples = 200


def _cpu(config):
    """64 px (the notebook's own sweep winner); the sweep keeps to 64 px and batches of 16+,
    as larger inputs and batch 8 multiply a run's time on two cores."""
    config.data.image_size = 64
    config.train.num_epochs = 12
    config.sweep.num_epochs = 5
    config.sweep.space.image_size.choices = (64,)
    config.sweep.space.batch_size.choices = (16, 32, 64)


def _full(config):
    config.data.image_size = 224
    config.train.num_epochs = 50
    config.sweep.num_epochs = 20


VARIANTS = {"baseline": _baseline, "weighted_loss": _weighted_loss,
            "regularisation": _regularisation, "combined": _combined, "sweep": _combined,
            "notebook_final": _notebook_final}
PROFILES = {"quick": _quick, "cpu": _cpu, "full": _full}


def sweep_config():
    """The notebook's search space (its wandb random sweep: 15 runs, 20 of 50 epochs each)."""
    return {
        "metric": "val/accuracy", "direction": "maximize", "num_trials": 15, "num_epochs": 20,
        "sampler": "random", "sampler_seed": 0, "storage": "", "study_name": "",
        # Workers on several machines: a trial silent for 2 heartbeats is retried; a worker
        # that cannot reach the storage gives up after storage_retry_seconds.
        "heartbeat_seconds": 60, "storage_retry_seconds": 300,
        "space": {
            "image_size": {"field": "data.image_size", "choices": (64, 224, 300, 512)},
            "batch_size": {"field": "train.batch_size", "choices": (8, 16, 32, 64)},
            "feature_maps": {"field": "model.feature_maps", "choices": (16, 32, 64)},
            "kernel_size": {"field": "model.kernel_size", "choices": (3, 5, 7)},
            "learning_rate": {"field": "optim.learning_rate", "low": 1e-5, "high": 1e-3,
                              "log": False},
            "activation": {"field": "model.activation", "choices": ("relu", "leaky_relu")},
            "optimizer": {"field": "optim.name", "choices": ("sgd", "adam")},
            "dropout": {"field": "model.dropout_rate", "low": 0.25, "high": 0.75, "log": False},
        },
    }


def get_config(arg=None):
    config = base_config()
    config.name = "pneumonia"
    config.seed = 28
    config.model = {"name": "flex_cnn", "num_classes": 2, "feature_maps": 32, "kernel_size": 3,
                    "activation": "relu", "regularisation": False, "dropout_rate": 0.5,
                    "batch_norm_momentum": 0.9}
    config.data = {
        "name": "chest_xray", "root": "", "split": "resplit", "image_size": 224, "channels": 1,
        "resize_mode": "stretch", "normalization": "standardize", "on_bad_input": "raise",
        "ignore_unknown_folders": False, "min_per_class": 5, "cache_dir": "", "worker_count": 0,
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
    config.sweep = sweep_config()
    config.study = {"num_seeds": 3, "select_metric": "val/accuracy", "analysis_max_images": 0}
    config.eval.threshold = "youden"
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
    profile = next(t for t in reversed(tokens) if t in PROFILES)
    with config.unlocked():
        config.profile = profile
    config.sweep.study_name = f"pneumonia_{profile}"
    return config
