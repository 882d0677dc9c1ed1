"""A disk that fills up during a checkpoint or cache write: the previous checkpoint or
cache stays intact, the run stops with a message saying what could not be written, and
the same command resumes once there is room. Uses a small tmpfs (needs root)."""

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxcx import checkpoint, tracking
from jaxcx.checkpoint import CheckpointError
from jaxcx.config import load_config, with_overrides
from jaxcx.data.builders import preprocess_files
from jaxcx.data.errors import DataError
from jaxcx.data.registry import build_data
from jaxcx.run import run_config
from jaxcx.train.loop import fit

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB tmpfs, unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64M", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    yield disk
    subprocess.run(["umount", "--lazy", str(disk)], check=True)


def fill(disk: Path) -> Path:
    """Writes zeros until the disk is full; returns the filler file."""
    filler = disk / "filler"
    try:
        with filler.open("wb") as handle:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
    except OSError:
        pass
    return filler


def xor_config():
    config = run_config(load_config(f"{REPO}/configs/xor.py"))
    return with_overrides(config, {"train.num_epochs": 3, "data.train_size": 256,
                                   "data.val_size": 128, "tracking.tensorboard": False})


def test_full_disk_during_a_checkpoint_stops_and_resumes(small_disk, tmp_path, monkeypatch):
    config = xor_config()
    data = build_data(config.data, config.seed)
    fit(config, tmp_path / "whole", data)
    original_save = checkpoint.Checkpointer.save
    saves = []

    def save_on_a_filling_disk(self, step, *args, **kwargs):
        saves.append(step)
        if len(saves) == 2:  # the first epoch's checkpoint is complete; then the disk fills
            self.wait()
            fill(small_disk)
        return original_save(self, step, *args, **kwargs)

    monkeypatch.setattr(checkpoint.Checkpointer, "save", save_on_a_filling_disk)
    run = small_disk / "run"
    with pytest.raises(CheckpointError, match=r"No space left on device; the last complete "
                                              r"checkpoint \(step 8\) is intact.*same command"):
        fit(config, run, data)
    monkeypatch.setattr(checkpoint.Checkpointer, "save", original_save)
    (small_disk / "filler").unlink()
    fit(config, run, data)  # resumes from step 8
    evals = [[row for row in tracking.read_metrics(folder) if "val/loss" in row]
             for folder in (tmp_path / "whole", run)]
    assert len(evals[0]) == 3 and evals[0] == evals[1]


def test_full_disk_during_a_cache_write_keeps_the_old_cache(small_disk, tmp_path):
    files = []
    for k in range(6):
        path = tmp_path / f"{k}.png"
        Image.fromarray(np.full((20, 20), 40 * k, np.uint8)).save(path)
        files.append((str(path), k % 2))
    options = {"channels": 1, "resize_mode": "stretch", "cache_dir": small_disk}
    first, _ = preprocess_files(files, image_size=16, **options)
    caches = sorted(small_disk.glob("**/*.npz"))
    fill(small_disk)
    with pytest.raises(DataError, match="could not write the image cache .*No space left"):
        preprocess_files(files, image_size=32, **options)
    assert sorted(small_disk.glob("**/*.npz")) == caches  # no partial file left behind
    again, _ = preprocess_files(files, image_size=16, **options)  # read from the old cache
    np.testing.assert_array_equal(again.images, first.images)
