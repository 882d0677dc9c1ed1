"""Dataset builders registered by name (see `jaxcx.data.registry`).

Image datasets are decoded and resized once, then kept as uint8 arrays (in memory and in
a cache folder keyed by the file list and the resize settings), so every epoch after the
first costs no JPEG decoding. Scaling to [0, 1], augmentation and standardisation stay
per-record transforms.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import ml_collections
import numpy as np

from jaxcx import tracking
from jaxcx.data import chexpert as chexpert_lib
from jaxcx.data import covid as covid_lib
from jaxcx.data import nih as nih_lib
from jaxcx.data import sampling
from jaxcx.data import transforms as T
from jaxcx.data.errors import BadInputLog, DataError
from jaxcx.data.folder import (KAGGLE_PNEUMONIA_CLASSES, class_names_from_map,
                               list_unread_root_entries, scan_split)
from jaxcx.data.idx import MNIST_FILES, MNIST_MD5, load_mnist
from jaxcx.data.imageio import decode_image
from jaxcx.data.registry import DataBundle, register_dataset
from jaxcx.data.resplit import MIN_PER_CLASS, check_class_counts, pneumonia_resplit
from jaxcx.data.label_csv import read_label_csv, read_multilabel_csv, split_by_class
from jaxcx.data.npz import NPZ_SPLITS, NpzSource
from jaxcx.data.synthetic import (write_chexpert_like, write_covid_radiography_like,
                                  write_medmnist_like, write_mnist_like_idx,
                                  write_phantom_chest_xrays)
from jaxcx.data.xor import XorSource

LabelledFile = tuple[str, int]
FOLDER_SPLITS = ("train", "val", "test")


def cache_root(data_cfg: ml_collections.ConfigDict) -> Path:
    """Where generated data and preprocessed arrays live: `data.cache_dir`, $JAXCX_CACHE,
    or ~/.cache/jaxcx."""
    configured = data_cfg.get("cache_dir", "") or os.environ.get("JAXCX_CACHE", "")
    return Path(configured or Path.home() / ".cache" / "jaxcx").expanduser()


class ArraySource:
    """Random access over preprocessed arrays; records as every source's. Multi-label
    sources may carry `label_masks` (0 = label not known, left out of loss and metrics)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, ids: Sequence[str],
                 paths: Sequence[str] | None = None, label_masks: np.ndarray | None = None):
        if len(images) != len(labels) or len(images) != len(ids):
            raise ValueError(f"{len(images)} images, {len(labels)} labels, {len(ids)} ids")
        if label_masks is not None and np.shape(label_masks) != np.shape(labels):
            raise ValueError(f"label masks {np.shape(label_masks)} and labels "
                             f"{np.shape(labels)} differ in shape")
        self.images, self.labels, self.label_masks = images, labels, label_masks
        self.ids = list(ids)
        self.paths = list(paths) if paths is not None else [""] * len(ids)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        record = {"image": self.images[index], "label": self.labels[index],
                  "id": self.ids[index], "path": self.paths[index]}
        if self.label_masks is not None:
            record["label_mask"] = self.label_masks[index]
        return record


def _preprocess_one(path: str, image_size: int, channels: int, resize_mode: str,
                    common_source: tuple[int, int] | None) -> np.ndarray:
    image = T.convert_channels(decode_image(path), channels)
    if common_source is not None:
        image = T.common_source_resolution(
            image, *common_source, is_jpeg=Path(path).suffix.lower() in (".jpg", ".jpeg"))
    image = T.resize_image(image, image_size, resize_mode)
    return np.rint(T.scale_to_unit(image) * 255).astype(np.uint8)


def _read_cache(cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(images, labels, keep, reasons) of a cache file; None when absent, or written before
    skip reasons were kept while it skipped files (then it is rebuilt)."""
    if not cache.exists():
        return None
    with np.load(cache, allow_pickle=False) as saved:
        keep = saved["keep"]
        if "reasons" not in saved.files and not keep.all():
            return None
        reasons = saved["reasons"] if "reasons" in saved.files else np.full(len(keep), "")
        return saved["images"], saved["labels"], keep, reasons


def preprocess_files(files: Sequence[LabelledFile], *, image_size: int, channels: int,
                     resize_mode: str, cache_dir: Path, on_bad_input: str = "raise",
                     desc: str = "preprocess", common_source: tuple[int, int] | None = None,
                     log: BadInputLog | None = None) -> tuple[ArraySource, BadInputLog]:
    """Decodes and resizes every file once (2 threads), caching the uint8 arrays on disk.
    `common_source=(size, jpeg_quality)` first passes every image through one resolution
    and compression (`transforms.common_source_resolution`).

    Every file is tried first; then under 'raise' one `DataError` lists all bad files
    (nothing is cached), under 'skip' they are left out and listed with their reasons
    (kept in the cache, so a second run lists the same). A given `log` only collects the
    bad files: the caller resolves it (e.g. after the other splits). 16-bit images are
    quantised to 8 bits here.
    """
    settings = [sorted(files), image_size, channels, resize_mode, on_bad_input]
    if common_source is not None:
        settings.append(list(common_source))
    key = hashlib.sha256(json.dumps(settings).encode()).hexdigest()[:20]
    cache = cache_dir / "arrays" / f"{key}.npz"
    file_log = BadInputLog(on_bad_input) if log is None else log
    cached = _read_cache(cache)
    if cached is not None:
        images, labels, keep, reasons = cached
    else:
        def load(item):
            try:
                return _preprocess_one(item[0], image_size, channels, resize_mode,
                                       common_source)
            except DataError as error:
                return error
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(tracking.progress_bar(pool.map(load, files), total=len(files),
                                                 desc=desc))
        keep = np.asarray([not isinstance(r, DataError) for r in results], dtype=bool)
        reasons = np.asarray([str(r).removeprefix(f"{path}: ") if isinstance(r, DataError)
                              else "" for (path, _), r in zip(files, results)], dtype=str)
        kept = [r for r in results if not isinstance(r, DataError)]
        images = (np.stack(kept) if kept else
                  np.zeros((0, image_size, image_size, channels), np.uint8))
        labels = np.asarray([label for (_, label), k in zip(files, keep) if k], np.int32)
        if on_bad_input == "skip" or keep.all():
            tmp = cache.with_name(cache.stem + ".tmp.npz")
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.savez(tmp, images=images, labels=labels, keep=keep, reasons=reasons)
                os.replace(tmp, cache)
            except OSError as error:
                tmp.unlink(missing_ok=True)
                raise DataError(
                    f"could not write the image cache {cache}: {error.strerror or error}; "
                    "caches written before are intact. Free space, or point data.cache_dir "
                    "(or $JAXCX_CACHE) at a disk with room, and run again") from error
    for (path, _), kept, reason in zip(files, keep, reasons):
        if not kept:
            file_log.add(path, str(reason))
    if log is None:
        file_log.resolve(desc)
    kept_paths = [path for (path, _), k in zip(files, keep) if k]
    ids = [os.path.basename(os.path.dirname(p)) + "/" + os.path.basename(p) for p in kept_paths]
    return ArraySource(images, labels, ids, kept_paths), file_log


def phantom_chest_xray_root(data_cfg: ml_collections.ConfigDict) -> Path:
    """Generates (once) the embedded phantom chest X-ray set and returns its folder."""
    phantom = data_cfg.phantom
    name = f"phantom_chest_xray_n{phantom.num_images}_s{phantom.seed}_{phantom.min_size}-{phantom.max_size}"
    root = cache_root(data_cfg) / name
    done = root / ".complete"
    if not done.exists():
        print(f"generating {phantom.num_images} phantom chest X-rays in {root} (once)")
        write_phantom_chest_xrays(root, phantom.num_images, seed=phantom.seed, layout="kaggle",
                                  size_range=(phantom.min_size, phantom.max_size))
        done.write_text("ok\n")
    return root


def image_transforms(data_cfg: ml_collections.ConfigDict, train_source: ArraySource,
                     train: bool) -> list:
    """Per-record transforms on preprocessed uint8 arrays: [0, 1], augmentation, and
    standardisation with the training split's mean and std (as the pneumonia notebook
    does)."""
    chain: list = [T.ScaleToUnit()]
    if train:
        augment = T.augment_from_config(data_cfg.augment.to_dict())
        if augment is not None:
            chain.append(T.RandomAugment(augment))
    if data_cfg.normalization == "standardize":
        pixels = train_source.images.astype(np.float32) / 255.0
        chain.append(T.Standardize(float(pixels.mean()), float(pixels.std())))
    elif data_cfg.normalization != "unit":
        raise DataError(f"data.normalization must be 'unit' or 'standardize', got "
                        f"{data_cfg.normalization!r}")
    return chain


@register_dataset("chest_xray")
def chest_xray(data_cfg: ml_collections.ConfigDict, seed: int) -> DataBundle:
    """Kaggle pneumonia folders (`data.root`), or generated phantoms when `root` is empty.

    `data.split='resplit'` pools every split and re-splits 80/10/10 as the pneumonia
    notebook does;
    `'folders'` uses the folder's own train/val/test.
    Bad images follow `data.on_bad_input` (one error listing all of them, or skipped);
    entries not read are listed in `bundle.bad_inputs`; folders that are no class and
    empty class folders are errors unless `data.ignore_unknown_folders`; a split without
    images of a class is an error, one with fewer than `data.min_per_class` a warning.
    """
    del seed  # the split is fixed by the data (the pneumonia notebook's Random(42))
    root = Path(data_cfg.root).expanduser() if data_cfg.root else phantom_chest_xray_root(data_cfg)
    layout = ("expected the Kaggle layout ROOT/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg "
              "(or any image format PIL reads)")
    if not root.is_dir():
        raise DataError(f"data.root {root} is not a folder; {layout}")
    class_map = KAGGLE_PNEUMONIA_CLASSES
    ignore_unknown = data_cfg.get("ignore_unknown_folders", False)
    log = BadInputLog(data_cfg.on_bad_input)
    try:
        if data_cfg.split == "resplit":
            files = pneumonia_resplit(root, classes=tuple(class_map),
                                      ignore_unknown_folders=ignore_unknown, log=log)
        elif data_cfg.split == "folders":
            list_unread_root_entries(root, FOLDER_SPLITS, log)
            files = {split: scan_split(root, split, class_map=class_map,
                                       ignore_unknown_folders=ignore_unknown, log=log)
                     for split in FOLDER_SPLITS}
        else:
            raise DataError(f"data.split must be 'resplit' or 'folders', got {data_cfg.split!r}")
    except DataError as error:
        raise DataError(f"data.root {root}: {error}; {layout}") from error
    return image_files_bundle(data_cfg, files, class_names_from_map(class_map), log,
                              f"data.root {root}")


def image_files_bundle(data_cfg: ml_collections.ConfigDict,
                       files: dict[str, Sequence[LabelledFile]], class_names: Sequence[str],
                       log: BadInputLog, where: str) -> DataBundle:
    """The bundle of image files split into train/val/test: decoded and resized once
    (cached), bad files resolved by `data.on_bad_input` in one go, class counts checked.
    `data.common_size` > 0 first brings every image to that size and, unless it was a
    JPEG, through one JPEG round trip at `data.jpeg_quality` (sources of different
    resolution or compression then look alike)."""
    common_size = data_cfg.get("common_size", 0)
    common_source = (common_size, data_cfg.get("jpeg_quality", 0)) if common_size else None
    sources = {}
    for split, split_files in files.items():
        sources[split], _ = preprocess_files(
            split_files, image_size=data_cfg.image_size, channels=data_cfg.channels,
            resize_mode=data_cfg.resize_mode, cache_dir=cache_root(data_cfg),
            on_bad_input=data_cfg.on_bad_input, desc=f"{split} images",
            common_source=common_source, log=log)
    log.resolve(where)
    check_class_counts({split: source.labels for split, source in sources.items()},
                       class_names, data_cfg.get("min_per_class", MIN_PER_CLASS), where)
    train = sources["train"]
    return DataBundle(
        train=train, val=sources["val"], test=sources["test"], train_labels=train.labels,
        input_shape=(data_cfg.image_size, data_cfg.image_size, data_cfg.channels),
        class_names=tuple(class_names),
        train_transforms=image_transforms(data_cfg, train, train=True),
        eval_transforms=image_transforms(data_cfg, train, train=False),
        worker_count=data_cfg.get("worker_count", 0), bad_inputs=log)


@register_dataset("image_csv")
def image_csv(data_cfg: ml_collections.ConfigDict, seed: int) -> DataBundle:
    """Images listed in a label CSV (`data.csv`: `data.path_column`, `data.label_column`,
    read with `data.encoding`), paths relative to `data.root` (default: the CSV's folder),
    split per class into train/val/test by `data.val_fraction`, `data.test_fraction` and
    `data.split_seed` (see `jaxcx.data.label_csv`)."""
    del seed  # the split has its own seed: changing the model seed keeps the split
    files, class_names, log = read_label_csv(
        Path(data_cfg.csv).expanduser(), path_column=data_cfg.path_column,
        label_column=data_cfg.label_column, image_root=data_cfg.root or None,
        class_names=tuple(data_cfg.class_names), encoding=data_cfg.encoding,
        on_bad_input=data_cfg.on_bad_input)
    splits = split_by_class(files, data_cfg.val_fraction, data_cfg.test_fraction,
                            data_cfg.split_seed)
    return image_files_bundle(data_cfg, splits, class_names, log, f"data.csv {data_cfg.csv}")


def generated_covid_root(data_cfg: ml_collections.ConfigDict) -> Path:
    """Generated COVID/Normal (224 px JPEG) and viral-pneumonia (256 px PNG) phantom
    folders, written once into the cache."""
    generated = data_cfg.generated
    root = cache_root(data_cfg) / f"generated_covid_n{generated.per_class}_s{generated.seed}"
    if not (root / ".complete").exists():
        print(f"generating COVID/Normal/viral phantom folders in {root} (once)")
        write_covid_radiography_like(root, generated.per_class, seed=generated.seed)
        (root / ".complete").write_text("ok\n")
    return root


@register_dataset("covid_radiography")
def covid_radiography(data_cfg: ml_collections.ConfigDict, seed: int) -> DataBundle:
    """COVID-19 vs Normal chest X-rays, or with `data.classes='three'` COVID-19 / Viral
    Pneumonia / Normal (see `jaxcx.data.covid`).

    `data.root` (default: the shared `covid_radiography/`; generated phantoms with
    `data.generated.enabled`) holds `COVID/` and `Normal/` (the third class comes from
    `data.viral_root`, default the shared `lung_segmentation/images/`), split here:
    stratified, byte-identical files kept together, `test_fraction` then `val_fraction`
    of each class by `data.split_seed`. A root with `Train/Val/Test` folders
    (COVID-QU-Ex) keeps its own split. `data.common_size` / `data.jpeg_quality` give every
    class the same resolution and compression before the resize to `data.image_size`.
    """
    del seed  # the split has its own seed
    if data_cfg.generated.enabled:
        generated = generated_covid_root(data_cfg)
        root, viral_root = generated / "radiography", generated / "viral" / "images"
    else:
        root = (Path(data_cfg.root).expanduser() if data_cfg.root
                else shared_data_root() / "covid_radiography")
        viral_root = (Path(data_cfg.viral_root).expanduser() if data_cfg.viral_root
                      else shared_data_root() / "lung_segmentation" / "images")
    if not root.is_dir():
        raise DataError(f"data.root {root} is not a folder: expected COVID/ and Normal/ "
                        "image folders (the COVID-19 Radiography Database) or COVID-QU-Ex's "
                        "{Train,Val,Test}/{COVID-19,Non-COVID,Normal}/images/")
    names = covid_lib.class_names(data_cfg.classes)
    log = BadInputLog(data_cfg.on_bad_input)
    if covid_lib.has_split_folders(root):
        splits = covid_lib.folder_splits(root, data_cfg.classes, log)
        leaks = covid_lib.cross_split_duplicates(splits)
        if leaks:
            print(f"warning: {len(leaks)} file(s) of {root} have a byte-identical copy in "
                  f"another split, e.g. {leaks[0]}")
    else:
        files = covid_lib.pooled_files(root, data_cfg.classes,
                                       viral_root if "Viral Pneumonia" in names else None, log)
        splits, duplicated = covid_lib.duplicate_aware_split(
            files, data_cfg.val_fraction, data_cfg.test_fraction, data_cfg.split_seed)
        if duplicated:
            print(f"{duplicated} of {len(files)} files have a byte-identical copy; each group "
                  "is kept in one split")
    return image_files_bundle(data_cfg, splits, names, log, f"data.root {root}")


@dataclasses.dataclass(frozen=True)
class LabelledImages:
    """One split of a multi-label image set: files with their label vectors and masks."""

    paths: Sequence[str]
    ids: Sequence[str]
    labels: np.ndarray
    label_masks: np.ndarray | None = None


def multilabel_images_bundle(data_cfg: ml_collections.ConfigDict,
                             splits: dict[str, LabelledImages], label_names: Sequence[str],
                             log: BadInputLog, where: str, seed: int) -> DataBundle:
    """The bundle of multi-label image splits: decoded and resized once (cached), bad
    files resolved by `data.on_bad_input` in one go, a split left empty is an error.

    `data.oversample_min_count` > 0 tops up every training label vector seen fewer times
    than that by repeating its images (the CheXpert notebook's oversampling; seeded).
    Augmentation (`data.augment`, applied with probability `p`) and standardisation with
    the training images' mean and std are per-record transforms.
    """
    sources = {}
    for split, part in splits.items():
        # The file's position stands in for its label, so a skipped file drops its own row.
        images, _ = preprocess_files(
            list(zip(part.paths, range(len(part.paths)))), image_size=data_cfg.image_size,
            channels=data_cfg.channels, resize_mode=data_cfg.resize_mode,
            cache_dir=cache_root(data_cfg), on_bad_input=data_cfg.on_bad_input,
            desc=f"{split} images", log=log)
        rows = images.labels
        sources[split] = ArraySource(
            images.images, part.labels[rows], [part.ids[i] for i in rows], images.paths,
            None if part.label_masks is None else part.label_masks[rows])
    log.resolve(where)
    for split, source in sources.items():
        if not len(source):
            raise DataError(f"{where}: the {split} split has no images; check the split "
                            "settings (data.split, data.val_fraction, data.test_fraction)")
    distinct = sources["train"]
    train = distinct
    min_count = int(data_cfg.get("oversample_min_count", 0) or 0)
    if min_count > 0:
        train = sampling.IndexedSource(
            distinct, sampling.oversample_indices(distinct.labels, min_count, seed))
    return DataBundle(
        train=train, val=sources["val"], test=sources["test"], train_labels=train.labels,
        input_shape=(data_cfg.image_size, data_cfg.image_size, data_cfg.channels),
        class_names=tuple(label_names), multilabel=True,
        train_transforms=image_transforms(data_cfg, distinct, train=True),
        eval_transforms=image_transforms(data_cfg, distinct, train=False),
        worker_count=data_cfg.get("worker_count", 0), bad_inputs=log)


def generated_chexpert_csv(data_cfg: ml_collections.ConfigDict) -> Path:
    """A small generated CheXpert-format CSV with phantom images, written once."""
    generated = data_cfg.generated
    root = cache_root(data_cfg) / (f"generated_chexpert_p{generated.num_patients}_"
                                   f"s{generated.seed}_{generated.image_size}px")
    done = root / ".complete"
    if not done.exists():
        print(f"generating a CheXpert-format set of {generated.num_patients} patients in "
              f"{root} (once)")
        write_chexpert_like(root, generated.num_patients, seed=generated.seed,
                            image_size=generated.image_size)
        done.write_text("ok\n")
    return root / "CheXpert-v1.0-small" / "train.csv"


@register_dataset("chexpert")
def chexpert(data_cfg: ml_collections.ConfigDict, seed: int) -> DataBundle:
    """CheXpert (`data.csv`, images under `data.root`, default: where the CSV's paths
    point), or a generated CheXpert-format set when `csv` is empty.

    The CheXpert notebook's cleaning (frontal AP/PA views of the first `max_studies`
    studies), `data.labels` (default its 12), the `uncertain` policy (zeros, ones or
    ignore: masked out of loss and metrics), an optional random `subset_size`, then a
    patient-level split: `test_fraction` of the rows, then `val_fraction`, by
    `data.split_seed`, with the notebook's train/val balance warning.
    """
    del seed  # the split has its own seed
    csv_path = Path(data_cfg.csv).expanduser() if data_cfg.csv else generated_chexpert_csv(data_cfg)
    rows, log = chexpert_lib.read_chexpert_csv(csv_path, on_bad_input=data_cfg.on_bad_input,
                                               encoding=data_cfg.encoding)
    root = (Path(data_cfg.root).expanduser() if data_cfg.root
            else chexpert_lib.default_image_root(csv_path, rows))
    rows = chexpert_lib.clean_rows(rows, frontal_only=True, max_studies=data_cfg.max_studies or None)
    if data_cfg.subset_size:
        rows = chexpert_lib.random_subset(rows, data_cfg.subset_size, data_cfg.split_seed)
    parts = chexpert_lib.patient_splits(rows, data_cfg.val_fraction, data_cfg.test_fraction,
                                        data_cfg.split_seed)
    label_names = tuple(data_cfg.labels) or chexpert_lib.CHEXPERT_NOTEBOOK_LABELS
    splits = {}
    for split, split_rows in parts.items():
        labels, masks = chexpert_lib.label_arrays(split_rows, label_names, data_cfg.uncertain)
        splits[split] = LabelledImages([str(root / row.path) for row in split_rows],
                                       [row.image_id for row in split_rows], labels, masks)
    chexpert_lib.check_balance(splits["train"].labels, splits["val"].labels, label_names)
    return multilabel_images_bundle(data_cfg, splits, label_names, log,
                                    f"data.csv {csv_path}", data_cfg.split_seed)


@register_dataset("multilabel_csv")
def multilabel_csv(data_cfg: ml_collections.ConfigDict, seed: int) -> DataBundle:
    """Your images with one 0/1 column per label in a CSV (`data.csv`, `data.path_column`,
    `data.label_columns`, read with `data.encoding`; paths relative to `data.root`,
    default the CSV's folder). Blank is negative, -1 uncertain (`data.uncertain`). Split
    by `data.group_column` (e.g. a patient id: no group in two splits) or by row:
    `test_fraction`, then `val_fraction`, by `data.split_seed`."""
    del seed  # the split has its own seed
    csv_path = Path(data_cfg.csv).expanduser()
    label_names = tuple(data_cfg.label_columns)
    rows, log = read_multilabel_csv(
        csv_path, path_column=data_cfg.path_column, label_columns=label_names,
        group_column=data_cfg.group_column, image_root=data_cfg.root or None,
        encoding=data_cfg.encoding, on_bad_input=data_cfg.on_bad_input)
    parts = chexpert_lib.patient_splits(rows, data_cfg.val_fraction, data_cfg.test_fraction,
                                        data_cfg.split_seed)
    splits = {}
    for split, split_rows in parts.items():
        raw = np.asarray([row.raw for row in split_rows], np.float32).reshape(
            len(split_rows), len(label_names))
        labels, masks = chexpert_lib.apply_uncertain_policy(raw, data_cfg.uncertain)
        splits[split] = LabelledImages([row.path for row in split_rows],
                                       [Path(row.path).name for row in split_rows], labels, masks)
    return multilabel_images_bundle(data_cfg, splits, label_names, log,
                                    f"data.csv {csv_path}", data_cfg.split_seed)


def nih_root(data_cfg: ml_collections.ConfigDict) -> Path:
    """`data.root`, else the shared ChestX-ray14 sample."""
    root = Path(data_cfg.root).expanduser() if data_cfg.root else (
        shared_data_root() / "nih_chestxray14_sample")
    if not root.is_dir():
        raise DataError(f"NIH ChestX-ray14 folder {root} not found; set data.root to a "
                        "folder holding images/*.png, Data_Entry_2017_v2020.csv(.gz) and, for "
                        "data.split='official', splits/{train,val,test}_list.txt")
    return root


@register_dataset("nih_chestxray14")
def nih_chestxray14(data_cfg: ml_collections.ConfigDict, seed: int) -> DataBundle:
    """NIH ChestX-ray14 under `data.root` (default: the shared 1,000-image sample):
    `images/*.png`, the `Data_Entry_2017` label table (`data.csv`, default
    `ROOT/Data_Entry_2017_v2020.csv.gz`; the rows whose image the folder holds) and the
    official split lists (`data.split='official'`) or a patient split (`'patient'`,
    `val_fraction`, `test_fraction`, `split_seed`). `data.labels` picks findings
    (default all 14)."""
    del seed  # the split has its own seed
    root = nih_root(data_cfg)
    csv_path = Path(data_cfg.csv).expanduser() if data_cfg.csv else (
        root / "Data_Entry_2017_v2020.csv.gz")
    rows, log = nih_lib.read_nih_entries(csv_path, encoding=data_cfg.encoding,
                                         on_bad_input=data_cfg.on_bad_input)
    table_rows = len(rows)
    rows = nih_lib.present_rows(rows, root / "images", log)
    print(f"NIH ChestX-ray14: {len(rows)} of the {table_rows} rows of {csv_path.name} have "
          f"their image in {root / 'images'}")
    parts = nih_lib.split_rows(rows, data_cfg.split, lists_dir=root / "splits",
                               val_fraction=data_cfg.val_fraction,
                               test_fraction=data_cfg.test_fraction, seed=data_cfg.split_seed,
                               log=log)
    label_names = tuple(data_cfg.labels) or nih_lib.NIH_FINDINGS
    splits = {split: LabelledImages([str(root / "images" / row.image) for row in split_rows],
                                    [row.image for row in split_rows],
                                    nih_lib.label_matrix(split_rows, label_names))
              for split, split_rows in parts.items()}
    return multilabel_images_bundle(data_cfg, splits, label_names, log, f"data.root {root}",
                                    data_cfg.split_seed)


def shared_data_root() -> Path:
    """Where the real datasets live: $JAXCX_SHARED_DATA, else ../shared/data beside the
    repository this package was installed from."""
    configured = os.environ.get("JAXCX_SHARED_DATA", "")
    return Path(configured) if configured else Path(__file__).resolve().parents[3] / "shared" / "data"


def mnist_root(data_cfg: ml_collections.ConfigDict) -> Path:
    """The folder of the four MNIST IDX files: `data.root`, the shared data's `mnist/`
    when empty, or (`data.generated`) small learnable stand-ins written once to the cache.
    A folder missing files is a DataError saying where to put them."""
    if data_cfg.get("generated", False):
        root = cache_root(data_cfg) / "generated_mnist"
        if not (root / ".complete").exists():
            write_mnist_like_idx(root, n_train=1200, n_test=400, seed=0)
            (root / ".complete").touch()
        return root
    root = Path(data_cfg.root).expanduser() if data_cfg.root else shared_data_root() / "mnist"
    stems = [stem for pair in MNIST_FILES.values() for stem in pair]
    missing = [s for s in stems if not (root / f"{s}.gz").is_file() and not (root / s).is_file()]
    if missing:
        raise DataError(
            f"MNIST not found in {root} (missing {', '.join(missing)}). Put the four IDX files "
            f"({', '.join(s + '.gz' for s in stems)}; raw or gzip) in that folder, i.e. "
            "../shared/data/mnist beside the repository or $JAXCX_SHARED_DATA/mnist, or pass "
            "--config.data.root=FOLDER. configs/mnist.py:smoke runs on generated IDX files instead.")
    return root


@register_dataset("mnist")
def mnist(data_cfg: ml_collections.ConfigDict, seed: int) -> DataBundle:
    """MNIST IDX files (see `mnist_root`); the last `data.val_size` training images
    validate."""
    del seed
    root = mnist_root(data_cfg)
    full_train = load_mnist(root, "train", checksums=MNIST_MD5 if data_cfg.verify else None)
    test = load_mnist(root, "test", checksums=MNIST_MD5 if data_cfg.verify else None)
    cut = len(full_train) - data_cfg.val_size
    images, labels = full_train.images, full_train.labels

    def arrays(imgs, lbls, prefix, offset):
        return ArraySource(imgs[..., None] if imgs.ndim == 3 else imgs, lbls.astype(np.int32),
                           [f"{prefix}/{offset + i}" for i in range(len(lbls))])

    train = arrays(images[:cut], labels[:cut], "train", 0)
    return DataBundle(
        train=train, val=arrays(images[cut:], labels[cut:], "train", cut),
        test=arrays(test.images, test.labels, "test", 0), train_labels=train.labels,
        input_shape=(28, 28, 1), class_names=tuple(str(d) for d in range(10)),
        train_transforms=[T.ScaleToUnit()], eval_transforms=[T.ScaleToUnit()])


def generated_medmnist_path(data_cfg: ml_collections.ConfigDict) -> Path:
    """A small MedMNIST-style `.npz` (28 px RGB, 5 classes or labels, `data.generated_task`
    binary/multiclass/multilabel), written once into the cache."""
    task = data_cfg.generated_task
    path = cache_root(data_cfg) / f"generated_medmnist_{task}.npz"
    if not path.exists():
        tmp = path.with_name(path.stem + ".tmp.npz")
        write_medmnist_like(tmp, sizes=(400, 100, 100), channels=3, task=task, num_classes=5)
        tmp.replace(path)
    return path


@register_dataset("medmnist")
def medmnist(data_cfg: ml_collections.ConfigDict, seed: int) -> DataBundle:
    """A MedMNIST 2D `.npz` at `data.path` (`{train,val,test}_{images,labels}`; labels (N,)
    or (N, 1) are classes, (N, L) multi-label), or a generated one when the path is
    empty. Classes are counted from the labels unless `data.class_names` names them."""
    del seed  # the file fixes the split
    path = Path(data_cfg.path).expanduser() if data_cfg.path else generated_medmnist_path(data_cfg)
    splits = {split: NpzSource(path, split) for split in NPZ_SPLITS}
    train = splits["train"]
    count = max(source.num_classes for source in splits.values())
    names = tuple(data_cfg.class_names) or tuple(str(k) for k in range(count))
    if len(names) != count:
        raise DataError(f"data.class_names has {len(names)} names but {path} has {count} "
                        "classes or labels")
    transforms = [T.ScaleToUnit()]
    return DataBundle(train=train, val=splits["val"], test=splits["test"],
                      train_labels=train.labels, input_shape=train.images.shape[1:],
                      class_names=names, train_transforms=transforms,
                      eval_transforms=transforms, multilabel=train.multi_label)


@register_dataset("xor")
def xor(data_cfg: ml_collections.ConfigDict, seed: int) -> DataBundle:
    """The XOR/MNIST notebook's continuous XOR; each split is generated from its own seed."""
    del seed  # the data seeds are part of the data config
    train = XorSource(data_cfg.train_size, data_cfg.noise_std, data_cfg.data_seed)
    val = XorSource(data_cfg.val_size, data_cfg.noise_std, data_cfg.data_seed + 1)
    test = XorSource(data_cfg.test_size, data_cfg.noise_std, data_cfg.data_seed + 2)
    return DataBundle(train=train, val=val, test=test, train_labels=train.y, input_shape=(2,),
                      class_names=("0", "1"))
