"""The XOR/MNIST notebook, part 2: a feed-forward network versus a small CNN on MNIST.

Each model's config is the study's base with `study.<entry>.model` in place; it trains
with `train_and_evaluate` in its own run folder (checkpoints, metrics, resume), keeps its
best validation epoch, and is tested once on the test split. The
report gives the notebook's Table 2 (per-digit test accuracy of both models, the difference
and the increase), parameter counts and the output-shape walk-through behind the CNN's
800 features.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxcx import plots, tracking
from jaxcx.config import ConfigDict, with_overrides
from jaxcx.data.registry import DataCache
from jaxcx.models import build_model, summary
from jaxcx.run import run_config, train_and_evaluate
from jaxcx.studies.common import Log, evaluate_once

MNIST_SHAPE = (28, 28, 1)
POOL_WINDOW = 2


@dataclasses.dataclass
class ModelResult:
    """One model's test outcome."""

    run: str
    label: str
    num_params: int
    summary_table: str
    test_metrics: dict[str, float]
    per_digit: np.ndarray  # [10] test accuracy (recall) per digit
    confusion: np.ndarray
    best_step: int
    train_seconds: float
    workdir: Path


def train_and_test(base: ConfigDict, study: ConfigDict, entry: str, workdir: Path,
                   data: DataCache, log: Log = print) -> ModelResult:
    """Trains one model of the study in workdir/<run> (resuming if interrupted) and tests
    its best checkpoint once."""
    spec = study[entry]
    config = with_overrides(base, {"model": spec.model.to_dict(), "name": f"{base.name}/{spec.run}"})
    model_summary = summary(build_model(config.model), (1, *data(config).input_shape))
    log(f"{spec.label}: training")
    result = train_and_evaluate(config, workdir / spec.run, data=data)
    test = evaluate_once(result, data=data, log=log)
    per_digit = np.array([row["recall"] for row in test["per_class"].values()])
    return ModelResult(spec.run, spec.label, model_summary.total_params, model_summary.table,
                       {"test/accuracy": test["summary"]["accuracy"]}, per_digit,
                       np.asarray(test["confusion"]), result.best_step, result.train_seconds,
                       result.workdir)


def run_mnist_study(config: ConfigDict, workdir: str | Path, *,
                    log: Log = print) -> list[ModelResult]:
    """Trains and tests `study.baseline` and `study.candidate`; returns them in that order."""
    workdir = Path(workdir)
    base = run_config(config)
    cache = DataCache()
    cache(base)  # missing MNIST files fail here, before any training
    return [train_and_test(base, config.study, entry, workdir, cache, log)
            for entry in ("baseline", "candidate")]


def shape_walkthrough(cnn_config: ml_collections.ConfigDict) -> tuple[str, int]:
    """Markdown table of the CNN's output shapes layer by layer, and the flattened size.

    Shapes follow H_out = floor((H_in - kernel + 2 * padding) / stride) + 1 with the
    kernel sizes read from the model's parameters; the flattened size is checked against
    the input size of its final Dense layer.
    """
    model = build_model(cnn_config)
    params = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *MNIST_SHAPE))))["params"]
    convs = [name for name in params if params[name]["kernel"].ndim == 4]
    (dense,) = [name for name in params if params[name]["kernel"].ndim == 2]
    size, channels = MNIST_SHAPE[0], MNIST_SHAPE[2]
    rows = [("input", "", f"{size} x {size} x {channels}")]
    for name in convs:
        kernel, _, _, channels = params[name]["kernel"].shape
        new = (size - kernel) // 1 + 1
        rows.append((f"{name}: conv {kernel}x{kernel}, stride 1, no padding, ReLU",
                     f"({size} - {kernel}) / 1 + 1 = {new}", f"{new} x {new} x {channels}"))
        size = new
        new = (size - POOL_WINDOW) // POOL_WINDOW + 1
        rows.append((f"max pool {POOL_WINDOW}x{POOL_WINDOW}, stride {POOL_WINDOW}",
                     f"floor(({size} - {POOL_WINDOW}) / {POOL_WINDOW}) + 1 = {new}",
                     f"{new} x {new} x {channels}"))
        size = new
    features = size * size * channels
    dense_inputs = params[dense]["kernel"].shape[0]
    if features != dense_inputs:
        raise ValueError(f"{cnn_config.name}: walk-through gives {features} features but the "
                         f"Dense layer {dense} takes {dense_inputs}; its layers are not conv+pool pairs")
    rows.append(("flatten", f"{size} x {size} x {channels}", f"{features}"))
    rows.append((f"{dense}: linear {features} -> {params[dense]['kernel'].shape[1]}", "",
                 f"{params[dense]['kernel'].shape[1]}"))
    table = ["| Layer | Size | Output (H x W x C) |", "|---|---|---|"]
    table += [f"| {layer} | {formula} | {shape} |" for layer, formula, shape in rows]
    return "\n".join(table), features


def comparison_table(baseline: ModelResult, candidate: ModelResult) -> str:
    """The notebook's Table 2: per-digit test accuracy, difference and increase."""
    lines = [
        f"| Digit | {baseline.label} | {candidate.label} | Difference | "
        "Increase (percentage points) | Relative increase (%) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    pairs = [(str(d), baseline.per_digit[d], candidate.per_digit[d]) for d in range(10)]
    pairs.append(("all", baseline.test_metrics["test/accuracy"], candidate.test_metrics["test/accuracy"]))
    for digit, base, cand in pairs:
        lines.append(f"| {digit} | {base:.4f} | {cand:.4f} | {cand - base:+.4f} | "
                     f"{100 * (cand - base):+.2f} | {100 * (cand - base) / base:+.2f} |")
    return "\n".join(lines)


def plot_per_digit(results: list[ModelResult], path: Path, title: str) -> Path:
    """Grouped bars of per-digit test accuracy, one colour per model."""
    fig = plots.new_figure(9, 4.4)
    ax = fig.subplots()
    width = 0.8 / len(results)
    for index, result in enumerate(results):
        positions = np.arange(10) + (index - (len(results) - 1) / 2) * width
        ax.bar(positions, result.per_digit, width, label=result.label)
    low = min(r.per_digit.min() for r in results)
    ax.set(xticks=range(10), xlabel="digit", ylabel="test accuracy (recall)",
           ylim=(max(0.0, low - 0.05), 1.0))
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    return plots.save_figure(fig, path, title)


def write_report(results: list[ModelResult], config: ml_collections.ConfigDict,
                 workdir: str | Path) -> Path:
    """Writes `report.md` and `plots/*.png` into `workdir`."""
    workdir = Path(workdir)
    plot_dir = workdir / "plots"
    baseline, candidate = results
    name = config.name
    plot_per_digit(results, plot_dir / "per_digit_accuracy.png", f"{name}: per-digit test accuracy")
    figures = []
    for result in results:
        curves = plot_dir / f"{result.run}_training_curves.png"
        plots.training_curves(tracking.read_metrics(result.workdir), curves,
                              f"{name}: {result.label} training curves")
        matrix = plot_dir / f"{result.run}_confusion.png"
        plots.confusion_matrix(result.confusion, [str(d) for d in range(10)], matrix,
                               f"{name}: {result.label} test confusion matrix")
        figures += [(curves, f"{result.label}: loss and accuracy per epoch, training and validation"),
                    (matrix, f"{result.label}: test confusion matrix (rows true digit)")]
    walkthrough, features = shape_walkthrough(config.study.candidate.model)
    data_note = ("generated IDX files (smoke test, not MNIST)" if config.data.generated
                 else f"MNIST IDX files from `{config.data.root or '../shared/data/mnist'}`")
    params_rows = "\n".join(f"| {r.label} | `{config.study[e].model.name}` | {r.num_params:,} |"
                            for e, r in zip(("baseline", "candidate"), results))
    figure_lines = "\n\n".join(f"![{caption}]({path.relative_to(workdir)})\n\nFigure {i + 2}: {caption}."
                               for i, (path, caption) in enumerate(figures))
    optim = config.optim
    report = f"""# {name}: feed-forward network versus CNN on MNIST

Table 2: test accuracy per digit (recall) of the best validation epoch of each model, on
{data_note}; the increase is given in percentage points (the notebook's "classification
increase") and relative to the {baseline.label} accuracy.

{comparison_table(baseline, candidate)}

![Per-digit test accuracy](plots/per_digit_accuracy.png)

Figure 1: per-digit test accuracy of both models.

Parameters:

| Model | Registry name | Parameters |
|---|---|---:|
{params_rows}

{figure_lines}

## Why the CNN's linear layer has {features} inputs

{walkthrough}

A convolution without padding shrinks height and width by kernel - 1; each 2x2 pooling
halves them, rounding down; the linear layer sees the flattened last feature map.

## Setup

- Data: {data_note}; the last {config.data.val_size} training images are the validation
  split (best epoch by `{config.train.best_metric}`), the test split is used once at the end.
  Images scaled to [0, 1].
- Training: {optim.name} (learning rate {optim.learning_rate}), batch {config.train.batch_size},
  {config.train.num_epochs} epochs, softmax cross-entropy, seed {config.seed}.
- Wall time of training (evaluation included): """ + ", ".join(
        f"{r.label} {r.train_seconds:.0f} s (best step {r.best_step})" for r in results) + f""".

## Model summaries

```
{baseline.label}
{baseline.summary_table}

{candidate.label}
{candidate.summary_table}
```
"""
    path = workdir / "report.md"
    path.write_text(report)
    return path
