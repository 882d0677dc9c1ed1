"""Compile time and step time of the engine's jitted train step for the studies' models.

    python benchmarks/bench_steps.py [--steps 200]

The reference, measured in the same run, is the same step under a plain `jax.jit` with
no shardings or donation: the ratio shows what the mesh plumbing costs (about 1.0).
"""

import argparse
import statistics
import time

import jax
import numpy as np

from jaxcx.config import ConfigDict
from jaxcx.models import build_model
from jaxcx.train import sharding
from jaxcx.train.losses import make_loss
from jaxcx.train.optim import make_optimizer
from jaxcx.train.state import create_train_state
from jaxcx.train.steps import compile_steps, train_step

CASES = {
    "xor_mlp w3 d3, batch 128": ({"name": "xor_mlp", "width": 3, "depth": 3}, (2,), 128,
                                 "sigmoid_bce", 2),
    "mnist_cnn, batch 64": ({"name": "mnist_cnn"}, (28, 28, 1), 64, "softmax_ce", 10),
    "flex_cnn 64 px, batch 32": ({"name": "flex_cnn", "num_classes": 2}, (64, 64, 1), 32,
                                 "softmax_ce", 2),
    "  + BatchNorm": ({"name": "flex_cnn", "num_classes": 2, "regularisation": True,
                       "dropout_rate": 0.0}, (64, 64, 1), 32, "softmax_ce", 2),
    "  + BatchNorm + dropout 0.5": ({"name": "flex_cnn", "num_classes": 2,
                                     "regularisation": True}, (64, 64, 1), 32, "softmax_ce", 2),
}


def time_steps(step, state, batch, steps):
    """(first call seconds, median steady seconds per step)."""
    start = time.perf_counter()
    state, out = step(state, batch)
    jax.block_until_ready(out)
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        state, out = step(state, batch)
        jax.block_until_ready(out)
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    mesh = sharding.make_mesh()
    print(f"devices: {jax.devices()}")
    print(f"{'model':28s} {'compile s':>9s} {'step ms':>8s} {'plain jit ms':>12s} {'ratio':>6s}")
    for name, (model_cfg, shape, batch_size, loss_name, classes) in CASES.items():
        rng = np.random.default_rng(0)
        labels = rng.integers(0, classes, batch_size).astype(np.int32)
        batch = {"image": rng.normal(size=(batch_size, *shape)).astype(np.float32),
                 "label": labels, "mask": np.ones(batch_size, np.float32)}
        tx, _ = make_optimizer(ConfigDict({"name": "adam", "learning_rate": 1e-3}), 1000)
        loss = make_loss(ConfigDict({"name": loss_name}))
        model = build_model(model_cfg)
        engine_step, _ = compile_steps(loss, mesh, classes)
        state = sharding.replicate(create_train_state(model, tx, batch["image"][:1], 0), mesh)
        compile_s, engine_s = time_steps(engine_step, state, sharding.shard_batch(batch, mesh),
                                         args.steps)
        plain = jax.jit(lambda s, b: train_step(s, b, loss))
        state = create_train_state(model, tx, batch["image"][:1], 0)
        _, plain_s = time_steps(plain, state, batch, args.steps)
        print(f"{name:28s} {compile_s:9.2f} {engine_s * 1e3:8.3f} {plain_s * 1e3:12.3f} "
              f"{plain_s / engine_s:6.2f}")


if __name__ == "__main__":
    main()
