"""Orbax checkpoints: latest-N and best-N kept together, exact resume, partial transfer.

A checkpoint step holds three items: `state` (params, BatchNorm statistics, optimizer
state, step, RNG key), `data` (the grain iterator position, so a resumed run sees the
same batches) and `loop` (JSON: epoch, best metric so far, early-stopping history).
Orbax writes each step to a temporary folder and renames it when complete, so a run
killed mid-save leaves the previous checkpoints intact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from jaxcx.train.state import TrainState


_BEST_RANK = "best_rank"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used for the requested restore."""


class Checkpointer:
    """Saves and restores training checkpoints under one folder."""

    def __init__(self, directory: str | Path, *, keep_latest: int = 2, keep_best: int = 1):
        self.directory = Path(directory).absolute()
        # The caller decides what "best" means (metric, mode, ties); Orbax only ranks steps
        # by `_BEST_RANK`, which is the step for a new best and -1 otherwise.
        policy = checkpoint_managers.AnyPreservationPolicy([
            checkpoint_managers.LatestN(keep_latest),
            checkpoint_managers.BestN(get_metric_fn=lambda m: m[_BEST_RANK], n=keep_best,
                                      keep_checkpoints_without_metrics=False),
        ])
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(preservation_policy=policy,
                                                 cleanup_tmp_directories=True))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def save(self, step: int, state: TrainState, *, loop_state: Mapping[str, Any],
             is_best: bool, data_iterator: grain.DatasetIterator | None = None):
        """Saves one step (asynchronously; `wait` or `close` to block until written).

        Steps saved with `is_best` are kept (the newest `keep_best` of them) even when
        they are no longer among the latest.
        """
        items = {"state": ocp.args.StandardSave(state.saveable()),
                 "loop": ocp.args.JsonSave(dict(loop_state))}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
        self._manager.save(step, args=ocp.args.Composite(**items),
                           metrics={_BEST_RANK: float(step if is_best else -1)})

    def restore(self, state: TrainState, *, step: int | None = None,
                data_iterator: grain.DatasetIterator | None = None) -> tuple[TrainState, dict]:
        """Restores `state` (used as the shape/sharding template) and the iterator in place."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {self.directory}")
        items = {"state": ocp.args.StandardRestore(state.saveable()),
                 "loop": ocp.args.JsonRestore()}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(**items))
        except (ValueError, KeyError, TypeError) as error:
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} does not match this model/config "
                f"({error}). Start a new --workdir, or pass --overwrite to replace it.") from error
        return state.with_saved(restored["state"]), dict(restored["loop"])

    def loop_state(self, step: int) -> dict:
        """The JSON loop record of a saved step."""
        restored = self._manager.restore(step, args=ocp.args.Composite(loop=ocp.args.JsonRestore()))
        return dict(restored["loop"])

    def wait(self):
        self._manager.wait_until_finished()

    def close(self):
        self._manager.close()


def load_saved_state(directory: str | Path, step: int | None = None) -> dict:
    """The raw saved `state` item (numpy pytree) of a checkpoint folder, no template needed."""
    manager = ocp.CheckpointManager(Path(directory).absolute(),
                                    options=ocp.CheckpointManagerOptions(read_only=True))
    step = manager.latest_step() if step is None else step
    if step is None:
        raise CheckpointError(f"no checkpoint in {directory}")
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    manager.close()
    return jax.tree_util.tree_map(np.asarray, restored["state"])


def transfer_subtrees(target: Mapping, source: Mapping, names: Sequence[str]) -> dict:
    """Copies the named top-level subtrees (an encoder, a trunk) from `source` into `target`.

    Used to start a model with a different head from a trained one; every copied leaf
    must match the target's shape.
    """
    result = dict(target)
    for name in names:
        if name not in source:
            raise CheckpointError(f"subtree {name!r} not in the checkpoint; it has: "
                                  f"{', '.join(sorted(source))}")
        if name not in target:
            raise CheckpointError(f"subtree {name!r} not in the new model; it has: "
                                  f"{', '.join(sorted(target))}")
        target_shapes = jax.tree_util.tree_map(np.shape, target[name])
        source_shapes = jax.tree_util.tree_map(np.shape, source[name])
        if target_shapes != source_shapes:
            raise CheckpointError(f"subtree {name!r} has shapes {source_shapes} in the checkpoint "
                                  f"but {target_shapes} in the new model")
        result[name] = jax.tree_util.tree_map(
            lambda new, old: jax.numpy.asarray(old, dtype=new.dtype), target[name], source[name])
    return result
