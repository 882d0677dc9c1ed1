"""The XOR/MNIST notebook's MNIST comparison: feed-forward 784-128-64-10 versus the small
CNN.

Both train with the notebook's batch 64 and Adam (variant `sgd`: SGD with momentum), pick the
best epoch on the last 5,000 training images and are tested once on the 10,000 test
images. MNIST IDX files are read from `data.root` (default ../shared/data/mnist, or
$JAXCX_SHARED_DATA/mnist). Variant `smoke` trains briefly on small generated IDX files.
"""

from jaxcx.config import base_config, parse_arg


def _sgd(config):
    config.optim.name = "sgd"
    config.optim.learning_rate = 0.01
    config.optim.momentum = 0.9


def _smoke(config):
    config.data.generated = True
    config.data.val_size = 200
    config.train.num_epochs = 2
    config.train.eval_batch_size = 200
    config.train.log_every_steps = 10
    config.tracking.tensorboard = False


VARIANTS = {"sgd": _sgd, "smoke": _smoke}


def get_config(arg=None):
    config = base_config()
    config.name = "mnist_study"
    config.model = {"name": "mnist_cnn"}  # replaced by each model of `study` in turn
    config.data = {"name": "mnist", "root": "", "verify": False, "cache_dir": "",
                   "val_size": 5000, "generated": False}
    config.loss.name = "softmax_ce"
    config.optim.name = "adam"
    config.optim.learning_rate = 1e-3
    config.train.num_epochs = 10
    config.train.batch_size = 64
    config.train.xla_small_model = True  # small matrices: plain XLA dots are faster
    config.train.eval_batch_size = 1000
    config.train.log_every_steps = 200
    config.train.best_metric = "val/accuracy"
    # The notebook's Table 2 compares `baseline` with `candidate`; each trains in workdir/<run>.
    config.study = {
        "baseline": {"run": "feed_forward", "label": "Feed Forward",
                     "model": {"name": "mlp", "hidden": (128, 64)}},
        "candidate": {"run": "cnn", "label": "CNN", "model": {"name": "mnist_cnn"}},
    }
    return parse_arg(arg, VARIANTS, config)
