"""Tests for jaxcx.tracking: JSONL round trip, resume truncation, TensorBoard, errors."""

import json
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from jaxcx import tracking


def test_jsonl_round_trip_and_tensorboard(tmp_path):
    with tracking.MetricWriter(tmp_path, "run-a") as writer:
        writer.write(1, {"train/loss": np.float32(0.5), "train/accuracy": jnp.asarray(0.75)})
        writer.write(2, {"val/loss": 0.25, "epoch": 1, "ok": np.bool_(True)})
    rows = tracking.read_metrics(tmp_path)
    assert rows == [{"step": 1, "train/loss": 0.5, "train/accuracy": 0.75},
                    {"step": 2, "val/loss": 0.25, "epoch": 1.0, "ok": 1.0}]
    assert all(isinstance(v, float) for row in rows for k, v in row.items() if k != "step")
    assert tracking.read_metrics(tmp_path / "metrics.jsonl") == rows
    events = list((tmp_path / "tb").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_write_rejects_non_scalars(tmp_path):
    with tracking.MetricWriter(tmp_path, "run-a", tensorboard=False) as writer:
        with pytest.raises(TypeError, match="'bad'"):
            writer.write(1, {"bad": np.ones(3)})
        with pytest.raises(ValueError, match="reserved"):
            writer.write(1, {"step": 3})


def test_truncate_after_matches_uninterrupted_run(tmp_path):
    uninterrupted, resumed = tmp_path / "a", tmp_path / "b"
    with tracking.MetricWriter(uninterrupted, "run", tensorboard=False) as writer:
        for step in range(1, 7):
            writer.write(step, {"loss": 1.0 / step})
    with tracking.MetricWriter(resumed, "run", tensorboard=False) as writer:
        for step in range(1, 6):  # killed after step 5, last checkpoint at step 3
            writer.write(step, {"loss": 1.0 / step})
    with tracking.MetricWriter(resumed, "run") as writer:
        writer.truncate_after(3)
        for step in range(4, 7):
            writer.write(step, {"loss": 1.0 / step})
    assert ((resumed / "metrics.jsonl").read_text()
            == (uninterrupted / "metrics.jsonl").read_text())


def test_corrupt_line_names_the_line(tmp_path):
    lines = [json.dumps({"step": 1, "a": 1.0}), "{not json", json.dumps({"step": 3})]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"metrics.jsonl:2: corrupt"):
        tracking.read_metrics(tmp_path)


def test_truncated_final_line_dropped_with_warning(tmp_path):
    good = json.dumps({"step": 1, "a": 1.0})
    (tmp_path / "metrics.jsonl").write_text(good + "\n" + '{"step": 2, "a": 0.')
    with pytest.warns(UserWarning, match="truncated final line"):
        assert tracking.read_metrics(tmp_path) == [{"step": 1, "a": 1.0}]
    with pytest.warns(UserWarning, match="truncated final line"):
        writer = tracking.MetricWriter(tmp_path, "run", tensorboard=False)
    with writer:
        writer.write(2, {"a": 0.5})
    assert tracking.read_metrics(tmp_path) == [{"step": 1, "a": 1.0}, {"step": 2, "a": 0.5}]


def test_missing_wandb_has_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match=r"pip install 'jaxcx\[wandb\]'"):
        tracking.MetricWriter(tmp_path, "run", tensorboard=False, wandb=True)


def test_progress_bar_disabled_by_env(monkeypatch):
    monkeypatch.setenv("JAXCX_NO_PROGRESS", "1")
    bar = tracking.progress_bar(range(3), desc="train")
    assert bar.disable and list(bar) == [0, 1, 2]
    bar.set_postfix(loss=0.1)
