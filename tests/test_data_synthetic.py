"""Synthetic data writers: formats readable by the sources, determinism, sizes."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from jaxcx.data.errors import BadInputLog, DataError, read_bad_inputs
from jaxcx.data.folder import COVID_QU_EX_CLASSES, SegmentationFolderSource, image_folder_source, scan_image_folder
from jaxcx.data.imageio import decode_image, probe_image
from jaxcx.data.npz import NpzSource
from jaxcx.data.synthetic import phantom_chest_xray, write_medmnist_like, write_phantom_chest_xrays


def _digest(files):
    return hashlib.sha256(b"".join(open(path, "rb").read() for path, _ in files)).hexdigest()


def test_kaggle_phantoms_layout_mix_and_determinism(tmp_path):
    written = write_phantom_chest_xrays(tmp_path / "a", 60, seed=4, size_range=(40, 64), rgb_fraction=0.2, png16_fraction=0.2)
    scanned = scan_image_folder(tmp_path / "a")
    assert {k: sorted(v) for k, v in written.items()} == scanned
    labels = np.array([label for files in written.values() for _, label in files])
    assert np.bincount(labels).tolist() == [16, 44]
    infos = [probe_image(path) for files in written.values() for path, _ in files]
    modes = {info.mode for info in infos}
    assert {"L", "RGB", "I;16"} <= modes
    assert all(40 <= min(i.width, i.height) and max(i.width, i.height) <= 64 for i in infos)
    again = write_phantom_chest_xrays(tmp_path / "b", 60, seed=4, size_range=(40, 64), rgb_fraction=0.2, png16_fraction=0.2)
    assert _digest(written["train"]) == _digest(again["train"])


def test_covid_layout_with_masks(tmp_path):
    written = write_phantom_chest_xrays(tmp_path, 30, layout="covid", size_range=(32, 32), masks=True)
    source = image_folder_source(tmp_path, "val", class_map=COVID_QU_EX_CLASSES)
    assert len(source) == len(written["Val"]) == 3
    segmentation = SegmentationFolderSource(written["Train"], root=tmp_path)
    target = segmentation[0]["target"]
    assert target.shape == (32, 32, 1) and target.dtype == np.float32 and set(np.unique(target)) == {0.0, 1.0}
    first_val = Path(written["Val"][0][0])
    (first_val.parent.parent / "lung masks" / first_val.name).unlink()
    with pytest.raises(DataError, match=r"1 image\(s\) have no mask in 'lung masks/'"):
        SegmentationFolderSource(written["Val"])


def test_pneumonia_phantoms_are_brighter_in_the_lungs():
    normal = [phantom_chest_xray(np.random.default_rng([0, i]), 64, 64, "normal") for i in range(8)]
    sick = [phantom_chest_xray(np.random.default_rng([0, i]), 64, 64, "pneumonia") for i in range(8)]
    lung_mean = lambda pairs: np.mean([image[mask].mean() for image, mask in pairs])
    assert lung_mean(sick) > lung_mean(normal) + 0.02


def test_large_phantoms_have_the_requested_sizes(tmp_path):
    """20 images of 300-400 px: all 20 on disk where the writer says, each side within the
    range, each file decodable to the size its header gives."""
    written = write_phantom_chest_xrays(tmp_path, 20, size_range=(300, 400))
    on_disk = sorted(str(p) for p in tmp_path.rglob("*") if p.is_file())
    assert sorted(path for files in written.values() for path, _ in files) == on_disk
    assert len(on_disk) == 20
    infos = [probe_image(path) for path in on_disk]
    assert all(300 <= min(i.width, i.height) and max(i.width, i.height) <= 400 for i in infos)
    for path, info in list(zip(on_disk, infos))[::4]:
        assert decode_image(path).shape[:2] == (info.height, info.width)


def test_medmnist_like_is_deterministic(tmp_path):
    a = NpzSource(write_medmnist_like(tmp_path / "a.npz", seed=2), "train")
    b = NpzSource(write_medmnist_like(tmp_path / "b.npz", seed=2), "train")
    np.testing.assert_array_equal(a.images, b.images)
    assert a.images.shape == (200, 28, 28, 1) and a.num_classes == 4


def test_bad_input_log_policies(tmp_path):
    with pytest.raises(ValueError, match="on_bad_input must be one of"):
        BadInputLog("ignore")
    with pytest.raises(DataError, match="x.png: broken"):
        BadInputLog("raise").report("x.png", "broken")
    log = BadInputLog("skip")
    for i in range(12):
        log.report(f"f{i}.png", DataError(f"f{i}.png: empty file"))
    assert log.count == 12 and "and 2 more" in log.summary()
    assert [b.item for b in read_bad_inputs(log.write(tmp_path))][-1] == "f11.png"
