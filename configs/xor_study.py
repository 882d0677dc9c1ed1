"""The XOR/MNIST notebook's deep-versus-wide study: xor_mlp of width 1..3 and depth 0..3,
10 seeds each.

Defaults follow the notebook: 2,500 training points and a separate 500-point
evaluation set (noise std 0.1), tanh MLP with one logit, BCE, plain SGD at 0.1,
batch 128, 100 epochs. Variants: `adam` (Adam at 0.01), `smoke` (a few seconds: 2
widths x 2 depths x 2 seeds on little data); fields as `num_seeds=20,num_epochs=50`.
"""

from jaxcx.config import base_config, parse_arg


def _adam(config):
    config.optim.name = "adam"
    config.optim.learning_rate = 0.01


def _smoke(config):
    config.data.train_size = 200
    config.data.eval_size = 100
    config.train.num_epochs = 5
    config.train.batch_size = 32
    config.study.widths = (1, 3)
    config.study.depths = (0, 1)
    config.study.num_seeds = 2
    config.study.boundary_settings = ((1, 0), (3, 1))


VARIANTS = {"adam": _adam, "smoke": _smoke}
SHORTCUTS = {"num_seeds": "study.num_seeds", "num_epochs": "train.num_epochs"}


def get_config(arg=None):
    config = base_config()
    config.name = "xor_study"
    config.model = {"name": "xor_mlp", "activation": "tanh"}
    config.data = {"name": "xor", "train_size": 2500, "eval_size": 500, "noise_std": 0.1,
                   "data_seed": 0, "eval_data_seed": 1}
    config.loss.name = "sigmoid_bce"
    config.optim.name = "sgd"
    config.optim.learning_rate = 0.1
    config.optim.momentum = 0.0
    config.train.num_epochs = 100
    config.train.batch_size = 128
    config.study = {
        "widths": (1, 2, 3),
        "depths": (0, 1, 2, 3),
        "num_seeds": 10,
        # (width, depth) pairs whose decision boundaries are drawn.
        "boundary_settings": ((1, 0), (2, 2), (3, 0), (3, 3)),
    }
    return parse_arg(",".join(map(_expand_shortcut, (arg or "").split(","))), VARIANTS, config)


def _expand_shortcut(token: str) -> str:
    field, equals, value = token.strip().partition("=")
    return SHORTCUTS.get(field, field) + equals + value
