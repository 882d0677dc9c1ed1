"""Run folders: refuse to mix runs of different configs, record the resolved config."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import ml_collections

from jaxcx.config import to_json

CONFIG_FILE = "config.json"


class WorkdirError(RuntimeError):
    """A --workdir that cannot be used as asked."""


def prepare_workdir(workdir: str | Path, config: ml_collections.ConfigDict, *,
                    overwrite: bool = False) -> Path:
    """Creates (or reuses) a run folder and writes `config.json` there.

    A folder holding a run of the same config is reused, so the run resumes. One holding
    a different config is left untouched unless `overwrite`, which empties it first.
    """
    path = Path(workdir)
    if path.exists() and not path.is_dir():
        raise WorkdirError(f"--workdir {path} is a file; give a folder path")
    config_json = to_json(config)
    saved = path / CONFIG_FILE
    if saved.exists() and json.loads(saved.read_text()) != json.loads(config_json):
        if not overwrite:
            raise WorkdirError(
                f"{path} holds a run with a different config ({saved}); use a new --workdir, "
                "or pass --overwrite to delete that run and start again")
        shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        # Per process: the processes of a multi-host run all write the same config here.
        tmp = saved.with_name(f"{CONFIG_FILE}.{os.getpid()}.tmp")
        tmp.write_text(config_json + "\n")
        os.replace(tmp, saved)
    except OSError as error:
        raise WorkdirError(f"cannot write to --workdir {path}: {error.strerror}; choose a "
                           "writable folder") from error
    return path
