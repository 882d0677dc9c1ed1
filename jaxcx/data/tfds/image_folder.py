"""Shared TFDS machinery: a `GeneratorBasedBuilder` over `ROOT/{split}/{class}/...` folders
and a grain-ready source over its ArrayRecord output.

Only the TensorFlow-free parts of TFDS are used: `download_and_prepare` with
`file_format='array_record'` and `as_data_source()`. The image feature stores each file's
bytes as they are (an RGB JPEG stays RGB whatever the feature's channel count), so
`TfdsImageSource` decodes them with `jaxcx.data.imageio.decode_image` exactly as the folder
source does and channel conversion stays in the transforms.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from jaxcx.data.errors import DataError
from jaxcx.data.folder import class_names_from_map, find_split_dir, scan_split
from jaxcx.data.imageio import decode_image


class ImageFolderBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base builder: subclasses set the class folders, split folders and instructions."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Images, labels and relative paths."}
    CLASS_MAP: ClassVar[Mapping[str, int]] = {}
    # Folder name under the manual directory -> TFDS split name; absent folders are skipped.
    SPLIT_FOLDERS: ClassVar[Mapping[str, str]] = {}
    IMAGES_SUBDIR: ClassVar[str | None] = "auto"
    DESCRIPTION: ClassVar[str] = ""

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        """The builder's source file (TFDS' own lookup imports the absent `importlib_resources`)."""
        return epath.Path(inspect.getfile(cls))

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=self.DESCRIPTION,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 1)),
                "label": tfds.features.ClassLabel(names=class_names_from_map(self.CLASS_MAP)),
                "id": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = Path(dl_manager.manual_dir)
        generators = {}
        for folder, split in self.SPLIT_FOLDERS.items():
            try:
                find_split_dir(root, folder)
            except DataError:
                continue
            generators[split] = self._generate_examples(root, folder)
        if not generators:
            raise DataError(
                f"{root}: none of the split folders {list(self.SPLIT_FOLDERS)} found.\n"
                f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
            )
        return generators

    def _generate_examples(self, root: Path, folder: str):
        files = scan_split(root, folder, class_map=self.CLASS_MAP,
                           images_subdir=self.IMAGES_SUBDIR)
        for path, label in files:
            relative = Path(os.path.relpath(path, root)).as_posix()
            yield relative, {"image": path, "label": label, "id": relative}


class TfdsImageSource:
    """Records `{'image', 'label', 'id', 'path': ''}` from a TFDS ArrayRecord split.

    Images are decoded from the stored bytes with `decode_image` (channels as in the
    file); `labels` and `class_names` are read once for sampling and analysis.
    """

    def __init__(self, builder: tfds.core.DatasetBuilder, split: str):
        self.data_source = builder.as_data_source(
            split=split, decoders={"image": tfds.decode.SkipDecoding()})
        self.class_names = list(builder.info.features["label"].names)
        self.split = split
        self._labels: np.ndarray | None = None

    @property
    def labels(self) -> np.ndarray:
        if self._labels is None:
            self._labels = np.asarray(
                [self.data_source[i]["label"] for i in range(len(self))], np.int32)
        return self._labels

    def __len__(self) -> int:
        return len(self.data_source)

    def __getitem__(self, index: int) -> dict:
        example = self.data_source[index]
        record_id = example["id"].decode()
        return {
            "image": decode_image(example["image"], name=f"{self.split}:{record_id}"),
            "label": int(example["label"]),
            "id": record_id,
            "path": "",
        }


def prepare(builder_cls: type[ImageFolderBuilder], *, manual_dir: str | os.PathLike,
            data_dir: str | os.PathLike) -> tfds.core.DatasetBuilder:
    """Builds the ArrayRecord files under `data_dir` once (later calls reuse them)."""
    builder = builder_cls(data_dir=str(data_dir), file_format="array_record")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
    return builder


def load_split(builder_cls: type[ImageFolderBuilder], split: str, *,
               manual_dir: str | os.PathLike, data_dir: str | os.PathLike) -> TfdsImageSource:
    """Prepares the dataset if needed and returns one split as a grain-ready source."""
    return TfdsImageSource(prepare(builder_cls, manual_dir=manual_dir, data_dir=data_dir), split)
