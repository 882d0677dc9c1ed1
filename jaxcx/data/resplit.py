"""The pneumonia notebook's re-split of the Kaggle data, as a manifest (no file copying).

Per class, the files of all splits are pooled as `(filename, folder)` tuples, sorted,
shuffled with `random.Random(42)` and cut 80/10/10 at `int(n * 0.8)` and
`int(n * (0.8 + 0.1))`, exactly as the notebook's "Re-split data" cell does.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jaxcx.data.errors import BadInputLog, DataError
from jaxcx.data.folder import (LabelledFile, check_unknown_folders, class_images, find_split_dir,
                               list_loose_entries, list_unread_root_entries, visible_subdirs)

RESPLIT_NAMES = ("train", "val", "test")
MANIFEST_FILENAME = "split_manifest.json"
MIN_PER_CLASS = 5  # fewer images of a class in a split is warned about

logger = logging.getLogger(__name__)


def pneumonia_resplit(
    root: str | Path,
    *,
    classes: Sequence[str] = ("NORMAL", "PNEUMONIA"),
    source_splits: Sequence[str] = ("train", "val", "test"),
    train_fraction: float = 0.8,
    val_fraction: float = 0.1,
    seed: int = 42,
    ignore_unknown_folders: bool = False,
    log: BadInputLog | None = None,
) -> dict[str, list[LabelledFile]]:
    """Returns {'train'|'val'|'test': [(path, label)]}; label = index in `classes`.

    Source splits absent from `root` are passed over (the shared copy has no `val/`);
    a class found in none of them raises `DataError`. A folder that is no class, or an
    empty class folder, raises `DataError` unless `ignore_unknown_folders`; everything not
    read (those folders, other files, sub-folders) is listed in `log` (by default: a
    warning).
    """
    scan_log = BadInputLog() if log is None else log
    split_dirs = []
    for split in source_splits:
        try:
            split_dirs.append(find_split_dir(root, split))
        except DataError:
            continue
    if not split_dirs:
        raise DataError(f"none of the splits {list(source_splits)} found in {root}")
    list_unread_root_entries(root, source_splits, scan_log)
    pooled: dict[str, list[tuple[str, str]]] = {cls: [] for cls in classes}
    for split_dir in split_dirs:
        found = visible_subdirs(split_dir)
        list_loose_entries(split_dir, scan_log)
        for cls in classes:
            if cls in found:
                source_folder = split_dir / cls
                paths = class_images(source_folder, scan_log, ignore_empty=ignore_unknown_folders)
                pooled[cls] += [(os.path.basename(path), str(source_folder)) for path in paths]
    others = [f"{d.name}/{name}" for d in split_dirs for name in visible_subdirs(d)
              if name not in classes]
    for cls, files in pooled.items():
        if not files:
            raise DataError(
                f"class {cls!r}: no images in {[str(d / cls) for d in split_dirs]}"
                + (f"; found folders that are no class: {others}" if others else "")
            )
    check_unknown_folders(others, classes, Path(root), ignore=ignore_unknown_folders,
                          log=scan_log)
    if log is None:
        scan_log.warn_if_any(f"re-split of {root}")
    result: dict[str, list[LabelledFile]] = {name: [] for name in RESPLIT_NAMES}
    for label, cls in enumerate(classes):
        all_files = pooled[cls]
        all_files.sort()
        random.Random(seed).shuffle(all_files)
        total = len(all_files)
        train_end = int(total * train_fraction)
        val_end = int(total * (train_fraction + val_fraction))
        parts = {
            "train": all_files[:train_end],
            "val": all_files[train_end:val_end],
            "test": all_files[val_end:],
        }
        for name, part in parts.items():
            result[name] += [(os.path.join(folder, file), label) for file, folder in part]
    return result


def check_class_counts(
    labels: Mapping[str, Sequence[int] | np.ndarray],
    class_names: Sequence[str],
    min_per_class: int = MIN_PER_CLASS,
    where: str = "data",
) -> None:
    """Per split ({split: labels}) of the data at `where`: no image of a class is a
    DataError naming the split and class; fewer than `min_per_class` (data.min_per_class)
    is a warning."""
    few, empty = [], []
    for split, split_labels in labels.items():
        counts = np.bincount(np.asarray(split_labels, dtype=np.int64),
                             minlength=len(class_names))
        for name, count in zip(class_names, counts):
            if count == 0:
                empty.append(f"{split} has no {name} images")
            elif count < min_per_class:
                few.append(f"{split} has {count} {name} image(s)")
    if empty:
        raise DataError(
            f"{where}: {'; '.join(empty)}: every split needs images of every class. Add "
            "images of that class (the 80/10/10 re-split needs 10 per class to give val and "
            "test one each); with data.split='folders', data.split='resplit' pools the splits"
        )
    if few:
        logger.warning("%s: %s (fewer than data.min_per_class=%d): metrics of these classes "
                       "rest on very few images", where, "; ".join(few), min_per_class)


def write_manifest(
    splits: dict[str, list[LabelledFile]],
    run_dir: str | Path,
    *,
    root: str | Path,
    class_names: Sequence[str] = ("NORMAL", "PNEUMONIA"),
    filename: str = MANIFEST_FILENAME,
) -> Path:
    """Writes the split as JSON with paths relative to `root` (portable between machines)."""
    root = Path(root)
    payload = {
        "root": str(root),
        "class_names": list(class_names),
        "counts": {
            name: [sum(1 for _, label in files if label == c) for c in range(len(class_names))]
            for name, files in splits.items()
        },
        "splits": {
            name: [[Path(os.path.relpath(path, root)).as_posix(), label] for path, label in files]
            for name, files in splits.items()
        },
    }
    path = Path(run_dir) / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1))
    return path


def read_manifest(
    path: str | Path, *, root: str | Path | None = None
) -> dict[str, list[LabelledFile]]:
    """Reads a manifest (file or run folder); paths are joined to `root` (default: the recorded one)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_FILENAME
    try:
        payload = json.loads(path.read_text())
        base = Path(root if root is not None else payload["root"])
        return {
            name: [(str(base / rel), int(label)) for rel, label in files]
            for name, files in payload["splits"].items()
        }
    except FileNotFoundError as error:
        raise DataError(f"split manifest {path} not found") from error
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise DataError(f"{path}: not a split manifest ({error!r})") from error
