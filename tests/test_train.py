"""The fit loop: a real run's folder, reproducibility, NaN stops, kill-and-resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxcx import tracking
from jaxcx.checkpoint import Checkpointer, load_saved_state
from jaxcx.config import load_config
from jaxcx.data.registry import build_data
from jaxcx.train.loop import NonFiniteLossError, evaluate_best, fit, should_stop_early

REPO = Path(__file__).resolve().parents[1]
TINY = ["--config.data.train_size=128", "--config.data.val_size=64", "--config.data.test_size=64",
        "--config.train.batch_size=16", "--config.train.eval_batch_size=32",
        "--config.train.log_every_steps=4", "--config.tracking.tensorboard=false"]


def tiny_config(*extra):
    return load_config("configs/xor.py:quick", [*TINY, *extra])


def eval_rows(workdir):
    return [row for row in tracking.read_metrics(workdir) if "val/loss" in row]


def test_fit_writes_metrics_and_checkpoints(tmp_path):
    config = tiny_config()
    data = build_data(config.data, config.seed)
    result = fit(config, tmp_path, data)
    rows = eval_rows(tmp_path)
    assert [row["step"] for row in rows] == [8, 16, 24]
    assert result.best_step in (8, 16, 24)
    assert result.best_metrics["val/accuracy"] == max(r["val/accuracy"] for r in rows)
    steps = Checkpointer(tmp_path / "checkpoints").all_steps()
    assert 24 in steps and result.best_step in steps
    best, best_step = evaluate_best(config, tmp_path, data, data.val, "val")
    assert best_step == result.best_step
    assert best.metrics["val/accuracy"] == pytest.approx(result.best_metrics["val/accuracy"])
    assert best.probs.shape == (64,) and best.confusion.sum() == 64


def test_same_config_and_seed_give_identical_metrics(tmp_path):
    config = tiny_config()
    data = build_data(config.data, config.seed)
    fit(config, tmp_path / "a", data)
    fit(config, tmp_path / "b", data)
    assert tracking.read_metrics(tmp_path / "a") == tracking.read_metrics(tmp_path / "b")
    other = tiny_config("--config.seed=1")
    fit(other, tmp_path / "c", data)
    assert tracking.read_metrics(tmp_path / "a") != tracking.read_metrics(tmp_path / "c")


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
    # The learning rate jumps by 1e38 halfway: the parameters overflow after 3 evaluations.
    config = tiny_config("--config.optim.name=sgd", "--config.optim.schedule=step",
                         "--config.optim.decay_at=(0.5,)", "--config.optim.decay_factor=1e38",
                         "--config.train.num_epochs=6", "--config.model.activation=relu")
    data = build_data(config.data, config.seed)
    with pytest.raises(NonFiniteLossError, match=r"at step (\d+)") as error:
        fit(config, tmp_path, data)
    bad_step = int(str(error.value).split("at step ")[1].split(";")[0])
    saved = Checkpointer(tmp_path / "checkpoints").all_steps()
    assert all(step < bad_step for step in saved)
    assert saved == [16, 24] and bad_step > 24
    for which in ("best", "latest"):
        params = load_saved_state(tmp_path / "checkpoints", which=which)["params"]
        assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(params))


def test_early_stopping_rule():
    flat = [1.0] * 40
    assert not should_stop_early(flat, window=20, min_delta=0.001, min_evals=0)
    rising = [1.0] * 20 + [1.1] * 20
    assert should_stop_early(rising, window=20, min_delta=0.001, min_evals=0)
    assert not should_stop_early(rising, window=20, min_delta=0.001, min_evals=41)
    assert not should_stop_early(rising[:39], window=20, min_delta=0.001, min_evals=0)


def _train_command(workdir):
    return [sys.executable, "-m", "experiments.train", "--config=configs/xor.py",
            f"--workdir={workdir}", "--config.train.num_epochs=12",
            "--config.data.train_size=256", "--config.train.batch_size=16",
            "--config.train.log_every_steps=2", "--config.train.eval_every_epochs=1"]


def _environment():
    return {**os.environ, "JAXCX_NO_PROGRESS": "1", "PYTHONPATH": str(REPO)}


@pytest.mark.slow
def test_killed_run_resumes_to_identical_metrics(tmp_path):
    """SIGKILL at several points (before the first checkpoint, mid-run, mid-save), then
    the same command again: the finished run equals an uninterrupted one."""
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    subprocess.run(_train_command(reference), cwd=REPO, env=_environment(), check=True,
                   capture_output=True)
    for kill_after_lines in (0, 7, 40, 95):
        process = subprocess.Popen(_train_command(killed), cwd=REPO, env=_environment(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        metrics = killed / "metrics.jsonl"
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            lines = metrics.read_text().count("\n") if metrics.exists() else 0
            if lines >= kill_after_lines and (kill_after_lines or (killed / "config.json").exists()):
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()
    finish = subprocess.run(_train_command(killed), cwd=REPO, env=_environment(),
                            capture_output=True, text=True)
    assert finish.returncode == 0, finish.stderr[-2000:]
    assert tracking.read_metrics(killed) == tracking.read_metrics(reference)
    assert json.loads((killed / "config.json").read_text()) == json.loads(
        (reference / "config.json").read_text())
    assert (killed / "report.md").read_text() == (reference / "report.md").read_text()
