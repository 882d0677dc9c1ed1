"""IDX files (MNIST, Fashion-MNIST), raw or gzip: reading, checking, writing."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from jaxcx.data.errors import DataError

IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
IDX_CODES = {dtype.newbyteorder(">"): code for code, dtype in IDX_DTYPES.items()}

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# MD5 of the decompressed official MNIST files (the shared .gz files were recompressed).
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as error:
        raise DataError(f"IDX file {path} not found") from error
    if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise DataError(f"{path}: corrupt or truncated gzip data ({error})") from error
    return raw


def verify_checksum(data: bytes, expected: str, name: str) -> None:
    """Compares MD5 (32 hex digits) or SHA-256 (64) of `data` with `expected`."""
    algorithm = {32: "md5", 64: "sha256"}.get(len(expected))
    if algorithm is None:
        raise ValueError(f"checksum for {name} must be MD5 or SHA-256 hex, got {expected!r}")
    actual = hashlib.new(algorithm, data).hexdigest()
    if actual != expected.lower():
        raise DataError(
            f"{name}: {algorithm} of the decompressed bytes is {actual}, expected {expected}; "
            "the file is damaged or a different dataset"
        )


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parses decompressed IDX bytes into an array in native byte order."""
    if len(data) < 4:
        raise DataError(f"{name}: {len(data)} bytes, too short for an IDX header")
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise DataError(
            f"{name}: bad IDX magic 0x{data[:4].hex()} (expected 0x0000 then a type code in "
            f"{[hex(c) for c in IDX_DTYPES]} and the number of dimensions); not an IDX file?"
        )
    dtype, ndim = IDX_DTYPES[data[2]], data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{name}: truncated IDX header ({len(data)} of {header_size} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(
            f"{name}: IDX data {problem}: header says shape {shape} = {expected} bytes, "
            f"file holds {actual}"
        )
    array = np.frombuffer(data, dtype, offset=header_size).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def read_idx(path: str | Path, *, checksum: str | None = None) -> np.ndarray:
    """Reads an IDX file (`.gz` or raw); `checksum` (MD5/SHA-256) is of the decompressed bytes."""
    path = Path(path)
    data = _read_bytes(path)
    if checksum is not None:
        verify_checksum(data, checksum, str(path))
    return parse_idx(data, str(path))


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Writes `array` as IDX; gzip-compressed when `path` ends in `.gz`."""
    path = Path(path)
    array = np.asarray(array)
    big_endian = array.dtype.newbyteorder(">")
    if big_endian not in IDX_CODES:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; use one of {list(IDX_DTYPES.values())}")
    header = bytes([0, 0, IDX_CODES[big_endian], array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    data = header + array.astype(big_endian).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


class IdxSource:
    """In-memory images `(N, H, W)` and labels `(N,)`; records carry `(H, W, 1)` images.

    `images` and `labels` are public so whole-array training (vmap, scan) can use them.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, name: str = "idx"):
        if images.ndim != 3:
            raise DataError(f"{name}: images must be (N, H, W), got shape {images.shape}")
        if labels.shape != (images.shape[0],):
            raise DataError(
                f"{name}: {images.shape[0]} images but labels of shape {labels.shape}"
            )
        self.images = images
        self.labels = labels.astype(np.int32)
        self.name = name

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {
            "image": self.images[index][:, :, None],
            "label": int(self.labels[index]),
            "id": f"{self.name}/{index:05d}",
            "path": "",
        }


def _find(root: Path, stem: str) -> Path | None:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    return None


def load_mnist(
    root: str | Path,
    split: str,
    *,
    checksums: Mapping[str, str] | None = None,
) -> IdxSource:
    """Loads MNIST-format `split` ('train' or 'test') from `root` (also Fashion-MNIST).

    `checksums` maps file stems to MD5/SHA-256 of the decompressed bytes, e.g.
    `MNIST_MD5` for the official MNIST.
    """
    if split not in MNIST_FILES:
        raise DataError(f"MNIST split must be one of {list(MNIST_FILES)}, got {split!r}")
    root = Path(root)
    stems = MNIST_FILES[split]
    found = {stem: _find(root, stem) for stem in stems}
    missing = [stem for stem, path in found.items() if path is None]
    if missing:
        raise DataError(
            f"MNIST {split!r} split incomplete: put {' and '.join(s + '.gz' for s in missing)} "
            f"(or uncompressed) in {root}"
        )
    images, labels = (
        read_idx(found[stem], checksum=(checksums or {}).get(stem)) for stem in stems
    )
    return IdxSource(images, labels, name=f"{root.name}/{split}")
