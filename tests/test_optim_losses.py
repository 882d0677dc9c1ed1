"""Optimizer factory, schedules and losses against hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcx.config import ConfigDict, load_config
from jaxcx.data.registry import DataBundle
from jaxcx.train.loop import _resolve_loss
from jaxcx.train.losses import make_loss
from jaxcx.train.optim import make_optimizer, make_schedule

PARAMS = {"dense": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)},
          "norm": {"scale": jnp.ones(2)}}


def optim(**fields):
    return ConfigDict({"name": "sgd", "learning_rate": 0.1, "momentum": 0.0, "nesterov": False,
                       "weight_decay": 0.0, "schedule": "constant", "warmup_steps": 0,
                       "decay_at": (0.5,), "decay_factor": 0.1, "grad_clip_norm": 0.0,
                       **fields})


def one_update(config, grads, steps=1):
    tx, _ = make_optimizer(config, 100)
    state = tx.init(PARAMS)
    for _ in range(steps):
        updates, state = tx.update(grads, state, PARAMS)
    return updates


def zeros():
    return jax.tree_util.tree_map(jnp.zeros_like, PARAMS)


def test_adamw_decays_kernels_but_not_biases_or_norm_scales():
    updates = one_update(optim(name="adamw", weight_decay=0.5), zeros())
    np.testing.assert_allclose(updates["dense"]["kernel"], -0.1 * 0.5 * np.ones((2, 2)))
    np.testing.assert_array_equal(updates["dense"]["bias"], 0.0)
    np.testing.assert_array_equal(updates["norm"]["scale"], 0.0)


def test_sgd_weight_decay_is_l2_on_the_gradient():
    updates = one_update(optim(weight_decay=0.5), zeros())
    np.testing.assert_allclose(updates["dense"]["kernel"], -0.1 * 0.5)
    np.testing.assert_array_equal(updates["dense"]["bias"], 0.0)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_and_nesterov(nesterov):
    grads = jax.tree_util.tree_map(jnp.ones_like, PARAMS)
    second = one_update(optim(momentum=0.9, nesterov=nesterov), grads, steps=2)
    # velocity after two steps: 1 + 0.9 = 1.9; Nesterov looks ahead: 1 + 0.9 * 1.9
    expected = -0.1 * (1 + 0.9 * 1.9 if nesterov else 1.9)
    np.testing.assert_allclose(second["dense"]["bias"], expected, rtol=1e-6)


def test_gradient_clipping_bounds_the_global_norm():
    grads = jax.tree_util.tree_map(lambda p: 100.0 * jnp.ones_like(p), PARAMS)
    updates = one_update(optim(learning_rate=1.0, grad_clip_norm=1.0), grads)
    norm = np.sqrt(sum(float(jnp.sum(u ** 2)) for u in jax.tree_util.tree_leaves(updates)))
    assert norm == pytest.approx(1.0, rel=1e-5)


def test_schedules():
    warm = make_schedule(optim(schedule="warmup_cosine", warmup_steps=10), 110)
    assert float(warm(0)) == 0.0 and float(warm(10)) == pytest.approx(0.1)
    assert float(warm(110)) == pytest.approx(0.0, abs=1e-7)
    step = make_schedule(optim(schedule="step", decay_at=(0.5,), decay_factor=0.1), 100)
    assert float(step(49)) == pytest.approx(0.1) and float(step(50)) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="unknown optim.schedule 'linear'"):
        make_schedule(optim(schedule="linear"), 10)
    with pytest.raises(ValueError, match="unknown optim.name 'lbfgs'"):
        make_optimizer(optim(name="lbfgs"), 10)


def loss(name, **fields):
    return make_loss(ConfigDict({"name": name, **fields}))


def test_weighted_cross_entropy_normalises_by_the_summed_weights():
    logits = jnp.array([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    batch = {"label": jnp.array([0, 1, 1]), "mask": jnp.array([1.0, 1.0, 0.0])}
    per_example = -jax.nn.log_softmax(logits)[jnp.arange(3), batch["label"]]
    weights = np.array([0.25, 0.75])
    total, weight = loss("weighted_ce", class_weights=tuple(weights))(logits, batch)
    expected = (0.25 * per_example[0] + 0.75 * per_example[1]) / (0.25 + 0.75)
    assert float(total / weight) == pytest.approx(float(expected), rel=1e-6)
    plain_total, plain_weight = loss("softmax_ce")(logits, batch)
    assert float(plain_weight) == 2.0  # the padded example is out
    with pytest.raises(ValueError, match="class_weights is empty"):
        loss("weighted_ce", class_weights=())


def test_sigmoid_bce_with_positive_weights_and_ignored_labels():
    logits = jnp.array([[0.5, -1.0], [2.0, 0.0]])
    batch = {"label": jnp.array([[1.0, 0.0], [0.0, 1.0]]), "mask": jnp.ones(2),
             "label_mask": jnp.array([[1.0, 1.0], [1.0, 0.0]])}
    total, weight = loss("sigmoid_bce", pos_weight=(3.0, 2.0), multilabel=True)(logits, batch)
    p = jax.nn.sigmoid(logits)
    entries = [-3.0 * np.log(p[0, 0]), -np.log(1 - p[0, 1]), -np.log(1 - p[1, 0])]
    assert float(weight) == 3.0
    assert float(total / weight) == pytest.approx(float(np.mean(entries)), rel=1e-5)


def test_single_logit_binary_and_reconstruction_losses():
    logits = jnp.array([[3.0], [-3.0]])
    batch = {"label": jnp.array([1, 0]), "mask": jnp.ones(2), "image": jnp.zeros((2, 1))}
    total, weight = loss("sigmoid_bce")(logits, batch)
    assert float(total / weight) == pytest.approx(float(-jax.nn.log_sigmoid(3.0)), rel=1e-6)
    assert loss("sigmoid_bce").probabilities(logits).shape == (2,)
    mse_total, _ = loss("mse")(logits, batch)
    assert float(mse_total) == pytest.approx(9.0 + 9.0)
    squashed, _ = loss("sigmoid_mse")(jnp.zeros((2, 1)), batch)
    assert float(squashed) == pytest.approx(2 * 0.25)
    assert not loss("mse").classifies and loss("softmax_ce").classifies


def test_class_weights_are_pneumonia_normalised_inverse_frequencies():
    labels = np.array([0] * 1 + [1] * 3)
    bundle = DataBundle(train=None, val=None, test=None, train_labels=labels, input_shape=(1,),
                        class_names=("a", "b"))
    np.testing.assert_allclose(bundle.class_weights(), [0.75, 0.25])


def test_default_weighted_loss_uses_inverse_frequencies_by_class_index():
    """Training counts 6, 2, 1: inverses 1/6, 1/2, 1 over their sum 5/3 give weights 0.1,
    0.3, 0.6; `weighted_ce` without explicit weights applies them by class (rare heavier)."""
    labels = np.array([0, 1, 0, 2, 0, 0, 1, 0, 0])
    bundle = DataBundle(train=None, val=None, test=None, train_labels=labels, input_shape=(3,),
                        class_names=("common", "middle", "rare"))
    np.testing.assert_allclose(bundle.class_weights(), [0.1, 0.3, 0.6], rtol=1e-6)
    weighted = _resolve_loss(load_config("configs/xor.py", ["--config.loss.name=weighted_ce"]),
                             bundle)
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 1.0, 0.0], [0.0, 0.0, 3.0]], np.float32)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    per_example = -log_probs[np.arange(3), [0, 1, 2]]
    total, weight = weighted(jnp.asarray(logits), {"label": jnp.array([0, 1, 2]),
                                                   "mask": jnp.ones(3)})
    assert float(weight) == pytest.approx(1.0, rel=1e-6)
    assert float(total) == pytest.approx(float(per_example @ [0.1, 0.3, 0.6]), rel=1e-5)
    one = lambda c: float(weighted(jnp.asarray(logits[c:c + 1]),  # noqa: E731
                                   {"label": jnp.array([c]), "mask": jnp.ones(1)})[1])
    assert one(2) == pytest.approx(6 * one(0)) and one(1) == pytest.approx(3 * one(0))


def test_label_smoothing_and_a_batch_without_mask():
    """Smoothing 0.2 over 2 classes: targets 0.9 / 0.1; no `mask` key counts every example."""
    logits = jnp.array([[2.0, 0.0], [0.0, 1.0]])
    log_p = np.asarray(jax.nn.log_softmax(logits))
    total, weight = loss("softmax_ce", label_smoothing=0.2)(logits, {"label": jnp.array([0, 1])})
    expected = -(0.9 * log_p[0, 0] + 0.1 * log_p[0, 1]) - (0.1 * log_p[1, 0] + 0.9 * log_p[1, 1])
    assert float(weight) == 2.0 and float(total) == pytest.approx(expected, rel=1e-6)


def test_multilabel_bce_without_pos_weight_or_label_mask():
    logits = jnp.array([[0.5, -1.0], [2.0, 0.0]])
    labels = np.array([[1.0, 0.0], [0.0, 1.0]])
    sigmoid_bce = loss("sigmoid_bce", multilabel=True)
    total, weight = sigmoid_bce(logits, {"label": jnp.asarray(labels), "mask": jnp.array([1.0, 0.0])})
    p = 1 / (1 + np.exp(-np.asarray(logits)))
    assert float(weight) == 2.0
    assert float(total) == pytest.approx(-np.log(p[0, 0]) - np.log(1 - p[0, 1]), rel=1e-5)
    assert sigmoid_bce.multilabel and not loss("sigmoid_bce").multilabel
    np.testing.assert_allclose(sigmoid_bce.probabilities(logits), p, rtol=1e-6)


def test_probabilities_and_names_of_each_loss():
    logits = jnp.array([[0.0, np.log(3.0)], [0.0, 0.0]])
    np.testing.assert_allclose(loss("softmax_ce").probabilities(logits), [[0.25, 0.75], [0.5, 0.5]],
                               rtol=1e-6)
    np.testing.assert_allclose(loss("sigmoid_bce").probabilities(jnp.array([[np.log(3.0)]])),
                               [0.75], rtol=1e-6)
    for name, fields in (("softmax_ce", {}), ("weighted_ce", {"class_weights": (1.0,)}),
                         ("sigmoid_bce", {}), ("mse", {}), ("sigmoid_mse", {})):
        assert loss(name, **fields).name == name
    assert not loss("sigmoid_mse").classifies and loss("sigmoid_bce").classifies
    with pytest.raises(ValueError) as info:
        loss("weighted_ce")
    assert str(info.value) == ("loss.class_weights is empty: compute them from the training "
                               "split (jaxcx.data.sampling) or set --config.loss.class_weights")


def test_mse_against_a_target_with_mask():
    outputs = jnp.array([[1.0, 3.0, 0.0], [2.0, 2.0, 2.0]])
    batch = {"target": jnp.array([[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]), "image": jnp.ones((2, 3)),
             "mask": jnp.array([1.0, 0.0])}
    total, weight = loss("mse")(outputs, batch)
    assert float(total) == pytest.approx((1 + 4 + 1) / 3) and float(weight) == 1.0
    squashed, _ = loss("sigmoid_mse")(jnp.zeros((2, 3)), batch)
    assert float(squashed) == pytest.approx((0.25 + 0.25 + 0.25) / 3)


def test_bce_of_one_label_kept_2d_and_padding_of_a_single_logit_head():
    logits = jnp.array([[1.0], [-2.0]])
    p = 1 / (1 + np.exp(-np.array([1.0, -2.0])))
    total, weight = loss("sigmoid_bce", multilabel=True)(
        logits, {"label": jnp.array([[1.0], [0.0]]), "mask": jnp.ones(2)})
    assert float(weight) == 2.0
    assert float(total) == pytest.approx(-np.log(p[0]) - np.log(1 - p[1]), rel=1e-5)
    total, weight = loss("sigmoid_bce")(logits, {"label": jnp.array([1, 0]),
                                                 "mask": jnp.array([1.0, 0.0])})
    assert float(weight) == 1.0 and float(total) == pytest.approx(-np.log(p[0]), rel=1e-5)


def test_adam_l2_is_coupled_and_reaches_every_parameter_with_decay_all():
    """Zero gradients, weight decay 0.5: Adam's first step on g = 0.5 * p is -lr * sign(g)
    (coupled L2, PyTorch's Adam `weight_decay`), AdamW's is -lr * 0.5 * p; biases and norm
    scales join only with `decay_all`."""
    coupled = one_update(optim(name="adam", weight_decay=0.5), zeros())
    np.testing.assert_allclose(coupled["dense"]["kernel"], -0.1, rtol=1e-4)
    np.testing.assert_array_equal(coupled["dense"]["bias"], 0.0)
    every = one_update(optim(name="adam", weight_decay=0.5, decay_all=True), zeros())
    np.testing.assert_allclose(every["dense"]["bias"], -0.1, rtol=1e-4)
    np.testing.assert_allclose(every["norm"]["scale"], -0.1, rtol=1e-4)
    decoupled = one_update(optim(name="adamw", weight_decay=0.5, decay_all=True), zeros())
    np.testing.assert_allclose(decoupled["norm"]["scale"], -0.05, rtol=1e-4)


def test_sum_reduction_differentiates_the_batch_sum():
    """`loss.reduction='sum'` (PyTorch's) minimises the sum over the batch and labels, so its
    gradient is the mean's times the number of kept labels."""
    logits = jnp.array([[0.3, -1.0], [2.0, 0.5], [0.0, 0.0]])
    batch = {"label": jnp.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
             "mask": jnp.array([1.0, 1.0, 0.0])}
    config = ConfigDict({"name": "sigmoid_bce", "multilabel": True})
    mean, summed = make_loss(config), make_loss(ConfigDict({**config.to_dict(), "reduction": "sum"}))
    grad = lambda loss: jax.grad(lambda z: loss.objective(*loss(z, batch)))(logits)  # noqa: E731
    np.testing.assert_allclose(grad(summed), 4 * grad(mean), rtol=1e-6)  # 2 examples x 2 labels
    by_hand = jax.nn.sigmoid(logits) - batch["label"]  # d BCE / d logit
    np.testing.assert_allclose(grad(summed), by_hand * batch["mask"][:, None], rtol=1e-6)
    with pytest.raises(ValueError, match=r"loss.reduction must be one of \('mean', 'sum'\)"):
        make_loss(ConfigDict({"name": "sigmoid_bce", "reduction": "total"}))


def test_positive_weights_from_training_prevalence():
    """`loss.positive_weights`: pos_weight = negatives / positives per label of the training
    split (3/1 and 2/2 here), applied to the positive term only."""
    labels = np.array([[1, 0], [0, 1], [0, 1], [0, 0]], np.float32)
    bundle = DataBundle(train=None, val=None, test=None, train_labels=labels, input_shape=(2,),
                        class_names=("a", "b"), multilabel=True)
    config = load_config("configs/chest_multilabel.py", ["loss.positive_weights=true"])
    loss = _resolve_loss(config, bundle)
    z = jnp.zeros((1, 2))
    positive = float(loss(z, {"label": jnp.array([[1.0, 1.0]]), "mask": jnp.ones(1)})[0])
    negative = float(loss(z, {"label": jnp.array([[0.0, 0.0]]), "mask": jnp.ones(1)})[0])
    assert positive == pytest.approx((3.0 + 1.0) * np.log(2), rel=1e-6)
    assert negative == pytest.approx(2 * np.log(2), rel=1e-6)
