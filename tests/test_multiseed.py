"""Multiseed training: vmapped seeds equal separate runs; epochs see every example once."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxcx.train import multiseed
from jaxcx.train.losses import sigmoid_binary_cross_entropy as bce


class TinyMLP(nn.Module):
    """Two inputs, a tanh hidden layer, one logit."""

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        return nn.Dense(1)(jnp.tanh(nn.Dense(4)(x)))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(37, 2)).astype(np.float32)  # 37 = 4 full batches of 8 + 5
    labels = (inputs[:, 0] * inputs[:, 1] > 0).astype(np.float32)
    return {"image": jnp.asarray(inputs), "label": jnp.asarray(labels)}


def test_vmapped_seeds_equal_separate_runs(data):
    model, optimizer = TinyMLP(), optax.adam(0.05)
    keys = jax.random.split(jax.random.key(7), 3)
    together = multiseed.fit_seeds(
        model, optimizer, bce, keys, data, num_epochs=4, batch_size=8
    )
    train_one = jax.jit(
        multiseed.make_seed_trainer(model, optimizer, bce, num_epochs=4, batch_size=8)
    )
    orders = multiseed.epoch_orders(keys, 4, 37)
    for index, key in enumerate(keys):
        alone = train_one(key, data, orders[index])
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a[index], b, rtol=1e-5, atol=1e-6),
            together,
            alone,
        )
    assert together.epoch_loss.shape == (3, 4)
    assert together.epoch_loss[:, -1].mean() < together.epoch_loss[:, 0].mean()
    first, second = jax.tree.leaves(together.params)[0][:2]
    assert not np.allclose(first, second), "seeds must differ"


def test_zero_learning_rate_epoch_loss_is_full_data_mean(data):
    """With a frozen model, every epoch's loss is the mean over all 37 examples once."""
    model = TinyMLP()
    keys = jax.random.split(jax.random.key(1), 2)
    run = multiseed.fit_seeds(
        model, optax.sgd(0.0), bce, keys, data, num_epochs=2, batch_size=8
    )
    logits = multiseed.apply_seeds(model, run.params, data["image"], batch_size=16)
    assert logits.shape == (2, 37, 1)
    full_mean = jax.vmap(lambda seed_logits: bce(seed_logits, data)[0] / 37)(logits)
    np.testing.assert_allclose(run.epoch_loss, jnp.stack([full_mean] * 2, axis=1), rtol=1e-5)


def test_models_with_batch_stats_are_refused():
    class WithBatchNorm(nn.Module):
        @nn.compact
        def __call__(self, x, *, train: bool = False):
            return nn.BatchNorm(use_running_average=not train)(x)

    with pytest.raises(ValueError, match="batch_stats"):
        multiseed.init_params(WithBatchNorm(), jax.random.key(0), jnp.ones((1, 2)))


def test_epoch_orders_are_per_key_permutations():
    keys = jax.random.split(jax.random.key(3), 3)
    orders = multiseed.epoch_orders(keys, 4, 10)
    assert orders.shape == (3, 4, 10) and orders.dtype == np.int32
    assert (np.sort(orders, axis=-1) == np.arange(10)).all()
    assert not (orders[:, 0] == orders[:, 1]).all(), "epochs must reshuffle"
    np.testing.assert_array_equal(multiseed.epoch_orders(keys[1:2], 4, 10)[0], orders[1])
