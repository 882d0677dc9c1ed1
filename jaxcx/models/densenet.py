"""DenseNet-BC (Huang et al. 2017), the CheXpert notebook's main model."""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcx.models.registry import register

DENSENET_BLOCKS = {121: (6, 12, 24, 16), 169: (6, 12, 32, 32), 201: (6, 12, 48, 32)}


class _BNReLUConv(nn.Module):
    """BatchNorm, ReLU, conv without bias: DenseNet's pre-activation unit."""

    features: int
    kernel: int
    momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum, epsilon=1e-5,
                         name="bn")(x)
        pad = self.kernel // 2
        return nn.Conv(self.features, (self.kernel, self.kernel), padding=((pad, pad), (pad, pad)),
                       use_bias=False, name="conv")(nn.relu(x))


class DenseLayer(nn.Module):
    """Bottleneck (1x1 to `bottleneck * growth` channels) then 3x3 to `growth` new maps."""

    growth: int
    bottleneck: int = 4
    dropout_rate: float = 0.0
    momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        y = _BNReLUConv(self.bottleneck * self.growth, 1, self.momentum, name="reduce")(x, train)
        y = _BNReLUConv(self.growth, 3, self.momentum, name="grow")(y, train)
        if self.dropout_rate > 0:
            y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
        return y


@register("densenet")
class DenseNet(nn.Module):
    """DenseNet-BC: `depth` 121, 169 or 201, or any `blocks` layout.

    7x7/2 stem with `2 * growth` maps, 3x3/2 max pool, dense blocks whose layers each
    add `growth` maps to the concatenation of all earlier ones, transitions between blocks
    (BN, ReLU, 1x1 conv keeping `compression` of the channels, 2x2 average pool), final
    BN + ReLU, global average pool, Dense logits. DenseNet-121 with 3 input channels and
    1000 classes has 7,978,856 parameters, as torchvision's.
    """

    num_classes: int = 12
    depth: int = 121
    blocks: Sequence[int] | None = None
    growth: int = 32
    bottleneck: int = 4
    compression: float = 0.5
    dropout_rate: float = 0.0
    batch_norm_momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        if self.blocks is None and self.depth not in DENSENET_BLOCKS:
            raise ValueError(f"densenet depth must be one of {sorted(DENSENET_BLOCKS)} "
                             f"(or set model.blocks), got {self.depth}")
        blocks = DENSENET_BLOCKS[self.depth] if self.blocks is None else tuple(self.blocks)
        momentum = self.batch_norm_momentum
        x = nn.Conv(2 * self.growth, (7, 7), (2, 2), padding=((3, 3), (3, 3)), use_bias=False,
                    name="stem_conv")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=momentum,
                                 epsilon=1e-5, name="stem_bn")(x))
        x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        for block, layers in enumerate(blocks, start=1):
            for index in range(layers):
                new = DenseLayer(self.growth, self.bottleneck, self.dropout_rate, momentum,
                                 name=f"block{block}_layer{index + 1}")(x, train)
                x = jnp.concatenate([x, new], axis=-1)
            if block < len(blocks):
                x = _BNReLUConv(int(x.shape[-1] * self.compression), 1, momentum,
                                name=f"transition{block}")(x, train)
                x = nn.avg_pool(x, (2, 2), (2, 2))
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=momentum,
                                 epsilon=1e-5, name="final_bn")(x))
        return nn.Dense(self.num_classes, name="fc")(jnp.mean(x, axis=(1, 2)))
