"""Pure train and eval steps, compiled once with explicit shardings."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from jaxcx import metrics as metrics_lib
from jaxcx.train.losses import Loss
from jaxcx.train.sharding import batch_sharded, replicated
from jaxcx.train.state import TrainState

StepFn = Callable[[TrainState, dict], tuple[TrainState, dict]]


def _apply(state: TrainState, params, batch: dict, *, train: bool, rng=None):
    """Runs the model; returns logits and updated BatchNorm statistics (train mode)."""
    variables = {"params": params}
    if state.batch_stats:
        variables["batch_stats"] = state.batch_stats
    rngs = {"dropout": rng} if rng is not None else None
    if train and state.batch_stats:
        logits, updates = state.apply_fn(variables, batch["image"], train=True, rngs=rngs,
                                         mutable=["batch_stats"])
        return logits, updates["batch_stats"]
    return state.apply_fn(variables, batch["image"], train=train, rngs=rngs), state.batch_stats


def count_correct(loss: Loss, logits: jax.Array, batch: dict) -> tuple[jax.Array, jax.Array]:
    """Correct predictions and their count over real examples (labels for multi-label)."""
    mask = batch["mask"]
    if not loss.classifies:
        return jnp.zeros(()), jnp.zeros(())
    probs = loss.probabilities(logits)
    if loss.multilabel:
        label_mask = mask[:, None] * batch.get("label_mask", jnp.ones_like(probs))
        hits = ((probs >= 0.5) == (batch["label"] > 0.5)) * label_mask
        return jnp.sum(hits), jnp.sum(label_mask)
    predictions = (probs >= 0.5).astype(jnp.int32) if probs.ndim == 1 else jnp.argmax(probs, -1)
    return jnp.sum((predictions == batch["label"]) * mask), jnp.sum(mask)


def train_step(state: TrainState, batch: dict, loss: Loss) -> tuple[TrainState, dict]:
    """One optimizer update; dropout keys derive from the state's key and step."""
    dropout_rng = jax.random.fold_in(state.rng, state.step)

    def objective(params):
        logits, batch_stats = _apply(state, params, batch, train=True, rng=dropout_rng)
        total, weight = loss(logits, batch)
        return loss.objective(total, weight), (logits, batch_stats, total, weight)

    grads, (logits, batch_stats, total, weight) = jax.grad(objective, has_aux=True)(state.params)
    updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
    correct, count = count_correct(loss, logits, batch)
    new_state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                              batch_stats=batch_stats, opt_state=opt_state)
    return new_state, {"loss_sum": total, "loss_weight": weight, "correct": correct,
                       "count": count, "grad_norm": optax.tree.norm(grads)}


def eval_step(state: TrainState, batch: dict, loss: Loss, num_classes: int) -> dict:
    """Loss sums, probabilities and confusion counts of one (padded) batch."""
    logits, _ = _apply(state, state.params, batch, train=False)
    total, weight = loss(logits, batch)
    correct, count = count_correct(loss, logits, batch)
    out = {"loss_sum": total, "loss_weight": weight, "correct": correct, "count": count}
    if not loss.classifies:
        return out
    probs = loss.probabilities(logits)
    # Probabilities with their labels and masks, gathered from every host, for curve metrics.
    out.update(probs=probs, label=batch["label"], mask=batch["mask"])
    if "label_mask" in batch:
        out["label_mask"] = batch["label_mask"]
    if not loss.multilabel:
        predictions = (probs >= 0.5).astype(jnp.int32) if probs.ndim == 1 else jnp.argmax(probs, -1)
        out["confusion"] = metrics_lib.confusion_matrix(predictions, batch["label"], batch["mask"],
                                                        num_classes)
    return out


def small_model_compiler_options(fast_compile: bool = False) -> dict[str, str | int | bool]:
    """XLA options for tiny models on CPU (none elsewhere).

    Plain XLA dots instead of XNNPACK (YNN) fusions: an XOR MLP step (width 3, depth 3,
    batch 128) takes 8 us with plain dots and 22 us with YNN fusions, whose per-call cost
    dwarfs matrices this small. With `fast_compile`, also the classic loop emitters and
    LLVM at optimisation level 1, for programs that run about as long as they compile:
    XLA:CPU compiles every fusion as its own LLVM kernel (about 13 ms each with the
    default emitters at level 2). That compiles the XOR deep-versus-wide study 2.5x faster (its
    wall time 4.3 -> 2.6 s), but makes a single scanned XOR MLP step 1.4x slower.
    """
    if jax.default_backend() != "cpu":
        return {}
    options: dict[str, str | int | bool] = {"xla_cpu_experimental_ynn_fusion_type": ""}
    if fast_compile:
        options.update(xla_cpu_use_fusion_emitters=False, xla_backend_optimization_level=1)
    return options


def compile_steps(loss: Loss, mesh: Mesh, num_classes: int,
                  compiler_options: dict | None = None) -> tuple[StepFn, Callable]:
    """`train_step` and `eval_step` jitted over the mesh; the train state is donated.

    `compiler_options` go to XLA (e.g. `small_model_compiler_options()`, which makes the
    MNIST CNN's step 1.2x faster on CPU but FlexCNN's 1.6x slower).
    """
    state_sharding, data_sharding = replicated(mesh), batch_sharded(mesh)
    train = jax.jit(lambda s, b: train_step(s, b, loss),
                    in_shardings=(state_sharding, data_sharding),
                    out_shardings=(state_sharding, state_sharding), donate_argnums=0,
                    compiler_options=compiler_options)
    evaluate = jax.jit(lambda s, b: eval_step(s, b, loss, num_classes),
                       in_shardings=(state_sharding, data_sharding), out_shardings=state_sharding,
                       compiler_options=compiler_options)
    return train, evaluate
