"""Data parallelism with `jax.sharding`: a 1-D `'data'` mesh over every device.

Batches are split along their first axis (`P('data')`), the train state is replicated
(`P()`). The same code runs on one CPU, several GPUs/TPUs, or several hosts (each host
feeds its own slice of the global batch).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices: list | None = None) -> Mesh:
    """A mesh with one `'data'` axis over the given (default: all) devices."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding of values every device holds in full (params, optimizer state)."""
    return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    """Sharding of a batch split along its first axis over the `'data'` axis."""
    return NamedSharding(mesh, P(DATA_AXIS))


def local_batch_size(global_batch_size: int, mesh: Mesh) -> int:
    """This host's share of a global batch; fails clearly when it does not divide."""
    devices = mesh.devices.size
    if global_batch_size % devices:
        raise ValueError(
            f"batch size {global_batch_size} is not divisible by the {devices} devices of the "
            f"mesh; choose a multiple of {devices}")
    return global_batch_size // jax.process_count()


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Places this host's part of a batch into global arrays sharded over `'data'`."""
    sharding = batch_sharded(mesh)
    return {key: jax.make_array_from_process_local_data(sharding, np.asarray(value))
            for key, value in batch.items()}


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Copies a pytree onto every device of the mesh."""
    return jax.device_put(tree, replicated(mesh))


def to_host(tree: Any) -> Any:
    """Fetches replicated arrays as numpy, also when other hosts hold copies too."""
    def fetch(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(x.addressable_data(0))
        return np.asarray(x)
    return jax.tree_util.tree_map(fetch, tree)
