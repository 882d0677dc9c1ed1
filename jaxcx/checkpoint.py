"""Orbax checkpoints: latest-N and best-N kept together, exact resume, partial transfer.

A checkpoint step holds up to three items: `state` (params, BatchNorm statistics, optimizer
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

State = Any  # a pytree of arrays, e.g. jaxcx.train.state.TrainState


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used for the requested restore."""


def _manager(directory: Path, keep: int) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(directory, options=ocp.CheckpointManagerOptions(
        max_to_keep=keep, cleanup_tmp_directories=True))


class Checkpointer:
    """Saves and restores training checkpoints under one folder.

    `DIR/latest` keeps the newest `keep_latest` steps (for resuming); `DIR/best` receives
    a step only when the caller says it is a new best, and keeps the newest `keep_best`
    of those. A best step is fully written before the latest step that records it starts,
    so after a kill the best checkpoint a run refers to always exists.
    """

    def __init__(self, directory: str | Path, *, keep_latest: int = 2, keep_best: int = 1):
        self.directory = Path(directory).absolute()
        self._latest = _manager(self.directory / "latest", keep_latest)
        self._best = _manager(self.directory / "best", keep_best)
        # A kill between a best save and the latest save that records it leaves a best step
        # newer than the latest one; the resumed run redoes and re-saves that step.
        newest = self._latest.latest_step() or -1
        for step in self._best.all_steps():
            if step > newest:
                self._best.delete(step)

    def latest_step(self) -> int | None:
        return self._latest.latest_step()

    def best_step(self) -> int | None:
        return self._best.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(set(self._latest.all_steps()) | set(self._best.all_steps()))

    def save(self, step: int, state: State, *, loop_state: Mapping[str, Any],
             is_best: bool, data_iterator: grain.DatasetIterator | None = None):
        """Saves one step (asynchronously; `wait` or `close` to block until written)."""
        try:
            self._save(step, state, loop_state=loop_state, is_best=is_best,
                       data_iterator=data_iterator)
        except OSError as error:
            raise self._write_failed(error) from error

    def _save(self, step, state, *, loop_state, is_best, data_iterator):
        # One manager at a time: in multi-process runs the two managers' finalising
        # threads use the same Orbax barrier names, so a best save that starts while the
        # previous latest save is still finishing fails ("Barrier ... already ongoing").
        self._latest.wait_until_finished()
        state_item = ocp.args.StandardSave(state.saveable())
        loop_item = ocp.args.JsonSave(dict(loop_state))
        if is_best:
            self._best.save(step, args=ocp.args.Composite(state=state_item, loop=loop_item))
            self._best.wait_until_finished()
        items = {"state": state_item, "loop": loop_item}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
        self._latest.save(step, args=ocp.args.Composite(**items))

    def restore(self, state: State, *, step: int | None = None,
                data_iterator: grain.DatasetIterator | None = None,
                best: bool = False) -> tuple[State, dict]:
        """Restores `state` (the shape/sharding template) and the data iterator in place.

        Without `step`, the newest step; `best` reads from the best steps instead.
        """
        manager = self._best if best else self._latest
        step = manager.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"no {'best ' if best else ''}checkpoint in {self.directory}")
        items = {"state": ocp.args.StandardRestore(state.saveable()),
                 "loop": ocp.args.JsonRestore()}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        try:
            restored = manager.restore(step, args=ocp.args.Composite(**items))
        except (ValueError, KeyError, TypeError) as error:
            detail = " ".join(str(error).split())[:300]
            raise CheckpointError(
                f"checkpoint {manager.directory / str(step)} does not match this model/config "
                f"({detail} ...). Start a new --workdir, or pass --overwrite to replace it."
            ) from error
        return state.with_saved(restored["state"]), dict(restored["loop"])

    def wait(self):
        """Blocks until every save is on disk; a failed write is a CheckpointError."""
        try:
            self._best.wait_until_finished()
            self._latest.wait_until_finished()
        except OSError as error:
            raise self._write_failed(error) from error

    def _write_failed(self, error: OSError) -> CheckpointError:
        """What could not be written, and what is still there to resume from."""
        complete = sorted(int(p.name) for p in (self.directory / "latest").glob("*")
                          if p.name.isdigit())
        kept = (f"the last complete checkpoint (step {complete[-1]}) is intact" if complete
                else "no complete checkpoint had been written yet")
        return CheckpointError(
            f"could not write a checkpoint in {self.directory}: {error.strerror or error}; "
            f"{kept}. Free space (or fix the folder) and run the same command again to resume.")

    def close(self):
        """Finishes pending writes and closes both managers; a failed write is a
        CheckpointError."""
        try:
            try:
                self._best.close()
            finally:
                self._latest.close()
        except OSError as error:
            raise self._write_failed(error) from error


def load_saved_state(directory: str | Path, step: int | None = None,
                     which: str = "best") -> dict:
    """The raw saved `state` item (numpy pytree) of a run's `checkpoints` folder, no
    template needed: its best step (`which='best'`) or latest (`'latest'`)."""
    if which not in ("best", "latest"):
        raise ValueError(f"which must be 'best' or 'latest', got {which!r}")
    manager = ocp.CheckpointManager(Path(directory).absolute() / which,
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
