"""Optimizers and learning-rate schedules from a config."""

from __future__ import annotations

import jax
import ml_collections
import optax

from jaxcx.registry import Registry

SCHEDULES = ("constant", "cosine", "warmup_cosine", "step")


def make_schedule(optim_cfg: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
    """The learning rate as a function of the step."""
    lr = float(optim_cfg.learning_rate)
    warmup = int(optim_cfg.get("warmup_steps", 0))
    name = optim_cfg.get("schedule", "constant")
    if name == "constant":
        if warmup:
            return optax.join_schedules(
                [optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)], [warmup])
        return optax.constant_schedule(lr)
    if name in ("cosine", "warmup_cosine"):
        return optax.warmup_cosine_decay_schedule(
            0.0 if warmup else lr, lr, warmup, max(total_steps, warmup + 1))
    if name == "step":
        boundaries = {int(fraction * total_steps): float(optim_cfg.decay_factor)
                      for fraction in optim_cfg.decay_at}
        return optax.piecewise_constant_schedule(lr, boundaries)
    raise ValueError(f"unknown optim.schedule {name!r}; valid: {', '.join(SCHEDULES)}")


def decay_mask(params):
    """True for weights that get weight decay: kernels, not biases or norm scales (1-D)."""
    return jax.tree_util.tree_map(lambda p: p.ndim > 1, params)


OPTIMIZERS: Registry = Registry("optim.name")
# @register_optimizer("name") on fn(optim_config, schedule) -> optax.GradientTransformation
register_optimizer = OPTIMIZERS.register
available_optimizers = OPTIMIZERS.names


@register_optimizer("sgd")
def _sgd(optim_cfg, schedule):
    momentum = float(optim_cfg.get("momentum", 0.0)) or None
    return optax.sgd(schedule, momentum=momentum,
                     nesterov=bool(optim_cfg.get("nesterov", False)) and momentum is not None)


@register_optimizer("adam")
def _adam(optim_cfg, schedule):
    return optax.adam(schedule)


@register_optimizer("adamw")
def _adamw(optim_cfg, schedule):
    return optax.adamw(schedule, weight_decay=float(optim_cfg.get("weight_decay", 0.0)),
                       mask=_decayed(optim_cfg))


def _decayed(optim_cfg):
    """Which parameters weight decay reaches: kernels only, or every parameter with
    `optim.decay_all` (PyTorch's `weight_decay`, as the CheXpert notebook's `l2_reg`)."""
    return None if optim_cfg.get("decay_all", False) else decay_mask


@register_optimizer("rmsprop")
def _rmsprop(optim_cfg, schedule):
    return optax.rmsprop(schedule, momentum=float(optim_cfg.get("momentum", 0.0)))


def make_optimizer(optim_cfg: ml_collections.ConfigDict,
                   total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Builds the optax transformation named by `optim_cfg.name` and its schedule.

    `sgd` and `adam` treat `weight_decay` as an L2 term added to the gradient (PyTorch's
    convention); `adamw` decouples it. Either way biases and norm scales are not decayed
    unless `optim.decay_all` is set.
    """
    name = optim_cfg.name
    build = OPTIMIZERS.get(name)
    schedule = make_schedule(optim_cfg, total_steps)
    weight_decay = float(optim_cfg.get("weight_decay", 0.0))
    core = build(optim_cfg, schedule)
    parts = []
    clip = float(optim_cfg.get("grad_clip_norm", 0.0) or 0.0)
    if clip > 0:
        parts.append(optax.clip_by_global_norm(clip))
    if weight_decay and name != "adamw":
        parts.append(optax.add_decayed_weights(weight_decay, mask=_decayed(optim_cfg)))
    parts.append(core)
    return optax.chain(*parts), schedule
