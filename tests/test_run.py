"""`train_and_evaluate` and `evaluate`: one way to run a config, its test split used once."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxcx import run as run_lib
from jaxcx.config import ConfigError, load_config, with_overrides
from jaxcx.data.registry import build_data
from jaxcx.run import (AlreadyEvaluatedError, evaluate, load_result, run_config,
                       train_and_evaluate)
from jaxcx.train.loop import evaluate_best

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "JAXCX_NO_PROGRESS": "1"}


def xor_config(**changes):
    config = run_config(load_config(f"{REPO}/configs/xor.py"))
    return with_overrides(config, {"train.num_epochs": 2, "data.train_size": 256,
                                   "data.val_size": 128, "data.test_size": 128, **changes})


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run") / "xor"
    config = xor_config()
    return config, workdir, train_and_evaluate(config, workdir)


def test_validation_result_is_the_best_checkpoint(finished_run):
    config, workdir, result = finished_run
    data = build_data(config.data, config.seed)
    again, step = evaluate_best(config, workdir, data, data.val, "val")
    assert step == result.best_step
    assert again.metrics == result.val_metrics
    np.testing.assert_array_equal(again.probs, result.val.probs)
    np.testing.assert_array_equal(again.labels, result.val.labels)
    best = [row for row in result.history if row["step"] == result.best_step]
    assert best and best[0]["val/accuracy"] == result.val_metrics["val/accuracy"]
    assert result.val_metrics["val/accuracy"] == max(r["val/accuracy"] for r in result.history)


def test_a_finished_run_is_read_back_without_training(finished_run, monkeypatch):
    config, workdir, result = finished_run

    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained or evaluated again")

    monkeypatch.setattr(run_lib, "fit", refuse)
    monkeypatch.setattr(run_lib, "evaluate_best", refuse)
    again = train_and_evaluate(config, workdir)
    assert again.best_step == result.best_step and again.val_metrics == result.val_metrics
    np.testing.assert_array_equal(again.val.probs, result.val.probs)
    assert again.config.to_dict() == json.loads((workdir / "config.json").read_text())


def test_best_evaluation_from_before_a_restart_is_read_from_the_checkpoint(
        finished_run, tmp_path, monkeypatch):
    """When the best evaluation happened before a resume, `fit` cannot hand it back; the
    best checkpoint is evaluated instead, with the same result."""
    config, _, result = finished_run
    original_fit = run_lib.fit

    def fit_resumed_after_the_best(*args, **kwargs):
        return dataclasses.replace(original_fit(*args, **kwargs), best_eval=None)

    monkeypatch.setattr(run_lib, "fit", fit_resumed_after_the_best)
    again = train_and_evaluate(config, tmp_path / "again")
    assert again.best_step == result.best_step and again.val_metrics == result.val_metrics
    np.testing.assert_array_equal(again.val.probs, result.val.probs)


@pytest.mark.parametrize("field, value, valid", [
    ("data.name", "xorr",
     "chest_xray, chexpert, covid_radiography, image_csv, medmnist, mnist, multilabel_csv, "
     "nih_chestxray14, xor"),
    ("model.name", "mlpp", "mlp"),
    ("loss.name", "softmax", "softmax_ce"),
    ("optim.name", "adamm", "adamw"),
    ("eval.task", "segmantation", "multilabel"),
])
def test_unknown_names_fail_before_the_workdir_is_touched(tmp_path, field, value, valid):
    with pytest.raises(ConfigError, match=f"unknown {field} '{value}'; valid: .*{valid}"):
        train_and_evaluate(xor_config(**{field: value}), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_unknown_model_field_fails_before_the_workdir(tmp_path):
    config = with_overrides(xor_config(), {"model": {"name": "mlp", "widht": 3}})
    with pytest.raises(ConfigError, match="model.widht"):
        train_and_evaluate(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_test_split_is_evaluated_once_unless_forced(finished_run):
    config, workdir, result = finished_run
    record = evaluate(workdir)
    data = build_data(config.data, config.seed)
    direct, _ = evaluate_best(config, workdir, data, data.test, "test")
    assert record["task"] == "binary" and record["n"] == len(data.test)
    assert record["operating_points"]["0.5"]["accuracy"] == direct.metrics["test/accuracy"]
    report = (workdir / "report.md").read_text()
    assert "## Validation" in report and "## Test" in report and "test/test_roc_pr.png" in report
    with pytest.raises(AlreadyEvaluatedError, match="--force"):
        evaluate(workdir)
    assert evaluate(workdir, force=True)["evaluations"] == 2
    assert load_result(workdir).best_step == result.best_step


def test_evaluate_refuses_an_unfinished_run(tmp_path):
    with pytest.raises(run_lib.WorkdirError, match="train it first"):
        evaluate(tmp_path)


def _cli(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=ENV,
                          capture_output=True, text=True)


def test_cli_trains_and_tests_a_multiclass_run(tmp_path):
    """The MNIST smoke config (generated IDX files) through the two entry points."""
    workdir = tmp_path / "mnist"
    trained = _cli("experiments.train", "--config=configs/mnist.py:smoke",
                   "--config.train.num_epochs=1", f"--config.data.cache_dir={tmp_path}",
                   f"--workdir={workdir}")
    assert trained.returncode == 0, trained.stderr
    tested = _cli("experiments.evaluate", f"--workdir={workdir}")
    assert tested.returncode == 0, tested.stderr
    record = json.loads((workdir / "test" / "test_metrics.json").read_text())
    assert record["task"] == "multiclass" and np.asarray(record["confusion"]).sum() == 400
    report = (workdir / "report.md").read_text()
    for figure in ("test_confusion.png", "test_roc_pr.png", "test_per_class_accuracy.png"):
        assert f"test/{figure}" in report and (workdir / "test" / figure).stat().st_size > 0
    second = _cli("experiments.evaluate", f"--workdir={workdir}")
    assert second.returncode == 2 and "already evaluated" in second.stderr


def test_cli_unknown_dataset_writes_nothing(tmp_path):
    result = _cli("experiments.train", "--config=configs/xor.py", "--config.data.name=xorr",
                  f"--workdir={tmp_path / 'run'}")
    assert result.returncode == 2 and "unknown data.name 'xorr'" in result.stderr
    assert not (tmp_path / "run").exists()


def test_saved_config_trains_the_same_run(finished_run, tmp_path):
    _, workdir, result = finished_run
    again = load_config(str(workdir / "config.json"))
    assert train_and_evaluate(again, tmp_path / "again").val_metrics == result.val_metrics


def test_multilabel_run_is_trained_and_tested_per_label(tmp_path):
    """A generated multi-label MedMNIST-style file through both entry points' functions."""
    config = run_config(load_config(f"{REPO}/configs/medmnist.py:multilabel", [
        "train.num_epochs=2", f"data.cache_dir={tmp_path}"]))
    result = train_and_evaluate(config, tmp_path / "run")
    assert result.val.labels.shape == (100, 5)
    record = evaluate(tmp_path / "run")
    assert record["task"] == "multilabel" and record["n"] == 100
    chosen = record["operating_points"]["validation"]
    assert len(chosen["thresholds"]) == 5 and set(chosen["per_label"]) == set("01234")
    assert "| label | threshold |" in (tmp_path / "run" / "report.md").read_text()


def test_evaluate_imports_a_dataset_registered_by_the_users_config_file(tmp_path):
    config_file = tmp_path / "my_config.py"
    config_file.write_text(
        "from jaxcx.config import base_config\n"
        "from jaxcx.data.builders import xor\n"
        "from jaxcx.data.registry import register_dataset\n\n"
        "register_dataset('my_xor')(xor)\n\n\n"
        "def get_config(arg=None):\n"
        f"    config = base_config()\n"
        "    config.name = 'mine'\n"
        "    config.model = {'name': 'xor_mlp', 'width': 3}\n"
        "    config.data = {'name': 'my_xor', 'train_size': 128, 'val_size': 64,\n"
        "                   'test_size': 64, 'noise_std': 0.1, 'data_seed': 0}\n"
        "    config.loss.name = 'sigmoid_bce'\n"
        "    config.train.num_epochs = 1\n"
        "    return config\n")
    workdir = tmp_path / "run"
    trained = _cli("experiments.train", f"--config={config_file}", f"--workdir={workdir}")
    assert trained.returncode == 0, trained.stderr
    tested = _cli("experiments.evaluate", f"--workdir={workdir}")
    assert tested.returncode == 0, tested.stderr
    assert json.loads((workdir / "test" / "test_metrics.json").read_text())["n"] == 64
