"""Seed 001's MNIST CNN, batch 64, Adam: training images/s in jaxcx beside PyTorch eager.

    python benchmarks/bench_seed001_mnist.py [--steps=200] [--repeats=3] [--torch_threads=1,2]

Same model (conv 16@3x3, pool, conv 32@3x3, pool, linear 800->10; 12,810 parameters),
batch, optimizer (Adam 1e-3, softmax cross-entropy) and step count on both sides, with
the batches already in memory (random images: speed does not depend on content).
jaxcx rows:
- `engine`: `jaxcx.train.steps.compile_steps`' jitted step, one call per batch, as
  `jaxcx.train.loop.fit` runs it (the first call's compile time is printed);
- `engine, small-model XLA options`: the same pure `train_step` jitted with
  `multiseed.small_model_compiler_options()` (no XNNPACK/YNN fusions on CPU);
- `scan`: `jaxcx.train.multiseed`'s trainer, every step of the epoch inside `lax.scan`
  (XLA:CPU runs the convolution weight gradients slowly inside loops);
- `patch conv` rows: the same network with its convolutions written as shifted slices +
  one matmul (`PatchConv`: parameters and outputs identical to `nn.Conv`), to show what
  that layer change would give; it is not a registered jaxcx model.
Ratios are torch time over jaxcx time, against the fastest torch thread count timed.
"""

from __future__ import annotations

import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import torch
from absl import app, flags

from bench_seed001_common import REPEATS, best_time, machine, torch_speeds
from jaxcx.config import load_config
from jaxcx.models import build_model
from jaxcx.models.layers import flatten, max_pool_2x2
from jaxcx.train import multiseed, sharding
from jaxcx.train.losses import make_loss
from jaxcx.train.optim import make_optimizer
from jaxcx.train.state import create_train_state
from jaxcx.train import steps
from jaxcx.train.steps import compile_steps

_STEPS = flags.DEFINE_integer("steps", 200, "training steps per timing")
_BATCH_SIZE = 64


class PatchConv(nn.Module):
    """A VALID, stride-1 `nn.Conv` computed as shifted slices concatenated + one matmul."""

    features: int
    kernel_size: tuple[int, int] = (3, 3)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = self.kernel_size
        kernel = self.param("kernel", nn.initializers.lecun_normal(),
                            (kh, kw, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        height, width = x.shape[1] - kh + 1, x.shape[2] - kw + 1
        patches = jnp.concatenate([x[:, i:i + height, j:j + width, :]
                                   for i in range(kh) for j in range(kw)], axis=-1)
        return patches @ kernel.reshape(-1, self.features) + bias


class PatchConvCNN(nn.Module):
    """Seed 001's CNN with `PatchConv` layers; same parameter tree as `seed001_cnn`."""

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        x = max_pool_2x2(nn.relu(PatchConv(16, name="conv1")(x)))
        x = max_pool_2x2(nn.relu(PatchConv(32, name="conv2")(x)))
        return nn.Dense(10, name="fc")(flatten(x))


def engine_speed(model, optimizer, loss, images, labels, repeats, compiler_options=None):
    """(seconds for all steps, first-call compile seconds) of the engine's jitted step:
    as `compile_steps` builds it, or with `compiler_options` when given."""
    mesh = sharding.make_mesh()
    if compiler_options is None:
        train_step, _ = compile_steps(loss, mesh, 10)
    else:
        train_step = jax.jit(lambda state, batch: steps.train_step(state, batch, loss),
                             donate_argnums=0, compiler_options=compiler_options)
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
    compiled = jax.jit(trainer, compiler_options=multiseed.small_model_compiler_options())
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
    cnn = build_model(config.study.candidate.model)
    options = multiseed.small_model_compiler_options()
    patch_cnn = PatchConvCNN()
    rows = {
        "engine (jit per step)": engine_speed(cnn, optimizer, loss, images, labels, repeats),
        "engine, small-model XLA options": engine_speed(cnn, optimizer, loss, images, labels,
                                                        repeats, options),
        "scan (multiseed)": scan_speed(cnn, optimizer, loss, images, labels, repeats),
        "engine, patch conv": engine_speed(patch_cnn, optimizer, loss, images, labels, repeats),
        "engine + options, patch conv": engine_speed(patch_cnn, optimizer, loss, images, labels,
                                                     repeats, options),
        "scan (multiseed), patch conv": scan_speed(patch_cnn, optimizer, loss, images, labels,
                                                   repeats),
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
