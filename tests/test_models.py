"""Tests for jaxcx.models: parameter counts pinned to the source notebooks' models, shapes,
rng/state use, conv forms, registry."""

import flax.errors
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxcx import models
from jaxcx.models.layers import CONV_FORMS, ConvReluPool, PatchConv, max_pool_2x2, resolve_conv


def abstract_variables(model, input_shape):
    init = lambda: model.init(jax.random.key(0), jnp.zeros(input_shape), train=False)
    return jax.eval_shape(init)


def count_params(model, input_shape):
    params = abstract_variables(model, input_shape)["params"]
    return sum(leaf.size for leaf in jax.tree.leaves(params))


XOR_PARAM_COUNTS = {  # the XOR/MNIST notebook's Table 1: (width, depth) -> parameters
    (1, 0): 5, (1, 1): 7, (1, 2): 9, (1, 3): 11,
    (2, 0): 9, (2, 1): 15, (2, 2): 21, (2, 3): 27,
    (3, 0): 13, (3, 1): 25, (3, 2): 37, (3, 3): 49,
}


@pytest.mark.parametrize(("width", "depth"), sorted(XOR_PARAM_COUNTS))
def test_xor_mlp_param_counts_match_the_xor_notebook(width, depth):
    model = models.build_model({"name": "xor_mlp", "width": width, "depth": depth})
    assert count_params(model, (1, 2)) == XOR_PARAM_COUNTS[width, depth]


PINNED = [  # (config, input shape, parameters)
    ({"name": "mlp"}, (1, 28, 28, 1), 109_386),
    ({"name": "mnist_cnn"}, (1, 28, 28, 1), 12_810),
    ({"name": "flex_cnn"}, (1, 224, 224, 1), 3_211_586),
    (
        {"name": "flex_cnn", "feature_maps": 16, "kernel_size": 5, "activation": "leaky_relu",
         "regularisation": True, "dropout_rate": 0.6978},
        (1, 300, 300, 1),
        2_880_450,
    ),
    ({"name": "grid_cnn", "num_conv_layers": 1, "num_dense_layers": 1}, (1, 28, 28, 1), 4_481),
    ({"name": "grid_cnn", "num_conv_layers": 1, "num_dense_layers": 2}, (1, 28, 28, 1), 69_761),
    ({"name": "grid_cnn", "num_conv_layers": 2, "num_dense_layers": 2}, (1, 28, 28, 1), 17_813),
    ({"name": "grid_cnn", "num_conv_layers": 2, "num_dense_layers": 3}, (1, 28, 28, 1), 35_717),
    ({"name": "grid_cnn", "num_conv_layers": 4, "num_dense_layers": 2}, (1, 28, 28, 1), 110_973),
    ({"name": "grid_cnn", "num_conv_layers": 4, "num_dense_layers": 3}, (1, 28, 28, 1), 168_237),
    ({"name": "covid_mlp"}, (1, 256, 256, 1), 67_110_913),
    ({"name": "covid_mlp", "hidden": [1024, 256]}, (1, 256, 256, 1), 67_372_545),
    ({"name": "mlp_autoencoder"}, (1, 784), 223_066),
    ({"name": "mlp_encoder_classifier"}, (1, 784), 111_146),
    ({"name": "mlp_encoder_classifier", "num_classes": 5}, (1, 784), 111_201),
]


@pytest.mark.parametrize(("config", "input_shape", "expected"), PINNED, ids=lambda v: str(v))
def test_param_counts_and_summary_totals(config, input_shape, expected):
    model = models.build_model(config)
    assert count_params(model, input_shape) == expected
    assert models.summary(model, input_shape).total_params == expected


SHAPES = [  # (config, input shape, output shape)
    ({"name": "mlp", "hidden": (8,), "num_outputs": 3}, (2, 4, 4, 1), (2, 3)),
    ({"name": "xor_mlp", "width": 2, "depth": 1}, (5, 2), (5, 1)),
    ({"name": "mnist_cnn"}, (2, 28, 28, 1), (2, 10)),
    ({"name": "flex_cnn", "regularisation": True}, (2, 9, 9, 1), (2, 2)),
    ({"name": "flex_cnn", "kernel_size": 5, "activation": "leaky_relu"}, (2, 9, 9, 1), (2, 2)),
    ({"name": "grid_cnn", "num_conv_layers": 1, "num_dense_layers": 3}, (2, 28, 28, 1), (2, 5)),
    ({"name": "grid_cnn", "num_conv_layers": 4, "num_dense_layers": 1}, (2, 28, 28, 1), (2, 5)),
    ({"name": "covid_mlp", "hidden": (16, 4)}, (2, 8, 8, 1), (2, 1)),
    ({"name": "mlp_autoencoder", "features": (16, 4)}, (2, 6, 6, 1), (2, 6, 6, 1)),
    ({"name": "mlp_encoder_classifier", "features": (16, 4), "num_classes": 3}, (2, 36), (2, 3)),
]


@pytest.mark.parametrize(("config", "input_shape", "output_shape"), SHAPES, ids=lambda v: str(v))
def test_output_shapes(config, input_shape, output_shape):
    model = models.build_model(config)
    x = jnp.asarray(np.random.default_rng(0).normal(size=input_shape), jnp.float32)
    logits, _ = model.init_with_output(jax.random.key(0), x, train=False)
    assert logits.shape == output_shape
    assert bool(jnp.all(jnp.isfinite(logits)))


def test_covid_mlp_output_shape_on_seed_inputs():
    model = models.build_model({"name": "covid_mlp"})
    variables = abstract_variables(model, (4, 256, 256, 1))
    logits = jax.eval_shape(model.apply, variables, jnp.zeros((4, 256, 256, 1)))
    assert logits.shape == (4, 1)


@pytest.fixture(scope="module")
def regularised_flex_cnn():
    model = models.build_model({"name": "flex_cnn", "feature_maps": 4, "regularisation": True})
    x = jnp.asarray(np.random.default_rng(1).normal(size=(4, 6, 6, 1)), jnp.float32)
    return model, model.init(jax.random.key(0), x), x


def test_dropout_needs_and_uses_dropout_rng(regularised_flex_cnn):
    model, variables, x = regularised_flex_cnn

    def train_logits(rngs):
        logits, _ = model.apply(variables, x, train=True, rngs=rngs, mutable=["batch_stats"])
        return logits

    with pytest.raises(flax.errors.InvalidRngError, match="dropout"):
        train_logits({})
    first = train_logits({"dropout": jax.random.key(1)})
    np.testing.assert_array_equal(first, train_logits({"dropout": jax.random.key(1)}))
    assert not np.allclose(first, train_logits({"dropout": jax.random.key(2)}))
    np.testing.assert_array_equal(model.apply(variables, x), model.apply(variables, x))


@pytest.mark.parametrize("momentum", [0.9, 0.5])
def test_batch_norm_stats_update_in_train_mode_only(regularised_flex_cnn, momentum):
    model, variables, x = regularised_flex_cnn
    model = model.clone(batch_norm_momentum=momentum)
    _, updated = model.apply(
        variables, x, train=True, rngs={"dropout": jax.random.key(0)},
        mutable=["batch_stats", "intermediates"], capture_intermediates=True,
    )
    conv_output = updated["intermediates"]["conv"]["__call__"][0]
    expected_mean = (1 - momentum) * conv_output.mean(axis=(0, 1, 2))
    running_mean = updated["batch_stats"]["batchnorm"]["mean"]
    np.testing.assert_allclose(running_mean, expected_mean, rtol=1e-5)

    _, unchanged = model.apply(variables, x, train=False, mutable=["batch_stats"])
    jax.tree.map(np.testing.assert_array_equal, unchanged["batch_stats"], variables["batch_stats"])


def test_batch_norm_momentum_defaults_to_torch_equivalent():
    assert models.FlexCNN().batch_norm_momentum == 0.9


def test_autoencoder_encoder_transfers_into_classifier():
    autoencoder = models.build_model({"name": "mlp_autoencoder", "features": (8, 3)})
    classifier = models.build_model({"name": "mlp_encoder_classifier", "features": (8, 3)})
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 4, 4, 1)), jnp.float32)
    pretrained = autoencoder.init(jax.random.key(0), x)["params"]
    classifier_params = classifier.init(jax.random.key(1), x)["params"]
    shapes = lambda tree: jax.tree.map(jnp.shape, tree)
    assert shapes(classifier_params) == shapes({"encoder": pretrained["encoder"]})

    _, state = autoencoder.apply(
        {"params": pretrained}, x, capture_intermediates=True, mutable=["intermediates"]
    )
    code = state["intermediates"]["encoder"]["__call__"][0]
    np.testing.assert_allclose(
        classifier.apply({"params": {"encoder": pretrained["encoder"]}}, x), code, rtol=1e-6
    )


def test_build_model_accepts_config_dict():
    config = ml_collections.ConfigDict({"name": "mlp", "hidden": [32, 16], "activation": "gelu"})
    model = models.build_model(config)
    assert model == models.MLP(hidden=(32, 16), activation="gelu")


def test_unknown_model_name_lists_available_models():
    with pytest.raises(ValueError, match="unknown model.name 'resnet9'") as error:
        models.build_model({"name": "resnet9"})
    for name in ("mlp", "xor_mlp", "mnist_cnn", "flex_cnn", "grid_cnn", "covid_mlp"):
        assert name in str(error.value)


def test_missing_model_name_lists_available_models():
    with pytest.raises(ValueError, match="no 'name' field.*grid_cnn"):
        models.build_model({"hidden": (4,)})


@pytest.mark.parametrize(
    ("config", "valid_fields"),
    [
        ({"name": "flex_cnn", "dropout": 0.5}, ["dropout_rate", "batch_norm_momentum"]),
        ({"name": "xor_mlp", "hidden": (3,)}, ["width", "depth", "activation"]),
    ],
)
def test_unknown_field_lists_valid_fields(config, valid_fields):
    with pytest.raises(ValueError, match="unknown config field") as error:
        models.build_model(config)
    for field in valid_fields:
        assert field in str(error.value)
    assert "parent" not in str(error.value)


def test_registering_a_taken_name_fails():
    with pytest.raises(ValueError, match="already registered"):
        models.register("mlp")(models.MLP)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"name": "mlp", "activation": "swish"}, "unknown activation 'swish'.*leaky_relu"),
        ({"name": "grid_cnn", "num_conv_layers": 3}, r"num_conv_layers must be one of \[1, 2, 4\]"),
        ({"name": "grid_cnn", "conv_features": (4, 8, 8)}, "must have num_conv_layers=2 entries"),
        (
            {"name": "grid_cnn", "num_dense_layers": 3, "hidden_features": (10,)},
            "num_dense_layers - 1 = 2",
        ),
    ],
)
def test_invalid_settings_fail_at_init_with_the_fix(config, message):
    with pytest.raises(ValueError, match=message):
        abstract_variables(models.build_model(config), (1, 28, 28, 1))


def test_xor_mlp_rejects_zero_width():
    with pytest.raises(ValueError, match="width >= 1"):
        models.build_model({"name": "xor_mlp", "width": 0})


def test_summary_table_lists_layers_in_call_order():
    table = models.summary(models.build_model({"name": "mnist_cnn"}), (1, 28, 28, 1)).table
    lines = table.splitlines()
    assert lines[0].split() == ["module", "type", "output", "shape", "params"]
    rows = [line.split()[0] for line in lines[2:6]]
    assert rows == ["(model)", "conv1", "conv2", "fc"]
    assert "(1, 13, 13, 16)" in table and "ConvReluPool" in table and "8,010" in table
    assert lines[-1] == "Total params: 12,810"


def test_summary_reports_batch_stats():
    model = models.build_model({"name": "flex_cnn", "feature_maps": 4, "regularisation": True})
    assert "batch_stats: 8 values" in models.summary(model, (1, 6, 6, 1)).table


@pytest.mark.parametrize("shape", [(2, 6, 8, 3), (2, 7, 9, 3), (1, 5, 4, 1)])
def test_max_pool_2x2_matches_nn_max_pool(shape):
    x, weights = (
        jnp.asarray(np.random.default_rng(seed).normal(size=size), jnp.float32)
        for seed, size in ((0, shape), (1, (shape[0], shape[1] // 2, shape[2] // 2, shape[3])))
    )
    reference = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
    np.testing.assert_array_equal(max_pool_2x2(x), reference(x))
    weighted_sum = lambda pool: jax.grad(lambda x: jnp.sum(pool(x) * weights))(x)
    np.testing.assert_array_equal(weighted_sum(max_pool_2x2), weighted_sum(reference))


@pytest.mark.parametrize("padding", ["VALID", ((1, 1), (1, 1)), ((2, 0), (0, 1))])
def test_patch_conv_equals_nn_conv_in_values_and_gradients(padding):
    x = jax.random.normal(jax.random.key(1), (2, 7, 6, 3))
    conv = nn.Conv(5, (3, 3), padding=padding)
    patch = PatchConv(5, (3, 3), padding=padding)
    params = conv.init(jax.random.key(0), x)
    assert jax.tree.map(jnp.shape, patch.init(jax.random.key(0), x)) == jax.tree.map(jnp.shape, params)
    jax.tree.map(np.testing.assert_array_equal, patch.init(jax.random.key(0), x), params)
    np.testing.assert_allclose(patch.apply(params, x), conv.apply(params, x), rtol=1e-5, atol=1e-5)

    def grads(module):
        return jax.grad(lambda p, x: jnp.sum(jnp.sin(module.apply(p, x))), argnums=(0, 1))(params, x)

    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                 grads(patch), grads(conv))


CONV_FORM_MODELS = [  # (config, input shape): every model with a `conv` setting
    ({"name": "mnist_cnn"}, (3, 28, 28, 1)),
    ({"name": "grid_cnn", "num_conv_layers": 1, "num_dense_layers": 1}, (2, 28, 28, 1)),
    ({"name": "grid_cnn", "num_conv_layers": 2}, (2, 28, 28, 1)),
    ({"name": "grid_cnn", "num_conv_layers": 4}, (2, 16, 16, 1)),
]


def test_conv_auto_resolves_to_fused_on_cpu_and_xla_elsewhere(monkeypatch):
    assert jax.default_backend() == "cpu"
    assert resolve_conv("auto") == "fused"
    for form in ("fused", "xla", "patch"):
        assert resolve_conv(form) == form
    for backend in ("gpu", "tpu", "cuda", "rocm"):
        monkeypatch.setattr(jax, "default_backend", lambda backend=backend: backend)
        assert resolve_conv("auto") == "xla"
        assert resolve_conv("fused") == "fused"


@pytest.mark.parametrize("name", ["mnist_cnn", "grid_cnn"])
def test_conv_defaults_to_auto(name):
    assert models.build_model({"name": name}).conv == "auto"


def _module_types(model, input_shape):
    """The module types in `model`'s summary table (rows between the two rules)."""
    return {line.split()[1] for line in models.summary(model, input_shape).table.splitlines()[2:-2]}


def _pooling_primitives(model, input_shape):
    x = jnp.zeros(input_shape)
    jaxpr = str(jax.make_jaxpr(model.apply)(model.init(jax.random.key(0), x), x))
    return {name for name in ("custom_vjp_call", "reduce_window_max") if name in jaxpr}


def test_mnist_cnn_auto_uses_fused_layers_on_cpu():
    model = models.build_model({"name": "mnist_cnn"})
    types = _module_types(model, (1, 28, 28, 1))
    assert "ConvReluPool" in types and "Conv" not in types
    assert _pooling_primitives(model, (1, 28, 28, 1)) == {"custom_vjp_call"}


def test_mnist_cnn_auto_uses_nn_conv_and_standard_pooling_off_cpu(monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")  # still runs on the CPU
    model = models.build_model({"name": "mnist_cnn"})
    types = _module_types(model, (1, 28, 28, 1))
    assert "Conv" in types and "ConvReluPool" not in types
    assert _pooling_primitives(model, (1, 28, 28, 1)) == {"reduce_window_max"}


@pytest.mark.parametrize("on_cpu", [True, False], ids=["cpu", "gpu"])
@pytest.mark.parametrize(("config", "input_shape"), CONV_FORM_MODELS, ids=lambda v: str(v))
def test_conv_forms_have_the_same_parameter_tree(config, input_shape, on_cpu, monkeypatch):
    """Names and shapes: a checkpoint trained with one form (or on one platform) loads
    into every other."""
    if not on_cpu:
        monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    trees = {form: jax.tree.map(jnp.shape, abstract_variables(
        models.build_model({**config, "conv": form}), input_shape)) for form in CONV_FORMS}
    for form in ("auto", "fused", "patch"):
        assert trees[form] == trees["xla"], form


@pytest.mark.parametrize("form", ["fused", "patch"])  # "auto" is "fused" here (CPU)
@pytest.mark.parametrize(("config", "input_shape"), CONV_FORM_MODELS, ids=lambda v: str(v))
def test_conv_forms_keep_parameters_outputs_and_gradients(config, input_shape, form):
    x = jax.random.normal(jax.random.key(2), input_shape)
    reference = models.build_model({**config, "conv": "xla"})
    model = models.build_model({**config, "conv": form})
    variables = reference.init(jax.random.key(0), x)
    jax.tree.map(np.testing.assert_array_equal, model.init(jax.random.key(0), x), variables)
    np.testing.assert_allclose(model.apply(variables, x), reference.apply(variables, x),
                               rtol=1e-5, atol=1e-5)

    def grads(module):
        return jax.grad(lambda v: jnp.sum(jnp.sin(module.apply(v, x))))(variables)

    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                 grads(model), grads(reference))


@pytest.mark.parametrize(("config", "input_shape"), CONV_FORM_MODELS, ids=lambda v: str(v))
def test_auto_gives_the_same_values_and_gradients_on_and_off_cpu(config, input_shape,
                                                                monkeypatch):
    """Off CPU, `auto` is `nn.Conv` with standard pooling (`nn.max_pool`); it computes what
    the CPU form computes, so a checkpoint carries across platforms unchanged."""
    x = jax.random.normal(jax.random.key(2), input_shape)
    model = models.build_model(config)
    variables = model.init(jax.random.key(0), x)

    def outputs_and_grads():
        return model.apply(variables, x), jax.grad(
            lambda v: jnp.sum(jnp.sin(model.apply(v, x))))(variables)

    on_cpu = outputs_and_grads()
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                 outputs_and_grads(), on_cpu)


@pytest.mark.parametrize("name", ["mnist_cnn", "grid_cnn"])
def test_unknown_conv_form_lists_the_valid_ones(name):
    model = models.build_model({"name": name, "conv": "winograd"})
    with pytest.raises(ValueError, match=f"{name} conv must be one of") as error:
        model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    for form in ("'winograd'", *CONV_FORMS):
        assert form in str(error.value)


def _reference_conv_relu_pool(features, kernel_size):
    conv = nn.Conv(features, kernel_size, padding="VALID")
    return lambda x: nn.max_pool(nn.relu(conv(x)), (2, 2), strides=(2, 2)), conv


@pytest.mark.parametrize(("shape", "kernel_size"), [((2, 9, 10, 1), (3, 3)),
                                                    ((2, 8, 7, 1), (2, 3)),
                                                    ((2, 9, 8, 4), (3, 3))])
def test_conv_relu_pool_equals_conv_relu_max_pool(shape, kernel_size):
    """Values, parameter gradients and input gradients, one-channel and multi-channel input."""
    x = jax.random.normal(jax.random.key(3), shape)
    layer = ConvReluPool(6, kernel_size)
    conv = nn.Conv(6, kernel_size, padding="VALID")
    params = conv.init(jax.random.key(0), x)
    jax.tree.map(np.testing.assert_array_equal, layer.init(jax.random.key(0), x), params)
    reference = lambda p, x: nn.max_pool(nn.relu(conv.apply(p, x)), (2, 2), strides=(2, 2))
    np.testing.assert_allclose(layer.apply(params, x), reference(params, x), rtol=1e-5, atol=1e-6)
    weights = jax.random.normal(jax.random.key(4), reference(params, x).shape)

    def grads(apply):
        return jax.grad(lambda p, x: jnp.sum(apply(p, x) * weights), argnums=(0, 1))(params, x)

    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                 grads(layer.apply), grads(reference))


@pytest.mark.parametrize("channels", [1, 3])
def test_conv_relu_pool_sends_a_tied_window_gradient_to_its_first_maximum(channels):
    """A blank image makes every conv output equal its bias: each window is a four-way tie,
    and, as in PyTorch, only the first member (top-left) gets the gradient."""
    x = jnp.zeros((1, 6, 6, channels))
    layer = ConvReluPool(2, (3, 3))
    params = {"params": {"kernel": jnp.ones((3, 3, channels, 2)), "bias": jnp.array([0.5, 1.0])}}
    weights = jnp.arange(1.0, 9.0).reshape(1, 2, 2, 2)
    grads = jax.grad(lambda p: jnp.sum(layer.apply(p, x) * weights))(params)["params"]
    np.testing.assert_allclose(grads["bias"], weights.sum(axis=(0, 1, 2)))
    np.testing.assert_allclose(grads["kernel"], jnp.zeros((3, 3, channels, 2)))


def test_max_pool_2x2_gradient_of_ties_goes_to_the_first_maximum():
    x = jnp.array([[1.0, 1.0, 0.0, 2.0], [1.0, 1.0, 2.0, 2.0]])[None, :, :, None]
    grad = jax.grad(lambda x: jnp.sum(max_pool_2x2(x) * jnp.array([3.0, 5.0])[None, None, :, None]))(x)
    np.testing.assert_array_equal(grad[0, :, :, 0], [[3.0, 0.0, 0.0, 5.0], [0.0, 0.0, 0.0, 0.0]])
    reference = jax.grad(lambda x: jnp.sum(nn.max_pool(x, (2, 2), strides=(2, 2))
                                           * jnp.array([3.0, 5.0])[None, None, :, None]))(x)
    np.testing.assert_array_equal(grad, reference)