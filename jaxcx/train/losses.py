"""Losses over masked batches, and how each turns logits into probabilities.

Every loss returns `(total, weight)`: the weighted sum over real examples and the sum of
weights, so means stay exact across batches, padding and devices.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxcx.registry import Registry



@dataclasses.dataclass(frozen=True)
class Loss:
    """A loss and the matching map from logits to class probabilities."""

    name: str
    fn: Callable[[jax.Array, dict], tuple[jax.Array, jax.Array]]
    multilabel: bool = False
    reduction: str = "mean"  # what the optimizer minimises: 'mean' or 'sum' of the batch

    def objective(self, total: jax.Array, weight: jax.Array) -> jax.Array:
        """The batch's loss to differentiate: the weighted mean, or the sum (PyTorch's
        `reduction='sum'`, which scales the gradient with the batch size)."""
        return total if self.reduction == "sum" else total / jnp.maximum(weight, 1e-12)

    def __call__(self, logits: jax.Array, batch: dict) -> tuple[jax.Array, jax.Array]:
        return self.fn(logits, batch)

    @property
    def classifies(self) -> bool:
        """False for reconstruction losses, which have no classes to count."""
        return self.name not in ("mse", "sigmoid_mse")

    def probabilities(self, logits: jax.Array) -> jax.Array:
        """Class-1 probability [B] for one-logit heads, sigmoid per label for multi-label,
        softmax [B, C] otherwise."""
        if self.multilabel:
            return jax.nn.sigmoid(logits)
        if logits.shape[-1] == 1:
            return jax.nn.sigmoid(logits[..., 0])
        return jax.nn.softmax(logits, axis=-1)


def _mask(batch: dict, logits: jax.Array) -> jax.Array:
    return batch.get("mask", jnp.ones(logits.shape[:1], jnp.float32))


def softmax_cross_entropy(logits, batch, class_weights=None, label_smoothing=0.0):
    """Cross-entropy with integer labels; `class_weights` weight each example by its class
    and normalise by the summed weights (PyTorch's `CrossEntropyLoss(weight=...)`)."""
    labels = batch["label"].astype(jnp.int32)
    one_hot = jax.nn.one_hot(labels, logits.shape[-1])
    if label_smoothing:
        one_hot = optax.smooth_labels(one_hot, label_smoothing)
    per_example = optax.softmax_cross_entropy(logits, one_hot)
    weight = _mask(batch, logits)
    if class_weights is not None:
        weight = weight * jnp.asarray(class_weights, jnp.float32)[labels]
    return jnp.sum(per_example * weight), jnp.sum(weight)


def sigmoid_binary_cross_entropy(logits, batch, pos_weight=None):
    """BCE on logits: one logit with integer labels, or one per label with float targets.

    `pos_weight` multiplies the positive term per label (PyTorch's `BCEWithLogitsLoss`);
    `label_mask` (0 = uncertain/ignored) drops single labels from the mean.
    """
    labels = batch["label"].astype(jnp.float32)
    if logits.shape[-1] == 1 and labels.ndim == 1:
        logits = logits[..., 0]
    log_p = jax.nn.log_sigmoid(logits)
    log_not_p = jax.nn.log_sigmoid(-logits)
    positive = 1.0 if pos_weight is None else jnp.asarray(pos_weight, jnp.float32)
    per_label = -(positive * labels * log_p + (1.0 - labels) * log_not_p)
    weight = _mask(batch, logits)
    if per_label.ndim == 2:
        label_weight = weight[:, None] * batch.get("label_mask", jnp.ones_like(per_label))
        return jnp.sum(per_label * label_weight), jnp.sum(label_weight)
    return jnp.sum(per_label * weight), jnp.sum(weight)


def mean_squared_error(outputs, batch, squash=False):
    """MSE against `batch['target']`, or against the input itself (autoencoders);
    `squash` passes the outputs through a sigmoid first (the Fashion-MNIST notebook's
    autoencoder)."""
    if squash:
        outputs = jax.nn.sigmoid(outputs)
    target = batch.get("target", batch["image"]).reshape(outputs.shape)
    per_example = jnp.mean(jnp.square(outputs - target).reshape(outputs.shape[0], -1), axis=1)
    weight = _mask(batch, outputs)
    return jnp.sum(per_example * weight), jnp.sum(weight)


LOSSES: Registry = Registry("loss.name")
register_loss = LOSSES.register  # @register_loss("name") on fn(loss_config) -> Loss
available_losses = LOSSES.names


@register_loss("softmax_ce")
def _softmax_ce(loss_cfg) -> Loss:
    smoothing = float(loss_cfg.get("label_smoothing", 0.0))
    return Loss("softmax_ce", lambda lg, b: softmax_cross_entropy(lg, b, label_smoothing=smoothing))


@register_loss("weighted_ce")
def _weighted_ce(loss_cfg) -> Loss:
    weights = tuple(loss_cfg.get("class_weights", ()) or ())
    if not weights:
        raise ValueError("loss.class_weights is empty: compute them from the training "
                         "split (jaxcx.data.sampling) or set --config.loss.class_weights")
    return Loss("weighted_ce", lambda lg, b: softmax_cross_entropy(lg, b, class_weights=weights))


@register_loss("sigmoid_bce")
def _sigmoid_bce(loss_cfg) -> Loss:
    pos_weight = tuple(loss_cfg.get("pos_weight", ()) or ()) or None
    return Loss("sigmoid_bce", lambda lg, b: sigmoid_binary_cross_entropy(lg, b, pos_weight),
                multilabel=bool(loss_cfg.get("multilabel", False)))


@register_loss("mse")
def _mse(loss_cfg) -> Loss:
    return Loss("mse", mean_squared_error)


@register_loss("sigmoid_mse")
def _sigmoid_mse(loss_cfg) -> Loss:
    return Loss("sigmoid_mse", lambda out, b: mean_squared_error(out, b, squash=True))


REDUCTIONS = ("mean", "sum")


def make_loss(loss_cfg: ml_collections.ConfigDict) -> Loss:
    """The loss named by `loss_cfg.name` with its options bound; `loss_cfg.reduction`
    ('mean', the default, or 'sum') says what the optimizer minimises."""
    reduction = loss_cfg.get("reduction", "mean")
    if reduction not in REDUCTIONS:
        raise ValueError(f"loss.reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return dataclasses.replace(LOSSES.get(loss_cfg.name)(loss_cfg), reduction=reduction)
