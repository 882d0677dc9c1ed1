"""Image-folder datasets: `ROOT/{split}/{class}[/images]/*.{png,jpeg,bmp,tiff,webp,...}`.

Covers the Kaggle pneumonia layout (`train/NORMAL/*.jpeg`) and COVID-QU-Ex
(`Train/COVID-19/images/*.png`, masks beside in `lung masks/`). Split folder names
match case-insensitively; class folders map to labels through `class_map`. Nothing is
dropped silently: whatever is not read (other files, sub-folders, folders that are no class)
is listed in a `BadInputLog` as ignored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jaxcx.data.errors import BadInputLog, DataError, OnBadInput
from jaxcx.data.imageio import decode_image, is_image_file

LabelledFile = tuple[str, int]

KAGGLE_PNEUMONIA_CLASSES = {"NORMAL": 0, "PNEUMONIA": 1}
COVID_QU_EX_CLASSES = {"COVID-19": 0, "Non-COVID": 1, "Normal": 2}
COVID_VS_NORMAL_CLASSES = {"Normal": 0, "COVID-19": 1}  # the COVID notebook's binary task
UNKNOWN_FOLDER_FIX = ("or set ignore_unknown_folders=True "
                      "(--config.data.ignore_unknown_folders=true) to list such folders as "
                      "ignored in bad_inputs.json and go on")


def visible_subdirs(folder: Path) -> list[str]:
    """Names of the sub-folders not starting with '.', sorted."""
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def find_split_dir(root: str | Path, split: str) -> Path:
    """The folder under `root` whose name equals `split` ignoring case."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset root {root} does not exist or is not a folder")
    matches = [name for name in visible_subdirs(root) if name.lower() == split.lower()]
    if not matches:
        raise DataError(
            f"split {split!r} not found in {root}: expected a folder named {split!r} "
            f"(any case); found folders: {visible_subdirs(root) or 'none'}"
        )
    if len(matches) > 1:
        raise DataError(f"split {split!r} is ambiguous in {root}: found folders {matches}")
    return root / matches[0]


def _sorted_entries(folder: Path) -> list[os.DirEntry]:
    return sorted(os.scandir(folder), key=lambda entry: entry.name)


def _count_images(folder: Path) -> int:
    return sum(1 for path in folder.rglob("*") if path.is_file() and is_image_file(path.name))


def list_loose_entries(folder: Path, log: BadInputLog) -> None:
    """Lists the files and hidden entries of a split folder, which hold no class, as ignored."""
    for entry in _sorted_entries(folder):
        if entry.name.startswith("."):
            log.ignore(str(folder / entry.name), "hidden entry, not read")
        elif not entry.is_dir():
            log.ignore(str(folder / entry.name),
                       f"file outside the class folders of {folder}, not read")


def list_unread_root_entries(root: str | Path, splits: Sequence[str], log: BadInputLog) -> None:
    """Lists the folders and image files under `root` that are not one of `splits` (any
    case) as ignored; other files there (README, checksums) describe the dataset."""
    root = Path(root)
    wanted = {split.lower() for split in splits}
    for entry in _sorted_entries(root):
        if entry.name.startswith(".") or entry.name.lower() in wanted:
            continue
        if entry.is_dir():
            log.ignore(str(root / entry.name),
                       f"folder is not a split ({', '.join(splits)}, any case), not read "
                       f"({_count_images(root / entry.name)} image file(s) inside)")
        elif is_image_file(entry.name):
            log.ignore(str(root / entry.name), "image outside the split folders, not read")


def check_unknown_folders(
    found: Sequence[str], known: Sequence[str], where: Path, *, ignore: bool, log: BadInputLog
) -> None:
    """Folders `found` in `where` (names or relative paths) that are not `known` classes:
    one DataError naming all of them, or (`ignore`) each listed as ignored."""
    unknown = [name for name in found if name not in known]
    if unknown and not ignore:
        raise DataError(
            f"unknown class folder(s) {unknown} in {where}: expected only {sorted(known)}; "
            f"rename or remove them, add them to the classes, {UNKNOWN_FOLDER_FIX}"
        )
    for name in unknown:
        log.ignore(str(where / name), f"not a class folder (classes: {sorted(known)}), "
                                      f"{_count_images(where / name)} image file(s) not read")


def resolve_class_map(
    found: Sequence[str],
    where: Path,
    class_map: Mapping[str, int] | None = None,
    classes: Sequence[str] | None = None,
    *,
    log: BadInputLog,
    ignore_unknown_folders: bool = False,
) -> dict[str, int]:
    """Chooses the class folders to read and their labels.

    - neither given: every folder, labels by sorted name;
    - `classes` only: that subset, labels by position in `classes`;
    - `class_map` only: exactly its folders (an extra folder is an error, or listed in
      `log` with `ignore_unknown_folders`);
    - both: the `classes` subset of `class_map`, labels from `class_map`.

    Folders left out of a `classes` subset are listed in `log` as ignored.
    """
    if classes is not None and class_map is not None:
        unmapped = [c for c in classes if c not in class_map]
        if unmapped:
            raise DataError(f"classes {unmapped} are not in class_map {dict(class_map)}")
        wanted = {c: class_map[c] for c in classes}
    elif classes is not None:
        wanted = {c: i for i, c in enumerate(classes)}
    elif class_map is not None:
        wanted = dict(class_map)
        check_unknown_folders(found, list(wanted), where, ignore=ignore_unknown_folders, log=log)
    else:
        wanted = {name: i for i, name in enumerate(sorted(found))}
    if classes is not None:
        for name in found:
            if name not in wanted:
                log.ignore(str(where / name), f"class not selected (classes={list(classes)})")
    missing = [name for name in wanted if name not in found]
    if missing:
        raise DataError(
            f"missing class folder(s) {missing} in {where}: expected {sorted(wanted)}, "
            f"found {list(found) or 'no folders'}"
        )
    if not wanted:
        raise DataError(f"no class folders in {where}")
    return wanted


def class_images(
    class_dir: Path, log: BadInputLog, *, images_subdir: str | None = None,
    ignore_empty: bool = False,
) -> list[str]:
    """The image files of a class folder, sorted by name; everything else in it (other
    files, hidden entries, sub-folders) is listed in `log` as ignored. A folder without
    images is a DataError, or (`ignore_empty`) listed too."""
    folder = class_dir
    if images_subdir == "auto":
        folder = class_dir / "images" if (class_dir / "images").is_dir() else class_dir
    elif images_subdir is not None:
        folder = class_dir / images_subdir
        if not folder.is_dir():
            raise DataError(
                f"{folder} not found: expected images in {class_dir}/{images_subdir}/; "
                f"found {visible_subdirs(class_dir) or 'no subfolders'}"
            )
    entries = _sorted_entries(folder)
    images = []
    for entry in entries:
        path = folder / entry.name
        if entry.name.startswith("."):
            log.ignore(str(path), "hidden entry, not read")
        elif entry.is_dir():
            log.ignore(str(path), f"sub-folder of a class folder, not read "
                                  f"({_count_images(path)} image file(s) inside); move its "
                                  f"images into {folder} to use them")
        elif is_image_file(entry.name):
            images.append(str(path))
        else:
            log.ignore(str(path), f"not an image file (extension {path.suffix or 'none'!r})")
    if not images:
        names = [entry.name for entry in entries]
        if not ignore_empty:
            raise DataError(
                f"class folder {folder} has no images (files of a format PIL reads: .png, "
                f".jpeg, .bmp, .tiff, .webp, ...); found {len(names)} other "
                f"entr{'y' if len(names) == 1 else 'ies'}" + (f" {names[:5]}" if names else "")
                + f"; add images, remove the folder, {UNKNOWN_FOLDER_FIX}"
            )
        log.ignore(str(folder), "class folder with no images")
    return images


def _scan(
    root: str | Path,
    split: str,
    class_map: Mapping[str, int] | None,
    classes: Sequence[str] | None,
    images_subdir: str | None,
    ignore_unknown_folders: bool,
    log: BadInputLog,
) -> tuple[list[LabelledFile], dict[str, int]]:
    split_dir = find_split_dir(root, split)
    wanted = resolve_class_map(visible_subdirs(split_dir), split_dir, class_map, classes,
                               log=log, ignore_unknown_folders=ignore_unknown_folders)
    list_loose_entries(split_dir, log)
    files: list[LabelledFile] = []
    for name in sorted(wanted):
        paths = class_images(split_dir / name, log, images_subdir=images_subdir,
                             ignore_empty=ignore_unknown_folders)
        files += [(path, wanted[name]) for path in paths]
    return files, wanted


def scan_split(
    root: str | Path,
    split: str,
    *,
    class_map: Mapping[str, int] | None = None,
    classes: Sequence[str] | None = None,
    images_subdir: str | None = "auto",
    ignore_unknown_folders: bool = False,
    log: BadInputLog | None = None,
) -> list[LabelledFile]:
    """Lists `(path, label)` of one split, sorted by class folder then file name.

    `images_subdir='auto'` reads `CLASS/images/` when it exists (COVID-QU-Ex), else
    `CLASS/`. Missing split, unknown/missing class folder and empty class folder raise
    `DataError` saying what was expected and what was found; with
    `ignore_unknown_folders` unknown and empty class folders are listed instead. Every
    entry not read is listed in `log` (by default: a warning).
    """
    scan_log = BadInputLog() if log is None else log
    files = _scan(root, split, class_map, classes, images_subdir, ignore_unknown_folders,
                  scan_log)[0]
    if log is None:
        scan_log.warn_if_any(f"{root} {split}")
    return files


def scan_image_folder(
    root: str | Path,
    splits: Sequence[str] = ("train", "val", "test"),
    **scan_kwargs,
) -> dict[str, list[LabelledFile]]:
    """`scan_split` for each split name; keyword arguments as for `scan_split`."""
    return {split: scan_split(root, split, **scan_kwargs) for split in splits}


def check_images(
    files: Sequence[LabelledFile], on_bad_input: OnBadInput = "raise",
    log: BadInputLog | None = None,
) -> tuple[list[LabelledFile], BadInputLog]:
    """Fully decodes every file; returns the readable ones and the log of bad ones.

    Every file is tried before deciding: under 'raise' one DataError lists all bad files.
    A given `log` only collects them (the caller resolves it, e.g. after more checks).
    """
    check_log = BadInputLog(on_bad_input) if log is None else log
    good = []
    for path, label in files:
        try:
            decode_image(path)
        except DataError as error:
            check_log.add(path, error)
            continue
        good.append((path, label))
    if log is None:
        check_log.resolve("image check")
    return good, check_log


class ImageFolderSource:
    """Random-access source over `(path, label)` pairs, decoding lazily.

    Records: `{'image': (H, W, C), 'label': int, 'id': path relative to root, 'path'}`;
    with `decode=False` the image is left to a transform (record without 'image').
    """

    def __init__(
        self,
        files: Sequence[LabelledFile],
        *,
        root: str | Path | None = None,
        class_names: Sequence[str] | None = None,
        decode: bool = True,
    ):
        self.paths = [str(path) for path, _ in files]
        self.labels = np.asarray([label for _, label in files], dtype=np.int32)
        self.root = None if root is None else str(root)
        self.class_names = None if class_names is None else list(class_names)
        self.decode = decode
        self.bad_inputs: BadInputLog | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def record_id(self, index: int) -> str:
        path = self.paths[index]
        return Path(os.path.relpath(path, self.root)).as_posix() if self.root else path

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        record = {"label": int(self.labels[index]), "id": self.record_id(index), "path": path}
        if self.decode:
            record["image"] = decode_image(path)
        return record

    def __repr__(self) -> str:
        counts = np.bincount(self.labels) if len(self.labels) else []
        return f"ImageFolderSource({len(self)} images, root={self.root}, class counts={list(counts)})"


class SegmentationFolderSource(ImageFolderSource):
    """Images with masks in a sibling folder (COVID-QU-Ex: `CLASS/images/x.png` and
    `CLASS/lung masks/x.png`); records add `'target'` float32 (H, W, 1) in {0, 1}."""

    def __init__(self, files: Sequence[LabelledFile], *, mask_subdir: str = "lung masks", **kwargs):
        super().__init__(files, **kwargs)
        self.mask_paths = [str(Path(path).parent.parent / mask_subdir / Path(path).name) for path in self.paths]
        missing = [m for m in self.mask_paths if not os.path.isfile(m)]
        if missing:
            raise DataError(
                f"{len(missing)} image(s) have no mask in '{mask_subdir}/', e.g. {missing[0]}"
            )

    def __getitem__(self, index: int) -> dict:
        record = super().__getitem__(index)
        mask = decode_image(self.mask_paths[index])
        if mask.shape[-1] != 1:
            mask = mask.max(axis=-1, keepdims=True)
        record["target"] = (mask > 0).astype(np.float32)
        return record


def class_names_from_map(class_map: Mapping[str, int]) -> list[str]:
    """Names ordered by label (labels must be 0..n-1)."""
    by_label = sorted(class_map.items(), key=lambda item: item[1])
    if [label for _, label in by_label] != list(range(len(by_label))):
        raise DataError(f"class_map labels must be 0..{len(by_label) - 1}, got {dict(class_map)}")
    return [name for name, _ in by_label]


def image_folder_source(
    root: str | Path,
    split: str,
    *,
    class_map: Mapping[str, int] | None = None,
    classes: Sequence[str] | None = None,
    images_subdir: str | None = "auto",
    on_bad_input: OnBadInput | None = None,
    ignore_unknown_folders: bool = False,
    decode: bool = True,
    log: BadInputLog | None = None,
) -> ImageFolderSource:
    """Scans one split into an `ImageFolderSource`.

    With `on_bad_input` set, every image is decoded once up front (`check_images`):
    'raise' fails with one DataError listing every bad file, 'skip' drops them. The
    entries not read and the skipped files are in `source.bad_inputs` (write it with
    `source.bad_inputs.write(run_dir)`). A given `log` collects them over several splits;
    the caller then resolves it.
    """
    split_log = BadInputLog(on_bad_input or "raise") if log is None else log
    files, wanted = _scan(root, split, class_map, classes, images_subdir,
                          ignore_unknown_folders, split_log)
    if on_bad_input is not None:
        files, _ = check_images(files, on_bad_input, split_log)
    if log is None:
        split_log.resolve(f"{root} {split}")
    labels = sorted(wanted.values())
    names = class_names_from_map(wanted) if labels == list(range(len(labels))) else None
    source = ImageFolderSource(files, root=root, class_names=names, decode=decode)
    source.bad_inputs = split_log
    return source
