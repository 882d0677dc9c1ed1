"""CheXpert CSV validation, the CheXpert notebook's cleaning, uncertain policies and
patient split."""

import csv
import pickle

import numpy as np
import pytest

from jaxcx.data.chexpert import (
    CHEXPERT_FINDINGS,
    CHEXPERT_NOTEBOOK_LABELS,
    REQUIRED_COLUMNS,
    check_balance,
    clean_rows,
    label_arrays,
    load_chexpert,
    patient_split,
    random_subset,
    read_chexpert_csv,
)
from jaxcx.data.errors import DataError
from jaxcx.data.synthetic import write_chexpert_like

FINDINGS_OK = ["", "1.0", "0.0", "-1.0"] + [""] * 10


def _write_csv(path, rows, header=REQUIRED_COLUMNS, encoding="utf-8"):
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _row(patient=1, study=1, view="frontal", findings=FINDINGS_OK, sex="Female"):
    rel = f"CheXpert-v1.0-small/train/patient{patient:05d}/study{study}/view1_{view}.jpg"
    return [rel, sex, "61", view.capitalize(), "AP" if view == "frontal" else "LL", *findings]


@pytest.fixture(scope="module")
def chexpert_csv(tmp_path_factory):
    return write_chexpert_like(tmp_path_factory.mktemp("chexpert"), n_patients=30, seed=3)


def test_read_parses_ids_and_values(tmp_path):
    path = _write_csv(tmp_path / "train.csv", [_row(patient=42, study=3)])
    [row], log = read_chexpert_csv(path)
    assert (row.patient, row.study, row.view, row.frontal, row.line) == (42, 3, 1, True, 2)
    assert row.image_id == "patient00042/study3/view1" and log.count == 0
    assert row.findings[1:4] == (1.0, 0.0, -1.0) and np.isnan(row.findings[0])


def test_missing_column_lists_found_columns(tmp_path):
    header = [c for c in REQUIRED_COLUMNS if c != "Edema"]
    path = _write_csv(tmp_path / "train.csv", [], header=header)
    with pytest.raises(DataError, match=r"train.csv: missing column\(s\) \['Edema'\]; columns found: \['Path', "):
        read_chexpert_csv(path)


@pytest.mark.parametrize("value", ["2", "x", "0.5"])
def test_unknown_value_names_line_and_column(tmp_path, value):
    findings = list(FINDINGS_OK)
    findings[CHEXPERT_FINDINGS.index("Pneumonia")] = value
    path = _write_csv(tmp_path / "train.csv", [_row(), _row(patient=2, findings=findings)])
    with pytest.raises(DataError, match=rf"train.csv: line 3, column 'Pneumonia': unknown value '{value}' \(expected 1, 0, -1 or blank\)"):
        read_chexpert_csv(path)


@pytest.mark.parametrize(
    "bad_path", ["images/img001.jpg", "/abs/patient00001/study1/view1_frontal.jpg", "../patient00001/study1/view1_frontal.jpg", ""]
)
def test_bad_path(tmp_path, bad_path):
    row = _row()
    row[0] = bad_path
    path = _write_csv(tmp_path / "train.csv", [row])
    with pytest.raises(DataError, match=r"line 2, column 'Path': .* is not a relative path like"):
        read_chexpert_csv(path)


def test_short_row_and_bad_view(tmp_path):
    path = _write_csv(tmp_path / "train.csv", [_row()[:8]])
    with pytest.raises(DataError, match=r"line 2, column '.*': missing value \(row has fewer fields"):
        read_chexpert_csv(path)
    row = _row()
    row[3] = "Oblique"
    path = _write_csv(tmp_path / "train.csv", [row])
    with pytest.raises(DataError, match=r"line 2, column 'Frontal/Lateral': unknown value 'Oblique'"):
        read_chexpert_csv(path)


def test_latin1_csv_clear_error_then_explicit_encoding(tmp_path):
    path = _write_csv(tmp_path / "train.csv", [_row(), _row(patient=2, sex="Female")], encoding="latin-1")
    text = path.read_bytes().replace(b"CheXpert-v1.0-small/train/patient00002", "Chexpért-v1.0-small/train/patient00002".encode("latin-1"))
    path.write_bytes(text)
    with pytest.raises(DataError, match=r"train.csv: line 3 is not valid utf-8 \(byte 0xe9.*pass encoding='latin-1'"):
        read_chexpert_csv(path)
    rows, _ = read_chexpert_csv(path, encoding="latin-1")
    assert [row.patient for row in rows] == [1, 2]


def test_skip_mode_counts_and_lists_bad_rows(tmp_path):
    findings = list(FINDINGS_OK)
    findings[5] = "2"
    bad_path = _row(patient=3)
    bad_path[0] = "nowhere.jpg"
    path = _write_csv(tmp_path / "train.csv", [_row(), _row(patient=2, findings=findings), bad_path, _row(patient=4)])
    rows, log = read_chexpert_csv(path, on_bad_input="skip")
    assert [row.patient for row in rows] == [1, 4]
    assert log.count == 2
    assert [item.item for item in log.items] == [f"{path}:line 3", f"{path}:line 4"]
    assert "column 'Edema'" in log.items[0].reason and "column 'Path'" in log.items[1].reason
    assert "line 3" in log.write(tmp_path / "run").read_text()


def test_clean_rows_frontal_first_four_studies(tmp_path):
    rows = [_row(study=s) for s in range(1, 7)] + [_row(study=1, view="lateral")]
    path = _write_csv(tmp_path / "train.csv", rows)
    cleaned = clean_rows(read_chexpert_csv(path)[0])
    assert [row.study for row in cleaned] == [1, 2, 3, 4] and all(row.frontal for row in cleaned)


def test_clean_rows_drops_frontal_views_not_taken_ap_or_pa(tmp_path):
    rows = [_row(patient=p) for p in range(1, 5)]
    for row, projection in zip(rows, ("AP", "PA", "LL", "RL")):
        row[4] = projection
    path = _write_csv(tmp_path / "train.csv", rows)
    kept = clean_rows(read_chexpert_csv(path)[0])
    assert [row.projection for row in kept] == ["AP", "PA"]
    assert len(clean_rows(read_chexpert_csv(path)[0], projections=None)) == 4


def test_real_chexpert_csv_cleans_to_the_notebooks_row_count(shared_data):
    """The CheXpert notebook's cleaning of the real train CSV keeps 131,748 rows."""
    path = shared_data / "chexpert_labels" / "chexpert_train.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} not found (the shared CheXpert label table)")
    rows, log = read_chexpert_csv(path)
    assert len(rows) == 223_414 and log.count == 0
    assert len(clean_rows(rows)) == 131_748


def test_uncertain_policies(tmp_path):
    path = _write_csv(tmp_path / "train.csv", [_row()])
    rows, _ = read_chexpert_csv(path)
    # CHEXPERT_NOTEBOOK_LABELS[0:3] = Enlarged Cardiomediastinum (1), Cardiomegaly (0), Lung Opacity (-1)
    zeros, mask = label_arrays(rows, uncertain="zeros")
    assert zeros.shape == (1, 12) and zeros.dtype == np.float32
    assert zeros[0, :3].tolist() == [1, 0, 0] and mask.min() == 1
    ones, _ = label_arrays(rows, uncertain="ones")
    assert ones[0, :3].tolist() == [1, 0, 1]
    ignored, mask = label_arrays(rows, uncertain="ignore")
    assert ignored[0, :3].tolist() == [1, 0, 0] and mask[0, :3].tolist() == [1, 1, 0]


def test_patient_split_no_overlap_and_deterministic(chexpert_csv):
    rows = clean_rows(read_chexpert_csv(chexpert_csv)[0])
    train, val = patient_split(rows, 0.25, seed=5)
    assert len(train) + len(val) == len(rows)
    assert not {r.patient for r in train} & {r.patient for r in val}
    assert abs(len(val) - 0.25 * len(rows)) <= 8
    assert patient_split(rows, 0.25, seed=5) == (train, val)
    subset = random_subset(rows, 10, seed=1)
    assert len(subset) == 10 and subset == random_subset(rows, 10, seed=1)


def test_balance_check_warns_listing_labels():
    train = np.zeros((100, 12), np.float32)
    val = np.zeros((50, 12), np.float32)
    val[:5, 2] = 1  # Lung Opacity: 0% vs 10%
    with pytest.warns(UserWarning, match=r"Lung Opacity 0.0% vs 10.0%"):
        imbalanced = check_balance(train, val, CHEXPERT_NOTEBOOK_LABELS)
    assert list(imbalanced) == ["Lung Opacity"]


def test_load_chexpert_sources(chexpert_csv):
    sources, log = load_chexpert(chexpert_csv, val_fraction=0.3, uncertain="ignore", seed=1, balance_threshold=1.0, check_files=True)
    train = pickle.loads(pickle.dumps(sources["train"]))
    record = train[0]
    assert record["label"].shape == (12,) and record["label"].dtype == np.float32
    assert record["label_mask"].shape == (12,) and record["label_mask"].dtype == np.float32
    assert record["image"].shape == (48, 48, 1) and record["id"].startswith("patient000")
    assert log.count == 0 and set(train.patients).isdisjoint(sources["val"].patients)


def test_load_chexpert_missing_image(chexpert_csv, tmp_path):
    with pytest.raises(DataError, match=r"column 'Path': image file not found"):
        load_chexpert(chexpert_csv, image_root=tmp_path, check_files=True)
