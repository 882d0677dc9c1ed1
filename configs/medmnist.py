"""MedMNIST 2D datasets from their official `.npz` files, with a small CNN.

    --config=configs/medmnist.py                       generated 28 px stand-in (5 classes)
    --config=configs/medmnist.py --config.data.path=../shared/data/medmnist/retinamnist.npz
    --config=configs/medmnist.py:multilabel            generated multi-label stand-in
    --config=configs/medmnist.py:retinamnist           the shared RetinaMNIST (run from the
                                                       repository root)

The split is the file's own (train/val/test). The model is the Fashion-MNIST notebook's
2-conv, 2-dense CNN (`grid_cnn`); `model.num_classes` must equal the file's class (or
label) count.
"""

from jaxcx.config import base_config, parse_arg


def _multilabel(config):
    config.data.generated_task = "multilabel"
    config.loss.name = "sigmoid_bce"
    config.train.best_metric = "val/roc_auc"


def _retinamnist(config):
    """RetinaMNIST (28 px RGB, 5 grades scored as 5 classes, as MedMNIST's benchmark does);
    the learning rate and epochs were chosen on its validation split (docs/results/medmnist)."""
    config.data.path = "../shared/data/medmnist/retinamnist.npz"
    config.optim.learning_rate = 3e-4
    config.train.num_epochs = 40
    config.train.best_metric = "val/roc_auc"


VARIANTS = {"multilabel": _multilabel, "retinamnist": _retinamnist}


def get_config(arg=None):
    config = base_config()
    config.name = "medmnist"
    config.data = {"name": "medmnist", "path": "", "class_names": (),
                   "generated_task": "multiclass", "cache_dir": ""}
    config.model = {"name": "grid_cnn", "num_classes": 5, "num_conv_layers": 2,
                    "num_dense_layers": 2, "kernel_size": 5}
    config.optim.name = "adam"
    config.optim.learning_rate = 1e-3
    config.train.num_epochs = 10
    config.train.batch_size = 64
    config.train.eval_batch_size = 200
    config.train.log_every_steps = 20
    config.train.xla_small_model = True
    return parse_arg(arg, VARIANTS, config)
