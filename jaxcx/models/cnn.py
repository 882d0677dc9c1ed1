"""Seed CNNs: seed 001's MNIST CNN, seed 000's FlexModel, seed 003's CNN grid."""

from collections.abc import Sequence

import flax.linen as nn
import jax

from jaxcx.models.layers import ConvReluPool, PatchConv, activation_fn, flatten, max_pool_2x2
from jaxcx.models.registry import register


MNIST_CNN_CONV_FORMS = ("fused", "xla", "patch")


@register("mnist_cnn")
class MnistCNN(nn.Module):
    """Seed 001's MNIST CNN: conv 16@3x3, ReLU, pool, conv 32@3x3, ReLU, pool, Dense logits.

    Valid convolutions; 12,810 parameters on 28x28x1. `conv` picks how each conv + ReLU +
    pool block is computed; parameters, values and gradients are the same for all three:
    "fused" (`ConvReluPool`, the fastest training step on XLA:CPU), "xla" (`nn.Conv`) or
    "patch" (`PatchConv`, about 10x faster than `nn.Conv` inside `lax.scan`, as
    `jaxcx.train.multiseed` trains).
    """

    num_classes: int = 10
    conv: str = "fused"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        for name, features in (("conv1", 16), ("conv2", 32)):
            x = self._conv_relu_pool(features, name)(x)
        return nn.Dense(self.num_classes, name="fc")(flatten(x))

    def _conv_relu_pool(self, features: int, name: str):
        if self.conv == "fused":
            return ConvReluPool(features, (3, 3), name=name)
        if self.conv == "xla":
            conv = nn.Conv(features, (3, 3), padding="VALID", name=name)
        elif self.conv == "patch":
            conv = PatchConv(features, (3, 3), name=name)
        else:
            raise ValueError(f"mnist_cnn conv must be one of {MNIST_CNN_CONV_FORMS}, "
                             f"got {self.conv!r}")
        return lambda x: max_pool_2x2(nn.relu(conv(x)))


@register("flex_cnn")
class FlexCNN(nn.Module):
    """Seed 000's FlexModel: one conv (padding kernel_size // 2), activation, flatten, Dense logits.

    With `regularisation`, BatchNorm follows the conv and dropout precedes the Dense layer.
    No pooling, so the Dense layer has H * W * feature_maps inputs.
    """

    num_classes: int = 2
    feature_maps: int = 32
    kernel_size: int = 3
    activation: str = "relu"
    regularisation: bool = False
    dropout_rate: float = 0.5
    batch_norm_momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        pad = self.kernel_size // 2
        kernel = (self.kernel_size, self.kernel_size)
        x = nn.Conv(self.feature_maps, kernel, padding=((pad, pad), (pad, pad)), name="conv")(x)
        if self.regularisation:
            x = nn.BatchNorm(
                use_running_average=not train, momentum=self.batch_norm_momentum, name="batchnorm"
            )(x)
        x = activation_fn(self.activation)(x)
        if self.regularisation:
            x = nn.Dropout(self.dropout_rate, deterministic=not train, name="dropout")(x)
        return nn.Dense(self.num_classes, name="fc")(flatten(x))


GRID_CNN_CONV_FEATURES = {1: (6,), 2: (6, 12), 4: (6, 12, 16, 24)}
GRID_CNN_HIDDEN_FEATURES = {1: (), 2: (80,), 3: (120, 84)}


@register("grid_cnn")
class GridCNN(nn.Module):
    """Seed 003's CNN grid: 1, 2 or 4 conv layers (`conv1`...), 1-3 Dense layers (`fc1`...).

    1 or 2 conv layers: valid convs, each followed by ReLU and a 2x2 max pool. 4 conv
    layers: convs padded kernel_size // 2, a pool after every second. Dense layers have
    ReLU between them; the last gives the logits. `conv_features` and `hidden_features`
    default to the seed's widths for the chosen layer counts.
    """

    num_classes: int = 5
    num_conv_layers: int = 2
    num_dense_layers: int = 2
    conv_features: Sequence[int] | None = None
    hidden_features: Sequence[int] | None = None
    kernel_size: int = 5

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        conv_features, hidden_features = self._layer_widths()
        four_layers = self.num_conv_layers == 4
        pad = self.kernel_size // 2
        padding = ((pad, pad), (pad, pad)) if four_layers else "VALID"
        convs_per_pool = 2 if four_layers else 1
        kernel = (self.kernel_size, self.kernel_size)
        for index, features in enumerate(conv_features, start=1):
            x = nn.relu(nn.Conv(features, kernel, padding=padding, name=f"conv{index}")(x))
            if index % convs_per_pool == 0:
                x = max_pool_2x2(x)
        x = flatten(x)
        for index, features in enumerate(hidden_features, start=1):
            x = nn.relu(nn.Dense(features, name=f"fc{index}")(x))
        return nn.Dense(self.num_classes, name=f"fc{self.num_dense_layers}")(x)

    def _layer_widths(self) -> tuple[Sequence[int], Sequence[int]]:
        if self.num_conv_layers not in GRID_CNN_CONV_FEATURES:
            raise ValueError(
                f"grid_cnn num_conv_layers must be one of {sorted(GRID_CNN_CONV_FEATURES)}, "
                f"got {self.num_conv_layers}"
            )
        if self.num_dense_layers not in GRID_CNN_HIDDEN_FEATURES:
            raise ValueError(
                f"grid_cnn num_dense_layers must be one of {sorted(GRID_CNN_HIDDEN_FEATURES)}, "
                f"got {self.num_dense_layers}"
            )
        conv_features = (
            GRID_CNN_CONV_FEATURES[self.num_conv_layers]
            if self.conv_features is None
            else self.conv_features
        )
        hidden_features = (
            GRID_CNN_HIDDEN_FEATURES[self.num_dense_layers]
            if self.hidden_features is None
            else self.hidden_features
        )
        if len(conv_features) != self.num_conv_layers:
            raise ValueError(
                f"grid_cnn conv_features {tuple(conv_features)} must have num_conv_layers="
                f"{self.num_conv_layers} entries"
            )
        if len(hidden_features) != self.num_dense_layers - 1:
            raise ValueError(
                f"grid_cnn hidden_features {tuple(hidden_features)} must have "
                f"num_dense_layers - 1 = {self.num_dense_layers - 1} entries "
                "(the last Dense layer gives the logits)"
            )
        return conv_features, hidden_features
