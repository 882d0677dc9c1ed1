"""The pneumonia notebook's re-split of the Kaggle data, as a manifest (no file copying).

Per class, the files of all splits are pooled as `(filename, folder)` tuples, sorted,
shuffled with `random.Random(42)` and cut 80/10/10 at `int(n * 0.8)` and
`int(n * (0.8 + 0.1))`, exactly as the notebook's "Re-split data" cell does.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path

from jaxcx.data.errors import DataError
from jaxcx.data.folder import LabelledFile, find_split_dir
from jaxcx.data.imageio import is_image_file

RESPLIT_NAMES = ("train", "val", "test")
MANIFEST_FILENAME = "split_manifest.json"


def pneumonia_resplit(
    root: str | Path,
    *,
    classes: Sequence[str] = ("NORMAL", "PNEUMONIA"),
    source_splits: Sequence[str] = ("train", "val", "test"),
    train_fraction: float = 0.8,
    val_fraction: float = 0.1,
    seed: int = 42,
) -> dict[str, list[LabelledFile]]:
    """Returns {'train'|'val'|'test': [(path, label)]}; label = index in `classes`.

    Source splits absent from `root` are passed over (the shared copy has no `val/`);
    a class found in none of them raises `DataError`.
    """
    split_dirs = []
    for split in source_splits:
        try:
            split_dirs.append(find_split_dir(root, split))
        except DataError:
            continue
    if not split_dirs:
        raise DataError(f"none of the splits {list(source_splits)} found in {root}")
    result: dict[str, list[LabelledFile]] = {name: [] for name in RESPLIT_NAMES}
    for label, cls in enumerate(classes):
        all_files = []
        for split_dir in split_dirs:
            source_folder = split_dir / cls
            if source_folder.is_dir():
                names = [n for n in os.listdir(source_folder) if is_image_file(n)]
                all_files.extend((name, str(source_folder)) for name in names)
        if not all_files:
            raise DataError(
                f"class {cls!r}: no images in {[str(d / cls) for d in split_dirs]}"
            )
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
