"""CheXpert CSV: validation, the CheXpert notebook's cleaning, uncertain-label policies,
patient split.

CSV columns: `Path, Sex, Age, Frontal/Lateral, AP/PA` and 14 findings valued 1
(positive), 0 (negative), -1 (uncertain) or blank (not mentioned). The CheXpert
notebook keeps frontal AP/PA views of each patient's first 4 studies and drops `No
Finding` and `Support Devices`, leaving 12 binary labels (uncertain and blank count as
0). The CSV may be gzipped (`.csv.gz`).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import warnings
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Literal

import numpy as np

from jaxcx.data.csv_table import open_table
from jaxcx.data.errors import BadInputLog, DataError, OnBadInput
from jaxcx.data.imageio import decode_image

CHEXPERT_FINDINGS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity",
    "Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax",
    "Pleural Effusion", "Pleural Other", "Fracture", "Support Devices",
)
# The 12 labels the CheXpert notebook trains on: every finding but these two.
CHEXPERT_NOTEBOOK_LABELS = tuple(f for f in CHEXPERT_FINDINGS if f not in ("No Finding", "Support Devices"))
COMPETITION_LABELS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
METADATA_COLUMNS = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")
REQUIRED_COLUMNS = METADATA_COLUMNS + CHEXPERT_FINDINGS

FINDING_VALUES = {"": np.nan, "1": 1.0, "1.0": 1.0, "0": 0.0, "0.0": 0.0, "-1": -1.0, "-1.0": -1.0}
SEX_VALUES = ("Male", "Female", "Unknown", "")
VIEW_VALUES = ("Frontal", "Lateral")
PROJECTION_VALUES = ("AP", "PA", "LL", "RL", "")
FRONTAL_PROJECTIONS = ("AP", "PA")
PATH_PATTERN = re.compile(r"patient(\d+)/study(\d+)/view(\d+)_(frontal|lateral)\.(jpe?g|png)$", re.I)

UncertainPolicy = Literal["zeros", "ones", "ignore"]
UNCERTAIN_POLICIES = ("zeros", "ones", "ignore")

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ChexpertRow:
    """One validated CSV row; `findings` holds the 14 raw values (nan = blank)."""

    line: int
    path: str
    patient: int
    study: int
    view: int
    frontal: bool
    sex: str
    age: int
    projection: str
    findings: tuple[float, ...]

    @property
    def image_id(self) -> str:
        return f"patient{self.patient:05d}/study{self.study}/view{self.view}"


def _parse_row(values: dict, line: int, where: str) -> ChexpertRow:
    def bad(column: str, problem: str) -> DataError:
        return DataError(f"{where}: line {line}, column {column!r}: {problem}")

    if None in values:
        raise DataError(f"{where}: line {line}: more fields than the header's {len(REQUIRED_COLUMNS)}+")
    short = [c for c in REQUIRED_COLUMNS if values.get(c) is None]
    if short:
        raise bad(short[0], "missing value (row has fewer fields than the header)")
    raw_path = values["Path"].strip()
    posix = PurePosixPath(raw_path.replace("\\", "/"))
    match = PATH_PATTERN.search(posix.as_posix())
    if match is None or posix.is_absolute() or ".." in posix.parts:
        raise bad(
            "Path",
            f"{raw_path!r} is not a relative path like "
            "'CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg'",
        )
    view = values["Frontal/Lateral"].strip()
    if view not in VIEW_VALUES:
        raise bad("Frontal/Lateral", f"unknown value {view!r} (expected one of {VIEW_VALUES})")
    sex = values["Sex"].strip()
    if sex not in SEX_VALUES:
        raise bad("Sex", f"unknown value {sex!r} (expected one of {SEX_VALUES})")
    projection = values["AP/PA"].strip()
    if projection not in PROJECTION_VALUES:
        raise bad("AP/PA", f"unknown value {projection!r} (expected one of {PROJECTION_VALUES})")
    age_text = values["Age"].strip()
    try:
        age = int(float(age_text)) if age_text else -1
    except ValueError:
        raise bad("Age", f"not a number: {age_text!r}") from None
    findings = []
    for column in CHEXPERT_FINDINGS:
        text = values[column].strip()
        if text not in FINDING_VALUES:
            raise bad(column, f"unknown value {text!r} (expected 1, 0, -1 or blank)")
        findings.append(FINDING_VALUES[text])
    return ChexpertRow(
        line=line,
        path=posix.as_posix(),
        patient=int(match.group(1)),
        study=int(match.group(2)),
        view=int(match.group(3)),
        frontal=view == "Frontal",
        sex=sex,
        age=age,
        projection=projection,
        findings=tuple(findings),
    )


def read_chexpert_csv(
    csv_path: str | Path,
    *,
    on_bad_input: OnBadInput = "raise",
    encoding: str = "utf-8",
) -> tuple[list[ChexpertRow], BadInputLog]:
    """Parses and validates every row; returns the good rows and the log of bad ones.

    A missing column or undecodable file always raises. A bad row (unknown value, bad
    path, wrong field count) raises `DataError` naming file, line and column, or is
    skipped and listed under 'skip'.
    """
    csv_path = Path(csv_path)
    reader = open_table(csv_path, REQUIRED_COLUMNS, encoding=encoding, what="CheXpert CSV")
    log = BadInputLog(on_bad_input)
    rows = []
    for values in reader:
        line = reader.line_num
        try:
            row = _parse_row(values, line, str(csv_path))
        except DataError as error:
            log.report(f"{csv_path}:line {line}", error)
            continue
        rows.append(row)
    log.warn_if_any(str(csv_path))
    return rows, log


def drop_missing_images(
    rows: Sequence[ChexpertRow], image_root: str | Path, log: BadInputLog, csv_path: str | Path
) -> list[ChexpertRow]:
    """Rows whose image exists under `image_root`; others go through `log` (raise or skip)."""
    present = []
    for row in rows:
        image = Path(image_root) / row.path
        if image.is_file():
            present.append(row)
        else:
            log.report(
                f"{csv_path}:line {row.line}",
                DataError(f"{csv_path}: line {row.line}, column 'Path': image file not found: {image}"),
            )
    if len(present) < len(rows):
        logger.warning("%s: skipped %d row(s) whose image is missing", csv_path, len(rows) - len(present))
    return present


def default_image_root(csv_path: str | Path, rows: Sequence[ChexpertRow]) -> Path:
    """The folder CSV paths are relative to: the CSV's parent, or its grandparent when
    paths start with the CSV folder's name (`CheXpert-v1.0-small/train/...`)."""
    folder = Path(csv_path).parent
    if rows and PurePosixPath(rows[0].path).parts[0] == folder.name:
        return folder.parent
    return folder


def clean_rows(
    rows: Sequence[ChexpertRow], *, frontal_only: bool = True, max_studies: int | None = 4,
    projections: Sequence[str] | None = FRONTAL_PROJECTIONS,
) -> list[ChexpertRow]:
    """The CheXpert notebook's filter: frontal views only, taken AP or PA (`projections`;
    None keeps all, LL and RL included), studies numbered up to `max_studies`. On the
    CheXpert train CSV this keeps 131,748 of 223,414 rows, the notebook's count."""
    return [
        row
        for row in rows
        if (row.frontal or not frontal_only)
        and (projections is None or row.projection in projections)
        and (max_studies is None or row.study <= max_studies)
    ]


def label_arrays(
    rows: Sequence[ChexpertRow],
    label_names: Sequence[str] = CHEXPERT_NOTEBOOK_LABELS,
    uncertain: UncertainPolicy = "zeros",
) -> tuple[np.ndarray, np.ndarray]:
    """Binary labels and masks, float32 [N, L]: positive 1, negative and blank 0;
    uncertain (-1) becomes 0 ('zeros', as the CheXpert notebook does), 1 ('ones') or
    masked out ('ignore')."""
    unknown = [name for name in label_names if name not in CHEXPERT_FINDINGS]
    if unknown:
        raise ValueError(f"unknown CheXpert labels {unknown}; valid: {CHEXPERT_FINDINGS}")
    columns = [CHEXPERT_FINDINGS.index(name) for name in label_names]
    raw = np.asarray([[row.findings[c] for c in columns] for row in rows], np.float32)
    return apply_uncertain_policy(raw.reshape(len(rows), len(columns)), uncertain)


def apply_uncertain_policy(raw: np.ndarray, policy: UncertainPolicy
                           ) -> tuple[np.ndarray, np.ndarray]:
    """float32 labels and masks [N, L] from values 1 (positive), 0 or nan (negative, not
    mentioned) and -1 (uncertain): uncertain becomes 0 ('zeros'), 1 ('ones') or is
    masked out ('ignore')."""
    if policy not in UNCERTAIN_POLICIES:
        raise ValueError(f"uncertain must be one of {UNCERTAIN_POLICIES}, got {policy!r}")
    raw = np.asarray(raw, np.float32)
    labels = (raw == 1).astype(np.float32)
    if policy == "ones":
        labels[raw == -1] = 1.0
    mask = np.ones_like(labels)
    if policy == "ignore":
        mask[raw == -1] = 0.0
    return labels, mask


def random_subset(rows: Sequence[ChexpertRow], n: int, seed: int = 0) -> list[ChexpertRow]:
    """`n` rows drawn without replacement (file order kept); all rows when `n >= len`."""
    if n >= len(rows):
        return list(rows)
    chosen = np.sort(np.random.default_rng(seed).choice(len(rows), size=n, replace=False))
    return [rows[i] for i in chosen]


def patient_split(
    rows: Sequence[ChexpertRow], val_fraction: float = 0.2, seed: int = 0
) -> tuple[list[ChexpertRow], list[ChexpertRow]]:
    """Train/val split by patient (no patient in both); val gets about `val_fraction` of rows."""
    patients = np.unique([row.patient for row in rows])
    order = np.random.default_rng(seed).permutation(patients)
    counts = {p: 0 for p in patients.tolist()}
    for row in rows:
        counts[row.patient] += 1
    target = round(val_fraction * len(rows))
    val_patients, taken = set(), 0
    for patient in order.tolist():
        if taken >= target:
            break
        val_patients.add(patient)
        taken += counts[patient]
    train = [row for row in rows if row.patient not in val_patients]
    val = [row for row in rows if row.patient in val_patients]
    return train, val


def patient_splits(rows: Sequence, val_fraction: float, test_fraction: float,
                   seed: int) -> dict[str, list]:
    """{'train', 'val', 'test'} by patient (rows with a `patient` attribute): about
    `test_fraction` of the rows to test, then `val_fraction` of all rows to val."""
    if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
        raise DataError(f"data.val_fraction {val_fraction} + data.test_fraction "
                        f"{test_fraction} must be in [0, 1)")
    rest, test = patient_split(rows, test_fraction, seed)
    train, val = patient_split(rest, val_fraction / (1 - test_fraction), seed + 1)
    return {"train": train, "val": val, "test": test}


def check_balance(
    train_labels: np.ndarray,
    val_labels: np.ndarray,
    label_names: Sequence[str] = CHEXPERT_NOTEBOOK_LABELS,
    threshold: float = 0.02,
) -> dict[str, tuple[float, float]]:
    """The CheXpert notebook's check: labels whose positive rate differs by more than
    `threshold` between the splits, as {name: (train_rate, val_rate)}; warns listing them."""
    train_rates = np.asarray(train_labels).mean(axis=0)
    val_rates = np.asarray(val_labels).mean(axis=0)
    imbalanced = {
        name: (float(t), float(v))
        for name, t, v in zip(label_names, train_rates, val_rates)
        if abs(t - v) > threshold
    }
    if imbalanced:
        listing = ", ".join(f"{n} {t:.1%} vs {v:.1%}" for n, (t, v) in imbalanced.items())
        warnings.warn(
            f"train/val positive rates differ by more than {threshold:.0%} for: {listing}",
            stacklevel=2,
        )
    return imbalanced


class ChexpertSource:
    """Records `{'image', 'label' float32 (L,), 'label_mask' float32 (L,), 'id', 'path'}`."""

    def __init__(
        self,
        rows: Sequence[ChexpertRow],
        image_root: str | Path,
        *,
        label_names: Sequence[str] = CHEXPERT_NOTEBOOK_LABELS,
        uncertain: UncertainPolicy = "zeros",
        decode: bool = True,
    ):
        self.image_root = str(image_root)
        self.paths = [str(Path(image_root) / row.path) for row in rows]
        self.ids = [row.image_id for row in rows]
        self.patients = np.asarray([row.patient for row in rows], dtype=np.int64)
        self.label_names = tuple(label_names)
        self.labels, self.label_masks = label_arrays(rows, label_names, uncertain)
        self.decode = decode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        record = {
            "label": self.labels[index],
            "label_mask": self.label_masks[index],
            "id": self.ids[index],
            "path": self.paths[index],
        }
        if self.decode:
            record["image"] = decode_image(self.paths[index])
        return record


def load_chexpert(
    csv_path: str | Path,
    *,
    image_root: str | Path | None = None,
    frontal_only: bool = True,
    max_studies: int | None = 4,
    projections: Sequence[str] | None = FRONTAL_PROJECTIONS,
    subset_size: int | None = None,
    val_fraction: float = 0.2,
    label_names: Sequence[str] = CHEXPERT_NOTEBOOK_LABELS,
    uncertain: UncertainPolicy = "zeros",
    balance_threshold: float = 0.02,
    seed: int = 0,
    on_bad_input: OnBadInput = "raise",
    encoding: str = "utf-8",
    check_files: bool = False,
) -> tuple[dict[str, ChexpertSource], BadInputLog]:
    """The CheXpert notebook's pipeline: read, clean, optional random subset, patient split,
    balance check.

    Returns ({'train', 'val'} sources, bad-input log).
    """
    csv_path = Path(csv_path)
    rows, log = read_chexpert_csv(csv_path, on_bad_input=on_bad_input, encoding=encoding)
    root = Path(image_root) if image_root is not None else default_image_root(csv_path, rows)
    if check_files:
        rows = drop_missing_images(rows, root, log, csv_path)
    rows = clean_rows(rows, frontal_only=frontal_only, max_studies=max_studies,
                      projections=projections)
    if subset_size is not None:
        rows = random_subset(rows, subset_size, seed)
    train_rows, val_rows = patient_split(rows, val_fraction, seed)
    sources = {
        name: ChexpertSource(split_rows, root, label_names=label_names, uncertain=uncertain)
        for name, split_rows in (("train", train_rows), ("val", val_rows))
    }
    check_balance(sources["train"].labels, sources["val"].labels, label_names, balance_threshold)
    logger.info("CheXpert %s: %d train / %d val rows", csv_path, len(train_rows), len(val_rows))
    return sources, log
