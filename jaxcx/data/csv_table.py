"""CSV label tables (plain or gzipped): decoded with a clear error, header checked."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Sequence
from pathlib import Path

from jaxcx.data.errors import DataError


def decode_text(data: bytes, path: Path, encoding: str) -> str:
    """`data` as text; undecodable bytes name the line and how to pass the encoding."""
    try:
        return data.decode("utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {line} is not valid {encoding} (byte 0x{data[error.start]:02x} at "
            f"offset {error.start}); if the file is Latin-1/Windows encoded, pass "
            "encoding='latin-1' (data.encoding), or re-save it as UTF-8"
        ) from error


def open_table(path: str | Path, required: Sequence[str], *, encoding: str = "utf-8",
               what: str = "CSV") -> csv.DictReader:
    """A reader of the rows of `path` (`.gz` decompressed) whose header, stripped of
    spaces, holds every `required` column; `reader.line_num` is each row's line."""
    path = Path(path)
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
    except FileNotFoundError as error:
        raise DataError(f"{what} {path} not found") from error
    except (OSError, EOFError) as error:
        raise DataError(f"{what} {path} is not a readable gzip file: {error}") from error
    reader = csv.DictReader(io.StringIO(decode_text(data, path, encoding), newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [column for column in required if column not in header]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; columns found: {header}")
    reader.fieldnames = header
    return reader
