"""Images listed in a label CSV: a file-name (or path) column and a class column, as in
a folder with a `metadata.csv` beside its images.

Every row is checked before anything is returned: a missing image, an empty or unknown
label or a duplicated file is a bad row; under `on_bad_input='raise'` one DataError lists
them all (with their line numbers), under 'skip' they are counted and listed. A file in
another encoding (latin-1, cp1252, ...) is read with `encoding=`.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

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
    log = BadInputLog(on_bad_input)
    if problems and on_bad_input == "raise":
        shown = "\n".join(f"  {where}: {reason}" for where, reason in problems[:ROWS_SHOWN])
        more = f"\n  ... and {len(problems) - ROWS_SHOWN} more" if len(problems) > ROWS_SHOWN else ""
        raise DataError(f"{csv_path}: {len(problems)} bad row(s) of {len(rows)}:\n{shown}{more}\n"
                        "Fix them, or set data.on_bad_input=skip to leave them out (listed in "
                        "bad_inputs.json)")
    for where, reason in problems:
        log.report(where, reason)
    return files, names, log


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
