"""The fit loop: epochs of jitted steps, evaluation, early stopping, checkpoints, logs.

A run is a pure function of its config: restarting it with the same command after a
kill resumes from the last checkpoint (model, optimizer, step, RNG key and data-iterator
position) and ends with the same metrics as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxcx import metrics as metrics_lib
from jaxcx import tracking
from jaxcx.checkpoint import Checkpointer, load_saved_state, transfer_subtrees
from jaxcx.data import pipeline
from jaxcx.data.registry import DataBundle
from jaxcx.models import build_model
from jaxcx.train import sharding
from jaxcx.data.sampling import positive_weights
from jaxcx.train.losses import Loss, make_loss
from jaxcx.train.optim import make_optimizer
from jaxcx.train.state import TrainState, create_train_state
from jaxcx.train.steps import compile_steps, small_model_compiler_options


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss."""


@dataclasses.dataclass
class EvalResult:
    """Metrics of one pass over a split, with the per-example outputs behind them."""

    metrics: dict[str, float]
    probs: np.ndarray | None = None
    labels: np.ndarray | None = None
    confusion: np.ndarray | None = None
    ids: np.ndarray | None = None
    label_mask: np.ndarray | None = None


@dataclasses.dataclass
class FitResult:
    """What a finished run hands back."""

    state: TrainState
    best_step: int | None
    best_metrics: dict[str, float]
    last_metrics: dict[str, float]
    stopped_early: bool
    steps_per_epoch: int
    best_eval: EvalResult | None = None  # None when the best evaluation preceded a resume


def should_stop_early(val_losses: list[float], *, window: int, min_delta: float,
                      min_evals: int) -> bool:
    """The Fashion-MNIST notebook's early-stopping rule: after `min_evals` evaluations,
    stop when the mean of the last `window` validation losses exceeds the mean of the
    `window` before by > `min_delta`."""
    if len(val_losses) < max(min_evals, 2 * window):
        return False
    recent = np.mean(val_losses[-window:])
    before = np.mean(val_losses[-2 * window:-window])
    return bool(recent - before > min_delta)


class Evaluator:
    """Runs the compiled eval step over a source and turns the sums into metrics."""

    def __init__(self, eval_step, loss: Loss, mesh, batch_size: int, class_names,
                 transforms=(), worker_count: int = 0):
        self._eval_step = eval_step
        self._loss = loss
        self._mesh = mesh
        self._batch_size = batch_size
        self._class_names = list(class_names) if class_names else None
        self._transforms = transforms
        self._worker_count = worker_count

    def __call__(self, state: TrainState, source, prefix: str, keep_ids: bool = False) -> EvalResult:
        loader = pipeline.eval_loader(
            source, batch_size=sharding.local_batch_size(self._batch_size, self._mesh),
            transforms=self._transforms, worker_count=self._worker_count,
            shard_index=jax.process_index(), shard_count=jax.process_count(), keep_ids=keep_ids)
        sums: dict[str, float] = {}
        confusion, probs, labels, masks, label_masks, ids = None, [], [], [], [], []
        if keep_ids and jax.process_count() > 1:
            raise ValueError("keep_ids works in single-process evaluation only")
        for batch in loader:
            if keep_ids and "id" in batch:
                ids.append(batch.pop("id"))
            out = sharding.to_host(self._eval_step(state, sharding.shard_batch(batch, self._mesh)))
            for key in ("loss_sum", "loss_weight", "correct", "count"):
                sums[key] = sums.get(key, 0.0) + float(out[key])
            if "confusion" in out:
                confusion = out["confusion"] if confusion is None else confusion + out["confusion"]
            if "probs" in out:
                probs.append(out["probs"])
                labels.append(out["label"])
                masks.append(out["mask"])
                if "label_mask" in out:
                    label_masks.append(out["label_mask"])
        result = {"loss": sums["loss_sum"] / max(sums["loss_weight"], 1e-12)}
        if sums["count"]:
            result["accuracy"] = sums["correct"] / sums["count"]
        all_probs = all_labels = label_mask = kept_ids = None
        if probs:
            keep = np.concatenate(masks) > 0
            kept_ids = np.concatenate(ids)[keep] if ids else None
            all_probs, all_labels = np.concatenate(probs)[keep], np.concatenate(labels)[keep]
            label_mask = np.concatenate(label_masks)[keep] if label_masks else None
            result.update(metrics_lib.probability_metrics(
                all_probs, all_labels, label_mask=label_mask,
                names=self._class_names if self._loss.multilabel else None))
        if confusion is not None:
            result.update(metrics_lib.summarize_confusion(confusion, self._class_names))
        if self._loss.multilabel and probs:
            result.update(metrics_lib.multilabel_report(all_probs, all_labels, 0.5, label_mask,
                                                        names=self._class_names))
        return EvalResult({f"{prefix}/{k}": float(v) for k, v in result.items()},
                          all_probs, all_labels, confusion, kept_ids, label_mask)


def _compiler_options(config: ml_collections.ConfigDict) -> dict | None:
    # .get: configs saved by runs from before the field existed lack it.
    return small_model_compiler_options() if config.train.get("xla_small_model") else None


def _resolve_loss(config: ml_collections.ConfigDict, data: DataBundle) -> Loss:
    """The configured loss; class weights default to the training split's, as in the
    pneumonia notebook's class-weighted loss, and `loss.positive_weights` sets BCE's
    `pos_weight` to each label's negatives / positives in the training split (the CheXpert
    notebook's positivity weights; after oversampling, of the oversampled split)."""
    loss_cfg = ml_collections.ConfigDict(config.loss.to_dict())
    if loss_cfg.name == "weighted_ce" and not loss_cfg.get("class_weights"):
        loss_cfg.class_weights = tuple(data.class_weights())
    if loss_cfg.get("positive_weights") and not loss_cfg.get("pos_weight"):
        loss_cfg.pos_weight = tuple(float(w) for w in positive_weights(data.train_labels))
    if data.multilabel:
        loss_cfg.multilabel = True
    return make_loss(loss_cfg)


def initial_params(config: ml_collections.ConfigDict, fresh_params: dict) -> dict:
    """Fresh parameters, or those of `config.init_from.workdir`'s best checkpoint (all of
    them, or only the subtrees named in `config.init_from.subtrees`)."""
    source = config.init_from.workdir
    if not source:
        return fresh_params
    saved = load_saved_state(Path(source) / "checkpoints")["params"]
    names = tuple(config.init_from.subtrees) or tuple(fresh_params)
    return transfer_subtrees(fresh_params, saved, names)


def fit(config: ml_collections.ConfigDict, workdir: str | Path, data: DataBundle, *,
        mesh=None) -> FitResult:
    """Trains `config.model` on `data`, resuming from `workdir/checkpoints` when present.

    A new run starts from `config.init_from` when set (transfer learning, pretraining).
    """
    workdir = Path(workdir)
    train_cfg = config.train
    mesh = mesh or sharding.make_mesh()
    is_chief = jax.process_index() == 0
    model = build_model(config.model)
    loss = _resolve_loss(config, data)
    local_batch = sharding.local_batch_size(train_cfg.batch_size, mesh)
    steps_per_epoch = pipeline.steps_per_epoch(len(data.train), local_batch, jax.process_count())
    total_steps = steps_per_epoch * train_cfg.num_epochs
    eval_every = train_cfg.eval_every_steps or steps_per_epoch * train_cfg.eval_every_epochs
    tx, schedule = make_optimizer(config.optim, total_steps)

    sample = np.zeros((1, *data.input_shape), np.float32)
    state = create_train_state(model, tx, sample, config.seed)
    if config.init_from.workdir:
        params = initial_params(config, state.params)
        state = state.replace(params=params, opt_state=tx.init(params))
    state = sharding.replicate(state, mesh)
    train_step, eval_step = compile_steps(loss, mesh, data.num_classes, _compiler_options(config))
    evaluate = Evaluator(eval_step, loss, mesh, train_cfg.eval_batch_size, data.class_names,
                         data.eval_transforms, data.worker_count)

    train_iter = iter(pipeline.train_loader(
        data.train, batch_size=local_batch, seed=config.seed, transforms=data.train_transforms,
        worker_count=data.worker_count, shard_index=jax.process_index(),
        shard_count=jax.process_count()))
    checkpointer = Checkpointer(workdir / "checkpoints", keep_latest=train_cfg.keep_checkpoints,
                                keep_best=train_cfg.keep_best)
    loop: dict[str, Any] = {"val_losses": [], "best_value": None, "best_step": None,
                            "best_metrics": {}, "last_metrics": {}, "stopped_early": False}
    if checkpointer.latest_step() is not None:
        state, loop = checkpointer.restore(state, data_iterator=train_iter)
    start_step = int(sharding.to_host(state.step))
    writer = tracking.MetricWriter(workdir, config.name, tensorboard=config.tracking.tensorboard,
                                   wandb=config.tracking.wandb,
                                   wandb_project=config.tracking.wandb_project,
                                   config=config.to_dict()) if is_chief else None
    if writer is not None:
        writer.truncate_after(start_step)

    better = (lambda a, b: a > b) if train_cfg.best_mode == "max" else (lambda a, b: a < b)
    bar = tracking.progress_bar(total=total_steps, initial=start_step, desc=config.name,
                                hidden=not is_chief)
    keep_ids = jax.process_count() == 1
    best_eval = None
    pending: list[dict] = []   # device metrics of steps not yet read back
    window: list[dict] = []    # host metrics since the last log line
    since_eval: list[dict] = []
    step = start_step
    try:
        while step < total_steps and not loop["stopped_early"]:
            batch = sharding.shard_batch(next(train_iter), mesh)
            state, step_metrics = train_step(state, batch)
            step += 1
            pending.append(step_metrics)
            bar.update(1)
            at_eval = step % eval_every == 0 or step == total_steps
            if step % train_cfg.log_every_steps == 0 or at_eval:
                fetched = _check_finite(sharding.to_host(pending), step - len(pending) + 1)
                pending = []
                window += fetched
                since_eval += fetched
                summary = _summarize_train(window)
                bar.set_postfix(loss=f"{summary['loss']:.4f}", refresh=False)
                if writer is not None and step % train_cfg.log_every_steps == 0:
                    writer.write(step, {"train/running_loss": summary["loss"],
                                        "train/running_accuracy": summary["accuracy"],
                                        "train/lr": float(schedule(step - 1)),
                                        "train/grad_norm": summary["grad_norm"]})
                window = []
            if not at_eval:
                continue
            train_summary = _summarize_train(since_eval)
            since_eval = []
            result = evaluate(state, data.val, "val", keep_ids=keep_ids)
            epoch = step / steps_per_epoch
            record = {"epoch": epoch, "train/loss": train_summary["loss"],
                      "train/accuracy": train_summary["accuracy"], **result.metrics}
            if writer is not None:
                writer.write(step, record)
            loop["val_losses"].append(result.metrics["val/loss"])
            loop["last_metrics"] = record
            value = record.get(train_cfg.best_metric)
            if value is None:
                raise KeyError(f"train.best_metric {train_cfg.best_metric!r} is not among the "
                               f"evaluation metrics: {', '.join(sorted(record))}")
            is_best = loop["best_value"] is None or better(value, loop["best_value"])
            if is_best:
                loop.update(best_value=value, best_step=step, best_metrics=record)
                best_eval = result
            es = train_cfg.early_stopping
            if es.enabled and should_stop_early(
                    loop["val_losses"], window=es.window, min_delta=es.min_delta,
                    min_evals=es.min_epochs * steps_per_epoch // eval_every):
                loop["stopped_early"] = True
            if is_chief:
                bar.write(f"step {step} epoch {epoch:.2f}: " + ", ".join(
                    f"{k}={record[k]:.4f}"
                    for k in dict.fromkeys(("train/loss", "val/loss", train_cfg.best_metric))
                    if k in record))
            checkpointer.save(step, state, loop_state=loop, is_best=is_best,
                              data_iterator=train_iter)
    finally:
        bar.close()
        try:
            checkpointer.wait()
        finally:
            checkpointer.close()
            if writer is not None:
                writer.close()
    return FitResult(state, loop["best_step"], loop["best_metrics"], loop["last_metrics"],
                     loop["stopped_early"], steps_per_epoch, best_eval)


def _check_finite(step_metrics: list[dict], first_step: int) -> list[dict]:
    """Stops the run at the first step whose loss is NaN or infinite."""
    for offset, m in enumerate(step_metrics):
        loss = float(m["loss_sum"]) / max(float(m["loss_weight"]), 1e-12)
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"loss became {loss} at step {first_step + offset}; the last checkpoint before "
                "it is kept. Lower the learning rate, clip gradients (optim.grad_clip_norm) "
                "or check the inputs for NaN.")
    return step_metrics


def _summarize_train(step_metrics: list[dict]) -> dict[str, float]:
    loss_sum = sum(float(m["loss_sum"]) for m in step_metrics)
    weight = sum(float(m["loss_weight"]) for m in step_metrics)
    correct = sum(float(m["correct"]) for m in step_metrics)
    count = sum(float(m["count"]) for m in step_metrics)
    return {"loss": loss_sum / max(weight, 1e-12),
            "accuracy": correct / count if count else float("nan"),
            "grad_norm": float(np.mean([float(m["grad_norm"]) for m in step_metrics]))}


def restore_best(config: ml_collections.ConfigDict, workdir: str | Path,
                 data: DataBundle, mesh=None) -> tuple[TrainState, int]:
    """The state at the best validation step of a run in `workdir`, and that step."""
    mesh = mesh or sharding.make_mesh()
    tx, _ = make_optimizer(config.optim, 1)
    state = sharding.replicate(create_train_state(
        build_model(config.model), tx, np.zeros((1, *data.input_shape), np.float32), config.seed),
        mesh)  # restored arrays take the template's sharding
    checkpointer = Checkpointer(Path(workdir) / "checkpoints")
    try:
        best_step = checkpointer.best_step()
        if best_step is None:
            raise FileNotFoundError(f"no checkpoints in {workdir}/checkpoints: train first")
        state, _ = checkpointer.restore(state, best=True)
    finally:
        checkpointer.close()
    return state, best_step


def evaluate_best(config: ml_collections.ConfigDict, workdir: str | Path, data: DataBundle,
                  source, prefix: str, *, keep_ids: bool = False,
                  mesh=None) -> tuple[EvalResult, int]:
    """Evaluates the best checkpoint of a run on one split; returns the result and step."""
    mesh = mesh or sharding.make_mesh()
    state, best_step = restore_best(config, workdir, data, mesh)
    loss = _resolve_loss(config, data)
    _, eval_step = compile_steps(loss, mesh, data.num_classes, _compiler_options(config))
    evaluator = Evaluator(eval_step, loss, mesh, config.train.eval_batch_size, data.class_names,
                          data.eval_transforms, data.worker_count)
    return evaluator(state, source, prefix, keep_ids=keep_ids), best_step
