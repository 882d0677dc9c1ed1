"""Multi-label chest X-ray datasets: the NIH ChestX-ray14 table and splits, the `chexpert`
and `nih_chestxray14` bundles, oversampling, positive weights."""

import csv
import gzip

import numpy as np
import pytest
from PIL import Image

from jaxcx.config import load_config, with_overrides
from jaxcx.data.errors import BadInputLog, DataError
from jaxcx.data.nih import (NIH_FINDINGS, parse_findings, read_nih_entries, read_split_lists,
                            split_rows)
from jaxcx.data.registry import build_data
from jaxcx.run import run_config
from tests.conftest import REPO_ROOT

CONFIG = f"{REPO_ROOT}/configs/chest_multilabel.py"
TABLE_HEADER = ["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age",
                "Patient Gender", "View Position"]


def test_finding_labels_split_on_bar():
    labels = parse_findings("Effusion|Infiltration|Pneumonia")
    assert [NIH_FINDINGS[i] for i, v in enumerate(labels) if v] == [
        "Effusion", "Infiltration", "Pneumonia"]
    assert parse_findings("No Finding") == (0,) * 14
    with pytest.raises(ValueError, match=r"unknown finding\(s\) \['Pneumonai'\]"):
        parse_findings("Pneumonai")


def _write_nih(root, rows, lists=None, gz=True):
    """A small NIH-layout folder: images/, the label table, split lists."""
    (root / "images").mkdir(parents=True)
    for name, *_ in rows:
        Image.fromarray(np.random.default_rng(len(name)).integers(0, 255, (40, 40), np.uint8)
                        ).save(root / "images" / name)
    text = "\n".join(",".join(r) for r in [TABLE_HEADER] + [
        [name, findings, "0", patient, "50", "F", "PA"] for name, findings, patient in rows])
    table = root / ("Data_Entry_2017_v2020.csv.gz" if gz else "Data_Entry_2017_v2020.csv")
    table.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    if lists:
        (root / "splits").mkdir()
        for split, names in lists.items():
            (root / "splits" / f"{split}_list.txt").write_text("\n".join(f"{n} 0 1" for n in names))
    return table


def test_bad_table_rows_are_named_by_line(tmp_path):
    table = _write_nih(tmp_path, [("a.png", "Edema", "1"), ("b.png", "Oedema", "2"),
                                  ("c.png", "No Finding", "x")])
    with pytest.raises(DataError, match=r"line 3: unknown finding\(s\) \['Oedema'\]"):
        read_nih_entries(table)
    rows, log = read_nih_entries(table, on_bad_input="skip")
    assert [r.image for r in rows] == ["a.png"] and log.count == 2
    assert "line 4: 'Patient ID' 'x' is not a number" in log.items[1].reason


def test_official_lists_and_patient_split(tmp_path):
    names = [f"{p:08d}_00{k}.png" for p in range(1, 11) for k in range(2)]
    rows_in = [(n, "Edema" if i % 3 == 0 else "No Finding", str(int(n[:8])))
               for i, n in enumerate(names)]
    lists = {"train": names[:12], "val": names[12:16], "test": names[16:19]}  # one in no list
    table = _write_nih(tmp_path, rows_in, lists)
    rows, _ = read_nih_entries(table)
    log = BadInputLog()
    parts = split_rows(rows, "official", lists_dir=tmp_path / "splits", log=log)
    assert {k: len(v) for k, v in parts.items()} == {"train": 12, "val": 4, "test": 3}
    assert [item.item for item in log.ignored()] == [names[19]]
    by_patient = split_rows(rows, "patient", val_fraction=0.2, test_fraction=0.2, seed=3)
    patients = [{r.patient for r in part} for part in by_patient.values()]
    assert sum(len(p) for p in by_patient.values()) == 20
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    assert len(by_patient["test"]) == 4 and len(by_patient["val"]) == 4


def test_image_in_two_split_lists_is_an_error(tmp_path):
    _write_nih(tmp_path, [("a.png", "Edema", "1")], {"train": ["a.png"], "val": ["a.png"],
                                                     "test": []})
    with pytest.raises(DataError, match="a.png is in both train_list.txt and val_list.txt"):
        read_split_lists(tmp_path / "splits")


def _nih_config(root, tmp_path, *changes):
    config = run_config(load_config(f"{CONFIG}:nih", [f"data.root={root}", "data.image_size=16",
                                                      f"data.cache_dir={tmp_path / 'cache'}",
                                                      *changes]))
    return config


def test_nih_bundle_reads_the_rows_whose_image_is_there(tmp_path):
    names = [f"{p:08d}_000.png" for p in range(1, 13)]
    rows_in = [(n, "Edema|Mass" if i < 4 else "No Finding", str(i + 1)) for i, n in enumerate(names)]
    rows_in.append(("99999999_000.png", "Hernia", "99"))  # a table row without its image
    _write_nih(tmp_path / "nih", rows_in, {"train": names[:8], "val": names[8:10],
                                           "test": names[10:] + ["99999999_000.png"]})
    (tmp_path / "nih" / "images" / "99999999_000.png").unlink()
    data = build_data(_nih_config(tmp_path / "nih", tmp_path).data, 0)
    assert (len(data.train), len(data.val), len(data.test)) == (8, 2, 2) and data.multilabel
    assert data.class_names == NIH_FINDINGS and data.input_shape == (16, 16, 1)
    record = data.train[0]
    assert record["label"].shape == (14,) and record["id"] == names[0]
    edema, mass = NIH_FINDINGS.index("Edema"), NIH_FINDINGS.index("Mass")
    assert data.train_labels[:, edema].tolist() == [1] * 4 + [0] * 4
    assert data.train_labels[:, mass].sum() == 4 and data.train_labels.sum() == 8


def test_nih_label_subset_and_oversampling(tmp_path):
    names = [f"{p:08d}_000.png" for p in range(1, 13)]
    rows_in = [(n, "Edema" if i < 2 else "No Finding", str(i + 1)) for i, n in enumerate(names)]
    _write_nih(tmp_path / "nih", rows_in, {"train": names[:8], "val": names[8:10],
                                           "test": names[10:]})
    config = _nih_config(tmp_path / "nih", tmp_path, "data.labels=('Edema','Hernia')",
                         "data.oversample_min_count=5")
    data = build_data(config.data, 0)
    # 2 Edema images are topped up to 5; the 6 negatives are left as they are.
    assert data.class_names == ("Edema", "Hernia") and len(data.train) == 11
    assert data.train_labels[:, 0].sum() == 5 and data.train_labels[:, 1].sum() == 0
    assert data.train.indices[:8].tolist() == list(range(8))
    assert set(data.train.indices[8:].tolist()) <= {0, 1}  # the duplicates are Edema images


def test_real_nih_sample_agrees_with_its_labels_csv(shared_data, tmp_path):
    """The Data_Entry table's `Finding Labels`, split on '|', give the sample's labels.csv
    for every image, and the official lists its 704 / 77 / 219 split."""
    root = shared_data / "nih_chestxray14_sample"
    if not root.is_dir():
        pytest.skip(f"{root} not found (the shared NIH ChestX-ray14 sample)")
    config = _nih_config(root, tmp_path)
    data = build_data(config.data, 0)
    assert (len(data.train), len(data.val), len(data.test)) == (704, 77, 219)
    with (root / "labels.csv").open(newline="") as handle:
        expected = {row["Image Index"]: [int(row[name]) for name in NIH_FINDINGS]
                    for row in csv.DictReader(handle)}
    for source in (data.train, data.val, data.test):
        for record_id, labels in zip(source.ids, source.labels):
            assert labels.tolist() == expected[record_id], record_id
    assert int(sum(s.labels[:, NIH_FINDINGS.index("Pneumonia")].sum()
                   for s in (data.train, data.val, data.test))) == 500


def test_generated_chexpert_bundle_is_split_by_patient(tmp_path):
    config = run_config(load_config(CONFIG, [f"data.cache_dir={tmp_path}", "data.image_size=16",
                                             "data.uncertain=ignore"]))
    data = build_data(config.data, 0)
    patients = [{i.split("/")[0] for i in s.ids} for s in (data.train, data.val, data.test)]
    assert not (patients[0] & patients[1] or patients[0] & patients[2] or patients[1] & patients[2])
    assert data.multilabel and len(data.class_names) == 12
    record = data.train[0]
    assert record["label_mask"].shape == (12,) and record["image"].shape == (16, 16, 1)
    assert (data.train.label_masks == 0).any()  # uncertain labels are masked out
    again = build_data(with_overrides(config, {"data.uncertain": "ones"}).data, 0)
    assert again.train.labels.sum() > data.train.labels.sum()


def _labelled_folder(root, rows, encoding="utf-8"):
    root.mkdir(parents=True)
    for name, *_ in rows:
        if name and not name.startswith("missing"):
            Image.fromarray(np.full((20, 20), len(name), np.uint8)).save(root / name)
    lines = ["path,Edema,Effusion,patient"] + [",".join(r) for r in rows]
    (root / "labels.csv").write_bytes("\n".join(lines).encode(encoding))
    return root / "labels.csv"


def test_multilabel_csv_reads_label_columns_groups_and_encoding(tmp_path):
    rows = [(f"x{k}_é.png", "1" if k % 3 == 0 else "", "-1" if k == 4 else "0", f"p{k // 2}")
            for k in range(20)]
    csv_path = _labelled_folder(tmp_path / "mine", rows, encoding="cp1252")
    changes = [f"data.csv={csv_path}", "data.label_columns=('Edema','Effusion')",
               "data.group_column=patient", "data.image_size=8", "data.uncertain=ignore",
               f"data.cache_dir={tmp_path / 'cache'}"]
    with pytest.raises(DataError, match="data.encoding"):
        build_data(run_config(load_config(f"{CONFIG}:labelled_csv", changes)).data, 0)
    config = run_config(load_config(f"{CONFIG}:labelled_csv", [*changes, "data.encoding=cp1252"]))
    data = build_data(config.data, 0)
    assert data.class_names == ("Edema", "Effusion") and data.multilabel
    sources = (data.train, data.val, data.test)
    assert sum(len(s) for s in sources) == 20
    groups = [{i.split("_")[0][1:] for i in s.ids} for s in sources]
    by_patient = [{int(k) // 2 for k in g} for g in groups]
    assert not (by_patient[0] & by_patient[1] or by_patient[0] & by_patient[2]
                or by_patient[1] & by_patient[2])  # both images of a patient stay together
    every = {i: (l.tolist(), m.tolist()) for s in sources
             for i, l, m in zip(s.ids, s.labels, s.label_masks)}
    assert every["x3_é.png"] == ([1.0, 0.0], [1.0, 1.0])
    assert every["x4_é.png"] == ([0.0, 0.0], [1.0, 0.0])  # uncertain Effusion masked out


def test_multilabel_csv_lists_every_bad_row(tmp_path):
    rows = [("a.png", "1", "0", "p1"), ("missing.png", "0", "0", "p2"),
            ("b.png", "maybe", "0", "p3"), ("a.png", "0", "1", "p4"), ("c.png", "1", "0", "")]
    csv_path = _labelled_folder(tmp_path / "mine", rows)
    config = run_config(load_config(f"{CONFIG}:labelled_csv", [
        f"data.csv={csv_path}", "data.label_columns=('Edema','Effusion')",
        "data.group_column=patient"]))
    with pytest.raises(DataError) as error:
        build_data(config.data, 0)
    message = str(error.value)
    assert "4 bad row(s) of 5" in message
    for line, reason in ((3, "no such image"), (4, "unreadable label value(s) Edema='maybe'"),
                         (5, "listed again (first at line 2)"), (6, "empty 'patient'")):
        assert f"line {line}: " in message and reason in message
