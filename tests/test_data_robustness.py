"""Awkward image folders: every file is read, named in an error, or listed as not read."""

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxcx.config import load_config
from jaxcx.data.builders import preprocess_files
from jaxcx.data.errors import BadInputLog, DataError, read_bad_inputs
from jaxcx.data.folder import check_images, image_folder_source, scan_split
from jaxcx.data.imageio import decode_image, probe_image
from jaxcx.data.registry import build_data
from jaxcx.data.resplit import pneumonia_resplit

REPO = Path(__file__).resolve().parents[1]
GRAY = np.random.default_rng(0).integers(0, 256, (12, 16), dtype=np.uint8)
RGB = np.random.default_rng(1).integers(0, 256, (12, 16, 3), dtype=np.uint8)


def _save(path: Path, array: np.ndarray, fmt: str, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, fmt, **options)
    return path


def _encoded(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


def _kaggle(root: Path, counts: dict[str, tuple[int, int]]) -> Path:
    """`root/{split}/{NORMAL,PNEUMONIA}/` with that many small gray JPEGs."""
    for split, per_class in counts.items():
        for cls, n in zip(("NORMAL", "PNEUMONIA"), per_class):
            for i in range(n):
                _save(root / split / cls / f"{cls.lower()}{i}.jpeg", GRAY, "JPEG")
    return root


def _bad_files(folder: Path) -> dict[Path, str]:
    """Four kinds of bad file in `folder`, with the reason each must be given."""
    folder.mkdir(parents=True, exist_ok=True)
    jpeg, png = _encoded(RGB, "JPEG"), _encoded(RGB, "PNG")
    files = {"corrupt.jpeg": (jpeg[:2] + bytes(range(256)) * 2, "corrupt or truncated"),
             "truncated.png": (png[: len(png) // 2], "corrupt or truncated PNG"),
             "empty.bmp": (b"", "empty file (0 bytes)"),
             "notes.tif": (b"patient notes, not pixels\n" * 4, "not a readable image")}
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {folder / name: reason for name, (_, reason) in files.items()}


def _data_config(root: Path, cache: Path, *overrides: str):
    return load_config(f"{REPO}/configs/pneumonia.py:quick",
                       [f"data.root={root}", f"data.cache_dir={cache}", "data.image_size=8",
                        *overrides]).data


# --- 1. one error listing every bad file ----------------------------------------------


def test_raise_lists_every_bad_file_of_every_split_in_one_error(tmp_path):
    root = _kaggle(tmp_path / "data", {"train": (6, 6), "val": (6, 6), "test": (6, 6)})
    bad = {**_bad_files(root / "train" / "NORMAL"), **_bad_files(root / "test" / "PNEUMONIA")}
    with pytest.raises(DataError) as info:
        build_data(_data_config(root, tmp_path / "cache", "data.split=folders"), 0)
    message = str(info.value)
    assert "8 bad input file(s)" in message and "on_bad_input=skip" in message
    for path, reason in bad.items():
        assert message.count(str(path)) == 1 and f"{path}: {reason}" in message


def test_image_check_lists_every_bad_file_in_one_error(tmp_path):
    root = _kaggle(tmp_path, {"train": (2, 2)})
    bad = _bad_files(root / "train" / "PNEUMONIA")
    with pytest.raises(DataError, match=r"4 bad input file\(s\)") as info:
        image_folder_source(root, "train", on_bad_input="raise")
    assert all(f"{path}: {reason}" in str(info.value) for path, reason in bad.items())
    good, log = check_images(scan_split(root, "train"), "skip")
    assert len(good) == 4 and sorted(b.item for b in log.items) == sorted(map(str, bad))


# --- 2. every format PIL reads; nothing ignored silently -------------------------------


FORMATS = [("gray.png", GRAY, "PNG", {}), ("rgb.JPG", RGB, "JPEG", {"quality": 95}),
           ("gray.bmp", GRAY, "BMP", {}), ("rgb.BMP", RGB, "BMP", {}),
           ("gray.tif", GRAY, "TIFF", {}), ("rgb.tiff", RGB, "TIFF", {}),
           ("rgb.webp", RGB, "WEBP", {"lossless": True})]


def test_every_format_pil_reads_is_scanned_and_decoded(tmp_path):
    for name, array, fmt, options in FORMATS:
        _save(tmp_path / "train" / "NORMAL" / name, array, fmt, **options)
    files = scan_split(tmp_path, "train")
    assert sorted(Path(path).name for path, _ in files) == sorted(f[0] for f in FORMATS)
    for name, array, fmt, _ in FORMATS:
        decoded = decode_image(tmp_path / "train" / "NORMAL" / name)
        expected = array if array.ndim == 3 else array[:, :, None]
        assert decoded.shape == expected.shape, name
        if fmt != "JPEG":  # lossless formats keep every pixel
            np.testing.assert_array_equal(decoded, expected, err_msg=name)


def _awkward_extras(root: Path) -> dict[str, Path]:
    """Entries a user leaves in a dataset that are not read, by kind."""
    return {
        "nested folder": _save(root / "train" / "NORMAL" / "more" / "x.png", GRAY, "PNG").parent,
        "text file": (root / "train" / "PNEUMONIA" / "notes.txt"),
        "hidden file": _save(root / "test" / "NORMAL" / "._normal0.jpeg", GRAY, "JPEG"),
        "image outside class folders": _save(root / "train" / "stray.png", GRAY, "PNG"),
        "misnamed split folder": _save(root / "validation" / "NORMAL" / "v.png", GRAY,
                                       "PNG").parent.parent,
    }


@pytest.mark.parametrize("split", ["resplit", "folders"])
def test_entries_not_read_are_warned_about_and_listed(tmp_path, split, caplog):
    root = _kaggle(tmp_path / "data", {"train": (10, 10), "val": (6, 6), "test": (6, 6)})
    extras = _awkward_extras(root)
    extras["text file"].write_text("not an image")
    (root / "SHA256SUMS").write_text("checksums describe the dataset: not listed\n")
    with caplog.at_level(logging.WARNING):
        bundle = build_data(_data_config(root, tmp_path / "cache", f"data.split={split}"), 0)
    assert sum(len(s.labels) for s in (bundle.train, bundle.val, bundle.test)) == 44
    listed = {bad.item: bad for bad in bundle.bad_inputs.items}
    assert sorted(listed) == sorted(map(str, extras.values()))
    assert {bad.kind for bad in listed.values()} == {"ignored"}
    assert "1 image file(s) inside" in listed[str(extras["nested folder"])].reason
    assert "5 file(s) or folder(s) ignored" in caplog.text
    written = read_bad_inputs(bundle.bad_inputs.write(tmp_path / "run"))
    assert sorted(bad.item for bad in written) == sorted(listed)


@pytest.mark.parametrize("split", ["resplit", "folders"])
@pytest.mark.parametrize("kind", ["unknown", "empty"])
def test_unknown_or_empty_class_folder_is_an_error_unless_ignored(tmp_path, split, kind):
    root = _kaggle(tmp_path / "data", {"train": (10, 10), "val": (6, 6), "test": (6, 6)})
    folder = root / "train" / "COVID"
    if kind == "unknown":
        _save(folder / "covid0.png", GRAY, "PNG")
    else:
        folder = root / "train" / "NORMAL"
        for path in folder.iterdir():
            path.unlink()
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="ignore_unknown_folders") as info:
        build_data(_data_config(root, cache, f"data.split={split}"), 0)
    named = ["COVID", "train", str(root)] if kind == "unknown" else [str(folder)]
    assert all(part in str(info.value) for part in named)
    config = _data_config(root, cache, f"data.split={split}", "data.ignore_unknown_folders=true")
    if kind == "empty" and split == "folders":  # train is left without NORMAL images
        with pytest.raises(DataError, match="train has no NORMAL images"):
            build_data(config, 0)
        return
    bundle = build_data(config, 0)
    assert [bad.item for bad in bundle.bad_inputs.items] == [str(folder)]


def test_shared_chest_xray_has_nothing_left_out(shared_data):
    log = BadInputLog()
    pneumonia_resplit(shared_data / "chest_xray_224", log=log)
    assert log.items == []


# --- 3. EXIF orientation --------------------------------------------------------------


def test_exif_rotated_phone_photo_decodes_upright(tmp_path):
    upright = np.zeros((32, 48), np.uint8)
    upright[:16, :16] = 255  # a bright top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned left: shown turned 90 degrees clockwise
    path = tmp_path / "phone.jpg"
    Image.fromarray(np.rot90(upright)).save(path, "JPEG", quality=95, exif=exif)
    decoded = decode_image(path)[..., 0].astype(int)
    assert decoded.shape == upright.shape
    assert np.abs(decoded - upright).mean() < 5
    assert probe_image(path)[:2] == (48, 32)


# --- 4. skip reasons survive the array cache; each path printed once -------------------


def test_skip_reasons_are_kept_in_the_cache_and_each_path_is_named_once(tmp_path):
    good = _save(tmp_path / "NORMAL" / "good.png", GRAY, "PNG")
    bad = _bad_files(tmp_path / "NORMAL")
    files = [(str(good), 0)] + [(str(path), 0) for path in bad]
    runs = []
    for _ in ("cold", "warm"):
        source, log = preprocess_files(files, image_size=8, channels=1, resize_mode="stretch",
                                       cache_dir=tmp_path / "cache", on_bad_input="skip")
        assert len(source) == 1
        runs.append(log)
    assert len(list((tmp_path / "cache" / "arrays").iterdir())) == 1  # the warm run read it
    for log in runs:
        assert {b.item: b.reason for b in log.items} == {b.item: b.reason for b in runs[0].items}
        for path, reason in bad.items():
            assert log.summary().count(str(path)) == 1 and f"{path}: {reason}" in log.summary()


# --- 5. experiments/analyze_data.py reports what it leaves out ---------------------------


def _analyze(*flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.analyze_data", *flags], cwd=REPO,
                          env={**os.environ, "JAXCX_NO_PROGRESS": "1"}, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("source", ["data_root", "config"])
def test_analyze_data_prints_and_writes_bad_inputs(tmp_path, source):
    root = _kaggle(tmp_path / "data", {"train": (20, 20), "test": (4, 4)})
    corrupt = root / "train" / "NORMAL" / "corrupt.jpeg"
    corrupt.write_bytes(_encoded(RGB, "JPEG")[:2] + bytes(64))
    nested = _save(root / "train" / "PNEUMONIA" / "old" / "p.png", GRAY, "PNG").parent
    workdir = tmp_path / "eda"
    if source == "data_root":
        flags = [f"--data_root={root}", "--layout=kaggle_pneumonia"]
    else:
        flags = [f"--config={REPO}/configs/pneumonia.py:quick", f"--config.data.root={root}",
                 "--config.data.on_bad_input=skip", f"--config.data.cache_dir={tmp_path}/c",
                 "--config.data.image_size=8"]
    result = _analyze(*flags, f"--workdir={workdir}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 bad input(s) skipped" in result.stdout and f"{corrupt}: corrupt" in result.stdout
    listed = {bad.item: bad.kind for bad in read_bad_inputs(workdir)}
    assert listed == {str(corrupt): "bad", str(nested): "ignored"}
    summary = (workdir / "data_summary.md").read_text()
    assert "## Inputs not used (1 bad and skipped, 1 ignored)" in summary
    assert str(corrupt) in summary and str(nested) in summary


# --- 6. a split left without (enough) images of a class --------------------------------


def test_resplit_leaving_a_class_empty_in_a_split_is_an_error(tmp_path):
    root = _kaggle(tmp_path / "data", {"train": (3, 20)})  # NORMAL: 2 train, 0 val, 1 test
    with pytest.raises(DataError, match=r"val has no NORMAL images") as info:
        build_data(_data_config(root, tmp_path / "cache"), 0)
    assert str(root) in str(info.value)


def test_resplit_leaving_few_images_of_a_class_warns(tmp_path, caplog):
    root = _kaggle(tmp_path / "data", {"train": (9, 60)})  # NORMAL: 7 train, 1 val, 1 test
    with caplog.at_level(logging.WARNING):
        build_data(_data_config(root, tmp_path / "cache"), 0)
    assert "val has 1 NORMAL image(s); test has 1 NORMAL image(s)" in caplog.text
    assert "data.min_per_class=5" in caplog.text and "PNEUMONIA" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        build_data(_data_config(root, tmp_path / "cache", "data.min_per_class=1"), 0)
    assert "min_per_class" not in caplog.text
