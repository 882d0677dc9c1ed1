"""Layers and activations shared by the jaxcx models."""

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "leaky_relu": nn.leaky_relu,  # negative slope 0.01, as torch.nn.LeakyReLU()
    "sigmoid": nn.sigmoid,
    "tanh": jnp.tanh,
    "gelu": functools.partial(nn.gelu, approximate=False),  # exact, as torch.nn.GELU()
}


def activation_fn(name: str) -> Callable[[jax.Array], jax.Array]:
    """The activation function called `name` (a key of `ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"
        ) from None


def flatten(x: jax.Array) -> jax.Array:
    """Flatten all axes but the leading batch axis."""
    return x.reshape((x.shape[0], -1))


def max_pool_2x2(x: jax.Array) -> jax.Array:
    """2x2 max pooling with stride 2 over the H, W axes of `[..., H, W, C]` input.

    Same values as `nn.max_pool(x, (2, 2), strides=(2, 2))` and PyTorch's `MaxPool2d(2)`
    (an odd last row/column is dropped), written as reshape + max because the gradient of
    `nn.max_pool` (select-and-scatter) is slow on XLA:CPU. Where a window holds several
    equal maxima their gradient is shared between them instead of going to one.
    """
    *batch, height, width, channels = x.shape
    x = x[..., : height // 2 * 2, : width // 2 * 2, :]
    x = x.reshape(*batch, height // 2, 2, width // 2, 2, channels)
    return x.max(axis=(-4, -2))


class PatchConv(nn.Module):
    """A stride-1 2-D convolution computed as shifted slices and one matrix product.

    Same parameters (`kernel` [kh, kw, in, features], `bias` [features]), initialisation
    and outputs as `nn.Conv(features, kernel_size, padding=padding)` on [..., H, W, C]
    inputs; `padding` is "VALID" or ((top, bottom), (left, right)). On XLA:CPU the weight
    gradient of `nn.Conv` is slow for small convolutions, most of all inside `lax.scan`;
    this form's gradient is another matrix product.
    """

    features: int
    kernel_size: tuple[int, int] = (3, 3)
    padding: str | tuple[tuple[int, int], tuple[int, int]] = "VALID"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = self.kernel_size
        kernel = self.param("kernel", nn.linear.default_kernel_init,
                            (kh, kw, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        if self.padding != "VALID":
            (top, bottom), (left, right) = self.padding
            x = jnp.pad(x, [(0, 0)] * (x.ndim - 3) + [(top, bottom), (left, right), (0, 0)])
        height, width = x.shape[-3] - kh + 1, x.shape[-2] - kw + 1
        patches = jnp.concatenate([x[..., i:i + height, j:j + width, :]
                                   for i in range(kh) for j in range(kw)], axis=-1)
        return patches @ kernel.reshape(-1, self.features) + bias
