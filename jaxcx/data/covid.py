"""COVID chest X-ray classes: COVID-19 vs Normal (and Viral Pneumonia for 3 classes).

Two layouts are read:

- pooled class folders, the shared COVID-19 Radiography Database subset:
  `ROOT/COVID/*`, `ROOT/Normal/*`, and for the third class a folder of viral-pneumonia
  images (`viral_root`, e.g. `lung_segmentation/images`). They have no split, so
  `duplicate_aware_split` makes a stratified one in which byte-identical files stay in
  one split;
- COVID-QU-Ex's own split, `ROOT/{Train,Val,Test}/{COVID-19,Non-COVID,Normal}/images/*`
  (the COVID notebook's folders), used as it is; its `Non-COVID` class is the third one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jaxcx.data.errors import BadInputLog, DataError
from jaxcx.data.folder import class_images, scan_split, visible_subdirs
from jaxcx.data.imageio import is_image_file

LabelledFile = tuple[str, int]
SPLITS = ("train", "val", "test")
# Class names by label. Binary: the notebook's {0: 'Normal', 1: 'Covid-19'}. Three
# classes: the notebook's research objective (COVID-19, other infection, no infection).
CLASS_NAMES = {"binary": ("Normal", "COVID-19"),
               "three": ("COVID-19", "Viral Pneumonia", "Normal")}
# Class name -> the folder holding it, in each layout.
POOLED_FOLDERS = {"COVID-19": "COVID", "Normal": "Normal"}
QU_EX_FOLDERS = {"COVID-19": "COVID-19", "Normal": "Normal", "Viral Pneumonia": "Non-COVID"}


def class_names(classes: str) -> tuple[str, ...]:
    """The class names of `data.classes` ('binary' or 'three'), by label."""
    if classes not in CLASS_NAMES:
        raise DataError(f"data.classes must be one of {sorted(CLASS_NAMES)}, got {classes!r}")
    return CLASS_NAMES[classes]


def has_split_folders(root: Path) -> bool:
    """True when `root` holds Train/Val/Test folders (any case): COVID-QU-Ex's layout."""
    names = {name.lower() for name in visible_subdirs(root)}
    return set(SPLITS) <= names


def folder_splits(root: Path, classes: str, log: BadInputLog) -> dict[str, list[LabelledFile]]:
    """COVID-QU-Ex's own splits (`{Train,Val,Test}/CLASS/images/*`) for `classes`; the
    class folders not used (Non-COVID for 'binary') are listed in `log` as ignored."""
    names = class_names(classes)
    class_map = {QU_EX_FOLDERS[name]: label for label, name in enumerate(names)}
    return {split: scan_split(root, split, class_map=class_map, classes=tuple(class_map),
                              log=log) for split in SPLITS}


def pooled_files(root: Path, classes: str, viral_root: Path | None,
                 log: BadInputLog) -> list[LabelledFile]:
    """Every image of the pooled class folders as (path, label), by class then name."""
    names = class_names(classes)
    folders = {}
    for name in names:
        if name == "Viral Pneumonia":
            if viral_root is None or not viral_root.is_dir():
                raise DataError(f"data.viral_root {viral_root} is not a folder: the third "
                                "class (viral pneumonia) needs a folder of its images, e.g. "
                                "../shared/data/lung_segmentation/images")
            folders[name] = viral_root
        else:
            folders[name] = root / POOLED_FOLDERS[name]
    missing = [str(folder) for folder in folders.values() if not folder.is_dir()]
    if missing:
        raise DataError(f"class folder(s) {missing} not found: expected "
                        f"{root}/{{COVID,Normal}}/*.jpg|png (the COVID-19 Radiography "
                        f"Database) or {root}/{{Train,Val,Test}}/{{COVID-19,Normal,"
                        "Non-COVID}/images/* (COVID-QU-Ex); found "
                        f"{visible_subdirs(root) if root.is_dir() else 'no folder'}")
    used = {POOLED_FOLDERS[name] for name in names if name in POOLED_FOLDERS}
    for other in visible_subdirs(root):
        if other not in used:
            log.ignore(str(root / other), f"not a class folder of data.classes={classes!r}")
    for loose in sorted(root.iterdir()):  # other files there (README, checksums) describe it
        if loose.is_file() and is_image_file(loose.name):
            log.ignore(str(loose), "image outside the class folders, not read")
    files = []
    for label, name in enumerate(names):
        files += [(path, label) for path in class_images(folders[name], log, images_subdir=None)]
    return files


def content_digest(path: str, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def duplicate_groups(files: Sequence[LabelledFile]) -> list[list[int]]:
    """Indices of `files` grouped by identical bytes, in file order. One group holding two
    labels (the same X-ray in two classes) is a DataError naming the files."""
    by_digest: dict[str, list[int]] = defaultdict(list)
    for index, (path, _) in enumerate(files):
        by_digest[content_digest(path)].append(index)
    groups = sorted(by_digest.values())
    for group in groups:
        labels = {files[i][1] for i in group}
        if len(labels) > 1:
            raise DataError(f"identical files in different classes: "
                            f"{[files[i][0] for i in group]}; remove the copy from the wrong "
                            "class folder")
    return groups


def duplicate_aware_split(files: Sequence[LabelledFile], val_fraction: float,
                          test_fraction: float, seed: int
                          ) -> tuple[dict[str, list[LabelledFile]], int]:
    """A stratified train/val/test split in which byte-identical files stay together.

    Within each class the duplicate groups are shuffled by `seed`; groups go to test
    until it holds round(n * test_fraction) of the class's n files, then to val, the rest
    to train. Returns the splits (file order kept) and the number of files that have a
    duplicate.
    """
    if not (0 < val_fraction and 0 < test_fraction and val_fraction + test_fraction < 1):
        raise DataError(f"data.val_fraction {val_fraction} and data.test_fraction "
                        f"{test_fraction} must be > 0 with a sum below 1")
    groups = duplicate_groups(files)
    rng = np.random.default_rng(seed)
    chosen: dict[str, list[int]] = {split: [] for split in SPLITS}
    for label in sorted({label for _, label in files}):
        class_groups = [g for g in groups if files[g[0]][1] == label]
        size = sum(len(g) for g in class_groups)
        wanted = [("test", round(size * test_fraction)), ("val", round(size * val_fraction))]
        filled = 0
        for position in rng.permutation(len(class_groups)):
            while wanted and filled >= wanted[0][1]:
                wanted.pop(0)
                filled = 0
            group = class_groups[position]
            chosen[wanted[0][0] if wanted else "train"] += group
            filled += len(group)
    duplicated = sum(len(g) for g in groups if len(g) > 1)
    return ({split: [files[i] for i in sorted(indices)] for split, indices in chosen.items()},
            duplicated)


def cross_split_duplicates(splits: Mapping[str, Sequence[LabelledFile]]) -> list[list[str]]:
    """Groups of byte-identical files that sit in more than one split (a leak)."""
    seen: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for split, files in splits.items():
        for path, _ in files:
            seen[content_digest(path)].append((split, path))
    return [[path for _, path in members] for members in seen.values()
            if len({split for split, _ in members}) > 1]
