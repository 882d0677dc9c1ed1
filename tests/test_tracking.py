"""Tests for jaxcx.tracking: JSONL round trip, resume truncation, TensorBoard, errors."""

import json
import struct
import sys
import time

import jax.numpy as jnp
import numpy as np
import pytest

from tensorboardX.proto import event_pb2

from jaxcx import tracking


def tensorboard_scalars(logdir):
    """{tag: [(step, value), ...]} as TensorBoard shows them: every event file (TFRecord:
    8-byte length, 4-byte CRC, payload, 4-byte CRC) read in the order the files were
    started; a SessionLog START at step s (a purge) hides earlier events at steps >= s."""
    files = []
    for path in logdir.glob("events.out.tfevents.*"):
        data, position, events = path.read_bytes(), 0, []
        while position < len(data):
            (length,) = struct.unpack("<Q", data[position:position + 8])
            events.append(event_pb2.Event.FromString(data[position + 12:position + 12 + length]))
            position += 12 + length + 4
        files.append(events)
    scalars = {}
    for events in sorted(files, key=lambda events: events[0].wall_time):
        for event in events:
            if event.session_log.status == event_pb2.SessionLog.START:
                scalars = {tag: [(s, v) for s, v in points if s < event.step]
                           for tag, points in scalars.items()}
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_jsonl_round_trip_and_tensorboard(tmp_path):
    with tracking.MetricWriter(tmp_path, "run-a") as writer:
        writer.write(1, {"train/loss": np.float32(0.5), "train/accuracy": jnp.asarray(0.75)})
        writer.write(2, {"val/loss": 0.25, "epoch": 1, "ok": np.bool_(True)})
    rows = tracking.read_metrics(tmp_path)
    assert rows == [{"step": 1, "train/loss": 0.5, "train/accuracy": 0.75},
                    {"step": 2, "val/loss": 0.25, "epoch": 1.0, "ok": 1.0}]
    assert all(isinstance(v, float) for row in rows for k, v in row.items() if k != "step")
    assert tracking.read_metrics(tmp_path / "metrics.jsonl") == rows
    assert tensorboard_scalars(tmp_path / "tb") == {
        "train/loss": [(1, 0.5)], "train/accuracy": [(1, 0.75)], "val/loss": [(2, 0.25)],
        "epoch": [(2, 1.0)], "ok": [(2, 1.0)]}


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


def test_truncate_after_purges_tensorboard_events_of_the_killed_run(tmp_path):
    """Killed after step 5 with the last checkpoint at 3: TensorBoard then shows steps 1-6
    once each, with the resumed run's values from step 4 on."""
    with tracking.MetricWriter(tmp_path, "run") as writer:
        for step in range(1, 6):
            writer.write(step, {"loss": 10.0 + step})  # what the killed run logged
    # tensorboardX names event files by the second: a real resume starts seconds later,
    # and a writer opened within the same second would overwrite the killed run's file.
    started = int(time.time())
    while int(time.time()) == started:
        time.sleep(0.01)
    with tracking.MetricWriter(tmp_path, "run") as writer:
        writer.truncate_after(3)
        for step in range(4, 7):
            writer.write(step, {"loss": 20.0 + step})
    expected = [(1, 11.0), (2, 12.0), (3, 13.0), (4, 24.0), (5, 25.0), (6, 26.0)]
    assert tensorboard_scalars(tmp_path / "tb") == {"loss": expected}
    assert [(row["step"], row["loss"]) for row in tracking.read_metrics(tmp_path)] == expected


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
