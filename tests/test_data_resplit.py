"""The pneumonia notebook's 80/10/10 re-split as a manifest."""

import json
import logging
import os
import random

import numpy as np
import pytest

from jaxcx.data.errors import BadInputLog, DataError
from jaxcx.data.resplit import check_class_counts, read_manifest, pneumonia_resplit, write_manifest
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


def test_resplit_is_the_notebooks_seed_42_shuffle_of_each_sorted_class(tmp_path):
    """Hand-rolled "Re-split data" cell: per class, the (file, folder) pairs of every split,
    sorted, shuffled with random.Random(42), cut at int(0.8 n) and int(0.9 n)."""
    write_phantom_chest_xrays(tmp_path, 40, size_range=(24, 32), seed=1)
    expected = {"train": [], "val": [], "test": []}
    for label, cls in enumerate(("NORMAL", "PNEUMONIA")):
        files = sorted((path.name, str(path.parent)) for path in tmp_path.glob(f"*/{cls}/*"))
        random.Random(42).shuffle(files)
        n = len(files)
        for name, part in (("train", files[:int(n * 0.8)]), ("val", files[int(n * 0.8):int(n * 0.9)]),
                           ("test", files[int(n * 0.9):])):
            expected[name] += [(os.path.join(folder, file), label) for file, folder in part]
    assert pneumonia_resplit(tmp_path) == expected


def test_resplit_warns_about_entries_not_read_unless_given_a_log(tmp_path, caplog):
    write_phantom_chest_xrays(tmp_path, 20, size_range=(24, 32))
    (tmp_path / "notes").mkdir()
    with caplog.at_level(logging.WARNING):
        pneumonia_resplit(tmp_path, log=BadInputLog())
    assert caplog.records == []
    with caplog.at_level(logging.WARNING):
        pneumonia_resplit(tmp_path)
    assert caplog.records[0].getMessage().startswith(f"re-split of {tmp_path}: ")


def test_resplit_class_without_images_names_its_folders_and_the_others(tmp_path):
    (tmp_path / "train" / "NORMAL").mkdir(parents=True)
    (tmp_path / "test" / "NORMAL").mkdir(parents=True)
    with pytest.raises(DataError) as info:
        pneumonia_resplit(tmp_path, ignore_unknown_folders=True)
    folders = [str(tmp_path / split / "NORMAL") for split in ("train", "test")]
    assert str(info.value) == f"class 'NORMAL': no images in {folders}"
    (tmp_path / "train" / "OTHER").mkdir()
    with pytest.raises(DataError) as info:
        pneumonia_resplit(tmp_path, ignore_unknown_folders=True)
    assert str(info.value) == (f"class 'NORMAL': no images in {folders}; found folders that "
                               "are no class: ['train/OTHER']")


def test_check_class_counts_errors_and_warnings_name_split_and_class(caplog):
    check_class_counts({"train": np.array([0.0, 1.0, 1.0] * 5)}, ["A", "B"])  # float labels
    with pytest.raises(DataError) as info:
        check_class_counts({"train": [0] * 5, "val": [1, 1]}, ["A", "B"])
    assert str(info.value) == (
        "data: train has no B images; val has no A images: every split needs images of every "
        "class. Add images of that class (the 80/10/10 re-split needs 10 per class to give val "
        "and test one each); with data.split='folders', data.split='resplit' pools the splits")
    with caplog.at_level(logging.WARNING):
        check_class_counts({"val": [0, 1, 1], "test": [0, 0, 1]}, ["A", "B"], 3, where="here")
    assert [record.getMessage() for record in caplog.records] == [
        "here: val has 1 A image(s); val has 2 B image(s); test has 2 A image(s); test has 1 B "
        "image(s) (fewer than data.min_per_class=3): metrics of these classes rest on very few "
        "images"]


def test_manifest_layout_in_a_new_nested_folder_and_a_bad_manifest(tmp_path):
    splits = {"train": [(str(tmp_path / "d" / "a.png"), 1)], "val": [], "test": []}
    path = write_manifest(splits, tmp_path / "run" / "nested", root=tmp_path / "d",
                          class_names=["N", "P"])
    expected = {"root": str(tmp_path / "d"), "class_names": ["N", "P"],
                "counts": {"train": [0, 1], "val": [0, 0], "test": [0, 0]},
                "splits": {"train": [["a.png", 1]], "val": [], "test": []}}
    assert path.read_text() == json.dumps(expected, indent=1)
    write_manifest(splits, tmp_path / "run" / "nested", root=tmp_path / "d")  # folder exists
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match=r"not a split manifest \(TypeError"):
        read_manifest(path)
