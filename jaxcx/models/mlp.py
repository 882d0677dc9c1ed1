"""Multi-layer perceptrons: generic MLP, seed aliases, MLP autoencoder and its classifier."""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax

from jaxcx.models.layers import activation_fn, flatten
from jaxcx.models.registry import register

KERNEL_INITS = {"lecun_normal": nn.initializers.lecun_normal(),
                "glorot_uniform": nn.initializers.glorot_uniform()}


@register("mlp")
class MLP(nn.Module):
    """Flatten, Dense layers of widths `hidden` with `activation` after each, Dense logits.

    Layers are named `Dense_0` ... `Dense_{len(hidden)}`. The XOR/MNIST notebook's MNIST
    network is the default: 784-128-64-10, ReLU, 109,386 parameters.
    """

    hidden: Sequence[int] = (128, 64)
    num_outputs: int = 10
    activation: str = "relu"
    kernel_init: str = "lecun_normal"  # or 'glorot_uniform' (Keras' Dense default)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        if self.kernel_init not in KERNEL_INITS:
            raise ValueError(f"kernel_init must be one of {sorted(KERNEL_INITS)}, got "
                             f"{self.kernel_init!r}")
        init = KERNEL_INITS[self.kernel_init]
        act = activation_fn(self.activation)
        x = flatten(x)
        for width in self.hidden:
            x = act(nn.Dense(width, kernel_init=init)(x))
        return nn.Dense(self.num_outputs, kernel_init=init)(x)


@register("xor_mlp")
def xor_mlp(width: int = 2, depth: int = 0, activation: str = "tanh", num_outputs: int = 1) -> MLP:
    """The XOR/MNIST notebook's SimpleClassifier: `depth + 1` hidden layers of `width`
    units and one logit.

    Depth 0 is a single hidden layer, so on 2 inputs the model has
    `4 * width + 1 + depth * (width**2 + width)` parameters (5, 7, 9, 11 for width 1).
    """
    if width < 1 or depth < 0:
        raise ValueError(
            f"xor_mlp needs width >= 1 and depth >= 0, got width={width}, depth={depth}"
        )
    return MLP(hidden=(width,) * (depth + 1), num_outputs=num_outputs, activation=activation)


@register("covid_mlp")
def covid_mlp(
    hidden: Sequence[int] = (1024,), activation: str = "sigmoid", num_outputs: int = 1,
    kernel_init: str = "glorot_uniform",
) -> MLP:
    """The COVID notebook's X-ray MLP: sigmoid Dense 1024 (then 256: `hidden=(1024, 256)`),
    1 logit (or `num_outputs` softmax logits), Keras' Glorot-uniform kernels.

    The notebook's output sigmoid belongs to the loss. On 256x256x1 inputs the default has
    67,110,913 parameters.
    """
    return MLP(hidden=hidden, num_outputs=num_outputs, activation=activation,
               kernel_init=kernel_init)


@register("mlp_autoencoder")
class MLPAutoencoder(nn.Module):
    """The Fashion-MNIST notebook's VanillaAutoEncoder: `encoder` MLP to `features[-1]`
    units, mirrored `decoder`.

    The activation follows every encoder layer (the code included) and every decoder layer
    but the last; the output is reconstruction logits shaped like the input (the notebook's
    final sigmoid belongs to the loss). The `encoder` subtree has the same names and shapes
    as `MLPEncoderClassifier`'s, so pretrained encoder weights restore into it.
    """

    features: Sequence[int] = (128, 64, 32, 10)
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        code = activation_fn(self.activation)(_encoder(self.features, self.activation)(x))
        decoder = MLP(
            hidden=tuple(reversed(self.features[:-1])),
            num_outputs=math.prod(x.shape[1:]),
            activation=self.activation,
            name="decoder",
        )
        return decoder(code).reshape(x.shape)


@register("mlp_encoder_classifier")
class MLPEncoderClassifier(nn.Module):
    """The Fashion-MNIST notebook's classifier MLP, laid out as `MLPAutoencoder`'s
    `encoder` for transfer.

    With `num_classes=None` (the notebook's) the encoder's last layer gives the logits; otherwise
    the activated code feeds a new Dense layer `head` with `num_classes` logits.
    """

    features: Sequence[int] = (128, 64, 32, 10)
    activation: str = "relu"
    num_classes: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        code = _encoder(self.features, self.activation)(x)
        if self.num_classes is None:
            return code
        return nn.Dense(self.num_classes, name="head")(activation_fn(self.activation)(code))


def _encoder(features: Sequence[int], activation: str) -> MLP:
    return MLP(
        hidden=tuple(features[:-1]), num_outputs=features[-1], activation=activation, name="encoder"
    )
