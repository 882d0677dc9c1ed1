"""Image decoding, image folders, MedMNIST npz and XOR sources, with their bad inputs."""

import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxcx.data.errors import DataError, read_bad_inputs
from jaxcx.data.folder import (
    COVID_VS_NORMAL_CLASSES,
    KAGGLE_PNEUMONIA_CLASSES,
    ImageFolderSource,
    check_images,
    image_folder_source,
    scan_image_folder,
    scan_split,
)
from jaxcx.data.imageio import decode_image, probe_image
from jaxcx.data.npz import NpzSource
from jaxcx.data.synthetic import write_medmnist_like
from jaxcx.data.xor import XorSource, make_xor
from jaxcx.tracking import read_metrics

REPO = Path(__file__).resolve().parents[1]


def _encode(array: np.ndarray, fmt: str, mode: str | None = None) -> bytes:
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


GRAY = np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8)
RGB = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)


def _write_kaggle(root, counts={"train": (2, 3), "val": (1, 1), "test": (1, 2)}):
    for split, per_class in counts.items():
        for cls, n in zip(("NORMAL", "PNEUMONIA"), per_class):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                (folder / f"img{i}.jpeg").write_bytes(_encode(GRAY, "JPEG"))
    return root


# --- decoding ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array, fmt, mode, shape, dtype",
    [
        (GRAY, "PNG", None, (20, 30, 1), np.uint8),
        (GRAY, "JPEG", None, (20, 30, 1), np.uint8),
        (RGB, "JPEG", None, (20, 30, 3), np.uint8),
        (RGB, "PNG", "RGBA", (20, 30, 3), np.uint8),
        (GRAY, "PNG", "LA", (20, 30, 1), np.uint8),
        (RGB, "PNG", "P", (20, 30, 3), np.uint8),
        (GRAY, "PNG", "1", (20, 30, 1), np.uint8),
        (GRAY.astype(np.uint16) * 257, "PNG", None, (20, 30, 1), np.uint16),
    ],
    ids=["L-png", "L-jpeg", "RGB-jpeg", "RGBA-png", "LA-png", "P-png", "1bit-png", "16bit-png"],
)
def test_decode_modes(array, fmt, mode, shape, dtype):
    decoded = decode_image(_encode(array, fmt, mode))
    assert decoded.shape == shape and decoded.dtype == dtype


def test_decode_16bit_keeps_values_and_rgba_drops_alpha(tmp_path):
    deep = (np.arange(600, dtype=np.uint16).reshape(20, 30) * 100)
    path = tmp_path / "deep.PNG"
    path.write_bytes(_encode(deep, "PNG"))
    np.testing.assert_array_equal(decode_image(path)[..., 0], deep)
    assert probe_image(path) == (30, 20, 1, "I;16")
    rgba = np.dstack([RGB, np.full((20, 30), 7, np.uint8)])
    path = tmp_path / "rgba.png"
    path.write_bytes(_encode(rgba, "PNG"))
    np.testing.assert_array_equal(decode_image(path), RGB)
    assert probe_image(path) == (30, 20, 4, "RGBA")


def _bad_files(tmp_path):
    jpeg = _encode(RGB, "JPEG")
    png = _encode(RGB, "PNG")
    return {
        "corrupt.jpeg": (jpeg[:2] + bytes(range(256)) * 2, "corrupt or truncated"),
        "truncated.png": (png[: len(png) // 2], "corrupt or truncated PNG"),
        "truncated.jpg": (jpeg[: len(jpeg) - 40], "corrupt or truncated JPEG"),
        "empty.jpeg": (b"", r"empty file \(0 bytes\)"),
        "notes.png": (b"patient notes, not pixels\n" * 4, "not a readable image"),
    }


@pytest.mark.parametrize("name", ["corrupt.jpeg", "truncated.png", "truncated.jpg", "empty.jpeg", "notes.png"])
def test_bad_image_files_name_file_and_problem(tmp_path, name):
    data, problem = _bad_files(tmp_path)[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(DataError, match=problem) as info:
        decode_image(path)
    assert str(path) in str(info.value)


def test_missing_file_is_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read image file"):
        decode_image(tmp_path / "nowhere.jpeg")


# --- image folders ----------------------------------------------------------------------


def test_scan_kaggle_layout_case_insensitive_splits(tmp_path):
    root = _write_kaggle(tmp_path)
    (root / "train").rename(root / "TRAIN")
    (root / "train_notes.txt").write_text("ignored")
    splits = scan_image_folder(root, class_map=KAGGLE_PNEUMONIA_CLASSES)
    assert [len(v) for v in splits.values()] == [5, 2, 3]
    assert [label for _, label in splits["train"]] == [0, 0, 1, 1, 1]


def test_missing_split(tmp_path):
    root = _write_kaggle(tmp_path, {"train": (1, 1), "test": (1, 1)})
    with pytest.raises(DataError, match=r"split 'val' not found in .*found folders: \['test', 'train'\]"):
        scan_split(root, "val")


def test_empty_class_folder(tmp_path):
    root = _write_kaggle(tmp_path, {"train": (1, 0)})
    (root / "train" / "PNEUMONIA" / ".DS_Store").write_text("")
    with pytest.raises(DataError, match=r"class folder .*train/PNEUMONIA has no images"):
        scan_split(root, "train", class_map=KAGGLE_PNEUMONIA_CLASSES)


def test_unknown_and_missing_class_folders(tmp_path):
    root = _write_kaggle(tmp_path, {"train": (1, 1)})
    (root / "train" / "COVID").mkdir()
    with pytest.raises(DataError, match=r"unknown class folder\(s\) \['COVID'\] in .*train: expected only \['NORMAL', 'PNEUMONIA'\]"):
        scan_split(root, "train", class_map=KAGGLE_PNEUMONIA_CLASSES)
    with pytest.raises(DataError, match=r"missing class folder\(s\) \['BACTERIA'\]"):
        scan_split(root, "train", classes=["NORMAL", "BACTERIA"])


def test_covid_layout_with_class_subset(tmp_path):
    for cls in ("COVID-19", "Non-COVID", "Normal"):
        folder = tmp_path / "Val" / cls / "images"
        folder.mkdir(parents=True)
        (folder / f"{cls} (1).png").write_bytes(_encode(GRAY, "PNG"))
        (tmp_path / "Val" / cls / "lung masks").mkdir()
    files = scan_split(tmp_path, "val", class_map=COVID_VS_NORMAL_CLASSES, classes=["Normal", "COVID-19"])
    assert sorted(label for _, label in files) == [0, 1]
    assert all("/images/" in path for path, _ in files)


def test_source_records_ids_and_pickling(tmp_path):
    root = _write_kaggle(tmp_path)
    source = image_folder_source(root, "train", class_map=KAGGLE_PNEUMONIA_CLASSES)
    assert len(source) == 5 and source.class_names == ["NORMAL", "PNEUMONIA"]
    record = source[4]
    assert record["id"] == "train/PNEUMONIA/img2.jpeg" and record["label"] == 1
    assert record["image"].shape == (20, 30, 1) and record["path"].endswith("img2.jpeg")
    clone = pickle.loads(pickle.dumps(source))
    np.testing.assert_array_equal(clone[4]["image"], record["image"])


def test_skip_mode_counts_and_lists_bad_files(tmp_path):
    root = _write_kaggle(tmp_path)
    bad = root / "train" / "NORMAL" / "broken.jpeg"
    bad.write_bytes(b"")
    with pytest.raises(DataError, match="broken.jpeg: empty file"):
        image_folder_source(root, "train", on_bad_input="raise")
    source = image_folder_source(root, "train", on_bad_input="skip")
    assert len(source) == 5 and source.bad_inputs.count == 1
    written = source.bad_inputs.write(tmp_path / "run")
    [item] = read_bad_inputs(written.parent)
    assert item.item == str(bad) and "0 bytes" in item.reason


def test_check_images_keeps_good_files(tmp_path):
    root = _write_kaggle(tmp_path, {"train": (2, 1)})
    files = scan_split(root, "train")
    (root / "train" / "NORMAL" / "img0.jpeg").write_bytes(_encode(RGB, "JPEG")[:100])
    good, log = check_images(files, "skip")
    assert len(good) == 2 and log.count == 1 and "img0.jpeg" in log.items[0].item


def test_image_folder_source_without_decoding():
    source = ImageFolderSource([("a/x.png", 1)], decode=False)
    assert source[0] == {"label": 1, "id": "a/x.png", "path": "a/x.png"}


# --- MedMNIST npz -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "task, channels, label",
    [("binary", 1, int), ("multiclass", 3, int), ("multilabel", 1, np.ndarray)],
)
def test_npz_tasks(tmp_path, task, channels, label):
    path = write_medmnist_like(tmp_path / "m.npz", sizes=(12, 4, 4), image_size=32, channels=channels, task=task, num_classes=5)
    source = NpzSource(path, "val")
    record = source[1]
    assert len(source) == 4 and record["image"].shape == (32, 32, channels)
    assert isinstance(record["label"], label)
    if task == "multilabel":
        assert record["label"].shape == (5,) and record["label"].dtype == np.float32
    assert record["id"] == "m/val/00001"


def test_npz_wrong_keys_lists_keys_found(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((2, 28, 28)), y_train=np.zeros(2))
    with pytest.raises(DataError, match=r"bad.npz: missing key\(s\) \['train_images', 'train_labels'\].*keys found: \['x_train', 'y_train'\]"):
        NpzSource(path, "train")


def test_npz_wrong_shapes(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, train_images=np.zeros((2, 28, 28, 5), np.uint8), train_labels=np.zeros((2, 1)))
    with pytest.raises(DataError, match=r"bad.npz: train_images has shape \(2, 28, 28, 5\)"):
        NpzSource(path, "train")
    np.savez(path, train_images=np.zeros((2, 28, 28), np.uint8), train_labels=np.zeros((3, 1)))
    with pytest.raises(DataError, match=r"bad.npz: train_labels has shape \(3, 1\); expected \(2, L\)"):
        NpzSource(path, "train")


def test_npz_not_an_archive(tmp_path):
    path = tmp_path / "fake.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="fake.npz: not a readable .npz"):
        NpzSource(path, "train")


# --- XOR --------------------------------------------------------------------------------


def test_xor_deterministic_and_correct():
    x, y = make_xor(400, std=0.05, seed=3)
    x2, y2 = make_xor(400, std=0.05, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert x.dtype == np.float32 and y.dtype == np.int32 and x.shape == (400, 2)
    corners = np.round(x).astype(int)
    np.testing.assert_array_equal(y, corners[:, 0] ^ corners[:, 1])
    assert not np.array_equal(make_xor(400, 0.05, seed=4)[0], x)
    record = pickle.loads(pickle.dumps(XorSource(400, 0.05, seed=3)))[7]
    np.testing.assert_array_equal(record["image"], x[7])
    assert record["label"] == y[7] and record["path"] == ""


# --- bad inputs through the training entry point ------------------------------------------


def test_train_entry_skips_bad_images_and_lists_them_also_from_the_cache(tmp_path):
    """`on_bad_input=skip` through `python -m experiments.train`: the run trains on the good
    images and lists the corrupt and the empty file in WORKDIR/bad_inputs.json; a second
    run on the same cache reads the arrays back (no new cache file) and lists them again."""
    root = _write_kaggle(tmp_path / "kaggle", {"train": (8, 8), "val": (2, 2), "test": (2, 2)})
    corrupt = root / "train" / "PNEUMONIA" / "corrupt.jpeg"
    corrupt.write_bytes(_bad_files(tmp_path)["corrupt.jpeg"][0])
    empty = root / "val" / "NORMAL" / "empty.jpeg"
    empty.write_bytes(b"")
    cache = tmp_path / "cache"

    def train(workdir):
        return subprocess.run(
            [sys.executable, "-m", "experiments.train", "--config=configs/pneumonia.py:quick",
             f"--workdir={workdir}", f"--config.data.root={root}", "--config.data.split=folders",
             "--config.data.on_bad_input=skip", f"--config.data.cache_dir={cache}",
             "--config.data.image_size=16", "--config.model.feature_maps=4",
             "--config.train.num_epochs=1", "--config.train.batch_size=8",
             "--config.train.eval_batch_size=8", "--config.tracking.tensorboard=false"],
            cwd=REPO, env={**os.environ, "JAXCX_NO_PROGRESS": "1"}, capture_output=True,
            text=True, timeout=300)

    first = train(tmp_path / "first")
    assert first.returncode == 0, first.stderr[-2000:]
    def cache_files():
        return sorted((p.name, p.stat().st_mtime_ns) for p in (cache / "arrays").iterdir())

    cached = cache_files()
    second = train(tmp_path / "second")
    assert second.returncode == 0, second.stderr[-2000:]
    assert cache_files() == cached  # read back: no file added or rewritten
    for run, result in (("first", first), ("second", second)):
        assert "2 bad input(s) skipped" in result.stdout
        listed = read_bad_inputs(tmp_path / run)
        assert sorted(bad.item for bad in listed) == sorted([str(corrupt), str(empty)])
        # 16 good training images in batches of 8: one epoch is 2 steps.
        assert [row["step"] for row in read_metrics(tmp_path / run) if "val/loss" in row] == [2]
    reasons = {bad.item: bad.reason for bad in read_bad_inputs(tmp_path / "first")}
    assert "corrupt or truncated" in reasons[str(corrupt)]
    assert "empty file" in reasons[str(empty)]
    assert read_metrics(tmp_path / "second") == read_metrics(tmp_path / "first")
