"""Seed 001, part 1: deep versus wide MLPs on continuous XOR.

Every (width, depth) setting trains `num_seeds` seeds from `jaxcx.train.multiseed`'s
scanned training run, and all settings train and evaluate in one compiled program:
settings of one depth share a `jax.vmap` (narrower MLPs zero-padded to the widest, see
`training_groups`), and the depths, whose layer counts differ, are unrolled. Accuracy is
measured once, at the end, on a separately generated evaluation set, as in the seed.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxcx import plots
from jaxcx.data.xor import make_xor
from jaxcx.models import build_model
from jaxcx.models.layers import activation_fn
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
    """Settings that train as one vmapped batch: same depth, any width.

    A narrower MLP zero-padded to the widest width computes the same function, and its
    padded weights get zero gradients and stay zero, when the activation maps 0 to 0
    (tanh, ReLU). Otherwise every setting is its own group.
    """
    if float(activation_fn(config.model.activation)(0.0)) != 0.0:
        return [[setting] for setting in settings]
    depths = sorted({setting.depth for setting in settings})
    return [[s for s in settings if s.depth == depth] for depth in depths]


def _pad_to(tree, target_shapes):
    """Zero-pads every leaf, after its leading seed axis, to the shape in `target_shapes`."""
    return jax.tree.map(
        lambda leaf, target: jnp.pad(
            leaf, [(0, 0)] + [(0, t - n) for n, t in zip(leaf.shape[1:], target.shape)]),
        tree, target_shapes)


def _crop_to(tree, target_shapes):
    """Inverse of `_pad_to`."""
    return jax.tree.map(
        lambda leaf, target: leaf[(slice(None), *(slice(0, n) for n in target.shape))],
        tree, target_shapes)


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
        widest = xor_model(config, Setting(max(s.width for s in group), group[0].depth))
        trainer = multiseed.make_trainer(
            widest, optimizer, loss, num_epochs=num_epochs, batch_size=batch_size)
        init_keys, dropout_keys = jax.vmap(jax.random.split, out_axes=1)(keys)
        sample = train_data["image"][:1]
        wide_shapes = jax.eval_shape(lambda: multiseed.init_params(widest, init_keys[0], sample))
        shapes, initial = [], []
        for setting in group:
            model = xor_model(config, setting)
            shapes.append(jax.eval_shape(lambda: multiseed.init_params(model, init_keys[0], sample)))
            params = jax.vmap(lambda key: multiseed.init_params(model, key, sample))(init_keys)
            initial.append(_pad_to(params, wide_shapes))
        copies = len(group)
        runs = jax.vmap(trainer, in_axes=(0, 0, None, 0))(
            jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *initial),
            jnp.concatenate([dropout_keys] * copies), train_data,
            jnp.concatenate([orders] * copies))
        logits = jax.vmap(lambda params: widest.apply({"params": params}, eval_x))(runs.params)
        accuracy = jnp.mean((logits[..., 0] >= 0) == (eval_y == 1), axis=-1)
        num_seeds = keys.shape[0]
        outputs = {}
        for index, (setting, setting_shapes) in enumerate(zip(group, shapes)):
            own = slice(index * num_seeds, (index + 1) * num_seeds)
            params = _crop_to(jax.tree.map(lambda leaf: leaf[own], runs.params), setting_shapes)
            outputs[setting] = (multiseed.SeedRun(params, runs.epoch_loss[own]), accuracy[own])
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
