"""ResNets (He et al. 2016, torchvision's v1.5 layout) for 1-channel X-rays: the CheXpert
notebook's `ResNet_GrayScale`, with optional spatial dropout after each stage."""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxcx.models.registry import register

RESNET_STAGES = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
                 152: (3, 8, 36, 3)}
STAGE_WIDTHS = (64, 128, 256, 512)


def _padding(kernel: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """PyTorch's symmetric `kernel // 2` padding (Flax's 'SAME' pads stride-2 convs
    asymmetrically, which would shift every feature map by half a pixel)."""
    return ((kernel // 2, kernel // 2),) * 2


class _ConvBN(nn.Module):
    """Conv (no bias) then BatchNorm, optionally ReLU."""

    features: int
    kernel: int
    strides: int = 1
    relu: bool = True
    momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = nn.Conv(self.features, (self.kernel, self.kernel), (self.strides, self.strides),
                    padding=_padding(self.kernel), use_bias=False, name="conv")(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum, epsilon=1e-5,
                         name="bn")(x)
        return nn.relu(x) if self.relu else x


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34)."""

    features: int
    strides: int = 1
    momentum: float = 0.9
    expansion = 1

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        y = _ConvBN(self.features, 3, self.strides, momentum=self.momentum, name="conv1")(x, train)
        y = _ConvBN(self.features, 3, relu=False, momentum=self.momentum, name="conv2")(y, train)
        return nn.relu(y + _shortcut(self, x, self.features, train))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride, as torchvision's v1.5), 1x1 expand x4
    (ResNet-50 and deeper)."""

    features: int
    strides: int = 1
    momentum: float = 0.9
    expansion = 4

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        out = self.features * self.expansion
        y = _ConvBN(self.features, 1, momentum=self.momentum, name="conv1")(x, train)
        y = _ConvBN(self.features, 3, self.strides, momentum=self.momentum, name="conv2")(y, train)
        y = _ConvBN(out, 1, relu=False, momentum=self.momentum, name="conv3")(y, train)
        return nn.relu(y + _shortcut(self, x, out, train))


def _shortcut(block: nn.Module, x: jax.Array, features: int, train: bool) -> jax.Array:
    """Identity, or a strided 1x1 conv + BN where the shape changes."""
    if block.strides == 1 and x.shape[-1] == features:
        return x
    return _ConvBN(features, 1, block.strides, relu=False, momentum=block.momentum,
                   parent=block, name="downsample")(x, train)


@register("resnet")
class ResNet(nn.Module):
    """ResNet-`depth` (18, 34, 50, 101, 152) on any number of input channels.

    7x7/2 stem, 3x3/2 max pool, four stages (`stage_widths`, `stages` blocks each; a
    stride of 2 opens every stage but the first), global average pool, Dense logits.
    `dropout_rate` > 0 adds spatial dropout (whole feature maps, PyTorch's `Dropout2d`)
    after each stage, as the CheXpert notebook's forward hooks did. `stages` and
    `stage_widths` override the depth's layout (tiny test variants use the same code).
    With 3 input channels and 1000 classes, ResNet-18 has 11,689,512 parameters and
    ResNet-50 25,557,032, as torchvision's.
    """

    num_classes: int = 12
    depth: int = 18
    stages: Sequence[int] | None = None
    stage_widths: Sequence[int] = STAGE_WIDTHS
    stem_width: int = 64
    dropout_rate: float = 0.0
    batch_norm_momentum: float = 0.9

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        if self.depth not in RESNET_STAGES:
            raise ValueError(f"resnet depth must be one of {sorted(RESNET_STAGES)}, got {self.depth}")
        stages = RESNET_STAGES[self.depth] if self.stages is None else tuple(self.stages)
        if len(stages) != len(self.stage_widths):
            raise ValueError(f"resnet stages {stages} and stage_widths "
                             f"{tuple(self.stage_widths)} must have the same length")
        block = BasicBlock if self.depth < 50 else Bottleneck
        momentum = self.batch_norm_momentum
        x = _ConvBN(self.stem_width, 7, 2, momentum=momentum, name="stem")(x, train)
        x = nn.max_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)))
        for stage, (blocks, width) in enumerate(zip(stages, self.stage_widths), start=1):
            for index in range(blocks):
                strides = 2 if index == 0 and stage > 1 else 1
                x = block(width, strides, momentum, name=f"stage{stage}_block{index + 1}")(x, train)
            if self.dropout_rate > 0:
                x = nn.Dropout(self.dropout_rate, broadcast_dims=(1, 2),
                               deterministic=not train)(x)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.num_classes, name="fc")(x)
