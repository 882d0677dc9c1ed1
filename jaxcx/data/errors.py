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
    """One item not used: where it is (file, file:line, key, folder), why, and its kind:
    'bad' (rejected: corrupt, unreadable, bad row) or 'ignored' (not read: not an image,
    a sub-folder, a folder that is no class)."""

    item: str
    reason: str
    kind: str = "bad"


class BadInputLog:
    """Applies `on_bad_input` and lists what was not used.

    Collect every problem first, then decide once::

        log = BadInputLog(on_bad_input)
        for path in paths:
            try:
                ...
            except DataError as error:
                log.add(path, error)
        log.resolve("train images")  # 'raise': one DataError listing all; 'skip': a warning

    `report` raises at once under 'raise' (CSV rows); `ignore` lists an entry that is not
    read, which never raises.
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
        self.add(item, error)

    def add(self, item: str, error: DataError | str) -> None:
        """Records a bad item whatever the policy (`resolve` applies it); the reason drops
        the item's own name when the error message starts with it."""
        self.items.append(BadInput(item=item, reason=str(error).removeprefix(f"{item}: ")))

    def ignore(self, item: str, reason: str) -> None:
        """Records an entry that is not read (listed and warned about, never an error)."""
        self.items.append(BadInput(item=item, reason=reason, kind="ignored"))

    @property
    def count(self) -> int:
        """Items not used: bad and ignored."""
        return len(self.items)

    def bad(self) -> list[BadInput]:
        return [item for item in self.items if item.kind == "bad"]

    def ignored(self) -> list[BadInput]:
        return [item for item in self.items if item.kind == "ignored"]

    def summary(self, limit: int = 10) -> str:
        """Counts of bad (skipped) and ignored items, with the first `limit` of each."""
        lines = []
        for items, heading in ((self.bad(), "bad input(s) skipped"),
                               (self.ignored(), "file(s) or folder(s) ignored (not read)")):
            if items:
                lines.append(f"{len(items)} {heading}")
                lines += [f"  {bad.item}: {bad.reason}" for bad in items[:limit]]
                if len(items) > limit:
                    lines.append(f"  ... and {len(items) - limit} more")
        return "\n".join(lines) or "0 bad input(s) skipped"

    def warn_if_any(self, what: str) -> None:
        """Logs a warning with the summary when anything was skipped or ignored."""
        if self.items:
            logger.warning("%s: %s", what, self.summary())

    def resolve(self, what: str) -> None:
        """Under 'raise' with bad items: one DataError listing every one with its reason;
        otherwise a warning when anything was skipped or ignored."""
        bad = self.bad()
        if self.policy == "raise" and bad:
            listing = "\n".join(f"  {item.item}: {item.reason}" for item in bad)
            raise DataError(
                f"{what}: {len(bad)} bad input file(s):\n{listing}\nFix or remove them, or set "
                "on_bad_input='skip' (--config.data.on_bad_input=skip) to leave them out and "
                f"list them in {BAD_INPUTS_FILENAME}"
            )
        self.warn_if_any(what)

    def write(self, run_dir: str | Path, filename: str = BAD_INPUTS_FILENAME) -> Path:
        """Writes `{"count": n, "items": [{"item", "reason", "kind"}, ...]}` into `run_dir`."""
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
