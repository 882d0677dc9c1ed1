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


POOL_WINDOW_ORDER = ((0, 0), (0, 1), (1, 0), (1, 1))  # row-major, as PyTorch scans a window


def _first_maximum_masks(candidates: list[jax.Array], maximum: jax.Array) -> list[jax.Array]:
    """Per candidate, where it is the first of `candidates` to equal `maximum`."""
    taken = jnp.zeros(maximum.shape, bool)
    masks = []
    for candidate in candidates:
        hit = (candidate == maximum) & ~taken
        masks.append(hit)
        taken = taken | hit
    return masks


def _pool_window_array(x: jax.Array) -> jax.Array:
    """`[..., H, W, C]` as [..., H // 2, 2, W // 2, 2, C] windows (odd last row/column dropped)."""
    *batch, height, width, channels = x.shape
    x = x[..., : height // 2 * 2, : width // 2 * 2, :]
    return x.reshape(*batch, height // 2, 2, width // 2, 2, channels)


@jax.custom_vjp
def max_pool_2x2(x: jax.Array) -> jax.Array:
    """2x2 max pooling with stride 2 over the H, W axes of `[..., H, W, C]` input.

    Same values and gradients as `nn.max_pool(x, (2, 2), strides=(2, 2))` and PyTorch's
    `MaxPool2d(2)`: an odd last row/column is dropped, and the gradient of a window goes
    to its first maximum in row-major order. Written as reshape + max with a mask-select
    gradient because `nn.max_pool`'s gradient (select-and-scatter) is slow on XLA:CPU.
    """
    return _pool_window_array(x).max(axis=(-4, -2))


def _max_pool_forward(x):
    pooled = max_pool_2x2(x)
    return pooled, (x, pooled)


def _max_pool_backward(residuals, grad):
    x, pooled = residuals
    windows = _pool_window_array(x)
    members = [windows[..., :, a, :, d, :] for a, d in POOL_WINDOW_ORDER]
    masks = _first_maximum_masks(members, pooled)
    g00, g01, g10, g11 = (jnp.where(mask, grad, 0) for mask in masks)
    rows = jnp.stack([jnp.stack([g00, g01], axis=-2), jnp.stack([g10, g11], axis=-2)], axis=-4)
    *batch, height, width, channels = x.shape
    grad_x = rows.reshape(*batch, height // 2 * 2, width // 2 * 2, channels)
    pad = [(0, 0)] * len(batch) + [(0, height % 2), (0, width % 2), (0, 0)]
    return (jnp.pad(grad_x, pad),)


max_pool_2x2.defvjp(_max_pool_forward, _max_pool_backward)


CONV_FORMS = ("auto", "fused", "xla", "patch")


def on_xla_cpu() -> bool:
    """Whether JAX's default backend is XLA:CPU, the platform `ConvReluPool`, `PatchConv`
    and `max_pool_2x2` are tuned for."""
    return jax.default_backend() == "cpu"


def resolve_conv(conv: str, model: str = "model") -> str:
    """The form a model's `conv` setting stands for on the current backend.

    "auto" is "fused" on XLA:CPU and "xla" on every other backend (GPU, TPU); "fused",
    "xla" and "patch" stand for themselves. Models call this while they are set up or
    called, not when configured, so one config (and, as every form has the same
    parameters, one checkpoint) serves every platform. `model` names the model in the
    error raised for any other value.
    """
    if conv not in CONV_FORMS:
        raise ValueError(f"{model} conv must be one of {CONV_FORMS}, got {conv!r}")
    if conv == "auto":
        return "fused" if on_xla_cpu() else "xla"
    return conv


def pool_2x2(x: jax.Array) -> jax.Array:
    """2x2 max pooling with stride 2 over the H, W axes of `[..., H, W, C]` input:
    `max_pool_2x2` on XLA:CPU, the standard `nn.max_pool` on other backends. Both give
    the same values and gradients."""
    if on_xla_cpu():
        return max_pool_2x2(x)
    return nn.max_pool(x, (2, 2), strides=(2, 2))


def _pooled_size(x: jax.Array, kernel_size: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns of max_pool_2x2 over a valid convolution of `x` [N, H, W, C]."""
    kh, kw = kernel_size
    return (x.shape[1] - kh + 1) // 2, (x.shape[2] - kw + 1) // 2


def _window_inputs(x: jax.Array, kernel_size: tuple[int, int]) -> jax.Array:
    """For one-channel `x` [N, H, W, 1], the inputs of a valid convolution evaluated at the
    positions of each member (a, d) of the 2x2 pooling windows over its output:
    [kh * kw + 1, 4 * N * H' * W'], row (i, j) holding x[n, 2r + a + i, 2s + d + j] and the
    last row ones (for the bias); H' = (H - kh + 1) // 2, W' likewise."""
    kh, kw = kernel_size
    rows, cols = _pooled_size(x, kernel_size)
    x = x[..., 0]
    taps = [jnp.stack([x[:, a + i: a + i + 2 * rows - 1: 2, d + j: d + j + 2 * cols - 1: 2]
                       for a, d in POOL_WINDOW_ORDER])
            for i in range(kh) for j in range(kw)]
    return jnp.stack(taps + [jnp.ones_like(taps[0])]).reshape(kh * kw + 1, -1)


def _window_members(x, kernel, bias):
    """(inputs, members): `_window_inputs` and the biased convolution at each pooling-window
    member's positions, [4, N, H', W', F]; a matrix product, so XLA stores it once instead
    of recomputing it inside every consumer."""
    kh, kw, _, features = kernel.shape
    inputs = _window_inputs(x, (kh, kw))
    weights = jnp.concatenate([kernel.reshape(kh * kw, features), bias[None]])
    return inputs, (inputs.T @ weights).reshape(4, x.shape[0], *_pooled_size(x, (kh, kw)),
                                                features)


@jax.custom_vjp
def _one_channel_conv_relu_pool(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """max_pool_2x2(relu(conv(x, kernel) + bias)) for `x` [N, H, W, 1], valid padding."""
    return nn.relu(_window_members(x, kernel, bias)[1].max(axis=0))


def _one_channel_forward(x, kernel, bias):
    inputs, members = _window_members(x, kernel, bias)
    return nn.relu(members.max(axis=0)), (x, kernel, inputs, members)


def _one_channel_backward(residuals, grad):
    x, kernel, inputs, members = residuals
    kh, kw, _, features = kernel.shape
    maximum = members.max(axis=0)
    grad = jnp.where(maximum > 0, grad, 0)
    grad_members = jnp.stack([jnp.where(mask, grad, 0) for mask in
                              _first_maximum_masks(list(members), maximum)])
    # Kernel and bias gradients as one matrix product: [taps + 1, M] @ [M, F].
    grad_weights = inputs @ grad_members.reshape(-1, features)
    grad_inputs = (jnp.pad(kernel.reshape(kh * kw, features), ((0, 1), (0, 0)))
                   @ grad_members.reshape(-1, features).T)  # no gradient for the ones row
    _, input_pullback = jax.vjp(lambda x: _window_inputs(x, (kh, kw)), x)
    (grad_x,) = input_pullback(grad_inputs)  # dead code unless the input gradient is used
    return grad_x, grad_weights[:-1].reshape(kernel.shape), grad_weights[-1]


_one_channel_conv_relu_pool.defvjp(_one_channel_forward, _one_channel_backward)


def _crop_to_pooled(x, kernel):
    """`x` without a last row/column that no pooled output depends on."""
    kh, kw = kernel.shape[:2]
    rows, cols = _pooled_size(x, (kh, kw))
    return x[:, :2 * rows + kh - 1, :2 * cols + kw - 1]


def _convolve(x, kernel):
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _patches(x: jax.Array, kernel_size: tuple[int, int]) -> jax.Array:
    """[..., H', W', kh * kw * C] inputs of each output position of a valid convolution of
    `x` [..., H, W, C], in the order of a kernel [kh, kw, C, F] reshaped to [kh * kw * C, F]."""
    kh, kw = kernel_size
    rows, cols = x.shape[-3] - kh + 1, x.shape[-2] - kw + 1
    return jnp.concatenate([x[..., i:i + rows, j:j + cols, :]
                            for i in range(kh) for j in range(kw)], axis=-1)


def _conv_parameters(module: nn.Module, kernel_size: tuple[int, int], in_features: int,
                     features: int) -> tuple[jax.Array, jax.Array]:
    """`kernel` [kh, kw, in, features] and `bias` of `module`, initialised as `nn.Conv`'s."""
    kernel = module.param("kernel", nn.linear.default_kernel_init,
                          (*kernel_size, in_features, features))
    bias = module.param("bias", nn.initializers.zeros_init(), (features,))
    return kernel, bias


@jax.custom_vjp
def _conv_relu_pool(x, kernel, bias):
    """max_pool_2x2(relu(conv(x, kernel) + bias)) for `x` [N, H, W, C], valid padding."""
    return max_pool_2x2(nn.relu(_convolve(x, kernel) + bias))


def _conv_relu_pool_forward(x, kernel, bias):
    conv = _convolve(x, kernel) + bias
    return max_pool_2x2(nn.relu(conv)), (x, kernel, conv)


def _conv_relu_pool_backward(residuals, grad):
    x, kernel, conv = residuals
    kh, kw, _, features = kernel.shape
    _, pool_pullback = jax.vjp(lambda conv: max_pool_2x2(nn.relu(conv)), conv)
    (grad_conv,) = pool_pullback(grad)
    (grad_kernel,) = jax.vjp(lambda kernel: _convolve(x, kernel), kernel)[1](grad_conv)
    grad_patches = grad_conv @ kernel.reshape(-1, features).T
    (grad_x,) = jax.vjp(lambda x: _patches(x, (kh, kw)), x)[1](grad_patches)
    # The bias gradient as a matrix product: XLA:CPU's reduction over N, H, W is slower.
    flat = grad_conv.reshape(-1, grad_conv.shape[-1])
    return grad_x, grad_kernel, jnp.ones(flat.shape[0], flat.dtype) @ flat


_conv_relu_pool.defvjp(_conv_relu_pool_forward, _conv_relu_pool_backward)


class ConvReluPool(nn.Module):
    """Valid 2-D convolution, bias, ReLU and 2x2 max pooling in one layer.

    Parameters (`kernel` [kh, kw, in, features], `bias`), initialisation, values and
    gradients are those of `nn.Conv(features, kernel_size, padding="VALID")` followed by
    `nn.relu` and `max_pool_2x2`, arranged for XLA:CPU:
    - one-channel input (the first layer of an image model): the convolution is one matrix
      product evaluated at the positions of each pooling-window member, so pooling is an
      elementwise maximum of four arrays, and the kernel and bias gradients are one matrix
      product over the same inputs;
    - more channels: `lax.conv` forward and kernel gradient, over the input rows and
      columns the pooled output depends on; the input gradient as a matrix product
      scattered back over the patches, the bias gradient as a matrix product.
    """

    features: int
    kernel_size: tuple[int, int] = (3, 3)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel, bias = _conv_parameters(self, self.kernel_size, x.shape[-1], self.features)
        *batch, height, width, channels = x.shape
        x = x.reshape(-1, height, width, channels)
        if channels == 1:
            pooled = _one_channel_conv_relu_pool(x, kernel, bias)
        else:
            pooled = _conv_relu_pool(_crop_to_pooled(x, kernel), kernel, bias)
        return pooled.reshape(*batch, *pooled.shape[1:])


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
        kernel, bias = _conv_parameters(self, self.kernel_size, x.shape[-1], self.features)
        if self.padding != "VALID":
            (top, bottom), (left, right) = self.padding
            x = jnp.pad(x, [(0, 0)] * (x.ndim - 3) + [(top, bottom), (left, right), (0, 0)])
        return _patches(x, self.kernel_size) @ kernel.reshape(-1, self.features) + bias


def conv_relu(form: str, features: int, kernel_size: tuple[int, int], *, name: str,
              padding: str | tuple[tuple[int, int], tuple[int, int]] = "VALID",
              pool: bool = True) -> Callable[[jax.Array], jax.Array]:
    """A stride-1 conv layer called `name`, ReLU and, with `pool`, 2x2 max pooling, in the
    resolved form `form` (see `resolve_conv`); call it inside a compact method.

    The parameters are those of `nn.Conv(features, kernel_size, padding=padding,
    name=name)` in every form, and so are the values and gradients:
    - "fused": `ConvReluPool` for a valid conv followed by a pool, otherwise as "xla"
      (padded 5x5 convs, as `grid_cnn` with 4 conv layers has, train no faster fused);
    - "xla": `nn.Conv`, ReLU, `pool_2x2`;
    - "patch": `PatchConv`, ReLU, `pool_2x2`.
    """
    if form == "fused" and pool and padding == "VALID":
        return ConvReluPool(features, kernel_size, name=name)
    if form == "patch":
        conv = PatchConv(features, kernel_size, padding=padding, name=name)
    elif form in ("fused", "xla"):
        conv = nn.Conv(features, kernel_size, padding=padding, name=name)
    else:
        raise ValueError(f"conv form must be one of {CONV_FORMS[1:]} (resolve 'auto' with "
                         f"resolve_conv first), got {form!r}")
    if pool:
        return lambda x: pool_2x2(nn.relu(conv(x)))
    return lambda x: nn.relu(conv(x))
