"""Seed 000's study: reproducible runs, clear data errors, and the quick study end to end."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxcx import tracking
from jaxcx.config import load_config
from jaxcx.data.errors import DataError
from jaxcx.data.registry import build_data
from jaxcx.studies.pneumonia import ARMS, Launcher, config_variant, run_study, tuned_overrides
from jaxcx.sweep import run_config
from jaxcx.train.loop import fit
from jaxcx.workdir import prepare_workdir

REPO = Path(__file__).resolve().parents[1]
CONFIG = f"{REPO}/configs/pneumonia.py"


def tiny(cache_dir, *overrides):
    return [f"data.cache_dir={cache_dir}", "data.phantom.num_images=80",
            "data.phantom.min_size=48", "data.phantom.max_size=64", *overrides]


def test_arms_map_to_config_variants():
    assert config_variant(ARMS["no_tuning"]) == "combined"
    assert config_variant(ARMS["no_regularisation"]) == "weighted_loss"
    assert config_variant(ARMS["tuned"]) == "baseline"
    best = ["model.dropout_rate=0.6", "optim.name=adam"]
    assert tuned_overrides(best, ARMS["tuned"]) == ["optim.name=adam"]
    assert tuned_overrides(best, ARMS["all_three"]) == best
    assert tuned_overrides(best, ARMS["no_tuning"]) == []


def test_same_variant_and_seed_give_identical_metrics(tmp_path):
    config = run_config(load_config(f"{CONFIG}:combined,quick", tiny(
        tmp_path / "cache", "data.image_size=16", "train.num_epochs=2")))
    data = build_data(config.data, config.seed)
    histories = []
    for name in ("a", "b"):
        fit(config, prepare_workdir(tmp_path / name, config), data)
        rows = tracking.read_metrics(tmp_path / name)
        histories.append([row for row in rows if "val/loss" in row])
    assert len(histories[0]) == 2 and histories[0] == histories[1]


@pytest.mark.parametrize("make_root, message", [
    (lambda tmp: tmp / "nonexistent", "is not a folder; expected the Kaggle layout"),
    (lambda tmp: tmp, "expected the Kaggle layout"),
    (lambda tmp: (tmp / "train" / "cats").mkdir(parents=True) or tmp, "class 'NORMAL'"),
])
def test_bad_data_folder_is_named(tmp_path, make_root, message):
    root = make_root(tmp_path)
    config = load_config(f"{CONFIG}:baseline,cpu", [f"data.root={root}"])
    with pytest.raises(DataError, match=message):
        build_data(config.data, config.seed)


def test_study_fails_at_start_on_a_missing_data_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "experiments.pneumonia_study", "--config.data.root=/nonexistent",
         f"--workdir={tmp_path / 'study'}"], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "JAXCX_NO_PROGRESS": "1"})
    assert result.returncode == 2
    assert "/nonexistent is not a folder; expected the Kaggle layout" in result.stderr
    assert not (tmp_path / "study" / "runs").exists()


@pytest.mark.slow
def test_quick_study_end_to_end_and_resume(tmp_path):
    launcher = Launcher(CONFIG, "quick", tiny(tmp_path / "cache", "data.phantom.num_images=160"))
    result = run_study(launcher, tmp_path / "study", log=lambda _: None)
    study = tmp_path / "study"
    assert set(result.arms) == set(ARMS) and all(len(r) == 2 for r in result.arms.values())
    assert len(list((study / "sweep" / "trials").iterdir())) == 3
    report = (study / "report.md").read_text()
    for section in ("## 1. Data", "## 2. Validation", "## 3. Sweep", "## 4. Selection",
                    "## 6. Targets", "sweep_history.png", "test_most_wrong.png"):
        assert section in report
    assert result.test["evaluations"] == 1
    summary = study / "runs" / "baseline" / "seed_28" / "summary.json"
    stamp = summary.stat().st_mtime_ns
    again = run_study(launcher, study, log=lambda _: None)
    assert summary.stat().st_mtime_ns == stamp and again.selected.key == result.selected.key
    assert json.loads((study / "test" / "test_metrics.json").read_text())["evaluations"] == 1
