"""IDX reading/writing, MNIST loading and the Fashion-MNIST notebook's class split."""

import gzip
import hashlib
import pickle

import numpy as np
import pytest

from jaxcx.data.class_split import (
    FMNIST1_CLASSES,
    FMNIST2_CLASSES,
    FASHION_SPLIT_FRACTIONS,
    SubsetSource,
    make_class_split,
    nested_fractions,
    relabel,
)
from jaxcx.data.errors import DataError
from jaxcx.data.idx import MNIST_MD5, IdxSource, load_mnist, read_idx, write_idx
from jaxcx.data.synthetic import write_mnist_like_idx


@pytest.mark.parametrize("suffix", [".gz", ""])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_idx_round_trip(tmp_path, suffix, dtype):
    array = (np.arange(24) - 5).astype(dtype).reshape(2, 3, 4)
    path = write_idx(tmp_path / f"a-idx3{suffix}", array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)


def test_idx_bad_magic(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    with pytest.raises(DataError, match=r"labels-idx1-ubyte: bad IDX magic 0x89504e47"):
        read_idx(path)


def test_idx_truncated_and_trailing(tmp_path):
    path = write_idx(tmp_path / "x-idx3-ubyte", np.zeros((4, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"x-idx3-ubyte: IDX data truncated: header says shape \(4, 28, 28\) = 3136 bytes, file holds 3036"):
        read_idx(path)
    path.write_bytes(path.read_bytes() + bytes(200))
    with pytest.raises(DataError, match="trailing bytes"):
        read_idx(path)


def test_idx_truncated_gzip(tmp_path):
    path = write_idx(tmp_path / "x.gz", np.ones((50, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match=r"x.gz: corrupt or truncated gzip"):
        read_idx(path)


def test_idx_checksum_of_decompressed_bytes(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    path = write_idx(tmp_path / "l.gz", array)
    raw = gzip.decompress(path.read_bytes())
    read_idx(path, checksum=hashlib.sha256(raw).hexdigest())
    with pytest.raises(DataError, match=r"l.gz: md5 of the decompressed bytes is [0-9a-f]{32}, expected 0{32}"):
        read_idx(path, checksum="0" * 32)


def test_load_mnist_missing_files_says_what_to_put_where(tmp_path):
    with pytest.raises(DataError, match=r"put train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz .* in " + str(tmp_path)):
        load_mnist(tmp_path, "train")


def test_load_mnist_like_synthetic(tmp_path):
    write_mnist_like_idx(tmp_path, n_train=50, n_test=10, gz=False)
    source = load_mnist(tmp_path, "test")
    record = pickle.loads(pickle.dumps(source))[3]
    assert len(source) == 10 and record["image"].shape == (28, 28, 1) and record["image"].dtype == np.uint8
    assert record["id"] == f"{tmp_path.name}/test/00003" and record["path"] == ""


def test_real_mnist_checksums_and_counts(shared_data):
    train = load_mnist(shared_data / "mnist", "train", checksums=MNIST_MD5)
    test = load_mnist(shared_data / "mnist", "test", checksums=MNIST_MD5)
    assert (len(train), len(test)) == (60000, 10000)
    assert train.images.shape == (60000, 28, 28) and test[0]["label"] == 7
    assert np.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# --- class split ------------------------------------------------------------------------


def _labels(n_per_class, seed=0):
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(10), n_per_class))


def test_class_split_balanced_sizes_and_relabel():
    train_labels, test_labels = _labels(60), _labels(10, seed=1)
    split = make_class_split(train_labels, test_labels, FMNIST2_CLASSES, train_size=250, val_size=50, seed=1)
    assert [len(split[k]) for k in ("train", "val", "test")] == [250, 50, 50]
    assert not set(split["train"]) & set(split["val"])
    for part, labels in (("train", train_labels), ("val", train_labels), ("test", test_labels)):
        counts = np.bincount(relabel(labels[split[part]], FMNIST2_CLASSES), minlength=5)
        assert len(set(counts)) == 1
    again = make_class_split(train_labels, test_labels, FMNIST2_CLASSES, train_size=250, val_size=50, seed=1)
    np.testing.assert_array_equal(again["train"], split["train"])
    with pytest.raises(DataError, match="class 0 has 60 training examples, 70 needed"):
        make_class_split(train_labels, test_labels, FMNIST1_CLASSES, train_size=300, val_size=50)


def test_nested_fractions_are_balanced_subsets():
    train_labels = _labels(100)
    split = make_class_split(train_labels, _labels(5), FMNIST1_CLASSES, train_size=400, val_size=100)
    subsets = nested_fractions(split["train"], train_labels[split["train"]], FASHION_SPLIT_FRACTIONS, seed=2)
    sizes = [len(subsets[f]) for f in FASHION_SPLIT_FRACTIONS]
    assert sizes == [int(round(f * 400)) for f in FASHION_SPLIT_FRACTIONS]
    for small, large in zip(FASHION_SPLIT_FRACTIONS, FASHION_SPLIT_FRACTIONS[1:]):
        assert set(subsets[small]) <= set(subsets[large])
    assert set(subsets[1.0]) == set(split["train"])
    assert set(np.bincount(train_labels[subsets[0.05]])[list(FMNIST1_CLASSES)]) == {4}


def test_subset_source_relabels():
    train_labels = _labels(3)
    images = np.zeros((30, 28, 28), np.uint8)
    indices = np.flatnonzero(train_labels == 8)
    source = SubsetSource(IdxSource(images, train_labels), indices, FMNIST1_CLASSES)
    assert len(source) == 3 and {source[i]["label"] for i in range(3)} == {4}


def test_relabel_maps_by_position_and_names_labels_outside():
    mapped = relabel(np.array([8, 0, 4, 5, 1], np.uint8), FMNIST1_CLASSES)
    np.testing.assert_array_equal(mapped, [4, 0, 2, 3, 1])
    assert mapped.dtype == np.int32
    assert relabel(np.array([], np.uint8), FMNIST1_CLASSES).shape == (0,)
    with pytest.raises(DataError) as info:
        relabel(np.array([0, 2, 9, 2]), FMNIST1_CLASSES)
    assert str(info.value) == "labels outside classes (0, 1, 4, 5, 8): [2 9]"


def test_class_split_defaults_are_the_notebooks_25000_5000_seed_0():
    train_labels, test_labels = _labels(6000), _labels(1000, seed=1)
    split = make_class_split(train_labels, test_labels)
    assert [len(split[k]) for k in ("train", "val", "test")] == [25000, 5000, 5000]
    seeded = make_class_split(train_labels, test_labels, seed=0)
    assert all(np.array_equal(split[k], seeded[k]) for k in split)


def test_class_split_balanced_remainders_go_to_the_lowest_classes_and_test_size():
    train_labels, test_labels = _labels(80), _labels(10, seed=1)
    split = make_class_split(train_labels, test_labels, FMNIST1_CLASSES, train_size=253,
                             val_size=52, test_size=47, seed=3)
    for part, labels, expected in (("train", train_labels, [51, 51, 51, 50, 50]),
                                   ("val", train_labels, [11, 11, 10, 10, 10]),
                                   ("test", test_labels, [10, 10, 9, 9, 9])):
        counts = np.bincount(relabel(labels[split[part]], FMNIST1_CLASSES), minlength=5)
        assert counts.tolist() == expected
    full = make_class_split(train_labels, test_labels, FMNIST1_CLASSES, train_size=10,
                            val_size=5, test_size=50)  # every test example of the classes
    np.testing.assert_array_equal(full["test"], np.flatnonzero(np.isin(test_labels, FMNIST1_CLASSES)))
    with pytest.raises(DataError) as info:
        make_class_split(train_labels, test_labels, FMNIST1_CLASSES, train_size=10, val_size=5,
                         test_size=51)
    assert str(info.value) == "test classes too small for 51 balanced examples: [(0, 10)]"
    with pytest.raises(DataError) as info:
        make_class_split(train_labels, test_labels, FMNIST1_CLASSES, train_size=400, val_size=1)
    assert str(info.value) == ("class 0 has 80 training examples, 81 needed for a balanced "
                               "400/1 split; lower the sizes or pass balanced=False")


def test_class_split_unbalanced_is_a_random_split_of_the_pool():
    train_labels, test_labels = _labels(20), _labels(10, seed=1)
    pool = np.flatnonzero(np.isin(train_labels, FMNIST2_CLASSES))  # 100 examples
    split = make_class_split(train_labels, test_labels, FMNIST2_CLASSES, train_size=70,
                             val_size=30, balanced=False, test_size=17)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (70, 30, 17)
    assert sorted(np.r_[split["train"], split["val"]]) == pool.tolist()
    assert set(split["test"]) < set(np.flatnonzero(np.isin(test_labels, FMNIST2_CLASSES)))
    assert np.all(np.diff(split["test"]) > 0)
    with pytest.raises(DataError) as info:
        make_class_split(train_labels, test_labels, FMNIST2_CLASSES, train_size=71,
                         val_size=30, balanced=False)
    assert str(info.value) == "100 training examples of (2, 3, 6, 7, 9), 101 requested"


def test_nested_fractions_unbalanced_default_seed_and_bad_arguments():
    indices, labels = np.arange(100, 140), np.repeat([0, 1], 20)
    subsets = nested_fractions(indices, labels, (0.25, 0.5, 1.0), balanced=False)
    assert [len(subsets[f]) for f in (0.25, 0.5, 1.0)] == [10, 20, 40]
    assert set(subsets[0.25]) <= set(subsets[0.5]) <= set(subsets[1.0]) == set(indices)
    again = nested_fractions(indices, labels, (0.25, 0.5, 1.0), balanced=False, seed=0)
    assert all(np.array_equal(subsets[f], again[f]) for f in subsets)
    with pytest.raises(ValueError, match=r"^40 indices but 39 labels$"):
        nested_fractions(indices, labels[1:])
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match=rf"^fractions must be in \(0, 1\], got \[{bad}\]$"):
            nested_fractions(indices, labels, (0.5, bad))


def test_subset_source_keeps_labels_without_classes():
    train_labels = _labels(3)
    images = np.zeros((30, 28, 28), np.uint8)
    source = SubsetSource(IdxSource(images, train_labels), np.array([4, 7], np.int32))
    assert source.classes is None and source.indices.dtype == np.int64
    assert [source[i]["label"] for i in range(2)] == train_labels[[4, 7]].tolist()
    assert SubsetSource(IdxSource(images, train_labels), [4], FMNIST1_CLASSES).classes == FMNIST1_CLASSES
