"""The pneumonia notebook's 80/10/10 re-split as a manifest."""

import json

import pytest

from jaxcx.data.errors import DataError
from jaxcx.data.resplit import read_manifest, pneumonia_resplit, write_manifest
from jaxcx.data.synthetic import write_phantom_chest_xrays


def _counts(splits):
    return {name: [sum(label == c for _, label in files) for c in (0, 1)] for name, files in splits.items()}


def test_resplit_shared_chest_xray_counts(shared_data):
    splits = pneumonia_resplit(shared_data / "chest_xray_224")
    assert _counts(splits) == {"train": [1260, 3412], "val": [157, 426], "test": [158, 427]}
    paths = [path for files in splits.values() for path, _ in files]
    assert len(set(paths)) == len(paths) == 5840


def test_resplit_pools_splits_and_is_deterministic(tmp_path):
    write_phantom_chest_xrays(tmp_path, 40, size_range=(24, 32), seed=1)
    first, second = pneumonia_resplit(tmp_path), pneumonia_resplit(tmp_path)
    assert first == second
    # 10 NORMAL / 30 PNEUMONIA pooled from train/val/test, cut at int(0.8 n), int(0.9 n)
    assert _counts(first) == {"train": [8, 24], "val": [1, 3], "test": [1, 3]}
    assert pneumonia_resplit(tmp_path, seed=7) != first


def test_manifest_round_trip_with_relative_paths(tmp_path):
    data = tmp_path / "data"
    write_phantom_chest_xrays(data, 20, size_range=(24, 32))
    splits = pneumonia_resplit(data)
    path = write_manifest(splits, tmp_path / "run", root=data)
    payload = json.loads(path.read_text())
    assert payload["counts"]["train"] == [sum(l == 0 for _, l in splits["train"]), sum(l == 1 for _, l in splits["train"])]
    assert not payload["splits"]["val"][0][0].startswith("/")
    assert read_manifest(tmp_path / "run") == splits
    moved = read_manifest(path, root="/elsewhere")
    assert moved["test"][0][0].startswith("/elsewhere/")


def test_resplit_errors(tmp_path):
    with pytest.raises(DataError, match="none of the splits"):
        pneumonia_resplit(tmp_path)
    (tmp_path / "train" / "NORMAL").mkdir(parents=True)
    with pytest.raises(DataError, match="class folder .*train/NORMAL has no images"):
        pneumonia_resplit(tmp_path)
    with pytest.raises(DataError, match="class 'NORMAL': no images"):
        pneumonia_resplit(tmp_path, ignore_unknown_folders=True)
    with pytest.raises(DataError, match="not found"):
        read_manifest(tmp_path / "missing.json")
