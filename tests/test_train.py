"""The fit loop: a real run's folder, reproducibility, NaN stops, kill-and-resume."""

import json
import os
import re
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
    # 6 epochs of 8 steps; the learning rate jumps by 1e38 at schedule count 24 (0.5 * 48),
    # so the 25th update overflows the parameters and step 26's loss is the first NaN.
    config = tiny_config("--config.optim.name=sgd", "--config.optim.schedule=step",
                         "--config.optim.decay_at=(0.5,)", "--config.optim.decay_factor=1e38",
                         "--config.train.num_epochs=6", "--config.model.activation=relu")
    data = build_data(config.data, config.seed)
    with pytest.raises(NonFiniteLossError, match=r"at step (\d+)") as error:
        fit(config, tmp_path, data)
    bad_step = int(str(error.value).split("at step ")[1].split(";")[0])
    saved = Checkpointer(tmp_path / "checkpoints").all_steps()
    assert all(step < bad_step for step in saved)
    assert saved == [16, 24] and bad_step == 26
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


def test_early_stopping_needs_a_rise_above_min_delta():
    """Window 2: before = mean(0.5, 0.5) = 0.5, recent = mean(0.5, 0.5016) = 0.5008, a
    rise of 0.0008: above min_delta 0.0005 stops, below min_delta 0.001 does not."""
    losses = [0.5, 0.5, 0.5, 0.5016]
    assert not should_stop_early(losses, window=2, min_delta=0.001, min_evals=0)
    assert should_stop_early(losses, window=2, min_delta=0.0005, min_evals=0)
    assert not should_stop_early(losses[::-1], window=2, min_delta=0.0, min_evals=0)


def test_early_stopping_a_rise_of_exactly_min_delta_does_not_stop():
    """Window 2: before = 1.0, recent = 1.5; the rule needs a rise above min_delta."""
    assert not should_stop_early([1.0, 1.0, 1.5, 1.5], window=2, min_delta=0.5, min_evals=0)
    assert not should_stop_early([1.0] * 4, window=2, min_delta=0.0, min_evals=0)


def _first_stop(val_losses, window, min_delta, min_evals):
    """Hand-rolled rule: the first evaluation count k >= max(min_evals, 2 * window) at
    which mean(last window) - mean(window before) > min_delta; None if never."""
    for k in range(max(min_evals, 2 * window), len(val_losses) + 1):
        recent = sum(val_losses[k - window:k]) / window
        before = sum(val_losses[k - 2 * window:k - window]) / window
        if recent - before > min_delta:
            return k
    return None


def test_fit_stops_early_at_the_evaluation_the_rule_predicts(tmp_path):
    """SGD at lr 2 makes the validation loss bounce; the run must end exactly at the first
    evaluation where the rule holds (after min_epochs = 2, i.e. 8 evaluations of 2 steps)."""
    config = tiny_config("--config.optim.name=sgd", "--config.optim.learning_rate=2.0",
                         "--config.train.num_epochs=8", "--config.train.eval_every_steps=2",
                         "--config.train.eval_batch_size=64",
                         "--config.train.early_stopping.enabled=true",
                         "--config.train.early_stopping.window=2",
                         "--config.train.early_stopping.min_delta=0.05",
                         "--config.train.early_stopping.min_epochs=2")
    data = build_data(config.data, config.seed)
    result = fit(config, tmp_path, data)
    losses = [row["val/loss"] for row in eval_rows(tmp_path)]
    # The run stops at its last evaluation, so the rule is checked on the losses it logged.
    stop = _first_stop(losses, window=2, min_delta=0.05, min_evals=2 * (128 // 16) // 2)
    assert stop is not None and stop < 32  # 8 epochs x 4 evaluations without stopping
    assert result.stopped_early and len(losses) == stop
    assert [row["step"] for row in eval_rows(tmp_path)] == [2 * k for k in range(1, stop + 1)]
    assert max(row["step"] for row in tracking.read_metrics(tmp_path)) == 2 * stop
    assert Checkpointer(tmp_path / "checkpoints").latest_step() == 2 * stop
    again = fit(config, tmp_path, data)  # a stopped run stays stopped on rerun
    assert again.stopped_early and len(eval_rows(tmp_path)) == stop


def _train_command(workdir):
    return [sys.executable, "-m", "experiments.train", "--config=configs/xor.py",
            f"--workdir={workdir}", "--config.train.num_epochs=12",
            "--config.data.train_size=256", "--config.train.batch_size=16",
            "--config.train.log_every_steps=2", "--config.train.eval_every_epochs=1"]


def _environment():
    return {**os.environ, "JAXCX_NO_PROGRESS": "1", "PYTHONPATH": str(REPO),
            "PYTHONUNBUFFERED": "1"}  # a killed run's printed lines reach its log


def _saved_steps(workdir):
    """Steps of the fully written `latest` checkpoints (Orbax renames a step's temporary
    folder to the bare number and writes commit_success.txt when it is complete)."""
    folder = workdir / "checkpoints" / "latest"
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir()
                  if p.name.isdigit() and (p / "commit_success.txt").exists())


def _evaluated_steps(log_text):
    """The steps of the evaluation lines a run printed ("step 176 epoch 11.00: ...")."""
    return [int(m) for m in re.findall(r"^step (\d+) epoch ", log_text, re.MULTILINE)]


@pytest.mark.slow
def test_killed_run_resumes_to_identical_metrics(tmp_path):
    """SIGKILL at several points (before the first checkpoint, mid-run, mid-save), then
    the same command again: every run really dies by the signal, each rerun continues from
    the checkpoint left by the kill (its first evaluation is the one after it), and the
    finished run equals an uninterrupted one."""
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    subprocess.run(_train_command(reference), cwd=REPO, env=_environment(), check=True,
                   capture_output=True)
    steps_per_epoch = 256 // 16
    at_kill = []
    for run, kill_after_lines in enumerate((0, 7, 40, 95)):
        start = max(_saved_steps(killed), default=0)
        log = tmp_path / f"run{run}.log"
        with open(log, "w") as out:
            process = subprocess.Popen(_train_command(killed), cwd=REPO, env=_environment(),
                                       stdout=out, stderr=subprocess.STDOUT)
            metrics = killed / "metrics.jsonl"
            deadline = time.monotonic() + 120
            while process.poll() is None and time.monotonic() < deadline:
                lines = metrics.read_text().count("\n") if metrics.exists() else 0
                if lines >= kill_after_lines and (kill_after_lines
                                                  or (killed / "config.json").exists()):
                    break
                time.sleep(0.02)
            process.send_signal(signal.SIGKILL)
            process.wait()
        assert process.returncode == -signal.SIGKILL, log.read_text()[-2000:]
        evaluated = _evaluated_steps(log.read_text())
        if evaluated:  # this run resumed from where the previous kill left it
            assert evaluated[0] == start + steps_per_epoch, (start, evaluated)
        at_kill.append(max(_saved_steps(killed), default=0))
    # 9 rows per epoch (8 running-loss rows, 1 evaluation): 40 rows are past epoch 4's
    # checkpoint, 95 rows past epoch 10's.
    assert at_kill[0] == 0 and at_kill[2] >= 3 * steps_per_epoch
    assert at_kill[3] >= 9 * steps_per_epoch and at_kill == sorted(at_kill)
    finish = subprocess.run(_train_command(killed), cwd=REPO, env=_environment(),
                            capture_output=True, text=True)
    assert finish.returncode == 0, finish.stderr[-2000:]
    assert _evaluated_steps(finish.stdout) == list(
        range(at_kill[-1] + steps_per_epoch, 12 * steps_per_epoch + 1, steps_per_epoch))
    assert tracking.read_metrics(killed) == tracking.read_metrics(reference)
    assert json.loads((killed / "config.json").read_text()) == json.loads(
        (reference / "config.json").read_text())
    assert (killed / "report.md").read_text() == (reference / "report.md").read_text()
