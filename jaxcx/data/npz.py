"""MedMNIST `.npz` files: `{split}_images` (N, H, W[, 3]) uint8 and `{split}_labels` (N, L)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from jaxcx.data.errors import DataError

NPZ_SPLITS = ("train", "val", "test")


def _load_arrays(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    image_key, label_key = f"{split}_images", f"{split}_labels"
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = sorted(archive.files)
            missing = [key for key in (image_key, label_key) if key not in keys]
            if missing:
                raise DataError(
                    f"{path}: missing key(s) {missing} for split {split!r}; keys found: {keys} "
                    f"(MedMNIST files hold {{train,val,test}}_images and _labels)"
                )
            return archive[image_key], archive[label_key]
    except DataError:
        raise
    except FileNotFoundError as error:
        raise DataError(f"npz file {path} not found") from error
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise DataError(f"{path}: not a readable .npz archive ({error})") from error


class NpzSource:
    """Records from one split of a MedMNIST-style `.npz`.

    Images become (H, W, 1) or (H, W, 3) uint8. Labels of shape (N, 1) or (N,) give int
    labels (binary / multi-class); (N, L>1) give float32 (L,) multi-label vectors.
    """

    def __init__(self, path: str | Path, split: str):
        if split not in NPZ_SPLITS:
            raise DataError(f"npz split must be one of {NPZ_SPLITS}, got {split!r}")
        path = Path(path)
        images, labels = _load_arrays(path, split)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise DataError(
                f"{path}: {split}_images has shape {images.shape}; expected (N, H, W) gray "
                "or (N, H, W, 3) RGB"
            )
        if labels.ndim == 1:
            labels = labels[:, None]
        if labels.ndim != 2 or labels.shape[0] != images.shape[0]:
            raise DataError(
                f"{path}: {split}_labels has shape {labels.shape}; expected "
                f"({images.shape[0]}, L) to match {split}_images {images.shape}"
            )
        self.path = str(path)
        self.split = split
        self.images = images
        self.multi_label = labels.shape[1] > 1
        self.labels = labels.astype(np.float32) if self.multi_label else labels[:, 0].astype(np.int32)

    @property
    def ids(self) -> list[str]:
        return [f"{Path(self.path).stem}/{self.split}/{index:05d}" for index in range(len(self))]

    @property
    def num_classes(self) -> int:
        """Label count (multi-label) or max label + 1."""
        return self.labels.shape[1] if self.multi_label else int(self.labels.max(initial=-1)) + 1

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        label = self.labels[index] if self.multi_label else int(self.labels[index])
        return {
            "image": self.images[index],
            "label": label,
            "id": f"{Path(self.path).stem}/{self.split}/{index:05d}",
            "path": "",
        }
