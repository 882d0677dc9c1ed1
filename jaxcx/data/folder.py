"""Image-folder datasets: `ROOT/{split}/{class}[/images]/*.{jpeg,jpg,png}`.

Covers the Kaggle pneumonia layout (`train/NORMAL/*.jpeg`) and COVID-QU-Ex
(`Train/COVID-19/images/*.png`, masks beside in `lung masks/`). Split folder names
match case-insensitively; class folders map to labels through `class_map`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from jaxcx.data.errors import BadInputLog, DataError, OnBadInput
from jaxcx.data.imageio import IMAGE_EXTENSIONS, decode_image, is_image_file

LabelledFile = tuple[str, int]

KAGGLE_PNEUMONIA_CLASSES = {"NORMAL": 0, "PNEUMONIA": 1}
COVID_QU_EX_CLASSES = {"COVID-19": 0, "Non-COVID": 1, "Normal": 2}
COVID_VS_NORMAL_CLASSES = {"Normal": 0, "COVID-19": 1}  # the COVID notebook's binary task

logger = logging.getLogger(__name__)


def _visible_subdirs(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def find_split_dir(root: str | Path, split: str) -> Path:
    """The folder under `root` whose name equals `split` ignoring case."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset root {root} does not exist or is not a folder")
    matches = [name for name in _visible_subdirs(root) if name.lower() == split.lower()]
    if not matches:
        raise DataError(
            f"split {split!r} not found in {root}: expected a folder named {split!r} "
            f"(any case); found folders: {_visible_subdirs(root) or 'none'}"
        )
    if len(matches) > 1:
        raise DataError(f"split {split!r} is ambiguous in {root}: found folders {matches}")
    return root / matches[0]


def resolve_class_map(
    found: Sequence[str],
    where: Path,
    class_map: Mapping[str, int] | None = None,
    classes: Sequence[str] | None = None,
) -> dict[str, int]:
    """Chooses the class folders to read and their labels.

    - neither given: every folder, labels by sorted name;
    - `classes` only: that subset, labels by position in `classes`;
    - `class_map` only: exactly its folders (an extra folder is an error);
    - both: the `classes` subset of `class_map`, labels from `class_map`.
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
        unknown = [name for name in found if name not in wanted]
        if unknown:
            raise DataError(
                f"unknown class folder(s) {unknown} in {where}: expected only {sorted(wanted)} "
                f"(class_map); add them to class_map or pick a subset with classes=[...]"
            )
    else:
        wanted = {name: i for i, name in enumerate(sorted(found))}
    missing = [name for name in wanted if name not in found]
    if missing:
        raise DataError(
            f"missing class folder(s) {missing} in {where}: expected {sorted(wanted)}, "
            f"found {list(found) or 'no folders'}"
        )
    if not wanted:
        raise DataError(f"no class folders in {where}")
    return wanted


def _class_images(class_dir: Path, images_subdir: str | None) -> list[str]:
    folder = class_dir
    if images_subdir == "auto":
        folder = class_dir / "images" if (class_dir / "images").is_dir() else class_dir
    elif images_subdir is not None:
        folder = class_dir / images_subdir
        if not folder.is_dir():
            raise DataError(
                f"{folder} not found: expected images in {class_dir}/{images_subdir}/; "
                f"found {_visible_subdirs(class_dir) or 'no subfolders'}"
            )
    entries = sorted(e.name for e in os.scandir(folder) if not e.name.startswith("."))
    images = [name for name in entries if is_image_file(name)]
    ignored = [name for name in entries if not is_image_file(name) and (folder / name).is_file()]
    if ignored:
        logger.warning("%s: ignored %d non-image file(s), e.g. %s", folder, len(ignored), ignored[:3])
    if not images:
        raise DataError(
            f"class folder {folder} has no images (*{', *'.join(IMAGE_EXTENSIONS)}, any case); "
            f"found {len(entries)} other entr{'y' if len(entries) == 1 else 'ies'}"
            + (f": {entries[:5]}" if entries else "")
        )
    return [str(folder / name) for name in images]


def _scan(
    root: str | Path,
    split: str,
    class_map: Mapping[str, int] | None,
    classes: Sequence[str] | None,
    images_subdir: str | None,
) -> tuple[list[LabelledFile], dict[str, int]]:
    split_dir = find_split_dir(root, split)
    wanted = resolve_class_map(_visible_subdirs(split_dir), split_dir, class_map, classes)
    files: list[LabelledFile] = []
    for name in sorted(wanted):
        files += [(path, wanted[name]) for path in _class_images(split_dir / name, images_subdir)]
    return files, wanted


def scan_split(
    root: str | Path,
    split: str,
    *,
    class_map: Mapping[str, int] | None = None,
    classes: Sequence[str] | None = None,
    images_subdir: str | None = "auto",
) -> list[LabelledFile]:
    """Lists `(path, label)` of one split, sorted by class folder then file name.

    `images_subdir='auto'` reads `CLASS/images/` when it exists (COVID-QU-Ex), else
    `CLASS/`. Missing split, unknown/missing class folder and empty class folder raise
    `DataError` saying what was expected and what was found.
    """
    return _scan(root, split, class_map, classes, images_subdir)[0]


def scan_image_folder(
    root: str | Path,
    splits: Sequence[str] = ("train", "val", "test"),
    **scan_kwargs,
) -> dict[str, list[LabelledFile]]:
    """`scan_split` for each split name; keyword arguments as for `scan_split`."""
    return {split: scan_split(root, split, **scan_kwargs) for split in splits}


def check_images(
    files: Sequence[LabelledFile], on_bad_input: OnBadInput = "raise"
) -> tuple[list[LabelledFile], BadInputLog]:
    """Fully decodes every file; returns the readable ones and the log of bad ones."""
    log = BadInputLog(on_bad_input)
    good = []
    for path, label in files:
        try:
            decode_image(path)
        except DataError as error:
            log.report(path, error)
            continue
        good.append((path, label))
    log.warn_if_any("image check")
    return good, log


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
    decode: bool = True,
) -> ImageFolderSource:
    """Scans one split into an `ImageFolderSource`.

    With `on_bad_input` set, every image is decoded once up front (`check_images`):
    'raise' fails on the first bad file, 'skip' drops the bad ones and keeps their
    log in `source.bad_inputs` (write it with `source.bad_inputs.write(run_dir)`).
    """
    files, wanted = _scan(root, split, class_map, classes, images_subdir)
    bad_inputs = None
    if on_bad_input is not None:
        files, bad_inputs = check_images(files, on_bad_input)
    labels = sorted(wanted.values())
    names = class_names_from_map(wanted) if labels == list(range(len(labels))) else None
    source = ImageFolderSource(files, root=root, class_names=names, decode=decode)
    source.bad_inputs = bad_inputs
    return source
