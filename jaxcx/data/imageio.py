"""Image decoding with PIL into (H, W, C) arrays; bad files raise DataError naming the file.

Every format PIL opens is read (PNG, JPEG, BMP, TIFF, WEBP, GIF, ...), upright: the EXIF
orientation of phone and scanner photos is applied."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from jaxcx.data.errors import DataError

Image.init()
IMAGE_EXTENSIONS = tuple(sorted(
    extension for extension, fmt in Image.registered_extensions().items() if fmt in Image.OPEN))
SIGNATURES = {b"\xff\xd8": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"BM": "BMP",
              b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"RIFF": "WEBP", b"GIF8": "GIF"}
SWAPPED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that turn the image by 90 degrees


class ImageInfo(NamedTuple):
    """Header facts of an image file (no pixel decoding)."""

    width: int
    height: int
    channels: int
    mode: str


def is_image_file(path: str | Path) -> bool:
    """True for the extensions of the formats PIL reads (IMAGE_EXTENSIONS), in any case."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _unidentified_reason(source: str | os.PathLike | bytes) -> str:
    if isinstance(source, bytes):
        head = source[:8]
    else:
        with open(source, "rb") as handle:
            head = handle.read(8)
    for signature, fmt in SIGNATURES.items():
        if head.startswith(signature):
            return f"corrupt or truncated {fmt} header (file starts like a {fmt} but cannot be parsed)"
    return f"not a readable image (no format PIL reads; first bytes {head!r})"


def _open(source: str | os.PathLike | bytes, name: str) -> Image.Image:
    if isinstance(source, bytes):
        if not source:
            raise DataError(f"{name}: empty image data (0 bytes)")
        stream: io.BytesIO | str | os.PathLike = io.BytesIO(source)
    else:
        try:
            size = os.path.getsize(source)
        except OSError as error:
            raise DataError(f"{name}: cannot read image file ({error.strerror})") from error
        if size == 0:
            raise DataError(f"{name}: empty file (0 bytes), not an image")
        stream = source
    try:
        return Image.open(stream)
    except UnidentifiedImageError as error:
        raise DataError(f"{name}: {_unidentified_reason(source)}") from error
    except OSError as error:
        raise DataError(f"{name}: corrupt or truncated image header ({error})") from error


def _to_array(image: Image.Image, name: str) -> np.ndarray:
    """Maps PIL modes to (H, W, C): 1 channel (L, I;16, F) or 3 (RGB); alpha is dropped."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        array = np.asarray(image).astype(np.uint16)
    elif mode == "I":
        array = np.asarray(image)
        if array.size and (array.min() < 0 or array.max() > np.iinfo(np.uint16).max):
            raise DataError(
                f"{name}: 32-bit integer image with values outside 0..65535 "
                f"({array.min()}..{array.max()}); convert it to 8- or 16-bit"
            )
        array = array.astype(np.uint16)
    elif mode == "F":
        array = np.asarray(image, dtype=np.float32)
    elif mode in ("L", "RGB"):
        array = np.asarray(image)
    elif mode in ("1", "LA", "La"):
        array = np.asarray(image.convert("L"))
    else:  # P, PA, RGBA, RGBa, RGBX, CMYK, YCbCr, LAB, HSV
        array = np.asarray(image.convert("RGB"))
    if array.ndim == 2:
        array = array[:, :, None]
    return array


def decode_image(source: str | os.PathLike | bytes, *, name: str | None = None) -> np.ndarray:
    """Decodes an image file or bytes into (H, W, C) uint8 / uint16 (16-bit) / float32.

    The EXIF orientation is applied (a sideways phone photo comes out upright). Gray
    images keep one channel, colour ones get three; alpha is dropped, palette and 1-bit
    images are expanded. Zero-byte, non-image, corrupt and truncated data raise
    `DataError` naming `name` (default: the path, or '<bytes>').
    """
    name = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    image = _open(source, name)
    try:
        with image:
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            return _to_array(image, name)
    except DataError:
        raise
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(
            f"{name}: corrupt or truncated {image.format or 'image'} data ({error})"
        ) from error


def probe_image(path: str | os.PathLike) -> ImageInfo:
    """Reads width, height (as displayed: after the EXIF orientation), channel count and
    PIL mode from the header only."""
    name = str(path)
    with _open(path, name) as image:
        width, height = image.size
        if image.getexif().get(ExifTags.Base.Orientation) in SWAPPED_ORIENTATIONS:
            width, height = height, width
        return ImageInfo(width, height, len(image.getbands()), image.mode)
