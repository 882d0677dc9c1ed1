"""grain input pipelines: seeded, sharded, resumable train loaders and padded eval loaders.

Records (dicts from a random-access source) pass through per-record grain transforms and
are collated into batches of numpy arrays: `image` float32, `label` int32 (class index)
or float32 (label vector), `mask` float32 (1 real, 0 padding) and any other array field.
String fields ('id', 'path') are dropped, except that `eval_loader(..., keep_ids=True)`
keeps `id` as a numpy array of str (padding rows get '') for e.g. "most wrong" grids; keep
such batches off the accelerator (pop 'id' before `jax.device_put`).

Determinism: the train order and every random transform are functions of `seed`, the
epoch and the position in the epoch only, so the batches are the same for any
`worker_count`, and an iterator restored with `set_state` continues exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import math
from typing import Any

from absl import flags
import grain
import numpy as np

Record = dict[str, Any]
Batch = dict[str, np.ndarray]

# Elements (batches) read ahead per process; small because batches of images are large.
READ_THREADS = 2
PREFETCH_BATCHES = 4


def steps_per_epoch(num_examples: int, batch_size: int, shard_count: int = 1) -> int:
    """Full training batches per epoch on each host (remainders are dropped)."""
    return (num_examples // shard_count) // batch_size


def eval_steps(num_examples: int, batch_size: int, shard_count: int = 1) -> int:
    """Evaluation batches on each host: every host runs the same number, padding the rest."""
    return math.ceil(math.ceil(num_examples / shard_count) / batch_size)


def ensure_flags_parsed() -> None:
    """grain reads absl flags while iterating; mark them parsed (defaults) outside `app.run`.

    Under `absl.app.run` this is a no-op; under pytest, notebooks or plain scripts it lets
    grain (and its worker processes, which are started from the parent's state) run.
    """
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


def _check_shard(shard_index: int, shard_count: int) -> None:
    if shard_count < 1 or not 0 <= shard_index < shard_count:
        raise ValueError(
            f"shard_index must be in [0, shard_count) with shard_count >= 1, "
            f"got shard_index={shard_index}, shard_count={shard_count}"
        )


def _transform_seed(seed: int, position: int) -> int:
    """Independent 32-bit seed for the `position`-th random transform of a pipeline."""
    return int(np.random.SeedSequence([seed, position]).generate_state(1)[0])


def _apply_transforms(
    dataset: grain.MapDataset, transforms: Sequence[Any], seed: int
) -> grain.MapDataset:
    for position, transform in enumerate(transforms):
        if isinstance(transform, grain.transforms.RandomMap):
            dataset = dataset.random_map(transform, seed=_transform_seed(seed, position))
        else:
            dataset = dataset.map(transform)
    return dataset


def _batch_value(key: str, values: list[Any]) -> np.ndarray:
    array = np.stack([np.asarray(value) for value in values])
    if key == "image" and array.dtype.kind not in "f":
        raise ValueError(
            f"records reach batching with a {array.dtype} 'image'; end the transforms with "
            "a float conversion such as jaxcx.data.transforms.ScaleToUnit()"
        )
    if array.dtype.kind in "fb":
        return array.astype(np.float32, copy=False)
    if array.dtype.kind in "iu":
        return array.astype(np.int32, copy=False)
    raise ValueError(f"record field {key!r} has unbatchable dtype {array.dtype}")


class Collate:
    """Stacks records into a batch of numpy arrays; see the module docstring for dtypes."""

    def __init__(self, keep_ids: bool = False):
        self.keep_ids = keep_ids

    def __call__(self, records: Sequence[Record]) -> Batch:
        batch: Batch = {}
        for key, first in records[0].items():
            values = [record[key] for record in records]
            if isinstance(first, (str, bytes)):
                if key == "id" and self.keep_ids:
                    batch["id"] = np.array(
                        [v.decode() if isinstance(v, bytes) else v for v in values], dtype=str
                    )
                continue
            batch[key] = _batch_value(key, values)
        if "mask" not in batch:
            batch["mask"] = np.ones(len(records), np.float32)
        return batch


class PaddedShard:
    """One host's slice of a source for evaluation, padded to a whole number of batches.

    Position `p` holds record `p * shard_count + shard_index`; positions past the end
    repeat record 0 with `mask` 0 (and `id` '') so shapes stay fixed.
    """

    def __init__(self, source, batch_size: int, shard_index: int = 0, shard_count: int = 1):
        self.source = source
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.length = eval_steps(len(source), batch_size, shard_count) * batch_size

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, position: int) -> Record:
        index = position * self.shard_count + self.shard_index
        if index < len(self.source):
            return {**self.source[index], "mask": np.float32(1.0)}
        return {**self.source[0], "id": "", "mask": np.float32(0.0)}


def _to_iter(dataset: grain.MapDataset, worker_count: int) -> grain.IterDataset:
    ensure_flags_parsed()
    read_options = grain.ReadOptions(num_threads=READ_THREADS,
                                     prefetch_buffer_size=PREFETCH_BATCHES)
    iter_dataset = dataset.to_iter_dataset(read_options)
    if worker_count > 0:
        iter_dataset = iter_dataset.mp_prefetch(
            grain.MultiprocessingOptions(num_workers=worker_count),
            worker_init_fn=_worker_init,
        ).map(_copy_out_of_shared_memory)
    return iter_dataset


def _copy_out_of_shared_memory(batch: Batch) -> Batch:
    """Plain numpy copies, so worker shared-memory blocks are released at once."""
    return {key: np.array(value) for key, value in batch.items()}


def _worker_init(worker_index: int, worker_count: int) -> None:
    del worker_index, worker_count
    ensure_flags_parsed()


def train_loader(
    source,
    *,
    batch_size: int,
    seed: int,
    transforms: Sequence[Any] = (),
    worker_count: int = 0,
    shard_index: int = 0,
    shard_count: int = 1,
) -> grain.IterDataset:
    """Endless training batches: a fresh seeded shuffle per epoch, remainder dropped.

    Every host shuffles the whole source with the same `seed` and takes the strided slice
    `shard_index::shard_count` of the first `len // shard_count * shard_count` examples, so
    hosts see disjoint parts of every epoch and run `steps_per_epoch(...)` steps each.
    Random transforms draw from a generator keyed by (seed, epoch, position in epoch).
    """
    _check_shard(shard_index, shard_count)
    steps = steps_per_epoch(len(source), batch_size, shard_count)
    if steps == 0:
        raise ValueError(
            f"{len(source)} examples over {shard_count} host(s) do not fill one batch of "
            f"{batch_size}; lower the batch size"
        )
    even_length = len(source) // shard_count * shard_count
    dataset = grain.MapDataset.source(source).shuffle(seed=seed % 2**32)
    dataset = _apply_transforms(dataset, transforms, seed)
    dataset = dataset[shard_index:even_length:shard_count]
    dataset = dataset.batch(batch_size, drop_remainder=True, batch_fn=Collate())
    return _to_iter(dataset.repeat(None), worker_count)


def eval_loader(
    source,
    *,
    batch_size: int,
    transforms: Sequence[Any] = (),
    worker_count: int = 0,
    shard_index: int = 0,
    shard_count: int = 1,
    keep_ids: bool = False,
    seed: int = 0,
) -> Iterable[Batch]:
    """One ordered pass in `eval_steps(...)` batches, the last padded with `mask` 0.

    Over all hosts every example is counted exactly once. `seed` only feeds random
    transforms (normally there are none at evaluation).
    """
    _check_shard(shard_index, shard_count)
    if len(source) == 0:
        raise ValueError("eval_loader got an empty source")
    padded = PaddedShard(source, batch_size, shard_index, shard_count)
    dataset = _apply_transforms(grain.MapDataset.source(padded), transforms, seed)
    dataset = dataset.batch(batch_size, drop_remainder=True, batch_fn=Collate(keep_ids))
    return _to_iter(dataset, worker_count)
