"""Seed 001, part 1: deep versus wide MLPs on continuous XOR.

Every (width, depth) setting trains `num_seeds` seeds from `jaxcx.train.multiseed`'s
scanned training run, and all settings train and evaluate in one compiled program:
settings of one depth share a `jax.vmap` (narrower MLPs zero-padded to the widest, see
`training_groups`), and the depths, whose layer counts differ, are unrolled. Accuracy is
measured once, at the end, on a separately generated evaluation set, as in the seed.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax.core.scope import LazyRng

from jaxcx import plots
from jaxcx.data.xor import make_xor
from jaxcx.models import build_model
from jaxcx.models.layers import activation_fn, flatten
from jaxcx.train import multiseed
from jaxcx.train.losses import make_loss
from jaxcx.train.optim import make_optimizer

BOUNDARY_RANGE = (-0.5, 1.5)
BOUNDARY_RESOLUTION = 101


@dataclasses.dataclass(frozen=True)
class Setting:
    """One MLP shape: `depth + 1` hidden layers of `width` units."""

    width: int
    depth: int

    @property
    def label(self) -> str:
        return f"width {self.width}, depth {self.depth}"


@dataclasses.dataclass
class SettingResult:
    """A setting's trained seeds: per-seed evaluation accuracy [K] and epoch losses [K, E]."""

    setting: Setting
    num_params: int
    eval_accuracy: np.ndarray
    epoch_loss: np.ndarray
    params: Any  # parameters with a leading seed axis K


@dataclasses.dataclass
class XorStudy:
    """Everything the report needs: data, per-setting results and timings (seconds)."""

    train_data: tuple[np.ndarray, np.ndarray]
    eval_data: tuple[np.ndarray, np.ndarray]
    results: list[SettingResult]
    compile_seconds: float
    run_seconds: float


def settings_grid(widths, depths) -> list[Setting]:
    """Settings ordered as the seed's Table 1: by width, then depth."""
    return [Setting(int(w), int(d)) for w in widths for d in depths]


def xor_model(config: ml_collections.ConfigDict, setting: Setting):
    """The config's model with the setting's width and depth."""
    return build_model({**config.model.to_dict(), "width": setting.width, "depth": setting.depth})


def load_xor_data(config: ml_collections.ConfigDict):
    """Training and evaluation sets, generated from separate seeds."""
    data = config.data
    train = make_xor(data.train_size, data.noise_std, data.data_seed)
    evaluation = make_xor(data.eval_size, data.noise_std, data.eval_data_seed)
    return train, evaluation


def training_groups(config: ml_collections.ConfigDict, settings: list[Setting]) -> list[list[Setting]]:
    """Settings that train as one vmapped batch, in `MaskedDepthMLP`'s padded layout.

    Depth padding is exact for any activation (skipped layers pass their input through).
    Width padding is exact when the activation maps 0 to 0 (tanh, ReLU): a narrower MLP
    zero-padded to the widest width computes the same function, and its padded weights get
    zero gradients and stay zero. So with such an activation all settings form one group;
    otherwise the settings of each width do.
    """
    if float(activation_fn(config.model.activation)(0.0)) == 0.0:
        return [list(settings)]
    widths = sorted({setting.width for setting in settings})
    return [[s for s in settings if s.width == width] for width in widths]


class MaskedDepthMLP(nn.Module):
    """`xor_mlp` of `width` and `max_depth` that applies only its first `depth + 1` hidden layers.

    `depth` may be traced (one value per vmapped run). The hidden layers past `depth`
    pass their input through unchanged and get zero gradients, so with the parameters of
    `xor_mlp(width, depth)` placed at `Dense_0`...`Dense_depth` and its output layer at
    `Dense_{max_depth + 1}` (see `padded_layer`) it computes the same function.
    """

    width: int
    max_depth: int
    depth: Any
    activation: str
    num_outputs: int

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        act = activation_fn(self.activation)
        dense = lambda features: nn.Dense(features, dot_general=broadcast_dot_general)
        x = act(dense(self.width)(flatten(x)))
        for index in range(1, self.max_depth + 1):
            x = jnp.where(index <= self.depth, act(dense(self.width)(x)), x)
        return dense(self.num_outputs)(x)


def broadcast_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """`nn.Dense`'s contraction as a broadcast multiply and a sum.

    For matrices a few units wide, vmapped over many runs, XLA:CPU runs this as one
    fused loop instead of one small matrix product per run.
    """
    del precision, preferred_element_type
    if dimension_numbers != (((lhs.ndim - 1,), (0,)), ((), ())):
        raise ValueError(f"expected a Dense contraction, got {dimension_numbers}")
    return jnp.sum(lhs[..., :, None] * rhs, axis=-2)


def padded_layer(layer: int, depth: int, max_depth: int) -> int:
    """Index in `MaskedDepthMLP(max_depth)` of layer `Dense_{layer}` of a depth-`depth` MLP."""
    return max_depth + 1 if layer == depth + 1 else layer


def masked_depth_model(config: ml_collections.ConfigDict, group: list[Setting], depth) -> MaskedDepthMLP:
    """The `MaskedDepthMLP` that trains `group`, applied at `depth`."""
    reference = xor_model(config, group[0])
    return MaskedDepthMLP(width=max(s.width for s in group), max_depth=max(s.depth for s in group),
                          depth=depth, activation=reference.activation,
                          num_outputs=reference.num_outputs)


def initial_params(config: ml_collections.ConfigDict, group: list[Setting], init_keys: jax.Array,
                   sample: jax.Array):
    """Every setting's Flax initialisation for every key, zero-padded into the group's
    `MaskedDepthMLP` layout: leaves [S, K, ...].

    Equal to `multiseed.init_params(xor_model(config, setting), key, sample)` for each
    setting and key (tests check it), computed with one key derivation per layer name and
    one random draw for all kernels instead of one of each per layer of every setting,
    whose inlined threefry hashes took most of the study's compile time. It uses that
    Flax derives a layer's key from its name alone, and that with JAX's default
    partitionable threefry the draw for a shape is the prefix of a longer flat draw.
    """
    if not jax.config.jax_threefry_partitionable:
        raise ValueError("initial_params needs jax_threefry_partitionable=True (JAX's default)")
    max_depth = max(s.depth for s in group)
    padded_shapes = jax.eval_shape(
        lambda: multiseed.init_params(masked_depth_model(config, group, max_depth),
                                      init_keys[0], sample))
    own_shapes = {s: jax.eval_shape(lambda s=s: multiseed.init_params(xor_model(config, s),
                                                                     init_keys[0], sample))
                  for s in group}
    # nn.Dense's default kernel initialiser, lecun_normal: a standard normal truncated to
    # (-2, 2), scaled to variance 1 / fan_in (0.8796... is that truncated normal's std).
    size = max(math.prod(shapes[name]["kernel"].shape) for shapes in own_shapes.values()
               for name in shapes)
    layer_keys = jnp.stack([
        jax.vmap(lambda key, j=j: LazyRng.create(key, f"Dense_{j}", 1).as_jax_rng())(init_keys)
        for j in range(max_depth + 2)])
    draws = jax.vmap(jax.vmap(lambda key: jax.random.truncated_normal(key, -2, 2, (size,))))(layer_keys)

    def kernel(setting, layer):
        fan_in, features = own_shapes[setting][f"Dense_{layer}"]["kernel"].shape
        stddev = jnp.sqrt(jnp.array(1 / fan_in, jnp.float32)) / jnp.array(.87962566103423978, jnp.float32)
        return draws[layer, :, :fan_in * features].reshape(-1, fan_in, features) * stddev

    def padded_leaf(setting, position, name, target):
        own = {padded_layer(layer, setting.depth, max_depth): layer for layer in range(setting.depth + 2)}
        if name != "kernel" or position not in own:
            return jnp.zeros((len(init_keys), *target.shape), target.dtype)
        value = kernel(setting, own[position])
        return jnp.pad(value, [(0, 0)] + [(0, t - n) for n, t in zip(value.shape[1:], target.shape)])

    return {
        layer_name: {
            name: jnp.stack([padded_leaf(s, int(layer_name.split("_")[1]), name, target) for s in group])
            for name, target in leaves.items()
        }
        for layer_name, leaves in padded_shapes.items()
    }


def own_params(padded, setting: Setting, max_depth: int, own_shapes):
    """A setting's parameters (leaves [K, ...]) cut out of its slice of the padded layout."""
    return {
        f"Dense_{layer}": jax.tree.map(
            lambda leaf, target: leaf[(slice(None), *(slice(0, n) for n in target.shape))],
            padded[f"Dense_{padded_layer(layer, setting.depth, max_depth)}"],
            own_shapes[f"Dense_{layer}"])
        for layer in range(setting.depth + 2)
    }


def make_study_program(config: ml_collections.ConfigDict, settings: list[Setting]):
    """A pure `program(keys, train, orders, eval_x, eval_y) -> [(SeedRun, accuracy[K])]`.

    One entry per setting, in order; every setting uses the same seeds and epoch orders.
    Each group of `training_groups` trains as one `jax.vmap` over its settings x seeds.
    """
    num_epochs, batch_size = config.train.num_epochs, config.train.batch_size
    total_steps = num_epochs * multiseed.steps_per_epoch(config.data.train_size, batch_size)
    optimizer, _ = make_optimizer(config.optim, total_steps)
    loss = make_loss(config.loss)
    groups = training_groups(config, settings)

    def train_group(group, keys, train_data, orders, eval_x, eval_y):
        init_keys, dropout_keys = jax.vmap(jax.random.split, out_axes=1)(keys)
        sample = train_data["image"][:1]
        depths = jnp.array([s.depth for s in group])

        def train_run(params, dropout_key, run_orders, depth):
            trainer = multiseed.make_trainer(masked_depth_model(config, group, depth), optimizer,
                                             loss, num_epochs=num_epochs, batch_size=batch_size)
            return trainer(params, dropout_key, train_data, run_orders)

        def accuracy(params, depth):
            logits = masked_depth_model(config, group, depth).apply({"params": params}, eval_x)
            return jnp.mean((logits[:, 0] >= 0) == (eval_y == 1))

        # Outer vmap over the group's settings, inner over seeds.
        runs = jax.vmap(jax.vmap(train_run, (0, 0, 0, None)), (0, None, None, 0))(
            initial_params(config, group, init_keys, sample), dropout_keys, orders, depths)
        accuracies = jax.vmap(jax.vmap(accuracy, (0, None)))(runs.params, depths)
        max_depth = max(s.depth for s in group)
        outputs = {}
        for index, setting in enumerate(group):
            shapes = jax.eval_shape(
                lambda: multiseed.init_params(xor_model(config, setting), init_keys[0], sample))
            params = own_params(jax.tree.map(lambda leaf: leaf[index], runs.params), setting,
                                max_depth, shapes)
            outputs[setting] = (multiseed.SeedRun(params, runs.epoch_loss[index]), accuracies[index])
        return outputs

    def program(keys, train_data, orders, eval_x, eval_y):
        outputs = {}
        for group in groups:
            outputs.update(train_group(group, keys, train_data, orders, eval_x, eval_y))
        return [outputs[setting] for setting in settings]

    return program


def run_xor_study(config: ml_collections.ConfigDict) -> XorStudy:
    """Trains every setting x seed in one compiled program and evaluates each once."""
    settings = settings_grid(config.study.widths, config.study.depths)
    (train_x, train_y), (eval_x, eval_y) = load_xor_data(config)
    keys = jax.random.split(jax.random.key(config.seed), config.study.num_seeds)
    orders = multiseed.epoch_orders(keys, config.train.num_epochs, len(train_y))
    arguments = (keys, {"image": jnp.asarray(train_x), "label": jnp.asarray(train_y)},
                 orders, jnp.asarray(eval_x), jnp.asarray(eval_y))
    start = time.perf_counter()
    program = jax.jit(make_study_program(config, settings),
                      compiler_options=multiseed.small_model_compiler_options())
    compiled = program.lower(*arguments).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    outputs = jax.block_until_ready(compiled(*arguments))
    run_seconds = time.perf_counter() - start
    results = [
        SettingResult(
            setting=setting,
            num_params=sum(leaf[0].size for leaf in jax.tree.leaves(runs.params)),
            eval_accuracy=np.asarray(accuracy),
            epoch_loss=np.asarray(runs.epoch_loss),
            params=runs.params,
        )
        for setting, (runs, accuracy) in zip(settings, outputs)
    ]
    return XorStudy((train_x, train_y), (eval_x, eval_y), results, compile_seconds, run_seconds)


def results_table(results: list[SettingResult]) -> str:
    """Markdown version of the seed's Table 1 (sample standard deviation over seeds)."""
    lines = [
        "| Width | Depth | Mean accuracy | Standard deviation | Min | Max | Number of parameters |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        accuracy = result.eval_accuracy
        std = accuracy.std(ddof=1) if accuracy.size > 1 else 0.0
        lines.append(
            f"| {result.setting.width} | {result.setting.depth} | {accuracy.mean():.4f} | "
            f"{std:.4f} | {accuracy.min():.3f} | {accuracy.max():.3f} | {result.num_params} |"
        )
    return "\n".join(lines)


def plot_samples(x: np.ndarray, y: np.ndarray, path: Path, title: str) -> Path:
    """The seed's `visualize_binary_samples`: points coloured by class."""
    fig = plots.new_figure(4.5, 4.7)
    ax = fig.subplots()
    for label, color in ((0, "#1f77b4"), (1, "#ff7f0e")):
        points = x[y == label]
        ax.scatter(points[:, 0], points[:, 1], s=8, c=color, edgecolor="#333", linewidth=0.3,
                   label=f"class {label}")
    ax.set(xlabel="$x_1$", ylabel="$x_2$")
    ax.legend(loc="center")
    return plots.save_figure(fig, path, title)


def plot_decision_boundaries(
    study: XorStudy, config: ml_collections.ConfigDict, path: Path, title: str
) -> Path:
    """Predicted class-1 probability over the plane for seed 0 of each boundary setting."""
    by_setting = {r.setting: r for r in study.results}
    chosen = [by_setting[Setting(w, d)] for w, d in config.study.boundary_settings
              if Setting(w, d) in by_setting]
    axis = np.linspace(*BOUNDARY_RANGE, BOUNDARY_RESOLUTION, dtype=np.float32)
    grid_x1, grid_x2 = np.meshgrid(axis, axis)
    grid = jnp.asarray(np.stack([grid_x1.ravel(), grid_x2.ravel()], axis=1))
    eval_x, eval_y = study.eval_data
    fig = plots.new_figure(3.8 * len(chosen) + 1, 4.4)
    axes = fig.subplots(1, len(chosen), squeeze=False, sharey=True)
    for ax, result in zip(axes[0], chosen):
        params = jax.tree.map(lambda leaf: leaf[0], result.params)
        logits = xor_model(config, result.setting).apply({"params": params}, grid)
        probability = np.asarray(jax.nn.sigmoid(logits[:, 0])).reshape(grid_x1.shape)
        contour = ax.contourf(grid_x1, grid_x2, probability, levels=np.linspace(0, 1, 11),
                              cmap="RdBu_r", alpha=0.7)
        for label, color in ((0, "#1f77b4"), (1, "#ff7f0e")):
            points = eval_x[eval_y == label]
            ax.scatter(points[:, 0], points[:, 1], s=6, c=color, edgecolor="k", linewidth=0.2,
                       label=f"class {label}")
        ax.set(title=f"{result.setting.label}\nseed 0 accuracy {result.eval_accuracy[0]:.3f}",
               xlabel="$x_1$")
    axes[0, 0].set_ylabel("$x_2$")
    axes[0, 0].legend(loc="center", fontsize=8)
    fig.colorbar(contour, ax=axes[0].tolist(), label="P(class 1)")
    return plots.save_figure(fig, path, title)


def plot_accuracy_grid(results: list[SettingResult], path: Path, title: str) -> Path:
    """Mean evaluation accuracy per seed as a width x depth heat map."""
    widths = sorted({r.setting.width for r in results})
    depths = sorted({r.setting.depth for r in results})
    means = np.full((len(widths), len(depths)), np.nan)
    for r in results:
        means[widths.index(r.setting.width), depths.index(r.setting.depth)] = r.eval_accuracy.mean()
    fig = plots.new_figure(1.3 * len(depths) + 2.5, 1.1 * len(widths) + 1.8)
    ax = fig.subplots()
    image = ax.imshow(means, vmin=0.5, vmax=1.0, cmap="viridis", origin="lower")
    for (row, col), value in np.ndenumerate(means):
        ax.text(col, row, f"{value:.3f}", ha="center", va="center",
                color="white" if value < 0.8 else "black")
    ax.set(xticks=range(len(depths)), xticklabels=depths, yticks=range(len(widths)),
           yticklabels=widths, xlabel="depth (extra hidden layers)", ylabel="width")
    fig.colorbar(image, ax=ax, label="mean evaluation accuracy")
    return plots.save_figure(fig, path, title)


def plot_training_loss(results: list[SettingResult], path: Path, title: str) -> Path:
    """Mean training loss per epoch over seeds, one line per setting."""
    fig = plots.new_figure(7, 4.7)
    ax = fig.subplots()
    widths = sorted({r.setting.width for r in results})
    for r in results:
        ax.plot(np.arange(1, r.epoch_loss.shape[1] + 1), r.epoch_loss.mean(axis=0),
                color=f"C{widths.index(r.setting.width)}",
                linestyle=("-", "--", "-.", ":")[r.setting.depth % 4], label=r.setting.label)
    ax.set(xlabel="epoch", ylabel="training BCE (mean over seeds)", yscale="log")
    ax.legend(fontsize=7, ncol=2)
    return plots.save_figure(fig, path, title)


def write_report(study: XorStudy, config: ml_collections.ConfigDict, workdir: str | Path) -> Path:
    """Writes `report.md`, `results.json` and `plots/*.png` into `workdir`."""
    workdir = Path(workdir)
    plots = workdir / "plots"
    name = config.name
    train_x, train_y = study.train_data
    plot_samples(train_x, train_y, plots / "xor_data.png", f"{name}: training data")
    plot_decision_boundaries(study, config, plots / "xor_decision_boundaries.png",
                             f"{name}: decision boundaries on the evaluation set")
    plot_accuracy_grid(study.results, plots / "xor_accuracy.png", f"{name}: mean evaluation accuracy")
    plot_training_loss(study.results, plots / "xor_training_loss.png", f"{name}: training loss")
    num_seeds = config.study.num_seeds
    optim = config.optim
    report = f"""# {name}: deep versus wide MLPs on XOR

Table 1: evaluation accuracy over {num_seeds} seeds per setting (mean, sample standard
deviation, min, max) and parameter count. Depth 0 is one hidden layer of `width` units;
each extra depth adds a hidden layer of the same width.

{results_table(study.results)}

![Training data](plots/xor_data.png)

Figure 1: the {config.data.train_size} training points (corners of the unit square plus
Gaussian noise of std {config.data.noise_std}; label = XOR of the corner).

![Decision boundaries](plots/xor_decision_boundaries.png)

Figure 2: predicted probability of class 1 for seed 0 of a few settings, with the
{config.data.eval_size} evaluation points.

![Mean accuracy](plots/xor_accuracy.png)

Figure 3: mean evaluation accuracy by width and depth.

![Training loss](plots/xor_training_loss.png)

Figure 4: training loss per epoch, mean over seeds.

## Setup

- Data: {config.data.train_size} training points (data seed {config.data.data_seed}), a
  separately generated evaluation set of {config.data.eval_size} points (seed
  {config.data.eval_data_seed}), used once after training.
- Model: `{config.model.name}` with {config.model.activation} activations and one logit;
  loss `{config.loss.name}`; a point is class 1 when its logit is >= 0.
- Training: {optim.name} (learning rate {optim.learning_rate}), batch
  {config.train.batch_size}, {config.train.num_epochs} epochs, a fresh shuffle every epoch;
  seeds are `jax.random.split(key({config.seed}), {num_seeds})` and drive init and shuffling.
- All {len(study.results)} settings x {num_seeds} seeds ran in one compiled program
  (`jax.vmap` over seeds, epochs and steps in `lax.scan`): compile
  {study.compile_seconds:.1f} s, run {study.run_seconds:.2f} s on {jax.devices()[0].device_kind}.
"""
    path = workdir / "report.md"
    path.write_text(report)
    results = {
        f"{r.setting.width}x{r.setting.depth}": {
            "width": r.setting.width, "depth": r.setting.depth, "num_params": int(r.num_params),
            "eval_accuracy": r.eval_accuracy.tolist(),
            "final_train_loss": r.epoch_loss[:, -1].tolist(),
        }
        for r in study.results
    }
    timings = {"compile_seconds": study.compile_seconds, "run_seconds": study.run_seconds}
    (workdir / "results.json").write_text(json.dumps({"settings": results, **timings}, indent=2))
    return path
