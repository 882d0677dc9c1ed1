"""Seed 001, part 2: a feed-forward network versus a small CNN on MNIST.

Each model trains with `jaxcx.train.loop.fit` in its own run folder (checkpoints, metrics,
resume), keeps its best validation epoch, and is tested once on the test split. The
report gives the seed's Table 2 (per-digit test accuracy of both models, the difference
and the increase), parameter counts and the output-shape walk-through behind the CNN's
800 features.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxcx import plots, tracking
from jaxcx.data.errors import DataError
from jaxcx.data.idx import MNIST_FILES, write_idx
from jaxcx.data.registry import DataBundle, build_data
from jaxcx.metrics import summarize_confusion
from jaxcx.models import build_model, summary
from jaxcx.train.loop import evaluate_best, fit
from jaxcx.workdir import prepare_workdir

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


def require_mnist(root: str | Path) -> Path:
    """`root` if it holds the four MNIST IDX files, else a DataError saying where to put them."""
    root = Path(root).expanduser()
    stems = [stem for pair in MNIST_FILES.values() for stem in pair]
    missing = [s for s in stems if not (root / f"{s}.gz").is_file() and not (root / s).is_file()]
    if missing:
        raise DataError(
            f"MNIST not found in {root} (missing {', '.join(missing)}). Put the four IDX files "
            f"({', '.join(s + '.gz' for s in stems)}; raw or gzip) in that folder, i.e. "
            "../shared/data/mnist beside the repository or $JAXCX_SHARED_DATA/mnist, or pass "
            "--config.data.root=FOLDER. configs/mnist.py:smoke runs on generated IDX files instead.")
    return root


def write_generated_mnist(root: str | Path, *, num_train: int = 1200, num_test: int = 400,
                          seed: int = 0) -> Path:
    """Small MNIST-format IDX files for smoke tests: each digit is a fixed random stroke
    pattern plus noise, so a model can learn it. Never a substitute for real MNIST."""
    rng = np.random.default_rng(seed)
    templates = rng.random((10, 28, 28)) < 0.15
    root = Path(root)
    for split, count in (("train", num_train), ("test", num_test)):
        labels = np.arange(count, dtype=np.uint8) % 10
        rng.shuffle(labels)
        noise = rng.integers(0, 90, size=(count, 28, 28))
        images = np.clip(templates[labels] * 200 + noise, 0, 255).astype(np.uint8)
        image_stem, label_stem = MNIST_FILES[split]
        write_idx(root / f"{image_stem}.gz", images)
        write_idx(root / f"{label_stem}.gz", labels)
    return root


def model_config(config: ml_collections.ConfigDict, entry: str) -> ml_collections.ConfigDict:
    """The study config with `study.<entry>`'s model and run name in place."""
    run_config = copy.deepcopy(config)
    run_config.unlock()
    run_config.model = ml_collections.ConfigDict(config.study[entry].model.to_dict())
    run_config.name = f"{config.name}/{config.study[entry].run}"
    run_config.lock()
    return run_config


def train_and_test(config: ml_collections.ConfigDict, entry: str, workdir: Path,
                   data: DataBundle) -> ModelResult:
    """Fits one model in workdir/<run> (resuming if interrupted) and tests its best state once."""
    spec = config.study[entry]
    run_config = model_config(config, entry)
    run_dir = prepare_workdir(workdir / spec.run, run_config)
    model_summary = summary(build_model(run_config.model), (1, *data.input_shape))
    start = time.perf_counter()
    fit(run_config, run_dir, data)
    train_seconds = time.perf_counter() - start
    result, best_step = evaluate_best(run_config, run_dir, data, data.test, "test")
    confusion = np.asarray(result.confusion)
    per_class = summarize_confusion(confusion, data.class_names)
    per_digit = np.array([per_class[f"class_accuracy/{name}"] for name in data.class_names])
    return ModelResult(spec.run, spec.label, model_summary.total_params, model_summary.table,
                       result.metrics, per_digit, confusion, best_step, train_seconds, run_dir)


def run_mnist_study(config: ml_collections.ConfigDict, workdir: str | Path) -> list[ModelResult]:
    """Trains and tests `study.baseline` and `study.candidate`; returns them in that order."""
    workdir = Path(workdir)
    if config.data.generated:
        config = copy.deepcopy(config)
        config.data.root = str(write_generated_mnist(workdir / "generated_mnist", seed=config.seed))
    require_mnist(config.data.root)
    data = build_data(config.data, config.seed)
    return [train_and_test(config, entry, workdir, data) for entry in ("baseline", "candidate")]


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
    """The seed's Table 2: per-digit test accuracy, difference and increase."""
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
                 else f"MNIST IDX files from `{config.data.root}`")
    params_rows = "\n".join(f"| {r.label} | `{config.study[e].model.name}` | {r.num_params:,} |"
                            for e, r in zip(("baseline", "candidate"), results))
    figure_lines = "\n\n".join(f"![{caption}]({path.relative_to(workdir)})\n\nFigure {i + 2}: {caption}."
                               for i, (path, caption) in enumerate(figures))
    optim = config.optim
    report = f"""# {name}: feed-forward network versus CNN on MNIST

Table 2: test accuracy per digit (recall) of the best validation epoch of each model, on
{data_note}; the increase is given in percentage points (the seed's "classification
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
