"""Image transforms: channels, resize modes, scaling, augmentation, mean/std cache."""

import json

import numpy as np
import pytest
from PIL import Image

from jaxcx.data import transforms as T


def apply(chain, record, seed=0):
    rng = np.random.default_rng(seed)
    for transform in chain:
        record = (transform.random_map(record, rng) if hasattr(transform, "random_map")
                  else transform.map(record))
    return record


def test_channels_keep_dtype_and_use_luma():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 100
    gray = T.convert_channels(rgb, 1)
    assert gray.shape == (2, 2, 1) and gray.dtype == np.uint8 and gray[0, 0, 0] == 30
    np.testing.assert_array_equal(T.convert_channels(gray, 3)[..., 2], gray[..., 0])
    rgba = np.ones((2, 2, 4), np.uint16)
    assert T.convert_channels(rgba, 3).shape == (2, 2, 3)


def test_stretch_crop_and_pad():
    image = np.zeros((20, 40, 1), np.uint8)
    image[:, 10:30] = 255  # bright centre block of a wide image
    stretched = T.resize_image(image, 10, "stretch")
    cropped = T.resize_image(image, 10, "crop")
    padded = T.resize_image(image, 10, "pad")
    assert stretched.shape == cropped.shape == padded.shape == (10, 10, 1)
    assert cropped.mean() > 200  # the crop keeps mostly the bright centre
    assert np.all(padded[:2] == 0) and np.all(padded[-2:] == 0)  # padding above and below
    assert 100 < stretched.mean() < 160
    assert T.resize_image(np.ones((9, 5, 1), np.uint16) * 4000, (4, 6)).dtype == np.uint16


def test_standard_chain_from_path_and_config(tmp_path):
    path = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 20, 3), np.uint8)).save(path)
    config = {"image_size": 16, "channels": 1, "resize_mode": "crop",
              "normalization": "standardize", "augment": {"p": 1.0}}
    chain = T.transforms_from_config(config, train=True, mean_std=(0.5, 0.25))
    record = apply(chain, {"label": 1, "id": "x", "path": str(path)})
    assert record["image"].shape == (16, 16, 1) and record["image"].dtype == np.float32
    assert record["label"] == 1 and record["id"] == "x"
    unit = apply(T.transforms_from_config({"image_size": (8, 12), "channels": 3}, train=False),
                 {"path": str(path)})["image"]
    assert unit.shape == (8, 12, 3) and 0 <= unit.min() and unit.max() <= 1
    assert not any(isinstance(t, T.RandomAugment)
                   for t in T.transforms_from_config(config, train=False, mean_std=(0, 1)))
    with pytest.raises(ValueError, match="mean_std"):
        T.transforms_from_config(config, train=True)
    with pytest.raises(ValueError, match="unknown augmentation"):
        T.transforms_from_config({**config, "augment": {"rotate": 3}}, train=True, mean_std=(0, 1))


def test_augmentation_is_seeded_and_respects_probability():
    image = np.random.default_rng(1).random((16, 16, 1), np.float32)
    record = {"image": image}
    always = T.RandomAugment(T.AugmentConfig(p=1.0, rotation_degrees=20))
    a = apply([always], record, seed=3)["image"]
    b = apply([always], record, seed=3)["image"]
    c = apply([always], record, seed=4)["image"]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 1
    never = T.RandomAugment(T.AugmentConfig(p=0.0))
    np.testing.assert_array_equal(apply([never], record)["image"], image)
    flip = T.RandomAugment(T.AugmentConfig(p=0.0, hflip=True))
    flipped = [apply([flip], record, seed=s)["image"] for s in range(8)]
    assert any(np.array_equal(f, image[:, ::-1]) for f in flipped)


class CountingSource:
    """Four 8x8 gray images; counts record reads."""

    def __init__(self):
        self.paths = [f"img{i}.png" for i in range(4)]
        self.reads = 0

    def __len__(self):
        return 4

    def __getitem__(self, index):
        self.reads += 1
        return {"image": np.full((8, 8, 1), 50 * index, np.uint8), "label": 0,
                "id": self.paths[index], "path": ""}


def test_mean_std_matches_numpy_and_is_cached(tmp_path):
    source = CountingSource()
    mean, std = T.measure_mean_std(source, image_size=4, cache_dir=tmp_path, progress=False)
    pixels = np.repeat(np.arange(4) * 50 / 255, 16)
    assert mean == pytest.approx(pixels.mean()) and std == pytest.approx(pixels.std(ddof=1))
    reads = source.reads
    assert T.measure_mean_std(source, image_size=4, cache_dir=tmp_path) == (mean, std)
    assert source.reads == reads  # cache hit: nothing decoded
    cached = list(tmp_path.glob("mean_std_*.json"))
    assert len(cached) == 1 and json.loads(cached[0].read_text())["image_size"] == [4, 4]
    T.measure_mean_std(source, image_size=6, cache_dir=tmp_path, progress=False)
    assert len(list(tmp_path.glob("mean_std_*.json"))) == 2  # new size, new key
