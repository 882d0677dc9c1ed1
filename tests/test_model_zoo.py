"""DenseNet, ResNet and the small chest CNN: published parameter counts, 1-channel heads,
spatial dropout, tiny variants that train."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcx.models import ChestCNN, DenseNet, ResNet, build_model, summary

IMAGENET = (1, 224, 224, 3)


@pytest.mark.parametrize("model, published", [
    (DenseNet(num_classes=1000, depth=121), 7_978_856),
    (DenseNet(num_classes=1000, depth=169), 14_149_480),
    (DenseNet(num_classes=1000, depth=201), 20_013_928),
    (ResNet(num_classes=1000, depth=18), 11_689_512),
    (ResNet(num_classes=1000, depth=34), 21_797_672),
    (ResNet(num_classes=1000, depth=50), 25_557_032),
], ids=["densenet121", "densenet169", "densenet201", "resnet18", "resnet34", "resnet50"])
def test_parameter_counts_match_the_published_architectures(model, published):
    assert summary(model, IMAGENET).total_params == published


def test_one_channel_multilabel_heads_by_hand():
    # ResNet-18: the stem loses 2 of 3 input channels (7*7*64 each) and the head goes
    # from 512 -> 1000 to 512 -> 14.
    resnet = 11_689_512 - 2 * 7 * 7 * 64 - (512 + 1) * 1000 + (512 + 1) * 14
    assert summary(ResNet(num_classes=14, depth=18), (1, 64, 64, 1)).total_params == resnet
    # DenseNet-121: stem 7*7*64 per input channel, head 1024 -> classes.
    densenet = 7_978_856 - 2 * 7 * 7 * 64 - (1024 + 1) * 1000 + (1024 + 1) * 12
    assert summary(DenseNet(num_classes=12), (1, 64, 64, 1)).total_params == densenet


def test_chest_cnn_parameter_count_by_hand():
    widths = (1, 16, 32, 64, 128)
    convs = sum(9 * a * b + 2 * b for a, b in zip(widths[:-1], widths[1:]))  # kernel + BN
    dense = (4 * 4 * 128) * 128 + 128 + 128 * 12 + 12
    assert summary(ChestCNN(), (1, 64, 64, 1)).total_params == convs + dense


def test_densenet_channel_arithmetic():
    """Each dense layer adds `growth` maps; transitions keep half (DenseNet-BC)."""
    params = jax.eval_shape(lambda: DenseNet(num_classes=3, blocks=(2, 3), growth=4).init(
        jax.random.key(0), jnp.zeros((1, 32, 32, 1))))["params"]
    # stem 8 maps + 2 layers x 4 = 16 -> transition to 8 -> + 3 x 4 = 20 into the head.
    assert params["transition1"]["conv"]["kernel"].shape == (1, 1, 16, 8)
    assert params["fc"]["kernel"].shape == (20, 3)


def test_resnet_spatial_dropout_drops_whole_feature_maps():
    """After each stage, a feature map is either all zero or the stage's output scaled by
    1 / (1 - rate): whole maps are dropped (PyTorch's Dropout2d), never single pixels."""
    model = ResNet(num_classes=2, depth=18, stages=(1, 1), stage_widths=(8, 16), stem_width=8,
                   dropout_rate=0.5)
    x = jax.random.normal(jax.random.key(1), (4, 32, 32, 1))
    variables = model.init(jax.random.key(0), x)
    _, state = model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)},
                           mutable=["batch_stats", "intermediates"], capture_intermediates=True)
    found = state["intermediates"]
    for stage in (1, 2):
        before = np.asarray(found[f"stage{stage}_block1"]["__call__"][0])
        after = np.asarray(found[f"Dropout_{stage - 1}"]["__call__"][0])
        dropped = (after == 0).all(axis=(1, 2))  # [batch, channel]
        assert 0 < dropped.mean() < 1
        kept = ~dropped[:, None, None, :]
        np.testing.assert_allclose(np.where(kept, after, 0), np.where(kept, 2 * before, 0),
                                   rtol=1e-6)
        assert (np.abs(before).sum(axis=(1, 2))[dropped] > 0).any()  # dropped, not dead


@pytest.mark.parametrize("config", [
    {"name": "densenet", "num_classes": 5, "blocks": (2, 2), "growth": 8, "bottleneck": 2},
    {"name": "resnet", "num_classes": 5, "depth": 18, "stages": (1, 1), "stage_widths": (8, 16),
     "stem_width": 8, "dropout_rate": 0.2},
    {"name": "resnet", "num_classes": 5, "depth": 50, "stages": (1, 1), "stage_widths": (4, 8),
     "stem_width": 8},
    {"name": "chest_cnn", "num_classes": 5, "conv_features": (4, 8), "hidden_features": 16,
     "dropout_rate": 0.0},
], ids=["densenet", "resnet_basic", "resnet_bottleneck", "chest_cnn"])
def test_tiny_variants_fit_a_batch(config):
    """A few Adam steps on one batch lower the multi-label BCE (BatchNorm in train mode)."""
    import optax

    model = build_model(config)
    x = jax.random.normal(jax.random.key(0), (8, 32, 32, 1))
    y = (jax.random.uniform(jax.random.key(1), (8, 5)) < 0.4).astype(jnp.float32)
    variables = model.init(jax.random.key(2), x)
    params, stats = variables["params"], variables["batch_stats"]
    tx = optax.adam(1e-2)
    opt = tx.init(params)

    def loss_fn(p, s, step):
        logits, new = model.apply({"params": p, "batch_stats": s}, x, train=True,
                                  rngs={"dropout": jax.random.key(step)}, mutable=["batch_stats"])
        return optax.sigmoid_binary_cross_entropy(logits, y).mean(), new["batch_stats"]

    first = None
    for step in range(15):
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, step)
        first = float(loss) if first is None else first
        updates, opt = tx.update(grads, opt)
        params = optax.apply_updates(params, updates)
    assert float(loss) < 0.7 * first
    eval_logits = model.apply({"params": params, "batch_stats": stats}, x)
    assert eval_logits.shape == (8, 5) and np.isfinite(np.asarray(eval_logits)).all()


def test_unknown_depths_are_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"resnet depth must be one of \[18, 34, 50"):
        ResNet(depth=20).init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
    with pytest.raises(ValueError, match=r"densenet depth must be one of \[121, 169, 201\]"):
        DenseNet(depth=100).init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))


def test_stem_pads_symmetrically_as_pytorch():
    """A 7x7/2 conv padded 3 pixels each side (PyTorch's padding=3): on an all-ones image
    with an all-ones kernel the corner output sums 4x4 pixels (Flax's 'SAME' would pad 2
    before and 3 after, summing 5x5); the 3x3/2 pool then maps 32 -> 16."""
    model = ResNet(num_classes=2, depth=18, stages=(1,), stage_widths=(8,), stem_width=8)
    x = jnp.ones((1, 64, 64, 1))
    variables = model.init(jax.random.key(0), x)
    params = jax.tree_util.tree_map_with_path(
        lambda path, p: jnp.ones_like(p) if "stem" in str(path) and "kernel" in str(path) else p,
        variables["params"])
    _, state = model.apply({**variables, "params": params}, x, capture_intermediates=True,
                           mutable=["intermediates"])
    conv = state["intermediates"]["stem"]["conv"]["__call__"][0]
    assert conv.shape == (1, 32, 32, 8)
    assert float(conv[0, 0, 0, 0]) == 16.0 and float(conv[0, 1, 1, 0]) == 36.0
    assert state["intermediates"]["stage1_block1"]["__call__"][0].shape == (1, 16, 16, 8)
