"""The COVID notebook's chest X-ray classifiers, one config with named variants.

    --config=configs/covid.py                   the sample MLP (flatten -> sigmoid Dense
                                                1024 -> 1 logit), SGD 0.01, 5 epochs
    --config=configs/covid.py:modified          Dense 1024 -> 256 -> 1, SGD 0.001, 40 epochs
    --config=configs/covid.py:modified,three_class   COVID-19 / viral pneumonia / normal
    --config=configs/covid.py:cnn               a small CNN (Adam) on 128 px
    --config=configs/covid.py:resnet18          ResNet-18 (1 channel, Adam) on 128 px
    --config=configs/covid.py:generated         generated phantom folders (tests, CI)

Data (`covid_radiography`): the shared COVID-19 Radiography Database subset (COVID/,
Normal/) plus, for three classes, the viral-pneumonia images of the shared lung
segmentation set; a stratified 64/16/20 split keeping byte-identical files together.
Every image first passes through 224 px and one JPEG generation at quality 90
(`data.common_size`, `data.jpeg_quality`; the sources differ in both), then is resized
to `data.image_size` (256, the notebook's input) and scaled to [0, 1].
"""

from jaxcx.config import base_config, parse_arg

CNN_SIZE = 128  # the convolutional arms' input: 256 px costs them 8x the time on 2 cores


def _modified(config):
    """The notebook's modified classifier: 1024 -> 256 -> 1 (sigmoid), SGD 0.001, 40 epochs."""
    config.model.hidden = (1024, 256)
    config.optim.learning_rate = 1e-3
    config.train.num_epochs = 40


def _three_class(config):
    """COVID-19 / Viral Pneumonia / Normal, softmax over 3 logits."""
    config.data.classes = "three"
    config.loss.name = "softmax_ce"
    if config.model.name == "covid_mlp":
        config.model.num_outputs = 3
    else:
        config.model.num_classes = 3
    config.train.best_metric = "val/loss"


def _cnn_arm(config, model):
    config.model = model
    config.data.image_size = CNN_SIZE
    config.optim.name = "adam"
    config.optim.learning_rate = 1e-3
    config.train.batch_size = 32
    config.train.num_epochs = 10


def _cnn(config):
    """The small CNN (4 x conv-BN-ReLU-pool, Dense 128, dropout), Adam 1e-3, 128 px."""
    _cnn_arm(config, {"name": "chest_cnn", "num_classes": 1, "conv_features": (16, 32, 64, 128),
                      "hidden_features": 128, "dropout_rate": 0.5})


def _resnet18(config):
    """ResNet-18 on 1 channel, Adam 1e-3, 128 px, 6 epochs."""
    _cnn_arm(config, {"name": "resnet", "num_classes": 1, "depth": 18, "dropout_rate": 0.0})
    config.train.num_epochs = 6


def _generated(config):
    """Generated COVID/Normal/viral phantom folders (20 per class) at 32 px, tiny MLP."""
    config.data.generated.enabled = True
    config.data.image_size = 32
    config.model.hidden = (64,)
    config.train.num_epochs = 3
    config.train.batch_size = 16


VARIANTS = {"modified": _modified, "three_class": _three_class, "cnn": _cnn,
            "resnet18": _resnet18, "generated": _generated}


def get_config(arg=None):
    config = base_config()
    config.name = "covid"
    config.data = {
        "name": "covid_radiography", "root": "", "viral_root": "", "classes": "binary",
        "generated": {"enabled": False, "per_class": 20, "seed": 0},
        "val_fraction": 0.16, "test_fraction": 0.2, "split_seed": 0,
        "image_size": 256, "channels": 1, "resize_mode": "stretch",
        "common_size": 224, "jpeg_quality": 90, "normalization": "unit",
        "augment": {"enabled": False}, "on_bad_input": "raise", "cache_dir": "",
        "worker_count": 0, "min_per_class": 5,
    }
    config.model = {"name": "covid_mlp", "hidden": (1024,), "activation": "sigmoid",
                    "num_outputs": 1, "kernel_init": "glorot_uniform"}
    config.loss = {"name": "sigmoid_bce", "label_smoothing": 0.0, "pos_weight": (),
                   "reduction": "mean"}
    config.optim.name = "sgd"
    config.optim.learning_rate = 0.01  # Keras' SGD default
    config.optim.momentum = 0.0
    config.train.num_epochs = 5
    config.train.batch_size = 64
    config.train.eval_batch_size = 128
    config.train.log_every_steps = 10
    config.train.best_metric = "val/loss"
    config.train.best_mode = "min"
    config.eval.threshold = "youden"
    config.eval.most_wrong = 8
    return parse_arg(arg, VARIANTS, config)
