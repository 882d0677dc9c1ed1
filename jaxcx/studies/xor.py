"""The XOR/MNIST notebook, part 1: deep versus wide MLPs on continuous XOR.

Every (width, depth) setting trains `num_seeds` seeds with `jaxcx.train.multiseed`'s
scanned training run, and all settings train and evaluate in one compiled program: the
settings are stacked into one `StackedMLP` (narrower MLPs zero-padded to the widest,
shallower ones skipping the deeper hidden layers, see `training_groups`), vmapped over
seeds, and initialised exactly as Flax initialises each setting alone, with one random
draw (`initial_params`). Accuracy is measured once, at the end, on a separately
generated evaluation set, as in the notebook.
"""

from __future__ import annotations

import dataclasses
import json
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
from jaxcx.train.steps import small_model_compiler_options

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
    """Settings ordered as the notebook's Table 1: by width, then depth."""
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
    """Settings that train together as one `StackedMLP`, deepest first.

    Stacking settings of different depths is exact for any activation (a shallower MLP
    skips the deeper hidden layers). Stacking different widths zero-pads the narrower
    MLPs to the widest, which is exact when the activation maps 0 to 0 (tanh, ReLU): the
    padded MLP computes the same function, and its padded weights get zero gradients and
    stay zero. So with such an activation all settings form one group; otherwise the
    settings of each width do.
    """
    deepest_first = sorted(settings, key=lambda s: -s.depth)
    if float(activation_fn(config.model.activation)(0.0)) == 0.0:
        return [deepest_first]
    widths = sorted({setting.width for setting in settings})
    return [[s for s in deepest_first if s.width == width] for width in widths]


class StackedMLP(nn.Module):
    """The `xor_mlp`s of one training group, stacked on a leading settings axis S.

    Maps inputs [B, ...] to logits [S, B, num_outputs]. Setting s has `depths[s] + 1`
    hidden layers of `width` units (`depths` in decreasing order). Hidden layer
    `Dense_i` (1 <= i <= max depth) exists for the settings deep enough to have it, a
    prefix of the stack (its parameters have that many rows), and the others pass their
    activations through untouched; `Dense_0` and the output layer `Dense_{max depth + 1}`
    have a row per setting. `stacked_layer` maps a setting's own layers to these.
    Activations are kept features-first ([S, features, B]): for layers a few units wide,
    XLA:CPU then runs each contraction as a broadcast multiply and a sum over
    batch-contiguous rows, about 2x faster than small batched matrix products.
    """

    width: int
    depths: tuple[int, ...]
    activation: str
    num_outputs: int

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        act = activation_fn(self.activation)
        max_depth = self.depths[0]
        x = act(self._dense(0, len(self.depths), self.width, flatten(x).T[None]))
        for index in range(1, max_depth + 1):
            rows = sum(depth >= index for depth in self.depths)
            deeper = act(self._dense(index, rows, self.width, x[:rows]))
            x = jnp.concatenate([deeper, x[rows:]]) if rows < len(self.depths) else deeper
        logits = self._dense(max_depth + 1, len(self.depths), self.num_outputs, x)
        return jnp.swapaxes(logits, 1, 2)

    def _dense(self, index: int, rows: int, features: int, x: jax.Array) -> jax.Array:
        """`rows` Dense layers `Dense_{index}` on features-first inputs [rows or 1, in, B]."""
        kernel = self.param(f"Dense_{index}_kernel", nn.linear.default_kernel_init,
                            (rows, x.shape[1], features), jnp.float32)
        bias = self.param(f"Dense_{index}_bias", nn.initializers.zeros_init(), (rows, features),
                          jnp.float32)
        return jnp.sum(kernel[..., None] * x[:, :, None, :], axis=1) + bias[..., None]


def stacked_model(config: ml_collections.ConfigDict, group: list[Setting]) -> StackedMLP:
    """The `StackedMLP` that trains `group` (ordered deepest first, as `training_groups`)."""
    reference = xor_model(config, group[0])
    return StackedMLP(width=max(s.width for s in group), depths=tuple(s.depth for s in group),
                      activation=reference.activation, num_outputs=reference.num_outputs)


def stacked_layer(layer: int, depth: int, max_depth: int) -> int:
    """Index in a `StackedMLP` of maximal depth `max_depth` of layer `Dense_{layer}` of a
    depth-`depth` MLP (its output layer moves to `Dense_{max_depth + 1}`)."""
    return max_depth + 1 if layer == depth + 1 else layer


def layer_shapes(config: ml_collections.ConfigDict, setting: Setting,
                 in_features: int) -> list[tuple[int, int]]:
    """(inputs, features) of the Dense layers `Dense_0`, `Dense_1`, ... of the setting's
    `xor_model` (an `MLP`) on `in_features` inputs; each has a kernel of that shape and a
    bias of `features`."""
    model = xor_model(config, setting)
    sizes = (in_features, *model.hidden, model.num_outputs)
    return list(zip(sizes[:-1], sizes[1:]))


def initial_params(config: ml_collections.ConfigDict, group: list[Setting], init_keys: jax.Array,
                   in_features: int) -> dict[str, jax.Array]:
    """Every setting's Flax initialisation for every key, in the group's `StackedMLP`
    layout with a leading seed axis: leaves [K, rows, ...].

    Equal to `multiseed.init_params(xor_model(config, setting), key, sample)` for each
    setting and key (see `own_params`; tests check it), computed with one key derivation
    per layer name and one random draw for all kernels instead of one of each per layer of
    every setting, whose inlined threefry hashes took most of the study's compile time.
    It uses that Flax derives a layer's key from its name alone, and that with JAX's
    default partitionable threefry the draw for a shape is the prefix of a longer draw.
    """
    if not jax.config.jax_threefry_partitionable:
        raise ValueError("initial_params needs jax_threefry_partitionable=True (JAX's default)")
    max_depth = group[0].depth
    own_shapes = [layer_shapes(config, setting, in_features) for setting in group]
    stacked_shapes = layer_shapes(config, Setting(max(s.width for s in group), max_depth),
                                  in_features)
    # nn.Dense's default kernel initialiser, lecun_normal: a standard normal truncated to
    # (-2, 2), scaled to variance 1 / fan_in (0.8796... is that truncated normal's std).
    size = max(fan_in * features for shapes in own_shapes for fan_in, features in shapes)
    layer_keys = jnp.stack([
        jax.vmap(lambda key, j=j: LazyRng.create(key, f"Dense_{j}", 1).as_jax_rng())(init_keys)
        for j in range(max_depth + 2)])
    draws = jax.vmap(jax.vmap(lambda key: jax.random.truncated_normal(key, -2, 2, (size,))))(layer_keys)
    draws = jnp.moveaxis(draws, 1, 0).reshape(len(init_keys), -1)  # [K, layer * size + index]
    params = {}
    for position, (fan_in, features) in enumerate(stacked_shapes):
        rows = [row for row, setting in enumerate(group)
                if position in (0, max_depth + 1) or setting.depth >= position]
        index = np.zeros((len(rows), fan_in, features), np.int32)
        scale = np.zeros((len(rows), fan_in, features), np.float32)
        for slot, row in enumerate(rows):
            depth = group[row].depth
            layer = next(j for j in range(depth + 2) if stacked_layer(j, depth, max_depth) == position)
            own_in, own_features = own_shapes[row][layer]
            index[slot, :own_in, :own_features] = (
                layer * size + np.arange(own_in * own_features).reshape(own_in, own_features))
            scale[slot, :own_in, :own_features] = (np.sqrt(np.float32(1 / own_in))
                                                   / np.float32(.87962566103423978))
        params[f"Dense_{position}_kernel"] = draws[:, index] * scale
        params[f"Dense_{position}_bias"] = jnp.zeros((len(init_keys), len(rows), features), jnp.float32)
    return params


def own_params(stacked, group: list[Setting], row: int, shapes: list[tuple[int, int]]):
    """The parameters (leaves [K, ...], as `xor_model`'s) of setting `group[row]`, cut out
    of `StackedMLP` parameters with a leading seed axis; `shapes` are its `layer_shapes`."""
    params, depth = {}, group[row].depth
    for layer, (fan_in, features) in enumerate(shapes):
        position = stacked_layer(layer, depth, group[0].depth)
        params[f"Dense_{layer}"] = {
            "kernel": stacked[f"Dense_{position}_kernel"][:, row, :fan_in, :features],
            "bias": stacked[f"Dense_{position}_bias"][:, row, :features],
        }
    return params


def make_study_program(config: ml_collections.ConfigDict, groups: list[list[Setting]]):
    """A pure `program(keys, train, orders, eval_x, eval_y) -> [(SeedRun, accuracy)]`.

    One entry per group of `training_groups`, trained as one `StackedMLP` per seed,
    vmapped over seeds: parameters [K, rows, ...] (see `own_params`), epoch losses
    [K, E, S], evaluation accuracy [K, S]. Every setting uses the same seeds and epoch
    orders. Each setting's objective is its own mean loss; the stack minimises their sum,
    whose gradient for each setting's parameters is that setting's own gradient.
    """
    num_epochs, batch_size = config.train.num_epochs, config.train.batch_size
    total_steps = num_epochs * multiseed.steps_per_epoch(config.data.train_size, batch_size)
    optimizer, _ = make_optimizer(config.optim, total_steps)
    loss = make_loss(config.loss)
    per_setting_loss = jax.vmap(loss, in_axes=(0, None))

    def train_group(group, keys, train_data, orders, eval_x, eval_y):
        model = stacked_model(config, group)
        trainer = multiseed.make_trainer(model, optimizer, per_setting_loss,
                                         num_epochs=num_epochs, batch_size=batch_size)

        init_keys, dropout_keys = jax.vmap(jax.random.split, out_axes=1)(keys)
        initial = initial_params(config, group, init_keys, train_data["image"].shape[1])
        runs = jax.vmap(trainer, in_axes=(0, 0, None, 0))(initial, dropout_keys, train_data, orders)
        logits = jax.vmap(lambda params: model.apply({"params": params}, eval_x))(runs.params)
        return runs, jnp.mean((logits[..., 0] >= 0) == (eval_y == 1), axis=-1)

    def program(keys, train_data, orders, eval_x, eval_y):
        return [train_group(group, keys, train_data, orders, eval_x, eval_y) for group in groups]

    return program


def run_xor_study(config: ml_collections.ConfigDict) -> XorStudy:
    """Trains every setting x seed in one compiled program and evaluates each once."""
    settings = settings_grid(config.study.widths, config.study.depths)
    groups = training_groups(config, settings)
    (train_x, train_y), (eval_x, eval_y) = load_xor_data(config)
    keys = jax.random.split(jax.random.key(config.seed), config.study.num_seeds)
    orders = multiseed.epoch_orders(keys, config.train.num_epochs, len(train_y))
    arguments = (keys, {"image": train_x, "label": train_y}, orders, eval_x, eval_y)
    start = time.perf_counter()
    program = jax.jit(make_study_program(config, groups),
                      compiler_options=small_model_compiler_options(fast_compile=True))
    compiled = program.lower(*arguments).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    outputs = jax.device_get(compiled(*arguments))
    run_seconds = time.perf_counter() - start
    results = {}
    for group, (runs, accuracy) in zip(groups, outputs):
        for row, setting in enumerate(group):
            params = own_params(runs.params, group, row,
                                layer_shapes(config, setting, train_x.shape[1]))
            results[setting] = SettingResult(
                setting=setting,
                num_params=sum(leaf[0].size for leaf in jax.tree.leaves(params)),
                eval_accuracy=accuracy[:, row],
                epoch_loss=runs.epoch_loss[:, :, row],
                params=params,
            )
    return XorStudy((train_x, train_y), (eval_x, eval_y), [results[s] for s in settings],
                    compile_seconds, run_seconds)


def results_table(results: list[SettingResult]) -> str:
    """Markdown version of the notebook's Table 1 (sample standard deviation over seeds)."""
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
    """The notebook's `visualize_binary_samples`: points coloured by class."""
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
