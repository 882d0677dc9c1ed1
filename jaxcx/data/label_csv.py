"""Images listed in a label CSV: a file-name (or path) column and a class column, as in
a folder with a `metadata.csv` beside its images, or one 0/1 column per label
(multi-label).

Every row is checked before anything is returned: a missing image, an empty or unknown
label or a duplicated file is a bad row; under `on_bad_input='raise'` one DataError lists
them all (with their line numbers), under 'skip' they are counted and listed. A file in
another encoding (latin-1, cp1252, ...) is read with `encoding=`.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from jaxcx.data.csv_table import open_table
from jaxcx.data.errors import BadInputLog, DataError, OnBadInput

LabelledFile = tuple[str, int]
ROWS_SHOWN = 20


def _read_rows(csv_path: Path, encoding: str) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with csv_path.open(newline="", encoding=encoding) as handle:
            reader = csv.DictReader(handle)
            return list(reader.fieldnames or []), list(reader)
    except FileNotFoundError as error:
        raise DataError(f"label CSV {csv_path} not found") from error
    except UnicodeDecodeError as error:
        raise DataError(
            f"{csv_path}: not {encoding} text (byte {error.object[error.start]:#04x} at offset "
            f"{error.start}); set data.encoding to the file's encoding, e.g. latin-1 or "
            "cp1252") from error
    except csv.Error as error:
        raise DataError(f"{csv_path}: malformed CSV ({error})") from error


def read_label_csv(csv_path: str | Path, *, path_column: str, label_column: str,
                   image_root: str | Path | None = None, class_names: Sequence[str] = (),
                   encoding: str = "utf-8", on_bad_input: OnBadInput = "raise"
                   ) -> tuple[list[LabelledFile], list[str], BadInputLog]:
    """(path, class index) per good row, the class names and the log of bad rows.

    Paths are relative to `image_root` (default: the CSV's folder). Classes are
    `class_names` in that order, or the sorted distinct labels of the file; with
    `class_names` given, any other label is a bad row.
    """
    csv_path = Path(csv_path)
    root = Path(image_root) if image_root else csv_path.parent
    columns, rows = _read_rows(csv_path, encoding)
    missing = [c for c in (path_column, label_column) if c not in columns]
    if missing:
        raise DataError(f"{csv_path}: no column(s) {missing}; columns found: {columns}. Set "
                        "data.path_column and data.label_column to the file's names")
    labels = [(row.get(label_column) or "").strip() for row in rows]
    names = list(class_names) or sorted({label for label in labels if label})
    index_of = {name: k for k, name in enumerate(names)}
    problems: list[tuple[str, str]] = []
    files: list[LabelledFile] = []
    seen: dict[str, int] = {}
    for line, (row, label) in enumerate(zip(rows, labels), start=2):  # line 1: header
        where = f"{csv_path}:line {line}"
        name = (row.get(path_column) or "").strip()
        if not name:
            problems.append((where, f"empty {path_column!r}"))
        elif not label:
            problems.append((where, f"{name}: empty {label_column!r}"))
        elif label not in index_of:
            problems.append((where, f"{name}: unknown label {label!r} (known: {names})"))
        elif not (root / name).is_file():
            problems.append((where, f"{name}: no such image under {root}"))
        elif name in seen:
            problems.append((where, f"{name}: listed again (first at line {seen[name]})"))
        else:
            seen[name] = line
            files.append((str(root / name), index_of[label]))
    return files, names, _bad_rows(csv_path, problems, len(rows), on_bad_input)


def _bad_rows(csv_path: Path, problems: Sequence[tuple[str, str]], total: int,
              on_bad_input: OnBadInput) -> BadInputLog:
    """Under 'raise', one DataError listing every bad row; else the log listing them."""
    log = BadInputLog(on_bad_input)
    if problems and on_bad_input == "raise":
        shown = "\n".join(f"  {where}: {reason}" for where, reason in problems[:ROWS_SHOWN])
        more = f"\n  ... and {len(problems) - ROWS_SHOWN} more" if len(problems) > ROWS_SHOWN else ""
        raise DataError(f"{csv_path}: {len(problems)} bad row(s) of {total}:\n{shown}{more}\n"
                        "Fix them, or set data.on_bad_input=skip to leave them out (listed in "
                        "bad_inputs.json)")
    for where, reason in problems:
        log.report(where, reason)
    return log


def split_by_class(files: Sequence[LabelledFile], val_fraction: float, test_fraction: float,
                   seed: int) -> dict[str, list[LabelledFile]]:
    """A stratified split: each class's files, shuffled by `seed`, give round(n * fraction)
    to test and to val and the rest to train (file order kept within a split)."""
    if not 0 <= val_fraction + test_fraction < 1:
        raise DataError(f"data.val_fraction {val_fraction} + data.test_fraction "
                        f"{test_fraction} must be in [0, 1)")
    rng = np.random.default_rng(seed)
    chosen: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for label in sorted({label for _, label in files}):
        members = np.flatnonzero([label == other for _, other in files])
        members = members[rng.permutation(len(members))]
        n_test, n_val = round(len(members) * test_fraction), round(len(members) * val_fraction)
        chosen["test"] += members[:n_test].tolist()
        chosen["val"] += members[n_test:n_test + n_val].tolist()
        chosen["train"] += members[n_test + n_val:].tolist()
    return {split: [files[i] for i in sorted(indices)] for split, indices in chosen.items()}


MULTILABEL_VALUES = {"1": 1.0, "1.0": 1.0, "true": 1.0, "yes": 1.0,
                     "0": 0.0, "0.0": 0.0, "false": 0.0, "no": 0.0, "": 0.0,
                     "-1": -1.0, "-1.0": -1.0}


@dataclasses.dataclass(frozen=True)
class MultilabelRow:
    """One good row of a multi-label CSV; `patient` is the index of its group (the
    `group_column` value, or the row itself) for group-level splits."""

    path: str
    raw: tuple[float, ...]   # 1 positive, 0 negative or blank, -1 uncertain
    patient: int


def read_multilabel_csv(csv_path: str | Path, *, path_column: str,
                        label_columns: Sequence[str], group_column: str = "",
                        image_root: str | Path | None = None, encoding: str = "utf-8",
                        on_bad_input: OnBadInput = "raise"
                        ) -> tuple[list[MultilabelRow], BadInputLog]:
    """The good rows of an images + label-columns CSV and the log of bad ones.

    Each label column holds 1/0 (also 1.0, true/false, yes/no), blank (not mentioned: 0)
    or -1 (uncertain: `jaxcx.data.chexpert.apply_uncertain_policy`). A missing image, an unreadable value, an
    empty group or a file listed twice is a bad row: one DataError lists them all under
    'raise', 'skip' lists them in the log.
    """
    csv_path = Path(csv_path)
    root = Path(image_root) if image_root else csv_path.parent
    required = [path_column, *label_columns, *([group_column] if group_column else [])]
    if not label_columns:
        raise DataError("data.label_columns is empty: name the CSV's label columns")
    reader = open_table(csv_path, required, encoding=encoding, what="label CSV")
    problems: list[tuple[str, str]] = []
    rows: list[MultilabelRow] = []
    seen: dict[str, int] = {}
    groups: dict[str, int] = {}
    total = 0
    for values in reader:
        total += 1
        where = f"{csv_path}:line {reader.line_num}"
        name = (values.get(path_column) or "").strip()
        cells = {column: (values.get(column) or "").strip().lower() for column in label_columns}
        unreadable = [f"{column}={cell!r}" for column, cell in cells.items()
                      if cell not in MULTILABEL_VALUES]
        group = (values.get(group_column) or "").strip() if group_column else f"row{total}"
        if not name:
            problems.append((where, f"empty {path_column!r}"))
        elif unreadable:
            problems.append((where, f"{name}: unreadable label value(s) {', '.join(unreadable)} "
                                    "(use 1, 0, blank or -1)"))
        elif not group:
            problems.append((where, f"{name}: empty {group_column!r}"))
        elif not (root / name).is_file():
            problems.append((where, f"{name}: no such image under {root}"))
        elif name in seen:
            problems.append((where, f"{name}: listed again (first at line {seen[name]})"))
        else:
            seen[name] = reader.line_num
            rows.append(MultilabelRow(str(root / name),
                                      tuple(MULTILABEL_VALUES[cells[c]] for c in label_columns),
                                      groups.setdefault(group, len(groups))))
    return rows, _bad_rows(csv_path, problems, total, on_bad_input)

