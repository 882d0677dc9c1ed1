"""The single test evaluation: metrics from probabilities, and no second look without --force."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jaxcx.config import load_config
from jaxcx.data.registry import build_data
from jaxcx.studies.pneumonia import AlreadyEvaluatedError, evaluate_on_test
from jaxcx.sweep import run_config
from jaxcx.train.loop import fit
from jaxcx.workdir import prepare_workdir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    config = run_config(load_config(f"{REPO}/configs/pneumonia.py:baseline,quick", [
        f"data.cache_dir={root / 'cache'}", "data.phantom.num_images=80",
        "data.phantom.min_size=48", "data.phantom.max_size=64", "data.image_size=16",
        "train.num_epochs=2"]))
    run_dir = prepare_workdir(root / "run", config)
    data = build_data(config.data, config.seed)
    fit(config, run_dir, data)
    return config, run_dir, data


def test_evaluate_once_then_refuse_unless_forced(trained_run):
    config, run_dir, data = trained_run
    out = run_dir / "test"
    record = evaluate_on_test(config, run_dir, out, data, resamples=50, most_wrong=4)
    assert record["evaluations"] == 1 and record["n"] == len(data.test)
    half, chosen = record["operating_points"]["0.5"], record["operating_points"]["validation"]
    assert half["threshold"] == 0.5 and 0.0 <= chosen["threshold"] <= 1.0
    for key in ("accuracy", "f1", "roc_auc", "pr_auc", "sensitivity", "specificity"):
        low, high = half["ci95"][key]
        assert 0.0 <= half[key] <= 1.0 and low <= high
    assert sum(map(sum, half["confusion"])) == len(data.test)
    assert all((out / name).exists() for name in record["figures"].values())
    with pytest.raises(AlreadyEvaluatedError, match="--force"):
        evaluate_on_test(config, run_dir, out, data, resamples=50)
    again = evaluate_on_test(config, run_dir, out, data, resamples=50, force=True)
    assert again["evaluations"] == 2


def test_cli_refuses_a_second_evaluation(trained_run):
    _, run_dir, _ = trained_run
    command = [sys.executable, "-m", "experiments.evaluate", f"--workdir={run_dir}"]
    env = {**os.environ, "JAXCX_NO_PROGRESS": "1"}
    if not (run_dir / "test" / "test_metrics.json").exists():
        subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
    second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert second.returncode == 2
    assert "already evaluated" in second.stderr and "--force" in second.stderr
    assert json.loads((run_dir / "test" / "test_metrics.json").read_text())["evaluations"] >= 1
