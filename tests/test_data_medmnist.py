"""The `medmnist` dataset: MedMNIST 2D `.npz` files, real and generated."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from jaxcx.config import load_config, with_overrides
from jaxcx.data.errors import DataError
from jaxcx.data.registry import build_data
from jaxcx.data.synthetic import write_medmnist_like

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "medmnist.py")
RETINA_SHA256 = "254915f5f0a2074665c4676356824cf4ef4a3bcab233894b4bafcaf48962bd69"


def medmnist_data(**changes):
    config = with_overrides(load_config(CONFIG), changes)
    return build_data(config.data, config.seed)


def test_shared_retinamnist_splits_and_labels(shared_data):
    path = shared_data / "medmnist" / "retinamnist.npz"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == RETINA_SHA256
    data = medmnist_data(**{"data.path": str(path)})
    assert (len(data.train), len(data.val), len(data.test)) == (1080, 120, 400)
    assert data.input_shape == (28, 28, 3) and not data.multilabel
    assert data.class_names == ("0", "1", "2", "3", "4")
    # Per-grade counts from the file's README (../shared/data/README.md).
    assert np.bincount(data.train.labels).tolist() == [486, 128, 206, 194, 66]
    assert np.bincount(data.test.labels).tolist() == [174, 46, 92, 68, 20]


def test_multilabel_file_gives_label_vectors(tmp_path):
    path = write_medmnist_like(tmp_path / "ml.npz", task="multilabel", num_classes=3,
                               sizes=(20, 5, 5))
    data = medmnist_data(**{"data.path": str(path)})
    assert data.multilabel and data.class_names == ("0", "1", "2")
    record = data.train[0]
    assert record["label"].shape == (3,) and record["image"].shape == (28, 28, 1)


def test_class_names_must_match_the_file(tmp_path):
    path = write_medmnist_like(tmp_path / "mc.npz", num_classes=4, sizes=(20, 5, 5))
    with pytest.raises(DataError, match="3 names but .* has 4 classes"):
        medmnist_data(**{"data.path": str(path), "data.class_names": ("a", "b", "c")})


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="nope.npz not found"):
        medmnist_data(**{"data.path": str(tmp_path / "nope.npz")})
