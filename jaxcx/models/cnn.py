"""CNNs of the source notebooks: the XOR/MNIST notebook's MNIST CNN, the pneumonia
notebook's FlexModel, the Fashion-MNIST notebook's CNN grid and the CheXpert notebook's
small custom CNN."""

from collections.abc import Sequence

import flax.linen as nn
import jax

from jaxcx.models.layers import activation_fn, conv_relu, flatten, pool_2x2, resolve_conv
from jaxcx.models.registry import register


@register("mnist_cnn")
class MnistCNN(nn.Module):
    """The XOR/MNIST notebook's MNIST CNN: conv 16@3x3, ReLU, pool, conv 32@3x3, ReLU,
    pool, Dense logits.

    Valid convolutions; 12,810 parameters on 28x28x1. `conv` picks how each conv + ReLU +
    pool block is computed; parameters, values and gradients are the same for all forms,
    so a checkpoint trained with one loads into any other: "fused" (`ConvReluPool`, the
    fastest training step on XLA:CPU), "xla" (`nn.Conv`, ReLU, `pool_2x2`), "patch"
    (`PatchConv`, about 10x faster than `nn.Conv` inside `lax.scan` on XLA:CPU, as
    `jaxcx.train.multiseed` trains) or "auto" (the default: "fused" on CPU, "xla" on
    other backends; `jaxcx.models.layers.resolve_conv`).
    """

    num_classes: int = 10
    conv: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        form = resolve_conv(self.conv, "mnist_cnn")
        for name, features in (("conv1", 16), ("conv2", 32)):
            x = conv_relu(form, features, (3, 3), name=name)(x)
        return nn.Dense(self.num_classes, name="fc")(flatten(x))


@register("flex_cnn")
class FlexCNN(nn.Module):
    """The pneumonia notebook's FlexModel: one conv (padding kernel_size // 2), activation,
    flatten, Dense logits.

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
    """The Fashion-MNIST notebook's CNN grid: 1, 2 or 4 conv layers (`conv1`...), 1-3 Dense
    layers (`fc1`...).

    1 or 2 conv layers: valid convs, each followed by ReLU and a 2x2 max pool. 4 conv
    layers: convs padded kernel_size // 2, a pool after every second. Dense layers have
    ReLU between them; the last gives the logits. `conv_features` and `hidden_features`
    default to the notebook's widths for the chosen layer counts. `conv` picks the form of
    the conv layers as in `MnistCNN` ("auto", the default, is "fused" on CPU and "xla"
    elsewhere); "fused" computes each valid conv + ReLU + pool as one `ConvReluPool` and
    the padded convs of the 4-layer grid as "xla" does (`jaxcx.models.layers.conv_relu`).
    Parameters, values and gradients are the same in every form.
    """

    num_classes: int = 5
    num_conv_layers: int = 2
    num_dense_layers: int = 2
    conv_features: Sequence[int] | None = None
    hidden_features: Sequence[int] | None = None
    kernel_size: int = 5
    conv: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        conv_features, hidden_features = self._layer_widths()
        form = resolve_conv(self.conv, "grid_cnn")
        four_layers = self.num_conv_layers == 4
        pad = self.kernel_size // 2
        padding = ((pad, pad), (pad, pad)) if four_layers else "VALID"
        convs_per_pool = 2 if four_layers else 1
        kernel = (self.kernel_size, self.kernel_size)
        for index, features in enumerate(conv_features, start=1):
            x = conv_relu(form, features, kernel, name=f"conv{index}", padding=padding,
                          pool=index % convs_per_pool == 0)(x)
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


@register("chest_cnn")
class ChestCNN(nn.Module):
    """A small CNN for X-rays after the CheXpert notebook's `CustomPneumonia` (an
    educational model whose layers the notebook does not list): per entry of
    `conv_features` a 3x3 conv, BatchNorm, ReLU and 2x2 max pool; flatten; a hidden
    Dense layer with ReLU and dropout; Dense logits. With the default widths on 64x64x1
    and 12 labels: 361,212 parameters."""

    num_classes: int = 12
    conv_features: Sequence[int] = (16, 32, 64, 128)
    hidden_features: int = 128
    dropout_rate: float = 0.5
    batch_norm_momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        for index, features in enumerate(self.conv_features, start=1):
            x = nn.Conv(features, (3, 3), padding=((1, 1), (1, 1)), use_bias=False,
                        name=f"conv{index}")(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=self.batch_norm_momentum,
                             name=f"bn{index}")(x)
            x = pool_2x2(nn.relu(x))
        x = nn.relu(nn.Dense(self.hidden_features, name="fc1")(flatten(x)))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return nn.Dense(self.num_classes, name="fc2")(x)
