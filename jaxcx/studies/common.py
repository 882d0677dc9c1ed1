"""What every study shares: arms trained over seeds, reproduce commands, mean +- std
tables, selection on validation, the one test evaluation, timing and report export.

A study derives each run's config from one base `ConfigDict` by `with_overrides`, trains
it with `train_and_evaluate` in `WORKDIR/runs/ARM/seed_N` (a finished run is read back,
an interrupted one resumes) and never evaluates a finished run twice.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import shlex
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from jaxcx.config import (ConfigDict, config_diff, flat_keys, format_value, load_config,
                          with_overrides)
from jaxcx.run import (TEST_DIR, TEST_FILE, DataSource, RunResult, evaluate, run_config,
                       train_and_evaluate)

Log = Callable[[str], None]


@dataclasses.dataclass
class Run:
    """One trained run of a study: its arm, seed, result and reproduce command."""

    arm: str
    seed: int
    result: RunResult
    command: str

    @property
    def key(self) -> str:
        return f"{self.arm}/seed_{self.seed}"

    @property
    def val(self) -> dict[str, float]:
        """Validation metrics of the best checkpoint, without the 'val/' prefix."""
        return {k.removeprefix("val/"): v for k, v in self.result.val_metrics.items()}


@dataclasses.dataclass
class Reproducer:
    """Spells the command that retrains a run by hand: `experiments.train` with the
    study's `--config` spec and the run's differences from it as `--config.a.b=value`
    flags. Without a spec (a study called from Python), or when a run replaces a whole
    config section, the command names the run's saved `config.json` instead."""

    spec: str | None = None

    @functools.cached_property
    def _base(self) -> ConfigDict:
        return run_config(load_config(self.spec))

    def command(self, config: ConfigDict, run_dir: str | Path) -> str:
        run_dir = Path(run_dir)
        again = f"--workdir={run_dir.parent / (run_dir.name + '_again')}"
        if self.spec is not None:
            changes = config_diff(self._base, config)
            shared = set(flat_keys(self._base)) & set(flat_keys(config))
            if shared.issuperset(changes):
                flags = [shlex.quote(f"--config.{k}={format_value(v)}") for k, v in changes.items()]
                return " ".join(["python -m experiments.train", f"--config={self.spec}", *flags,
                                 again])
        return f"python -m experiments.train --config={run_dir / 'config.json'} {again}"


def run_arms(arms: Mapping[str, ConfigDict], seeds: Sequence[int], workdir: Path, *,
             data: DataSource = None, reproducer: Reproducer | None = None,
             log: Log = print) -> dict[str, list[Run]]:
    """Trains every arm's config at every seed in `workdir/runs/ARM/seed_N`."""
    reproducer = reproducer or Reproducer()
    runs: dict[str, list[Run]] = {}
    for arm, config in arms.items():
        runs[arm] = []
        for seed in seeds:
            run_dir = workdir / "runs" / arm / f"seed_{seed}"
            log(f"{arm} seed {seed}")
            seeded = with_overrides(config, {"seed": seed})
            result = train_and_evaluate(seeded, run_dir, data=data)
            runs[arm].append(Run(arm, seed, result, reproducer.command(seeded, run_dir)))
    return runs


def mean_std(runs: Sequence[Run], key: str) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one run) of a validation metric."""
    values = np.asarray([r.val[key] for r in runs if key in r.val], np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def mean_std_table(arms: Mapping[str, Sequence[Run]], keys: Sequence[str],
                   extra: Mapping[str, Mapping[str, str]] | None = None) -> list[str]:
    """Markdown rows `arm | seeds | key mean +- std ...` plus `extra[column][arm]` cells."""
    extra = extra or {}
    header = ["arm", "seeds", *keys, *extra]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm, runs in arms.items():
        cells = [f"{m:.4f} +- {s:.4f}" for m, s in (mean_std(runs, k) for k in keys)]
        cells += [column.get(arm, "") for column in extra.values()]
        lines.append(f"| {arm} | {len(runs)} | " + " | ".join(cells) + " |")
    return lines


def select_on_validation(workdir: Path, arms: Mapping[str, Sequence[Run]], metric: str,
                         tie_break: str = "roc_auc") -> tuple[Run, str]:
    """The arm with the best mean validation `metric` (ties: mean `tie_break`), then its
    seed with the best `metric`. The choice is kept in `workdir/selection.json` and stays
    made once written: the test split may have seen it."""
    path = workdir / "selection.json"
    every = {run.key: run for runs in arms.values() for run in runs}
    if path.exists():
        saved = json.loads(path.read_text())
        return every[saved["run"]], saved["reason"]
    key = metric.removeprefix("val/")

    def score(runs):
        return mean_std(runs, key)[0], mean_std(runs, tie_break)[0]

    arm = max(arms, key=lambda name: score(arms[name]))
    run = max(arms[arm], key=lambda r: (r.val[key], r.val.get(tie_break, 0.0)))
    mean, std = mean_std(arms[arm], key)
    reason = (f"arm `{arm}` has the best mean validation {key} ({mean:.4f} +- {std:.4f} over "
              f"{len(arms[arm])} seeds); its seed {run.seed} has the best validation {key} "
              f"({run.val[key]:.4f}).")
    path.write_text(json.dumps({"run": run.key, "run_dir": run.result.workdir.relative_to(
        workdir).as_posix(), "reason": reason}, indent=2) + "\n")
    return run, reason


def evaluate_once(result: RunResult, *, data: DataSource = None,
                  log: Log = print) -> dict[str, Any]:
    """The run's test record: read back when the run was evaluated already, else the one
    test evaluation."""
    record = result.workdir / TEST_DIR / TEST_FILE
    if record.exists():
        return json.loads(record.read_text())
    log(f"test evaluation of {result.workdir}")
    return evaluate(result.workdir, data=data)


class Clock:
    """Wall time of a study across resumptions, kept in WORKDIR/timing.json."""

    def __init__(self, workdir: Path):
        self._path = workdir / "timing.json"
        self._previous = (json.loads(self._path.read_text())["seconds"]
                          if self._path.exists() else 0.0)
        self._start = time.time()

    def seconds(self) -> float:
        total = self._previous + time.time() - self._start
        self._path.write_text(json.dumps({"seconds": total}) + "\n")
        return total


def export_report(workdir: str | Path, dest: str | Path, max_png_bytes: int = 200_000) -> Path:
    """Copies `report.md` and every PNG it links (same relative paths) into `dest`; PNGs
    over `max_png_bytes` are scaled down (256 colours) until they fit."""
    workdir, dest = Path(workdir), Path(dest)
    text = (workdir / "report.md").read_text()
    for link in sorted(set(re.findall(r"\]\(([^)]+\.png)\)", text))):
        target = dest / link
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(workdir / link, target)
        with Image.open(target) as image:
            image.load()
        while target.stat().st_size > max_png_bytes and image.width > 400:
            image = image.convert("RGB").resize((image.width * 3 // 4, image.height * 3 // 4),
                                                Image.Resampling.LANCZOS)
            image.quantize(256).save(target, optimize=True)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "report.md").write_text(text)
    return dest / "report.md"
