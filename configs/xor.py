"""The XOR/MNIST notebook's XOR task with one MLP: the quickest end-to-end run.

Variants: `configs/xor.py:width=3,depth=2` sets the MLP's shape; `:quick` trains briefly.
"""

from jaxcx.config import base_config, parse_arg


def _quick(config):
    config.train.num_epochs = 3
    config.data.train_size = 256


VARIANTS = {"quick": _quick}


def get_config(arg=None):
    config = base_config()
    config.name = "xor"
    config.model = {"name": "xor_mlp", "width": 3, "depth": 1, "activation": "tanh"}
    config.data = {"name": "xor", "train_size": 1000, "val_size": 500, "test_size": 500,
                   "noise_std": 0.1, "data_seed": 0}
    config.loss.name = "sigmoid_bce"
    config.optim.name = "adam"
    config.optim.learning_rate = 0.01
    config.train.num_epochs = 20
    config.train.batch_size = 32
    config.train.eval_batch_size = 500
    config.train.log_every_steps = 10
    config.train.xla_small_model = True  # small matrices: plain XLA dots are faster
    # Shortcuts for the model's shape, as in `configs/xor.py:width=3,depth=2`.
    aliases = {key: f"model.{key}" for key in ("width", "depth", "activation")}
    return parse_arg(arg, VARIANTS, config, aliases)
