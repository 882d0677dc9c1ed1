"""Images listed in a label CSV: encodings, bad rows all named at once, or skipped and listed."""

import numpy as np
import pytest
from PIL import Image

from jaxcx.data.errors import DataError
from jaxcx.data.label_csv import read_label_csv


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
