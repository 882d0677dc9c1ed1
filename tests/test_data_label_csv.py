"""Images listed in a label CSV: encodings, bad rows all named at once, or skipped and listed."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxcx.config import load_config
from jaxcx.data.errors import DataError
from jaxcx.data.label_csv import read_label_csv, split_by_class
from jaxcx.data.registry import build_data
from jaxcx.run import train_and_evaluate

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "image_csv.py")


def folder(tmp_path, rows, encoding="utf-8", images=("a.png", "b.png", "ç.png")):
    for name in images:
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / name)
    (tmp_path / "metadata.csv").write_bytes(
        ("file,finding\n" + "".join(f"{f},{lab}\n" for f, lab in rows)).encode(encoding))
    return tmp_path / "metadata.csv"


def test_latin1_file_with_its_encoding(tmp_path):
    csv_path = folder(tmp_path, [("a.png", "Normal"), ("ç.png", "Pneumonía"), ("b.png", "Normal")],
                      encoding="latin-1")
    with pytest.raises(DataError, match="not utf-8 text.*data.encoding.*latin-1"):
        read_label_csv(csv_path, path_column="file", label_column="finding")
    files, names, log = read_label_csv(csv_path, path_column="file", label_column="finding",
                                       encoding="latin-1")
    assert names == ["Normal", "Pneumonía"] and log.count == 0
    assert files == [(str(tmp_path / "a.png"), 0), (str(tmp_path / "ç.png"), 1),
                     (str(tmp_path / "b.png"), 0)]


def test_every_bad_row_is_named_at_once(tmp_path):
    csv_path = folder(tmp_path, [("a.png", "Normal"), ("gone.png", "Normal"), ("b.png", ""),
                                 ("a.png", "Normal"), ("b.png", "Cat")])
    with pytest.raises(DataError) as error:
        read_label_csv(csv_path, path_column="file", label_column="finding",
                       class_names=("Normal", "Pneumonia"))
    message = str(error.value)
    assert "4 bad row(s) of 5" in message
    for expected in ("line 3: gone.png: no such image", "line 4: b.png: empty 'finding'",
                     "line 5: a.png: listed again (first at line 2)",
                     "line 6: b.png: unknown label 'Cat'"):
        assert expected in message


def test_bad_rows_are_skipped_and_listed(tmp_path):
    csv_path = folder(tmp_path, [("a.png", "Normal"), ("gone.png", "Normal"), ("b.png", "Cat")])
    files, names, log = read_label_csv(csv_path, path_column="file", label_column="finding",
                                       class_names=("Normal", "Cat"), on_bad_input="skip")
    assert files == [(str(tmp_path / "a.png"), 0), (str(tmp_path / "b.png"), 1)]
    assert [bad.item for bad in log.items] == [f"{csv_path}:line 3"]


def test_missing_column_lists_the_columns_found(tmp_path):
    csv_path = folder(tmp_path, [("a.png", "Normal")])
    with pytest.raises(DataError, match=r"no column\(s\) \['label'\]; columns found: \['file', 'finding'\]"):
        read_label_csv(csv_path, path_column="file", label_column="label")


def test_split_by_class_is_stratified_and_seeded():
    files = [(f"{k}.png", k % 3 == 0) for k in range(60)]  # 20 of class 1, 40 of class 0
    split = split_by_class(files, 0.1, 0.2, seed=3)
    counts = {name: sum(label for _, label in part) for name, part in split.items()}
    assert {name: len(part) for name, part in split.items()} == {"train": 42, "val": 6, "test": 12}
    assert counts == {"train": 14, "val": 2, "test": 4}
    assert sorted(f for part in split.values() for f in part) == sorted(files)
    assert split_by_class(files, 0.1, 0.2, seed=3) == split
    assert split_by_class(files, 0.1, 0.2, seed=4) != split


def test_image_csv_dataset_trains_from_a_latin1_metadata_file(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for k in range(40):
        label = ["Normal", "Neumonía"][k % 2]
        image = rng.integers(0, 60, (24, 24)) + (150 if k % 2 else 0)
        Image.fromarray(image.astype(np.uint8)).save(tmp_path / f"x{k:02d}.png")
        rows.append(f"x{k:02d}.png;{label}\n")
    (tmp_path / "metadata.csv").write_bytes(("nombre;clase\n" + "".join(rows)).encode("cp1252"))
    # A semicolon-separated file is not what the reader expects: the error names the columns.
    config = load_config(CONFIG, [f"data.csv={tmp_path / 'metadata.csv'}",
                                  "data.path_column=nombre", "data.label_column=clase",
                                  "data.encoding=cp1252", f"data.cache_dir={tmp_path / 'c'}",
                                  "data.image_size=16", "data.min_per_class=2",
                                  "train.num_epochs=2"])
    with pytest.raises(DataError, match="columns found"):
        build_data(config.data, config.seed)
    (tmp_path / "metadata.csv").write_bytes(("nombre,clase\n" + "".join(rows)).replace(
        ";", ",").encode("cp1252"))
    data = build_data(config.data, config.seed)
    assert data.class_names == ("Neumonía", "Normal")
    assert (len(data.train), len(data.val), len(data.test)) == (32, 4, 4)
    result = train_and_evaluate(config, tmp_path / "run")
    assert result.val_metrics["val/accuracy"] == 1.0  # bright versus dark: easy
