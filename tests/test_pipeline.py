"""grain pipelines: determinism, epochs, resume, worker counts, eval padding, sharding."""

import json

import grain
import numpy as np
import pytest

from jaxcx.data import pipeline


class ToySource:
    """Record i has image [i, i, i] and label i % 3."""

    def __init__(self, size: int, multilabel: bool = False):
        self.size = size
        self.multilabel = multilabel

    def __len__(self):
        return self.size

    def __getitem__(self, index):
        label = (np.array([index % 2, index % 3 == 0], np.float32) if self.multilabel
                 else index % 3)
        return {"image": np.full((3,), index, np.float32), "label": label,
                "id": f"r{index}", "path": ""}


class AddNoise(grain.transforms.RandomMap):
    def random_map(self, record, rng):
        return {**record, "image": record["image"] + rng.uniform(0, 0.5, 3).astype(np.float32)}


def take(loader, count):
    iterator = iter(loader)
    return [next(iterator) for _ in range(count)]


def record_ids(batches):
    return np.concatenate([np.floor(b["image"][:, 0]).astype(int) for b in batches])


def test_steps_per_epoch():
    assert pipeline.steps_per_epoch(23, 5) == 4
    assert pipeline.steps_per_epoch(23, 5, shard_count=2) == 2
    assert pipeline.eval_steps(23, 5) == 5
    assert pipeline.eval_steps(23, 5, shard_count=2) == 3


def test_batches_follow_contract_and_seed():
    batches = take(pipeline.train_loader(ToySource(20), batch_size=5, seed=1,
                                         transforms=[AddNoise()]), 8)
    first = batches[0]
    assert set(first) == {"image", "label", "mask"}
    assert first["image"].dtype == np.float32 and first["image"].shape == (5, 3)
    assert first["label"].dtype == np.int32 and np.all(first["mask"] == 1)
    again = take(pipeline.train_loader(ToySource(20), batch_size=5, seed=1,
                                       transforms=[AddNoise()]), 8)
    other = take(pipeline.train_loader(ToySource(20), batch_size=5, seed=2,
                                       transforms=[AddNoise()]), 8)
    for a, b in zip(batches, again):
        np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.array_equal(record_ids(batches), record_ids(other))


def test_each_epoch_is_a_new_permutation_with_new_augmentation():
    batches = take(pipeline.train_loader(ToySource(20), batch_size=5, seed=0,
                                         transforms=[AddNoise()]), 8)
    epoch0, epoch1 = record_ids(batches[:4]), record_ids(batches[4:])
    assert sorted(epoch0) == sorted(epoch1) == list(range(20))
    assert not np.array_equal(epoch0, epoch1)
    noise = {}
    for batch in batches:
        for row in batch["image"]:
            noise.setdefault(int(row[0]), []).append(row[0] % 1)
    assert all(values[0] != values[1] for values in noise.values())


def test_remainder_dropped_and_multilabel_float():
    batches = take(pipeline.train_loader(ToySource(11, multilabel=True), batch_size=4,
                                         seed=0), 4)
    assert batches[0]["label"].dtype == np.float32 and batches[0]["label"].shape == (4, 2)
    assert len(set(record_ids(batches[:2]))) == 8  # 2 full batches per epoch of 11


def test_restore_state_gives_identical_next_batches():
    loader = pipeline.train_loader(ToySource(20), batch_size=4, seed=3, transforms=[AddNoise()])
    iterator = iter(loader)
    for _ in range(6):
        next(iterator)
    state = iterator.get_state()
    expected = [next(iterator) for _ in range(4)]
    resumed = iter(loader)
    resumed.set_state(state)
    for batch in expected:
        np.testing.assert_array_equal(next(resumed)["image"], batch["image"])


def test_two_workers_match_zero_workers_and_resume():
    """Two workers give the zero-worker batches, and a state saved after 5 batches (as
    JSON, as a checkpoint stores it) restored into a freshly built loader, as a resumed run
    does, continues with batches 6-8."""
    make = lambda workers: pipeline.train_loader(  # noqa: E731
        ToySource(20), batch_size=4, seed=5, transforms=[AddNoise()], worker_count=workers)
    serial = take(make(0), 8)
    iterator = iter(make(2))
    parallel = [next(iterator) for _ in range(5)]
    state = json.loads(json.dumps(iterator.get_state()))
    parallel += [next(iterator) for _ in range(3)]
    iterator.close()
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a["image"], b["image"])
        assert type(b["image"]) is np.ndarray
    resumed = iter(make(2))
    resumed.set_state(state)
    for expected in serial[5:]:
        batch = next(resumed)
        np.testing.assert_array_equal(batch["image"], expected["image"])
        np.testing.assert_array_equal(batch["label"], expected["label"])
    resumed.close()
    del iterator, resumed


def test_eval_counts_every_example_once_with_padding():
    batches = list(pipeline.eval_loader(ToySource(23), batch_size=5, keep_ids=True))
    assert len(batches) == 5 and all(b["image"].shape == (5, 3) for b in batches)
    mask = np.concatenate([b["mask"] for b in batches])
    ids = np.concatenate([b["id"] for b in batches])
    assert mask.sum() == 23 and list(mask[-2:]) == [0, 0]
    assert sorted(ids[mask == 1]) == sorted(f"r{i}" for i in range(23))
    assert list(ids[mask == 0]) == ["", ""]
    assert "id" not in next(iter(pipeline.eval_loader(ToySource(3), batch_size=2)))


def test_host_shards_are_disjoint_cover_and_equal_length():
    size, hosts, batch = 22, 3, 2
    epochs = []
    for host in range(hosts):
        loader = pipeline.train_loader(ToySource(size), batch_size=batch, seed=7,
                                       shard_index=host, shard_count=hosts)
        steps = pipeline.steps_per_epoch(size, batch, hosts)
        epochs.append(set(record_ids(take(loader, steps))))
        assert len(epochs[-1]) == steps * batch
    assert all(a.isdisjoint(b) for i, a in enumerate(epochs) for b in epochs[i + 1:])
    seen = []
    lengths = set()
    for host in range(hosts):
        batches = list(pipeline.eval_loader(ToySource(size), batch_size=4, shard_index=host,
                                            shard_count=hosts))
        lengths.add(len(batches))
        for b in batches:
            seen += list(b["image"][b["mask"] == 1, 0].astype(int))
    assert lengths == {pipeline.eval_steps(size, 4, hosts)}
    assert sorted(seen) == list(range(size))


def test_clear_errors():
    with pytest.raises(ValueError, match="do not fill one batch"):
        pipeline.train_loader(ToySource(3), batch_size=4, seed=0)
    with pytest.raises(ValueError, match="shard_index"):
        pipeline.eval_loader(ToySource(3), batch_size=4, shard_index=2, shard_count=2)

    class Uint8Source(ToySource):
        def __getitem__(self, index):
            return {**super().__getitem__(index), "image": np.zeros((2, 2, 1), np.uint8)}

    with pytest.raises(ValueError, match="ScaleToUnit"):
        next(iter(pipeline.eval_loader(Uint8Source(2), batch_size=2)))
