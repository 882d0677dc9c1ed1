"""Train K seeds of one small model in one compiled program.

The whole training run of one seed is a pure function of its PRNG key and its epoch
orders (a fresh permutation of the examples per epoch, drawn on the host from the same
key by `epoch_orders`): parameter init and every optimizer step live inside nested
`lax.scan`s over epochs and steps, with the data resident on the device. `jax.vmap` of
that function over seeds trains all of them at once; `jax.jit` compiles it once.
Permutations are drawn with NumPy because sorting, the way to shuffle inside XLA, costs
about 0.5 ms per 2,500 examples on CPU, more than a whole epoch of a small MLP.

Suited to models whose only variables are `params` (MLPs, small CNNs, no BatchNorm);
dropout draws from the rng stream 'dropout'. On XLA:CPU the weight gradients of
`nn.Conv` run 8-10x slower inside loops than in a jitted step (benchmarks/README.md):
there, use `jaxcx.models.layers.PatchConv` (e.g. `mnist_cnn` with `conv="patch"`)
or train with `jaxcx.train.loop`. The last minibatch of an epoch is padded
and masked, so each epoch sees every example exactly once, as a PyTorch DataLoader
without `drop_last` does.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxcx.train.steps import small_model_compiler_options

PyTree = Any
Data = dict[str, jax.Array]
LossFn = Callable[[jax.Array, dict], tuple[jax.Array, jax.Array]]
"""`loss_fn(logits, batch) -> (weighted loss sum, weight sum)`, as `jaxcx.train.losses`."""


class SeedRun(NamedTuple):
    """Outcome of training: with a leading seed axis K when produced by `fit_seeds`."""

    params: PyTree
    epoch_loss: jax.Array  # [num_epochs, ...] mean training loss of each epoch


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Minibatches per epoch, counting a final partial batch."""
    return -(-num_examples // batch_size)


def epoch_orders(keys: jax.Array, num_epochs: int, num_examples: int) -> np.ndarray:
    """int32 [K, num_epochs, num_examples]: per seed key, one permutation per epoch.

    Deterministic in each key's data (independent of the other keys).
    """
    orders = np.empty((len(keys), num_epochs, num_examples), np.int32)
    for index, words in enumerate(np.asarray(jax.random.key_data(keys)).reshape(len(keys), -1)):
        rng = np.random.default_rng(words.tolist())
        orders[index] = rng.permuted(np.broadcast_to(np.arange(num_examples, dtype=np.int32),
                                                     (num_epochs, num_examples)), axis=1)
    return orders


def init_params(model: nn.Module, key: jax.Array, sample_input: jax.Array) -> PyTree:
    """The model's `params` from `key`; refuses models with other variable collections."""
    variables = model.init(key, sample_input)
    extra = sorted(set(variables) - {"params"})
    if extra:
        raise ValueError(
            f"{type(model).__name__} has variable collections {extra} besides 'params'; "
            "multiseed training supports params-only models (no BatchNorm): use "
            "jaxcx.train.loop for this model"
        )
    return variables["params"]


def make_trainer(
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    loss_fn: LossFn,
    *,
    num_epochs: int,
    batch_size: int,
) -> Callable[[PyTree, jax.Array, Data, jax.Array], SeedRun]:
    """A pure `train(params, dropout_key, data, orders) -> SeedRun` (not jitted).

    Trains from the given initial `params`. `data` maps names to arrays sharing the
    leading example axis: 'image' is the model input; minibatches of every entry, plus
    'mask', go to `loss_fn`. `orders` [E, N] (from `epoch_orders`) gives each epoch's
    example order; the first `num_epochs` are used. `loss_fn` may return arrays of sums,
    one per independent model packed into `model` (as the XOR study's stacked MLPs):
    the objective is then the sum of their means, which gives each model its own
    gradient, and `epoch_loss` has their shape after the epoch axis.
    """

    def mean_loss(params, batch, dropout_key):
        logits = model.apply(
            {"params": params}, batch["image"], train=True, rngs={"dropout": dropout_key}
        )
        total, weight = loss_fn(logits, batch)
        return jnp.sum(total / weight), (total, weight)

    grad_fn = jax.grad(mean_loss, has_aux=True)

    def train(params: PyTree, dropout_key: jax.Array, data: Data, orders: jax.Array) -> SeedRun:
        num_examples = data["image"].shape[0]
        num_steps = steps_per_epoch(num_examples, batch_size)
        padding = num_steps * batch_size - num_examples
        mask = (jnp.arange(num_steps * batch_size) < num_examples).astype(jnp.float32)
        mask = mask.reshape(num_steps, batch_size)

        def step(carry, step_inputs):
            params, opt_state = carry
            indices, batch_mask, step_key = step_inputs
            batch = {name: array[indices] for name, array in data.items()}
            batch["mask"] = batch_mask
            grads, loss_parts = grad_fn(params, batch, step_key)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss_parts

        def epoch(carry, epoch_inputs):
            epoch_index, order = epoch_inputs
            order = jnp.pad(order, (0, padding)).reshape(num_steps, batch_size)
            step_keys = jax.random.split(jax.random.fold_in(dropout_key, epoch_index), num_steps)
            carry, (totals, weights) = jax.lax.scan(step, carry, (order, mask, step_keys))
            return carry, jnp.sum(totals, axis=0) / jnp.sum(weights, axis=0)

        carry = (params, optimizer.init(params))
        epochs = (jnp.arange(num_epochs), orders[:num_epochs])
        (params, _), epoch_loss = jax.lax.scan(epoch, carry, epochs)
        return SeedRun(params, epoch_loss)

    return train


def make_seed_trainer(
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    loss_fn: LossFn,
    *,
    num_epochs: int,
    batch_size: int,
) -> Callable[[jax.Array, Data, jax.Array], SeedRun]:
    """A pure `train(key, data, orders) -> SeedRun` for one seed: `make_trainer` from an
    init drawn with `key`'s first half; its second half feeds dropout."""
    train = make_trainer(model, optimizer, loss_fn, num_epochs=num_epochs, batch_size=batch_size)

    def train_seed(key: jax.Array, data: Data, orders: jax.Array) -> SeedRun:
        init_key, dropout_key = jax.random.split(key)
        return train(init_params(model, init_key, data["image"][:1]), dropout_key, data, orders)

    return train_seed


def fit_seeds(
    model: nn.Module,
    optimizer: optax.GradientTransformation,
    loss_fn: LossFn,
    keys: jax.Array,
    data: Data,
    *,
    num_epochs: int,
    batch_size: int,
) -> SeedRun:
    """Trains one model per key in a single compiled program; outputs carry a leading K axis."""
    train = make_seed_trainer(
        model, optimizer, loss_fn, num_epochs=num_epochs, batch_size=batch_size
    )
    orders = epoch_orders(keys, num_epochs, data["image"].shape[0])
    program = jax.jit(jax.vmap(train, in_axes=(0, None, 0)),
                      compiler_options=small_model_compiler_options())
    return program(keys, data, orders)


def apply_seeds(
    model: nn.Module, params: PyTree, inputs: jax.Array, *, batch_size: int = 1024
) -> jax.Array:
    """Logits of every seed's model on `inputs`: [K, N, ...], evaluated in chunks."""
    num_examples = inputs.shape[0]
    num_chunks = steps_per_epoch(num_examples, batch_size)
    padding = [(0, num_chunks * batch_size - num_examples)] + [(0, 0)] * (inputs.ndim - 1)
    chunks = jnp.pad(inputs, padding).reshape(num_chunks, batch_size, *inputs.shape[1:])

    def logits_one_seed(seed_params, chunks):
        logits = jax.lax.map(lambda chunk: model.apply({"params": seed_params}, chunk), chunks)
        return logits.reshape(num_chunks * batch_size, *logits.shape[2:])[:num_examples]

    return jax.jit(jax.vmap(logits_one_seed, in_axes=(0, None)))(params, chunks)
