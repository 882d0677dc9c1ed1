"""The training state: a pytree of everything a step reads and writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from flax import struct

PyTree = Any


@struct.dataclass
class TrainState:
    """Params, BatchNorm statistics, optimizer state, step counter and RNG key.

    `apply_fn` and `tx` are static (not saved); everything else is saved in checkpoints.
    """

    step: jax.Array
    params: PyTree
    batch_stats: PyTree
    opt_state: PyTree
    rng: jax.Array
    apply_fn: Callable = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)

    def variables(self) -> dict:
        """The model variables `apply_fn` expects."""
        if self.batch_stats:
            return {"params": self.params, "batch_stats": self.batch_stats}
        return {"params": self.params}

    def saveable(self) -> dict:
        """The part of the state that goes into a checkpoint."""
        return {
            "step": self.step,
            "params": self.params,
            "batch_stats": self.batch_stats,
            "opt_state": self.opt_state,
            "rng": self.rng,
        }

    def with_saved(self, saved: dict) -> "TrainState":
        """This state with the saved fields replaced by `saved` (a restored checkpoint)."""
        return self.replace(**saved)


def create_train_state(model: flax.linen.Module, tx: optax.GradientTransformation,
                       sample_input: jax.Array, seed: int) -> TrainState:
    """Initialises a model and its optimizer from one integer seed."""
    init_key, params_key, dropout_key = jax.random.split(jax.random.PRNGKey(seed), 3)
    variables = model.init({"params": params_key, "dropout": dropout_key},
                           jnp.asarray(sample_input), train=False)
    params = variables["params"]
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        batch_stats=variables.get("batch_stats", {}),
        opt_state=tx.init(params),
        rng=init_key,
        apply_fn=model.apply,
        tx=tx,
    )

