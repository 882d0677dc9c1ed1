"""Metric writers: a JSONL file per run always, TensorBoard events, optional wandb.

`WORKDIR/metrics.jsonl` holds one JSON object per `write`, `{"step": s, "train/loss": ...}`.
On resume from a checkpoint at step s, `truncate_after(s)` drops what the killed run logged
after it, so the resumed run's file equals an uninterrupted run's.

Progress bars: `progress_bar` returns a `tqdm` bar, hidden when stderr is not a terminal or
`JAXCX_NO_PROGRESS=1`; show live values with `bar.set_postfix(loss=..., refresh=False)`.
In multi-process runs, write metrics and show bars from process 0 only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import json
import numbers
import os
from pathlib import Path
from typing import Any
import warnings

import numpy as np
from tqdm import tqdm

METRICS_FILE = "metrics.jsonl"


def _scalar(key: str, value: Any) -> float:
    """A Python float from a Python/numpy/jax scalar (or size-1 array)."""
    if isinstance(value, numbers.Number):
        return float(value)
    array = np.asarray(value)
    numeric = np.issubdtype(array.dtype, np.number) or array.dtype == bool
    if array.size != 1 or not numeric:
        raise TypeError(f"metric {key!r} must be a numeric scalar, got {type(value).__name__} "
                        f"with shape {array.shape} and dtype {array.dtype}")
    return float(array.reshape(()))


def _parse_lines(path: Path) -> list[dict]:
    """Rows of a JSONL file; a truncated final line (no newline, bad JSON) is dropped."""
    text = path.read_text()
    lines = text.split("\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            if number == len(lines):
                warnings.warn(f"{path}:{number}: dropping truncated final line (the run was "
                              f"probably killed mid-write): {line[:80]!r}", stacklevel=3)
                break
            raise ValueError(f"{path}:{number}: corrupt metrics line ({error}): {line[:80]!r}; "
                             "delete or repair that line") from error
        if not isinstance(rows[-1], dict) or "step" not in rows[-1]:
            raise ValueError(f"{path}:{number}: metrics line is not an object with a 'step' "
                             f"key: {line[:80]!r}; delete or repair that line")
    return rows


def read_metrics(workdir: str | os.PathLike) -> list[dict]:
    """All rows of `workdir/metrics.jsonl` (or of the given .jsonl file), in file order."""
    path = Path(workdir)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.exists():
        raise FileNotFoundError(f"no metrics file at {path}")
    return _parse_lines(path)


def _write_rows_atomically(path: Path, rows: Iterable[Mapping]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.writelines(json.dumps(row) + "\n" for row in rows)
    os.replace(tmp, path)


class MetricWriter:
    """Writes scalars to `workdir/metrics.jsonl`, TensorBoard (`workdir/tb`) and wandb.

    wandb (`pip install 'jaxcx[wandb]'`) runs offline unless `wandb_mode` says otherwise;
    `config` is passed to `wandb.init`.
    """

    def __init__(self, workdir: str | os.PathLike, run_name: str, tensorboard: bool = True,
                 wandb: bool = False, wandb_project: str | None = None,
                 wandb_mode: str = "offline", config: Mapping | None = None):
        if wandb:
            try:
                import wandb as wandb_lib
            except ImportError as error:
                raise ImportError("wandb logging needs the wandb package: "
                                  "pip install 'jaxcx[wandb]'") from error
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.run_name = run_name
        self.path = self.workdir / METRICS_FILE
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    _write_rows_atomically(self.path, _parse_lines(self.path))
        self._file = open(self.path, "a")
        self._tb = self._open_tensorboard() if tensorboard else None
        self._wandb_run = (wandb_lib.init(project=wandb_project, name=run_name,
                                          dir=str(self.workdir), mode=wandb_mode,
                                          config=dict(config or {})) if wandb else None)

    def _open_tensorboard(self, purge_step: int | None = None):
        from tensorboardX import SummaryWriter
        return SummaryWriter(logdir=str(self.workdir / "tb"), purge_step=purge_step)

    def write(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Log `scalars` at `step` (numpy/jax scalars become floats)."""
        values = {key: _scalar(key, value) for key, value in scalars.items()}
        if "step" in values:
            raise ValueError("'step' is reserved; pass it as the step argument")
        step = int(step)
        self._file.write(json.dumps({"step": step, **values}) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(key, value, step)
            self._tb.flush()
        if self._wandb_run is not None:
            self._wandb_run.log(values, step=step)

    def truncate_after(self, step: int) -> None:
        """Keep only rows with step <= `step` (atomic rewrite); TensorBoard events after
        `step` are purged too. Call on resume from a checkpoint taken at `step`."""
        self._file.close()
        _write_rows_atomically(self.path, (row for row in _parse_lines(self.path)
                                           if row["step"] <= step))
        self._file = open(self.path, "a")
        if self._tb is not None:
            self._tb.close()
            self._tb = self._open_tensorboard(purge_step=step + 1)

    def close(self) -> None:
        """Flush and close every writer."""
        self._file.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb_run is not None:
            self._wandb_run.finish()
            self._wandb_run = None

    def __enter__(self) -> MetricWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def progress_bar(iterable: Iterable | None = None, total: int | None = None,
                 desc: str | None = None, hidden: bool = False, **kwargs) -> tqdm:
    """A tqdm bar, disabled off a terminal, when `hidden` (e.g. on all but process 0) or
    when `JAXCX_NO_PROGRESS=1`."""
    disable = True if hidden or os.environ.get("JAXCX_NO_PROGRESS") == "1" else None
    return tqdm(iterable, total=total, desc=desc, disable=disable, dynamic_ncols=True,
                **kwargs)
