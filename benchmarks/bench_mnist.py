"""The XOR/MNIST notebook's MNIST CNN, batch 64, Adam: training images/s in jaxcx beside
PyTorch eager.

    python benchmarks/bench_mnist.py [--steps=200] [--repeats=3] [--torch_threads=1,2]

Same model (conv 16@3x3, pool, conv 32@3x3, pool, linear 800->10; 12,810 parameters),
batch, optimizer (Adam 1e-3, softmax cross-entropy) and step count on both sides, with
the batches already in memory (random images: speed does not depend on content).
jaxcx rows (`mnist_cnn`'s `conv` picks the form of its conv + ReLU + pool blocks):
- `engine`: `jaxcx.train.steps.compile_steps`' jitted step, one call per batch, as
  `jaxcx.train.loop.fit` runs it for `configs/mnist.py` on CPU: `conv="fused"` (what the
  default `conv="auto"` picks on CPU, `jaxcx.models.layers.ConvReluPool`) compiled with
  `small_model_compiler_options()` (`train.xla_small_model`); the first call's compile
  time is printed;
- `engine, default XLA options`: the same step with XLA's default options;
- `engine, conv='xla'`: the first row's step with `nn.Conv` + ReLU + `max_pool_2x2` (the
  pooling `pool_2x2` picks on CPU);
- `scan`: `jaxcx.train.multiseed`'s trainer, every step of the epoch inside `lax.scan`,
  with `conv="patch"` (`PatchConv`: XLA:CPU runs `nn.Conv` weight gradients slowly in loops).
Ratios are torch time over jaxcx time, against the fastest torch thread count timed.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
from absl import app, flags

from bench_common import REPEATS, best_time, machine, torch_speeds
from jaxcx.config import load_config
from jaxcx.models import build_model
from jaxcx.train import multiseed, sharding
from jaxcx.train.losses import make_loss
from jaxcx.train.optim import make_optimizer
from jaxcx.train.state import create_train_state
from jaxcx.train.steps import compile_steps, small_model_compiler_options

_STEPS = flags.DEFINE_integer("steps", 200, "training steps per timing")
_BATCH_SIZE = 64


def engine_speed(model, optimizer, loss, images, labels, repeats, compiler_options=None):
    """(seconds for all steps, first-call compile seconds) of the engine's jitted step,
    `compile_steps(..., compiler_options)`: with None, as `jaxcx.train.loop.fit` runs it."""
    mesh = sharding.make_mesh()
    train_step, _ = compile_steps(loss, mesh, 10, compiler_options)
    batches = [sharding.shard_batch({"image": images[i], "label": labels[i],
                                     "mask": np.ones(_BATCH_SIZE, np.float32)}, mesh)
               for i in range(len(images))]
    state = sharding.replicate(create_train_state(model, optimizer, images[0][:1], 0), mesh)
    start = time.perf_counter()
    state, _ = train_step(state, batches[0])
    jax.block_until_ready(state.params)
    compile_seconds = time.perf_counter() - start

    def run():
        nonlocal state
        for batch in batches:
            state, _ = train_step(state, batch)
        jax.block_until_ready(state.params)

    return best_time(run, repeats), compile_seconds


def scan_speed(model, optimizer, loss, images, labels, repeats):
    """(seconds, compile seconds) of one epoch over the same images in `lax.scan`."""
    data = {"image": jnp.asarray(images.reshape(-1, *images.shape[2:])),
            "label": jnp.asarray(labels.reshape(-1))}
    key = jax.random.key(0)
    orders = multiseed.epoch_orders(key[None], 1, len(data["label"]))[0]
    trainer = multiseed.make_seed_trainer(model, optimizer, loss, num_epochs=1, batch_size=_BATCH_SIZE)
    start = time.perf_counter()
    compiled = jax.jit(trainer, compiler_options=small_model_compiler_options())
    compiled = compiled.lower(key, data, orders).compile()
    compile_seconds = time.perf_counter() - start
    return best_time(lambda: jax.block_until_ready(compiled(key, data, orders)), repeats), compile_seconds


def torch_seconds(images, labels, repeats) -> dict[int, float]:
    """Seconds of the same steps in PyTorch eager, per thread count."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(800, 10))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    batches = [(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y).long())
               for x, y in zip(images, labels)]

    def run():
        for x, y in batches:
            optimizer.zero_grad()
            loss_fn(net(x), y).backward()
            optimizer.step()

    run()  # warm-up
    return torch_speeds(run, repeats)


def main(argv):
    del argv
    print(f"machine: {machine()}")
    steps, repeats = _STEPS.value, REPEATS.value
    rng = np.random.default_rng(0)
    images = rng.random((steps, _BATCH_SIZE, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, (steps, _BATCH_SIZE)).astype(np.int32)
    config = load_config("configs/mnist.py")
    optimizer, _ = make_optimizer(config.optim, steps)
    loss = make_loss(config.loss)
    num_images = steps * _BATCH_SIZE
    model_config = config.study.candidate.model.to_dict()
    cnn = {form: build_model({**model_config, "conv": form}) for form in ("fused", "xla", "patch")}
    fit_options = small_model_compiler_options() if config.train.xla_small_model else None
    rows = {
        "engine (as fit runs it)": engine_speed(cnn["fused"], optimizer, loss, images, labels,
                                                repeats, fit_options),
        "engine, default XLA options": engine_speed(cnn["fused"], optimizer, loss, images,
                                                    labels, repeats),
        "engine, conv='xla' (nn.Conv)": engine_speed(cnn["xla"], optimizer, loss, images,
                                                     labels, repeats, fit_options),
        "scan (multiseed), conv='patch'": scan_speed(cnn["patch"], optimizer, loss, images,
                                                     labels, repeats),
    }
    reference = torch_seconds(images, labels, repeats)
    fastest = min(reference.values())
    print(f"\n[3] MNIST CNN, batch {_BATCH_SIZE}, Adam, {steps} steps ({num_images} images)")
    for name, (seconds, compile_seconds) in rows.items():
        print(f"  jaxcx {name:32s} {num_images / seconds:8.0f} img/s   compile {compile_seconds:5.2f} s"
              f"   ratio {fastest / seconds:4.2f}x")
    for threads, seconds in reference.items():
        print(f"  torch eager, {threads} thread(s){'':22s}{num_images / seconds:8.0f} img/s")


if __name__ == "__main__":
    app.run(main)
