"""Data errors and the `on_bad_input` policy: raise, or skip while counting and listing."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Literal

OnBadInput = Literal["raise", "skip"]
BAD_INPUT_POLICIES = ("raise", "skip")
BAD_INPUTS_FILENAME = "bad_inputs.json"

logger = logging.getLogger(__name__)


class DataError(ValueError):
    """Bad or missing data; the message names the file (and row/key) and what is wrong."""


@dataclasses.dataclass(frozen=True)
class BadInput:
    """One rejected item: where it is (file, file:line, key) and why."""

    item: str
    reason: str


class BadInputLog:
    """Applies `on_bad_input`: re-raise, or record the item and go on.

    Typical use::

        log = BadInputLog(on_bad_input)
        for row in rows:
            try:
                ...
            except DataError as error:
                log.report(f"{csv}:line {n}", error)
        log.warn_if_any("CheXpert CSV")
    """

    def __init__(self, on_bad_input: OnBadInput = "raise"):
        if on_bad_input not in BAD_INPUT_POLICIES:
            raise ValueError(
                f"on_bad_input must be one of {BAD_INPUT_POLICIES}, got {on_bad_input!r}"
            )
        self.policy = on_bad_input
        self.items: list[BadInput] = []

    def report(self, item: str, error: DataError | str) -> None:
        """Raises `error` under 'raise'; records (item, reason) under 'skip'."""
        if self.policy == "raise":
            raise error if isinstance(error, DataError) else DataError(f"{item}: {error}")
        self.items.append(BadInput(item=item, reason=str(error)))

    @property
    def count(self) -> int:
        return len(self.items)

    def summary(self, limit: int = 10) -> str:
        """Human-readable count plus the first `limit` items."""
        lines = [f"{self.count} bad input(s) skipped"]
        lines += [f"  {bad.item}: {bad.reason}" for bad in self.items[:limit]]
        if self.count > limit:
            lines.append(f"  ... and {self.count - limit} more")
        return "\n".join(lines)

    def warn_if_any(self, what: str) -> None:
        """Logs a warning with the summary when anything was skipped."""
        if self.items:
            logger.warning("%s: %s", what, self.summary())

    def write(self, run_dir: str | Path, filename: str = BAD_INPUTS_FILENAME) -> Path:
        """Writes `{"count": n, "items": [{"item", "reason"}, ...]}` into `run_dir`."""
        path = Path(run_dir) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"count": self.count, "items": [dataclasses.asdict(b) for b in self.items]}
        path.write_text(json.dumps(payload, indent=1))
        return path

    def extend(self, other: BadInputLog) -> None:
        """Appends another log's items (e.g. one per split)."""
        self.items.extend(other.items)


def read_bad_inputs(path: str | Path) -> list[BadInput]:
    """Reads a file written by `BadInputLog.write` (a run folder or the file itself)."""
    path = Path(path)
    if path.is_dir():
        path = path / BAD_INPUTS_FILENAME
    payload = json.loads(path.read_text())
    return [BadInput(**item) for item in payload["items"]]
