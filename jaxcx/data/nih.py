"""NIH ChestX-ray14: the `Data_Entry_2017*.csv` label table, its 14 findings, the official
(CheXNet) split lists and patient-level splits.

`Finding Labels` holds the findings of an image joined by `|`, or `No Finding`. The
table lists all 112,120 images; a folder holding only some of them (the shared
1,000-image sample) uses the rows whose image it holds, and says how many it left out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxcx.data.chexpert import patient_splits
from jaxcx.data.csv_table import open_table
from jaxcx.data.errors import BadInputLog, DataError, OnBadInput

NIH_FINDINGS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening",
    "Hernia",
)
NO_FINDING = "No Finding"
REQUIRED_COLUMNS = ("Image Index", "Finding Labels", "Patient ID", "View Position")
SPLIT_LISTS = {"train": "train_list.txt", "val": "val_list.txt", "test": "test_list.txt"}
NIH_SPLITS = ("official", "patient")


@dataclasses.dataclass(frozen=True)
class NihRow:
    """One label-table row: `labels` is 0/1 per finding of `NIH_FINDINGS`."""

    line: int
    image: str
    patient: int
    view: str
    labels: tuple[int, ...]


def parse_findings(text: str) -> tuple[int, ...]:
    """0/1 per finding of `NIH_FINDINGS` from a `Finding Labels` cell."""
    names = [name.strip() for name in text.split("|")]
    if names == [NO_FINDING]:
        return (0,) * len(NIH_FINDINGS)
    unknown = [name for name in names if name not in NIH_FINDINGS]
    if unknown:
        raise ValueError(f"unknown finding(s) {unknown} (valid: {', '.join(NIH_FINDINGS)}, "
                         f"or '{NO_FINDING}' alone)")
    return tuple(int(name in names) for name in NIH_FINDINGS)


def read_nih_entries(csv_path: str | Path, *, encoding: str = "utf-8",
                     on_bad_input: OnBadInput = "raise") -> tuple[list[NihRow], BadInputLog]:
    """Every row of the label table; a bad row (unknown finding, patient id that is no
    number, empty image name) raises naming its line, or is skipped and listed."""
    csv_path = Path(csv_path)
    reader = open_table(csv_path, REQUIRED_COLUMNS, encoding=encoding,
                        what="NIH label table (data.csv)")
    log = BadInputLog(on_bad_input)
    rows = []
    for values in reader:
        line = reader.line_num
        try:
            image = (values["Image Index"] or "").strip()
            if not image:
                raise ValueError("empty 'Image Index'")
            try:
                patient = int(values["Patient ID"])
            except (TypeError, ValueError):
                raise ValueError(f"'Patient ID' {values['Patient ID']!r} is not a number") from None
            labels = parse_findings(values["Finding Labels"] or "")
        except ValueError as error:
            log.report(f"{csv_path}:line {line}", DataError(f"{csv_path}: line {line}: {error}"))
            continue
        rows.append(NihRow(line, image, patient, (values["View Position"] or "").strip(), labels))
    log.warn_if_any(str(csv_path))
    return rows, log


def read_split_lists(folder: str | Path) -> dict[str, str]:
    """{image name: split} from `train_list.txt`, `val_list.txt`, `test_list.txt` (one
    image per line, optionally followed by its labels); an image in two lists is an error."""
    folder = Path(folder)
    split_of: dict[str, str] = {}
    for split, name in SPLIT_LISTS.items():
        path = folder / name
        if not path.is_file():
            raise DataError(f"split list {path} not found; data.split='official' needs "
                            f"{', '.join(SPLIT_LISTS.values())} in {folder}")
        for line in path.read_text().splitlines():
            image = line.split()[0] if line.strip() else ""
            if not image:
                continue
            if image in split_of:
                raise DataError(f"{image} is in both {SPLIT_LISTS[split_of[image]]} and {name}")
            split_of[image] = split
    return split_of


def present_rows(rows: Sequence[NihRow], image_dir: Path, log: BadInputLog) -> list[NihRow]:
    """The rows whose image is in `image_dir`; image files without a row are listed as
    ignored. Rows without an image are expected (the table covers all of ChestX-ray14)."""
    if not image_dir.is_dir():
        raise DataError(f"image folder {image_dir} not found; expected ROOT/images/*.png")
    files = {path.name for path in image_dir.iterdir() if path.is_file()}
    kept = [row for row in rows if row.image in files]
    for name in sorted(files - {row.image for row in rows}):
        log.ignore(str(image_dir / name), "no row in the label table")
    if not kept:
        raise DataError(f"none of the {len(rows)} label-table rows has its image in {image_dir}")
    return kept


def split_rows(rows: Sequence[NihRow], split: str, *, lists_dir: Path | None = None,
               val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
               log: BadInputLog | None = None) -> dict[str, list[NihRow]]:
    """{'train', 'val', 'test'} rows: by the official lists (`split='official'`; rows in
    no list are listed in `log` as ignored) or by patient (`'patient'`: no patient in two
    splits, fractions of the rows, deterministic in `seed`)."""
    if split == "official":
        split_of = read_split_lists(lists_dir)
        out: dict[str, list[NihRow]] = {name: [] for name in SPLIT_LISTS}
        for row in rows:
            if row.image in split_of:
                out[split_of[row.image]].append(row)
            elif log is not None:
                log.ignore(row.image, "in none of the split lists")
        return out
    if split == "patient":
        return patient_splits(rows, val_fraction, test_fraction, seed)
    raise DataError(f"data.split must be one of {NIH_SPLITS}, got {split!r}")


def label_matrix(rows: Sequence[NihRow], label_names: Sequence[str] = NIH_FINDINGS) -> np.ndarray:
    """float32 [N, L] 0/1 labels of the named findings."""
    unknown = [name for name in label_names if name not in NIH_FINDINGS]
    if unknown:
        raise DataError(f"unknown NIH findings {unknown} in data.labels; valid: {NIH_FINDINGS}")
    columns = [NIH_FINDINGS.index(name) for name in label_names]
    all_labels = np.asarray([row.labels for row in rows], np.float32).reshape(len(rows), -1)
    return all_labels[:, columns] if len(rows) else np.zeros((0, len(columns)), np.float32)
