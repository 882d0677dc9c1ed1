"""The Optuna sweep: search-space sampling, overrides, and resuming up to a trial count."""

import threading
from pathlib import Path

import optuna
import pytest

from jaxcx.config import ConfigError, load_config
from jaxcx.config import with_overrides
from jaxcx.run import load_result, run_config
from jaxcx.sweep import as_flags, param_changes, run_sweep, suggest, wait_for_running_trials

CONFIG = str(Path(__file__).resolve().parents[1] / "configs" / "pneumonia.py")


def tiny_sweep_config(cache_dir, num_trials):
    return load_config(f"{CONFIG}:sweep,quick", [
        f"data.cache_dir={cache_dir}", "data.phantom.num_images=80", "data.phantom.min_size=48",
        "data.phantom.max_size=64", "sweep.space.image_size.choices=(16,)",
        "sweep.space.batch_size.choices=(16,)", "sweep.space.feature_maps.choices=(4,)",
        "sweep.space.kernel_size.choices=(3,)", f"sweep.num_trials={num_trials}"])


def test_suggest_and_changes_round_trip():
    config = load_config(f"{CONFIG}:sweep,cpu")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    params = suggest(study.ask(), config.sweep.space)
    assert set(params) == set(config.sweep.space)
    assert 1e-5 <= params["learning_rate"] <= 1e-3 and 0.25 <= params["dropout"] <= 0.75
    run = with_overrides(run_config(config), param_changes(config.sweep.space, params))
    assert "sweep" not in run and "study" not in run
    assert run.optim.learning_rate == params["learning_rate"]
    assert run.model.activation == params["activation"]
    assert run.data.image_size == params["image_size"]
    flags = as_flags(param_changes(config.sweep.space, params)).split()
    again = load_config(f"{CONFIG}:sweep,cpu", [f.removeprefix("--config.") for f in flags])
    assert run_config(again).to_dict() == run.to_dict()  # the printed flags parse back


def test_bad_space_is_a_config_error():
    config = load_config(f"{CONFIG}:sweep", ["sweep.space.dropout.field=model.dropout_rate"])
    with config.unlocked():
        del config.sweep.space.dropout["low"]
    with pytest.raises(ConfigError, match="sweep.space.dropout needs"):
        suggest(optuna.create_study().ask(), config.sweep.space)


@pytest.mark.slow
def test_sweep_resumes_up_to_the_requested_count(tmp_path):
    workdir = tmp_path / "sweep"
    first = run_sweep(tiny_sweep_config(tmp_path / "cache", 2), workdir)
    assert len(first.study.trials) == 2
    second = run_sweep(tiny_sweep_config(tmp_path / "cache", 3), workdir)
    trials = second.study.trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert len({t.params["learning_rate"] for t in trials}) == 3  # no redrawn points
    assert sorted(p.name for p in (workdir / "trials").iterdir()) == ["0000", "0001", "0002"]
    again = run_sweep(tiny_sweep_config(tmp_path / "cache", 3), workdir)
    assert len(again.study.trials) == 3
    assert again.best_run.is_dir()
    best = load_result(again.best_run)
    assert best.config.optim.learning_rate == again.best_changes["optim.learning_rate"]
    assert best.val_metrics["val/accuracy"] == again.best_value == max(
        t.value for t in again.study.trials)


def test_best_trial_waits_for_trials_running_in_another_worker(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'sweep.db'}",
                                         heartbeat_interval=60)
    study = optuna.create_study(storage=storage, direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.5))
    other_worker = optuna.load_study(study_name=study.study_name, storage=storage)
    running = other_worker.ask()  # started elsewhere, finishes after a moment, and best
    threading.Timer(0.5, lambda: other_worker.tell(running, 0.9)).start()
    wait_for_running_trials(study, poll_seconds=0.05)
    assert study.best_value == 0.9
