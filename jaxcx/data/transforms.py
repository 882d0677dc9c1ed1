"""Per-record image transforms (grain `Map` / `RandomMap`, picklable), PIL and numpy only.

The standard chain (`standard_transforms`) is: decode from 'path' when the record has no
image -> 1 or 3 channels -> resize ('stretch' like the pneumonia notebook, or
aspect-keeping 'crop' / 'pad') -> scale to [0, 1] -> optional augmentation (the CheXpert
notebook's: with probability p a random affine and brightness/contrast jitter, no flip
unless asked) -> optional standardisation with a mean/std measured on the training split
after resizing (as the pneumonia notebook does), cached as JSON.
Transforms replace 'image' and keep every other field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import dataclasses
import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Literal

import grain
import numpy as np
from PIL import Image

ResizeMode = Literal["stretch", "crop", "pad"]
RESIZE_MODES = ("stretch", "crop", "pad")
NORMALIZATIONS = ("none", "unit", "standardize")
# ITU-R 601-2 luma, as PIL's convert('L') and torchvision's Grayscale.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)


def _size_pair(image_size: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) from an int or a pair."""
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = image_size
    return int(height), int(width)


class DecodeImage(grain.transforms.Map):
    """Decodes the file at record['path'] into 'image' when the record has no image."""

    def map(self, record: dict) -> dict:
        if record.get("image") is not None:
            return record
        from jaxcx.data.imageio import decode_image  # pylint: disable=import-outside-toplevel

        if not record.get("path"):
            raise ValueError(f"record {record.get('id', '?')!r} has neither 'image' nor 'path'")
        return {**record, "image": decode_image(record["path"])}


def convert_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """(H, W, C) with C in {1, 3, 4} -> (H, W, `channels`), keeping the dtype.

    Colour to gray uses the 601-2 luma weights; gray to colour repeats the channel;
    alpha (a 4th channel) is dropped.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    have = image.shape[-1]
    if have == 4:
        image, have = image[:, :, :3], 3
    if have == channels:
        return image
    if channels == 3 and have == 1:
        return np.repeat(image, 3, axis=-1)
    if channels == 1 and have == 3:
        gray = image.astype(np.float32) @ LUMA_WEIGHTS
        if image.dtype.kind in "iu":
            gray = np.clip(np.rint(gray), 0, np.iinfo(image.dtype).max)
        return gray.astype(image.dtype)[:, :, None]
    raise ValueError(f"cannot convert an image with {have} channels to {channels}")


@dataclasses.dataclass(frozen=True)
class ToChannels(grain.transforms.Map):
    """Converts 'image' to `channels` (1: grayscale, 3: RGB) channels."""

    channels: int = 1

    def map(self, record: dict) -> dict:
        return {**record, "image": convert_channels(np.asarray(record["image"]), self.channels)}


def _resize_exact(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Antialiased bilinear resize of (H, W, C) to (height, width, C), keeping the dtype."""
    if image.shape[:2] == (height, width):
        return image
    if image.dtype == np.uint8 and image.shape[-1] in (1, 3):
        pil = Image.fromarray(image[:, :, 0] if image.shape[-1] == 1 else image)
        resized = np.asarray(pil.resize((width, height), Image.BILINEAR))
        return resized.reshape(height, width, image.shape[-1])
    planes = []
    for channel in range(image.shape[-1]):
        plane = Image.fromarray(image[:, :, channel].astype(np.float32))
        planes.append(np.asarray(plane.resize((width, height), Image.BILINEAR)))
    resized = np.stack(planes, axis=-1)
    if image.dtype.kind in "iu":
        resized = np.clip(np.rint(resized), 0, np.iinfo(image.dtype).max)
    return resized.astype(image.dtype)


def resize_image(image: np.ndarray, image_size: int | Sequence[int],
                 mode: ResizeMode = "stretch") -> np.ndarray:
    """Resizes (H, W, C) to `image_size`.

    'stretch' ignores the aspect ratio (as the pneumonia notebook does); 'crop' scales the
    shorter side to fit and centre-crops; 'pad' scales the longer side to fit and
    centre-pads with zeros.
    """
    height, width = _size_pair(image_size)
    if mode == "stretch":
        return _resize_exact(image, height, width)
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    in_height, in_width = image.shape[:2]
    pick = max if mode == "crop" else min
    scale = pick(height / in_height, width / in_width)
    new_height = max(1, round(in_height * scale))
    new_width = max(1, round(in_width * scale))
    if mode == "crop":
        new_height, new_width = max(new_height, height), max(new_width, width)
    else:
        new_height, new_width = min(new_height, height), min(new_width, width)
    scaled = _resize_exact(image, new_height, new_width)
    if mode == "crop":
        top, left = (new_height - height) // 2, (new_width - width) // 2
        return scaled[top:top + height, left:left + width]
    canvas = np.zeros((height, width, image.shape[-1]), image.dtype)
    top, left = (height - new_height) // 2, (width - new_width) // 2
    canvas[top:top + new_height, left:left + new_width] = scaled
    return canvas


@dataclasses.dataclass(frozen=True)
class Resize(grain.transforms.Map):
    """Resizes 'image' to `image_size` (int or (height, width)); see `resize_image`."""

    image_size: int | tuple[int, int]
    mode: ResizeMode = "stretch"

    def __post_init__(self):
        if self.mode not in RESIZE_MODES:
            raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {self.mode!r}")

    def map(self, record: dict) -> dict:
        image = resize_image(np.asarray(record["image"]), self.image_size, self.mode)
        return {**record, "image": image}


def scale_to_unit(image: np.ndarray) -> np.ndarray:
    """float32 in [0, 1]: integers divided by their dtype's maximum, floats left as they are."""
    if image.dtype.kind in "iu":
        return image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    return image.astype(np.float32, copy=False)


def common_source_resolution(image: np.ndarray, size: int, jpeg_quality: int,
                             is_jpeg: bool) -> np.ndarray:
    """uint8 `image` brought to `size` x `size` (antialiased) and, when its file was not a
    JPEG and `jpeg_quality` > 0, through one JPEG round trip at that quality.

    When classes come from sources of different resolution or compression (e.g. 224 px
    JPEG against 256 px PNG), resizing each straight to the model's input leaves a
    class-specific sharpness a model can read instead of the lungs. Passing every image
    through the same lowest resolution and the same compression first removes that cue.
    """
    if image.dtype != np.uint8:
        image = np.rint(scale_to_unit(image) * 255).astype(np.uint8)
    image = resize_image(image, size)
    if jpeg_quality and not is_jpeg:
        planes = image[:, :, 0] if image.shape[-1] == 1 else image
        buffer = io.BytesIO()
        Image.fromarray(planes).save(buffer, format="JPEG", quality=jpeg_quality)
        image = np.asarray(Image.open(buffer)).reshape(image.shape)
    return image


class ScaleToUnit(grain.transforms.Map):
    """'image' to float32 in [0, 1] (uint8 / 255, uint16 / 65535)."""

    def map(self, record: dict) -> dict:
        return {**record, "image": scale_to_unit(np.asarray(record["image"]))}


@dataclasses.dataclass(frozen=True)
class Standardize(grain.transforms.Map):
    """'image' -> (image - mean) / std, float32."""

    mean: float
    std: float

    def __post_init__(self):
        if not self.std > 0:
            raise ValueError(f"standardisation needs std > 0, got {self.std}")

    def map(self, record: dict) -> dict:
        image = (np.asarray(record["image"], np.float32) - np.float32(self.mean))
        return {**record, "image": image / np.float32(self.std)}


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """The CheXpert notebook's augmentation: with probability `p` a random affine then
    colour jitter.

    Rotation and shear are in degrees (uniform in [-x, x]; shear along x), translation a
    fraction of the size (uniform in [-t, t] per axis), brightness and contrast factors
    uniform in [1 - b, 1 + b]. `hflip` adds an independent left-right flip with p = 0.5
    (off by default: chest X-rays are not mirror-symmetric).
    """

    p: float = 0.2
    rotation_degrees: float = 5.0
    translate_fraction: float = 0.05
    shear_degrees: float = 5.0
    brightness: float = 0.2
    contrast: float = 0.1
    hflip: bool = False


def _inverse_affine(center: tuple[float, float], angle: float, translate: tuple[float, float],
                    shear: float) -> tuple[float, ...]:
    """Output->input pixel map (PIL `Image.AFFINE` data) of a rotation and x-shear about
    `center` followed by `translate`: torchvision's RandomAffine convention (scale 1)."""
    rot, sx = math.radians(angle), math.radians(shear)
    a, c = math.cos(rot), math.sin(rot)
    b = -math.cos(rot) * math.tan(sx) - math.sin(rot)
    d = -math.sin(rot) * math.tan(sx) + math.cos(rot)
    # [[a, b], [c, d]] has determinant 1, so its inverse is [[d, -b], [-c, a]].
    cx, cy = center
    tx, ty = translate
    return (d, -b, cx + d * (-cx - tx) - b * (-cy - ty),
            -c, a, cy - c * (-cx - tx) + a * (-cy - ty))


def random_affine(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig
                  ) -> np.ndarray:
    """Random rotation, translation and x-shear of float (H, W, C), bilinear, zero fill."""
    height, width = image.shape[:2]
    angle = rng.uniform(-config.rotation_degrees, config.rotation_degrees)
    shear = rng.uniform(-config.shear_degrees, config.shear_degrees)
    translate = (round(rng.uniform(-1, 1) * config.translate_fraction * width),
                 round(rng.uniform(-1, 1) * config.translate_fraction * height))
    data = _inverse_affine((width * 0.5, height * 0.5), angle, translate, shear)
    planes = [
        np.asarray(Image.fromarray(image[:, :, c]).transform(
            (width, height), Image.AFFINE, data, resample=Image.BILINEAR, fillcolor=0.0))
        for c in range(image.shape[-1])
    ]
    return np.stack(planes, axis=-1)


def color_jitter(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig
                 ) -> np.ndarray:
    """Brightness (scale) then contrast (blend with the mean) of [0, 1] float, clipped."""
    brightness = rng.uniform(max(0.0, 1 - config.brightness), 1 + config.brightness)
    contrast = rng.uniform(max(0.0, 1 - config.contrast), 1 + config.contrast)
    image = np.clip(image * np.float32(brightness), 0.0, 1.0)
    mean = image.mean()
    return np.clip((image - mean) * np.float32(contrast) + mean, 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class RandomAugment(grain.transforms.RandomMap):
    """Applies `AugmentConfig` to a float [0, 1] 'image' (put it before `Standardize`)."""

    config: AugmentConfig = AugmentConfig()

    def random_map(self, record: dict, rng: np.random.Generator) -> dict:
        image = np.asarray(record["image"], np.float32)
        if rng.random() < self.config.p:
            image = color_jitter(random_affine(image, rng, self.config), rng, self.config)
        if self.config.hflip and rng.random() < 0.5:
            image = image[:, ::-1]
        return {**record, "image": np.ascontiguousarray(image, np.float32)}


def standard_transforms(
    *,
    image_size: int | Sequence[int],
    channels: int = 1,
    resize_mode: ResizeMode = "stretch",
    mean_std: tuple[float, float] | None = None,
    augment: AugmentConfig | None = None,
) -> list[Any]:
    """decode -> channels -> resize -> [0, 1] -> augment (if given) -> standardise (if given)."""
    chain: list[Any] = [DecodeImage(), ToChannels(channels),
                        Resize(tuple(_size_pair(image_size)), resize_mode), ScaleToUnit()]
    if augment is not None:
        chain.append(RandomAugment(augment))
    if mean_std is not None:
        chain.append(Standardize(*mean_std))
    return chain


def augment_from_config(config: Mapping[str, Any] | None) -> AugmentConfig | None:
    """`AugmentConfig` from a mapping of its fields; None when absent or `enabled` is False."""
    if not config or not config.get("enabled", True):
        return None
    fields = {f.name for f in dataclasses.fields(AugmentConfig)}
    unknown = set(config) - fields - {"enabled"}
    if unknown:
        raise ValueError(f"unknown augmentation fields {sorted(unknown)}; valid: {sorted(fields)}")
    return AugmentConfig(**{k: v for k, v in config.items() if k in fields})


def transforms_from_config(data_config: Mapping[str, Any], *, train: bool,
                           mean_std: tuple[float, float] | None = None) -> list[Any]:
    """The standard chain from a data config.

    Fields read (with defaults): `image_size` (required), `channels` (1), `resize_mode`
    ('stretch'), `normalization` ('unit' or 'standardize', which needs `mean_std`, e.g.
    from `measure_mean_std`), `augment` (mapping of `AugmentConfig` fields plus `enabled`;
    used only when `train`).
    """
    normalization = data_config.get("normalization", "unit")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if normalization == "standardize" and mean_std is None:
        raise ValueError("normalization='standardize' needs mean_std (see measure_mean_std)")
    return standard_transforms(
        image_size=data_config["image_size"],
        channels=data_config.get("channels", 1),
        resize_mode=data_config.get("resize_mode", "stretch"),
        mean_std=mean_std if normalization == "standardize" else None,
        augment=augment_from_config(data_config.get("augment")) if train else None,
    )


def stats_cache_key(identifiers: Sequence[str], image_size: int | Sequence[int],
                    channels: int, resize_mode: str) -> str:
    """Hash of the file list (sorted) and the resize settings the statistics depend on."""
    digest = hashlib.sha256()
    for identifier in sorted(identifiers):
        digest.update(identifier.encode() + b"\0")
    digest.update(json.dumps([_size_pair(image_size), channels, resize_mode]).encode())
    return digest.hexdigest()[:20]


def _source_identifiers(source) -> list[str]:
    """File paths of a source: its `paths` attribute if present, else each record's path/id."""
    paths = getattr(source, "paths", None)
    if paths is not None:
        return [str(p) for p in paths]
    return [str(record.get("path") or record.get("id")) for record in
            (source[i] for i in range(len(source)))]


def measure_mean_std(
    source,
    *,
    image_size: int | Sequence[int],
    channels: int = 1,
    resize_mode: ResizeMode = "stretch",
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
    worker_count: int = 0,
    progress: bool = True,
) -> tuple[float, float]:
    """Mean and std of all pixels of a (training) source after resizing and [0, 1] scaling.

    As in the pneumonia notebook: one scalar pair over every pixel and channel (std with
    N - 1). With `cache_dir`, the result is stored in `cache_dir/mean_std_<key>.json`, the
    key hashing the file list and the resize settings, and read back on the next call.
    """
    from jaxcx.data.pipeline import eval_loader  # pylint: disable=import-outside-toplevel

    cache_path = None
    if cache_dir is not None:
        key = stats_cache_key(_source_identifiers(source), image_size, channels, resize_mode)
        cache_path = Path(cache_dir) / f"mean_std_{key}.json"
        if cache_path.is_file():
            cached = json.loads(cache_path.read_text())
            return cached["mean"], cached["std"]
    chain = standard_transforms(image_size=image_size, channels=channels,
                                resize_mode=resize_mode)
    loader = eval_loader(source, batch_size=batch_size, transforms=chain,
                         worker_count=worker_count)
    total = total_sq = count = 0.0
    batches = loader
    if progress:
        from jaxcx.tracking import progress_bar  # pylint: disable=import-outside-toplevel

        batches = progress_bar(loader, desc="mean/std", unit="batch")
    for batch in batches:
        pixels = batch["image"][batch["mask"] > 0].astype(np.float64)
        total += pixels.sum()
        total_sq += np.square(pixels).sum()
        count += pixels.size
    mean = total / count
    std = math.sqrt(max(total_sq - count * mean * mean, 0.0) / max(count - 1, 1))
    if cache_path is not None:
        cache_path.parent.mkdir(parents=True, exist_ok=True)
        cache_path.write_text(json.dumps({
            "mean": mean, "std": std, "num_examples": len(source),
            "image_size": list(_size_pair(image_size)), "channels": channels,
            "resize_mode": resize_mode,
        }, indent=1))
    return mean, std
